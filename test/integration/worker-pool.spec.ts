import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { bootstrap, ConfigurationError, RequestTimeoutError, Server, WorkerCrashedError } from '../../src';
import { CrashingOneAtATimeChildren, CrashingOneAtATimeThreads, CrashingPerRequestChildren, CrashingPerRequestThreads, DyingChild, dyingMark, DyingThread, TwoDyingThreads } from '../fixtures/dying-handlers';
import { FlakyChild, flakyMark, FlakyThread } from '../fixtures/flaky-handlers';
import AliasedDefault, { AliasedForked } from '../fixtures/aliased-handlers';
import { SingleChild } from '../fixtures/forked-handlers';
import { HangingStartThread, hangMark, TwoThreadsOneHangs } from '../fixtures/hanging-start-handlers';
import { SingleThreadTcp } from '../fixtures/threaded-handlers';
import { TinyHeapThread } from '../fixtures/tiny-heap-handlers';
import { slowMark, SlowStartingChildPerRequest, SlowStartingPerRequest, SlowStartingThread } from '../fixtures/slow-start-handlers';
import { connect, readToEnd, streamExchange, Target, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}
const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 10000 }).then(String);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const providers = [{ provide: 'suffix', useValue: '!' }];

describe.each([
  { mode: 'threads', Single: SingleThreadTcp },
  { mode: 'children', Single: SingleChild },
])('a pool of one of $mode', ({ Single }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => {
    Single.errors.length = 0;
    Single.verified = 0;
  });

  test('req.server in a worker has the server\'s address, and its shutdown() stops the server', async () => {
    const s = serve(await bootstrap(Single, { providers }));
    expect(JSON.parse(await ask(s, 'address\n'))).toEqual(s.serverAddress);
    expect(await ask(s, 'shutdown\n')).toBe('bye');
    await within(5000, 'serveForever to return after a handler asked for shutdown', serve.loopOf(s));
  });

  test('a request that runs past requestTimeout while its worker is not blocked is not ended', async () => {
    const s = serve(await bootstrap(Single, { providers, requestTimeout: 1 }));
    const client = await within(5000, 'connect', connect(target(s)));
    try {
      const reply = within(10000, 'reply', readToEnd(client));
      client.write('count\n');
      for (let i = 0; i < 6; i++) {
        await sleep(250); // each read waits less than requestTimeout; the whole request takes longer
        client.write(`line ${i}\n`);
      }
      client.end();
      expect((await reply).toString()).toBe('6 lines');
      expect(Single.errors).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  /** One request busy in the only worker (for 400 ms), a second taken by the loop and sharing it; then `act`. */
  async function withOneWaiting(s: Server, waiterSends: string, act: (waiting: import('node:net').Socket) => Promise<void>): Promise<void> {
    const [busy, waiting] = await Promise.all([connect(target(s)), connect(target(s))]);
    busy.on('error', () => undefined);
    waiting.on('error', () => undefined);
    try {
      const napping = new Promise((r) => busy.once('data', r));
      busy.write('nap 400\n');
      await within(5000, 'the busy request to start', napping); // its reads are done: shutdown cannot cut them
      waiting.write(waiterSends);
      await until(() => Single.verified === 2);
      await act(waiting);
    } finally {
      busy.destroy();
      waiting.destroy();
    }
  }

  test('shutdownTimeout ends a request that never finishes in its worker, and its connection, reported as RequestTimeoutError (not a crash)', async () => {
    const s = serve(await bootstrap(Single, { providers, shutdownTimeout: 0.3 }));
    const client = await within(5000, 'connect', connect(target(s)));
    client.on('error', () => undefined);
    try {
      const closed = new Promise((r) => client.once('close', r));
      const hanging = new Promise((r) => client.once('data', r));
      client.write('hang\n');
      await within(5000, 'the handler to start', hanging);
      client.resume();
      await within(5000, 'shutdown', s.shutdown());
      await within(5000, 'serveForever to return', serve.loopOf(s));
      await within(5000, 'the connection to close', closed);
      expect(Single.errors[0]).toBeInstanceOf(RequestTimeoutError); // as a request abandoned in the server's process
      expect(Single.errors[0].message).toMatch(/still running in its (threading|forking) worker when shutdownTimeout passed/);
    } finally {
      client.destroy();
    }
  });

  /** The main thread accepts and hands connections over: @Verify runs here, and a connection can wait here for its worker. */
  const handingOver = (start: Promise<Server>) => start.finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT);
  const mainAccepts = () => (process.env.SOCKSERVE_WORKER_ACCEPT = '0');

  test('a request whose bytes came before shutdown() is served, though it gets its worker only after', async () => {
    mainAccepts();
    const s = serve(await handingOver(bootstrap(Single, { providers })));
    await withOneWaiting(s, 'queued\n', async (waiting) => {
      const reply = within(10000, 'the waiting request\'s reply', readToEnd(waiting));
      await within(5000, 'shutdown', s.shutdown());
      expect((await reply).toString()).toMatch(/: queued!$/);
    });
  });

  test('an idle connection that gets its worker only after shutdown() began ends at once', async () => {
    mainAccepts();
    const s = serve(await handingOver(bootstrap(Single, { providers })));
    await withOneWaiting(s, '', async () => {
      await within(10000, 'shutdown', s.shutdown()); // not the 30 s shutdownTimeout (an idle connection gets 1 s for its first byte)
    });
  });
});

describe.each([
  { mode: 'threads', Flaky: FlakyThread },
  { mode: 'children', Flaky: FlakyChild },
])('a pool of $mode whose workers stop loading', ({ Flaky }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => {
    fs.rmSync(flakyMark, { force: true });
    Flaky.errors.length = 0;
    Flaky.verified = 0;
  });

  test('when replacements cannot load, a new connection fails with the load error after a few tries, and a later one starts a worker again', async () => {
    // Where the main thread accepts (with workers accepting, no connection reaches the pool to fail: the
    // pool starts a worker again after a backoff, and queued clients wait for it in the kernel).
    process.env.SOCKSERVE_WORKER_ACCEPT = '0';
    const s = serve(await bootstrap(Flaky).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT));
    const client = await within(5000, 'connect', connect(target(s)));
    try {
      fs.writeFileSync(flakyMark, ''); // from now on a worker cannot load the handler
      client.write('exit\n'); // the worker dies; its replacements cannot load
      await within(5000, 'the dead worker\'s connection to close', readToEnd(client));
      await until(() => Flaky.errors.some((e) => e instanceof WorkerCrashedError), 5000);
      await until(() => s.stats().workers.length === 0, 10000); // replacements tried and given up on
      expect(await ask(s, 'lost\n')).toBe('');
      await until(() => Flaky.errors.some((e) => e.message.includes('cannot load its handler now')), 10000);
      expect(Flaky.errors.find((e) => e.message.includes('cannot load'))!.message).toMatch(/^Flaky\w+: no \w+ worker could be started for this request. Reason:\n  this worker cannot load/);
      expect(s.stats().workers.length).toBe(0); // none left over, none still being started
    } finally {
      client.destroy();
    }
    // Within 1 s of the last failed start a new connection fails at once with the reason (no spawn storm
    // under a flood while a deploy is broken); after that, one tries again.
    expect(await ask(s, 'at once\n')).toBe('');
    fs.rmSync(flakyMark);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await ask(s, 'again\n')).toMatch(/: again$/);
    expect(s.stats().workers.length).toBe(1);
  }, 60000); // six workers start and die: a child loading TypeScript takes seconds on a busy machine
});

describe.each([
  { mode: 'threads', Dying: DyingThread },
  { mode: 'children', Dying: DyingChild },
])('a pool of $mode whose workers keep dying', ({ Dying }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(dyingMark, { force: true }));

  test('more than five deaths in ten seconds start a backoff, logged once and counted in restarts; a connection meanwhile waits and is served', async () => {
    const warnings: string[] = [];
    const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info: () => undefined };
    fs.writeFileSync(dyingMark, ''); // workers started from now on exit 50 ms after they start
    const s = serve(await bootstrap(Dying, { logger }));
    await until(() => warnings.some((w) => w.includes('died within 10 s')), 50000);
    fs.rmSync(dyingMark); // the worker started after this backoff lives
    expect(warnings.filter((w) => w.includes('died within 10 s'))).toEqual([
      expect.stringMatching(new RegExp(`^${Dying.name}: 6 \\w+ workers died within 10 s; the next one starts in 1 s .*\\. The last one: it exited with code 9\\. Fix: `)),
      // (was: sockserve: …, which did not say which of bootstrap([A, B])'s servers backs off)
    ]);
    // Each death before the backoff says why, as the worker served no connection to report it through @HandleError
    // (the backoff's own line pointed to reports that never came: no word of why they died).
    const idle = warnings.filter((w) => w.includes('died serving no connection'));
    expect(idle.length).toBeGreaterThanOrEqual(5);
    for (const line of idle) expect(line).toMatch(new RegExp(`^${Dying.name}: the \\w+ worker \\d+ died serving no connection: it exited with code 9; a new worker takes its place\\. Fix: `));
    expect(s.stats().restarts).toBeGreaterThanOrEqual(6); // every death replaced counts (slow starts may spread them past 10 s)
    expect(await ask(s, 'served\n')).toMatch(/: served$/);
    expect(s.stats().workers.length).toBe(1);
  }, 60000); // six workers start and die: a child loading TypeScript takes seconds on a busy machine
});

describe('a child killed from outside while it serves no connection', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test('is logged as killed by that signal, without a Fix that blames an error of its own', async () => {
    const warnings: string[] = [];
    const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info: () => undefined };
    const s = serve(await bootstrap(SingleChild, { logger, providers: [{ provide: 'suffix', useValue: '!' }] }));
    const [worker] = s.stats().workers;
    process.kill(worker.pid!, 'SIGKILL');
    await until(() => warnings.some((w) => w.includes('died serving no connection')), 15000);
    // It said "Fix: an error thrown or a promise rejected outside a request … catch it there" (new-user run).
    expect(warnings).toEqual([expect.stringMatching(/died serving no connection: it was killed by SIGKILL; a new worker takes its place\. Nothing of its own ended it: a signal from outside did/)]);
    await until(() => s.stats().restarts === 1 && s.stats().workers.length === 1, 15000); // replaced
  }, 30000);
});

/**
 * `n` connections to `s`, each reading from its connect on (a refused one may be closed before the last of them
 * connects), within `ms`; `replies[i]` is what client i read until the close ('' for a refused one, whose write
 * may also be reset).
 */
async function connections(s: Server, n: number, ms: number): Promise<{ clients: net.Socket[]; replies: Promise<string>[] }> {
  const clients: net.Socket[] = [];
  const replies: Promise<string>[] = [];
  await within(ms, `${n} connections`, Promise.all(Array.from({ length: n }, (_, i) => connect(target(s)).then((c) => {
    clients[i] = c;
    replies[i] = readToEnd(c).then(String, () => '');
  }))));
  return { clients, replies };
}

/** Every reply comes: `served` of them the echo of their line, `refused` of them nothing. */
async function expectServedAndRefused(replies: Promise<string>[], served: number, refused: number): Promise<void> {
  const got = await within(20000, 'every reply', Promise.all(replies));
  expect(got.filter((r) => r === '')).toHaveLength(refused);
  expect(got.filter((r) => /: client \d+$/.test(r))).toHaveLength(served);
}

describe('connections while no worker of a pool is alive', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(dyingMark, { force: true }));

  test('at most 511 wait for the next worker (and are served by it); later ones are refused at once, counted in rejected and said once', async () => {
    const warnings: string[] = [];
    const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info: () => undefined };
    fs.writeFileSync(dyingMark, '');
    process.env.SOCKSERVE_WORKER_ACCEPT = '0'; // the main thread accepts: connections reach the pool and wait there
    const s = serve(await bootstrap(DyingThread, { logger }).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT));
    // The third backoff (4 s) leaves time for the flood below to be accepted before a worker starts again.
    await until(() => warnings.some((w) => /starts in 4 s/.test(w)), 50000);
    await until(() => s.stats().workers.length === 0, 5000);
    fs.rmSync(dyingMark); // the worker started after this backoff lives
    const { clients, replies } = await connections(s, 520, 5000);
    try {
      clients.forEach((c, i) => c.end(`client ${i}\n`));
      // The first 511 wait for the next worker; the other 9 are closed at once, while no worker is alive yet.
      await until(() => s.stats().rejected === 9, 3000);
      expect(s.stats().workers.length).toBe(0);
      await expectServedAndRefused(replies, 511, 9);
      expect(warnings.filter((w) => w.includes('connections already wait'))).toEqual([
        expect.stringMatching(/^\w+: no threading worker is alive .* 511 connections already wait .* stats\(\)\.rejected/),
      ]);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  }, 60000);
});

describe('connections while the replacement of a dead worker starts', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(slowMark, { force: true }));

  test('at most 511 wait for it (and are served by it); later ones are refused at once, counted in rejected', async () => {
    process.env.SOCKSERVE_WORKER_ACCEPT = '0'; // the main thread accepts: connections reach the pool and wait there
    const s = serve(await bootstrap(SlowStartingThread, { logger: { error: () => undefined, warn: () => undefined, info: () => undefined } }).finally(() => delete process.env.SOCKSERVE_WORKER_ACCEPT));
    fs.writeFileSync(slowMark, ''); // the replacement takes 3 s to load
    await streamExchange(target(s), 'exit\n', { halfClose: true, ms: 10000 }).catch(() => undefined);
    await until(() => s.stats().restarts === 1, 10000);
    const { clients, replies } = await connections(s, 520, 2500);
    fs.rmSync(slowMark);
    try {
      clients.forEach((c, i) => c.end(`client ${i}\n`));
      // Before: booked on the replacement still loading, all were held (hostile re-check: 1,500 descriptors).
      await until(() => s.stats().rejected === 9, 3000);
      await expectServedAndRefused(replies, 511, 9);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  }, 60000);
});

describe.each([
  { mode: 'threading', handler: SlowStartingPerRequest },
  // a child blocked in its load cannot act on SIGTERM: it finished loading in the 2 s grace and served a
  // request after shutdown's timeout (hostile re-check); a child that has not started is killed at once
  { mode: 'forking', handler: SlowStartingChildPerRequest },
])('shutdown while $mode workers per connection are still loading', ({ mode, handler }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(slowMark, { force: true }));

  test('their connections are closed at shutdownTimeout, and the workers the pool ended are not said to have failed to start', async () => {
    const lines: string[] = [];
    const logger = { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), info: () => undefined };
    const s = serve(await bootstrap(handler, { logger, shutdownTimeout: 0.5 }));
    fs.writeFileSync(slowMark, ''); // each connection's worker takes 3 s to load
    const clients = await Promise.all([1, 2, 3].map(() => connect(target(s))));
    try {
      const ends = clients.map((c) => readToEnd(c).catch(() => Buffer.alloc(0)));
      clients.forEach((c, i) => c.write(`client ${i}\n`));
      await until(() => s.stats().active === 3, 5000);
      const began = Date.now();
      await within(15000, 'shutdown', s.shutdown());
      // not after a fresh worker's 3 s start: the pool tried each request again on a new worker (hostile run: 11 s with shutdownTimeout 4)
      expect(Date.now() - began).toBeLessThan(2500);
      expect((await within(5000, 'the clients to be closed', Promise.all(ends))).map(String)).toEqual(['', '', '']);
      expect(lines.filter((l) => /could not start/.test(l))).toEqual([]);
      // reported as requests that waited for a worker, not as handlers abandoned (none ran)
      expect(lines.filter((l) => /RequestTimeoutError/.test(l))).toHaveLength(3);
      for (const l of lines.filter((l) => /RequestTimeoutError/.test(l))) expect(l).toMatch(new RegExp(`still waiting for a ${mode} worker`));
    } finally {
      clients.forEach((c) => c.destroy());
    }
  }, 60000);
});

describe('two workers that keep dying', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(dyingMark, { force: true }));

  test('each backoff doubles the last one once, however many workers die while it runs, and each is logged (it went 1, 4, 16 s)', async () => {
    const warnings: string[] = [];
    const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info: () => undefined };
    fs.writeFileSync(dyingMark, '');
    serve(await bootstrap(TwoDyingThreads, { logger }));
    const backoffs = () => warnings.filter((w) => w.includes('died within 10 s')).map((w) => /starts in (\d+) s/.exec(w)?.[1]);
    await until(() => backoffs().length >= 2, 50000);
    fs.rmSync(dyingMark);
    expect(backoffs().slice(0, 2)).toEqual(['1', '2']);
  }, 60000);
});

describe('a worker whose module never finishes loading', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  afterEach(() => fs.rmSync(hangMark, { force: true }));

  test('fails bootstrap() after the start bound (heartbeatTimeout, at least 30 s: 3 s here) with a ConfigurationError that says so (it hung for ever)', async () => {
    fs.writeFileSync(hangMark, '');
    // The bound's floor, 30 s, is shortened for this test (waited out whole, it cost 30 s on each Node line).
    process.env.SOCKSERVE_TEST_START_BOUND_S = '3';
    try {
      const t0 = performance.now();
      const failed = await within(20000, 'bootstrap() to fail', bootstrap(HangingStartThread, { heartbeatTimeout: 1 }).then((s) => s.close().then(() => undefined), (e: unknown) => e));
      expect(failed).toBeInstanceOf(ConfigurationError);
      expect((failed as Error).message).toMatch(/did not finish loading the handler's module within 3 s/);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(2900); // the floor, not heartbeatTimeout (1 s)
    } finally {
      delete process.env.SOCKSERVE_TEST_START_BOUND_S;
    }
  }, 60000);

  test('a replacement that hangs starting takes no connection while a started worker has room (half of them waited on it)', async () => {
    const s = serve(await bootstrap(TwoThreadsOneHangs));
    fs.writeFileSync(hangMark, ''); // the replacement of the worker that exits next hangs loading
    await ask(s, 'exit\n').catch(() => '');
    await until(() => s.stats().restarts === 1, 10000);
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect(target(s))));
    try {
      const replies = clients.map((c) => within(6000, 'a reply', readToEnd(c)).then(String));
      clients.forEach((c, i) => c.end(`hi ${i}\n`));
      const got = await Promise.all(replies);
      expect(got.map((r) => r.replace(/^\d+ /, ''))).toEqual(clients.map((_, i) => `hi ${i}\n`));
      expect(new Set(got.map((r) => r.split(' ')[0])).size).toBe(1); // all on the worker that is running
    } finally {
      clients.forEach((c) => c.destroy());
    }
  }, 60000);
});

describe('a handler exported under another name', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test.each([
    ['a default export, in a thread', AliasedDefault, /^thread \d+ hi$/],
    ['an `export { X as Y }`, in a child', AliasedForked, /^child \d+ hi$/],
  ])('is found by workers: %s', async (_, Handler, reply) => {
    const s = serve(await bootstrap(Handler as never));
    expect(await ask(s, 'hi\n')).toMatch(reply);
  });
});

// A worker per connection dies once, with its own request: clients that crash their own workers must not make
// every other client wait for the restart backoff (hostile run: 1.4 s, 2.4 s, 4.4 s, 8.5 s, up to 30 s).
describe.each([
  { mode: '@Threading', handler: CrashingPerRequestThreads },
  { mode: '@Forking', handler: CrashingPerRequestChildren },
  { mode: '@Threading with connectionsPerThread: 1', handler: CrashingOneAtATimeThreads },
  { mode: '@Forking with connectionsPerChild: 1', handler: CrashingOneAtATimeChildren },
])('$mode: clients that crash their own workers', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('each crash is reported to its own client and counted, and starts no backoff for the others', async () => {
    const lines: string[] = [];
    const logger = { warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m), info: () => undefined };
    const s = serve(await bootstrap(handler, { logger }));
    // seven deaths within 10 s: past the backoff's five
    for (let i = 0; i < 7; i++) expect(await ask(s, 'crash\n')).toBe('');
    expect(await ask(s, 'still served\n')).toBe('still served\n');
    await until(() => s.stats().errors === 7, 10000);
    expect(s.stats()).toMatchObject({ errors: 7, restarts: 7 });
    expect(lines.filter((l) => /backoff/.test(l))).toEqual([]);
    expect(lines.filter((l) => /WorkerCrashedError/.test(l))).toHaveLength(7);
  }, 60000);
});

// Its Fix said to move the handler to a module of its own, where the worker had run out of its heap (hostile run).
describe('a thread whose resourceLimits are too small to load the handler', () => {
  test('bootstrap() rejects with a ConfigurationError whose Fix says to raise resourceLimits', async () => {
    const failed = await within(60000, 'bootstrap to fail', bootstrap(TinyHeapThread).then(
      (s) => s.close().then(() => new Error('bootstrap() resolved')),
      (err: Error) => err,
    ));
    expect(failed).toBeInstanceOf(ConfigurationError);
    expect(failed.message).toMatch(/could not load the handler\. Reason:\n {2}.*out of memory/);
    expect(failed.message).toContain('Fix: the worker ran out of memory loading the handler\'s module');
    expect(failed.message).not.toContain('declare the handler in a module');
  }, 70000);
});
