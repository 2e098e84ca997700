import { ConcurrentMixIn, SystemExit } from '../../src/classic';
import { FakeServer, sleep, until } from '../fakes/fake-server';

const ConcurrentFake = ConcurrentMixIn(FakeServer);

describe('BaseServer request loop (in-memory transport)', () => {
  let server: FakeServer;
  beforeEach(() => {
    server = new FakeServer();
  });
  afterEach(async () => {
    await server.close();
  });

  test('handleRequest runs the stages in Python order, each exactly once', async () => {
    server.push('a');
    await server.handleRequest();
    expect(server.calls).toEqual([
      'getRequest a', 'verifyRequest a', 'processRequest a', 'finishRequest a',
      'setup a', 'handle a', 'finish a', 'shutdownRequest a', 'closeRequest a',
    ]);
  });

  test('a refused request is shut down once and no handler is built', async () => {
    server.verdict = () => false;
    server.push('a');
    await server.handleRequest();
    expect(server.calls).toEqual(['getRequest a', 'verifyRequest a', 'shutdownRequest a', 'closeRequest a']);
  });

  test('an error in handle runs finish, then handleError, then shutdownRequest, and the next request is served', async () => {
    server.push('bad', () => { throw new Error('boom'); });
    server.push('good');
    await server.handleRequest();
    await server.handleRequest();
    expect(server.calls).toEqual([
      'getRequest bad', 'verifyRequest bad', 'processRequest bad', 'finishRequest bad',
      'setup bad', 'handle bad', 'finish bad', 'handleError bad boom', 'shutdownRequest bad', 'closeRequest bad',
      'getRequest good', 'verifyRequest good', 'processRequest good', 'finishRequest good',
      'setup good', 'handle good', 'finish good', 'shutdownRequest good', 'closeRequest good',
    ]);
  });

  test('an error in setup skips finish but still reaches handleError and closes the request', async () => {
    server.push('a', undefined, 'no setup');
    await server.handleRequest();
    expect(server.calls).toEqual([
      'getRequest a', 'verifyRequest a', 'processRequest a', 'finishRequest a',
      'handleError a no setup', 'shutdownRequest a', 'closeRequest a',
    ]);
  });

  test('a throwing verifyRequest ends that request through handleError instead of stopping the server', async () => {
    server.verdict = () => { throw new Error('verify failed'); };
    server.push('a');
    await server.handleRequest();
    expect(server.calls).toEqual(['getRequest a', 'verifyRequest a', 'handleError a verify failed', 'shutdownRequest a', 'closeRequest a']);
  });

  test('SystemExit skips handleError, closes the request and propagates out of handleRequest', async () => {
    server.push('a', () => { throw new SystemExit(3); });
    await expect(server.handleRequest()).rejects.toBeInstanceOf(SystemExit);
    expect(server.calls).toEqual([
      'getRequest a', 'verifyRequest a', 'processRequest a', 'finishRequest a',
      'setup a', 'handle a', 'finish a', 'shutdownRequest a', 'closeRequest a',
    ]);
  });

  test('handleRequest returns handleTimeout() after timeout seconds with no request', async () => {
    server.timeout = 0.05;
    const started = Date.now();
    await expect(server.handleRequest()).resolves.toBe('timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(server.calls).toEqual(['handleTimeout']);
  });

  test('serveForever serves queued requests in order and calls serviceActions once per turn', async () => {
    const loop = server.serveForever(0.01);
    server.push('a');
    server.push('b');
    await until(() => server.calls.includes('closeRequest b'));
    await sleep(30);
    await server.shutdown();
    await loop;
    const served = server.calls.filter((c) => c.startsWith('handle '));
    expect(served).toEqual(['handle a', 'handle b']);
    expect(server.calls.filter((c) => c === 'serviceActions').length).toBeGreaterThanOrEqual(3);
  });

  test('serial: the next request is taken only after the current one has finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = server.serveForever(0.01);
    server.push('slow', () => gate);
    server.push('next');
    await until(() => server.calls.includes('handle slow'));
    await sleep(30);
    expect(server.calls).not.toContain('getRequest next');
    release();
    await until(() => server.calls.includes('closeRequest next'));
    await server.shutdown();
    await loop;
  });

  test('shutdown waits for the request in flight and resolves when the loop has exited', async () => {
    let release!: () => void;
    const loop = server.serveForever(10);
    server.push('slow', () => new Promise<void>((r) => (release = r)));
    await until(() => server.calls.includes('handle slow'));
    const stopping = server.shutdown().then(() => server.calls.push('shutdown resolved'));
    await sleep(30);
    expect(server.calls).not.toContain('shutdown resolved');
    release();
    await stopping;
    await loop;
    expect(server.calls.indexOf('closeRequest slow')).toBeLessThan(server.calls.indexOf('shutdown resolved'));
  });

  test('shutdown wakes the loop at once instead of waiting a poll interval', async () => {
    const loop = server.serveForever(30);
    await sleep(10);
    const started = Date.now();
    await server.shutdown();
    await loop;
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('shutdown before serving resolves at once, twice is safe, and a later serveForever still serves', async () => {
    await server.shutdown();
    await server.shutdown();
    const loop = server.serveForever(0.01);
    server.push('a');
    await until(() => server.calls.includes('closeRequest a'));
    await Promise.all([server.shutdown(), server.shutdown()]);
    await loop;
  });

  test('a request queued after shutdown() is not taken', async () => {
    const loop = server.serveForever(0.01);
    await sleep(10);
    const stopping = server.shutdown();
    server.push('late');
    await stopping;
    await loop;
    expect(server.calls).not.toContain('getRequest late');
  });

  test('shutdownTimeout bounds the wait for a stuck handler', async () => {
    server.shutdownTimeout = 0.1;
    const loop = server.serveForever(0.01);
    server.push('stuck', () => new Promise(() => undefined));
    await until(() => server.calls.includes('handle stuck'));
    const started = Date.now();
    await server.shutdown();
    expect(Date.now() - started).toBeLessThan(2000);
    void loop;
  });

  test('serveForever after close rejects with a ServerClosedError', async () => {
    await server.close();
    await expect(server.serveForever()).rejects.toThrow('FakeServer.serveForever(): the server is closed');
  });

  test('serveForever() and then close() in the same turn: the loop ends as a running one would, no ServerClosedError (it said close() came first)', async () => {
    const loop = server.serveForever(10);
    await server.close();
    await expect(loop).resolves.toBeUndefined();
  });

  test('close is idempotent and stops a running loop', async () => {
    const loop = server.serveForever(10);
    await sleep(10);
    await Promise.all([server.close(), server.close()]);
    await loop;
  });

  test('the default handleError prints a traceback block to stderr and the server keeps serving', async () => {
    const plain = new (class extends FakeServer {
      override handleError(r: never, a: never, e: unknown) {
        return Object.getPrototypeOf(FakeServer.prototype).handleError.call(this, r, a, e);
      }
    })();
    const writes: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (writes.push(String(s)), true));
    try {
      plain.push('bad', () => { throw new Error('kaboom'); });
      plain.push('good');
      await plain.handleRequest();
      await plain.handleRequest();
    } finally {
      spy.mockRestore();
      await plain.close();
    }
    const text = writes.join('');
    expect(text).toContain('-'.repeat(40) + '\nException occurred during processing of request from bad\nError: kaboom');
    expect(plain.calls).toContain('closeRequest good');
  });
});

describe('ConcurrentMixIn', () => {
  test('requests interleave and shutdown waits for all of them', async () => {
    const server = new ConcurrentFake();
    try {
      const gates: Array<() => void> = [];
      const loop = server.serveForever(0.01);
      for (const n of ['a', 'b', 'c']) server.push(n, () => new Promise<void>((r) => gates.push(r)));
      await until(() => gates.length === 3);
      expect(server.activeRequests).toBe(3);
      let done = false;
      const stopping = server.shutdown().then(() => (done = true));
      await sleep(20);
      expect(done).toBe(false);
      gates.forEach((g) => g());
      await stopping;
      await loop;
      expect(server.calls.filter((c) => c.startsWith('closeRequest')).sort()).toEqual(['closeRequest a', 'closeRequest b', 'closeRequest c']);
    } finally {
      await server.close();
    }
  });

  test('an error in one concurrent request reaches handleError and closes it; the others finish', async () => {
    const server = new ConcurrentFake();
    try {
      const loop = server.serveForever(0.01);
      server.push('bad', () => { throw new Error('boom'); });
      server.push('good', () => sleep(10));
      await until(() => server.calls.includes('closeRequest good') && server.calls.includes('closeRequest bad'));
      expect(server.calls).toContain('handleError bad boom');
      await server.shutdown();
      await loop;
    } finally {
      await server.close();
    }
  });
});

/**
 * The loop's turn chains only the stages that return a promise (BaseServer.handleRequestNoBlock): the same
 * stages, order and error handling whether an override answers at once, asynchronously, or by throwing.
 */
describe('BaseServer request loop: synchronous and asynchronous stages alike', () => {
  class SyncFake extends FakeServer {
    syncVerdict: (name: string) => unknown = () => true;
    processThrows: unknown;
    asyncGet: 'no' | 'resolve' | 'reject-os' | 'reject' = 'no';
    override verifyRequest(r: { name: string }): boolean {
      this.calls.push(`verifyRequest ${r.name}`);
      return this.syncVerdict(r.name) as boolean;
    }
    override processRequest(r: { name: string }, a: { path: string }) {
      if (this.processThrows !== undefined) {
        this.calls.push(`processRequest ${r.name}`);
        throw this.processThrows;
      }
      return super.processRequest(r as never, a);
    }
    override getRequest(): never {
      const got = super.getRequest();
      if (this.asyncGet === 'resolve') return Promise.resolve(got) as never;
      if (this.asyncGet === 'reject-os') return Promise.reject(Object.assign(new Error('gone'), { code: 'ECONNABORTED' })) as never;
      if (this.asyncGet === 'reject') return Promise.reject(new Error('broken transport')) as never;
      return got as never;
    }
  }
  let server: SyncFake;
  beforeEach(() => {
    server = new SyncFake();
  });
  afterEach(async () => {
    await server.close();
  });
  const served = (n: string) => [`getRequest ${n}`, `verifyRequest ${n}`, `processRequest ${n}`, `finishRequest ${n}`, `setup ${n}`, `handle ${n}`, `finish ${n}`, `shutdownRequest ${n}`, `closeRequest ${n}`];

  test('a synchronous verifyRequest: true serves, false refuses, a truthy non-boolean serves, as Python', async () => {
    server.syncVerdict = (n) => (n === 'no' ? false : n === 'one' ? 1 : true);
    for (const n of ['yes', 'no', 'one']) server.push(n);
    for (let i = 0; i < 3; i++) await server.handleRequest();
    expect(server.calls).toEqual([...served('yes'), 'getRequest no', 'verifyRequest no', 'shutdownRequest no', 'closeRequest no', ...served('one')]);
  });

  test('a synchronous verifyRequest that throws ends that request only', async () => {
    server.syncVerdict = (n) => { if (n === 'bad') throw new Error('verify failed'); return true; };
    server.push('bad');
    server.push('good');
    await server.handleRequest();
    await server.handleRequest();
    expect(server.calls).toEqual(['getRequest bad', 'verifyRequest bad', 'handleError bad verify failed', 'shutdownRequest bad', 'closeRequest bad', ...served('good')]);
  });

  test('a processRequest that throws synchronously is reported and that request closed; SystemExit stops serveForever', async () => {
    server.processThrows = new Error('no strategy');
    server.push('a');
    await server.handleRequest();
    expect(server.calls).toEqual(['getRequest a', 'verifyRequest a', 'processRequest a', 'handleError a no strategy', 'shutdownRequest a', 'closeRequest a']);
    server.calls.length = 0;
    server.processThrows = new SystemExit(2);
    server.push('b');
    server.push('c');
    await expect(server.serveForever(0.05)).rejects.toBeInstanceOf(SystemExit);
    expect(server.calls).toEqual(['getRequest b', 'verifyRequest b', 'processRequest b', 'shutdownRequest b', 'closeRequest b']);
  });

  test('an asynchronous getRequest: its request is served; an errno rejection is dropped; another error escapes', async () => {
    server.asyncGet = 'resolve';
    server.push('a');
    await server.handleRequest();
    expect(server.calls).toEqual(served('a'));
    server.calls.length = 0;
    server.asyncGet = 'reject-os';
    server.push('b');
    await expect(server.handleRequest()).resolves.toBeUndefined();
    expect(server.calls).toEqual(['getRequest b']);
    server.asyncGet = 'reject';
    server.push('c');
    await expect(server.handleRequest()).rejects.toThrow('broken transport');
  });

  test('serveForever with synchronous stages serves every queued request, in order, each once', async () => {
    for (const n of ['a', 'b', 'c']) server.push(n);
    const loop = server.serveForever(0.05);
    await until(() => server.calls.filter((c) => c.startsWith('closeRequest')).length === 3);
    await server.shutdown();
    await loop;
    expect(server.calls.filter((c) => !c.startsWith('serviceActions'))).toEqual([...served('a'), ...served('b'), ...served('c')]);
  });
});
