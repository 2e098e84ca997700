import 'reflect-metadata';
import { until } from '../fakes/fake-server';
import {
  Concurrent, Finish, Forking, Framing, FrameTooLongError, FramingError, Handle, HandleError, Inject, Injectable, MessageRequest, OnMessage, Setup,
  RequestTimeoutError, ServerClosedError, StreamRequest, TcpServer, Threading, UdpServer, Verify, DatagramRequest,
  UnixDatagramServer, UnixStreamServer,
} from '../../src';
import type { ClientAddress } from '../../src';
import { TestServer } from '../../src/testing';
import { NulFramer } from '../fixtures/nul-framer';
import { MemoryEnd } from '../../src/testing/memory-pipe';
import { PassThrough } from 'node:stream';
import { within } from '../helpers/clients';

/** 'closed' when `t.close()` resolves within `ms` milliseconds, else 'hung'; the timer is cleared either way. */
async function closedWithin(t: { close(): Promise<void> }, ms: number): Promise<'closed' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([t.close().then(() => 'closed' as const), new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records what the handlers of one test did, in order. */
const events: string[] = [];
beforeEach(() => {
  events.length = 0;
});

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((t) => t.close()));
});
async function serve(handler: abstract new (...args: any[]) => unknown, options?: Parameters<typeof TestServer.create>[1]): Promise<TestServer> {
  const t = await TestServer.create(handler, options);
  servers.push(t);
  return t;
}

const CLOCK = 'clock';
/** The IP family each @Verify saw. */
const families: unknown[] = [];

@TcpServer(0)
@Threading() // TestServer runs it in the test's thread all the same
@Framing('lines')
class Lifecycle {
  constructor(@Inject(CLOCK) private readonly clock: () => string) {}

  @Verify() verify(client: ClientAddress) {
    events.push(`verify ${client.host}`);
    families.push(client.family);
    return client.host !== '192.0.2.66';
  }
  @Setup() setup(req: MessageRequest) {
    events.push(`setup ${req.clientAddress.host}`);
  }
  @OnMessage() on(line: string, req: MessageRequest) {
    events.push(`message ${line}`);
    if (line === 'time') return this.clock();
    if (line === 'push') {
      req.send('pushed');
      return 'and replied';
    }
    if (line === 'boom') throw new Error('boom');
    return line.toUpperCase();
  }
  @Finish() finish() {
    events.push('finish');
  }
  @HandleError() error(err: Error) {
    events.push(`error ${err.name}: ${err.message.split('.')[0]}`);
  }
}

describe('TestServer: a handler served in memory', () => {
  test('runs @Verify, @Setup once, @OnMessage per message and @Finish once, with the providers given', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '12:00' }] });
    const c = t.connect({ host: '203.0.113.9', port: 50000, family: 'IPv4' });
    c.write('a\nti');
    c.write('me\n');
    expect(await c.readline()).toBe('A\n');
    expect(await c.readline()).toBe('12:00\n');
    await c.end();
    expect(events).toEqual(['verify 203.0.113.9', 'setup 203.0.113.9', 'message a', 'message time', 'finish']);
  });

  test('a client address of the other transport\'s shape is a TypeError naming both, before any hook runs (hostile run: a { path } to a UDP server failed in the handler)', async () => {
    const ran: string[] = [];
    @UdpServer(7100) class Udp { @Handle() handle(req: DatagramRequest) { ran.push(String(req.clientAddress.host)); } }
    @TcpServer(7101) class Tcp { @Handle() handle() { ran.push('tcp'); } }
    @UnixDatagramServer('/tmp/sockserve-harness-shape.sock') class UnixDgram { @Handle() handle() { ran.push('unix'); } }
    const udp = await serve(Udp);
    await expect(udp.datagram('x', { path: '/x' })).rejects.toThrow(new TypeError('TestServer.datagram(): Udp is served on UDP, whose clients are { host, port } (an IP address and a port); got {"path":"/x"}. Fix: pass { host: \'203.0.113.9\', port: 5000 }, or leave it out for the default client.'));
    await expect(udp.datagram('x', { host: '203.0.113.9' } as never)).rejects.toThrow(/got \{"host":"203\.0\.113\.9"\}/);
    const tcp = await serve(Tcp);
    expect(() => tcp.connect({ path: '/x' })).toThrow(/^TestServer\.connect\(\): Tcp is served on TCP, whose clients are \{ host, port \}/);
    const unix = await serve(UnixDgram);
    // Before: accepted, and the handler saw a Unix server's client with a host and a port.
    await expect(unix.datagram('x', { host: '1.2.3.4', port: 5 })).rejects.toThrow(/^TestServer\.datagram\(\): UnixDgram is served on a Unix socket, whose clients are \{ path \}/);
    expect(ran).toEqual([]);
    expect(await udp.datagram('x', { host: '203.0.113.9', port: 5 })).toBeUndefined();
    expect(ran).toEqual(['203.0.113.9']);
  });

  test('write() after the test\'s own end() or destroy() throws, as a socket\'s write after end fails (it was ignored: new-user run)', async () => {
    @TcpServer(7102) class Echo { @Handle() async handle(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); } }
    const t = await serve(Echo);
    const c = t.connect();
    c.write('one\n');
    expect(await c.readline()).toBe('one\n');
    await c.end();
    expect(() => c.write('two\n')).toThrow(expect.objectContaining({ code: 'ERR_STREAM_WRITE_AFTER_END', message: expect.stringMatching(/^TestConnection\.write\(\) after end\(\): the connection is closed for writing/) }));
    const d = t.connect();
    await d.destroy();
    expect(() => d.write('x')).toThrow(/^TestConnection\.write\(\) after destroy\(\)/);
  });

  test('a client address may leave its family out, as the contract\'s example does: it follows from the host', async () => {
    const seen: unknown[] = [];
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '' }] });
    for (const host of ['203.0.113.9', '2001:db8::9']) {
      events.length = 0;
      const c = t.connect({ host, port: 50000 });
      c.write('a\n');
      expect(await c.readline()).toBe('A\n');
      await c.end();
      seen.push(events[0]);
    }
    expect(seen).toEqual(['verify 203.0.113.9', 'verify 2001:db8::9']);
    expect(families.slice(-2)).toEqual(['IPv4', 'IPv6']);
  });

  test('a client @Verify refuses is closed before any other hook runs', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '' }] });
    const c = t.connect({ host: '192.0.2.66', port: 1, family: 'IPv4' });
    c.write('a\n');
    expect(await c.readAll()).toEqual(Buffer.alloc(0));
    await c.closed;
    expect(events).toEqual(['verify 192.0.2.66']);
  });

  test('send() pushes a message ahead of the reply', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '' }] });
    const c = t.connect();
    c.write('push\n');
    expect(await c.readline()).toBe('pushed\n');
    expect(await c.readline()).toBe('and replied\n');
    await c.end();
  });

  test('an error in @OnMessage reaches @HandleError after @Finish, and the connection closes after the earlier replies', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '' }] });
    const c = t.connect();
    c.write('one\nboom\nnever\n');
    expect((await c.readAll()).toString()).toBe('ONE\n');
    await c.closed;
    expect(events).toEqual(['verify 127.0.0.1', 'setup 127.0.0.1', 'message one', 'message boom', 'finish', 'error Error: boom']);
    expect(t.errors).toEqual([new Error('boom')]);
  });

  test('a reset from the client ends the request: @Finish runs and @HandleError hears ECONNRESET', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => '' }] });
    const c = t.connect();
    c.write('x\n');
    expect(await c.readline()).toBe('X\n');
    await c.destroy();
    expect(events.slice(-2)).toEqual(['finish', 'error Error: read ECONNRESET']);
  });

  test('transport overrides are validated by the decorator\'s rules, as bootstrap() validates them, and a valid one is the server\'s address', async () => {
    await expect(TestServer.create(Lifecycle, { transport: { port: -1 } })).rejects.toThrow(
      "TestServer.create()'s transport option for @TcpServer on Lifecycle: port -1 is not an integer from 0 to 65535. Fix: pass a port in that range, or 0 to let the OS pick.",
    );
    await expect(TestServer.create(Lifecycle, { transport: { path: '/tmp/x.sock' } })).rejects.toThrow(/^TestServer\.create\(\)'s transport option for @TcpServer on Lifecycle: unknown option "path"/);
    const t = await serve(Lifecycle, { transport: { port: 6380, host: '::1' }, providers: [{ provide: CLOCK, useValue: () => '12:00' }] });
    expect(t.server.serverAddress).toEqual({ host: '::1', port: 6380 });
  });

  test('a missing provider is the same InjectionError bootstrap() gives, before anything runs', async () => {
    await expect(TestServer.create(Lifecycle)).rejects.toThrow('no provider for token "clock"');
  });
});

@TcpServer(0)
@Framing('lines', { concurrency: 4 })
class Pipelined {
  static running = 0;
  static most = 0;
  @OnMessage() async on(line: string) {
    Pipelined.running++;
    Pipelined.most = Math.max(Pipelined.most, Pipelined.running);
    // Later messages finish first: message n waits for (10 - n) turns of the microtask queue.
    for (let i = 0; i < 10 - Number(line); i++) await Promise.resolve();
    Pipelined.running--;
    return `reply ${line}`;
  }
}

@TcpServer(0)
@Framing('lines')
class OneAtATime {
  static running = 0;
  static most = 0;
  @OnMessage() async on(line: string) {
    OneAtATime.running++;
    OneAtATime.most = Math.max(OneAtATime.most, OneAtATime.running);
    await Promise.resolve();
    OneAtATime.running--;
    return line;
  }
}

describe('ordering', () => {
  test('with concurrency 4, calls overlap four at a time and replies keep message order', async () => {
    const t = await serve(Pipelined);
    const c = t.connect();
    c.write('0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n');
    const replies = [];
    for (let i = 0; i < 10; i++) replies.push(await c.readline());
    expect(replies).toEqual(Array.from({ length: 10 }, (_, i) => `reply ${i}\n`));
    expect(Pipelined.most).toBe(4);
    await c.end();
  });

  test('by default the messages of one connection are handled one at a time, in order', async () => {
    const t = await serve(OneAtATime);
    const c = t.connect();
    c.write('a\nb\nc\n');
    c.write('d\n');
    expect([await c.readline(), await c.readline(), await c.readline(), await c.readline()]).toEqual(['a\n', 'b\n', 'c\n', 'd\n']);
    expect(OneAtATime.most).toBe(1);
    await c.end();
  });
});

@TcpServer(0)
@Framing('lines')
class Amplifier {
  static calls = 0;
  @OnMessage() on() {
    Amplifier.calls++;
    return 'x'.repeat(64 * 1024);
  }
}

describe('backpressure', () => {
  test('a client that never reads stops the handler after a bounded number of replies, and reading resumes when it reads', async () => {
    const t = await serve(Amplifier);
    const c = t.connect();
    Amplifier.calls = 0;
    for (let i = 0; i < 200; i++) c.write('go\n'.repeat(50)); // 10,000 requests, 640 MB of replies if nothing held back
    await new Promise((resolve) => setImmediate(resolve)); // everything in memory has settled by then
    expect(Amplifier.calls).toBeGreaterThan(0);
    expect(Amplifier.calls).toBeLessThanOrEqual(4);
    const reply = await c.read(64 * 1024 + 1);
    expect(reply.length).toBe(64 * 1024 + 1);
    expect(Amplifier.calls).toBeGreaterThan(1);
    await c.destroy();
  });
});

@TcpServer(0)
@Framing('lines', { maxLength: 16 })
class Limited {
  @OnMessage() on(line: string) {
    return line;
  }
  @HandleError() error(err: Error) {
    events.push(err.name);
  }
}

describe('limits', () => {
  test('a message longer than maxLength is a FrameTooLongError through @HandleError, and the connection closes', async () => {
    const t = await serve(Limited);
    const c = t.connect();
    c.write('short\n');
    for (let i = 0; i < 100; i++) c.write('0123456789');
    expect((await c.readAll()).toString()).toBe('short\n');
    await c.closed;
    expect(events).toEqual(['FrameTooLongError']);
    expect(t.errors[0]).toBeInstanceOf(FrameTooLongError);
  });

  test('limits.maxLineLength caps rfile.readline() as on a socket: a longer line is a LineTooLongError (it was read whole)', async () => {
    const t = await serve(CappedLines, { logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    c.write(`${'x'.repeat(20)}\n${'y'.repeat(200)}\n`);
    expect((await c.readAll()).toString()).toBe('got 21\n');
    await c.closed;
    expect(t.errors.map((e) => (e as Error).name)).toEqual(['LineTooLongError']);
  });

  test("limits.maxLineLength (a transport override here) caps @Framing('lines') without a maxLength of its own, as on a socket", async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => 'now' }], transport: { limits: { maxLineLength: 10 } }, logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    c.write(`${'z'.repeat(11)}\n`);
    await c.closed;
    expect(t.errors.map((e) => (e as Error).name)).toEqual(['FrameTooLongError']);
    expect((t.errors[0] as Error).message).toMatch(/longer than limits\.maxLineLength 10; .*Fix: raise limits\.maxLineLength/);
  });
});

@TcpServer({ port: 0, limits: { maxLineLength: 100 } })
class CappedLines {
  @Handle() async handle(req: StreamRequest): Promise<void> {
    for (let line = await req.rfile.readline(); line.length > 0; line = await req.rfile.readline()) await req.wfile.write(`got ${line.length}\n`);
  }
}

@TcpServer(0)
@Framing('lines')
class Failing {
  @OnMessage() on(): string {
    throw new Error('kaboom');
  }
}

describe('the logger option', () => {
  test('routine client errors go to its warn and handler errors to its error, as with bootstrap(); the console hears neither', async () => {
    const lines: Array<[string, string]> = [];
    const logger = { error: (m: string) => lines.push(['error', m]), warn: (m: string) => lines.push(['warn', m]) };
    const console = jest.spyOn(globalThis.console, 'error').mockImplementation(() => undefined);
    const warn = jest.spyOn(globalThis.console, 'warn').mockImplementation(() => undefined);
    try {
      const t = await serve(Json, { logger });
      const bad = t.connect();
      bad.write('{oops}\n');
      await bad.closed;
      const t2 = await serve(Failing, { logger });
      const failing = t2.connect();
      failing.write('go\n');
      await failing.closed;
      expect(lines.map(([level]) => level)).toEqual(['warn', 'error']);
      expect(lines[0][1]).toMatch(/FramingError/);
      expect(lines[1][1]).toMatch(/kaboom/);
      expect(console).not.toHaveBeenCalled();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      console.mockRestore();
      warn.mockRestore();
    }
  });
});

@TcpServer(0)
@Framing('json-lines')
class Json {
  @OnMessage() on(value: { n: number }) {
    return { doubled: value.n * 2 };
  }
}

@TcpServer(0)
@Framing('length-prefixed')
class FrameEcho {
  @OnMessage() on(frame: Buffer) {
    return frame;
  }
}

/** Echoes each frame, then changes it after a turn of the event loop; 'again' sends the first frame once more. */
@TcpServer(0)
@Framing('length-prefixed')
class FrameMutator {
  private first: Buffer | undefined;

  @OnMessage() on(frame: Buffer) {
    if (frame.toString() === 'again') return this.first;
    this.first ??= frame;
    setImmediate(() => frame.fill(0x5a));
    return frame;
  }
}
/** json-lines whose handler throws on `{"boom":…}` (synchronously, or after a turn with `async: true`). */
@TcpServer(0)
@Framing('json-lines')
class JsonBoom {
  @OnMessage() on(value: { n?: number; boom?: boolean; async?: boolean }) {
    if (value.boom && value.async) return new Promise((_, reject) => setImmediate(() => reject(new Error('boom'))));
    if (value.boom) throw new Error('boom');
    return value;
  }
}

describe('other framers through the harness', () => {
  test.each([
    ['a synchronous', '{"boom":true}'],
    ['an asynchronous', '{"boom":true,"async":true}'],
  ])('json-lines: %s handler error on a message ahead of a bad line in the same packet is the one reported (it was lost behind the FramingError)', async (_kind, boom) => {
    const t = await serve(JsonBoom);
    const c = t.connect();
    c.write(`{"n":1}\n${boom}\nnot json\n`);
    expect((await c.readAll()).toString()).toBe('{"n":1}\n');
    await c.closed;
    expect(t.errors).toEqual([new Error('boom')]);
    expect(t.server.stats()).toMatchObject({ errors: 1, clientErrors: 0 });
  });


  test('length-prefixed: a buffer the test changes after write() was sent as it was (the echo is the bytes sent, not the test\'s buffer)', async () => {
    const t = await serve(FrameEcho);
    const c = t.connect();
    const frame = Buffer.from([0, 0, 0, 2, 0x68, 0x69]); // 'hi'
    c.write(frame);
    frame.write('yo', 4);
    c.write(frame);
    frame.fill(0);
    expect((await c.read(12)).toString('latin1')).toBe('\0\0\0\x02hi\0\0\0\x02yo');
    c.end();
    await c.closed;
  });

  test('as over a socket, neither side can change what the other read: the server changing a frame after returning it, the test changing what it read', async () => {
    const t = await serve(FrameMutator);
    const c = t.connect();
    const frame = (text: string) => Buffer.concat([Buffer.from([0, 0, 0, text.length]), Buffer.from(text)]);
    c.write(frame('hi'));
    const first = await c.read(6);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the handler has changed its frame by now
    expect(first.toString('latin1')).toBe('\0\0\0\x02hi');
    first.fill(0x51);
    c.write(frame('again')); // the handler's stored frame: its own bytes, which it changed to 'ZZ', not the test's 'QQ…'
    expect((await c.read(6)).toString('latin1')).toBe('\0\0\0\x02ZZ');
    c.end();
    await c.closed;
  });

  test('json-lines: a line that is not JSON ends the connection with a FramingError after the replies before it', async () => {
    const t = await serve(Json);
    const c = t.connect();
    c.write('{"n":2}\n{oops}\n{"n":3}\n');
    expect((await c.readAll()).toString()).toBe('{"doubled":4}\n');
    await c.closed;
    expect(t.errors).toEqual([expect.any(FramingError)]);
  });
});

@UdpServer(0)
class RawDatagrams {
  @OnMessage() on(data: Buffer, req: MessageRequest) {
    events.push(`from ${req.clientAddress.host}`);
    if (data.toString() === 'silent') return undefined;
    return Buffer.concat([Buffer.from('re: '), data]);
  }
}

@UdpServer(0)
@Framing('lines')
class LineDatagrams {
  @OnMessage() on(line: string) {
    return line.length;
  }
}

@UdpServer(0)
class ClassicDatagram {
  @Handle() async handle(req: { data: Buffer; wfile: { write(d: Buffer): Promise<number> } }) {
    await req.wfile.write(req.data.reverse());
  }
}

describe('after close()', () => {
  test('connect() throws ServerClosedError and datagram() rejects with it, and nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const t = await TestServer.create(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => 'noon' }] });
      await t.close();
      expect(() => t.connect()).toThrow(ServerClosedError);
      const d = await TestServer.create(RawDatagrams);
      await d.close();
      await expect(d.datagram('ping')).rejects.toThrow(ServerClosedError);
      await new Promise((r) => setTimeout(r, 50)); // an unhandled rejection is reported after a turn
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });
});

/** A handler that never returns, whatever happens to its connection: it awaits a promise nobody settles. */
@TcpServer(0)
class NeverSettles {
  @Handle() async handle(req: StreamRequest) {
    events.push(`read ${(await req.rfile.readline()).toString().trim()}`);
    await new Promise(() => undefined);
  }
  @HandleError() error(err: Error) {
    events.push(`error ${err.name}`);
  }
}

/** A handler that ignores the reset of its connection for a moment, then returns. */
@TcpServer(0)
class SlowToNotice {
  @Handle() async handle(req: StreamRequest) {
    await req.rfile.readline().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    events.push('returned');
  }
}

/** A @Verify that never settles, on a stream and on a datagram transport. */
@TcpServer(0)
class VerifyNeverSettles {
  @Verify() verify() { return new Promise<boolean>(() => undefined); }
  @Handle() async handle(req: StreamRequest) { await req.wfile.write('never\n'); }
}
@UdpServer(0)
class DatagramVerifyNeverSettles {
  @Verify() verify() { return new Promise<boolean>(() => undefined); }
  @Handle() async handle(req: DatagramRequest) { await req.wfile.write('never'); }
}

/** A @Verify that admits the client 600 ms later, after close() has given up on it (shutdownTimeout 0.3 s). */
@TcpServer(0)
class VerifiesTooLate {
  static handled = 0;
  static verdicts = 0;
  @Verify() async verify() { await new Promise((r) => setTimeout(r, 600)); VerifiesTooLate.verdicts++; return true; }
  @Handle() async handle(req: StreamRequest) { VerifiesTooLate.handled++; await req.wfile.write('late\n'); }
}

describe('close() with a request that does not end', () => {
  test('a @Verify that never settles, for a connection or a datagram made just before close(), is abandoned after shutdownTimeout and reported once (hostile run: close() hung)', async () => {
    const t = await TestServer.create(VerifyNeverSettles, { shutdownTimeout: 0.3, logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    await expect(closedWithin(t, 3000)).resolves.toBe('closed');
    await expect(c.closed).resolves.toBeUndefined();
    expect(t.errors).toEqual([expect.any(RequestTimeoutError)]);

    const u = await TestServer.create(DatagramVerifyNeverSettles, { shutdownTimeout: 0.3, logger: { error: () => undefined, warn: () => undefined } });
    const reply = u.datagram('a');
    await expect(closedWithin(u, 3000)).resolves.toBe('closed');
    await expect(reply).resolves.toBeUndefined();
    expect(u.errors).toEqual([expect.any(RequestTimeoutError)]);
  });


  test('a @Verify that admits the client after close() gave up on it does not run the handler on the reset connection (it failed with EPIPE)', async () => {
    const t = await TestServer.create(VerifiesTooLate, { shutdownTimeout: 0.3, logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    c.write('x\n');
    await t.close();
    await until(() => VerifiesTooLate.verdicts === 1, 5000);
    await new Promise((r) => setTimeout(r, 50));
    expect(VerifiesTooLate.handled).toBe(0);
    expect(t.errors).toEqual([expect.any(RequestTimeoutError)]);
  });

  test('a handler that never settles is abandoned after shutdownTimeout: reported once as a RequestTimeoutError, and close() resolves', async () => {
    const warned: string[] = [];
    const t = await TestServer.create(NeverSettles, { shutdownTimeout: 0.3, logger: { error: (m) => warned.push(m), warn: (m) => warned.push(m) } });
    const c = t.connect();
    c.write('hello\n');
    await until(() => events.length === 1, 5000); // read: the handler now awaits what never settles
    const started = Date.now();
    await expect(closedWithin(t, 3000)).resolves.toBe('closed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await expect(c.closed).resolves.toBeUndefined();
    expect(events).toEqual(['read hello', 'error RequestTimeoutError']);
    expect(t.errors).toHaveLength(1);
    expect(t.errors[0]).toBeInstanceOf(RequestTimeoutError);
    expect((t.errors[0] as Error).message).toMatch(/still running 0\.3 s after TestServer\.close\(\) reset its connection \(NeverSettles\)/);
    await t.close(); // idempotent: nothing more is reported
    expect(t.errors).toHaveLength(1);
  });

  test('under jest.useFakeTimers(), a handler that never settles is still abandoned after shutdownTimeout in real time (close() waited for the fake clock)', async () => {
    const realImmediate = () => new Promise((r) => jest.requireActual<typeof import('node:timers')>('node:timers').setImmediate(r));
    jest.useFakeTimers();
    try {
      const t = await TestServer.create(NeverSettles, { shutdownTimeout: 0.3, logger: { error: () => undefined, warn: () => undefined } });
      const c = t.connect();
      c.write('hello\n');
      for (let i = 0; i < 100 && events.length === 0; i++) await realImmediate();
      expect(events).toEqual(['read hello']);
      // closedWithin's own timer would be fake too: the bound here is the test's timeout (20 s).
      await t.close();
      await expect(c.closed).resolves.toBeUndefined();
      expect(t.errors).toEqual([expect.any(RequestTimeoutError)]);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a request close() abandons no longer counts in stats().active, as a real server\'s abandoned request does not (it stayed 1)', async () => {
    const t = await TestServer.create(NeverSettles, { shutdownTimeout: 0.2, logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    c.write('hello\n');
    await until(() => events.length === 1, 2000);
    expect(t.server.stats().active).toBe(1);
    await within(5000, 'close()', t.close());
    expect(t.errors).toEqual([expect.any(RequestTimeoutError)]);
    expect(t.server.stats()).toMatchObject({ active: 0, accepted: 1, clientErrors: 1 });
  });

  test('a handler that returns within shutdownTimeout after the reset is waited for, not abandoned', async () => {
    const t = await TestServer.create(SlowToNotice, { shutdownTimeout: 2 });
    t.connect();
    await until(() => t.server.stats().active === 1, 5000); // its handler waits for a line
    await t.close();
    expect(events).toEqual(['returned']);
    expect(t.errors).toEqual([]);
  });

  test('shutdownTimeout must be a number of seconds', async () => {
    await expect(TestServer.create(SlowToNotice, { shutdownTimeout: -1 })).rejects.toThrow(/shutdownTimeout must be a number of seconds/);
  });
});

/** Says how much of its datagram it read, and whether it was truncated. */
@UdpServer({ port: 0, maxPacketSize: 100 })
class SmallPackets {
  @Handle() async handle(req: DatagramRequest) { await req.wfile.write(`${req.data.length} ${req.truncated}`); }
}
@UdpServer(0)
class DefaultPackets {
  @Handle() async handle(req: DatagramRequest) { await req.wfile.write(`${req.data.length} ${req.truncated}`); }
}

/** Keeps each datagram's request, to push to it after its reply has gone. */
@UdpServer(0) @Framing('lines')
class KeepsRequests {
  static kept: MessageRequest[] = [];
  @OnMessage() on(line: string, req: MessageRequest) {
    KeepsRequests.kept.push(req);
    return `got ${line}`;
  }
}

describe('datagrams', () => {
  test('req.send() after the datagram\'s reply has gone says false, and drained() false: nothing is sent (it said true, and the push was lost)', async () => {
    const t = await serve(KeepsRequests);
    expect(String(await t.datagram('a\n'))).toBe('got a\n');
    const [req] = KeepsRequests.kept.splice(0);
    expect(req.send('late')).toBe(false);
    await expect(req.drained()).resolves.toBe(false);
  });

  test('a datagram longer than maxPacketSize is truncated and flagged, as the real server reads it (hostile run: it arrived whole)', async () => {
    const small = await serve(SmallPackets);
    expect(String(await small.datagram(Buffer.alloc(9000)))).toBe('100 true');
    expect(String(await small.datagram(Buffer.alloc(100)))).toBe('100 false');
    const byDefault = await serve(DefaultPackets);
    expect(String(await byDefault.datagram(Buffer.alloc(9000)))).toBe('8192 true');
    expect(String(await byDefault.datagram(Buffer.alloc(8192)))).toBe('8192 false');
  });

  test('without @Framing each datagram is one raw Buffer and the reply goes back to the sender', async () => {
    const t = await serve(RawDatagrams);
    expect(await t.datagram(Buffer.from('ping'), { host: '198.51.100.2', port: 5353, family: 'IPv4' })).toEqual(Buffer.from('re: ping'));
    expect(await t.datagram('silent')).toBeUndefined();
    expect(events).toEqual(['from 198.51.100.2', 'from 127.0.0.1']);
  });

  test('with @Framing the framer decodes the datagram and encodes the replies into one datagram', async () => {
    const t = await serve(LineDatagrams);
    expect(await t.datagram('hello\nab')).toEqual(Buffer.from('5\n2\n'));
  });

  test('a @Handle datagram handler works too', async () => {
    const t = await serve(ClassicDatagram);
    expect(await t.datagram('abc')).toEqual(Buffer.from('cba'));
  });

  test('connect() on a datagram handler, and datagram() on a stream handler, say what to use instead', async () => {
    const dgram = await serve(RawDatagrams);
    expect(() => dgram.connect()).toThrow('TestServer.connect(): RawDatagrams is served on a datagram transport. Fix: use datagram(data, from) for it.');
    const stream = await serve(Limited);
    await expect(stream.datagram('x')).rejects.toThrow('Fix: use connect() for it.');
  });
});

@Injectable({ scope: 'request' })
class PerRequest {
  static disposed = 0;
  dispose() {
    PerRequest.disposed++;
  }
}

@TcpServer(0)
class ClassicStream {
  constructor(private readonly scoped: PerRequest) {}
  @Handle() async handle(req: StreamRequest) {
    for await (const line of req.rfile) await req.wfile.write(line.toString().toUpperCase());
    void this.scoped;
  }
}

describe('a @Handle stream handler', () => {
  test('reads and writes through rfile and wfile, and its request scope is disposed at the end', async () => {
    PerRequest.disposed = 0;
    const t = await serve(ClassicStream);
    const c = t.connect();
    c.write('ab');
    c.write('c\nd');
    expect(await c.readline()).toBe('ABC\n');
    await c.end();
    expect(await c.readAll()).toEqual(Buffer.from('D'));
    expect(PerRequest.disposed).toBe(1);
  });

  test('t.server.serveForever() waits as a real loop does: timers run, connections are served, shutdown() ends it (it spun for ever)', async () => {
    const t = await serve(ClassicStream);
    const loop = t.server.serveForever(0.02);
    const tick = within(2000, 'a timer to run beside the loop', new Promise<void>((resolve) => setTimeout(resolve, 30)));
    await tick;
    const c = t.connect();
    c.write('x\n');
    expect(await within(2000, 'the reply', c.readline())).toBe('X\n');
    await c.end();
    await within(2000, 'shutdown()', t.server.shutdown());
    await within(2000, 'the loop', loop);
  });

  test('@HandleError runs on the request\'s own instance, before the connection closes: it can answer through what @Setup kept', async () => {
    @TcpServer(0)
    class Answers {
      private req?: StreamRequest;
      @Setup() setup(req: StreamRequest) { this.req = req; }
      @Handle() async handle(req: StreamRequest) { throw new Error(`bad ${(await req.rfile.readline()).toString().trim()}`); }
      @HandleError() async failed(error: Error) { await this.req?.wfile.write(`ERR ${error.message}\n`); }
    }
    const t = await serve(Answers);
    const c = t.connect();
    c.write('hello\n');
    expect(await c.readAll()).toEqual(Buffer.from('ERR bad hello\n'));
  });

  test('a client reset after an exchange reaches @HandleError on the request\'s own instance, as on a socket: one request scope, built and disposed once (it ran on a fresh instance, with a second scope)', async () => {
    const seen: string[] = [];
    let scopes = 0;
    @Injectable({ scope: 'request' })
    class Session {
      readonly id = ++scopes;
      dispose() { seen.push(`dispose ${this.id}`); }
    }
    for (const kind of ['message', 'stream'] as const) {
      @TcpServer(0)
      @Framing('lines')
      class Chatty {
        private user = 'nobody';
        constructor(private readonly session: Session) {}
        @OnMessage() on(line: string) { this.user = line; return `hi ${line}`; }
        @HandleError() failed(error: NodeJS.ErrnoException) { seen.push(`${error.code} for ${this.user} in scope ${this.session.id}`); }
      }
      @TcpServer(0)
      class Raw {
        private user = 'nobody';
        constructor(private readonly session: Session) {}
        @Handle() async handle(req: StreamRequest) {
          this.user = (await req.rfile.readline()).toString().trim();
          await req.wfile.write(`hi ${this.user}\n`);
          await req.rfile.readline();
        }
        @HandleError() failed(error: NodeJS.ErrnoException) { seen.push(`${error.code} for ${this.user} in scope ${this.session.id}`); }
      }
      seen.length = 0;
      scopes = 0;
      const t = await serve(kind === 'message' ? Chatty : Raw);
      const c = t.connect();
      c.write('ann\n');
      expect(await c.readline()).toBe('hi ann\n');
      await c.destroy();
      await t.close();
      expect({ kind, seen }).toEqual({ kind, seen: ['ECONNRESET for ann in scope 1', 'dispose 1'] });
    }
  });

  test('a client reset before any byte reaches @HandleError on the request\'s own instance too (in memory no connection is a health check): one request scope', async () => {
    const seen: string[] = [];
    let scopes = 0;
    @Injectable({ scope: 'request' })
    class Session {
      readonly id = ++scopes;
      dispose() { seen.push(`dispose ${this.id}`); }
    }
    @TcpServer(0)
    @Framing('lines')
    class Greeted {
      private greeted = false;
      constructor(private readonly session: Session) {}
      @Setup() setup() { this.greeted = true; setUp = true; }
      @OnMessage() on(line: string) { return line; }
      @HandleError() failed(error: NodeJS.ErrnoException) { seen.push(`${error.code} greeted ${this.greeted} in scope ${this.session.id}`); }
    }
    let setUp = false;
    const t = await serve(Greeted);
    const c = t.connect();
    await until(() => setUp, 5000); // the request has begun (a fixed 10 ms wait could end first on a loaded machine)
    await c.destroy();
    await t.close();
    expect(seen).toEqual(['ECONNRESET greeted true in scope 1', 'dispose 1']);
  });

  test('a @HandleError that never settles is waited for shutdownTimeout: the connection closes and close() resolves, the hook called once', async () => {
    let calls = 0;
    @TcpServer(0)
    class Hangs {
      @Handle() async handle(req: StreamRequest) { await req.rfile.readline(); throw new Error('boom'); }
      @HandleError() async failed() { calls++; await new Promise(() => undefined); }
    }
    const t = await TestServer.create(Hangs, { shutdownTimeout: 0.5, logger: { error: () => undefined, warn: () => undefined } });
    const c = t.connect();
    c.write('x\n');
    // Before: the connection stayed open and close() pending for ever, and close() called the hook again.
    await within(5000, 'the connection to close', c.closed);
    await within(5000, 'close()', t.close());
    expect(calls).toBe(1);
  });

  test('the test reads replies with read(n) and readAll()', async () => {
    const t = await serve(ClassicStream);
    const c = t.connect();
    c.write('hello\nworld\n');
    expect(await c.read(3)).toEqual(Buffer.from('HEL'));
    c.end();
    expect(await c.readAll()).toEqual(Buffer.from('LO\nWORLD\n'));
  });
});

@TcpServer(0)
@Framing(NulFramer, { maxLength: 64 })
class Stomp {
  @OnMessage() on(frame: string) {
    return `got ${frame}`;
  }
}

/** A user framer with no `buffered`: the runner counts the bytes fed since its last message. */
@TcpServer(0)
@Framing(() => ({ decode: (chunk: Buffer) => (chunk.includes(0x0a) ? ['line'] : []), encode: (r: string) => r }), { maxLength: 10 })
class Opaque {
  @OnMessage() on(m: string) {
    return `${m}!`;
  }
}

describe('user framers', () => {
  test('a framer class from the docs is built per connection and its messages answered', async () => {
    const t = await serve(Stomp);
    const a = t.connect();
    const b = t.connect();
    a.write('SEND\0CONN');
    b.write('ONE\0');
    a.write('ECT\0');
    expect((await a.read(9)).toString()).toBe('got SEND\0');
    expect((await a.read(12)).toString()).toBe('got CONNECT\0');
    await a.end(); // Stomp is served serially: b is taken once a has ended
    expect((await b.read(8)).toString()).toBe('got ONE\0');
    await b.end();
  });

  test('maxLength holds for a framer with buffered: a message past it is a FrameTooLongError', async () => {
    const t = await serve(Stomp);
    const c = t.connect();
    for (let i = 0; i < 200; i++) c.write('0123456789');
    await c.closed;
    expect(t.errors).toEqual([expect.any(FrameTooLongError)]);
  });

  test('maxLength holds for a framer without buffered, counted from the bytes fed since its last message', async () => {
    const t = await serve(Opaque);
    const c = t.connect();
    c.write('a\n');
    expect((await c.read(5)).toString()).toBe('line!');
    for (let i = 0; i < 300; i++) c.write('0123456789'); // 3,000 bytes with no message: past 10 + 1 KiB
    await c.closed;
    expect(t.errors).toEqual([expect.any(FrameTooLongError)]);
  });
});

/** Pushes 1 KiB lines: `fill` while send() returns true, then waits for drained(); `flood` ignores what send() returns. */
@TcpServer(0)
@Framing('lines', { maxOutputBuffer: 64 * 1024 })
class Pusher {
  static seen: unknown[] = [];
  @OnMessage() async on(line: string, req: MessageRequest<string>) {
    const kib = 'y'.repeat(1023);
    if (line === 'fill') {
      let n = 0;
      while (req.send(kib)) n++;
      Pusher.seen.push(n);
      Pusher.seen.push(await req.drained());
      return 'after';
    }
    for (let i = 0; i < 200; i++) Pusher.seen.push(req.send(kib));
    Pusher.seen.push(await req.drained()); // the connection has ended: false, at once
    return undefined;
  }
  @HandleError() failed(error: Error) {
    events.push(error.name);
  }
}

/** `tiny N` pushes N two-byte lines blind, then replies `end`; the default maxOutputBuffer (16 MiB). */
@TcpServer(0)
@Framing('lines')
class TinyPusher {
  @OnMessage() async on(line: string, req: MessageRequest<string>) {
    await new Promise((resolve) => setImmediate(resolve)); // as a timer or another connection pushes: not within this message's batch
    const count = Number(line.slice('tiny '.length));
    for (let i = 0; i < count; i++) req.send(`${i % 10}`);
    return 'end';
  }
}

/** Greets with 1 MiB from @Setup and waits there for the client to take it, then echoes. */
@TcpServer(0)
@Framing('lines')
class BigGreeter {
  static seen: unknown[] = [];
  @Setup() async greet(req: MessageRequest<string>) {
    BigGreeter.seen.push(req.send('g'.repeat(1024 * 1024)));
    BigGreeter.seen.push(req.send('h'.repeat(1024 * 1024))); // held while the first waits for the client
    BigGreeter.seen.push(await req.drained());
  }
  @OnMessage() echo(line: string) {
    return `echo ${line}`;
  }
}

/** Greets with 1 MiB from @Setup, then waits there for the test (not for the client), then echoes. */
@TcpServer(0)
@Framing('lines')
class GreeterThatWaits {
  static release: (() => void) | undefined;
  @Setup() async greet(req: MessageRequest<string>) {
    req.send('g'.repeat(1024 * 1024));
    await new Promise<void>((resolve) => (GreeterThatWaits.release = resolve));
  }
  @OnMessage() echo(line: string) {
    return `echo ${line}`;
  }
}

/** Says goodbye from @Finish. */
@TcpServer(0)
@Framing('lines')
class Farewell {
  @OnMessage() echo(line: string) {
    return `echo ${line}`;
  }
  @Finish() bye(req: MessageRequest<string>) {
    events.push(`bye sent: ${req.send('bye')}`);
  }
}

test('a message sent from @Finish goes out before the connection closes', async () => {
  const t = await serve(Farewell);
  const c = t.connect();
  c.write('hi\n');
  await c.end();
  expect((await c.readAll()).toString()).toBe('echo hi\nbye\n');
  expect(events).toEqual(['bye sent: true']);
});

describe('pushes (req.send) are bounded', () => {
  beforeEach(() => (Pusher.seen = []));

  test('send() returns false at the high-water mark, and drained() resolves true once the client has read', async () => {
    const t = await serve(Pusher);
    const c = t.connect();
    c.write('fill\n');
    await until(() => Pusher.seen.length === 1);
    const n = Pusher.seen[0] as number;
    expect(n).toBeGreaterThan(4); // it took some: the client's buffers
    expect(n).toBeLessThan(64); // and stopped long before maxOutputBuffer (64 KiB)
    await new Promise((r) => setImmediate(r));
    expect(Pusher.seen).toHaveLength(1); // drained() waits while the client reads nothing
    const pushed = await c.read((n + 1) * 1024);
    expect(pushed.toString()).toBe(('y'.repeat(1023) + '\n').repeat(n + 1));
    await until(() => Pusher.seen.length === 2);
    expect(Pusher.seen[1]).toBe(true);
    expect(await c.readline()).toBe('after\n');
    await c.end();
    expect(events).toEqual([]);
  });

  test('drained() awaited in @Setup resolves once the client has read the greeting, and the messages follow', async () => {
    BigGreeter.seen = [];
    const t = await serve(BigGreeter);
    const c = t.connect();
    c.write('hi\n');
    await until(() => BigGreeter.seen.length === 2);
    expect(BigGreeter.seen).toEqual([false, false]);
    expect(await c.readline()).toBe('g'.repeat(1024 * 1024) + '\n');
    expect(await c.readline()).toBe('h'.repeat(1024 * 1024) + '\n');
    await until(() => BigGreeter.seen.length === 3);
    expect(BigGreeter.seen[2]).toBe(true);
    expect(await c.readline()).toBe('echo hi\n');
    await c.end();
  });

  test('a greeting past the high-water mark that the client read while @Setup still ran does not hold the messages back', async () => {
    GreeterThatWaits.release = undefined;
    const t = await serve(GreeterThatWaits);
    const c = t.connect();
    c.write('hi\n');
    expect((await c.readline()).length).toBe(1024 * 1024 + 1); // its 'drain' comes while @Setup runs
    await until(() => GreeterThatWaits.release !== undefined);
    GreeterThatWaits.release!();
    expect(await c.readline()).toBe('echo hi\n');
    await c.end();
  });

  test('tiny pushes to a client that is behind are held compactly, not as one queued write each, and all arrive in order', async () => {
    const t = await serve(TinyPusher);
    const writes = jest.spyOn(MemoryEnd.prototype, 'write');
    try {
      // Streams' default high-water mark is 16 KiB on Node 20 and 64 KiB from Node 22 on: push 16 marks' worth
      const mark = new PassThrough().writableHighWaterMark;
      const count = 8 * mark;
      const c = t.connect();
      c.write(`tiny ${count}\n`);
      await until(() => writes.mock.calls.length > 1);
      await new Promise((r) => setImmediate(r));
      // The first mark each way (the client's buffer, then the server end's high-water mark) as single writes,
      // at most `mark` of them; the rest held in blocks: far fewer writes than the messages
      expect(writes.mock.calls.length).toBeLessThan(count / 2);
      const all = (await c.read(2 * count + 4)).toString();
      expect(all).toBe(Array.from({ length: count }, (_, i) => i % 10).join('\n') + '\nend\n');
    } finally {
      writes.mockRestore();
    }
  });

  test('a client that resets while a pusher waits in drained(): it resolves false, the call returns and the connection ends', async () => {
    const t = await serve(Pusher);
    const c = t.connect();
    c.write('fill\n');
    await until(() => Pusher.seen.length === 1);
    c.destroy();
    await c.closed;
    expect(Pusher.seen[1]).toBe(false);
    expect(events).toEqual(['Error']); // ECONNRESET, through @HandleError
  });

  test('pushing on past maxOutputBuffer ends the connection with an OutputBufferFullError; later sends return false and drained() false', async () => {
    const t = await serve(Pusher);
    const c = t.connect();
    c.write('flood\n');
    await c.closed;
    expect(events).toEqual(['OutputBufferFullError']);
    const results = Pusher.seen as boolean[];
    expect(results).toHaveLength(201);
    const firstRefused = results.indexOf(false);
    expect(firstRefused).toBeGreaterThan(0);
    // after the buffer passed 64 KiB, the next push ended the connection: nothing after it was taken
    expect(results.slice(results.lastIndexOf(true) + 1).every((r) => r === false)).toBe(true);
    expect(results.lastIndexOf(true)).toBeLessThan(100);
    expect(results[200]).toBe(false);
  });
});

@TcpServer(0)
class BigWriter {
  @Handle() async handle(req: StreamRequest) {
    events.push('writing');
    await req.wfile.write(Buffer.alloc(1024 * 1024)); // more than the client's buffer: it waits for the client
    events.push('written');
  }
  @HandleError() failed(error: Error & { code?: string }) {
    events.push(`${error.code}`);
  }
}

test('a client reset reaches a handler blocked in wfile.write(), as on a socket: the write rejects and the request ends', async () => {
  const t = await serve(BigWriter);
  const c = t.connect();
  await until(() => events.length === 1); // the handler is writing, blocked on this client, which reads nothing
  c.destroy();
  await c.closed;
  await until(() => events.length === 2);
  expect(events).toEqual(['writing', expect.stringMatching(/^(ECONNRESET|EPIPE)$/)]);
  const started = Date.now();
  await t.close();
  expect(Date.now() - started).toBeLessThan(1000); // nothing left running for close() to wait out
});

describe('the default client address follows the transport', () => {
  @UnixStreamServer('/tmp/sockserve-harness-never-bound.sock')
  class UnixStreamClient {
    @Handle() async handle(req: StreamRequest) { await req.wfile.write(JSON.stringify(req.clientAddress)); }
  }
  const dgramClients: unknown[] = [];
  @UnixDatagramServer('/tmp/sockserve-harness-never-bound-dgram.sock')
  class UnixDatagramClient {
    @Handle() answer(req: DatagramRequest) {
      dgramClients.push(req.clientAddress);
      void req.wfile.write(JSON.stringify(req.clientAddress));
    }
  }

  test('on Unix transports an unnamed client is an unbound Unix client, { path: \'\' }, as the real servers report it (it was 127.0.0.1:50000)', async () => {
    const stream = await serve(UnixStreamClient);
    const c = stream.connect();
    expect(JSON.parse((await c.readAll()).toString())).toEqual({ path: '' });
    await c.closed;
    const dgram = await serve(UnixDatagramClient, { logger: { error: () => undefined, warn: () => undefined } });
    // No reply can reach an unbound client, as from the real server: the error it reports (the reply was returned).
    expect(await dgram.datagram('x')).toBeUndefined();
    expect(dgramClients).toEqual([{ path: '' }]);
    expect(dgram.errors).toEqual([expect.objectContaining({ name: 'UnreachableClientError', code: 'EDESTADDRREQ', message: expect.stringMatching(/^UnixDatagramClient\.send\(\): the client's Unix datagram socket has no path/) })]);
  });

  test('a Unix client the test names is kept, and TCP keeps 127.0.0.1:50000', async () => {
    const dgram = await serve(UnixDatagramClient);
    expect(JSON.parse(String(await dgram.datagram('x', { path: '/tmp/client.sock' })))).toEqual({ path: '/tmp/client.sock' });
    const tcp = await serve(TcpClient);
    const c = tcp.connect();
    expect(JSON.parse((await c.readAll()).toString())).toEqual({ host: '127.0.0.1', port: 50000, family: 'IPv4' });
  });
});

@TcpServer(0)
class TcpClient {
  @Handle() async handle(req: StreamRequest) { await req.wfile.write(JSON.stringify(req.clientAddress)); }
}

@Injectable({ scope: 'request' })
class SlowToDispose {
  async dispose() {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

@TcpServer(0)
class FailsWithScoped {
  constructor(private readonly scoped: SlowToDispose) {}
  @Handle() async handle(req: StreamRequest) {
    void this.scoped;
    await req.wfile.write('partial\n');
    throw new Error(`failed on ${(await req.rfile.readline()).toString().trim()}`);
  }
}

@TcpServer(0)
class FailsWithScopedAndHook extends FailsWithScoped {
  @HandleError() failed(error: Error) {
    events.push(`hook ${error.message}`);
  }
}

@TcpServer(0)
class FailsUnscoped {
  @Handle() async handle(req: StreamRequest) {
    throw new Error(`failed on ${(await req.rfile.readline()).toString().trim()}`);
  }
}

@TcpServer(0)
@Framing('lines', { maxLength: 4 })
class MessagesWithScoped {
  constructor(private readonly scoped: SlowToDispose) {}
  @OnMessage() on(line: string) {
    void this.scoped;
    return line;
  }
}

@TcpServer(0)
class HalfClosesFirst {
  @Handle() async handle(req: StreamRequest) {
    await req.wfile.write('bye\n');
    await req.wfile.end();
    events.push(`then read ${(await req.rfile.readline()).toString().trim()}`);
  }
}

describe('t.errors is complete when the client sees the connection end', () => {
  const quiet = { logger: { error() {}, warn() {} } };
  test.each([
    ['a request-scoped provider whose dispose() is async', FailsWithScoped],
    ['that provider and @HandleError, whose hook ran before the end', FailsWithScopedAndHook],
    ['no request-scoped provider', FailsUnscoped],
    ['an @OnMessage handler with a request-scoped provider, and a message past maxLength', MessagesWithScoped],
  ])('with %s, the error is in t.errors at EOF (it came only at `closed`)', async (_, handler) => {
    const t = await serve(handler, quiet);
    const c = t.connect();
    c.write(handler === MessagesWithScoped ? 'ok\ntoo long\n' : 'x\n');
    await c.readAll();
    if (handler === MessagesWithScoped) expect(t.errors).toEqual([expect.any(FrameTooLongError)]);
    else expect(t.errors).toEqual([new Error('failed on x')]);
    await c.closed;
    expect(t.errors).toHaveLength(1);
    if (handler === FailsWithScopedAndHook) expect(events).toEqual(['hook failed on x']);
  });

  test('a half-close the handler makes itself mid-request reaches the client at once: it may answer after reading EOF', async () => {
    const t = await serve(HalfClosesFirst);
    const c = t.connect();
    expect((await within(1000, 'the EOF of a half-close', c.readAll())).toString()).toBe('bye\n');
    c.write('after\n');
    await c.end();
    expect(events).toEqual(['then read after']);
  });
});

@TcpServer(0)
class ShutsDown {
  @Verify() verify(client: ClientAddress) {
    return client.host !== '192.0.2.66';
  }
  @Handle() async handle(req: StreamRequest) {
    const line = (await req.rfile.readline()).toString().trim();
    if (line === 'shutdown') await req.server.shutdown();
    if (line === 'boom') throw new Error('boom');
    await req.wfile.write(`${line} done\n`);
  }
}

describe('stats() in memory, as a real server\'s (API.md §14)', () => {
  test('accepted counts every connection and datagram taken, refused ones included; rejected those @Verify refused; errors the handler\'s (accepted was 0 while active was 1)', async () => {
    const t = await serve(ShutsDown, { logger: { error() {}, warn() {} } });
    const c = t.connect();
    await until(() => t.server.stats().active === 1);
    expect(t.server.stats()).toMatchObject({ accepted: 1, active: 1, rejected: 0, errors: 0 });
    c.write('a\n');
    expect(await c.readAll()).toEqual(Buffer.from('a done\n'));
    await c.closed;
    const refused = t.connect({ host: '192.0.2.66', port: 1 });
    await refused.closed;
    const failing = t.connect();
    failing.write('boom\n');
    await failing.closed;
    await until(() => t.server.stats().active === 0);
    expect(t.server.stats()).toMatchObject({ accepted: 3, active: 0, rejected: 1, errors: 1, clientErrors: 0 });
    const u = await serve(RawDatagrams);
    await u.datagram('ping');
    await until(() => u.server.stats().active === 0);
    expect(u.server.stats()).toMatchObject({ accepted: 1, active: 0 });
  });
});

describe('stats().active once the test has seen a request end (new-user run: it said 1 until a setImmediate later)', () => {
  abstract class EchoOnce { @Handle() async h(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); } }
  @TcpServer(0) class Serial extends EchoOnce {}
  @TcpServer(0) @Concurrent() class Interleaved extends EchoOnce {}
  @TcpServer(0) @Concurrent() class Verified extends EchoOnce { @Verify() ok() { return true; } }
  @TcpServer(0) @Framing('lines') class Messages { @OnMessage() on(line: string) { return line; } }
  @UdpServer(0) class Datagrams { @Handle() h(req: DatagramRequest) { return req.wfile.write(req.data); } }

  test.each([['serial @Handle', Serial], ['@Concurrent @Handle', Interleaved], ['@Verify', Verified], ['@OnMessage', Messages]] as const)('%s: 0 as soon as end() resolves', async (_kind, Handler) => {
    const t = await serve(Handler);
    const c = t.connect();
    c.write('a\n');
    expect(await c.readline()).toBe('a\n');
    await c.end();
    expect(t.server.stats()).toMatchObject({ accepted: 1, active: 0 });
  });

  test('a datagram: 0 as soon as its reply has come', async () => {
    const u = await serve(Datagrams);
    expect(String(await u.datagram('ping'))).toBe('ping');
    expect(u.server.stats()).toMatchObject({ accepted: 1, active: 0 });
  });
});

describe('shutdown() in memory, as a real server\'s (API.md §6)', () => {
  test('after req.server.shutdown() new connections stay unread until close(), which resets them (they were served)', async () => {
    const t = await serve(ShutsDown);
    const first = t.connect();
    first.write('shutdown\n');
    expect((await first.readAll()).toString()).toBe('shutdown done\n');
    await first.closed;
    const late = t.connect();
    late.write('late\n');
    let ended = false;
    const read = late.readAll().then((b) => b.toString(), (e: NodeJS.ErrnoException) => e.code).finally(() => (ended = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ended).toBe(false);
    expect(t.server.stats()).toMatchObject({ accepted: 1, active: 0 });
    await t.close();
    await late.closed;
    expect(await read).toBe('ECONNRESET');
  });

  test('after t.server.shutdown() a datagram stays unread: close() resolves it to no reply', async () => {
    const u = await serve(RawDatagrams);
    await u.server.shutdown();
    let settled = false;
    const reply = u.datagram('ping').finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect(events).toEqual([]);
    await u.close();
    expect(await reply).toBeUndefined();
  });
});

describe.each(['serial', '@Concurrent'])('shutdown() in memory, %s: reads that would wait see EOF, as on a socket (API.md §6)', (mode) => {
  abstract class EchoesUntilEof {
    @Handle() async h(req: StreamRequest) {
      for (;;) {
        const line = await req.rfile.readline();
        events.push(`${req.clientAddress.port} ${JSON.stringify(line.toString())}`);
        if (line.length === 0) return;
        await req.wfile.write(line);
      }
    }
  }
  @TcpServer(0) class Serial extends EchoesUntilEof {}
  @TcpServer(0) @Concurrent() class Interleaved extends EchoesUntilEof {}
  @TcpServer(0) @Framing('lines') class SerialMessages { @OnMessage() on(line: string) { return line; } }
  @TcpServer(0) @Concurrent() @Framing('lines') class InterleavedMessages { @OnMessage() on(line: string) { return line; } }

  test('a handler waiting for its client\'s next line gets EOF and ends; what was written before shutdown() is still served (the handler waited for ever)', async () => {
    const t = await serve(mode === 'serial' ? Serial : Interleaved);
    const first = t.connect({ host: '127.0.0.1', port: 1 });
    first.write('a\n');
    expect(await first.readline()).toBe('a\n');
    // serial: waits for its turn behind the first, with its line already written
    const second = t.connect({ host: '127.0.0.1', port: 2 });
    second.write('b\n');
    await t.server.shutdown();
    expect(await within(2000, 'the first connection to end', first.readAll().then(String))).toBe('');
    expect(await within(2000, 'the second connection to be served and end', second.readAll().then(String))).toBe('b\n');
    // serial: one connection after the other; @Concurrent: both at once, in either order
    const served = ['1 "a\\n"', '1 ""', '2 "b\\n"', '2 ""'];
    expect(mode === 'serial' ? events : [...events].sort()).toEqual(mode === 'serial' ? served : [...served].sort());
    await within(2000, 'both requests to end', until(() => t.server.stats().active === 0));
  });

  test('an @OnMessage connection gets its pending replies, then EOF', async () => {
    const t = await serve(mode === 'serial' ? SerialMessages : InterleavedMessages);
    const c = t.connect();
    c.write('x\ny\n');
    expect(await c.readline()).toBe('x\n');
    await t.server.shutdown();
    expect(await within(2000, 'the connection to end', c.readAll().then(String))).toBe('y\n');
    await within(2000, 'the request to end', until(() => t.server.stats().active === 0));
  });
});

describe('shutdown() in memory, serial: idle connections waiting for their turn (API.md §6)', () => {
  @TcpServer(0) class EchoesUntilEof {
    @Handle() async h(req: StreamRequest) {
      for (let line = await req.rfile.readline(); line.length > 0; line = await req.rfile.readline()) await req.wfile.write(line);
    }
  }

  test('each gets EOF within the first-request grace counted from its connect, as a real serial server counts it from the accept (each waited 1 s more behind the one before)', async () => {
    const t = await serve(EchoesUntilEof);
    const clients = [t.connect({ host: '127.0.0.1', port: 1 }), t.connect({ host: '127.0.0.1', port: 2 }), t.connect({ host: '127.0.0.1', port: 3 })];
    const t0 = performance.now();
    await t.server.shutdown();
    const ended = await within(5000, 'every connection to end', Promise.all(clients.map((c) => c.readAll().then(() => performance.now() - t0))));
    expect(Math.max(...ended)).toBeLessThan(1800); // the grace (1 s) once, not once per connection (3 s)
    await within(2000, 'the requests to end', until(() => t.server.stats().active === 0));
  });
});

describe('shutdown() in memory, @OnMessage: a connection that has sent nothing yet', () => {
  @TcpServer(0) @Concurrent() @Framing('lines') class EchoMessages {
    @OnMessage() on(line: string) { return `echo ${line}`; }
  }

  test('has the first-request grace, as over a socket: a request sent 100 ms after shutdown() began is answered (it got a closed connection)', async () => {
    const t = await serve(EchoMessages);
    const c = t.connect({ host: '127.0.0.1', port: 1 });
    const stopped = t.server.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 100));
    c.write('request\n');
    expect((await within(5000, 'the reply', c.readAll())).toString()).toBe('echo request\n');
    await within(5000, 'shutdown()', stopped);
  });
});

describe('under jest.useFakeTimers() (modern: queueMicrotask and process.nextTick are faked too)', () => {
  const realTimers = jest.requireActual<typeof import('node:timers')>('node:timers');
  /** `work`'s value, or 'hung' after `ms` of real time (the fake clock would never fire it). */
  function orHung<T>(work: Promise<T>, ms = 1000): Promise<T | 'hung'> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([work, new Promise<'hung'>((r) => (timer = realTimers.setTimeout(() => r('hung'), ms)))]).finally(() => realTimers.clearTimeout(timer));
  }
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('the client sees the server\'s EOF: readAll() and readline() at EOF resolve (readAll() hung on the faked queueMicrotask)', async () => {
    const t = await serve(Lifecycle, { providers: [{ provide: CLOCK, useValue: () => 'noon' }], logger: { error() {}, warn() {} } });
    const c = t.connect();
    c.write('a\n');
    expect(await orHung(c.readline())).toBe('A\n');
    c.write('b');
    expect(await orHung(c.end())).toBeUndefined();
    expect(await orHung(c.readAll().then(String))).toBe('B\n');
    expect(await orHung(c.readline())).toBe('');
    const d = t.connect();
    d.write('boom\n');
    expect(await orHung(d.readAll().then(String))).toBe('');
    expect(await orHung(d.readline())).toBe('');
    expect(t.errors).toEqual([expect.objectContaining({ message: 'boom' })]);
  });

  // shutdown() ends an open connection's waiting reads (ccc1662) after a turn of the event loop, and an idle
  // connection's after its first-request grace: both ran on the global timers, which the fake clock holds.
  @TcpServer(0) @Concurrent() class EchoesUntilEof {
    @Handle() async h(req: StreamRequest) {
      for (let line = await req.rfile.readline(); line.length > 0; line = await req.rfile.readline()) await req.wfile.write(line);
    }
  }
  @TcpServer(0) @Concurrent() @Framing('lines') class Echoes { @OnMessage() on(line: string) { return line; } }

  test.each([
    { what: 'a handler waiting for its next line', Handler: EchoesUntilEof, first: 'a\n' },
    { what: 'an @OnMessage connection', Handler: Echoes, first: 'a\n' },
    { what: 'a handler on a connection that sent nothing yet', Handler: EchoesUntilEof, first: undefined },
  ])('t.server.shutdown(): $what gets EOF, as with real timers (its reads waited for the fake clock for ever)', async ({ Handler, first }) => {
    const t = await serve(Handler);
    const c = t.connect();
    if (first !== undefined) {
      c.write(first);
      expect(await orHung(c.readline())).toBe(first);
    }
    const stopped = t.server.shutdown();
    expect(await orHung(c.readAll().then(String), 3000)).toBe('');
    expect(await orHung(stopped)).toBeUndefined();
    expect(t.server.stats().active).toBe(0);
  });

  // The loop's wait for a request (TestServer.waitForRequest, its poll interval) ran on the global setTimeout: under
  // the fake clock it never ended, so the loop never saw shutdown() and neither resolved.
  test('t.server.serveForever(), then t.server.shutdown(): both resolve (the loop\'s poll waited for the fake clock for ever)', async () => {
    const t = await serve(EchoesUntilEof);
    const loop = t.server.serveForever(0.05);
    const c = t.connect();
    c.write('a\n');
    expect(await orHung(c.readline())).toBe('a\n');
    const stopped = t.server.shutdown();
    expect(await orHung(c.readAll().then(String))).toBe('');
    expect(await orHung(stopped, 3000)).toBeUndefined();
    expect(await orHung(loop)).toBeUndefined();
  });

  // shutdownTimeout's deadline (the loop's armDeadline) and the abandoning's grace ran on the global setTimeout: a
  // handler that never returns was never abandoned on the fake clock, and shutdown() and the loop hung.
  @TcpServer(0) @Concurrent() class NeverReturns {
    @Handle() async h(req: StreamRequest) { await req.rfile.readline(); await new Promise(() => undefined); }
  }
  test('t.server.serveForever(), a handler that never returns, t.server.shutdown(): abandoned after shutdownTimeout in real time', async () => {
    const t = await serve(NeverReturns, { shutdownTimeout: 0.3, logger: { error() {}, warn() {} } });
    const loop = t.server.serveForever(0.05);
    const c = t.connect();
    c.write('a\n');
    for (let i = 0; i < 50 && t.server.stats().active === 0; i++) await new Promise((r) => realTimers.setImmediate(r));
    expect(t.server.stats().active).toBe(1);
    expect(await orHung(t.server.shutdown(), 3000)).toBeUndefined();
    expect(await orHung(loop)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ active: 0, clientErrors: 1 });
  });
});

describe('a handler without a concurrency decorator is served serially, as bootstrap() serves it (API.md §3)', () => {
  @TcpServer(0)
  @Framing('lines')
  class OneAtATime {
    @Verify() verify(client: ClientAddress) { events.push(`verify ${client.port}`); return true; }
    @OnMessage() on(line: string) { events.push(`message ${line}`); return line; }
    @Finish() finish(req: MessageRequest) { events.push(`finish ${req.clientAddress.port}`); }
  }
  @TcpServer(0)
  @Concurrent()
  @Framing('lines')
  class Interleaved {
    @OnMessage() on(line: string) { return line; }
  }

  test('the second connection is taken only once the first has ended (it was served at once: a test passed that production deadlocks)', async () => {
    const t = await serve(OneAtATime);
    const first = t.connect({ host: '127.0.0.1', port: 1 });
    first.write('a\n');
    expect(await first.readline()).toBe('a\n');
    const second = t.connect({ host: '127.0.0.1', port: 2 });
    second.write('b\n');
    let answered = false;
    const reply = second.readline().then((line) => ((answered = true), line));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    expect(events).toEqual(['verify 1', 'message a']);
    await first.end();
    expect(await within(2000, 'the second reply', reply)).toBe('b\n');
    await second.end();
    expect(events).toEqual(['verify 1', 'message a', 'finish 1', 'verify 2', 'message b', 'finish 2']);
  });

  test('close() resets a connection still waiting for its turn: @Verify never runs for it and its closed resolves', async () => {
    const t = await TestServer.create(OneAtATime);
    const first = t.connect({ host: '127.0.0.1', port: 1 });
    first.write('a\n');
    expect(await first.readline()).toBe('a\n');
    const second = t.connect({ host: '127.0.0.1', port: 2 });
    const read = second.readAll().then(String, (error: NodeJS.ErrnoException) => error.code);
    await within(5000, 'close()', t.close());
    await within(2000, 'the waiting connection to close', second.closed);
    expect(await read).toBe('ECONNRESET');
    expect(events.filter((e) => e.endsWith(' 2'))).toEqual([]);
  });

  test('a connection waiting for its turn when shutdown() is called (here by the first request\'s handler) is still served, as a real serial server serves what it accepted before shutdown() (it stayed unread until close() reset it)', async () => {
    @TcpServer(0)
    class ShutsDown {
      @Handle() async h(req: StreamRequest) {
        const line = await req.rfile.readline();
        await req.server.shutdown();
        await req.wfile.write(line);
      }
    }
    const t = await serve(ShutsDown);
    const first = t.connect();
    const second = t.connect();
    first.write('a\n');
    second.write('b\n');
    expect(await within(2000, 'the first reply', first.readAll().then(String))).toBe('a\n');
    expect(await within(2000, 'the second reply', second.readAll().then(String))).toBe('b\n');
    // one made after shutdown() stays unread, as before
    const late = t.connect();
    late.write('c\n');
    const read = late.readAll().then(String, (error: NodeJS.ErrnoException) => error.code);
    await within(5000, 'close()', t.close());
    expect(await read).toBe('ECONNRESET');
  });

  test('@Concurrent handlers interleave their connections, as before', async () => {
    const t = await serve(Interleaved);
    const first = t.connect();
    const second = t.connect();
    second.write('b\n');
    expect(await within(2000, 'the second reply', second.readline())).toBe('b\n');
    first.write('a\n');
    expect(await first.readline()).toBe('a\n');
  });
});

describe('t.errors lists what the default report got', () => {
  test('a @HandleError that throws: its own error is in t.errors after the request\'s, as the log has both (only the request\'s was there)', async () => {
    @TcpServer(0)
    @Framing('lines')
    class HookThrows {
      @OnMessage() on(line: string) { if (line === 'boom') throw new Error('boom'); return line; }
      @HandleError() failed() { throw new Error('the hook threw'); }
    }
    const logged: string[] = [];
    const t = await serve(HookThrows, { logger: { error: (m) => logged.push(m), warn: (m) => logged.push(m) } });
    const c = t.connect();
    c.write('boom\n');
    await c.readAll();
    expect(t.errors).toEqual([expect.objectContaining({ message: 'boom' }), expect.objectContaining({ message: 'the hook threw' })]);
    expect(logged).toEqual([expect.stringContaining('the hook threw')]);
    expect(t.server.stats()).toMatchObject({ errors: 1 }); // counted once, as bootstrap()'s server counts it
  });
});

/** A request-scoped dependency that records its disposal. */
@Injectable({ scope: 'request' })
class VerifyScoped {
  static disposed = 0;
  dispose() {
    VerifyScoped.disposed++;
  }
}

abstract class KeepsVerifyState {
  user: string | undefined;
  constructor(@Inject(VerifyScoped) readonly scoped: VerifyScoped) {}
  @Verify() verify() {
    this.user = 'alice';
    seen.push(this, this.scoped);
    return true;
  }
  @OnMessage() on(line: string) {
    seen.push(this, this.scoped);
    return `${this.user} ${line}`;
  }
}
const seen: object[] = [];

@TcpServer(0) @Threading() @Framing('lines')
class ThreadedKeepsVerifyState extends KeepsVerifyState {}
@TcpServer(0) @Concurrent() @Framing('lines')
class ConcurrentKeepsVerifyState extends KeepsVerifyState {}

describe('@Verify of a @Threading or @Forking handler', () => {
  beforeEach(() => {
    seen.length = 0;
    VerifyScoped.disposed = 0;
  });

  // Where @Verify runs in a pooled worker depends on the mode and the Node line: testing-as-in-worker.spec.ts
  // compares each with the real server. A @Threading thread's connections are verified in the server's process.
  test('@Threading: runs on an instance and request scope of its own (disposed), as where the server verifies for a worker: what it keeps on `this` is not there later', async () => {
    const t = await serve(ThreadedKeepsVerifyState);
    const c = t.connect();
    c.write('hi\n');
    // Before: "alice hi" in memory, where the real @Threading server (Node 20) answers "undefined hi" (hostile run).
    expect(await c.readline()).toBe('undefined hi\n');
    await c.end();
    const [verifier, verifyScoped, handler, handlerScoped] = seen;
    expect(handler).not.toBe(verifier);
    expect(handlerScoped).not.toBe(verifyScoped);
    expect(VerifyScoped.disposed).toBe(2); // @Verify's scope and the request's
  });

  test('in the server\'s own modes @Verify and the lifecycle share one instance and scope, as there', async () => {
    const t = await serve(ConcurrentKeepsVerifyState);
    const c = t.connect();
    c.write('hi\n');
    expect(await c.readline()).toBe('alice hi\n');
    await c.end();
    expect(seen[2]).toBe(seen[0]);
    expect(VerifyScoped.disposed).toBe(1);
  });
});

describe('a datagram reply the real socket could not send', () => {
  @UdpServer(0)
  class Sized {
    @Handle() answer(req: DatagramRequest) { void req.wfile.write(Buffer.alloc(Number(req.data.toString()))); }
  }

  test.each([
    ['IPv4', { host: '198.51.100.2', port: 53 }, 65507],
    ['IPv6', { host: '2001:db8::2', port: 53 }, 65527],
  ] as const)('over %s, one longer than a UDP datagram carries is not returned: an EMSGSIZE error is reported, as the real server does (it was returned)', async (_family, from, max) => {
    const t = await serve(Sized, { logger: { error: () => undefined, warn: () => undefined } });
    expect((await t.datagram(String(max), from))?.length).toBe(max);
    expect(await t.datagram(String(max + 1), from)).toBeUndefined();
    expect(t.errors).toEqual([expect.objectContaining({ code: 'EMSGSIZE', message: expect.stringContaining(`a reply of ${max + 1} bytes is longer than one UDP datagram can carry`) })]);
  });
});

describe('req.server of a @Threading or @Forking handler', () => {
  abstract class UsesServer {
    @Handle() async handle(req: StreamRequest) {
      const line = (await req.rfile.readline()).toString().trim();
      if (line === 'stats') {
        try {
          await req.wfile.write(`accepted ${req.server.stats().accepted}`);
        } catch (err) {
          await req.wfile.write((err as Error).message);
        }
      }
      if (line === 'tls') await req.wfile.write(typeof req.server.setSecureContext);
      if (line === 'address') await req.wfile.write(JSON.stringify(req.server.serverAddress));
      if (line === 'close') await req.wfile.write(await req.server.close().then(() => 'closed', (err: Error) => err.message));
    }
  }
  @TcpServer(7001) @Threading() class ThreadedUsesServer extends UsesServer {}
  @TcpServer(7002) @Forking() class ForkedUsesServer extends UsesServer {}
  @TcpServer(7003) @Concurrent() class ConcurrentUsesServer extends UsesServer {}
  const ask = async (t: TestServer, line: string) => {
    const c = t.connect();
    c.write(`${line}\n`);
    const reply = (await c.readAll()).toString();
    await c.closed;
    return reply;
  };

  test.each([ThreadedUsesServer, ForkedUsesServer])('%p is the server as a worker sees it: the address, but no stats(), close() or setSecureContext (the whole server let tests pass that production failed)', async (Handler) => {
    const t = await serve(Handler);
    expect(await ask(t, 'stats')).toBe('server.stats() is not available in a worker thread or child process: call it where bootstrap() ran. From a handler, server.shutdown() works everywhere.');
    expect(await ask(t, 'close')).toMatch(/^server\.close\(\) is not available in a worker thread/);
    expect(await ask(t, 'tls')).toBe('undefined');
    expect(JSON.parse(await ask(t, 'address'))).toEqual(t.server.serverAddress);
    expect(t.server.stats().accepted).toBe(4); // the test's own face is the whole server
  });

  test('a handler in the server\'s own process sees the whole server', async () => {
    const t = await serve(ConcurrentUsesServer);
    expect(await ask(t, 'stats')).toBe('accepted 1');
    expect(await ask(t, 'tls')).toBe('function');
  });
});

describe('drained() in @Finish', () => {
  const said: unknown[] = [];
  @TcpServer(0) @Framing('lines')
  class Farewell {
    @OnMessage() on(line: string) { return line; }
    @Finish() async finish(req: MessageRequest) {
      said.push(await req.drained(), req.send('bye'));
    }
  }

  test('resolves true while a farewell send() still goes out, as send() says (it said false: the connection had "ended")', async () => {
    const t = await serve(Farewell);
    const c = t.connect();
    c.write('a\n');
    await c.end();
    expect((await c.readAll()).toString()).toBe('a\nbye\n');
    expect(said).toEqual([true, true]);
  });
});

describe('req.socket in memory', () => {
  @TcpServer(0) @Concurrent()
  class KeepsAlive {
    @Handle() async handle(req: StreamRequest) {
      req.socket?.setKeepAlive(true, 60_000).setNoDelay(true).unref().ref();
      await req.wfile.write('kept\n');
    }
  }

  test('takes a socket\'s setKeepAlive() and setNoDelay(), as a handler sets them on a socket (a TypeError in the test)', async () => {
    const t = await serve(KeepsAlive);
    const c = t.connect();
    expect((await c.readAll()).toString()).toBe('kept\n');
    expect(t.errors).toEqual([]);
  });
});
