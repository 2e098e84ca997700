import 'reflect-metadata';
import { execFile } from 'node:child_process';
import * as dc from 'node:diagnostics_channel';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { bootstrap, Concurrent, Handle, HandleError, Server, StreamRequest, TcpServer, UdpServer, Verify, DatagramRequest } from '../../src';
import type { PlainError, RequestEndEvent, SockserveEvents } from '../../src';
import { TCPServer } from '../../src/classic';
import { connect, datagramExchange, readToEnd, streamExchange, within } from '../helpers/clients';
import { recordEvents, undeclaredFields } from '../helpers/events';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { workerAcceptMechanism } from '../../src/runtime';
import {
  ObservedChildDatagrams, ObservedChildLines, ObservedChildMessages, ObservedThreadDatagrams, ObservedPerRequestMessages, ObservedRecycledChild, ObservedRecycledThread,
  ObservedThreadLines, ObservedThreadMessages,
} from '../fixtures/observed-handlers';
import { memoryLogger } from '../helpers/memory-logger';
import { TS_LOADER } from '../helpers/fixture-process';

const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
];

function target(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}


/** Sends a line, then resets the connection (RST) while the handler waits for the next one. */
async function resetWhileWaiting(s: Server, line: string): Promise<void> {
  const socket = await within(5000, 'connect', connect(target(s)));
  socket.on('error', () => undefined);
  socket.write(line);
  await new Promise((r) => socket.once('data', r)); // the handler answered and waits again
  socket.resetAndDestroy();
}

/**
 * Sends a partial line and resets (RST) as soon as the bytes are written: the server usually reads the
 * bytes and EOF, so its handler answers the partial line, and that write is refused by the kernel.
 */
async function writeThenReset(s: Server, data: string): Promise<void> {
  const socket = await within(5000, 'connect', connect(target(s)));
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.write(data, () => r()));
  socket.resetAndDestroy();
}

/**
 * Two plain TCP health checks (API.md §11, §15), no PROXY header or TLS: one connects and closes (FIN), one
 * connects and resets (RST) once the server has accepted it; neither sends a byte. Then a request.
 * `s` is a fresh server: the counts are absolute. Where a worker accepted, its news of each connection
 * reaches stats() later than the client sees the close, so the first check is waited for as counted
 * (accepted and a health check) before the second connects: else both news could land in one poll.
 */
async function healthChecksThenARequest(s: Server): Promise<string> {
  const fin = await within(5000, 'connect', connect(target(s)));
  fin.end();
  await within(10000, 'the checked connection to close', readToEnd(fin));
  await until(() => s.stats().accepted === 1 && s.stats().healthChecks === 1, 10000);
  const rst = await within(5000, 'connect', connect(target(s)));
  rst.on('error', () => undefined);
  await until(() => s.stats().accepted === 2, 5000);
  rst.resetAndDestroy();
  await until(() => s.stats().healthChecks === 2, 10000);
  return (await streamExchange(target(s), 'after\n', { halfClose: true })).toString();
}

describe.each(modes)('observability in $mode mode', (m) => {
  const serve = servingInTests<Server>();
  let recorder: ReturnType<typeof recordEvents> | undefined;
  afterEach(() => {
    recorder?.stop();
    recorder = undefined;
  });

  function lineServer() {
    @TcpServer(0) @m.decorate()
    class Lines {
      @Handle() async handle(req: StreamRequest) {
        for (;;) {
          const line = (await req.rfile.readline()).toString();
          if (line === '') return;
          if (line === 'fail\n') throw new Error('handler failure');
          await req.wfile.write(line.toUpperCase());
        }
      }
    }
    return Lines;
  }

  test('a served request is counted with its bytes and publishes open, start, end and close with the tracing channel around it', async () => {
    recorder = recordEvents();
    const s = serve(await bootstrap(lineServer()));
    expect((await streamExchange(target(s), 'hello\n', { halfClose: true })).toString()).toBe('HELLO\n');
    await until(() => recorder!.named('sockserve:connection.close').length === 1);
    expect(s.stats()).toMatchObject({ accepted: 1, rejected: 0, errors: 0, clientErrors: 0, bytesIn: 6, bytesOut: 6, active: 0, workers: [] });
    const names = recorder.events.map((e) => e.name).filter((n) => !n.startsWith('tracing:'));
    expect(names).toEqual(['sockserve:connection.open', 'sockserve:request.start', 'sockserve:request.end', 'sockserve:connection.close']);
    const [open] = recorder.named('sockserve:connection.open');
    expect(open.server).toBe(s);
    expect(open.clientAddress).toMatchObject({ host: '127.0.0.1', family: 'IPv4' });
    const [end] = recorder.named('sockserve:request.end');
    expect(end).toMatchObject({ server: s, bytesIn: 6, bytesOut: 6 });
    expect(end.durationMs).toBeGreaterThanOrEqual(0);
    expect('error' in end).toBe(false);
    expect(recorder.named('sockserve:connection.close')[0]).toMatchObject({ server: s, bytesIn: 6, bytesOut: 6 });
    const tracing = recorder.events.filter((e) => e.name.startsWith('tracing:')).map((e) => e.name);
    expect(tracing).toEqual(expect.arrayContaining(['tracing:start', 'tracing:end', 'tracing:asyncEnd']));
    expect(recorder.named('tracing:start')[0]).toMatchObject({ server: s, clientAddress: open.clientAddress });
    expect(undeclaredFields(recorder.events)).toEqual([]); // the exported payload types (SockserveEvents) name every field
  });

  test('a request in flight counts in active until its connection closes', async () => {
    const s = serve(await bootstrap(lineServer()));
    const socket = await within(5000, 'connect', connect(target(s)));
    try {
      const reply = new Promise((r) => socket.once('data', r));
      socket.write('one\n');
      await within(5000, 'the reply', reply);
      expect(s.stats()).toMatchObject({ active: 1, accepted: 1 });
      const closed = readToEnd(socket);
      socket.end();
      await within(5000, 'the server to close', closed);
    } finally {
      socket.destroy();
    }
    await until(() => s.stats().active === 0 && s.stats().bytesIn === 4); // bytes are added when the connection closes
  });

  test('a client reset counts as a client error, logs one warn line and no traceback, and the next request is served', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    const s = serve(await bootstrap(lineServer(), { logger }));
    await resetWhileWaiting(s, 'first\n');
    await until(() => s.stats().clientErrors === 1);
    expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1, accepted: 1 });
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toHaveLength(1);
    expect(logger.lines.warn[0]).toMatch(/^Error from 127\.0\.0\.1:\d+: read ECONNRESET$/);
    const [end] = recorder.named('sockserve:request.end');
    expect((end.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    expect(recorder.named('tracing:error')).toHaveLength(1);
    expect((await streamExchange(target(s), 'again\n', { halfClose: true })).toString()).toBe('AGAIN\n');
  });

  test('a client that writes and resets at once fails the handler\'s reply write: a client error with one warn line, not a silent success', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(lineServer(), { logger }));
    await writeThenReset(s, 'half');
    await until(() => s.stats().clientErrors === 1);
    expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1, accepted: 1 });
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/^Error from 127\.0\.0\.1:\d+: (read|write) (ECONNRESET|EPIPE)$/)]);
  });

  test('a handler error counts in errors and logs Python\'s traceback block at error', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    const s = serve(await bootstrap(lineServer(), { logger }));
    expect((await streamExchange(target(s), 'fail\n', { halfClose: true })).toString()).toBe('');
    await until(() => s.stats().errors === 1);
    expect(s.stats()).toMatchObject({ errors: 1, clientErrors: 0 });
    expect(logger.lines.warn).toEqual([]);
    expect(logger.lines.error).toHaveLength(1);
    expect(logger.lines.error[0]).toMatch(/^-{40}\nException occurred during processing of request from 127\.0\.0\.1:\d+\nError: handler failure\n\s+at /);
    await until(() => recorder!.named('sockserve:request.end').length === 1);
    expect((recorder.named('sockserve:request.end')[0].error as Error).message).toBe('handler failure');
  });

  test('an idle client past requestTimeout counts as a client error with one warn line', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(lineServer(), { logger, requestTimeout: 0.2 }));
    const socket = await within(5000, 'connect', connect(target(s)));
    try {
      await within(5000, 'the server to close the idle connection', readToEnd(socket));
    } finally {
      socket.destroy();
    }
    await until(() => s.stats().clientErrors === 1);
    expect(s.stats().errors).toBe(0);
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/^RequestTimeoutError from 127\.0\.0\.1:\d+: rfile: no data arrived for 0\.2 s/)]);
    expect(logger.lines.warn[0]).not.toContain('\n');
  });

  test('a connection refused by @Verify is accepted and rejected, opens and closes, and starts no request', async () => {
    recorder = recordEvents();
    @TcpServer(0) @m.decorate()
    class Refusing {
      @Verify() allow() { return false; }
      @Handle() h(req: StreamRequest) { return req.wfile.write('never'); }
    }
    const s = serve(await bootstrap(Refusing));
    expect((await streamExchange(target(s), 'x\n', { halfClose: true })).toString()).toBe('');
    await until(() => recorder!.named('sockserve:connection.close').length === 1);
    expect(s.stats()).toMatchObject({ accepted: 1, rejected: 1, errors: 0 });
    expect(recorder.named('sockserve:connection.open')).toHaveLength(1);
    expect(recorder.named('sockserve:request.start')).toEqual([]);
  });

  test('a plain TCP health check, closed or reset with no byte either way, counts in healthChecks only and logs nothing', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(lineServer(), { logger }));
    expect(await healthChecksThenARequest(s)).toBe('AFTER\n');
    expect(s.stats()).toMatchObject({ accepted: 3, healthChecks: 2, errors: 0, clientErrors: 0, rejected: 0 });
    expect([...logger.lines.error, ...logger.lines.warn]).toEqual([]);
  });

  test('a user @HandleError still sees routine errors, which are counted as client errors and not logged', async () => {
    const seen: string[] = [];
    const logger = memoryLogger();
    @TcpServer(0) @m.decorate()
    class Handled {
      @Handle() async h(req: StreamRequest) {
        await req.wfile.write(await req.rfile.readline());
        await req.rfile.readline();
      }
      @HandleError() e(error: NodeJS.ErrnoException) { seen.push(String(error.code)); }
    }
    const s = serve(await bootstrap(Handled, { logger }));
    await resetWhileWaiting(s, 'x\n');
    await until(() => seen.length === 1);
    expect(seen).toEqual(['ECONNRESET']);
    expect(s.stats()).toMatchObject({ clientErrors: 1, errors: 0 });
    expect([...logger.lines.error, ...logger.lines.warn]).toEqual([]);
  });

  test('a request abandoned at shutdownTimeout publishes its request.end (with the RequestTimeoutError) and connection.close, and its bytes count, before shutdown() resolves', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    @TcpServer(0) @m.decorate()
    class Hangs {
      @Handle() async h(req: StreamRequest) {
        await req.rfile.readline();
        await held; // until after shutdown(): only the abandoning ends this request
      }
    }
    const s = serve(await bootstrap(Hangs, { logger, shutdownTimeout: 0.3 }));
    const socket = await within(5000, 'connect', connect(target(s)));
    socket.on('error', () => undefined);
    try {
      socket.write('twelve bytes');
      socket.write('\n');
      await until(() => s.stats().active === 1, 5000);
      await until(() => recorder!.named('sockserve:request.start').length === 1, 5000);
      await new Promise((r) => setTimeout(r, 50)); // the line is read
      await within(5000, 'shutdown', s.shutdown());
      // Published and counted by the time shutdown() resolves, as @Threading and @Forking do (hostile new-user run).
      const [end] = recorder.named('sockserve:request.end');
      expect(end).toMatchObject({ server: s, bytesIn: 13 });
      expect((end.error as Error).name).toBe('RequestTimeoutError');
      expect(recorder.named('sockserve:connection.close')).toEqual([expect.objectContaining({ server: s, bytesIn: 13, bytesOut: 0 })]);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 13, clientErrors: 1, errors: 0 });
      expect(logger.lines.warn).toEqual([expect.stringMatching(/RequestTimeoutError/)]);
      // Its handler returns after all: nothing is published, counted or reported a second time.
      release();
      await new Promise((r) => setTimeout(r, 200));
      expect(recorder.named('sockserve:request.end')).toHaveLength(1);
      expect(recorder.named('sockserve:connection.close')).toHaveLength(1);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 13, clientErrors: 1, errors: 0 });
      expect(logger.lines.warn).toHaveLength(1);
    } finally {
      socket.destroy();
    }
  });
});

const workerModes = [
  { mode: '@Threading', Lines: ObservedThreadLines, Messages: ObservedThreadMessages, Recycled: ObservedRecycledThread, who: 'threadId' as const, child: false, workersAccept: () => workerAcceptMechanism().threadingTcp === 'worker-accepts' },
  { mode: '@Forking', Lines: ObservedChildLines, Messages: ObservedChildMessages, Recycled: ObservedRecycledChild, who: 'pid' as const, child: true, workersAccept: () => workerAcceptMechanism().forkingTcp === 'worker-accepts' },
];

describe.each(workerModes)('observability of workers in $mode mode', (m) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([]));
  let recorder: ReturnType<typeof recordEvents> | undefined;
  afterEach(() => {
    recorder?.stop();
    recorder = undefined;
  });

  test('each worker is listed with its own figures as soon as bootstrap() resolves, before any request or interval', async () => {
    const s = serve(await bootstrap(m.Lines));
    const { workers } = s.stats();
    expect(workers.length).toBeGreaterThan(0);
    for (const worker of workers) {
      expect(worker).toMatchObject({ connections: 0, requests: 0 });
      expect(worker[m.who]).toBe(worker.id);
      expect(worker.heapUsedBytes).toBeGreaterThan(0);
      if (m.child) expect(worker.rssBytes).toBeGreaterThan(0);
    }
  });

  test('a request served by a worker is counted once, its worker is listed, and the main process sees its request.end with workerId', async () => {
    recorder = recordEvents();
    // `${server}` as a subscriber prints it when the event comes: the first workers start before the bind
    const named: string[] = [];
    const onStart = (msg: unknown) => named.push(`${(msg as { server: unknown }).server}`);
    dc.subscribe('sockserve:worker.start', onStart);
    let s: Server;
    try {
      s = serve(await bootstrap(m.Lines));
    } finally {
      dc.unsubscribe('sockserve:worker.start', onStart);
    }
    expect((await streamExchange(target(s), 'hello\n', { halfClose: true })).toString()).toBe('HELLO\n');
    await until(() => recorder!.named('sockserve:request.end').length === 1 && recorder!.named('sockserve:connection.close').length === 1);
    await until(() => s.stats().workers[0]?.requests === 1);
    const stats = s.stats();
    expect(stats).toMatchObject({ accepted: 1, rejected: 0, errors: 0, clientErrors: 0, bytesIn: 6, bytesOut: 6, active: 0, restarts: 0 });
    expect(stats.workers).toHaveLength(1);
    const [worker] = stats.workers;
    expect(worker).toMatchObject({ connections: 0, requests: 1 });
    expect(worker[m.who]).toBe(worker.id);
    expect(worker.heapUsedBytes).toBeGreaterThan(0);
    expect('rssBytes' in worker).toBe(m.child);
    if (m.child) expect(worker.rssBytes).toBeGreaterThan(0);

    const [started] = recorder.named('sockserve:worker.start');
    expect(started).toMatchObject({ server: s, workerId: worker.id, [m.who]: worker.id });
    // a payload logged whole: `server` is its handler and address, not internals that refer back to it
    // (JSON.stringify threw on the circular structure, and thrown in a subscriber, it crashed the process)
    const { host, port } = s.serverAddress as { host: string; port: number };
    expect(JSON.parse(JSON.stringify(started))).toMatchObject({ server: { handler: s.handlerName, address: { host, port } }, workerId: worker.id });
    expect(inspect(started)).toContain(`server: Server { handler: '${s.handlerName}', address: ${host}:${port} }`);
    expect(`${started.server}`).toBe(`${s.handlerName} on ${host}:${port}`); // it read [object Object] (new user)
    // before the bind it read `Lines on none` (new-user run)
    expect(named).toEqual([expect.stringMatching(new RegExp(`^${s.handlerName}( \\(not bound yet\\)| on ${host.replace(/\./g, '\\.')}:${port})$`))]);
    // The connection is the server's (it accepted it, or adopted what a child accepted): open and close are
    // published here, with `server`; its close names the worker that served it.
    expect(recorder.named('sockserve:connection.open')).toEqual([expect.objectContaining({ server: s })]);
    expect(recorder.named('sockserve:connection.close')[0]).toMatchObject({ server: s, workerId: worker.id, bytesIn: 6, bytesOut: 6 });
    // The request ran in the worker: its request.end is republished here as plain data, once.
    const ends = recorder.named('sockserve:request.end');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ workerId: worker.id, bytesIn: 6, bytesOut: 6, clientAddress: { host: '127.0.0.1' } });
    expect('server' in ends[0]).toBe(false);
    expect(ends[0].durationMs).toBeGreaterThanOrEqual(0);
    // request.start and the tracing channel are published in the worker only, where the request runs.
    expect(recorder.named('sockserve:request.start')).toEqual([]);
    expect(undeclaredFields(recorder.events)).toEqual([]);
  });

  test('a subscriber added after bootstrap() sees the request.end of the very next requests (the README\'s watch(server); workers learned of it only with their next report)', async () => {
    const s = serve(await bootstrap(m.Lines));
    await new Promise((r) => setTimeout(r, 300)); // the pool's first reports have come and gone: nobody subscribed then
    recorder = recordEvents();
    const replies = await Promise.all(['a\n', 'b\n', 'c\n'].map((line) => streamExchange(target(s), line, { halfClose: true })));
    expect(replies.map(String).sort()).toEqual(['A\n', 'B\n', 'C\n']);
    await until(() => s.stats().workers.reduce((n, w) => n + w.requests, 0) === 3, 5000);
    await until(() => recorder!.named('sockserve:request.end').length === 3, 5000);
    recorder.stop();
    recorder = undefined;
  });

  test("connection.close's durationMs is the connection's, even when the server's process hears of its start and end together", async () => {
    recorder = recordEvents();
    const s = serve(await bootstrap(m.Lines));
    const socket = await connect(target(s));
    try {
      socket.write('slow\n');
      // The server's process is this one: block it while the worker serves the connection (50 ms) and ends it,
      // so that it reads a child's news of that connection, accepted and done, in one go afterwards.
      const until500 = Date.now() + 500;
      while (Date.now() < until500) { /* the server's event loop waits */ }
      expect((await within(5000, 'the reply', readToEnd(socket))).toString()).toBe('SLOW\n');
    } finally {
      socket.destroy();
    }
    await until(() => recorder!.named('sockserve:connection.close').length === 1);
    const [closed] = recorder.named('sockserve:connection.close');
    expect(closed.durationMs).toBeGreaterThanOrEqual(45);
  });

  test('workers record no event while nobody subscribes in the main process, and forward from the first connection after a subscription', async () => {
    const s = serve(await bootstrap(m.Lines));
    expect((await streamExchange(target(s), 'unseen\n', { halfClose: true })).toString()).toBe('UNSEEN\n');
    await until(() => s.stats().workers[0]?.requests === 1); // a report has come since: nothing was waiting in it
    recorder = recordEvents();
    if (m.workersAccept()) {
      // A worker that accepts starts the request before the server's process hears of it: the workers learn
      // of the subscription from the server's process, at the next connection it is told of (or report).
      expect((await streamExchange(target(s), 'hello\n', { halfClose: true })).toString()).toBe('HELLO\n');
      await until(() => s.stats().workers[0]?.requests === 2);
    }
    expect((await streamExchange(target(s), 'seen\n', { halfClose: true })).toString()).toBe('SEEN\n');
    // 'hello' (6 bytes each way) may or may not have been forwarded, whichever came first: left out.
    const ends = () => recorder!.named('sockserve:request.end').filter((e) => e.bytesIn !== 6);
    await until(() => ends().length === 1);
    await until(() => s.stats().workers[0]?.requests === (m.workersAccept() ? 3 : 2)); // and the report after it brought nothing more
    expect(ends()).toEqual([expect.objectContaining({ bytesIn: 5, bytesOut: 5 })]);
  });

  test('a handler error in a worker counts once in errors, and its request.end carries the error as plain data', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    expect((await streamExchange(target(s), 'fail\n', { halfClose: true })).toString()).toBe('');
    await until(() => s.stats().errors === 1 && recorder!.named('sockserve:request.end').length === 1);
    expect(s.stats()).toMatchObject({ errors: 1, clientErrors: 0, accepted: 1 });
    expect(recorder.named('sockserve:request.end')[0].error).toMatchObject({ name: 'Error', message: 'handler failure' });
    expect(logger.lines.error).toEqual([expect.stringMatching(/Error: handler failure/)]);
  });

  test('a republished request.end narrows on `server` to the worker\'s form: workerId a number and error a PlainError, the crash\'s too', async () => {
    const ends: RequestEndEvent[] = [];
    const keep = (message: unknown) => { ends.push(message as SockserveEvents['sockserve:request.end']); };
    dc.subscribe('sockserve:request.end', keep);
    try {
      const s = serve(await bootstrap(m.Lines, { logger: memoryLogger() }));
      expect((await streamExchange(target(s), 'fail\n', { halfClose: true })).toString()).toBe('');
      expect((await streamExchange(target(s), 'die\n', { halfClose: true })).toString()).toBe('');
      await until(() => ends.length === 2 && s.stats().restarts === 1);
      const seen = ends.map((e) => {
        if (e.server) return { server: e.server.handlerName, error: e.error };
        // Compile-time: in this branch workerId is a number and error a PlainError, with no cast.
        const workerId: number = e.workerId;
        const error: PlainError | undefined = e.error;
        return { workerId: typeof workerId, name: error?.name, message: error?.message, plain: error?.constructor?.name === 'Object' }; // by name: a cloned object comes from another realm under jest
      });
      expect(seen).toEqual([
        { workerId: 'number', name: 'Error', message: 'handler failure', plain: true },
        { workerId: 'number', name: 'WorkerCrashedError', message: expect.stringMatching(/died: it exited with code 3/), plain: true },
      ]);
    } finally {
      dc.unsubscribe('sockserve:request.end', keep);
    }
  });

  test('a client that resets counts as a client error, not a handler error, and the next request is served', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    await resetWhileWaiting(s, 'first\n');
    await until(() => s.stats().clientErrors === 1);
    expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1, accepted: 1 });
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/ECONNRESET/)]);
    expect((await streamExchange(target(s), 'again\n', { halfClose: true })).toString()).toBe('AGAIN\n');
  });

  test('a client that writes and resets at once fails the worker\'s reply write: a client error with one warn line, not a silent success', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    await writeThenReset(s, 'half');
    await until(() => s.stats().clientErrors === 1);
    expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1, accepted: 1 });
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/(ECONNRESET|EPIPE)$/)]);
  });

  test('a worker that dies counts a WorkerCrashedError in errors and a restart, publishes worker.exit with its exit code, and keeps its reported counts', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Messages, { logger }));
    expect((await streamExchange(target(s), 'a\nb\nc\n', { halfClose: true })).toString()).toBe('A\nB\nC\n');
    await until(() => s.stats().messages === 3);
    const first = s.stats().workers[0].id;
    expect((await streamExchange(target(s), 'die\n', { halfClose: true })).toString()).toBe('');
    await until(() => s.stats().restarts === 1 && s.stats().errors === 1 && recorder!.named('sockserve:worker.start').length === 2);
    const [exit] = recorder.named('sockserve:worker.exit');
    expect(exit).toMatchObject({ server: s, workerId: first, [m.who]: first, code: 3 });
    expect(exit.signal).toBeUndefined();
    expect(String(exit.reason)).toMatch(/exited with code 3|code 3/);
    expect(undeclaredFields(recorder.events)).toEqual([]); // worker.start/exit and the republished events, as typed
    expect(logger.lines.error).toEqual([expect.stringMatching(/WorkerCrashedError/)]);
    const after = s.stats();
    // The dead worker's messages stay in the totals; the one that killed it was never reported.
    expect(after).toMatchObject({ messages: 3, errors: 1, restarts: 1 });
    expect(after.workers).toHaveLength(1);
    expect(after.workers[0].id).not.toBe(first);
    expect((await streamExchange(target(s), 'd\n', { halfClose: true })).toString()).toBe('D\n');
    await until(() => s.stats().messages === 4);
  });

  test('a worker that dies is replaced with one info line naming the worker and how it died, beside the error of the request it held', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    const first = s.stats().workers[0].id;
    expect((await streamExchange(target(s), 'die\n', { halfClose: true })).toString()).toBe('');
    await until(() => s.stats().restarts === 1 && logger.lines.info.some((l) => / worker /.test(l)));
    const modeName = m.child ? 'forking' : 'threading';
    expect(logger.lines.info.filter((l) => / worker /.test(l))).toEqual([`${m.Lines.name}: the ${modeName} worker ${first} exited with code 3; a new worker takes its place.`]);
    expect(logger.lines.error).toEqual([expect.stringMatching(/WorkerCrashedError/)]);
    expect(logger.lines.warn).toEqual([]);
  });

  test('workers ended by close() publish worker.exit saying so, without an exit code that reads as a failure', async () => {
    recorder = recordEvents();
    const s = await bootstrap(m.Lines);
    const loop = s.serveForever(0.05);
    expect((await streamExchange(target(s), 'x\n', { halfClose: true })).toString()).toBe('X\n');
    await within(10000, 'shutdown', s.shutdown());
    await within(10000, 'close', s.close());
    await within(10000, 'the loop', loop);
    const exits = recorder.named('sockserve:worker.exit');
    expect(exits).toHaveLength(1);
    expect(String(exits[0].reason)).toMatch(m.child ? /^close: (exited with code 0|was killed by SIGTERM)$/ : /^close: was terminated$/);
    if (m.child) expect([0, undefined]).toContain(exits[0].code);
    else expect(exits[0]).not.toHaveProperty('code'); // terminate()'s code 1 is not the program's
  });

  test('a worker that dies ends every request it held on request.end with the error, and the one it had just finished once, without its error', async () => {
    recorder = recordEvents();
    const s = serve(await bootstrap(m.Lines, { logger: memoryLogger() }));
    const held = await within(5000, 'connect', connect(target(s)));
    held.on('error', () => undefined);
    try {
      const closed = within(10000, 'the held connection to close', readToEnd(held));
      held.write('first\n');
      await within(5000, 'the first reply', new Promise((r) => held.once('data', r)));
      const first = s.stats().workers[0].id;
      const port = held.localPort;
      // A request that ends now, well within the report period before the worker dies.
      expect((await streamExchange(target(s), 'done\n', { halfClose: true })).toString()).toBe('DONE\n');
      held.write('die\n');
      await closed;
      await until(() => s.stats().errors === 1 && recorder!.named('sockserve:request.end').length === 2, 10000);
      const ends = recorder.named('sockserve:request.end');
      const crashed = ends.filter((e) => e.error !== undefined);
      expect(crashed).toEqual([expect.objectContaining({ workerId: first, clientAddress: expect.objectContaining({ port }) })]);
      expect(crashed[0].error).toMatchObject({ name: 'WorkerCrashedError' });
      expect(crashed[0].durationMs).toBeGreaterThanOrEqual(0);
      expect(ends.filter((e) => e.error === undefined)).toEqual([expect.objectContaining({ workerId: first, bytesIn: 5, bytesOut: 5 })]);
      // Exactly once: the replacement's reports bring neither again.
      await until(() => s.stats().workers.length === 1 && s.stats().workers[0].id !== first && s.stats().workers[0].heapUsedBytes > 0, 10000);
      expect((await streamExchange(target(s), 'after\n', { halfClose: true })).toString()).toBe('AFTER\n');
      await until(() => s.stats().workers[0]?.requests === 1, 10000); // a report of the replacement came since
      expect(recorder.named('sockserve:request.end')).toHaveLength(3);
    } finally {
      held.destroy();
    }
  });

  test('close() while a request runs in a worker ends it as a routine RequestTimeoutError (one warn line), not a crash with a traceback; an idle keep-alive connection ends quietly', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    const [client, idle] = await within(5000, 'connect', Promise.all([connect(target(s)), connect(target(s))]));
    client.on('error', () => undefined);
    idle.on('error', () => undefined);
    try {
      const closed = within(10000, 'the connection to close', readToEnd(client));
      const idleClosed = within(10000, 'the idle connection to close', readToEnd(idle));
      idle.write('busy\n');
      await within(5000, 'the reply', new Promise((r) => idle.once('data', r))); // its handler waits for the next line
      client.write('hang\n'); // its handler never returns
      await until(() => s.stats().active === 2, 5000);
      await new Promise((r) => setTimeout(r, 100));
      await within(10000, 'close', s.close());
      await closed;
      await idleClosed;
      await until(() => logger.lines.warn.length === 1, 5000);
      expect(logger.lines.warn[0]).toMatch(/RequestTimeoutError.*server was closed while this request was running/);
      expect(logger.lines.error).toEqual([]);
      expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1 });
    } finally {
      client.destroy();
      idle.destroy();
    }
  });

  test('a worker recycled after maxConnectionsPerThread/Child publishes worker.exit with the reason recycled, and is replaced', async () => {
    recorder = recordEvents();
    const s = serve(await bootstrap(m.Recycled));
    expect((await streamExchange(target(s), 'one\n', { halfClose: true })).toString()).toBe('ONE\n');
    await until(() => recorder!.named('sockserve:worker.exit').length === 1, 10000);
    expect(String(recorder.named('sockserve:worker.exit')[0].reason)).toMatch(/^recycled: /);
    expect((await streamExchange(target(s), 'two\n', { halfClose: true })).toString()).toBe('TWO\n');
    expect(s.stats()).toMatchObject({ restarts: 0, errors: 0 });
  });

  test('a plain TCP health check, closed or reset with no byte either way, counts in healthChecks only and logs nothing', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Lines, { logger }));
    expect(await healthChecksThenARequest(s)).toBe('AFTER\n');
    await until(() => s.stats().active === 0, 5000);
    expect(s.stats()).toMatchObject({ accepted: 3, healthChecks: 2, errors: 0, clientErrors: 0, rejected: 0 });
    expect([...logger.lines.error, ...logger.lines.warn]).toEqual([]);
  });

  test('clients that reset as soon as they connect: every connection.open has its request.end and connection.close, and the others publish nothing', async () => {
    // Where a child accepted a connection whose client had reset first (no address left), it published
    // connection.open and .close with no request.end, 384 of 1,000 (hostile run); the server's process publishes
    // nothing of such a health check.
    recorder = recordEvents();
    const s = serve(await bootstrap(m.Lines));
    const N = 100;
    await Promise.all(Array.from({ length: N }, async () => {
      const socket = await within(5000, 'connect', connect(target(s)));
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
    }));
    // A client that reset before the server accepted it is counted accepted at once, and its verdict (a health
    // check, no byte) comes one read later, while it counts in no other figure: waited for, every one, whatever it was.
    const verdicts = () => s.stats().healthChecks + s.stats().clientErrors + s.stats().errors;
    await until(() => s.stats().accepted === N && verdicts() === N && s.stats().active === 0, 15000);
    await until(() => recorder!.named('sockserve:connection.close').length === recorder!.named('sockserve:connection.open').length, 5000);
    const [opened, ended, closed] = ['connection.open', 'request.end', 'connection.close'].map((name) => recorder!.named(`sockserve:${name}`).length);
    expect({ ended, closed }).toEqual({ ended: opened, closed: opened });
    expect(s.stats()).toMatchObject({ accepted: N, healthChecks: N, errors: 0 });
  });

  test('messages handled by @OnMessage in a worker are counted, and are not published in the main process', async () => {
    recorder = recordEvents();
    const s = serve(await bootstrap(m.Messages));
    expect((await streamExchange(target(s), 'x\ny\n', { halfClose: true })).toString()).toBe('X\nY\n');
    await until(() => s.stats().messages === 2 && s.stats().workers[0]?.requests === 1);
    expect(s.stats()).toMatchObject({ messages: 2, bytesIn: 4, bytesOut: 4, errors: 0 });
    expect(recorder.named('sockserve:message')).toEqual([]); // published in the worker, where messages are read
  });
});

describe('observability of workers that retire', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([]));
  const afterEachUnsubscribe: Array<() => void> = [];
  afterEach(() => afterEachUnsubscribe.splice(0).forEach((stop) => stop()));

  test('a worker retired after its one connection (perRequest) sends its last report first: its messages are counted', async () => {
    const exits: Array<Record<string, unknown>> = [];
    const onExit = (m: unknown) => void exits.push(m as Record<string, unknown>);
    dc.subscribe('sockserve:worker.exit', onExit);
    afterEachUnsubscribe.push(() => dc.unsubscribe('sockserve:worker.exit', onExit));
    const s = serve(await bootstrap(ObservedPerRequestMessages));
    for (const line of ['a', 'b', 'c']) {
      expect((await streamExchange(target(s), `${line}\n`, { halfClose: true })).toString()).toBe(`${line.toUpperCase()}\n`);
    }
    await until(() => s.stats().messages === 3 && s.stats().active === 0);
    expect(s.stats()).toMatchObject({ messages: 3, accepted: 3, errors: 0, restarts: 0 });
    await until(() => exits.length >= 3);
    // The pool says it ended them on purpose, which is no crash. (The first, started at bootstrap only to prove the module loads, too.)
    expect(exits.every((e) => /^retired: /.test(String(e.reason)))).toBe(true);
  });
});

describe('a tracer preloaded with --require', () => {
  test('runs in worker threads and child processes too, and the tracing channel wraps each request where it runs', async () => {
    const root = path.join(__dirname, '..', '..');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--require', './test/fixtures/tracer-preload.js', ...TS_LOADER, 'test/fixtures/traced-handlers.ts'], { cwd: root, timeout: 60000 },
        (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }));
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const main = /^main: pid (\d+) traced 0$/.exec(lines[2]);
    expect(main).not.toBeNull(); // the requests ran in the workers: none was traced in the main thread
    expect(lines[0]).toMatch(new RegExp(`^TracedThread: pid ${main![1]} thread [1-9]\\d* traced 1$`));
    expect(lines[1]).toMatch(/^TracedChild: pid \d+ thread 0 traced 1$/);
    expect(lines[1]).not.toContain(`pid ${main![1]} `);
  }, 75000); // TypeScript loading and three runtimes starting on a busy machine; the child itself is bounded at 60 s
});

describe('the observe sample', () => {
  test.each([
    { mode: '@Concurrent', args: ['2'] },
    { mode: '@Threading (the subscriber in the main thread)', args: ['2', 'threading'] },
  ])('prints a summary line every second with connections, requests/s, p50/p99 and errors by kind, and exits 0: $mode', async ({ args }) => {
    const root = path.join(__dirname, '..', '..');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [...TS_LOADER, path.join(root, 'samples', 'observe.ts'), ...args], { cwd: root, timeout: 30000 },
        (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }));
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l).toMatch(/^connections \d+ \| requests\/s \d+ \| p50 \d+\.\d\d ms p99 \d+\.\d\d ms \| errors: handler \d+, client \d+, tls 0, proxy 0 \| in \d+ B out \d+ B$/);
    }
    expect(Number(/requests\/s (\d+)/.exec(lines[1])![1])).toBeGreaterThan(0);
  }, 45000); // a process loading TypeScript on a busy machine; the child itself is bounded at 30 s
});

describe('observability of datagrams and lifecycle', () => {
  const serve = servingInTests<Server>();

  test('a datagram request counts its bytes in and the reply\'s bytes out', async () => {
    @UdpServer(0) @Concurrent()
    class Upper {
      @Handle() h(req: DatagramRequest) { return req.wfile.write(req.data.toString().toUpperCase() + '!'); }
    }
    const s = serve(await bootstrap(Upper));
    expect((await datagramExchange(target(s), 'ping')).data.toString()).toBe('PING!');
    await until(() => s.stats().bytesOut === 5);
    expect(s.stats()).toMatchObject({ accepted: 1, bytesIn: 4, bytesOut: 5 });
  });

  test.each([
    { mode: '@Threading', Handler: ObservedThreadDatagrams },
    { mode: '@Forking', Handler: ObservedChildDatagrams },
  ])('a datagram served by a worker in $mode mode counts its bytes in and its reply\'s bytes out once', async ({ Handler }) => {
    const s = serve(await bootstrap(Handler));
    expect((await datagramExchange(target(s), 'ping')).data.toString()).toBe('PING!');
    await until(() => s.stats().bytesOut === 5 && s.stats().workers[0]?.requests === 1);
    expect(s.stats()).toMatchObject({ accepted: 1, bytesIn: 4, bytesOut: 5, errors: 0 });
  });

  test('a serverClass\'s own logger is kept when bootstrap() is given none', async () => {
    const lines: string[] = [];
    class Logged extends TCPServer {
      logger = { error: (m: string) => lines.push(`error ${m}`), warn: (m: string) => lines.push(`warn ${m}`), info: (m: string) => lines.push(`info ${m}`), debug: () => undefined };
    }
    @TcpServer(0)
    class Failing { @Handle() h() { throw new Error('from the handler'); } }
    const s = serve(await bootstrap(Failing, { serverClass: Logged }));
    await streamExchange(target(s), 'x\n', { halfClose: true });
    await until(() => lines.some((l) => l.startsWith('error')));
    expect(lines[0]).toMatch(/^info Failing: listening on 127\.0\.0\.1:\d+ \(serial\)$/);
    expect(lines[1]).toMatch(/^error -{40}\nException occurred during processing of request from 127\.0\.0\.1:\d+\nError: from the handler\n/);
  });

  test('a serial server\'s draining line counts the connections accepted and waiting for their turn, besides the one in flight', async () => {
    const logger = memoryLogger();
    let began!: () => void;
    const inFlight = new Promise<void>((resolve) => (began = resolve));
    @TcpServer(0)
    class OneAtATime { @Handle() async h(req: StreamRequest) { began(); await req.wfile.write(await req.rfile.readline()); } }
    const s = serve(await bootstrap(OneAtATime, { logger }));
    const first = await within(5000, 'connect', connect(target(s)));
    const waiting = await within(5000, 'connect', Promise.all([connect(target(s)), connect(target(s))]));
    try {
      await within(5000, 'the first request', inFlight);
      await until(() => s.classicServer.queuedRequests === 2, 5000);
      const drained = s.shutdown();
      // Before: "draining 1 request in flight", and the two then served looked lost (new-user run).
      expect(logger.lines.info).toContain('OneAtATime: shutting down; draining 1 request in flight and 2 accepted, waiting to be served');
      first.end('a\n');
      waiting.forEach((c, i) => c.end(`w${i}\n`));
      await within(10000, 'shutdown', drained);
    } finally {
      [first, ...waiting].forEach((c) => c.destroy());
    }
  });

  test('listening, draining and closing are logged at info; a logger without info or warn still works', async () => {
    const logger = memoryLogger();
    @TcpServer(0)
    class Quiet { @Handle() h() { return undefined; } }
    const s = await bootstrap(Quiet, { logger });
    const loop = s.serveForever(0.05);
    await s.shutdown();
    await loop;
    await s.close();
    expect(logger.lines.info).toEqual([
      expect.stringMatching(/^Quiet: listening on 127\.0\.0\.1:\d+ \(serial\)$/),
      'Quiet: shutting down; draining 0 requests in flight',
      'Quiet: closed',
    ]);

    const only: string[] = [];
    @TcpServer(0)
    class Waiting { @Handle() async h(req: StreamRequest) { await req.rfile.readline(); } }
    const partial = serve(await bootstrap(Waiting, { logger: { error: (m) => only.push(m) }, requestTimeout: 0.1 }));
    const socket = await within(5000, 'connect', connect(target(partial)));
    try {
      await within(5000, 'the idle connection to be closed', readToEnd(socket));
    } finally {
      socket.destroy();
    }
    await until(() => only.length === 1);
    // without warn the routine line goes to error; without info the lifecycle lines are dropped
    expect(only).toEqual([expect.stringMatching(/^RequestTimeoutError from 127\.0\.0\.1:\d+: /)]);
  });
});
