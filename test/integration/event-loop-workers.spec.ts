/**
 * Workers as event loops (API.md §3): a thread or child serves many connections at once, connections
 * go to the worker with the fewest, none is ever left unserved, faults end only the dead worker's own
 * connections, and every accepted connection is served across a graceful shutdown.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { bootstrap, Server, WorkerCrashedError } from '../../src';
import { canTransferTcpSockets, workerAcceptMechanism } from '../../src/runtime';
import {
  BareChild, BareConcurrent, BareThread, CappedChild, HangingHookChild, HangingHookConcurrent, HangingHookThread, HOSTILE_KINDS, CappedThread, OneChild, YoungSizedChild, YoungSizedThread, ChildPerConnection, errorsOf, handledInWorkers, RecycledChild, RecycledThread, ThreadPerConnection, TwoChildren, TwoThreads,
} from '../fixtures/event-loop-handlers';
import { connect, readToEnd, streamExchange, Target, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { recordEvents } from '../helpers/events';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}
const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 15000 }).then(String);

/** The first line the server sends on `socket`. */
function firstLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d;
      const nl = got.indexOf('\n');
      if (nl >= 0) {
        socket.off('data', onData);
        resolve(got.slice(0, nl));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before a line (got ${JSON.stringify(got)})`)));
  });
}

/** `n` keep-alive clients, each served at once (its first line arrives while all stay connected). */
async function keepAlive(s: Server, n: number): Promise<{ clients: net.Socket[]; workers: string[] }> {
  const clients = await Promise.all(Array.from({ length: n }, () => within(5000, 'connect', connect(target(s)))));
  clients.forEach((c) => c.on('error', () => undefined));
  const lines = clients.map((c) => within(15000, 'a keep-alive client to be served', firstLine(c)));
  clients.forEach((c) => c.write('keep\n'));
  return { clients, workers: await Promise.all(lines) };
}

afterAll(() => fs.rmSync(handledInWorkers, { force: true }));

const modes = [
  { mode: 'threads', Two: TwoThreads, Bare: BareThread, PerConnection: ThreadPerConnection, Recycled: RecycledThread, workersAccept: () => workerAcceptMechanism().threadingTcp === 'worker-accepts' },
  { mode: 'children', Two: TwoChildren, Bare: BareChild, PerConnection: ChildPerConnection, Recycled: RecycledChild, workersAccept: () => workerAcceptMechanism().forkingTcp === 'worker-accepts' },
];

describe.each(modes)('workers as event loops ($mode)', ({ Two, Bare, PerConnection, Recycled, workersAccept }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => [Two, PerConnection, Recycled].forEach((c) => (errorsOf(c).length = 0)));
  const start = async (h: Function, opts = {}) => serve(await bootstrap(h as never, opts));

  test('six keep-alive clients on a pool of two are all served at once, three and three where the main thread places them', async () => {
    const s = await start(Two);
    const { clients, workers } = await keepAlive(s, 6);
    try {
      const counts = [...new Set(workers)].map((w) => workers.filter((x) => x === w).length);
      // Fewest open connections first where the main thread places them; where the workers accept
      // themselves the kernel spreads them (SO_REUSEPORT hashes, a shared socket wakes whichever is free).
      if (workersAccept()) expect(counts.reduce((a, b) => a + b, 0)).toBe(6);
      else expect(counts.sort()).toEqual([3, 3]);
      expect(s.stats().workers.length).toBe(2); // the pool stays at its size
      const replies = clients.map((c) => within(15000, 'reply', readToEnd(c)));
      clients.forEach((c, i) => c.end(`bye ${i}\n`));
      expect((await Promise.all(replies)).map(String)).toEqual(workers.map((w, i) => `${w} bye ${i}`));
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('clients that connect one after another are spread over the workers in turn where the main thread places them', async () => {
    const s = await start(Two);
    const workers: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { clients, workers: [worker] } = await keepAlive(s, 1);
      workers.push(worker);
      const reply = within(15000, 'reply', readToEnd(clients[0]));
      clients[0].end('bye\n');
      expect(String(await reply)).toBe(`${worker} bye`);
      await until(() => s.stats().active === 0, 5000); // closed before the next comes: a tie, every time
    }
    const counts = [...new Set(workers)].map((w) => workers.filter((x) => x === w).length);
    // Ties went to the first worker: it took all four (round robin now, as Node's cluster and nginx spread them).
    if (workersAccept()) expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
    else expect(counts).toEqual([2, 2]);
  });

  test('connections-per-worker 1 grows the pool to its max, then shares the least-loaded worker, counted oversubscribed', async () => {
    const s = await start(PerConnection);
    const { clients, workers } = await keepAlive(s, 3);
    try {
      expect(new Set(workers.slice(0, 2)).size).toBe(2); // one worker per connection up to max (2)
      expect(s.stats().workers.length).toBe(2);
      expect(s.stats().oversubscribed).toBe(1); // the third shares a worker rather than wait
      const replies = clients.map((c) => within(15000, 'reply', readToEnd(c)));
      clients.forEach((c) => c.end('bye\n'));
      expect((await Promise.all(replies)).map(String)).toEqual(workers.map((w) => `${w} bye`));
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('a worker that dies ends only its own connections, each reported as WorkerCrashedError; the other worker\'s go on', async () => {
    const s = await start(Two);
    const { clients, workers } = await keepAlive(s, 4);
    try {
      const victim = workers[0];
      const mine = clients.filter((_, i) => workers[i] === victim);
      const others = clients.filter((_, i) => workers[i] !== victim);
      const closed = mine.map((c) => within(10000, 'the dead worker\'s connection to close', readToEnd(c)));
      // A fresh connection goes to the worker with the fewest connections; both have two, so ask the victim
      // through one of its own: its next line makes it exit.
      mine[0].write('exit\n');
      await Promise.all(closed);
      await until(() => errorsOf(Two).length === mine.length, 10000);
      for (const e of errorsOf(Two)) expect(e).toBeInstanceOf(WorkerCrashedError);
      const replies = others.map((c) => within(15000, 'reply', readToEnd(c)));
      others.forEach((c) => c.end('still here\n'));
      expect((await Promise.all(replies)).map(String)).toEqual(others.map((c) => `${workers[clients.indexOf(c)]} still here`));
      await until(() => s.stats().workers.length === 2 && s.stats().restarts === 1, 10000); // replaced
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('a recycled worker whose connections all stay open is ended after shutdownTimeout (it served on for ever)', async () => {
    const s = await start(Recycled, { shutdownTimeout: 1 });
    const { clients } = await keepAlive(s, 2); // its count: it retires, and both connections stay open, idle
    try {
      // Before: the bound was armed only when one of several connections ended; these never do.
      await Promise.all(clients.map((c) => within(6000, 'the recycled worker to end its connection', readToEnd(c))));
      await until(() => s.stats().workers.length === 1, 10000);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('maxConnections per worker recycles it without dropping a connection', async () => {
    const s = await start(Recycled);
    const { clients, workers } = await keepAlive(s, 2); // the first worker's two connections: it retires
    try {
      // A fresh worker takes the next ones while the first still serves its two. Where children accept
      // themselves, the first stops at its count by itself; its successor started at half of it.
      const third = { clients: [] as net.Socket[], workers: [] as string[] };
      const last = () => third.workers[third.workers.length - 1];
      const deadline = Date.now() + 15000;
      do {
        if (third.workers.length > 0) {
          expect(workersAccept()).toBe(true); // where the main thread places them, the first takes no more
          await new Promise((r) => setTimeout(r, 100));
        }
        const one = await keepAlive(s, 1);
        third.clients.push(...one.clients);
        third.workers.push(...one.workers);
      } while (last() === workers[0] && Date.now() < deadline);
      expect(last()).not.toBe(workers[0]);
      const all = [...clients, ...third.clients];
      const names = [...workers, ...third.workers];
      const replies = all.map((c) => within(15000, 'reply', readToEnd(c)));
      all.forEach((c) => c.end('bye\n'));
      expect((await Promise.all(replies)).map(String)).toEqual(names.map((w) => `${w} bye`));
      // The recycled one exited once its connections ended. Where children accept, the successor's own
      // successor (started at half its count) may be there too, until it has been idle for workerIdleTimeout.
      await until(() => !s.stats().workers.some((w) => String(w.id) === workers[0]), 10000);
      expect(s.stats().workers.length).toBeLessThanOrEqual(workersAccept() ? 2 : 1);
      expect(errorsOf(Recycled)).toEqual([]);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('await req.server.shutdown() in a worker resolves once every other request is done, and the server stops', async () => {
    const s = await start(Two);
    const arrived: string[] = [];
    const slow = ask(s, 'slow 600\n').then((r) => (arrived.push('slow'), r));
    await until(() => s.stats().active === 1, 10000); // the slow request is running in a worker
    const stopper = ask(s, 'shutdown\n').then((r) => (arrived.push('shutdown'), r));
    expect(await within(15000, 'both replies', Promise.all([slow, stopper]))).toEqual(['done', 'bye']);
    expect(arrived).toEqual(['slow', 'shutdown']); // the shutdown waited for the other request, not for itself
    await within(10000, 'serveForever to return', serve.loopOf(s));
  });

  test('a connection shutdownTimeout cuts off in its worker ends once, with a RequestTimeoutError, its bytes counted (new-user run: a child\'s were lost)', async () => {
    const recorder = recordEvents();
    try {
      const s = await start(Two, { shutdownTimeout: 0.5 });
      const client = await within(5000, 'connect', connect(target(s)));
      client.on('error', () => undefined);
      const hanging = within(10000, 'the handler to start', firstLine(client));
      client.write('hang\n');
      expect(await hanging).toBe('hanging');
      await within(15000, 'shutdown', s.shutdown());
      await until(() => recorder.named('sockserve:connection.close').length === 1, 5000);
      const [closed] = recorder.named('sockserve:connection.close');
      expect([closed.bytesIn, closed.bytesOut]).toEqual([5, 8]); // 'hang\n' in, 'hanging\n' out
      expect([s.stats().bytesIn, s.stats().bytesOut]).toEqual([5, 8]);
      expect(s.stats().clientErrors).toBe(1);
      expect(errorsOf(Two).map((e) => e.name)).toEqual(['RequestTimeoutError']);
      expect(recorder.named('sockserve:request.end')).toHaveLength(1);
      client.destroy();
    } finally {
      recorder.stop();
    }
  });

  test('two requests that both await req.server.shutdown() each get their reply, neither waiting for the other', async () => {
    const s = await start(Two);
    const clients = await Promise.all([0, 1].map(() => within(10000, 'connect', connect(target(s)))));
    try {
      await until(() => s.stats().active === 2, 10000); // both requests are running in workers, reading their line
      const replies = clients.map((c) => within(15000, 'reply before shutdownTimeout', readToEnd(c)));
      clients.forEach((c) => c.end('shutdown\n'));
      expect((await Promise.all(replies)).map(String)).toEqual(['bye', 'bye']);
      await within(10000, 'serveForever to return', serve.loopOf(s));
      expect(errorsOf(Two)).toEqual([]);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('shutdown() with 50 one-second requests in flight gives 50 replies', async () => {
    const s = await start(Two);
    const clients = await Promise.all(Array.from({ length: 50 }, () => within(10000, 'connect', connect(target(s)))));
    try {
      const replies = clients.map((c) => within(30000, 'reply', readToEnd(c)));
      clients.forEach((c) => c.write('slow 1000\n'));
      await until(() => s.stats().accepted === 50, 20000); // every one taken by the loop (most still running)
      expect(s.stats().active).toBeGreaterThan(0);
      await within(20000, 'shutdown', s.shutdown());
      expect((await Promise.all(replies)).map(String)).toEqual(clients.map(() => 'done'));
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('shutdown()\'s "draining N requests" line counts every open connection, those a child accepted itself included', async () => {
    const logger = memoryLogger();
    const s = await start(Two, { logger });
    await new Promise((resolve) => setTimeout(resolve, 500)); // a child's records are then read every 200 ms, not every 20
    const { clients, workers } = await keepAlive(s, 6);
    try {
      // Nothing that reads the pool's records (stats()) before shutdown: a child's records of the connections
      // it accepted were read every 20 ms to 1 s, and the line said 0 when they had not been read yet.
      const replies = clients.map((c) => within(15000, 'reply', readToEnd(c)));
      const down = s.shutdown();
      expect(logger.lines.info).toContain(`${Two.name}: shutting down; draining 6 requests in flight`);
      // Shutdown stops reading: each handler's next readline() is empty, and its reply ends the connection.
      expect((await Promise.all(replies)).map(String)).toEqual(workers.map((w) => `${w} `));
      await within(15000, 'shutdown', down);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });

  test('ten writes the handler did not await all arrive, in order (where the worker owns the socket, or through the relay)', async () => {
    const s = await start(Two);
    const owned = Two === TwoChildren || canTransferTcpSockets();
    expect(await ask(s, 'where\n')).toBe(owned ? 'owned' : 'relayed');
    expect(await ask(s, 'burst 10\n')).toBe(Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join(''));
  });

  test('a thousand ping-pong replies on one keep-alive connection, each an awaited small write', async () => {
    await pingPong(serve(await bootstrap(Two)), 1000);
  });

  test('a client reset reaches the server\'s handleError with its code (ECONNRESET or EPIPE) across the worker boundary', async () => {
    const s = await start(Two);
    const seen: unknown[] = [];
    s.classicServer.handleError = (_r, _a, e) => void seen.push(e);
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    const flooding = within(10000, 'the handler to start writing', firstLine(client));
    client.write('flood\n');
    await flooding;
    client.resetAndDestroy();
    await until(() => seen.length === 1, 10000);
    expect(['ECONNRESET', 'EPIPE']).toContain((seen[0] as NodeJS.ErrnoException).code);
  });

  test('@HandleError runs in the worker for a hook\'s error; the server counts it and does not run it again', async () => {
    fs.rmSync(handledInWorkers, { force: true });
    const s = await start(Two);
    expect(await ask(s, 'throw\n')).toBe('');
    await until(() => s.stats().errors === 1, 10000);
    expect(fs.readFileSync(handledInWorkers, 'utf8')).toMatch(/^\d+ thrown by the handler\n$/);
    expect(errorsOf(Two)).toEqual([]);
    expect(await ask(s, 'next\n')).toMatch(/^\d+ next$/);
  });

  test('a thrown undefined, string or plain object is counted and logged once, as the server\'s own process reports it (an object with its fields)', async () => {
    const logger = memoryLogger();
    const s = await start(Bare, { logger });
    expect(await ask(s, 'throw-undefined\n')).toBe('');
    await until(() => s.stats().errors === 1 && logger.lines.error.length === 1, 10000);
    expect(logger.lines.error[0]).toMatch(/Exception occurred during processing of request from 127\.0\.0\.1:\d+\nundefined\n-{40}$/);
    expect(await ask(s, 'throw-text\n')).toBe('');
    await until(() => s.stats().errors === 2 && logger.lines.error.length === 2, 10000);
    expect(logger.lines.error[1]).toMatch(/\na thrown string\n-{40}$/);
    expect(await ask(s, 'throw-object\n')).toBe('');
    await until(() => s.stats().errors === 3 && logger.lines.error.length === 3, 10000);
    expect(logger.lines.error[2]).toMatch(/\n\{ code: 42 \}\n-{40}$/); // its fields, as Node prints one uncaught; was [object Object]
    expect(await ask(s, 'next\n')).toMatch(/^\d+ next$/);
    expect(s.stats().errors).toBe(3);
  });

  test('@HandleError runs once, in the worker, for a thrown undefined, string or object that is no Error', async () => {
    fs.rmSync(handledInWorkers, { force: true });
    const logger = memoryLogger();
    const s = await start(Two, { logger });
    expect(await ask(s, 'throw-undefined\n')).toBe('');
    expect(await ask(s, 'throw-text\n')).toBe('');
    expect(await ask(s, 'throw-object\n')).toBe(''); // ran a second time, in the server's process (hostile run)
    await until(() => s.stats().errors === 3, 10000);
    expect(fs.readFileSync(handledInWorkers, 'utf8').split('\n').map((l) => l.replace(/^\d+ /, ''))).toEqual(['undefined', 'a thrown string', '[object Object]', '']);
    expect(errorsOf(Two)).toEqual([]);
    expect(logger.lines.error).toEqual([]);
  });

  test('a @HandleError that throws in the worker runs once; the server counts the error once and logs the hook\'s failure', async () => {
    fs.rmSync(handledInWorkers, { force: true });
    const logger = memoryLogger();
    const s = await start(Two, { logger });
    expect(await ask(s, 'throw-hook-fails\n')).toBe('');
    await until(() => logger.lines.error.length === 1, 10000);
    expect(logger.lines.error[0]).toContain('Error: @HandleError failed');
    expect(fs.readFileSync(handledInWorkers, 'utf8')).toMatch(/^\d+ the hook fails on this\n$/);
    expect(errorsOf(Two)).toEqual([]);
    expect(s.stats().errors).toBe(1);
    expect(await ask(s, 'next\n')).toMatch(/^\d+ next$/);
    expect(logger.lines.error).toHaveLength(1);
  });
});

// Whatever a handler throws is reported, and no process or worker dies of reading it (errors/thrown.ts).
describe.each([
  { mode: '@Concurrent', Handler: BareConcurrent },
  { mode: '@Threading', Handler: BareThread },
  { mode: '@Forking', Handler: BareChild },
])('a hostile thrown value ($mode)', ({ Handler }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test.each(HOSTILE_KINDS)('%s: counted once, logged once, and the server and its worker serve on', async (kind) => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(Handler as never, { logger }));
    expect(await ask(s, `throw-hostile ${kind}\n`)).toBe('');
    await until(() => s.stats().errors === 1 && logger.lines.error.length === 1, 10000);
    expect(logger.lines.error[0]).toMatch(/^-{40}\nException occurred during processing of request from 127\.0\.0\.1:\d+\n/);
    expect(await ask(s, 'next\n')).toMatch(/^\d+ next$/);
    expect(s.stats()).toMatchObject({ errors: 1, restarts: 0 });
  });
});

// A @HandleError that never settles is waited for shutdownTimeout seconds, no longer, wherever it runs: in the
// server's process (handler-wiring.ts) or in the worker where the error arose (executors.ts).
describe.each([
  { mode: '@Concurrent', Handler: HangingHookConcurrent },
  { mode: '@Threading', Handler: HangingHookThread },
  { mode: '@Forking', Handler: HangingHookChild },
])('a @HandleError that never settles ($mode)', ({ Handler }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test('after shutdownTimeout the connection closes, the server says the hook did not settle, and serves on', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(Handler as never, { logger, shutdownTimeout: 1 }));
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    const ended = readToEnd(client).catch(() => Buffer.alloc(0));
    client.write('throw\n');
    await within(10000, 'the connection closed once the hook was given up', ended);
    await until(() => logger.lines.error.some((l) => l.includes('@HandleError did not settle within 1 s')), 10000);
    expect(logger.lines.error).toHaveLength(1);
    expect(logger.lines.error[0]).toContain('The error it was given:\nError: thrown by the handler');
    await until(() => s.stats().active === 0, 5000);
    expect(s.stats()).toMatchObject({ errors: 1, active: 0, restarts: 0 });
    expect(await ask(s, 'next\n')).toMatch(/^\d+ next$/);
    const t0 = Date.now();
    await within(15000, 'shutdown() to resolve', s.shutdown());
    await within(15000, 'serveForever() to return', serve.loopOf(s));
    expect(Date.now() - t0).toBeLessThan(5000); // nothing is left in flight
  });
});

describe('a frozen error thrown in a worker with @HandleError', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => [TwoThreads, TwoChildren].forEach((c) => (errorsOf(c).length = 0)));

  test.each([{ mode: '@Threading', Two: TwoThreads }, { mode: '@Forking', Two: TwoChildren }])('$mode: the hook runs once, in the worker, with it', async ({ Two }) => {
    fs.rmSync(handledInWorkers, { force: true });
    const logger = memoryLogger();
    const s = serve(await bootstrap(Two, { logger }));
    expect(await ask(s, 'throw-hostile frozen\n')).toBe('');
    await until(() => s.stats().errors === 1, 10000);
    expect(fs.readFileSync(handledInWorkers, 'utf8')).toMatch(/^\d+ frozen error\n$/);
    expect(errorsOf(Two)).toEqual([]);
    expect(logger.lines.error).toEqual([]);
  });
});

describe('resourceLimits', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => (errorsOf(CappedThread).length = 0));

  test('a thread past its heap cap dies alone, is reported as WorkerCrashedError, and replaced', async () => {
    const s = serve(await bootstrap(CappedThread));
    expect(await ask(s, 'hog\n')).toBe('');
    await until(() => errorsOf(CappedThread).length === 1, 20000);
    expect(errorsOf(CappedThread)[0]).toBeInstanceOf(WorkerCrashedError);
    expect(await ask(s, 'after\n')).toMatch(/^\d+ after$/);
  });

  // A child past its cap dies as any killed child does (tested above); its OOM report on the inherited
  // stderr would read to jest as its own worker running out of memory, so here the cap itself is checked.
  // heap_size_limit is the old generation plus the young one: 48 MB + 6 MB, sockserve's default young
  // generation for a worker (V8's own would be 48 MB on Node 20, 192 MB on Node 24), on every line.
  test.each([
    { mode: 'a child', Handler: CappedChild },
    { mode: 'a thread', Handler: CappedThread },
  ])('$mode gets maxOldGenerationSizeMb as its old generation, and a 6 MB young generation by default', async ({ Handler }) => {
    const s = serve(await bootstrap(Handler));
    expect(Number(await ask(s, 'heaplimit\n'))).toBe((48 + 6) * 2 ** 20);
  });

  test.each([
    { mode: 'a child', Handler: YoungSizedChild },
    { mode: 'a thread', Handler: YoungSizedThread },
  ])('$mode gets maxYoungGenerationSizeMb as its young generation', async ({ Handler }) => {
    const s = serve(await bootstrap(Handler));
    expect(Number(await ask(s, 'heaplimit\n'))).toBe((48 + 24) * 2 ** 20);
  });
});

describe('a child that dies before taking its connections (the main thread hands them over)', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  beforeEach(() => (process.env.SOCKSERVE_WORKER_ACCEPT = '0'));
  afterEach(() => {
    delete process.env.SOCKSERVE_WORKER_ACCEPT;
    errorsOf(OneChild).length = 0;
  });

  test('the connections handed to it that it never took go to its replacement and are served; its own ends with a WorkerCrashedError', async () => {
    const s = serve(await bootstrap(OneChild));
    const spinner = await within(10000, 'connect', connect(target(s)));
    const spun = readToEnd(spinner).catch(() => Buffer.alloc(0));
    spinner.write('spin\n'); // the child's event loop blocks: it takes no more connections
    await until(() => s.stats().active === 1, 10000);
    const late = await Promise.all([0, 1, 2].map(() => within(10000, 'connect', connect(target(s)))));
    try {
      const replies = late.map((c) => readToEnd(c).then(String, () => ''));
      late.forEach((c, i) => c.on('error', () => undefined).end(`late ${i}\n`));
      await until(() => s.stats().accepted === 4 && s.stats().active === 4, 10000); // all four given to the child
      process.kill(s.stats().workers[0].id, 'SIGKILL');
      // Before: each was closed with the dead child (a WorkerCrashedError each), its request never read.
      // One the child took before its loop blocked (a race with the spin) is its own, and ends as the spinner's does.
      const got = (await within(20000, 'every connection answered or closed', Promise.all(replies))).map((reply) => reply.replace(/^\S+ /, ''));
      const served = got.filter((reply, i) => reply === `late ${i}`).length;
      expect(got.filter((reply, i) => reply !== `late ${i}`)).toEqual(Array(3 - served).fill(''));
      expect(served).toBeGreaterThanOrEqual(1); // 0 before
      await within(15000, 'the spinner\'s connection closed', spun);
      await until(() => errorsOf(OneChild).length === 1 + 3 - served, 10000);
      expect(errorsOf(OneChild)).toEqual(Array(1 + 3 - served).fill(expect.any(WorkerCrashedError)));
    } finally {
      [spinner, ...late].forEach((c) => c.destroy());
    }
  }, 90000); // its own waits are bounded at 65 s together: jest's 20 s cut it short on a loaded CI machine, its child left spinning
});

describe('threads on the relay path (no socket transfer)', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  beforeEach(() => (process.env.SOCKSERVE_SOCKET_TRANSFER = '0'));
  afterEach(() => delete process.env.SOCKSERVE_SOCKET_TRANSFER);

  test('ten writes the handler did not await all arrive, in order, through the relay', async () => {
    const s = serve(await bootstrap(TwoThreads));
    expect(await ask(s, 'where\n')).toBe('relayed');
    expect(await ask(s, 'burst 10\n')).toBe(Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join(''));
  });

  // Each write counts at least WRITE_COST_MIN (1 KiB) against the relay's window: 256 small writes fill it.
  // They were answered by bytes (64 each), never, so the 257th reply never came (2026-12-03).
  test('a thousand ping-pong replies on one connection, far past the window in small writes', async () => {
    await pingPong(serve(await bootstrap(TwoThreads)), 1000);
  });

  // A write of nothing the thread waited on (the one that took its window past half) was never answered.
  test('a thousand replies each followed by an awaited write of nothing', async () => {
    await pingPong(serve(await bootstrap(TwoThreads)), 1000, 'echo empty');
  });

  test('a client reset keeps its code through the relay, both ways', async () => {
    const s = serve(await bootstrap(TwoThreads));
    const seen: unknown[] = [];
    s.classicServer.handleError = (_r, _a, e) => void seen.push(e);
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    const flooding = within(10000, 'the handler to start writing', firstLine(client));
    client.write('flood\n');
    await flooding;
    client.resetAndDestroy();
    await until(() => seen.length === 1, 10000);
    expect(['ECONNRESET', 'EPIPE']).toContain((seen[0] as NodeJS.ErrnoException).code);
  });
});

/** `n` lines sent one at a time on one connection (the fixtures' `echo` command), each echoed before the next goes. */
async function pingPong(s: Server, n: number, command = 'echo'): Promise<void> {
  const client = await within(5000, 'connect', connect(target(s)));
  client.setEncoding('utf8');
  let got = '';
  let wake: (() => void) | undefined;
  client.on('data', (d: string) => ((got += d), wake?.()));
  const replyTo = (line: string) => new Promise<void>((resolve) => (wake = () => got.endsWith(line) && resolve())).then(() => void (got = ''));
  client.write(`${command}\n`);
  for (let i = 1; i <= n; i++) {
    const line = `${String(i).padStart(4, '0')} ${'x'.repeat(58)}\n`;
    const answered = replyTo(line);
    client.write(line);
    await within(5000, `reply ${i}`, answered);
  }
  client.end();
  await within(5000, 'the end', readToEnd(client));
  expect(s.stats().errors).toBe(0);
}
