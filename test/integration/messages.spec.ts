import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Concurrent, Framing, FrameTooLongError, HandleError, MessageRequest, OnMessage, Server, TcpServer, UnixStreamServer } from '../../src';
import { FramerName, handlers, LimitedThreaded, ModeName, slowBurners, UdpLinesForked, UdpRawThreaded } from '../fixtures/message-handlers';
import { connect, datagramExchange, readToEnd, removeTempDir, tempDir, within } from '../helpers/clients';
import { eventually } from '../helpers/eventually';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([])); // no worker left behind

function tcp(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}

/** Three messages of each framer, and what the echo handlers answer, as bytes. */
const wire: Record<FramerName, { send: Buffer; expect: Buffer }> = {
  lines: { send: Buffer.from('one\r\ntwo\nthré\n'), expect: Buffer.from('echo one\necho two\necho thré\n') },
  'length-prefixed': {
    send: Buffer.concat(['one', 'two', 'thré'].map((s) => prefixed(Buffer.from(s)))),
    expect: Buffer.concat(['echo one', 'echo two', 'echo thré'].map((s) => prefixed(Buffer.from(s)))),
  },
  netstring: { send: Buffer.from('3:one,3:two,5:thré,'), expect: Buffer.from('8:echo one,8:echo two,10:echo thré,') },
  'json-lines': { send: Buffer.from('1\n"two"\n{"three":3}\n'), expect: Buffer.from('{"echo":1}\n{"echo":"two"}\n{"echo":{"three":3}}\n') },
};

function prefixed(body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** Sends `bytes` in awkward pieces (1, 2, 3… bytes), half-closes, and reads to EOF; bounded. */
async function exchangeInPieces(target: { host: string; port: number }, bytes: Buffer): Promise<Buffer> {
  const socket = await within(5000, 'connect', connect(target));
  try {
    socket.setNoDelay(true);
    const reply = readToEnd(socket);
    for (let i = 0, n = 1; i < bytes.length; i += n, n++) socket.write(bytes.subarray(i, i + n));
    socket.end();
    return await within(15000, 'the replies', reply);
  } finally {
    socket.destroy();
  }
}

const modes: ModeName[] = ['serial', 'concurrent', 'threading', 'forking'];
const framers: FramerName[] = ['lines', 'length-prefixed', 'netstring', 'json-lines'];

describe.each(modes)('every framer over real TCP sockets, %s', (mode) => {
  test.each(framers)('%s: messages cut anywhere are answered in order, and the connection ends after the last reply', async (framer) => {
    const server = serve(await bootstrap(handlers[`${framer}-${mode}`] as never));
    const reply = await exchangeInPieces(tcp(server), wire[framer].send);
    expect(reply).toEqual(wire[framer].expect);
  });
});

describe.each(modes)('limits.maxLineLength caps the line framers that set no maxLength of their own, %s', (mode) => {
  const limited = { transport: { limits: { maxLineLength: 10 } } };
  const long = 'x'.repeat(23);
  test.each([
    ['lines', 'short\n', 'echo short\n', `${long}\n`],
    ['json-lines', '"short"\n', '{"echo":"short"}\n', `"${long}"\n`],
  ])('%s: a line past it ends the connection with a FrameTooLongError after the replies owed; the next client is served', async (framer, short, echoed, tooLong) => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(handlers[`${framer}-${mode}`] as never, { ...limited, logger }));
    const reply = await exchangeInPieces(tcp(server), Buffer.from(`${short}${tooLong}${short}`));
    expect(reply.toString()).toBe(echoed);
    await eventually('the warn line', () => logger.lines.warn.length > 0, 10000);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/^FrameTooLongError from .*longer than limits\.maxLineLength 10; .*Fix: raise limits\.maxLineLength/)]);
    expect((await exchangeInPieces(tcp(server), Buffer.from(short))).toString()).toBe(echoed);
  });

  test('length-prefixed frames are no lines: a 23-byte frame is echoed under maxLineLength 10', async () => {
    const server = serve(await bootstrap(handlers[`length-prefixed-${mode}`] as never, limited));
    const reply = await exchangeInPieces(tcp(server), prefixed(Buffer.from(long)));
    expect(reply).toEqual(prefixed(Buffer.from(`echo ${long}`)));
  });
});

test("@Framing's own maxLength wins over limits.maxLineLength (in a worker thread)", async () => {
  const server = serve(await bootstrap(LimitedThreaded, { transport: { limits: { maxLineLength: 10 } } }));
  const line = `${'y'.repeat(100)}\n`;
  expect((await exchangeInPieces(tcp(server), Buffer.from(line))).toString()).toBe(line);
});

describe('where the framer runs', () => {
  test.each([['threading', 'a worker thread'], ['forking', 'a child process']])('with @%s the messages are handled in %s', async (mode) => {
    const server = serve(await bootstrap(handlers[`lines-${mode}`] as never));
    const [pid, thread] = (await exchangeInPieces(tcp(server), Buffer.from('where\n'))).toString().trim().split('/').map(Number);
    if (mode === 'threading') expect([pid, thread > 0]).toEqual([process.pid, true]);
    else expect(pid).not.toBe(process.pid);
  });

  test('a message longer than maxLength in a worker thread closes that connection and the next one is served', async () => {
    const server = serve(await bootstrap(LimitedThreaded));
    const long = await exchangeInPieces(tcp(server), Buffer.concat([Buffer.from('ok\n'), Buffer.alloc(4096, 0x61), Buffer.from('\nlost\n')]));
    expect(long.toString()).toBe('ok\n');
    expect((await exchangeInPieces(tcp(server), Buffer.from('next\n'))).toString()).toBe('next\n');
  });
});

describe('datagrams', () => {
  test('without @Framing each UDP datagram is one raw message, answered from a worker thread to the sender', async () => {
    const server = serve(await bootstrap(UdpRawThreaded));
    const { data } = await datagramExchange(tcp(server), 'ping', undefined, 10000);
    expect(data.toString()).toMatch(new RegExp(`^${process.pid}/[1-9]\\d* ping$`));
  });

  test('with @Framing lines each UDP datagram is decoded in a child process and the replies come back as one datagram', async () => {
    const server = serve(await bootstrap(UdpLinesForked));
    const { data } = await datagramExchange(tcp(server), 'a\nb', undefined, 10000);
    const [first, second] = data.toString().split('\n');
    expect(first).toMatch(/^\d+\/0 a$/);
    expect(second).toMatch(/^\d+\/0 b$/);
    expect(Number(first.split('/')[0])).not.toBe(process.pid);
  });
});

const errors: unknown[] = [];

@TcpServer(0)
@Concurrent()
@Framing('lines', { concurrency: 8 })
export class Pipelined {
  static most = 0;
  static running = 0;
  @OnMessage() async on(line: string) {
    Pipelined.running++;
    Pipelined.most = Math.max(Pipelined.most, Pipelined.running);
    await new Promise((resolve) => setTimeout(resolve, (Number(line) * 7) % 5)); // settle out of order
    Pipelined.running--;
    return line;
  }
}

@TcpServer(0)
@Framing('lines')
export class SerialLines {
  @OnMessage() on(line: string, req: MessageRequest) {
    if (line === 'bye') req.close();
    return line;
  }
}

@TcpServer(0)
@Concurrent()
@Framing('lines', { maxLength: 64 * 1024 })
export class Amplifier {
  static calls = 0;
  @OnMessage() on() {
    Amplifier.calls++;
    return Buffer.alloc(64 * 1024, 0x78);
  }
}

@TcpServer(0)
@Concurrent()
@Framing('lines', { maxLength: 1000 })
export class Limited {
  @OnMessage() on(line: string) {
    return line;
  }
  @HandleError() error(err: unknown) {
    errors.push(err);
  }
}

/** Echoes each frame, and changes the frame it returned for the message before to 'Z's (a handler that reuses what it returned). */
@TcpServer(0)
@Concurrent()
@Framing('length-prefixed')
class FrameReuser {
  private previous: Buffer | undefined;

  @OnMessage() on(frame: Buffer) {
    this.previous?.fill(0x5a);
    this.previous = frame;
    return frame;
  }
}

/** Writes `pieces` with a pause after each but the last (so each arrives as its own chunk), half-closes, reads to EOF. */
async function exchangeInChunks(target: { host: string; port: number }, pieces: Buffer[]): Promise<Buffer> {
  const socket = await within(5000, 'connect', connect(target));
  try {
    socket.setNoDelay(true);
    const reply = readToEnd(socket);
    for (const [i, piece] of pieces.entries()) {
      socket.write(piece);
      if (i < pieces.length - 1) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    socket.end();
    return await within(15000, 'the replies', reply);
  } finally {
    socket.destroy();
  }
}

describe('over real sockets', () => {
  test('a returned frame is sent as it was when returned: a handler that changes it afterwards does not change its reply', async () => {
    const server = serve(await bootstrap(FrameReuser));
    // Two frames in one chunk: the first one's reply waits in the batch while the second call runs.
    const two = Buffer.concat([prefixed(Buffer.from('AAAA')), prefixed(Buffer.from('BBBB'))]);
    expect((await exchangeInChunks(tcp(server), [two])).toString('hex')).toBe(two.toString('hex'));
    // A frame put together from two chunks, followed in the second by another frame.
    const big = prefixed(Buffer.alloc(5000, 0x61));
    const after = prefixed(Buffer.from('CCCC'));
    const reply = await exchangeInChunks(tcp(server), [big.subarray(0, 1000), Buffer.concat([big.subarray(1000), after])]);
    expect(reply.equals(Buffer.concat([big, after]))).toBe(true);
    // One frame a chunk (ping-pong), the echo sent as received: each reply went out before the next call.
    const pingPong = [prefixed(Buffer.from('DDDD')), prefixed(Buffer.from('EEEE')), prefixed(Buffer.alloc(3000, 0x62))];
    expect((await exchangeInChunks(tcp(server), pingPong)).equals(Buffer.concat(pingPong))).toBe(true);
  });

  test('pipelined messages with concurrency 8 overlap and their replies keep message order', async () => {
    const server = serve(await bootstrap(Pipelined));
    const lines = Array.from({ length: 200 }, (_, i) => String(i));
    const reply = await exchangeInPieces(tcp(server), Buffer.from(lines.join('\n') + '\n'));
    expect(reply.toString()).toBe(lines.join('\n') + '\n');
    expect(Pipelined.most).toBeGreaterThan(1);
    expect(Pipelined.most).toBeLessThanOrEqual(8);
  });

  test('serial: one connection at a time, many messages in it; the next connection is served once it ends', async () => {
    const server = serve(await bootstrap(SerialLines));
    const first = await connect(tcp(server));
    const second = await connect(tcp(server));
    try {
      const firstReplies = readToEnd(first);
      const secondReplies = readToEnd(second);
      second.write('second\n');
      first.write('a\nb\n');
      first.write('bye\nignored\n');
      expect((await within(5000, 'first', firstReplies)).toString()).toBe('a\nb\nbye\n');
      second.end();
      expect((await within(5000, 'second', secondReplies)).toString()).toBe('second\n');
    } finally {
      first.destroy();
      second.destroy();
    }
  });

  test('a client that never reads cannot make the server produce replies without bound', async () => {
    Amplifier.calls = 0;
    const server = serve(await bootstrap(Amplifier));
    const socket = await connect(tcp(server));
    try {
      socket.pause(); // never reads
      const chunk = Buffer.from('go\n'.repeat(20000)); // 60 KB: 20,000 requests, 1.3 GB of replies
      let written = 0;
      // Write until the server stops reading: the client's own writes then stop draining.
      while (written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          const drained = await Promise.race([new Promise((r) => socket.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 1500))]);
          if (!drained) break;
        }
      }
      // Kernel buffers on both sides hold a few MB; everything past that waits in the client.
      expect(Amplifier.calls * 64 * 1024).toBeLessThan(64 * 1024 * 1024);
      expect(Amplifier.calls).toBeLessThan(written / 3);
    } finally {
      socket.destroy();
    }
  });

  test('100 MB with no newline: FrameTooLongError through @HandleError, and the connection is closed early', async () => {
    errors.length = 0;
    const server = serve(await bootstrap(Limited));
    const socket = await connect(tcp(server));
    try {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      socket.resume();
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      let open = true;
      void closed.then(() => (open = false));
      while (open && sent < 100 * 1024 * 1024) {
        sent += chunk.length;
        if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
      }
      await within(10000, 'the server to close the connection', closed);
      expect(sent).toBeLessThan(100 * 1024 * 1024);
      expect(errors).toEqual([expect.any(FrameTooLongError)]);
    } finally {
      socket.destroy();
    }
  });
});

describe.each(Object.entries(slowBurners))('a reply made while the next message waits, %s', (mode, handler) => {
  test('goes before the next handler call runs, not with its reply: a synchronous one held it as long', async () => {
    const s = serve(await bootstrap(handler as new () => object));
    const socket = await within(5000, 'connect', connect(tcp(s)));
    try {
      const arrivals: Array<{ at: number; text: string }> = [];
      socket.on('data', (chunk: Buffer) => arrivals.push({ at: Date.now(), text: chunk.toString() }));
      const ended = readToEnd(socket);
      socket.write('slow 100\nburn 1500\n'); // one packet: the second waits behind the first
      await within(15000, 'both replies', (async () => { while (arrivals.map((a) => a.text).join('') !== 'slow done\nburned\n') await new Promise((r) => setTimeout(r, 20)); })());
      // Both came in one write 1.6 s after the packet, the first reply held by the second handler's 1.5 s of CPU.
      expect(arrivals.length).toBe(2);
      expect(arrivals[1].at - arrivals[0].at).toBeGreaterThan(700);
      socket.end();
      await within(10000, 'the end', ended);
    } finally {
      socket.destroy();
    }
  });

  if (mode === 'forking')
    test('reaches the client though the next handler call ends the worker', async () => {
      const s = serve(await bootstrap(handler as new () => object, { logger: { error: () => undefined, warn: () => undefined } }));
      const socket = await within(5000, 'connect', connect(tcp(s)));
      try {
        const reply = within(15000, 'the connection to close', readToEnd(socket));
        socket.write('slow 100\nexit\n');
        // Lost with the worker: the reply was held until the next call (exit) returned, which it never did.
        expect((await reply).toString()).toBe('slow done\n');
      } finally {
        socket.destroy();
      }
    });
});

describe('over a Unix stream socket', () => {
  let dir: string;
  beforeAll(() => (dir = tempDir()));
  afterAll(() => removeTempDir(dir));

  test('lines are answered in order', async () => {
    const path = `${dir}/lines.sock`;
    @UnixStreamServer({ path })
    @Framing('lines')
    class UnixLinesAt {
      @OnMessage() on(line: string) {
        return line.length;
      }
    }
    serve(await bootstrap(UnixLinesAt));
    const socket = net.connect({ path });
    const reply = readToEnd(socket);
    socket.write('a\nbb\nccc');
    socket.end();
    expect((await within(5000, 'unix replies', reply)).toString()).toBe('1\n2\n3\n');
  });
});

@TcpServer(0)
@Concurrent()
@Framing('lines')
export class Slow {
  @OnMessage() async on(line: string) {
    if (line === 'slow') await new Promise((resolve) => setTimeout(resolve, 200));
    return `done ${line}`;
  }
}

describe('graceful shutdown', () => {
  test('an idle message connection ends at once; one with a message in flight gets its reply first', async () => {
    const server = await bootstrap(Slow);
    const loop = server.serveForever(0.05);
    try {
      const idle = await connect(tcp(server));
      const busy = await connect(tcp(server));
      const replied = new Promise((resolve) => idle.once('data', resolve)); // 'done quick' has come back
      const idleEnd = readToEnd(idle);
      const busyEnd = readToEnd(busy);
      idle.write('quick\n');
      busy.write('slow\n');
      await within(5000, 'the first reply', replied);
      await within(10000, 'shutdown', server.shutdown());
      expect((await within(5000, 'idle', idleEnd)).toString()).toBe('done quick\n');
      expect((await within(5000, 'busy', busyEnd)).toString()).toBe('done slow\n');
      idle.destroy();
      busy.destroy();
    } finally {
      await server.close();
      await within(5000, 'loop', loop);
    }
  });
});

@TcpServer({ port: 0, proxyProtocol: true })
@Concurrent()
@Framing('lines')
export class BehindProxy {
  @OnMessage() on(_line: string, req: MessageRequest) {
    return `${req.clientAddress.host} via PROXY v${req.proxy?.version} from ${req.proxy?.source.host}`;
  }
}

describe('behind a PROXY protocol load balancer', () => {
  test('a message request has the original client and req.proxy from the header', async () => {
    const server = serve(await bootstrap(BehindProxy));
    const reply = await exchangeInPieces(tcp(server), Buffer.from('PROXY TCP4 203.0.113.9 127.0.0.1 50000 80\r\nwho\n'));
    expect(reply.toString()).toBe('203.0.113.9 via PROXY v1 from 203.0.113.9\n');
  });
});

@TcpServer({ port: 0, proxyProtocol: { required: false }, limits: { lineTimeout: 1.5 } })
@Concurrent()
@Framing('lines')
export class MaybeBehindProxy {
  static errors: unknown[] = [];
  @OnMessage() on(line: string) {
    return `<${line}>`;
  }
  @HandleError() failed(err: unknown) {
    MaybeBehindProxy.errors.push(err);
  }
}

describe('an optional PROXY header that never comes', () => {
  test('a message that starts like a signature and stalls is cut lineTimeout after its first byte, not twice that', async () => {
    const server = serve(await bootstrap(MaybeBehindProxy));
    const socket = await within(5000, 'connect', connect(tcp(server)));
    try {
      const t0 = Date.now();
      const ended = readToEnd(socket).catch(() => Buffer.alloc(0));
      socket.write('PROX'); // the preamble waits lineTimeout (1.5 s) for the rest of a signature, then hands the bytes over
      await within(8000, 'the stalled message to be cut', ended);
      // Before: the framer's clock started when it saw the bytes: 3 s and more in all.
      expect(Date.now() - t0).toBeLessThan(2700);
      await within(5000, 'the error to be reported', (async () => { while (MaybeBehindProxy.errors.length === 0) await new Promise((r) => setTimeout(r, 10)); })());
      expect(String((MaybeBehindProxy.errors[0] as Error).message)).toMatch(/more than 1.5 s from its first byte \(limits.lineTimeout\)/);
    } finally {
      socket.destroy();
    }
  });
});
