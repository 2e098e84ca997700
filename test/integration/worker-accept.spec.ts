/**
 * Workers that accept connections themselves (API.md §3, docs/concurrency.md): @Forking children accept
 * from the server's listening socket, @Threading threads (Node 22.12+) listen with reusePort. The proof
 * that a worker accepted: the client is served while the server's main thread is blocked (a synchronous
 * child process runs the clients), which a connection accepted by the main thread cannot be.
 */
import 'reflect-metadata';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInUseError, bootstrap, Server } from '../../src';
import { supportsReusePort, workerAcceptMechanism } from '../../src/runtime';
import {
  AcceptingChild, AcceptingChildren, AcceptingProxyChildren, AcceptingThreads, AcceptingTlsChild, AcceptingUnixChildren, ChildPerConnectionHere, ChildPerRequestHere,
  LimitedChildrenHere, LimitedThreadsHere, RecycledAcceptingChild, RecycledAcceptingThread, RecycledByFourChild, RecycledByTwoChild, RecycledByTwoChildren, REFUSED_HOST, REFUSED_LOOPBACK, FAILING_LOOPBACK,
  VerifyLaterChild, VerifyLaterConcurrent, VerifyLaterThread,
} from '../fixtures/worker-accept-handlers';
import { connect, readToEnd, streamExchange, Target, within } from '../helpers/clients';
import { tlsConnect, v1Header } from '../helpers/edge-clients';
import { startFixture } from '../helpers/fixture-process';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}

/** A client script for `node -e`: one connection per payload (to its target), all at once; prints each reply (or `timeout`, `refused`, `reset`) as JSON. */
const CLIENTS = `
const net = require('net'), tls = require('tls');
const { targets, payloads, tlsOn, ms } = JSON.parse(process.env.CLIENTS);
const one = (payload, i) => new Promise((resolve) => {
  const raw = net.connect(targets[i]);
  let got = '';
  const done = (v) => { clearTimeout(timer); raw.destroy(); resolve(v); };
  const timer = setTimeout(() => done(got || 'timeout'), ms);
  raw.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : got || 'reset'));
  const s = tlsOn ? tls.connect({ socket: raw, rejectUnauthorized: false }) : raw;
  if (s !== raw) s.on('error', () => done(got || 'reset'));
  s.on(tlsOn ? 'secureConnect' : 'connect', () => s.end(payload));
  s.on('data', (d) => (got += d));
  s.on('end', () => done(got));
});
Promise.all(payloads.map(one)).then((r) => console.log(JSON.stringify(r)));
`;

/** Clients for `node -e`: `count` connections, each sends `slow <ms>`; once every one has read `started`, `marker` is written. */
const SLOW_CLIENTS = `
const net = require('net'), fs = require('fs');
const { target, count, marker, slowMs, ms } = JSON.parse(process.env.CLIENTS);
let started = 0;
const one = () => new Promise((resolve) => {
  const s = net.connect(target);
  let got = '';
  const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
  const timer = setTimeout(() => done(got || 'timeout'), ms);
  s.on('error', (e) => done(got || e.code));
  s.on('connect', () => s.end('slow ' + slowMs + '\\n'));
  let counted = false;
  s.on('data', (d) => {
    got += d;
    if (!counted && got.startsWith('started\\n') && (counted = true) && ++started === count) fs.writeFileSync(marker, '');
  });
  s.on('end', () => done(got));
});
Promise.all(Array.from({ length: count }, one)).then((r) => console.log(JSON.stringify(r)));
`;

/** Blocks this thread (no event loop turn) until `ready()`, polling every 10 ms, at most `ms`. */
function blockUntil(ready: () => boolean, ms: number): void {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`not ready after ${ms} ms`);
    blockFor(10);
  }
}

function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs clients in a child process while this thread (the server's main thread) waits for it, blocked:
 * only connections that workers accept and serve themselves are answered. `ms` bounds each connection.
 * `t`: the target of every payload, or one target per payload.
 */
function whileMainThreadBlocked(t: Target | Target[], payloads: string[], opts: { tls?: boolean; ms?: number } = {}): string[] {
  const ms = opts.ms ?? 5000;
  const targets = Array.isArray(t) ? t : payloads.map(() => t);
  const run = spawnSync(process.execPath, ['-e', CLIENTS], {
    env: { ...process.env, CLIENTS: JSON.stringify({ targets, payloads, tlsOn: opts.tls ?? false, ms }) },
    timeout: ms + 10000,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`the clients failed: ${run.stderr || run.error}`);
  return JSON.parse(run.stdout) as string[];
}

const childIds = (s: Server) => s.stats().workers.map((w) => String(w.id));

/**
 * Bootstraps and serves, then waits for one client to be served: the workers are told to accept when
 * serveForever() begins, so after this reply the one that served it listens (clients that come earlier
 * wait in the kernel's queue).
 */
async function started(serve: (s: Server) => Server, s: Promise<Server>, t?: (s: Server) => Target): Promise<Server> {
  const server = serve(await s);
  await streamExchange((t ?? target)(server), 'warm\n', { halfClose: true, ms: 15000 });
  return server;
}

describe('@Forking children accept connections themselves', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  // Made in beforeAll, not at collection: a run filtered to other tests (-t) runs no afterAll here to remove it.
  let tmp: string;
  beforeAll(() => void (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-accept-'))));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** SLOW_CLIENTS in a child process: `marker` appears once all `count` have read `started`; `output` is their replies (JSON). */
  function slowClients(t: Target, count: number, slowMs: number, ms: number): { clients: ChildProcess; marker: string; output: Promise<string> } {
    const marker = path.join(tmp, `started-${process.hrtime.bigint()}`);
    const clients = spawn(process.execPath, ['-e', SLOW_CLIENTS], {
      env: { ...process.env, CLIENTS: JSON.stringify({ target: t, count, marker, slowMs, ms }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    clients.stdout!.on('data', (d) => (out += d));
    return { clients, marker, output: new Promise<string>((resolve) => clients.once('close', () => resolve(out))) };
  }

  test('the mechanism probe says children accept on this Node', () => {
    expect(workerAcceptMechanism()).toMatchObject({ forkingTcp: 'worker-accepts', forkingUnix: 'worker-accepts' });
  });

  test('children serve new TCP connections while the server\'s main thread is blocked, and the server counts them afterwards', async () => {
    const s = await started(serve, bootstrap(AcceptingChildren));
    await until(() => s.stats().workers.length === 2, 10000);
    const replies = whileMainThreadBlocked(target(s), Array.from({ length: 6 }, () => 'who\n'));
    const ids = childIds(s);
    for (const reply of replies) {
      const [pid, host] = reply.trim().split(' ');
      expect(ids).toContain(pid);
      expect(host).toBe('127.0.0.1');
    }
    await until(() => s.stats().accepted === 1 + 6 && s.stats().active === 0, 10000); // the warm-up, and these
    expect(s.stats()).toMatchObject({ bytesIn: 5 + 6 * 4, errors: 0 });
  });

  test('a child whose event loop is blocked takes no new connection: the other accepts them all, and after it is killed (SIGKILL) the rest keep serving', async () => {
    const s = await started(serve, bootstrap(AcceptingChildren));
    await until(() => s.stats().workers.length === 2, 10000);
    const spinner = await within(10000, 'connect', connect(target(s)));
    const spun = readToEnd(spinner).catch(() => Buffer.alloc(0));
    let said = '';
    spinner.on('data', (d: Buffer) => (said += d));
    spinner.write('spin\n');
    // Its child has answered and blocks from then on: no connection made after this can reach it.
    await until(() => said.includes('spinning'), 10000);
    await until(() => s.stats().active === 1, 10000);
    const replies = await Promise.all(Array.from({ length: 6 }, () => streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)));
    const served = [...new Set(replies.map((r) => r.split(' ')[0]))];
    expect(served).toHaveLength(1); // the free child took them all
    const busy = childIds(s).filter((id) => id !== served[0]);
    expect(busy).toHaveLength(1); // and the other is the spinning one
    process.kill(Number(busy[0]), 'SIGKILL');
    await within(15000, 'the spinner closed', spun);
    const after = await Promise.all(Array.from({ length: 4 }, () => streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)));
    for (const reply of after) expect(reply).toMatch(/^\d+ 127\.0\.0\.1\n$/);
    await until(() => s.stats().restarts === 1 && s.stats().workers.length === 2, 10000);
    expect(s.stats().errors).toBe(1); // the spinner's connection, ended with its child
  });

  test('a child runs the PROXY header and @Verify of the connections it accepts: the client named is served, the refused one closed', async () => {
    const s = serve(await bootstrap(AcceptingProxyChildren));
    await streamExchange(target(s), `${v1Header('203.0.113.8', 4000)}warm\n`, { halfClose: true, ms: 15000 });
    await until(() => s.stats().workers.length === 2, 10000);
    const [named, refused] = whileMainThreadBlocked(target(s), [`${v1Header('203.0.113.7', 4000)}who\n`, `${v1Header(REFUSED_HOST, 4000)}who\n`]);
    expect(named).toMatch(/^\d+ 203\.0\.113\.7\n$/);
    expect(childIds(s)).toContain(named.split(' ')[0]);
    expect(refused).toBe('');
    await until(() => s.stats().accepted === 1 + 2 && s.stats().rejected === 1, 10000);
  });

  test('a child terminates TLS on the connections it accepts', async () => {
    const s = serve(await bootstrap(AcceptingTlsChild));
    const warm = await within(15000, 'a TLS client', tlsConnect(target(s) as never));
    warm.end('warm\n');
    expect(String(await within(15000, 'the warm-up reply', readToEnd(warm)))).toMatch(/ warm\n$/); // the child accepts now
    const [reply] = whileMainThreadBlocked(target(s), ['who\n'], { tls: true });
    expect(reply).toBe(`${childIds(s)[0]} 127.0.0.1\n`);
  });

  test('Unix stream: children accept from the socket file, which close() removes', async () => {
    const file = path.join(tmp, 'accepting.sock');
    const s = await started(serve, bootstrap(AcceptingUnixChildren, { transport: { path: file } }));
    await until(() => s.stats().workers.length === 2, 10000);
    const replies = whileMainThreadBlocked({ path: file }, ['who\n', 'who\n', 'who\n']);
    for (const reply of replies) expect(childIds(s)).toContain(reply.split(' ')[0]);
    await s.shutdown();
    await s.close();
    expect(fs.existsSync(file)).toBe(false);
  });

  test('maxConnectionsPerChild recycles the child that accepts: it stops accepting once a fresh one does, every client is served', async () => {
    const s = serve(await bootstrap(RecycledAcceptingChild));
    const pids: string[] = [];
    // At its count (3) the only child stops accepting; its successor takes the clients that wait meanwhile.
    const deadline = Date.now() + 20000;
    while ((pids.length < 7 || new Set(pids).size < 2) && Date.now() < deadline) {
      pids.push((await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 })).toString().split(' ')[0]);
      if (pids.length >= 7) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pids.every((p) => /^\d+$/.test(p))).toBe(true);
    expect(new Set(pids).size).toBeGreaterThanOrEqual(2);
    expect(pids.filter((p) => p === pids[0]).length).toBeGreaterThanOrEqual(3); // the first served its count
    expect(s.stats().restarts).toBe(0); // recycling is no death
  });

  /** How many clients each pid served; every reply must name one. */
  const perPid = (replies: string[]): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const reply of replies) {
      expect(reply).toMatch(/^\d+ 127\.0\.0\.1\n$/);
      const pid = reply.split(' ')[0];
      counts.set(pid, (counts.get(pid) ?? 0) + 1);
    }
    return counts;
  };
  const who = (s: Server) => streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String);

  // The hostile run (2026-12-05): a child heard of its count only through the server's 20 ms reads of its
  // bookkeeping, and went on accepting until its successor listened: 60 quick clients, one child.
  test('maxConnectionsPerChild is exact for children that accept: 20 clients one after another on children: 1, max 2, each child serves at most 2, none lost', async () => {
    const s = serve(await bootstrap(RecycledByTwoChild));
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) replies.push(await who(s));
    const counts = perPid(replies);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    expect(counts.size).toBeGreaterThanOrEqual(10);
    expect(s.stats().restarts).toBe(0); // recycling is no death
  });

  test('maxConnectionsPerChild is exact for children that accept: 8 clients at once, twice, on children: 1, max 2', async () => {
    const s = serve(await bootstrap(RecycledByTwoChild));
    const replies = [...(await Promise.all(Array.from({ length: 8 }, () => who(s)))), ...(await Promise.all(Array.from({ length: 8 }, () => who(s))))];
    const counts = perPid(replies);
    expect(replies).toHaveLength(16);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    expect(s.stats().restarts).toBe(0);
  });

  test('maxConnectionsPerChild is exact for children that accept: two children reaching their count together, 20 clients one after another, 6 at once', async () => {
    const s = serve(await bootstrap(RecycledByTwoChildren));
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) replies.push(await who(s));
    replies.push(...(await Promise.all(Array.from({ length: 6 }, () => who(s)))));
    const counts = perPid(replies);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    expect(s.stats().restarts).toBe(0);
  });

  test('a child that accepts starts its successor at half its count, which accepts beside it: the socket is covered when it stops', async () => {
    const s = serve(await bootstrap(RecycledByFourChild));
    const first = [await who(s), await who(s)];
    expect(new Set(first).size).toBe(1); // the only child, now at half its count (2 of 4)
    await until(() => s.stats().workers.length === 2, 15000); // its successor started before it is full
    const replies = [...first];
    for (let i = 0; i < 14; i++) replies.push(await who(s));
    const counts = perPid(replies);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(4);
    expect(s.stats().restarts).toBe(0);
    // Never more than one over the pool's size, besides children finishing their last connections.
    expect(s.stats().workers.length).toBeLessThanOrEqual(3);
  });

  test('a TCP port already taken is an AddressInUseError before any child starts (libuv defers the bind\'s EADDRINUSE to listen())', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const failed = await bootstrap(AcceptingChildren, { transport: { port } }).then(
        async (s) => (await s.close(), undefined),
        (err: Error) => err,
      );
      expect(failed).toBeInstanceOf(AddressInUseError);
      expect(failed?.message).toContain(`127.0.0.1:${port} is already in use`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('a plain shutdown() keeps the socket listening: a client that connects meanwhile is served by the next serveForever()', async () => {
    const s = await bootstrap(AcceptingChildren);
    const loop = s.serveForever(0.05);
    expect(await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ /);
    await s.shutdown();
    await loop;
    try {
      const waiting = streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String);
      const again = s.serveForever(0.05);
      expect(await waiting).toMatch(/^\d+ 127\.0\.0\.1\n$/);
      await s.shutdown();
      await again;
    } finally {
      await s.close();
    }
  });

  test('a plain shutdown() called before the server has read the children\'s news of the connections they accepted waits for those requests', async () => {
    const s = await started(serve, bootstrap(AcceptingChildren));
    const { clients, marker, output } = slowClients(target(s), 5, 1500, 15000);
    try {
      // This thread is blocked while the children accept the five and start their requests: the children's
      // news of them waits, unread, in their bookkeeping channels when shutdown() is called, synchronously, after.
      blockUntil(() => fs.existsSync(marker), 10000);
      await within(15000, 'shutdown', s.shutdown());
      await s.close(); // shutdown() has waited for the five: closing now cuts nothing
      const replies = JSON.parse(await within(20000, 'the clients', output)) as string[];
      expect(replies).toEqual(Array.from({ length: 5 }, () => 'started\ndone\n'));
    } finally {
      clients.kill();
    }
  });

  test('children killed outright (SIGKILL) before the server has read a word of their 30 connections: each is still reported, as WorkerCrashedError', async () => {
    const logged: string[] = [];
    const s = await started(serve, bootstrap(AcceptingChildren, { logger: { error: (m: string) => logged.push(m), warn: (m: string) => logged.push(m) } }));
    await until(() => s.stats().workers.length === 2, 10000);
    const pids = childIds(s).map(Number);
    const { clients, marker, output } = slowClients(target(s), 30, 60000, 20000);
    try {
      // Blocked from before the first client connects until both children are dead: this thread reads
      // nothing of theirs while they accept the 30, start them, and die. Their news is in the kernel.
      blockUntil(() => fs.existsSync(marker), 10000);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const replies = JSON.parse(await within(20000, 'the clients', output)) as string[];
      expect(replies).toEqual(Array.from({ length: 30 }, () => 'started\n'));
      await until(() => s.stats().errors === 30, 10000);
      expect(s.stats()).toMatchObject({ accepted: 1 + 30, active: 0 });
      expect(logged.filter((line) => /WorkerCrashedError/.test(line))).toHaveLength(30);
      await until(() => s.stats().restarts === 2 && s.stats().workers.length === 2, 10000);
      expect(await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ 127\.0\.0\.1\n$/);
    } finally {
      clients.kill();
    }
  });

  test('children serve 400 connections while the server\'s main thread is blocked past heartbeatTimeout: no child is taken for dead, every connection is counted', async () => {
    // Reports every 100 ms, each posted after the news the children have queued (more than their channel holds).
    const s = await started(serve, bootstrap(AcceptingChildren, { heartbeatTimeout: 0.3 }));
    await until(() => s.stats().workers.length === 2, 10000);
    const payloads = Array.from({ length: 400 }, (_, i) => `line-${i}\n`);
    const replies = whileMainThreadBlocked(target(s), payloads, { ms: 15000 });
    blockFor(600); // and on: two heartbeat periods with nothing read
    replies.forEach((reply, i) => expect(reply).toMatch(new RegExp(`^\\d+ line-${i}\\n$`)));
    await until(() => s.stats().accepted === 1 + 400 && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ errors: 0, restarts: 0, bytesIn: 5 + payloads.join('').length });
    await new Promise((r) => setTimeout(r, 400)); // past another heartbeatTimeout, now reading
    expect(s.stats().restarts).toBe(0);
  });

  test("a handler that writes on its child's bookkeeping descriptor itself (null, bytes with no newline, a forged record, a megabyte) crashes nothing and loses no count", async () => {
    const s = await started(serve, bootstrap(AcceptingChildren));
    // [bytes, times]: the last is a megabyte with neither a newline nor a record separator
    const scribbles: Array<[string, number]> = [['null\n', 1], ['xx', 1], ['\x1e{"t":"accepted","id":-99999}\n', 1], ['\x1enull\n', 1], ['a'.repeat(1024), 1024]];
    for (const [bytes, times] of scribbles) {
      const line = `scribble ${Buffer.from(bytes).toString('base64')} ${times}\n`;
      expect(await streamExchange(target(s), line, { halfClose: true, ms: 15000 }).then(String)).toBe('scribbled\n');
      expect(await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ 127\.0\.0\.1\n$/);
    }
    await until(() => s.stats().accepted === 1 + 2 * scribbles.length && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ errors: 0, restarts: 0 });
  }, 30000);

  test("a record forged on the bookkeeping descriptor for the child's next connection leaves no connection counted twice or open for ever", async () => {
    const s = await started(serve, bootstrap(AcceptingChild)); // the warm-up is the child's connection -1
    const forged = '\x1e{"t":"accepted","id":-3,"client":{"host":"127.0.0.1","port":9,"family":"IPv4"}}\n';
    expect(await streamExchange(target(s), `scribble ${Buffer.from(forged).toString('base64')} 1\n`, { halfClose: true, ms: 15000 }).then(String)).toBe('scribbled\n'); // -2
    expect(await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ 127\.0\.0\.1\n$/); // -3, said twice
    await until(() => s.stats().accepted === 3 && s.stats().active === 0, 10000);
    await within(5000, 'shutdown', s.shutdown()); // waits for no connection that has ended
  });

  test('handleRequest() lets the children accept until one has taken a connection, which is served; with no client it returns after timeout', async () => {
    const s = await bootstrap(AcceptingChildren, { timeout: 0.3 });
    try {
      const reply = streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String);
      await within(15000, 'handleRequest', s.handleRequest());
      expect(await reply).toMatch(/^\d+ 127\.0\.0\.1\n$/);
      expect(childIds(s)).toContain((await reply).split(' ')[0]);
      await within(5000, 'handleRequest to time out', s.handleRequest());
      expect(s.stats().accepted).toBe(1);
    } finally {
      await s.close();
    }
  });

  // The three servers are blocked together: one wait of 1.5 s for the replies that must not come, not one
  // each in turn (three tests), which saved ~3 s.
  test('with connectionsPerChild: 1, perRequest or a global limit (maxConnections) the main thread accepts: nobody is served while it is blocked, and it hands the connection over afterwards', async () => {
    const handlers = [
      ['connectionsPerChild: 1', ChildPerConnectionHere],
      ['perRequest', ChildPerRequestHere],
      ['a global limit (maxConnections)', LimitedChildrenHere],
    ] as const;
    const servers: Array<[string, Server]> = [];
    for (const [name, Handler] of handlers) servers.push([name, await started(serve, bootstrap(Handler as never))]);
    const replies = whileMainThreadBlocked(servers.map(([, s]) => target(s)), servers.map(() => 'who\n'), { ms: 1500 });
    expect(servers.map(([name], i) => [name, replies[i]])).toEqual(servers.map(([name]) => [name, 'timeout']));
    for (const [name, s] of servers) {
      const reply = await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String);
      expect([name, reply]).toEqual([name, expect.stringMatching(/^\d+ 127\.0\.0\.1\n$/)]);
    }
  });
});

// Where Node has no reusePort (Node 20, 22 before 22.12), the opt-in does nothing: one info line says so (it said nothing, new-user run).
describe('SOCKSERVE_THREADS_REUSEPORT=1 on a Node without reusePort', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  const before = process.env.SOCKSERVE_THREADS_REUSEPORT;
  afterEach(() => {
    if (before === undefined) delete process.env.SOCKSERVE_THREADS_REUSEPORT;
    else process.env.SOCKSERVE_THREADS_REUSEPORT = before;
  });

  test(`is said once at start-up (${supportsReusePort() ? 'not here: this Node has it' : 'this Node has none'})`, async () => {
    process.env.SOCKSERVE_THREADS_REUSEPORT = '1';
    const logger = memoryLogger();
    serve(await bootstrap(AcceptingThreads, { logger }));
    const said = logger.lines.info.filter((line) => line.includes('SOCKSERVE_THREADS_REUSEPORT=1 is ignored'));
    expect(said).toHaveLength(supportsReusePort() ? 0 : 1);
  });
});

// Opt-in (SOCKSERVE_THREADS_REUSEPORT=1, see src/runtime.ts): turned on here for this block, where Node has it.
(supportsReusePort() && process.env.SOCKSERVE_WORKER_ACCEPT !== '0' ? describe : describe.skip)('@Threading threads listen with reusePort (Node 22.12+, SOCKSERVE_THREADS_REUSEPORT=1)', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  const before = process.env.SOCKSERVE_THREADS_REUSEPORT;
  beforeAll(() => {
    process.env.SOCKSERVE_THREADS_REUSEPORT = '1';
    expect(workerAcceptMechanism().threadingTcp).toBe('worker-accepts');
  });
  afterAll(() => {
    if (before === undefined) delete process.env.SOCKSERVE_THREADS_REUSEPORT;
    else process.env.SOCKSERVE_THREADS_REUSEPORT = before;
  });

  test('threads serve new connections while the server\'s main thread is blocked (those the kernel gives the main thread wait for it)', async () => {
    const s = await started(serve, bootstrap(AcceptingThreads));
    await until(() => s.stats().workers.length === 2, 10000);
    const replies = whileMainThreadBlocked(target(s), Array.from({ length: 12 }, () => 'who\n'), { ms: 3000 });
    const served = replies.filter((r) => r !== 'timeout');
    expect(served.length).toBeGreaterThan(0);
    for (const reply of served) expect(childIds(s)).toContain(reply.split(' ')[0]);
  });

  test('maxConnectionsPerThread recycles the thread that accepts; a client the kernel had queued on it as it retired is reset (why this mode is opt-in) and is served on retry', async () => {
    const s = serve(await bootstrap(RecycledAcceptingThread));
    const ids: string[] = [];
    let resets = 0;
    // Past its count (3) the only thread goes on accepting until its successor listens (no gap), then stops.
    const deadline = Date.now() + 20000;
    while ((ids.length < 7 || new Set(ids).size < 2) && Date.now() < deadline) {
      if (ids.length >= 7) await new Promise((r) => setTimeout(r, 50));
      let reply = (await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).catch(() => Buffer.alloc(0))).toString();
      if (reply === '') {
        resets++; // queued on the retiring thread's own accept queue: reset by the kernel
        reply = (await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 })).toString();
      }
      ids.push(reply.split(' ')[0]);
    }
    expect(resets).toBeLessThanOrEqual(2);
    expect(ids.every((p) => /^\d+$/.test(p))).toBe(true);
    expect(new Set(ids).size).toBeGreaterThanOrEqual(2);
  });

  test('with a global limit the main thread accepts: nobody is served while it is blocked', async () => {
    const s = await started(serve, bootstrap(LimitedThreadsHere));
    expect(whileMainThreadBlocked(target(s), ['who\n'], { ms: 1500 })).toEqual(['timeout']);
    expect(await streamExchange(target(s), 'who\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ 127\.0\.0\.1\n$/);
  });
});

/** Connects, sends `line`, resolves with the socket once its first line (`started`) has come; `rest` resolves with what follows. */
function inFlight(port: number, line: string): Promise<{ rest: Promise<string> }> {
  return within(15000, 'a request to start', new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(line));
    let got = '';
    let settle: (v: string) => void;
    const rest = new Promise<string>((r) => (settle = r));
    s.on('data', (d) => {
      got += d;
      if (got.startsWith('started\n')) resolve({ rest });
    });
    s.on('error', reject);
    s.on('close', () => settle(got.slice('started\n'.length)));
  }));
}

/** 'served', 'refused' (ECONNREFUSED) or 'reset' (accepted, then closed without a reply). */
function probe(port: number): Promise<string> {
  return within(10000, 'a probe', new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end('who\n'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'reset'));
    s.once('close', () => resolve(got ? 'served' : 'reset'));
  }));
}

const modes = [{ mode: 'forking', on: true }, { mode: 'threading', on: supportsReusePort() && process.env.SOCKSERVE_WORKER_ACCEPT !== '0' }];

describe.each(modes.filter((m) => m.on))('SIGTERM with workers accepting ($mode)', ({ mode }) => {
  const children: ChildProcess[] = [];
  afterEach(() => children.splice(0).forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));

  test('50 requests in flight get their 50 replies, new clients are refused once the listeners close, and the process exits 0', async () => {
    // threads: the opt-in reusePort mode
    const server = await startFixture('accepting-drain-server.ts', { env: { ACCEPT_MODE: mode, SOCKSERVE_THREADS_REUSEPORT: '1' }, children });
    const { child, port, exited } = server;
    expect(await probe(port)).toBe('served');
    const requests = await Promise.all(Array.from({ length: 50 }, () => inFlight(port, 'slow 1000\n')));
    child.kill('SIGTERM');
    const outcomes: string[] = [];
    while (outcomes[outcomes.length - 1] !== 'refused' && outcomes.length < 200) {
      outcomes.push(await probe(port));
      await new Promise((r) => setTimeout(r, 20));
    }
    // Served until the listeners close, then refused; a client caught in the instant they close may be reset.
    expect(outcomes.join(' ')).toMatch(/^(served )*(reset )?refused$/);
    const replies = await within(20000, 'the 50 replies', Promise.all(requests.map((r) => r.rest)));
    expect(replies).toEqual(Array.from({ length: 50 }, () => 'done\n'));
    expect(await within(20000, 'exit', exited)).toBe(0);
    expect(server.out()).toContain('drained');
  }, 120000); // a child process loading TypeScript, and its workers: start-up alone can take many seconds on a busy machine

  test('a worker whose event loop is blocked holds the drain for shutdownTimeout, not until its heartbeat: then new clients are refused and the process exits', async () => {
    // The blocked worker cannot close its listener (a child's copy of the shared socket keeps it listening).
    // shutdownTimeout 1 s (it only has to run out: nothing is in flight but the spinner, and no bound below is
    // near it; 2 s before, ~2 s more); the heartbeat (60 s) would end it long after every bound below.
    const server = await startFixture('accepting-drain-server.ts', {
      env: { ACCEPT_MODE: mode, SOCKSERVE_THREADS_REUSEPORT: '1', SHUTDOWN_TIMEOUT: '1', HEARTBEAT_TIMEOUT: '60' },
      children,
    });
    const { child, port, exited } = server;
    // One worker blocked is enough: it keeps its listener (for children, its copy of the shared socket).
    const spinning = await within(10000, 'a worker spinning', new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('spin\n'));
      s.on('data', (d) => d.toString().startsWith('spinning') && resolve(s));
      s.on('error', reject);
    }));
    spinning.on('error', () => undefined);
    const signalled = Date.now();
    child.kill('SIGTERM');
    const outcomes: string[] = [];
    while (outcomes[outcomes.length - 1] !== 'refused' && Date.now() - signalled < 15000) {
      outcomes.push(await probe(port));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(outcomes[outcomes.length - 1]).toBe('refused');
    expect(await within(15000, 'exit', exited)).toBe(0);
    // shutdownTimeout for the listeners, then for the drain: well before the 60 s heartbeat.
    expect(Date.now() - signalled).toBeLessThan(20000);
    spinning.destroy();
  }, 120000);
});

// The same counts in every mode, whoever runs @Verify (the server's process, or the child that accepted).
describe.each([
  { mode: '@Concurrent', Handler: VerifyLaterConcurrent },
  { mode: '@Threading', Handler: VerifyLaterThread },
  { mode: '@Forking', Handler: VerifyLaterChild },
])('an async @Verify ($mode)', ({ Handler }) => {
  // One server for the describe's tests, started by the first that runs: each waits until its client is
  // counted and nothing is active, and checks the counts against those it found. A server started and
  // warmed up (a 300 ms @Verify) per test cost ~0.3-0.5 s a test.
  let running: [Server, Promise<void>] | undefined;
  let ready: Promise<Server> | undefined;
  afterAll(async () => {
    if (!running) return;
    const [s, loop] = running;
    await within(10000, 'shutdown', s.shutdown());
    await s.close();
    await within(10000, 'the serve loop to exit', loop);
    expect(s.stats().workers.length).toBe(0);
  });
  /** Served, its warm-up request ended and counted (a worker's counts arrive after the reply). */
  const start = () => (ready ??= (async () => {
    const s = await started((server) => ((running = [server, server.serveForever(0.05)]), server), bootstrap(Handler));
    await until(() => s.stats().active === 0 && s.stats().bytesIn > 0, 10000);
    return s;
  })());

  /** A client bound to `localAddress` (another loopback address). */
  const connectFrom = (s: Server, localAddress: string) => within(5000, 'connect', new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect({ port: (s.serverAddress as { port: number }).port, host: '127.0.0.1', localAddress }, () => resolve(c));
    c.once('error', reject);
  }));

  test.each([
    { what: 'refuses', from: REFUSED_LOOPBACK, counted: 'rejected' as const },
    { what: 'fails on (throws)', from: FAILING_LOOPBACK, counted: 'errors' as const },
  ])('a client it $what counts in $counted only: none of the bytes it sent while @Verify ran', async ({ from, counted }) => {
    const s = await start();
    const before = s.stats();
    const client = await connectFrom(s, from);
    client.on('error', () => undefined);
    const closed = readToEnd(client).catch(() => Buffer.alloc(0));
    client.write('who\n');
    expect(String(await within(10000, 'the client closed', closed))).toBe('');
    await until(() => s.stats()[counted] === before[counted] + 1 && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({
      accepted: before.accepted + 1, bytesIn: before.bytesIn, bytesOut: before.bytesOut,
      errors: before.errors, rejected: before.rejected, clientErrors: before.clientErrors, [counted]: before[counted] + 1,
    });
  });

  test('a client that sends a line and resets while @Verify runs is a client error (ECONNRESET), not a clean request', async () => {
    const s = await start();
    const before = s.stats();
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    client.write('who\n');
    await new Promise((r) => setTimeout(r, 100)); // read by a worker that owns the socket, while @Verify waits
    client.resetAndDestroy();
    await until(() => s.stats().clientErrors === before.clientErrors + 1 && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ accepted: before.accepted + 1, errors: before.errors, healthChecks: before.healthChecks });
  });

  test('a client that resets while @Verify runs, having sent nothing, is a health check: no error, no client error', async () => {
    const s = await start();
    const before = s.stats();
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    client.resetAndDestroy();
    await until(() => s.stats().healthChecks === before.healthChecks + 1 && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ accepted: before.accepted + 1, errors: before.errors, clientErrors: before.clientErrors, rejected: before.rejected });
    expect(await streamExchange(target(s), 'next\n', { halfClose: true, ms: 15000 }).then(String)).toMatch(/^\d+ next\n$/);
    // counted before a later test on this server takes its figures
    await until(() => s.stats().active === 0 && s.stats().bytesIn > before.bytesIn, 10000);
  });
});
