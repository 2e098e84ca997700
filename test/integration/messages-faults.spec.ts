/**
 * @OnMessage faults found by a hostile-client run (2026-12-04), each one case of its kind:
 * timeouts that must hold whichever of the two is set, a handler's time that is not the client's idleness,
 * a datagram cut at maxPacketSize that says so, a user framer's bug that ends one connection (not the
 * process), and a push the framer cannot encode that ends the connection after the replies owed.
 */
import 'reflect-metadata';
import { constants } from 'node:buffer';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import {
  bootstrap, Concurrent, Finish, Framer, Framing, FramingError, HandleError, MessageRequest, OnMessage, Server, TcpServer, UdpServer,
} from '../../src';
import { NulFramer } from '../fixtures/nul-framer';
import { connect, datagramExchange, datagramSilence, within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
const tcp = (s: Server) => s.serverAddress as { host: string; port: number };

/** Everything the client receives until the server closes the connection (bounded). */
function readUntilClose(c: net.Socket, ms = 10000): Promise<string> {
  return within(ms, 'the server to close the connection', new Promise<string>((resolve) => {
    let got = '';
    c.on('data', (d: Buffer) => (got += d));
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
  }));
}

describe('@OnMessage: limits.lineTimeout without requestTimeout', () => {
  @TcpServer({ port: 0, limits: { lineTimeout: 0.5 } }) @Framing('lines') @Concurrent()
  class SlowLines {
    errors: unknown[] = [];
    @OnMessage() on(line: string) { return `got ${line}`; }
    @HandleError() err(e: unknown) { seen.push(e); }
  }
  const seen: unknown[] = [];

  test('a line that trickles in for longer than lineTimeout ends its connection (the earlier line answered)', async () => {
    seen.length = 0;
    const s = serve(await bootstrap(SlowLines, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.write('hello\nslow');
    const trickle = setInterval(() => !c.destroyed && c.write('x'), 100);
    try {
      const t0 = Date.now();
      expect(await got).toBe('got hello\n');
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(seen.map((e) => (e as Error).name)).toEqual(['RequestTimeoutError']);
      expect(String((seen[0] as Error).message)).toMatch(/lineTimeout|0\.5 s/);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
  });
});

describe('@OnMessage: limits.lineTimeout does not count the time the server held reading paused', () => {
  @TcpServer({ port: 0, limits: { lineTimeout: 0.5 } }) @Framing('lines', { concurrency: 1 }) @Concurrent()
  class SlowFirst {
    @OnMessage() async on(line: string) {
      if (line === 'slow') await new Promise((r) => setTimeout(r, 1200));
      return `r:${line}`;
    }
    @HandleError() err(e: unknown) { held.push(e); }
  }
  const held: unknown[] = [];

  test('half a line sent with two messages, the first of which takes longer than lineTimeout, is finished after the replies and answered', async () => {
    held.length = 0;
    const s = serve(await bootstrap(SlowFirst, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.setEncoding('utf8');
    let seen = '';
    c.on('data', (d: string) => {
      seen += d;
      // Its replies are in: the client finishes its line, within lineTimeout of that, and ends.
      if (seen === 'r:slow\nr:x\n') setTimeout(() => c.end('lo\n'), 50);
    });
    c.write('slow\nx\nhel'); // 'hel' waits in the kernel-side buffer while 'slow' runs and reading is paused
    // It was cut the moment reading resumed: the 1.2 s 'slow' took counted against the half line's lineTimeout.
    expect(await within(5000, 'the replies and the close', got)).toBe('r:slow\nr:x\nr:hello\n');
    expect(held).toEqual([]);
  });
});

describe('@OnMessage: requestTimeout is the wait for input, not the handler\'s time', () => {
  @TcpServer(0) @Framing('lines') @Concurrent()
  class SlowHandler {
    @OnMessage() async on(line: string) {
      if (line === 'slow') await new Promise((r) => setTimeout(r, 1000));
      return `done ${line}`;
    }
  }

  test('a call longer than requestTimeout keeps its connection; the next message is answered', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(SlowHandler, { requestTimeout: 0.4, logger }));
    const c = await connect(tcp(s));
    let got = '';
    c.on('data', (d: Buffer) => (got += d));
    c.on('error', () => undefined);
    try {
      c.write('slow\n');
      await within(5000, 'the slow reply', (async () => { while (!got.includes('done slow\n')) await new Promise((r) => setTimeout(r, 10)); })());
      await new Promise((r) => setTimeout(r, 150)); // well within requestTimeout of the reply
      c.write('next\n');
      await within(5000, 'the next reply', (async () => { while (!got.includes('done next\n')) await new Promise((r) => setTimeout(r, 10)); })());
      expect(got).toBe('done slow\ndone next\n');
      expect(s.stats().clientErrors).toBe(0);
      // and requestTimeout still holds once the client goes quiet
      await within(5000, 'the idle connection to be closed', new Promise((r) => c.once('close', r)));
      expect(logger.lines.warn.join('\n')).toMatch(/no data arrived for 0\.4 s/);
    } finally {
      c.destroy();
    }
  });
});

describe('@OnMessage over UDP: a datagram cut at maxPacketSize', () => {
  @UdpServer({ port: 0, maxPacketSize: 100 }) @Framing('lines') @Concurrent()
  class CutLines {
    @OnMessage() on(line: string, req: MessageRequest) { return `${req.truncated} ${line.length}`; }
  }

  test('req.truncated says so (as DatagramRequest.truncated does)', async () => {
    const s = serve(await bootstrap(CutLines));
    const client = dgram.createSocket('udp4');
    try {
      const ask = (payload: Buffer) =>
        within(5000, 'the reply datagram', new Promise<string>((resolve) => {
          client.once('message', (m) => resolve(m.toString()));
          client.send(payload, tcp(s).port, '127.0.0.1');
        }));
      expect(await ask(Buffer.alloc(150, 0x61))).toBe('true 100\n');
      expect(await ask(Buffer.from('hello\n'))).toBe('false 5\n');
    } finally {
      client.close();
    }
  });
});

/**
 * A user framer with a bug: decode() forgets its return for a chunk containing '!'; encode() returns a number for
 * 'n'; `buffered` reads a property of nothing after a chunk with '#', and is NaN after one with '%'.
 */
class BuggyFramer implements Framer<string, string> {
  private last = '';
  get buffered(): number {
    if (this.last.includes('#')) return (undefined as unknown as string[]).length;
    return this.last.includes('%') ? Number.NaN : 0;
  }
  decode(chunk: Buffer): string[] {
    const text = (this.last = chunk.toString());
    if (text.includes('!')) return undefined as unknown as string[];
    return text.split('\n').filter(Boolean);
  }
  encode(reply: string): Buffer {
    return (reply === 'n' ? 42 : Buffer.from(`${reply}\n`)) as unknown as Buffer;
  }
}

describe('@OnMessage: a user framer\'s bug ends that connection only', () => {
  @TcpServer(0) @Framing(BuggyFramer) @Concurrent()
  class Buggy {
    @OnMessage() on(m: string) { return m; }
    @HandleError() err(e: unknown) { errors.push(e); }
  }
  const errors: unknown[] = [];

  test.each([
    ['decode() returns no array', 'a\nb!\n', 'a\n'],
    ['encode() returns no bytes', 'a\nn\n', 'a\n'],
    // read from the socket's data callback unguarded: the process died (and a worker, with all it served)
    ['buffered throws', 'a\nb#\n', 'a\nb#\n'],
    ['buffered is NaN', 'a\nb%\n', 'a\nb%\n'],
  ])('%s: a TypeError for that connection (the framer\'s bug: a handler error, not a client\'s), and the server serves the next client', async (_what, payload, before) => {
    errors.length = 0;
    const s = serve(await bootstrap(Buggy, { logger: memoryLogger() }));
    const bad = await connect(tcp(s));
    const got = readUntilClose(bad);
    // the first message on its own, so its reply is owed before the bad input
    bad.write(payload.slice(0, 2));
    await new Promise((r) => setTimeout(r, 50));
    bad.write(payload.slice(2));
    expect(await got).toBe(before);
    expect(errors.map((e) => (e as Error).name)).toEqual(['TypeError']);
    expect(s.stats()).toMatchObject({ errors: 1, clientErrors: 0 });
    expect((errors[0] as Error).message).toMatch(/@Framing\(BuggyFramer\): (decode\(\) returned undefined, not an array|encode\(\) returned number, not a Buffer|buffered is NaN, not a number of bytes)|^Cannot read properties of undefined/);
    const good = await connect(tcp(s));
    const reply = readUntilClose(good);
    good.end('ok\n');
    expect(await reply).toBe('ok\n');
  });
});

/** A user framer whose end() returns no array: undefined, or a string (FRAMER_END). */
class BadEndFramer implements Framer<string, string> {
  decode(chunk: Buffer): string[] {
    return chunk.toString().split('\n').filter(Boolean);
  }
  get end(): () => string[] {
    if (badEnd.value === 'a getter that throws') throw new Error('end getter threw');
    if (badEnd.value === 'an array whose length throws') return () => new Proxy([] as string[], { get: (t, k) => { if (k === 'length') throw new Error('length threw'); return Reflect.get(t, k); } });
    return () => (badEnd.value === 'string' ? 'xyz' : badEnd.value === 'ok' ? [] : undefined) as unknown as string[];
  }
  encode(reply: string): string {
    return `R:${reply}\n`;
  }
}
const badEnd = { value: 'undefined' };

// end() returning undefined threw a TypeError from the socket's 'end' listener: the process exited (serial,
// @Concurrent), a worker died with the connections it served; a string's characters were handled as messages,
// answered, after the error (hostile run).
describe('@OnMessage: a user framer\'s end() that returns no array', () => {
  @TcpServer(0) @Framing(BadEndFramer) @Concurrent()
  class BadEndConcurrent {
    @OnMessage() on(m: string) { return m; }
    @HandleError() err(e: unknown) { errors.push(e); }
  }
  @TcpServer(0) @Framing(BadEndFramer)
  class BadEndSerial {
    @OnMessage() on(m: string) { return m; }
    @HandleError() err(e: unknown) { errors.push(e); }
  }
  const errors: unknown[] = [];

  test.each([
    ['undefined', BadEndConcurrent],
    ['string', BadEndConcurrent],
    ['undefined', BadEndSerial],
    // read and used outside the guard, these still took the process down (hostile re-check)
    ['a getter that throws', BadEndConcurrent],
    ['an array whose length throws', BadEndSerial],
  ])('%s (%p): the framer\'s error for that connection after the replies owed, nothing of it handled, and the next client is served', async (value, Handler) => {
    errors.length = 0;
    badEnd.value = value;
    const s = serve(await bootstrap(Handler as typeof BadEndSerial, { logger: memoryLogger() }));
    const bad = await connect(tcp(s));
    const got = readUntilClose(bad);
    bad.end('hi\n');
    expect(await got).toBe('R:hi\n');
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    if (value === 'undefined' || value === 'string') {
      expect(errors.map((e) => (e as Error).name)).toEqual(['TypeError']);
      expect((errors[0] as Error).message).toContain(`@Framing(BadEndFramer): end() returned ${value}, not an array`);
    } else {
      expect(errors.map((e) => (e as Error).message)).toEqual([value === 'a getter that throws' ? 'end getter threw' : 'length threw']);
    }
    const good = await connect(tcp(s));
    const reply = readUntilClose(good);
    good.write('ok\n');
    await new Promise((r) => setTimeout(r, 50));
    badEnd.value = 'ok';
    good.end();
    await within(5000, 'the next client', reply);
    expect(s.stats().messages).toBe(2);
  });

  // A datagram's framer: end() returning undefined passed silently; encode() returning null reached dgram, whose
  // TypeError named no framer (hostile run).
  test.each([
    ['end() returning undefined', 'end() returned undefined, not an array'],
    ['encode() returning null', 'encode() returned null, not a Buffer, Uint8Array or string'],
  ])('over UDP: %s is the framer\'s TypeError, saying so', async (what, said) => {
    class UdpFramer implements Framer<string, string> {
      decode(chunk: Buffer): string[] { return [chunk.toString()]; }
      end?(): string[];
      encode(m: string): string { return what.startsWith('encode') ? (null as unknown as string) : m; }
    }
    if (what.startsWith('end')) UdpFramer.prototype.end = () => undefined as unknown as string[];
    @UdpServer(0) @Framing(UdpFramer) @Concurrent()
    class UdpBad {
      @OnMessage() on(m: string) { return m; }
      @HandleError() err(e: unknown) { errors.push(e); }
    }
    errors.length = 0;
    const s = serve(await bootstrap(UdpBad, { logger: memoryLogger() }));
    // The message decode() gave is still answered, as on a stream, before end()'s error; one encode() fails on is not.
    if (what.startsWith('end')) expect((await datagramExchange(tcp(s), 'x')).data.toString()).toBe('x');
    else expect(await datagramSilence(tcp(s), 'x')).toBe(true);
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(errors.map((e) => (e as Error).name)).toEqual(['TypeError']);
    expect((errors[0] as Error).message).toContain(`@Framing(UdpFramer): ${said}`);
  });
});

/** A user framer whose decode() returns a string (for a datagram with '!') or null (with '?'), not an array. */
class NoArrayFramer implements Framer<string, string> {
  decode(chunk: Buffer): string[] {
    const text = chunk.toString();
    if (text.includes('!')) return 'ab' as unknown as string[];
    if (text.includes('?')) return null as unknown as string[];
    return text.split('\n').filter(Boolean);
  }
  encode(reply: string): string {
    return `${reply}\n`;
  }
}

// A datagram's framer kept what decode() returned before checking it: a string's characters went to the handler as
// messages, and their replies to the client, before the TypeError; null failed as "incoming is not iterable" (hostile
// run). A stream hands on no message of it, and says what the framer did.
describe('@OnMessage over UDP: a user framer\'s decode() that returns no array', () => {
  @UdpServer(0) @Framing(NoArrayFramer) @Concurrent()
  class NoArray {
    @OnMessage() on(m: string) { calls.push(m); return `got ${m}`; }
    @HandleError() err(e: unknown) { errors.push(e); }
  }
  const calls: string[] = [];
  const errors: unknown[] = [];

  test.each([
    ['a string', 'x!', 'string'],
    ['null', 'x?', 'null'],
  ])('%s: no message reaches the handler, nothing is sent, and the TypeError says what decode() returned', async (_what, payload, type) => {
    calls.length = 0;
    errors.length = 0;
    const s = serve(await bootstrap(NoArray, { logger: memoryLogger() }));
    expect(await datagramSilence(tcp(s), payload)).toBe(true);
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([]);
    expect(errors.map((e) => (e as Error).name)).toEqual(['TypeError']);
    expect((errors[0] as Error).message).toContain(`@Framing(NoArrayFramer): decode() returned ${type}, not an array`);
    expect(s.stats().messages).toBe(0);
    expect((await datagramExchange(tcp(s), 'ok')).data.toString()).toBe('got ok\n');
  });
});

// The length-prefixed and netstring framers allocate a message's buffer once its length is read. With a maxLength past
// what a Buffer can hold (Node 20: 4 GiB), a client announcing 0xffffffff bytes made that allocation throw a
// RangeError: a handler error with its traceback (stats().errors), at the client's will, not bad input (hostile run).
describe('@OnMessage: a maxLength past what a Buffer can hold', () => {
  const framings: Array<[string, ClassDecorator, Buffer]> = [
    ['length-prefixed', Framing('length-prefixed', { maxLength: 2 ** 33 }), Buffer.from('ffffffff61', 'hex')],
    ['netstring', Framing('netstring', { maxLength: 2 ** 33 }), Buffer.from('5000000000:a')],
  ];
  // Where a Buffer can hold 4 GiB and more (Node 22+), the allocation is virtual memory, and what is tested here cannot happen.
  const where = constants.MAX_LENGTH <= 2 ** 32 ? test.each(framings) : test.skip.each(framings);
  where('%s: a client announcing a message longer than that is bad input (a FramingError), never a RangeError', async (_kind, framing, payload) => {
    const errors: unknown[] = [];
    class Huge {
      on(m: Buffer) { return m; }
      err(e: unknown) { errors.push(e); }
    }
    OnMessage()(Huge.prototype, 'on', Object.getOwnPropertyDescriptor(Huge.prototype, 'on')!);
    HandleError()(Huge.prototype, 'err', Object.getOwnPropertyDescriptor(Huge.prototype, 'err')!);
    framing(Huge);
    Concurrent()(Huge);
    TcpServer(0)(Huge);
    const s = serve(await bootstrap(Huge, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.end(payload);
    expect(await got).toBe('');
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(FramingError);
    expect(s.stats()).toMatchObject({ errors: 0, clientErrors: 1 });
  });
});

describe('@OnMessage: a push the framer cannot encode', () => {
  @TcpServer(0) @Framing('lines', { concurrency: 2 }) @Concurrent()
  class Pusher {
    @OnMessage() async on(line: string, req: MessageRequest) {
      if (line === 'slow') {
        await new Promise((r) => setTimeout(r, 300));
        return 'slow done';
      }
      if (line === 'push-now') {
        pushed.push(req.send({ not: 'a line' }));
        return undefined;
      }
      if (line === 'push-later') {
        setTimeout(() => pushed.push(req.send({ not: 'a line' })), 50);
        return 'ok';
      }
      return line;
    }
    @HandleError() err(e: unknown) { errors.push(e); }
  }
  const errors: unknown[] = [];
  const pushed: boolean[] = [];

  test.each([
    ['from a timer (pub/sub)', ['push-later'], 'ok\n'],
    ['while an earlier call still runs (pipelined)', ['slow', 'push-now'], 'slow done\n'],
  ])('%s: send() returns false, the replies owed go out, then the connection ends through @HandleError', async (_what, lines, expected) => {
    errors.length = 0;
    pushed.length = 0;
    const s = serve(await bootstrap(Pusher, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.write(lines.map((l) => `${l}\n`).join(''));
    expect(await got).toBe(expected);
    expect(pushed).toEqual([false]);
    expect(errors.map((e) => (e as Error).name)).toEqual(['TypeError']);
    expect((errors[0] as Error).message).toMatch(/cannot encode a reply of type object/);
    await within(5000, 'the connection to be counted closed', (async () => { while (s.stats().active !== 0) await new Promise((r) => setTimeout(r, 10)); })());
  });
});

describe('@OnMessage: a push the framer cannot encode, from a timer, is never thrown at the timer', () => {
  const seen: unknown[] = [];
  const pushed: boolean[] = [];
  const later = (req: MessageRequest, ms: number) => new Promise<void>((resolve) => setTimeout(() => { pushed.push(req.send({ not: 'bytes' })); resolve(); }, ms));

  @UdpServer({ port: 0, host: '127.0.0.1' }) @Framing('lines') @Concurrent()
  class DatagramPusher {
    @OnMessage() async on(line: string, req: MessageRequest) {
      if (line === 'push') await later(req, 20); // the push lands while this call still runs
      return `ok ${line}`;
    }
    @HandleError() err(e: unknown) { seen.push(e); }
  }

  @UdpServer({ port: 0, host: '127.0.0.1' }) @Concurrent()
  class RawDatagramPusher {
    @OnMessage() async on(data: Buffer, req: MessageRequest) {
      if (data.toString() === 'push') await later(req, 20);
      return `ok ${data}`;
    }
    @HandleError() err(e: unknown) { seen.push(e); }
  }

  @TcpServer(0) @Framing('lines') @Concurrent()
  class FarewellPusher {
    @OnMessage() on(line: string) { return line; }
    @Finish() async bye(req: MessageRequest) { await later(req, 20); } // the push lands while @Finish runs
  }

  beforeEach(() => { seen.length = 0; pushed.length = 0; });

  test.each([
    ['@Framing(\'lines\')', DatagramPusher, /@Framing\('lines'\): cannot encode a reply of type object/],
    ['no @Framing', RawDatagramPusher, /@OnMessage without @Framing: cannot send a reply of type object as a datagram/],
  ])('over UDP (%s): the datagram\'s error, through @HandleError, and the server serves on (it stopped the process)', async (_what, Handler, message) => {
    const s = serve(await bootstrap(Handler, { logger: memoryLogger() }));
    const client = dgram.createSocket('udp4');
    try {
      const ask = (payload: string) => client.send(payload, tcp(s).port, '127.0.0.1');
      const replies: string[] = [];
      client.on('message', (m) => replies.push(m.toString()));
      ask('push');
      await within(5000, '@HandleError', (async () => { while (seen.length === 0) await new Promise((r) => setTimeout(r, 10)); })());
      expect(pushed).toEqual([false]);
      expect((seen[0] as Error).name).toBe('TypeError');
      expect((seen[0] as Error).message).toMatch(message);
      ask('next');
      await within(5000, 'the next reply', (async () => { while (!replies.some((r) => r.startsWith('ok next'))) await new Promise((r) => setTimeout(r, 10)); })());
      expect(replies).toContain('ok push' + (Handler === DatagramPusher ? '\n' : '')); // the reply owed still goes out, as on a stream
    } finally {
      client.close();
    }
  });

  test('over TCP, from a timer while @Finish runs: send() returns false, the process goes on', async () => {
    const s = serve(await bootstrap(FarewellPusher, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.end('hi\n');
    expect(await got).toBe('hi\n');
    await within(5000, 'the push', (async () => { while (pushed.length === 0) await new Promise((r) => setTimeout(r, 10)); })());
    expect(pushed).toEqual([false]);
    expect(await new Promise<string>((resolve) => { const c2 = net.connect(tcp(s).port, '127.0.0.1', () => c2.end('again\n')); let d = ''; c2.on('data', (b) => (d += b)); c2.on('close', () => resolve(d)); })).toBe('again\n');
  });
});

describe('@OnMessage: a thenable whose then() throws', () => {
  @TcpServer(0) @Framing('lines') @Concurrent()
  class OddThenable {
    @OnMessage() on(line: string): unknown {
      return line === 'bad' ? { then() { throw new Error('then() threw'); } } : `ok ${line}`;
    }
    @HandleError() err(e: unknown) { oddSeen.push(e); }
  }
  const oddSeen: unknown[] = [];

  test('is that message\'s error, through @HandleError, ending its connection only (it was an uncaught exception: the process died)', async () => {
    oddSeen.length = 0;
    const s = serve(await bootstrap(OddThenable, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.write('one\nbad\ntwo\n');
    expect(await got).toBe('ok one\n');
    expect(oddSeen.map((e) => (e as Error).message)).toEqual(['then() threw']);
    const d = await connect(tcp(s));
    const again = readUntilClose(d);
    d.end('three\n');
    expect(await again).toBe('ok three\n');
  });
});

describe('@OnMessage: a reply whose `then` getter throws (a strict Proxy), and a user framer whose decoded array throws when read', () => {
  /** A strict Proxy, as config and validation libraries make: reading a property it lacks throws. */
  const strict = (o: object): object => new Proxy(o, {
    get(target, key) {
      if (key in target || typeof key === 'symbol') return (target as Record<PropertyKey, unknown>)[key];
      throw new Error(`unknown property ${String(key)}`);
    },
  });
  @TcpServer(0) @Framing('json-lines') @Concurrent()
  class StrictReply {
    @OnMessage() on(m: number): unknown { return m === 2 ? strict({ ok: m }) : { ok: m }; }
    @HandleError() err(e: unknown) { strictSeen.push(e); }
  }
  @TcpServer(0) @Framing('json-lines', { concurrency: 2 }) @Concurrent()
  class StrictAfterAsync {
    @OnMessage() on(m: number): unknown { return m === 1 ? new Promise((r) => setTimeout(() => r({ ok: 1 }), 50)) : strict({ ok: m }); }
    @HandleError() err(e: unknown) { strictSeen.push(e); }
  }
  /** Splits on `;` and hands back a Proxy of the array whose second element throws when read. */
  class TrappedFramer implements Framer {
    decode(chunk: Buffer): unknown[] {
      const parts = chunk.toString().split(';').filter(Boolean);
      return new Proxy(parts, { get: (t, k) => { if (k === '1') throw new Error('framer bug: element 1'); return (t as unknown as Record<PropertyKey, unknown>)[k]; } });
    }
    encode(reply: unknown): Buffer { return Buffer.from(`${String(reply)};`); }
  }
  @TcpServer(0) @Framing(() => new TrappedFramer()) @Concurrent()
  class Trapped {
    @OnMessage() on(m: string) { return `ok ${m}`; }
    @HandleError() err(e: unknown) { strictSeen.push(e); }
  }
  /** Hands back one message: a revoked Proxy, which throws at any look (`instanceof` included). */
  class RevokedFramer implements Framer {
    decode(chunk: Buffer): unknown[] {
      if (chunk.length === 0) return [];
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return [proxy];
    }
    encode(reply: unknown): Buffer { return Buffer.from(`${String(reply)};`); }
  }
  @TcpServer(0) @Framing(() => new RevokedFramer()) @Concurrent()
  class Revoked {
    @OnMessage() on(m: string) { return `ok ${typeof m}`; }
    @HandleError() err(e: unknown) { strictSeen.push(e); }
  }
  const strictSeen: unknown[] = [];
  beforeEach(() => (strictSeen.length = 0));

  test.each([
    ['synchronous', StrictReply, '1\n2\n3\n', '{"ok":1}\n', 'unknown property then'],
    ['after an async call (concurrency 2)', StrictAfterAsync, '1\n2\n', '{"ok":1}\n', 'unknown property then'],
    ['a user framer', Trapped, 'a;b;', '', 'framer bug: element 1'],
    ['a user framer whose message throws when looked at (a revoked Proxy)', Revoked, 'x', '', "Cannot perform 'getPrototypeOf' on a proxy that has been revoked"],
  ] as const)('%s: that connection\'s error through @HandleError, the server serving on (the process died)', async (_what, Handler, input, reply, error) => {
    const s = serve(await bootstrap(Handler as new () => object, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    c.write(input);
    expect(await got).toBe(reply);
    expect(strictSeen.map((e) => (e as Error).message)).toEqual([error]);
    if (Handler === Revoked) return; // every message of its framer is one
    const d = await connect(tcp(s));
    const again = readUntilClose(d);
    d.end(Handler === Trapped ? 'z;' : '1\n');
    expect(await again).toBe(Handler === Trapped ? 'ok z;' : '{"ok":1}\n');
  });
});

describe('@OnMessage: a user framer\'s message longer than maxLength that arrives whole in one chunk', () => {
  @TcpServer(0) @Framing(NulFramer, { maxLength: 100 }) @Concurrent()
  class Nul {
    @OnMessage() on(frame: string) { nulCalls.push(frame.length); return `len=${frame.length}`; }
    @HandleError() err(e: unknown) { nulSeen.push(e); }
  }
  const nulCalls: number[] = [];
  const nulSeen: unknown[] = [];

  test('is a FrameTooLongError after the replies to the messages before it, and never reaches @OnMessage (it was handed over)', async () => {
    nulCalls.length = 0;
    nulSeen.length = 0;
    const s = serve(await bootstrap(Nul, { logger: memoryLogger() }));
    const c = await connect(tcp(s));
    const got = readUntilClose(c);
    // 'é' is two bytes: 60 of them are 120 bytes in 60 characters, over the bound of 100 bytes.
    c.write(Buffer.concat([Buffer.from('a'.repeat(100) + '\0'), Buffer.from('é'.repeat(60) + '\0'), Buffer.from('b\0')]));
    expect(await got).toBe('len=100\0');
    expect(nulCalls).toEqual([100]);
    expect(nulSeen.map((e) => (e as Error).name)).toEqual(['FrameTooLongError']);
    expect((nulSeen[0] as Error).message).toMatch(/120 bytes arrived, longer than maxLength 100/);
  });
});

describe('@OnMessage: drained() in @Finish, to a client that does not read', () => {
  const said: unknown[] = [];
  @TcpServer(0) @Framing('lines', { maxLength: 16 * 1024 * 1024 })
  class Farewell {
    @OnMessage() on(line: string) { return line === 'big' ? 'z'.repeat(8 * 1024 * 1024) : line; }
    @Finish() async finish(req: MessageRequest) {
      said.push(await req.drained());
    }
  }

  test('resolves false after requestTimeout with no drain, as the loop\'s own output stall ends (it waited for ever, and a serial server with it)', async () => {
    said.length = 0;
    const s = serve(await bootstrap(Farewell, { requestTimeout: 0.5, logger: { error: () => undefined, warn: () => undefined } }));
    const c = await connect(tcp(s));
    c.on('error', () => undefined);
    c.pause(); // reads nothing
    try {
      c.end('big\n');
      await within(10000, 'drained() in @Finish to settle', (async () => {
        while (said.length === 0) await new Promise((r) => setTimeout(r, 20));
      })());
      expect(said).toEqual([false]);
    } finally {
      c.destroy();
    }
  });
});

describe('@OnMessage: many drained() at once in @Finish, to a client that reads late', () => {
  const said: boolean[][] = [];
  const drainListeners: number[] = [];
  @TcpServer(0) @Framing('lines', { maxLength: 16 * 1024 * 1024 })
  class Farewells {
    @OnMessage() on(line: string) { return line === 'big' ? 'z'.repeat(8 * 1024 * 1024) : line; }
    @Finish() async finish(req: MessageRequest) {
      const once = jest.spyOn(net.Socket.prototype, 'once');
      const waits = Array.from({ length: 20 }, () => req.drained());
      const sockets = new Set(once.mock.contexts as net.Socket[]);
      once.mockRestore();
      for (const socket of sockets) drainListeners.push(socket.listenerCount('drain'));
      said.push(await Promise.all(waits));
    }
  }

  test('share one wait: all say true once the client reads, one listener on the socket (one each warned of a leak past ten)', async () => {
    said.length = 0;
    drainListeners.length = 0;
    const s = serve(await bootstrap(Farewells, { logger: { error: () => undefined, warn: () => undefined } }));
    const c = await connect(tcp(s));
    c.on('error', () => undefined);
    c.pause(); // reads nothing, until @Finish waits
    try {
      const closed = readUntilClose(c, 20000);
      c.end('big\n');
      await within(10000, '@Finish to wait in drained()', (async () => {
        while (drainListeners.length === 0) await new Promise((r) => setTimeout(r, 20));
      })());
      c.resume();
      await closed;
      await within(10000, 'drained() in @Finish to settle', (async () => {
        while (said.length === 0) await new Promise((r) => setTimeout(r, 20));
      })());
      expect(said).toEqual([Array(20).fill(true)]);
      expect(drainListeners).toEqual([1]);
    } finally {
      c.destroy();
    }
  });
});
