import 'reflect-metadata';
import * as path from 'node:path';
import * as fs from 'node:fs';
import {
  bootstrap, Concurrent, DatagramRequest, Finish, Handle, HandleError, HandleTimeout, Inject, Injectable, Server,
  ServiceActions, Setup, StreamRequest, TcpServer, UdpServer, UnixDatagramServer, UnixStreamServer, Verify,
  ClientAddress, ConfigurationError,
} from '../../src';
import { secondsLikeMilliseconds } from '../../src/bootstrap/options.validation';
import { memoryLogger } from '../helpers/memory-logger';
import { TCPServer } from '../../src/classic';
import { datagramExchange, datagramSilence, removeTempDir, streamExchange, tempDir, Target, within } from '../helpers/clients';
import { sleep, until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { ObservedChildLines } from '../fixtures/observed-handlers';

type Req = StreamRequest | DatagramRequest;
interface Case {
  name: string;
  stream: boolean;
  decorate: (dir: string) => ClassDecorator;
}
const cases: Case[] = [
  { name: '@TcpServer', stream: true, decorate: () => TcpServer({ port: 0 }) },
  { name: '@TcpServer on ::1', stream: true, decorate: () => TcpServer({ port: 0, host: '::1' }) },
  { name: '@UnixStreamServer', stream: true, decorate: (d) => UnixStreamServer(path.join(d, 's.sock')) },
  { name: '@UdpServer', stream: false, decorate: () => UdpServer(0) },
  { name: '@UdpServer on ::1', stream: false, decorate: () => UdpServer({ port: 0, host: '::1' }) },
  { name: '@UnixDatagramServer', stream: false, decorate: (d) => UnixDatagramServer(path.join(d, 'd.sock')) },
];
const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: 'concurrent', decorate: (): ClassDecorator => Concurrent() },
];

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}

@Injectable()
class Greeter {
  greet(s: string) { return `hello ${s}`; }
}

describe.each(cases)('bootstrap over $name', (c) => {
  let dir: string;
  let server: Server | undefined;
  const serve = servingInTests<Server>();
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => removeTempDir(dir));
  const exchange = async (s: Server, payload: string) =>
    c.stream ? (await streamExchange(target(s), payload, { halfClose: true })).toString() : (await datagramExchange(target(s), payload, dir)).data.toString();

  describe.each(modes)('in $mode mode', (m) => {
    test('runs verify, setup, handle and finish in order on one new instance per request, with injected dependencies', async () => {
      const log: string[] = [];
      const instances = new Set<unknown>();
      @c.decorate(dir) @m.decorate()
      class Echo {
        constructor(private readonly greeter: Greeter) { instances.add(this); }
        @Verify() allow(client: ClientAddress, req: Req) { log.push(`verify ${'path' in client ? 'unix' : client.family} ${req.constructor.name}`); return true; }
        @Setup() open() { log.push('setup'); }
        @Handle() async handle(req: Req) {
          log.push('handle');
          const line = (await req.rfile.readline()).toString().trim();
          await req.wfile.write(this.greeter.greet(line));
        }
        @Finish() close() { log.push('finish'); }
      }
      server = await bootstrap(Echo);
      serve(server);
      expect(await exchange(server, 'one\n')).toBe('hello one');
      expect(await exchange(server, 'two\n')).toBe('hello two');
      await until(() => log.filter((l) => l === 'finish').length === 2);
      const kind = c.stream ? 'StreamRequest' : 'DatagramRequest';
      expect(log[0]).toMatch(new RegExp(`^verify (IPv4|IPv6|unix) ${kind}$`));
      expect(log.slice(1, 4)).toEqual(['setup', 'handle', 'finish']);
      expect(instances.size).toBe(2);
      expect(server.stats()).toMatchObject({ accepted: 2, rejected: 0, errors: 0 });
    });

    test('@Verify returning false closes the request and runs no other hook', async () => {
      const ran: string[] = [];
      @c.decorate(dir) @m.decorate()
      class Refuse {
        @Verify() allow() { return false; }
        @Setup() s() { ran.push('setup'); }
        @Handle() h(req: Req) { ran.push('handle'); return req.wfile.write('no'); }
        @Finish() f() { ran.push('finish'); }
      }
      server = await bootstrap(Refuse);
      serve(server);
      if (c.stream) expect(await exchange(server, 'x\n')).toBe('');
      else expect(await datagramSilence(target(server), 'x\n', dir)).toBe(true);
      await until(() => server!.stats().rejected === 1);
      expect(ran).toEqual([]);
    });

    test('an error in @Handle runs @Finish, reaches @HandleError with the client, and the next request is served', async () => {
      const seen: string[] = [];
      @c.decorate(dir) @m.decorate()
      class Failing {
        @Handle() async handle(req: Req) {
          const line = (await req.rfile.readline()).toString();
          if (line.startsWith('bad')) throw new Error('bad input');
          await req.wfile.write(line);
        }
        @Finish() f() { seen.push('finish'); }
        @HandleError() oops(error: Error, client: ClientAddress) { seen.push(`error ${error.message} ${client ? 'with client' : 'no client'}`); }
      }
      server = await bootstrap(Failing);
      serve(server);
      if (c.stream) expect(await exchange(server, 'bad\n')).toBe('');
      else expect(await datagramSilence(target(server), 'bad\n', dir)).toBe(true);
      expect(await exchange(server, 'good\n')).toBe('good\n');
      expect(seen.slice(0, 2)).toEqual(['finish', 'error bad input with client']);
      expect(server.stats().errors).toBe(1);
    });
  });
});

describe('bootstrap features', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(async (s) => { await s.shutdown(); await s.close(); }));
  });

  test('a port in use: the error names the handler class, not the classic server it is built on', async () => {
    @TcpServer({ port: 0, host: '127.0.0.1' })
    class FirstEcho { @Handle() handle() {} }
    const first = await bootstrap(FirstEcho);
    servers.push(first);
    @TcpServer({ port: (first.serverAddress as { port: number }).port, host: '127.0.0.1' })
    class SecondEcho { @Handle() handle() {} }
    // Before: "TCPServer: … already in use", the class of the classic layer the decorators build on.
    await expect(bootstrap(SecondEcho)).rejects.toThrow(/^SecondEcho: /);
  });

  test('a server that never listened (its port in use) logs no "closed" line, as it logged no "listening" one (new-user run)', async () => {
    @TcpServer({ port: 0, host: '127.0.0.1' })
    class Holder { @Handle() handle() {} }
    const first = await bootstrap(Holder);
    servers.push(first);
    @TcpServer({ port: (first.serverAddress as { port: number }).port, host: '127.0.0.1' })
    class Late { @Handle() handle() {} }
    const info: string[] = [];
    await expect(bootstrap(Late, { logger: { info: (m) => info.push(m), error: () => undefined } })).rejects.toThrow(/^Late: /);
    expect(info).toEqual([]);
    @TcpServer({ port: 0, host: '127.0.0.1' })
    class Fine { @Handle() handle() {} }
    const fine = await bootstrap(Fine, { logger: { info: (m) => info.push(m), error: () => undefined } });
    await fine.close();
    expect(info).toEqual([expect.stringMatching(/^Fine: listening/), 'Fine: closed']);
  });

  test.each([
    ['@UnixStreamServer', (p: string) => UnixStreamServer({ path: p, mode: 0o600 })],
    ['@UnixDatagramServer', (p: string) => UnixDatagramServer({ path: p, mode: 0o640 })],
  ])('%s({ mode }) gives the socket file those permission bits, and a bad mode is a ConfigurationError', async (name, decorate) => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'm.sock');
      @(decorate(file) as ClassDecorator)
      class Moded { @Handle() async h() {} }
      servers.push(await bootstrap(Moded));
      expect(fs.statSync(file).mode & 0o777).toBe(name === '@UnixStreamServer' ? 0o600 : 0o640);
      expect(() => UnixStreamServer({ path: file, mode: 0o1777 })(class BadMode {})).toThrow(ConfigurationError);
      expect(() => UnixDatagramServer({ path: file, mode: '660' as never })(class BadMode {})).toThrow(/mode.*from 0 to 0o777/s);
    } finally {
      await Promise.all(servers.splice(0).map(async (s) => { await s.shutdown(); await s.close(); }));
      removeTempDir(dir);
    }
  });

  test('@Concurrent interleaves requests: a slow one does not hold up a fast one', async () => {
    const order: string[] = [];
    @TcpServer(0) @Concurrent()
    class Mixed {
      @Handle() async h(req: StreamRequest) {
        const line = (await req.rfile.readline()).toString().trim();
        if (line === 'slow') await sleep(300);
        order.push(line);
        await req.wfile.write(line);
      }
    }
    const s = await bootstrap(Mixed);
    servers.push(s);
    const loop = s.serveForever(0.05);
    const slow = streamExchange(target(s), 'slow\n', { halfClose: true });
    await sleep(50);
    expect((await streamExchange(target(s), 'fast\n', { halfClose: true })).toString()).toBe('fast');
    expect((await slow).toString()).toBe('slow');
    expect(order).toEqual(['fast', 'slow']);
    await s.shutdown();
    await loop;
  });

  test('serveForever() ended by the program\'s own close() resolves once the server is closed: its workers ended, "closed" logged (it resolved at the loop\'s end: new-user run)', async () => {
    const logger = memoryLogger();
    const s = await bootstrap(ObservedChildLines, { logger });
    servers.push(s);
    const loop = s.serveForever(0.05);
    expect((await streamExchange(target(s), 'one\n', { halfClose: true })).toString()).toBe('ONE\n');
    let closed = false;
    const closing = s.close().then(() => (closed = true));
    await within(15000, 'serveForever()', loop);
    expect({ closed, workers: s.stats().workers.length, closedLine: logger.lines.info.some((l) => l.endsWith(': closed')) }).toEqual({ closed: true, workers: 0, closedLine: true });
    await closing;
  });

  test('shutdown serves a request whose bytes arrived before it but were not read yet', async () => {
    let setups = 0;
    @TcpServer(0) @Concurrent()
    class SlowStart {
      @Setup() async warm() { setups++; await sleep(300); } // the request's bytes wait in the kernel meanwhile
      @Handle() async h(req: StreamRequest) {
        await req.wfile.write(`got ${(await req.rfile.readline()).toString()}`);
      }
    }
    const s = await bootstrap(SlowStart);
    servers.push(s);
    const loop = s.serveForever(0.05);
    const reply = streamExchange(target(s), 'early\n');
    await until(() => setups === 1);
    await s.shutdown();
    expect((await reply).toString()).toBe('got early\n');
    await loop;
  });

  test('@Concurrent({ maxConnections }) never runs more requests at once than the limit: the others are closed at once (limits.maxConnections)', async () => {
    let running = 0;
    let peak = 0;
    @TcpServer(0) @Concurrent({ maxConnections: 2 })
    class Limited {
      @Handle() async h(req: StreamRequest) {
        running++;
        peak = Math.max(peak, running);
        await req.rfile.readline();
        await sleep(50);
        running--;
        await req.wfile.write('ok');
      }
    }
    const s = await bootstrap(Limited);
    servers.push(s);
    const loop = s.serveForever(0.05);
    const replies = await Promise.all(Array.from({ length: 6 }, () => streamExchange(target(s), 'x\n', { halfClose: true }).then(String, () => 'refused')));
    const served = replies.filter((r) => r === 'ok').length;
    expect(replies.every((r) => r === 'ok' || r === '' || r === 'refused')).toBe(true);
    expect(served).toBeGreaterThanOrEqual(2);
    expect(s.stats().rejected).toBe(6 - served);
    expect(peak).toBe(2);
    await s.shutdown();
    await loop;
  });

  test('request-scoped providers are shared within a request and disposed after @Finish', async () => {
    const events: string[] = [];
    let next = 0;
    @Injectable({ scope: 'request' })
    class RequestState {
      readonly id = ++next;
      async [Symbol.asyncDispose]() { events.push(`dispose ${this.id}`); }
    }
    @Injectable({ scope: 'request' })
    class Helper { constructor(readonly state: RequestState) {} }
    @TcpServer(0)
    class Scoped {
      constructor(private readonly state: RequestState, private readonly helper: Helper) {}
      @Handle() async h(req: StreamRequest) {
        await req.rfile.readline();
        events.push(`same ${this.state === this.helper.state} ${this.state.id}`);
        await req.wfile.write('ok');
      }
      @Finish() f() { events.push(`finish ${this.state.id}`); }
    }
    const s = await bootstrap(Scoped);
    servers.push(s);
    const loop = s.serveForever(0.05);
    await streamExchange(target(s), 'a\n', { halfClose: true });
    await streamExchange(target(s), 'b\n', { halfClose: true });
    await until(() => events.length === 6);
    expect(events).toEqual(['same true 1', 'finish 1', 'dispose 1', 'same true 2', 'finish 2', 'dispose 2']);
    await s.shutdown();
    await loop;
  });

  test('a handler marked @Injectable() is still built anew for every request', async () => {
    const built: unknown[] = [];
    @Injectable() @TcpServer(0)
    class Marked {
      constructor() { built.push(this); }
      @Handle() async h(req: StreamRequest) { await req.wfile.write('ok'); }
    }
    const s = await bootstrap(Marked);
    servers.push(s);
    const loop = s.serveForever(0.05);
    await streamExchange(target(s), 'a\n', { halfClose: true });
    await streamExchange(target(s), 'b\n', { halfClose: true });
    expect(new Set(built).size).toBe(2);
    await s.shutdown();
    await loop;
  });

  test('providers supply values by string token, and singletons are disposed on close', async () => {
    const disposed: string[] = [];
    @Injectable()
    class Store { dispose() { disposed.push('store'); } }
    @TcpServer(0)
    class WithConfig {
      constructor(@Inject('greeting') private readonly greeting: string, private readonly store: Store) {}
      @Handle() async h(req: StreamRequest) { await req.wfile.write(`${this.greeting} ${this.store instanceof Store}`); }
    }
    const s = await bootstrap(WithConfig, { providers: [{ provide: 'greeting', useValue: 'hi' }] });
    const loop = s.serveForever(0.05);
    expect((await streamExchange(target(s), 'x\n', { halfClose: true })).toString()).toBe('hi true');
    await s.shutdown();
    await loop;
    await s.close();
    expect(disposed).toEqual(['store']);
  });

  test('logger receives the traceback block of a failed request instead of stderr', async () => {
    @TcpServer(0)
    class Failing { @Handle() h() { throw new Error('logged failure'); } }
    const lines: string[] = [];
    const s = await bootstrap(Failing, { logger: { error: (m) => lines.push(m) } });
    servers.push(s);
    const loop = s.serveForever(0.05);
    await streamExchange(target(s), 'x\n', { halfClose: true });
    await until(() => lines.length === 1);
    expect(lines[0]).toMatch(/^-{40}\nException occurred during processing of request from 127\.0\.0\.1:\d+\nError: logged failure\n/);
    expect(lines[0].endsWith('\n' + '-'.repeat(40))).toBe(true); // one message: the logger adds the newline
    await s.shutdown();
    await loop;
  });

  test('an unknown dependency fails bootstrap before anything binds', async () => {
    @TcpServer(0)
    class Needy {
      constructor(@Inject('missing') readonly value: string) {}
      @Handle() h() { return undefined; }
    }
    await expect(bootstrap(Needy)).rejects.toThrow(/Needy/);
    await expect(bootstrap(Needy)).rejects.toThrow(/#0/);
  });

  test('handleRequest returns after timeout seconds having called @HandleTimeout', async () => {
    let timeouts = 0;
    @UdpServer(0)
    class Quiet {
      @Handle() h() { return undefined; }
      @HandleTimeout() t() { timeouts++; return 'timed out'; }
    }
    const s = await bootstrap(Quiet, { timeout: 0.05 });
    servers.push(s);
    await expect(s.handleRequest()).resolves.toBe('timed out');
    expect(timeouts).toBe(1);
  });

  test('@ServiceActions runs once per loop turn', async () => {
    let turns = 0;
    @TcpServer(0)
    class Housekeeping {
      @Handle() h() { return undefined; }
      @ServiceActions() tick() { turns++; }
    }
    const s = await bootstrap(Housekeeping);
    servers.push(s);
    const loop = s.serveForever(0.01);
    await until(() => turns >= 3);
    await s.shutdown();
    await loop;
  });

  test('a @ServiceActions that never settles: shutdown() still ends within shutdownTimeout, and the log names the hook', async () => {
    let turns = 0;
    const warned: string[] = [];
    @TcpServer(0) @Concurrent()
    class StuckHousekeeping {
      @Handle() h() { return undefined; }
      @ServiceActions() tick() { return ++turns >= 3 ? new Promise<void>(() => undefined) : undefined; }
    }
    const s = await bootstrap(StuckHousekeeping, { shutdownTimeout: 0.3, logger: { error: (m) => warned.push(m), warn: (m) => warned.push(m) } });
    servers.push(s);
    const loop = s.serveForever(0.01);
    await until(() => turns >= 3);
    const t0 = Date.now();
    await within(5000, 'shutdown() with the hook stuck', s.shutdown());
    await within(5000, 'the loop to end', loop);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(warned.join('\n')).toMatch(/StuckHousekeeping: serviceActions \(@ServiceActions\) had not settled/);
  });

  test('serverClass: a subclass of the transport\'s classic server sees every hook', async () => {
    const calls: string[] = [];
    class Traced extends TCPServer {
      override verifyRequest(r: never, a: ClientAddress) { calls.push('verifyRequest'); return super.verifyRequest(r, a); }
      override closeRequest(r: never) { calls.push('closeRequest'); return super.closeRequest(r); }
    }
    @TcpServer(0)
    class Echo {
      @Handle() async h(req: StreamRequest) { calls.push('handle'); await req.wfile.write(await req.rfile.readline()); }
    }
    const s = await bootstrap(Echo, { serverClass: Traced });
    servers.push(s);
    const loop = s.serveForever(0.05);
    expect((await streamExchange(target(s), 'x\n', { halfClose: true })).toString()).toBe('x\n');
    await until(() => calls.includes('closeRequest'));
    expect(calls).toEqual(['verifyRequest', 'handle', 'closeRequest']);
    await s.shutdown();
    await loop;
  });

  test('a serverClass of the wrong transport is a ConfigurationError', async () => {
    @UdpServer(0)
    class Dgram { @Handle() h() { return undefined; } }
    await expect(bootstrap(Dgram, { serverClass: TCPServer })).rejects.toThrow(ConfigurationError);
    await expect(bootstrap(Dgram, { serverClass: TCPServer })).rejects.toThrow('Dgram: serverClass TCPServer does not extend UDPServer');
  });

  test.each([
    ['a misspelt option', { handleSignal: true }, 'bootstrap(Checked): unknown option "handleSignal". Fix: use only'],
    ['another misspelt option', { shutdownTimeOut: 3 }, 'unknown option "shutdownTimeOut"'],
    ['a negative requestTimeout', { requestTimeout: -1 }, 'bootstrap(Checked): requestTimeout -1 is not a positive number of seconds or null'],
    ['requestTimeout 0', { requestTimeout: 0 }, 'requestTimeout 0 is not a positive number of seconds or null'],
    ['requestTimeout as a string', { requestTimeout: '5' }, 'requestTimeout "5" is not a positive number of seconds or null'],
    ['a negative shutdownTimeout', { shutdownTimeout: -5 }, 'shutdownTimeout -5 is not a number of seconds (0 or more) or null'],
    ['a negative drainDelay', { drainDelay: -1 }, 'drainDelay -1 is not a number of seconds (0 or more)'],
    ['heartbeatTimeout 0', { heartbeatTimeout: 0 }, 'heartbeatTimeout 0 is not a positive number of seconds'],
    ['an infinite timeout', { timeout: Infinity }, 'timeout Infinity is not a number of seconds (0 or more) or null'],
    ['handleSignals as a string', { handleSignals: 'yes' }, 'handleSignals "yes" is not true or false'],
    ['a logger without error()', { logger: { warn: () => undefined } }, 'logger'],
    ['options that are not an object', 5, 'bootstrap(Checked): its options must be an object, got 5'],
  ])('%s is a ConfigurationError before anything is bound', async (_name, options, message) => {
    @TcpServer(0)
    class Checked { @Handle() h() { return undefined; } }
    const bound = jest.spyOn(TCPServer.prototype, 'serverBind');
    try {
      await expect(bootstrap(Checked, options as never)).rejects.toThrow(ConfigurationError);
      await expect(bootstrap(Checked, options as never)).rejects.toThrow(message);
      expect(bound).not.toHaveBeenCalled();
    } finally {
      bound.mockRestore();
    }
  });

  test('the options bootstrap() knows, with good values, are accepted', async () => {
    @TcpServer(0)
    class Accepted { @Handle() h() { return undefined; } }
    const s = await bootstrap(Accepted, {
      transport: { port: 0 }, providers: [], timeout: 0, requestTimeout: null, heartbeatTimeout: 5, shutdownTimeout: 0,
      logger: { error: () => undefined }, handleSignals: false, drainDelay: 0, serverClass: undefined,
    });
    await s.close();
  });

  test('timeouts that read as milliseconds (1000 or more, whole thousands) are taken as seconds, with a warning each; others are not warned of', async () => {
    @TcpServer({ port: 0, limits: { lineTimeout: 30000 } }) @Concurrent()
    class Millis { @Handle() h() { return undefined; } }
    const logger = memoryLogger();
    servers.push(await bootstrap(Millis, { logger, requestTimeout: 5000, shutdownTimeout: 3600, drainDelay: 2 }));
    expect(logger.lines.warn).toEqual([
      "Millis: requestTimeout is 5000 seconds (83.3 minutes): sockserve's timeouts are in seconds, as Python's socketserver's, not milliseconds as Node's. If you meant 5000 ms, write 5.",
      expect.stringMatching(/^Millis: limits\.lineTimeout is 30000 seconds \(8\.3 hours\): .* If you meant 30000 ms, write 30\.$/),
    ]);
    // A pool's workerIdleTimeout too.
    const pooled = { transport: { kind: 'tcp', options: {} }, concurrency: { kind: 'threading', options: { workerIdleTimeout: 60000 } } };
    expect(secondsLikeMilliseconds(pooled as never, { heartbeatTimeout: 90 })).toEqual([['workerIdleTimeout', 60000]]);
  });

  test('bootstrap([A, B]) starts several servers that share one container', async () => {
    @Injectable()
    class Counter { n = 0; }
    @TcpServer(0)
    class A { constructor(private readonly c: Counter) {} @Handle() async h(req: StreamRequest) { await req.wfile.write(String(++this.c.n)); } }
    @UdpServer(0)
    class B { constructor(private readonly c: Counter) {} @Handle() async h(req: DatagramRequest) { await req.wfile.write(String(++this.c.n)); } }
    const [a, b] = await bootstrap([A, B]);
    servers.push(a, b);
    const loops = [a.serveForever(0.05), b.serveForever(0.05)];
    expect((await streamExchange(target(a), 'x\n', { halfClose: true })).toString()).toBe('1');
    expect((await datagramExchange(target(b), 'x')).data.toString()).toBe('2');
    await Promise.all([a.shutdown(), b.shutdown()]);
    await Promise.all(loops);
  });

  test('a server can be disposed with await using', async () => {
    @TcpServer(0)
    class Disposable { @Handle() h() { return undefined; } }
    let address: Target;
    {
      await using s = await bootstrap(Disposable);
      address = target(s);
    }
    const net = await import('node:net');
    await expect(new Promise((resolve, reject) => net.connect(address as { port: number }).once('connect', resolve).once('error', reject))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
