import 'reflect-metadata';
import { spawn, spawnSync } from 'node:child_process';
import * as dc from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';
import { bootstrap, Server, WorkerCrashedError } from '../../src';
import { forkDir, ForkedTcp, ForkedUdp, ForkedUnixDatagram, ForkedUnixStream, PerRequestFork, SharedUdp, SingleChild, TwoPerChild } from '../fixtures/forked-handlers';
import { connect, datagramExchange, datagramSilence, requestAcrossShutdown, streamExchange, Target, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { recordEvents } from '../helpers/events';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { TS_LOADER } from '../helpers/fixture-process';

const providers = [{ provide: 'suffix', useValue: '!' }];
const root = path.join(__dirname, '..', '..');

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
beforeAll(() => fs.mkdirSync(forkDir, { recursive: true }));
afterAll(() => fs.rmSync(forkDir, { recursive: true, force: true }));

describe.each([
  { name: 'TCP', handler: ForkedTcp, stream: true },
  { name: 'Unix stream', handler: ForkedUnixStream, stream: true },
  { name: 'UDP', handler: ForkedUdp, stream: false },
  { name: 'Unix datagram', handler: ForkedUnixDatagram, stream: false },
])('@Forking over $name', ({ handler, stream }) => {
  let server: Server | undefined;
  const pids = new Set<number>();
  const serve = servingInTests<Server>((s) => {
    expect(s.stats().workers.length).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false); // reaped: no child outlives close()
    pids.clear();
  });
  const exchange = async (payload: string) =>
    stream ? (await streamExchange(target(server!), payload, { halfClose: true, ms: 10000 })).toString()
      : (await datagramExchange(target(server!), payload, forkDir, 10000)).data.toString();

  test('runs the handler in another process, which close() ends and reaps', async () => {
    server = await bootstrap(handler, { providers });
    serve(server);
    expect(server.stats().workers.length).toBe(2);
    const m = /^(\d+): Hello, world!$/.exec(await exchange('Hello, world\n'));
    expect(m).not.toBeNull();
    const pid = Number(m![1]);
    expect(pid).not.toBe(process.pid);
    pids.add(pid);
  });

  test('CPU-bound requests run at the same time in two processes (where the main thread places each on the least-loaded child)', async () => {
    // Children that accept from the shared socket place two simultaneous arrivals as the kernel wakes them,
    // often both on one child (docs/concurrency.md): this placement is the main thread's.
    process.env.SOCKSERVE_WORKER_ACCEPT = '0';
    server = await bootstrap(handler, { providers }).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT);
    serve(server);
    const [a, b] = (await Promise.all([exchange('burn 400\n'), exchange('burn 400\n')])).map((r) => r.split(' ').map(Number));
    pids.add(a[0]).add(b[0]);
    expect(a[0]).not.toBe(b[0]);
    expect(a[1]).toBeLessThan(b[2]);
    expect(b[1]).toBeLessThan(a[2]);
  });

  test('a handler that throws ends its own request; the server keeps serving', async () => {
    server = await bootstrap(handler, { providers });
    const errors: unknown[] = [];
    server.classicServer.handleError = (_r, _a, e) => { errors.push(e); };
    serve(server);
    if (stream) expect(await exchange('throw\n')).toBe('');
    else expect(await datagramSilence(target(server), 'throw\n', forkDir)).toBe(true);
    await until(() => errors.length === 1);
    expect((errors[0] as Error).message).toMatch(/^thrown in process \d+$/);
    // its stack names the line of the .ts source, not of the JavaScript the worker compiled it to (new-user run)
    expect((errors[0] as Error).stack).toContain(`forked-handlers.ts:${sourceLine('forked-handlers.ts', "case 'throw': throw new Error(`thrown in process")}:`);
    expect(await exchange('next\n')).toMatch(/^\d+: next!$/);
  });

  if (stream) {
    test('the child replies after reading to EOF from a client that shut down its side', async () => {
      server = await bootstrap(handler, { providers });
      serve(server);
      expect(await exchange('count\none\ntwo\n')).toBe('2 lines');
    });

    test('shutdown serves a half-received request whole in the child', async () => {
      server = await bootstrap(handler, { providers });
      serve(server);
      const s = server;
      const arrived = async () => { await until(() => s.stats().active === 1); await new Promise((r) => setTimeout(r, 100)); };
      const reply = await requestAcrossShutdown(target(s), 'Hello, ', 'world\n', arrived, () => s.shutdown());
      const m = /^(\d+): Hello, world!$/.exec(reply);
      expect(m).not.toBeNull();
      pids.add(Number(m![1]));
    });
  }
});

describe('@Forking over UDP: children read the server\'s socket themselves', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => {
    SharedUdp.errors.length = 0;
  });
  const ask = (s: Server, payload: string) => datagramExchange(target(s), payload, forkDir, 10000).then((d) => d.data.toString());

  test('the child that reads a datagram runs @Verify and the handler, replies itself, and the server counts it', async () => {
    const s = serve(await bootstrap(SharedUdp));
    const [verifiedIn, pid, bytes] = (await ask(s, 'hello')).split(':').map(Number);
    expect(pid).not.toBe(process.pid);
    expect(verifiedIn).toBe(pid); // @Verify ran on the same request, in the child: the server did not read it
    expect(bytes).toBe(5);
    expect(await ask(s, 'x'.repeat(40))).toBe(`${pid}:${pid}:16:cut`); // maxPacketSize, applied in the child
    expect(await datagramSilence(target(s), 'deny', forkDir)).toBe(true);
    await until(() => s.stats().rejected === 1);
    const stats = s.stats();
    expect(stats.accepted).toBe(3);
    expect(stats.bytesIn).toBe(5 + 16 + 4);
    expect(stats.bytesOut).toBe(`${pid}:${pid}:5`.length + `${pid}:${pid}:16:cut`.length);
  });

  test("a subscriber in the server's process sees each datagram's request.end, with its bytes, and none for a datagram @Verify refused", async () => {
    const ends: Array<{ clientAddress: { host?: string }; bytesIn: number; bytesOut: number; durationMs: number }> = [];
    const note = (m: unknown) => ends.push(m as (typeof ends)[number]);
    dc.subscribe('sockserve:request.end', note);
    try {
      const s = serve(await bootstrap(SharedUdp));
      await until(() => s.stats().workers.length === 1);
      await new Promise((r) => setTimeout(r, 1200)); // the child hears that events are wanted with its next report (≤ 1 s)
      expect(await datagramSilence(target(s), 'deny', forkDir)).toBe(true); // refused by @Verify: no request
      const reply = await ask(s, 'seen!');
      await until(() => ends.some((e) => e.bytesIn === 5), 5000);
      const end = ends.find((e) => e.bytesIn === 5)!;
      expect(end.bytesOut).toBe(reply.length);
      expect(end.clientAddress.host).toBe('127.0.0.1');
      expect(end.durationMs).toBeGreaterThanOrEqual(0);
      expect(ends.filter((e) => e.bytesIn === 4)).toEqual([]);
    } finally {
      dc.unsubscribe('sockserve:request.end', note);
    }
  });

  test('a child that dies fails its datagram with a WorkerCrashedError; its replacement gets the socket and serves the next', async () => {
    const s = serve(await bootstrap(SharedUdp));
    const before = Number((await ask(s, 'who')).split(':')[1]);
    expect(await datagramSilence(target(s), 'exit', forkDir)).toBe(true);
    await until(() => SharedUdp.errors.length === 1);
    expect(SharedUdp.errors[0]).toBeInstanceOf(WorkerCrashedError);
    // a datagram's words, though the child read it itself (it said "serving this connection": hostile run)
    expect(SharedUdp.errors[0].message).toMatch(/worker handling this datagram died: .*, so its reply is not sent\./);
    const after = (await ask(s, 'next')).split(':').map(Number);
    expect(after[1]).not.toBe(before);
    expect(after[0]).toBe(after[1]);
    expect(alive(before)).toBe(false);
  });

  test('a child whose handler blocks its event loop until the heartbeat ends it: its datagram fails with a WorkerCrashedError', async () => {
    const s = serve(await bootstrap(SharedUdp, { heartbeatTimeout: 1 }));
    await ask(s, 'warm');
    expect(await datagramSilence(target(s), 'spin', forkDir)).toBe(true);
    await until(() => SharedUdp.errors.length === 1, 10000);
    expect(SharedUdp.errors[0]).toBeInstanceOf(WorkerCrashedError);
    expect(SharedUdp.errors[0].message).toMatch(/did not answer a heartbeat for 1 s.* The datagram's reply is not sent;/);
    expect(SharedUdp.errors[0].message).not.toMatch(/connection/);
    expect(await ask(s, 'after')).toMatch(/^(\d+):\1:5$/);
  });

  test("datagrams are served while the server's main thread is blocked", async () => {
    const s = serve(await bootstrap(SharedUdp));
    const pid = (await ask(s, 'warm')).split(':')[1]; // the child reads the socket from here on
    const { port } = s.serverAddress as { port: number };
    // The client runs in another process while this one (the server's main thread) waits for it, blocked.
    const client = `const c = require('node:dgram').createSocket('udp4');
      const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
      c.on('message', (m) => { console.log(String(m)); clearTimeout(t); c.close(); });
      c.send('blocked', ${port}, '127.0.0.1');`;
    const run = spawnSync(process.execPath, ['-e', client], { encoding: 'utf8', timeout: 10000 });
    expect(run.stdout.trim()).toBe(`${pid}:${pid}:7`);
  });

  test('handleRequest() takes exactly one datagram (the server reads it and hands it over); serveForever() then lets the children read the rest', async () => {
    const s = await bootstrap(SharedUdp, { timeout: 0.3 });
    let serving: Promise<void> | undefined;
    try {
      const replies = ['one', 'two', 'three'].map((word) => ask(s, word).then((r) => [word, r] as const));
      const settled: string[] = [];
      for (const r of replies) void r.then(([word]) => settled.push(word), () => undefined);
      await new Promise((r) => setTimeout(r, 200)); // all three wait in the socket's queue
      await within(15000, 'handleRequest', s.handleRequest());
      await new Promise((r) => setTimeout(r, 500));
      expect(settled).toHaveLength(1);
      expect((await replies[settled[0] === 'one' ? 0 : settled[0] === 'two' ? 1 : 2])[1]).toMatch(/^elsewhere:\d+:\d$/); // @Verify ran here
      serving = s.serveForever();
      const all = await Promise.all(replies);
      expect(all.filter(([, r]) => /^(\d+):\1:\d$/.test(r))).toHaveLength(2); // read by a child
      expect(s.stats().accepted).toBe(3);
    } finally {
      await s.close();
      await serving;
    }
  });

  test('close() while handleRequest() waits: handleRequest() returns', async () => {
    const s = await bootstrap(SharedUdp);
    const waiting = s.handleRequest();
    await new Promise((r) => setTimeout(r, 300));
    await within(10000, 'close', s.close());
    await within(5000, 'handleRequest to return', waiting);
  });

  test.each([['read by the child', '1'], ['handed over by the server (SOCKSERVE_WORKER_ACCEPT=0)', '0']])(
    'a datagram %s whose handler writes then throws: the reply is sent, as Python\'s finish() sends it, and the error counted',
    async (_how, accept) => {
      process.env.SOCKSERVE_WORKER_ACCEPT = accept;
      const s = serve(await bootstrap(SharedUdp).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT));
      expect(await ask(s, 'partial')).toBe('partial');
      await until(() => s.stats().errors === 1);
      expect(s.stats().bytesOut).toBe('partial'.length);
    },
  );

  test('with SOCKSERVE_WORKER_ACCEPT=0 the server reads each datagram and hands it over (@Verify runs in the server)', async () => {
    process.env.SOCKSERVE_WORKER_ACCEPT = '0';
    const s = serve(await bootstrap(SharedUdp).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT));
    const [verifiedIn, pid] = (await ask(s, 'hello')).split(':');
    expect(verifiedIn).toBe('elsewhere');
    expect(Number(pid)).not.toBe(process.pid);
  });
});

describe('@Forking faults and pool', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => {
    SingleChild.errors.length = 0;
  });
  async function start(h: abstract new (...a: any[]) => unknown, opts = {}) {
    return serve(await bootstrap(h, { providers, ...opts }));
  }
  const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 10000 }).then(String);

  test.each([
    ['process.exit()', 'exit', /exited with code 4/],
    ['SIGKILL', 'kill', /was killed by SIGKILL/],
    ['an uncaught exception', 'uncaught', /died: RangeError: uncaught in process \d+/],
    ['an uncaught value that String() cannot describe', 'uncaught-odd', /died: Error: \[Object: null prototype\] \{\}/],
  ])('a child ended by %s fails only its request, is replaced and reaped, and the next request is served', async (_what, line, text) => {
    const s = await start(SingleChild);
    const before = Number((await ask(s, 'who\n')).split(':')[0]);
    expect(await ask(s, `${line}\n`)).toBe('');
    await until(() => SingleChild.errors.length === 1);
    expect(SingleChild.errors[0]).toBeInstanceOf(WorkerCrashedError);
    expect(SingleChild.errors[0].message).toMatch(text);
    const after = Number((await ask(s, 'who\n')).split(':')[0]);
    expect(after).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(s.stats().workers.length).toBe(1);
  });

  test('a child whose event loop stays blocked past heartbeatTimeout is killed, reported as WorkerCrashedError, and replaced', async () => {
    // The heartbeat's verdict is the pool's, and says so in worker.exit's reason and the info line (it read as a
    // kill from outside: `was terminated`, `was killed by SIGKILL`).
    const logger = memoryLogger();
    const recorded = recordEvents();
    const reasons = () => recorded.named('sockserve:worker.exit').map((exit) => String(exit.reason));
    try {
      const s = await start(SingleChild, { heartbeatTimeout: 1, logger });
      expect(await ask(s, 'spin\n')).toBe('');
      await until(() => SingleChild.errors.length === 1);
      expect(SingleChild.errors[0]).toBeInstanceOf(WorkerCrashedError);
      expect(SingleChild.errors[0].message).toMatch(/did not answer a heartbeat for 1 s/);
      expect(await ask(s, 'alive\n')).toMatch(/: alive!$/);
      await until(() => reasons().length > 0, 5000);
      expect(reasons()[0]).toMatch(/^heartbeatTimeout: (was terminated|was killed by SIGKILL)$/);
      expect(logger.lines.info).toContainEqual(expect.stringMatching(/worker \d+ (was terminated|was killed by SIGKILL) by the pool: its event loop answered no heartbeat for 1 s \(heartbeatTimeout\); a new worker takes its place/));
    } finally {
      recorded.stop();
    }
  });

  test('a child found blocked by its heartbeat is killed at once, not given the 2 s a child that still runs gets to exit', async () => {
    const s = await start(SingleChild, { heartbeatTimeout: 1 });
    expect(await ask(s, 'alive\n')).toMatch(/: alive!$/); // the child is up and has just spoken
    const t0 = performance.now();
    expect(await ask(s, 'spin\n')).toBe('');
    // Its connection ends with it: about 1 s (the heartbeat) after the spin began. It was 3 s and more: SIGTERM,
    // which a blocked event loop never handles, then SIGKILL only after a 2 s grace.
    expect(performance.now() - t0).toBeLessThan(2500);
    await until(() => SingleChild.errors.length === 1);
    expect(SingleChild.errors[0].message).toMatch(/did not answer a heartbeat for 1 s/);
  });

  test('a child only busy (a 1.5 s synchronous chunk) when close() ends it gets SIGTERM and its grace, not SIGKILL (a 0.5 s silence was taken for a blocked loop)', async () => {
    const exits: Array<{ code?: number | null; signal?: string | null }> = [];
    const onExit = (m: unknown) => exits.push(m as { code?: number | null; signal?: string | null });
    dc.subscribe('sockserve:worker.exit', onExit);
    try {
      const s = await start(SingleChild);
      expect(await ask(s, 'who\n')).toMatch(/: who!$/);
      const busy = await connect(target(s));
      busy.on('error', () => undefined);
      busy.write('burn 1500\n');
      await new Promise((r) => setTimeout(r, 300)); // the child is in its chunk now
      await within(15000, 'close()', s.close());
      busy.destroy();
      await until(() => exits.length === 1, 5000);
      expect(exits[0].signal ?? null).not.toBe('SIGKILL');
    } finally {
      dc.unsubscribe('sockserve:worker.exit', onExit);
    }
  });

  test('perRequest starts a fresh process for each request and leaves none behind', async () => {
    const s = await start(PerRequestFork);
    const a = Number((await ask(s, 'one\n')).split(':')[0]);
    const b = Number((await ask(s, 'two\n')).split(':')[0]);
    expect(a).not.toBe(b);
    await until(() => !alive(a) && !alive(b));
    expect(s.stats().workers.length).toBe(0);
  });

  test('a child that cannot be forked (EMFILE) when its predecessor dies leaves the server serving', async () => {
    const script = `ulimit -n 200 && exec "$0" ${TS_LOADER.join(' ')} test/fixtures/emfile-parent.ts`;
    const parent = spawn('sh', ['-c', script, process.execPath], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      parent.stdout!.on('data', (d) => (out += d));
      parent.stderr!.on('data', (d) => (out += d));
      const code = await within(30000, 'the EMFILE parent to finish', new Promise((r) => parent.once('exit', r)));
      expect(out).toMatch(/^workers while out of descriptors 0$/m);
      expect(out).toMatch(/^served \d+: again$/m);
      expect(code).toBe(0);
    } finally {
      parent.kill('SIGKILL');
    }
  }, 60000); // a child process loading TypeScript: its start-up alone can take seconds on a busy machine

  test('children exit when their parent is killed with SIGKILL, a child whose event loop is blocked too', async () => {
    const parent = spawn(process.execPath, [...TS_LOADER, path.join(root, 'test/fixtures/forking-parent.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let children: number[] = [];
    try {
      let out = '';
      parent.stdout!.on('data', (d) => (out += d));
      await within(30000, 'children reported', (async () => { while (!/spinning/.test(out)) await new Promise((r) => setTimeout(r, 20)); })());
      children = /children (\d+) (\d+)/.exec(out)!.slice(1).map(Number);
      expect(children.every(alive)).toBe(true);
      parent.kill('SIGKILL');
      await until(() => !children.some(alive), 10000);
    } finally {
      parent.kill('SIGKILL');
      for (const pid of children.filter(alive)) process.kill(pid, 'SIGKILL'); // a failed run leaves no spinning child
    }
  }, 60000); // a parent and two children loading their TypeScript sources: seconds on a busy machine
});

// A child accepting from the shared socket took every connection, past its connectionsPerChild, and the pool never grew
// (hostile run: six 1 s requests one after another in one child, with connectionsPerChild 2 and maxChildren 6).
describe('@Forking with connectionsPerChild: 2', () => {
  const serve = servingInTests<Server>();
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  test('no child holds more than two connections: the pool grows while every child holds two', async () => {
    const server = serve(await bootstrap(TwoPerChild, { providers, shutdownTimeout: 0.5, logger: memoryLogger() }));
    for (let i = 0; i < 5; i++) {
      const s = await within(5000, 'connect', connect(target(server) as { host: string; port: number }));
      s.on('error', () => undefined);
      sockets.push(s);
      s.write('hang\n'); // it says so, then holds its connection
      await within(10000, 'the connection in its handler', new Promise((r) => s.once('data', r)));
    }
    const held = server.stats().workers.map((w) => w.connections).sort();
    expect(held).toEqual([1, 2, 2]);
  }, 60000);
});

describe('a handler module that throws when a child loads it', () => {
  test('bootstrap() rejects with a ConfigurationError that gives the reason, every time (the child exits right after sending it)', async () => {
    const { FailsInChildren } = await import('../fixtures/failing-load-handlers');
    for (let attempt = 0; attempt < 3; attempt++) {
      const failed = await within(60000, 'bootstrap to fail', bootstrap(FailsInChildren).then(
        (s) => s.close().then(() => new Error('bootstrap() resolved')),
        (err: Error) => err,
      ));
      expect(failed.name).toBe('ConfigurationError');
      expect(failed.message).toContain('FailsInChildren: the forking worker could not load the handler');
      expect(failed.message).toContain('the store is unreachable from this worker');
      expect(failed.message.match(/\bFix: /g)).toHaveLength(1); // the generic one: the reason has none of its own
    }
  }, 90000);
});

/** The 1-based line of the first line of test/fixtures/`file` that contains `text`. */
function sourceLine(file: string, text: string): number {
  const lines = fs.readFileSync(path.join(__dirname, '..', 'fixtures', file), 'utf8').split('\n');
  return lines.findIndex((line) => line.includes(text)) + 1;
}
