import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as net from 'node:net';
import { bootstrap, ConfigurationError, RequestTimeoutError, Server, WorkerCrashedError } from '../../src';
import { canTransferTcpSockets } from '../../src/runtime';
import {
  ElasticTcp, fixtureDir, makeLocalHandler, PerRequestSingleTcp, PerRequestTcp, SingleThreadTcp, SlowReportTcp, ThreadedTcp, ThreadedTcp6, ThreadedUdp,
  ThreadedUnixDatagram, ThreadedUnixStream,
} from '../fixtures/threaded-handlers';
import {
  connect, datagramExchange, datagramSilence, readToEnd, requestAcrossShutdown, streamExchange, Target, within,
} from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { recordEvents } from '../helpers/events';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

const providers = [{ provide: 'suffix', useValue: '!' }];

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}

// These tests are about the main thread's placement (least-loaded thread) and its hand-over or relay;
// threads that accept themselves with reusePort (Node 22.12+) are test/integration/worker-accept.spec.ts's.
beforeAll(() => {
  fs.mkdirSync(fixtureDir, { recursive: true });
  process.env.SOCKSERVE_WORKER_ACCEPT = '0';
});
afterAll(() => {
  fs.rmSync(fixtureDir, { recursive: true, force: true });
  delete process.env.SOCKSERVE_WORKER_ACCEPT;
});

const cases = [
  { name: 'TCP', handler: ThreadedTcp, stream: true },
  { name: 'TCP ::1', handler: ThreadedTcp6, stream: true },
  { name: 'Unix stream', handler: ThreadedUnixStream, stream: true },
  { name: 'UDP', handler: ThreadedUdp, stream: false },
  { name: 'Unix datagram', handler: ThreadedUnixDatagram, stream: false },
];

describe.each(cases)('@Threading over $name', ({ handler, stream }) => {
  let server: Server | undefined;
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  const exchange = async (payload: string) =>
    stream ? (await streamExchange(target(server!), payload, { halfClose: true, ms: 10000 })).toString()
      : (await datagramExchange(target(server!), payload, fixtureDir, 10000)).data.toString();

  test('runs the handler in a worker thread, with its dependencies resolved there', async () => {
    server = await bootstrap(handler, { providers });
    serve(server);
    expect(server.stats().workers.length).toBe(2);
    const reply = await exchange('Hello, world\n');
    const m = /^Thread-(\d+): Hello, world!$/.exec(reply);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
  });

  test('CPU-bound requests run at the same time on two threads', async () => {
    server = await bootstrap(handler, { providers });
    serve(server);
    const [a, b] = (await Promise.all([exchange('burn 400\n'), exchange('burn 400\n')])).map((r) => r.split(' ').map(Number));
    expect(a[0]).not.toBe(b[0]); // two different threads
    // and their busy intervals [start, end] overlap
    expect({ a, b, overlap: a[1] < b[2] && b[1] < a[2] }).toEqual({ a, b, overlap: true });
  });

  if (stream) {
    test('a TCP connection moves into the worker where Node can transfer it; otherwise the main thread bridges it', async () => {
      server = await bootstrap(handler, { providers });
      serve(server);
      const tcp = 'host' in server.serverAddress;
      expect(await exchange('path\n')).toBe(tcp && canTransferTcpSockets() ? 'owned' : 'bridged');
      process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
      try {
        expect(await exchange('path\n')).toBe('bridged');
        expect(await exchange('big 8\n')).toHaveLength(8 * 64 * 1024);
      } finally {
        delete process.env.SOCKSERVE_SOCKET_TRANSFER;
      }
    });

    test.each(['transfer where Node can', 'bridge'])('shutdown serves a half-received request whole (%s)', async (path) => {
      if (path === 'bridge') process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
      try {
        server = await bootstrap(handler, { providers });
        serve(server);
        const s = server;
        const arrived = async () => { await until(() => s.stats().active === 1); await new Promise((r) => setTimeout(r, 100)); };
        const reply = await requestAcrossShutdown(target(s), 'Hello, ', 'world\n', arrived, () => s.shutdown());
        expect(reply).toMatch(/^Thread-\d+: Hello, world!$/);
      } finally {
        delete process.env.SOCKSERVE_SOCKET_TRANSFER;
      }
    });
  }

  test('a handler that throws ends its own request; the server keeps serving', async () => {
    server = await bootstrap(handler, { providers });
    const errors: unknown[] = [];
    server.classicServer.handleError = (_r, _a, e) => { errors.push(e); };
    serve(server);
    if (stream) expect(await exchange('throw\n')).toBe('');
    else expect(await datagramSilence(target(server), 'throw\n', fixtureDir)).toBe(true);
    await until(() => errors.length > 0, 5000);
    expect((errors[0] as Error).message).toMatch(/^thrown in thread \d+$/);
    // its stack names the line of the .ts source, not of the JavaScript the worker compiled it to (new-user run)
    expect((errors[0] as Error).stack).toContain(`threaded-handlers.ts:${sourceLine('threaded-handlers.ts', "case 'throw': throw new Error(`thrown in thread")}:`);
    expect(await exchange('next\n')).toMatch(/: next!$/);
  });
});

describe('@Threading faults and pool', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => {
    SingleThreadTcp.errors.length = 0;
    SingleThreadTcp.verified = 0;
  });
  async function start(h: abstract new (...a: any[]) => unknown, opts = {}) {
    return serve(await bootstrap(h, { providers, ...opts }));
  }
  const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 10000 }).then(String);

  test.each([
    ['process.exit()', 'exit', WorkerCrashedError, /exited with code 3/],
    ['an unhandled rejection', 'reject', WorkerCrashedError, /nobody catches this/],
  ])('a worker killed by %s fails only its request, is replaced, and the next request is served', async (_what, line, type, text) => {
    const s = await start(SingleThreadTcp);
    expect(await ask(s, `${line}\n`)).toBe('');
    await until(() => SingleThreadTcp.errors.length > 0, 5000);
    expect(SingleThreadTcp.errors[0]).toBeInstanceOf(type);
    expect(SingleThreadTcp.errors[0].message).toMatch(text);
    expect(await ask(s, 'after\n')).toMatch(/: after!$/);
    expect(s.stats().workers.length).toBe(1);
  });

  test('a handler that blocks its thread past heartbeatTimeout has the worker ended, reported as WorkerCrashedError, and replaced', async () => {
    // The heartbeat's verdict is the pool's, and says so in worker.exit's reason and the info line (it read as a
    // kill from outside: `was terminated`, `was killed by SIGKILL`).
    const logger = memoryLogger();
    const recorded = recordEvents();
    const reasons = () => recorded.named('sockserve:worker.exit').map((exit) => String(exit.reason));
    try {
      const s = await start(SingleThreadTcp, { heartbeatTimeout: 1, logger });
      expect(await ask(s, 'spin\n')).toBe('');
      await until(() => SingleThreadTcp.errors.length > 0, 5000);
      expect(SingleThreadTcp.errors[0]).toBeInstanceOf(WorkerCrashedError);
      expect(SingleThreadTcp.errors[0].message).toMatch(/did not answer a heartbeat for 1 s/);
      expect(await ask(s, 'alive\n')).toMatch(/: alive!$/);
      await until(() => reasons().length > 0, 5000);
      expect(reasons()[0]).toMatch(/^heartbeatTimeout: (was terminated|was killed by SIGKILL)$/);
      expect(logger.lines.info).toContainEqual(expect.stringMatching(/worker \d+ (was terminated|was killed by SIGKILL) by the pool: its event loop answered no heartbeat for 1 s \(heartbeatTimeout\); a new worker takes its place/));
    } finally {
      recorded.stop();
    }
  });

  test('requestTimeout is the per-read timeout, enforced in the worker: a silent client gets RequestTimeoutError and the thread lives on', async () => {
    const s = await start(SingleThreadTcp, { requestTimeout: 0.3 });
    const seen: unknown[] = [];
    s.classicServer.handleError = (_r, _a, e) => void seen.push(e);
    const client = await within(5000, 'connect', connect(target(s)));
    try {
      await within(5000, 'the server to close the silent connection', readToEnd(client));
      await until(() => seen.length > 0, 5000);
      expect(seen[0]).toBeInstanceOf(RequestTimeoutError); // its class survives the crossing
      expect(await ask(s, 'alive\n')).toMatch(/: alive!$/);
      expect(s.stats().workers.length).toBe(1);
    } finally {
      client.destroy();
    }
  });

  test('perRequest starts a fresh thread for each request', async () => {
    const s = await start(PerRequestTcp);
    const a = await ask(s, 'one\n');
    const b = await ask(s, 'two\n');
    expect(/Thread-(\d+)/.exec(a)![1]).not.toBe(/Thread-(\d+)/.exec(b)![1]);
  });

  test('perRequest with maxThreads 1: a second connection shares the busy thread instead of waiting, counted oversubscribed', async () => {
    const s = await start(PerRequestSingleTcp);
    const client = await within(5000, 'connect', connect(target(s)));
    try {
      const first = within(10000, 'first reply', readToEnd(client));
      client.write('hold\n');
      await until(() => s.stats().active === 1, 5000);
      const second = /^Thread-(\d+): second!$/.exec(await ask(s, 'second\n'));
      client.end('go\n');
      expect(second![1]).toBe((await first).toString());
      expect(s.stats().oversubscribed).toBe(1);
    } finally {
      client.destroy();
    }
  });

  test('with connectionsPerThread 1 the pool grows per connection, and threads above the warm count retire after workerIdleTimeout', async () => {
    const s = await start(ElasticTcp);
    const clients = await Promise.all([1, 2, 3].map(() => within(5000, 'connect', connect(target(s)))));
    let threads = new Set<string>();
    try {
      const replies = clients.map((c) => within(10000, 'reply', readToEnd(c)));
      clients.forEach((c) => c.write('hold\n'));
      await until(() => s.stats().active === 3, 5000);
      expect(s.stats().workers.length).toBe(3);
      clients.forEach((c) => c.end('go\n'));
      threads = new Set((await Promise.all(replies)).map(String));
      expect(threads.size).toBe(3);
    } finally {
      clients.forEach((c) => c.destroy());
    }
    await until(() => s.stats().workers.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 600)); // three more idle timeouts
    expect(s.stats().workers.length).toBe(1);
    const survivor = /^Thread-(\d+): after!$/.exec(await ask(s, 'after\n'))![1];
    expect(threads.has(survivor)).toBe(true); // one of the three, not a fresh thread spawned after retiring them all
  });

  test('threads above the warm count retire while short connections keep coming: idle threads are taken last-used first, not in turn', async () => {
    const s = await start(ElasticTcp);
    const clients = await Promise.all([1, 2, 3].map(() => within(5000, 'connect', connect(target(s)))));
    try {
      const replies = clients.map((c) => within(10000, 'reply', readToEnd(c)));
      clients.forEach((c) => c.write('hold\n'));
      await until(() => s.stats().active === 3, 5000);
      clients.forEach((c) => c.end('go\n'));
      await Promise.all(replies);
    } finally {
      clients.forEach((c) => c.destroy());
    }
    // One short connection after another (a load balancer's health checks, faster than workerIdleTimeout 0.2 s
    // for each thread in turn): given in turn, every thread stayed busy enough never to idle out. Each check starts
    // once the last one has ended on the server's side too (as checks a few milliseconds apart do): the client sees the
    // reply before the thread's news of its end reaches the pool, and a check in between finds the last-used thread
    // busy and goes to another (loaded CI: three threads kept alive by such overlaps).
    const t0 = Date.now();
    while (s.stats().workers.length > 1 && Date.now() - t0 < 5000) {
      expect(await ask(s, 'check\n')).toMatch(/^Thread-\d+: check!$/);
      await until(() => s.stats().active === 0, 2000);
    }
    expect(s.stats().workers.length).toBe(1);
  });

  test('close() while connections run in the thread: one whose reads end at the close ends as in the server\'s process; one that never returns is a routine RequestTimeoutError; serveForever returns', async () => {
    const recorded = recordEvents(); // before the start: workers are told at once that request.end is wanted
    const s = await start(SingleThreadTcp);
    const [holder, hanging] = await Promise.all([connect(target(s)), connect(target(s))]);
    try {
      holder.on('error', () => undefined);
      hanging.on('error', () => undefined);
      holder.write('hold\n'); // waits in readline(): its read ends at the close, as @Concurrent's does
      hanging.write('hang\n'); // awaits a promise that never settles
      await within(5000, 'the hanging one to say so', new Promise((r) => hanging.once('data', r)));
      await until(() => s.stats().active === 2);
      await within(5000, 'close', s.close());
      await within(5000, 'serveForever to return', serve.loopOf(s));
      // Ended on purpose by close(), as a request abandoned in the server's process is: no crash. The holder's handler
      // writes once its read has ended at the close: that write fails saying the server closed the connection, as in
      // the server's own process; it failed as the client's EPIPE ('wfile.write() on a closed connection'), reported
      // in the thread, or counted as served with its reply lost (hostile run).
      await until(() => recorded.named('sockserve:request.end').length === 2, 5000);
      // The hanging one's @HandleError runs here; the holder's runs in the thread (a socket of its own, Node 24+) or
      // here (its write reached the connection this process had closed already), and says so the thread's way or ours.
      expect(SingleThreadTcp.errors.length).toBeGreaterThanOrEqual(1);
      const byClose = /server was closed while this request was running|SingleThreadTcp's server\.close\(\) was called while the request was running/;
      for (const error of SingleThreadTcp.errors) {
        expect(error).toBeInstanceOf(RequestTimeoutError);
        expect(error.message).toMatch(byClose);
      }
      const ended = recorded.named('sockserve:request.end').map((e) => String((e.error as { message?: unknown } | undefined)?.message));
      expect(ended).toEqual([expect.stringMatching(byClose), expect.stringMatching(byClose)]);
      expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 2 });
    } finally {
      recorded.stop();
      holder.destroy();
      hanging.destroy();
    }
  });

  // close() resolved before the reports of the requests it ended had run: stats().active still counted them, and a
  // program that read its @HandleError's results after close() found none (hostile run: active 1 to 3 after close()).
  test('close() resolves once the requests it ended are reported and counted out', async () => {
    SlowReportTcp.errors.length = 0;
    const s = await start(SlowReportTcp);
    const hanging = await connect(target(s));
    try {
      hanging.on('error', () => undefined);
      hanging.write('hang\n');
      await within(5000, 'the hanging one to say so', new Promise((r) => hanging.once('data', r)));
      await until(() => s.stats().active === 1);
      await within(10000, 'close', s.close());
      expect(s.stats().active).toBe(0);
      expect(SlowReportTcp.errors.map((e) => e.name)).toEqual(['RequestTimeoutError']);
    } finally {
      hanging.destroy();
    }
  });

  // A write the handler made after shutdownTimeout had ended its request failed as the client's EPIPE ('wfile.write()
  // on a closed connection') in the workers; serial and @Concurrent said why (hostile re-check).
  // Relayed (Node 20, 22), a write waiting for the main thread's answer when the request was given up failed as
  // "the connection closed".
  test('a write after shutdownTimeout ended the request fails saying so, as in the server\'s own process', async () => {
    const file = path.join(fixtureDir, 'late-write');
    fs.rmSync(file, { force: true });
    const s = await start(SingleThreadTcp, { shutdownTimeout: 0.2 });
    const client = await connect(target(s));
    try {
      client.on('error', () => undefined);
      client.on('data', () => undefined); // reads the ticks
      client.write('late 5000\n');
      await within(5000, 'the handler to start', new Promise((r) => client.once('data', r)));
      await within(10000, 'shutdown', s.shutdown());
      // Written by the worker's thread (writeFileSync creates the file, then writes it): read once it has its text.
      // (Waiting for the file alone read it empty once, in CI.)
      await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8') !== '', 5000);
      expect(fs.readFileSync(file, 'utf8')).toMatch(/^RequestTimeoutError: the request was still running in its threading worker when shutdownTimeout passed/);
    } finally {
      client.destroy();
    }
  });

  /** Runs `exchange` with a client of a one-thread server whose connections the main thread relays (the bridge, on every Node). */
  async function bridged(exchange: (client: net.Socket) => Promise<void>): Promise<void> {
    process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
    try {
      const s = await start(SingleThreadTcp);
      const client = await within(5000, 'connect', connect(target(s)));
      try {
        await exchange(client);
      } finally {
        client.destroy();
      }
    } finally {
      delete process.env.SOCKSERVE_SOCKET_TRANSFER;
    }
  }

  test('a bridged upload to a thread that does not read stops at a window instead of filling the main thread', async () => {
    await bridged(async (client) => {
      const reply = within(20000, 'reply', readToEnd(client));
      client.write('sink 1500\n');
      const chunk = Buffer.alloc(1 << 20);
      const total = 64 << 20;
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!client.write(chunk)) return void client.once('drain', pump);
        }
        client.end();
      };
      pump();
      await new Promise((r) => setTimeout(r, 1000)); // the handler's event loop is still blocked
      const taken = sent - client.writableLength; // what the server side let in: its window plus kernel buffers
      expect(taken).toBeLessThan(total / 2);
      expect((await reply).toString()).toBe(`${total} bytes`);
    });
  });

  test('a bridged download to a client that does not read holds the handler\'s awaited writes back, and loses nothing', async () => {
    const spewed = () => Number(fs.existsSync(`${fixtureDir}/spewed`) ? fs.readFileSync(`${fixtureDir}/spewed`, 'utf8') || 0 : 0);
    fs.rmSync(`${fixtureDir}/spewed`, { force: true });
    await bridged(async (client) => {
      client.pause(); // reads nothing for now
      const writes = 800; // 64 KiB each: 50 MiB, well above the bound below (2000 cost CI 10-20 s a run)
      client.write(`spew ${writes}\n`);
      await until(() => spewed() > 0, 5000);
      await new Promise((r) => setTimeout(r, 1000));
      // Resolved writes: the kernel's buffers on both sides of loopback (a few MiB) plus the bridge's window,
      // never the whole download the handler would push without backpressure.
      const early = spewed();
      expect(early * 64 * 1024).toBeLessThan(32 << 20);
      const reply = within(20000, 'the whole download', readToEnd(client));
      client.resume();
      const bytes = await reply;
      expect(bytes.length).toBe(writes * 64 * 1024);
      expect(bytes.every((b) => b === 0x73)).toBe(true); // 's'
      expect(spewed()).toBe(writes);
    });
  });

  test('a bridged flood of writes the handler did not await stays in its thread while the client does not read', async () => {
    fs.rmSync(`${fixtureDir}/flooded`, { force: true });
    await bridged(async (client) => {
      client.pause(); // reads nothing for now
      const before = process.memoryUsage().external; // this test's process is the server's main thread
      const writes = 800; // 64 KiB each: 50 MiB queued in the worker at once (a writev of them all)
      client.write(`flood ${writes}\n`);
      await until(() => fs.existsSync(`${fixtureDir}/flooded`), 10000);
      await new Promise((r) => setTimeout(r, 500));
      // The bridge's window (and a slice) may wait in the main thread: never the 100 MiB.
      expect(process.memoryUsage().external - before).toBeLessThan(24 << 20); // it grew by ~50 MiB
      const reply = within(30000, 'the whole flood', readToEnd(client));
      client.resume();
      const bytes = await reply;
      expect(bytes.length).toBe(writes * 64 * 1024 + '\nflooded\n'.length);
      expect(bytes.subarray(-9).toString()).toBe('\nflooded\n');
    });
  });

  test('a 1 MiB reply crosses threads whole, with the client half-closed', async () => {
    const s = await start(SingleThreadTcp);
    const reply = await streamExchange(target(s), 'big 16\n', { halfClose: true, ms: 10000 });
    expect(reply.length).toBe(16 * 64 * 1024);
  });

  test('with one thread, a second connection shares it: the thread\'s event loop runs one CPU-bound request after the other', async () => {
    const s = await start(SingleThreadTcp);
    const [a, b] = (await Promise.all([ask(s, 'burn 200\n'), ask(s, 'burn 200\n')])).map((r) => r.split(' ').map(Number));
    expect(a[0]).toBe(b[0]);
    expect(Math.max(a[1], b[1])).toBeGreaterThanOrEqual(Math.min(a[2], b[2]));
  });

  test('a handler class a worker cannot load is a ConfigurationError at bootstrap that says why', async () => {
    const Local = makeLocalHandler();
    const err = await bootstrap(Local).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain('LocalHandler is not exported from');
    expect(err.message).toContain('Fix: declare the class at the module\'s top level');
  });

  test('a provider whose value cannot cross threads is a ConfigurationError at bootstrap', async () => {
    const err = await bootstrap(SingleThreadTcp, { providers: [{ provide: 'suffix', useValue: () => '!' }] }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain('SingleThreadTcp: the provider for "suffix" cannot be used in worker threads');
  });
});

/** The 1-based line of the first line of test/fixtures/`file` that contains `text`. */
function sourceLine(file: string, text: string): number {
  const lines = fs.readFileSync(path.join(__dirname, '..', 'fixtures', file), 'utf8').split('\n');
  return lines.findIndex((line) => line.includes(text)) + 1;
}
