import 'reflect-metadata';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { bootstrap, Concurrent, Handle, HandleError, Server, StreamRequest, TcpServer, UdpServer, Verify, DatagramRequest } from '../../src';
import type { Logger } from '../../src';
import { TCPServer } from '../../src/classic';
import { connect, datagramExchange, readToEnd, streamExchange, within } from '../helpers/clients';
import { recordEvents } from '../helpers/events';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
];

function target(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}

/** A logger that keeps every line by level. */
function memoryLogger(): Logger & { lines: Record<'error' | 'warn' | 'info' | 'debug', string[]> } {
  const lines = { error: [] as string[], warn: [] as string[], info: [] as string[], debug: [] as string[] };
  return {
    lines,
    error: (m) => lines.error.push(m),
    warn: (m) => lines.warn.push(m),
    info: (m) => lines.info.push(m),
    debug: (m) => lines.debug.push(m),
  };
}

/** Sends a line, then resets the connection (RST) while the handler waits for the next one. */
async function resetWhileWaiting(s: Server, line: string): Promise<void> {
  const socket = await within(5000, 'connect', connect(target(s)));
  socket.on('error', () => undefined);
  socket.write(line);
  await new Promise((r) => socket.once('data', r)); // the handler answered and waits again
  socket.resetAndDestroy();
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
});

describe('the observe sample', () => {
  test('prints a summary line every second with connections, requests/s, p50/p99 and errors by kind, and exits 0', async () => {
    const root = path.join(__dirname, '..', '..');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'samples', 'observe.ts'), '2'], { cwd: root, timeout: 30000 },
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
  }, 45000); // starting ts-node on a busy machine; the child itself is bounded at 30 s
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
