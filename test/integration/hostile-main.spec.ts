import 'reflect-metadata';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import {
  bootstrap, Concurrent, DatagramRequest, Framing, FrameTooLongError, FramingError, Handle, HandleError, LineTooLongError, Verify, MessageRequest, OnMessage, Server, Setup,
  RequestTimeoutError, StreamRequest, TcpServer, UdpServer, UnixDatagramServer,
} from '../../src';
import { DatagramRequestHandler, StreamRequestHandler, TCPServer, UDPServer } from '../../src/classic';
import * as path from 'node:path';
import { connect, datagramExchange, readToEnd, removeTempDir, streamExchange, tempDir, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';
import { heldBack, memoryLogger } from '../helpers/memory-logger';
import { until } from '../fakes/fake-server';
import { ConcurrentWritesLate, SerialWritesLate, ThreadNeverReturns, ThreadWritesLate } from '../fixtures/late-datagram-writes';

const serve = servingInTests<Server>();
const tcp = (s: Server) => s.serverAddress as { host: string; port: number };

async function exchange(server: Server, payload: Buffer | string, halfClose = true): Promise<Buffer> {
  const socket = await within(5000, 'connect', connect(tcp(server)));
  try {
    const reply = readToEnd(socket);
    socket.write(payload);
    if (halfClose) socket.end();
    return await within(10000, 'replies', reply);
  } finally {
    socket.destroy();
  }
}

const errors: unknown[] = [];
beforeEach(() => (errors.length = 0));

@TcpServer(0) @Concurrent() @Framing('lines', { maxLength: 16 })
class Lines16 {
  @OnMessage() on(line: string) { return `<${line}>`; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@TcpServer(0) @Concurrent() @Framing('lines', { maxLength: 16 })
class AsyncLines16 {
  @OnMessage() async on(line: string) { await new Promise((r) => setTimeout(r, 5)); return `<${line}>`; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@TcpServer(0) @Concurrent() @Framing('lines', { concurrency: 2 })
class SlowThenThrows {
  @OnMessage() async on(line: string) {
    if (line === 'throw') throw new Error('handler failed on purpose');
    await new Promise((r) => setTimeout(r, 30));
    return `<${line}>`;
  }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@TcpServer(0) @Concurrent() @Framing('netstring')
class AsyncNetstrings {
  @OnMessage() async on(frame: Buffer) { await new Promise((r) => setTimeout(r, 5)); return Buffer.concat([Buffer.from('<'), frame, Buffer.from('>')]); }
  @HandleError() err(e: unknown) { errors.push(e); }
}

describe('lines framer, hostile', () => {
  test('a line of invalid UTF-8 exactly maxLength bytes long is a message whether it comes alone or among others in one chunk', async () => {
    const server = serve(await bootstrap(Lines16));
    const bad = Buffer.alloc(16, 0xff);
    const one = await exchange(server, Buffer.concat([bad, Buffer.from('\n')]));
    const many = await exchange(server, Buffer.concat([Buffer.from('a\n'), bad, Buffer.from('\nb\n')]));
    expect(many.toString()).toBe(`<a>\n${one.toString()}<b>\n`);
    expect(errors).toEqual([]);
  });

  test('with an async @OnMessage the lines before a too-long line in the same chunk are answered before the connection closes', async () => {
    const server = serve(await bootstrap(AsyncLines16));
    const reply = await exchange(server, `a\nb\n${'x'.repeat(40)}\nc\n`, false);
    expect(reply.toString()).toBe('<a>\n<b>\n');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([FrameTooLongError.name]);
  });

  test('when a later overlapping @OnMessage call throws, the reply of the earlier call still in flight is written before the connection closes', async () => {
    const server = serve(await bootstrap(SlowThenThrows));
    const reply = await exchange(server, 'slow\nthrow\nafter\n', false);
    expect(reply.toString()).toBe('<slow>\n');
    expect(errors.map((e) => (e as Error).message)).toEqual(['handler failed on purpose']);
  });

  test('a netstring cut short by the client\'s FIN still lets the async reply to the whole netstring before it go out', async () => {
    const server = serve(await bootstrap(AsyncNetstrings));
    const reply = await exchange(server, '3:abc,5:de');
    expect(reply.toString()).toBe('5:<abc>,');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual(['FramingError']);
  });
});
void net;

@TcpServer(0) @Concurrent() @Framing('json-lines')
class JsonEcho {
  @OnMessage() on(value: unknown) { return { got: value }; }
}

describe('routine client behaviour is one warn line, not a traceback', () => {
  test('a json-lines client sending garbage after good lines gets its replies, then one warn line and a clientErrors count, no error log', async () => {
    const logged: Record<'debug' | 'info' | 'warn' | 'error', string[]> = { debug: [], info: [], warn: [], error: [] };
    const logger = {
      debug: (m: string) => logged.debug.push(m), info: (m: string) => logged.info.push(m),
      warn: (m: string) => logged.warn.push(m), error: (m: string) => logged.error.push(m),
    };
    const server = serve(await bootstrap(JsonEcho, { logger }));
    const reply = await exchange(server, '1\n{"a":2}\nnot json\n3\n', false);
    expect(reply.toString()).toBe('{"got":1}\n{"got":{"a":2}}\n');
    await within(5000, 'the error to be counted', (async () => { while (server.stats().clientErrors + server.stats().errors === 0) await new Promise((r) => setTimeout(r, 10)); })());
    expect([server.stats().clientErrors, server.stats().errors]).toEqual([1, 0]);
    expect(logged.error).toEqual([]);
    expect(logged.warn).toHaveLength(1);
    expect(logged.warn[0]).toContain('FramingError');
  });
});

@UdpServer(0)
class UdpNeverReturns {
  @Handle() async h() { await new Promise(() => undefined); }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Framing('length-prefixed', { lengthBytes: 2 })
class UdpFrames {
  @OnMessage() on(frame: Buffer) { return Buffer.concat([Buffer.from('<'), frame, Buffer.from('>')]); }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Framing('netstring')
class UdpNetstrings {
  @OnMessage() on(frame: Buffer) { return Buffer.concat([Buffer.from('<'), frame, Buffer.from('>')]); }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Framing('lines', { maxLength: 8 })
class UdpLines8 {
  @OnMessage() on(line: string) {
    if (line === 'boom') throw new Error('boom');
    return `<${line}>`;
  }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Concurrent()
class UdpWritesThenThrows {
  @Handle() async handle(req: DatagramRequest) {
    await req.wfile.write('partial ');
    throw new Error('after writing');
  }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Concurrent() @Framing('lines', { maxLength: 8 })
class QuietUdpLines8 {
  @OnMessage() on(line: string) { return `<${line}>`; }
}

/** A serial UDP handler held on its first datagram until the test lets it go: the rest queue meanwhile. */
@UdpServer({ host: '127.0.0.1', port: 0 })
class HeldUdp {
  static release: (() => void) | undefined;
  static held = false;
  @Handle() async handle(req: DatagramRequest) {
    if (!HeldUdp.held) {
      HeldUdp.held = true;
      await new Promise<void>((resolve) => (HeldUdp.release = resolve));
    }
    await req.wfile.write('ok');
  }
}

describe('datagrams, hostile', () => {
  test('serial: datagrams past the queue (4096) while the handler is busy are dropped, counted in stats().dropped and said once a second', async () => {
    const logger = memoryLogger();
    HeldUdp.held = false;
    const server = serve(await bootstrap(HeldUdp, { logger }));
    const client = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const { host, port } = tcp(server);
      client.send('first', port, host);
      await until(() => HeldUdp.release !== undefined, 5000);
      // 5,000 more in bursts the kernel buffer holds: the server reads them all, keeps 4096, drops the rest
      for (let i = 0; i < 50; i++) {
        await Promise.all(Array.from({ length: 100 }, () => new Promise((r) => client.send('x', port, host, r))));
        await new Promise((r) => setTimeout(r, 5));
      }
      await until(() => server.stats().dropped > 0, 5000);
      await new Promise((r) => setTimeout(r, 200));
      const { dropped } = server.stats();
      expect(dropped).toBeGreaterThan(0);
      expect(dropped).toBeLessThanOrEqual(5000 - 4096);
      const lines = logger.lines.warn.filter((l) => / dropped /.test(l));
      expect(lines[0]).toBe(
        'HeldUdp: a datagram was dropped unanswered: 4096 datagrams were already waiting or being served (maxQueuedDatagrams), so the handler ' +
          'is slower than its clients; stats().dropped counts every one. Fix: serve datagrams concurrently (@Concurrent, @Threading, @Forking) or faster.',
      );
      expect(lines.length).toBeLessThanOrEqual(3);
    } finally {
      HeldUdp.release?.();
      HeldUdp.release = undefined;
      client.close();
    }
    // the held ones are still served
    await until(() => server.stats().active === 0 && server.stats().accepted >= 4097, 20000);
    expect(server.stats().errors).toBe(0);
  }, 40000);

  test('@Threading: datagrams past the pool\'s bound (4096 in its workers) are dropped, counted in stats().dropped and said at warn', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(ThreadNeverReturns, { logger, shutdownTimeout: 1 }));
    const client = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const { port } = tcp(server);
      // Each one stays in its worker (the handler never returns): past 4096 the loop drops what it takes.
      // Sent in paced batches until one is dropped: on a loaded machine the kernel's receive buffer drops some
      // unseen (Node never reads those), so a fixed count may never reach the bound.
      let sent = 0;
      const deadline = Date.now() + 20000;
      while (server.stats().dropped === 0 && sent < 30000 && Date.now() < deadline) {
        await Promise.all(Array.from({ length: 100 }, () => new Promise((r) => client.send('x', port, '127.0.0.1', r))));
        sent += 100;
        await new Promise((r) => setTimeout(r, 5));
      }
      await until(() => server.stats().dropped > 0, 10000);
      expect(server.stats().dropped).toBeLessThanOrEqual(sent - 4096);
    } finally {
      client.close();
    }
    expect(logger.lines.warn.filter((l) => / dropped /.test(l))[0]).toMatch(
      /^ThreadNeverReturns: a datagram was dropped unanswered: 4096 datagrams were already waiting or being served \(maxQueuedDatagrams\)/,
    );
  }, 40000);

  test('a flood of datagrams that each fail routinely logs 10 lines a second and one line for the rest; stats() counts every one', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(QuietUdpLines8, { logger }));
    const client = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const { host, port } = tcp(server);
      for (let i = 0; i < 40; i++) client.send(`${i}-far-too-long\n`, port, host);
      await until(() => server.stats().clientErrors === 40, 10000);
    } finally {
      client.close();
    }
    // Each second: at most 10 lines, then one line giving the number of the rest (one second, unless the machine is slow).
    const single = () => logger.lines.warn.filter((l) => /^FrameTooLongError from /.test(l));
    const held = () => heldBack(logger.lines.warn).lines;
    const heldCount = () => heldBack(logger.lines.warn).count;
    await until(() => single().length + heldCount() >= 40, 5000);
    expect(single().length + heldCount()).toBe(40);
    expect(single().length).toBeLessThanOrEqual(10 * held().length);
    expect(held()[0]).toMatch(/^QuietUdpLines8: (\d+) more routine client errors? in the last second (was|were) not logged .*stats\(\)\.clientErrors/);
  });

  test('a UDP datagram whose lines end in a too-long line still gets the replies to the lines before it, and the error reaches @HandleError', async () => {
    const server = serve(await bootstrap(UdpLines8));
    const { data } = await datagramExchange(tcp(server), 'a\nb\n123456789\nc\n');
    expect(data.toString()).toBe('<a>\n<b>\n');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([FrameTooLongError.name]);
    // said of a datagram: no connection is closed (message and logged stack alike)
    expect((errors[0] as Error).message).toMatch(/longer than maxLength 8; the rest of the datagram is dropped\. Fix:/);
    expect((errors[0] as Error).stack).toContain('the rest of the datagram is dropped');
  });

  test('a UDP datagram whose last frame is cut short still gets the replies to the whole frames before it, and the error reaches @HandleError (hostile run: none were handled)', async () => {
    const frames = serve(await bootstrap(UdpFrames));
    const cut = Buffer.concat([Buffer.from([0, 3]), Buffer.from('abc'), Buffer.from([0, 1]), Buffer.from('d'), Buffer.from([0, 50]), Buffer.from('short')]);
    expect((await datagramExchange(tcp(frames), cut)).data).toEqual(Buffer.from('\x00\x05<abc>\x00\x03<d>', 'latin1'));
    const netstrings = serve(await bootstrap(UdpNetstrings));
    expect((await datagramExchange(tcp(netstrings), '3:abc,1:d,10:short')).data.toString()).toBe('5:<abc>,3:<d>,');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([FramingError.name, FramingError.name]);
    for (const error of errors) expect((error as Error).message).toMatch(/^@Framing\('[a-z-]+'\): the datagram ended inside a message/);
    expect(frames.stats().messages + netstrings.stats().messages).toBe(4);
  });

  test.each([
    ['serial', UdpNeverReturns, errors, /^the datagram's handler was still running 0\.3 s after shutdown began \(shutdownTimeout\), so it was abandoned and its reply is not sent\. Fix:/],
    ['@Threading', ThreadNeverReturns, ThreadNeverReturns.errors, /^the datagram's handler was still running in its threading worker when shutdownTimeout passed .* the reply is not sent\. Fix:/],
  ])('%s: a datagram handler abandoned at shutdownTimeout is reported as a datagram\'s whose reply is lost, not with a connection and EOF that datagrams lack', async (_name, handler, seen, message) => {
    seen.length = 0;
    const server = await bootstrap(handler as never, { shutdownTimeout: 0.3 });
    const loop = server.serveForever(0.05);
    const client = dgram.createSocket('udp4');
    try {
      client.send('x', tcp(server).port, '127.0.0.1');
      await until(() => server.stats().active === 1, 5000);
      await within(5000, 'shutdown', server.shutdown());
      await within(5000, 'the loop', loop);
    } finally {
      client.close();
      await server.close();
    }
    expect(seen).toEqual([expect.any(RequestTimeoutError)]);
    expect((seen[0] as Error).message).toMatch(message);
    expect((seen[0] as Error).message).not.toMatch(/connection|EOF/);
  });

  test.each([
    ['serial, close()', false, 'close'],
    ['@Concurrent, close()', true, 'close'],
    ['serial, abandoned at shutdownTimeout', false, 'timeout'],
    ['@Concurrent, abandoned at shutdownTimeout', true, 'timeout'],
  ])('%s: a @Verify that admits the client only after that does not run the handler on the closed connection', async (_name, concurrent, how) => {
    let handled = 0;
    let verdicts = 0;
    class LateVerdict {
      @Verify() async v() { await new Promise((r) => setTimeout(r, 600)); verdicts++; return true; }
      @Handle() async h(req: StreamRequest) { handled++; await req.wfile.write('late\n'); }
      @HandleError() err(e: unknown) { errors.push(e); }
    }
    if (concurrent) Concurrent()(LateVerdict);
    TcpServer(0)(LateVerdict);
    const server = await bootstrap(LateVerdict, { shutdownTimeout: 0.1 });
    const loop = server.serveForever(0.05);
    const socket = await within(5000, 'connect', connect(tcp(server)));
    try {
      socket.on('error', () => undefined);
      socket.write('x\n');
      await until(() => server.stats().active === 1, 5000);
      if (how === 'close') await within(5000, 'close', server.close());
      else await within(5000, 'shutdown', server.shutdown());
      await within(5000, 'the loop', loop);
      await until(() => verdicts === 1, 5000);
      await new Promise((r) => setTimeout(r, 50));
      expect(handled).toBe(0);
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  test.each([
    ['serial TCP', false, false],
    ['@Concurrent TCP', true, false],
    ['@Concurrent TCP, a @Verify that never settles', true, true],
    ['serial TCP, a @Verify that never settles', false, true],
  ])('%s: a request abandoned at shutdownTimeout is reported and no longer counts in stats().active', async (_name, concurrent, verifying) => {
    class NeverReturns {
      @Handle() async h(req: StreamRequest) { await req.rfile.readline(); await new Promise(() => undefined); }
      @HandleError() err(e: unknown) { errors.push(e); }
    }
    class NeverVerifies extends NeverReturns {
      @Verify() v() { return new Promise<boolean>(() => undefined); }
    }
    const handler = verifying ? NeverVerifies : NeverReturns;
    if (concurrent) Concurrent()(handler);
    TcpServer(0)(handler);
    const server = await bootstrap(handler, { shutdownTimeout: 0.3 });
    const loop = server.serveForever(0.05);
    const socket = await within(5000, 'connect', connect(tcp(server)));
    try {
      socket.on('error', () => undefined);
      socket.write('x\n');
      await until(() => server.stats().active === 1, 5000);
      await within(5000, 'shutdown', server.shutdown());
      await within(5000, 'the loop', loop);
      expect(errors).toEqual([expect.any(RequestTimeoutError)]);
      expect((errors[0] as Error).message).toMatch(verifying ? /^@Verify had not settled 0\.3 s after shutdown began/ : /^the request was still running 0\.3 s after shutdown began/);
      expect(server.stats().active).toBe(0);
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  test.each([
    ['serial', SerialWritesLate],
    ['@Concurrent', ConcurrentWritesLate],
    ['@Threading', ThreadWritesLate],
  ])('%s UDP: wfile.write() after the handler returned rejects, saying the bytes would never be sent (it resolved and they were lost)', async (_name, handler) => {
    const server = serve(await bootstrap(handler as never));
    expect((await datagramExchange(tcp(server), 'first')).data.toString()).toBe('now');
    let report = 'pending';
    for (const end = Date.now() + 5000; report === 'pending' && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 20));
      report = (await datagramExchange(tcp(server), 'report')).data.toString();
    }
    expect(report).toMatch(/^ERR_STREAM_WRITE_AFTER_END: wfile\.write\(\) after the datagram's handler returned: .* would never be sent\. Fix: await every write/);
  });

  test('a UDP datagram whose second line makes @OnMessage throw still gets the reply to the first', async () => {
    const server = serve(await bootstrap(UdpLines8));
    const { data } = await datagramExchange(tcp(server), 'a\nboom\nc\n');
    expect(data.toString()).toBe('<a>\n');
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
  });

  test('a decorated datagram handler that wrote, then threw, sends what it wrote, as Python\'s DatagramRequestHandler and the classic layer do', async () => {
    const server = serve(await bootstrap(UdpWritesThenThrows));
    const { data } = await datagramExchange(tcp(server), 'x');
    expect(data.toString()).toBe('partial ');
    expect(errors.map((e) => (e as Error).message)).toEqual(['after writing']);
  });
});

describe('the classic layer, hostile', () => {
  const classic: TCPServer[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(() => process.on('unhandledRejection', onUnhandled));
  afterEach(async () => {
    for (const s of classic.splice(0)) await within(10000, 'close', s.close());
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled.splice(0)).toEqual([]);
  });

  class EchoOrThrow extends StreamRequestHandler {
    async handle() {
      const line = await this.rfile.readline();
      if (line.toString() === 'boom\n') throw new Error('handler failed');
      await this.wfile.write(line);
    }
  }
  /** A subclass whose handleError itself throws, logging into `logged`. */
  function throwingServer(options = {}) {
    const logged: string[] = [];
    class Careless extends TCPServer {
      override handleError(): void {
        throw new Error('handleError failed too');
      }
    }
    const server = new Careless(['127.0.0.1', 0], EchoOrThrow, options);
    server.logger = { debug() {}, info() {}, warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) };
    classic.push(server);
    return { server, logged, target: async () => { await server.ready; return { host: '127.0.0.1', port: server.serverAddress[1] }; } };
  }


  test('classic UDPServer: wfile.write() after handle() returned rejects (the reply was sent), and unawaited it is no unhandled rejection', async () => {
    let late: Promise<number> | undefined;
    class Echo extends DatagramRequestHandler {
      handle() {
        void this.wfile.write('now');
        late = new Promise((r) => setTimeout(r, 20)).then(() => this.wfile.write('late'));
        setTimeout(() => void this.wfile.write('unawaited'), 20);
      }
    }
    const server = new UDPServer(['127.0.0.1', 0], Echo);
    classic.push(server as unknown as TCPServer);
    await server.ready;
    const loop = server.serveForever(0.05);
    expect((await datagramExchange({ host: '127.0.0.1', port: server.serverAddress[1] as number }, 'x')).data.toString()).toBe('now');
    await until(() => late !== undefined, 5000);
    await expect(late).rejects.toMatchObject({ code: 'ERR_STREAM_WRITE_AFTER_END', message: expect.stringContaining('would never be sent') });
    await new Promise((r) => setTimeout(r, 50)); // the unawaited one has failed by now: afterEach finds no unhandled rejection
    await server.shutdown();
    await loop;
  });
  test('a serial server whose handleError throws still closes the failed request, logs both errors, and serves the next client', async () => {
    const { server, logged, target } = throwingServer();
    const t = await target();
    const loop = server.serveForever(0.05);
    let stopped: unknown;
    loop.catch((e) => (stopped = e));
    expect((await streamExchange(t, 'boom\n')).toString()).toBe('');
    expect((await streamExchange(t, 'next\n')).toString()).toBe('next\n');
    expect(stopped).toBeUndefined();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('handler failed');
    expect(logged[0]).toContain('handleError failed too');
    await within(5000, 'shutdown', server.shutdown());
    await loop;
  });

  test('close() while a handler never returns reports that close() abandoned it, not a shutdownTimeout that never passed', async () => {
    const reported: unknown[] = [];
    let arrived!: () => void;
    const started = new Promise<void>((r) => (arrived = r));
    class Stuck extends StreamRequestHandler {
      async handle() {
        await this.rfile.readline();
        arrived();
        await new Promise(() => undefined);
      }
    }
    class Reporting extends TCPServer {
      override handleError(_r: unknown, _c: unknown, error: unknown): void {
        reported.push(error);
      }
    }
    const server = new Reporting(['127.0.0.1', 0], Stuck);
    classic.push(server);
    await server.ready;
    const loop = server.serveForever(0.05);
    const socket = await connect({ host: '127.0.0.1', port: server.serverAddress[1] });
    try {
      socket.on('error', () => undefined);
      socket.write('hi\n');
      await within(5000, 'the handler to start', started);
      await within(10000, 'close', server.close());
      await within(10000, 'the loop', loop);
    } finally {
      socket.destroy();
    }
    expect(reported).toHaveLength(1);
    expect((reported[0] as Error).message).toContain('Reporting.close() was called while the request was running');
  });

  test.each([['UDP', 'udp'], ['TCP', 'tcp']])('%s, @Concurrent: a request abandoned by close() is reported once, not again when its handler later meets the closed socket', async (_name, kind) => {
    let arrived!: () => void;
    const started = new Promise<void>((r) => (arrived = r));
    let finished!: () => void;
    const handlerDone = new Promise<void>((r) => (finished = r));
    class Late {
      @Handle() async handle(req: DatagramRequest | StreamRequest) {
        arrived();
        await new Promise((r) => setTimeout(r, 300));
        try {
          await req.wfile.write('late\n');
        } finally {
          finished();
        }
      }
      @HandleError() err(e: unknown) { errors.push(e); }
    }
    Concurrent()(Late);
    (kind === 'udp' ? UdpServer(0) : TcpServer(0))(Late);
    const server = await bootstrap(Late);
    const loop = server.serveForever(0.05);
    const target = tcp(server);
    const socket = kind === 'tcp' ? await within(5000, 'connect', connect(target)) : undefined;
    socket?.on('error', () => undefined);
    try {
      if (socket) socket.write('go\n');
      else void datagramExchange(target, 'go', undefined, 2000).catch(() => undefined);
      await within(5000, 'the handler to start', started);
      await within(10000, 'close', server.close());
      await within(10000, 'the loop', loop);
      await within(5000, 'the handler to write after close', handlerDone);
      await new Promise((r) => setImmediate(r));
    } finally {
      socket?.destroy();
      await server.close();
    }
    expect(errors.map((e) => (e as Error).message)).toEqual([
      expect.stringContaining(kind === 'udp' ? 'close() was called while a datagram\'s handler was running' : 'close() was called while the request was running'),
    ]);
    expect(server.stats()).toMatchObject({ errors: 0, clientErrors: 1 });
  });

  test('TCP, @Concurrent: a write its handler makes after close() closed the connection fails saying close() did, not as the client\'s EPIPE', async () => {
    // Before: `wfile.write() on a closed connection` (EPIPE), the client's doing in the report (hostile run).
    let arrived!: () => void;
    const started = new Promise<void>((r) => (arrived = r));
    let closing!: () => void;
    const closeCalled = new Promise<void>((r) => (closing = r));
    class WritesInGrace {
      @Handle() async handle(req: StreamRequest) {
        await req.rfile.readline();
        arrived();
        await closeCalled;
        await new Promise((r) => setTimeout(r, 30)); // within close()'s grace, before it gives requests up
        await req.wfile.write('late\n');
      }
      @HandleError() err(e: unknown) { errors.push(e); }
    }
    Concurrent()(WritesInGrace);
    TcpServer(0)(WritesInGrace);
    const server = await bootstrap(WritesInGrace);
    const loop = server.serveForever(0.05);
    const socket = await within(5000, 'connect', connect(tcp(server)));
    socket.on('error', () => undefined);
    try {
      socket.write('go\n');
      await within(5000, 'the handler to start', started);
      const closed = server.close();
      closing();
      await within(10000, 'close', closed);
      await within(10000, 'the loop', loop);
    } finally {
      socket.destroy();
      await server.close();
    }
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringContaining("WritesInGrace's server.close() was called while the request was running")]);
    expect(server.stats()).toMatchObject({ errors: 0, clientErrors: 1 });
  });

  test.each([['UDP'], ['Unix datagram']])('%s, @Concurrent: a reply its handler sends just after close() closed the socket is a routine error, not a handler error', async (kind) => {
    const dir = tempDir();
    let arrived!: () => void;
    const started = new Promise<void>((r) => (arrived = r));
    class LateReply {
      @Handle() async handle(req: DatagramRequest) {
        arrived();
        await new Promise((r) => setTimeout(r, 30)); // ends inside close()'s grace, before it gives requests up
        await req.wfile.write('late');
      }
    }
    Concurrent()(LateReply);
    (kind === 'UDP' ? UdpServer(0) : UnixDatagramServer(path.join(dir, 'late.sock')))(LateReply);
    const logger = memoryLogger();
    const server = await bootstrap(LateReply, { logger });
    const loop = server.serveForever(0.05);
    let exchange: Promise<unknown> = Promise.resolve();
    try {
      const address = server.serverAddress as { host: string; port: number } | { path: string };
      exchange = datagramExchange(address, 'x', dir, 500).catch(() => undefined); // no reply comes: it gives up
      await within(5000, 'the handler to start', started);
      await within(10000, 'close', server.close());
      await within(10000, 'the loop', loop);
      await until(() => server.stats().clientErrors === 1, 5000);
    } finally {
      await server.close();
      await exchange;
      removeTempDir(dir);
    }
    expect(server.stats().errors).toBe(0);
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/the socket is closed \(close\(\) was called while the request ran\).*ERR_SOCKET_DGRAM_NOT_RUNNING/)]);
  });

  test('close() abandoning more requests than 10 a second logs the held-back summary before it resolves', async () => {
    @TcpServer(0) @Concurrent()
    class Never {
      @Handle() async handle(req: StreamRequest) { await req.rfile.readline(); await new Promise(() => undefined); }
    }
    const logger = memoryLogger();
    const server = await bootstrap(Never, { logger });
    const loop = server.serveForever(0.05);
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 15; i++) {
        const socket = await within(5000, 'connect', connect(tcp(server)));
        socket.on('error', () => undefined);
        socket.write('hang\n');
        sockets.push(socket);
      }
      await until(() => server.stats().active === 15, 5000);
      await within(10000, 'close', server.close());
      await within(10000, 'the loop', loop);
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
    const single = logger.lines.warn.filter((l) => /^RequestTimeoutError from /.test(l)).length;
    const held = heldBack(logger.lines.warn).counts;
    expect(single).toBe(10);
    expect(held).toEqual([5]); // logged by the time close() resolved
    expect(server.stats().clientErrors).toBe(15);
  });

  test('a request abandoned at shutdownTimeout is not abandoned again by a close() that comes while those reports run', async () => {
    const reported: string[] = [];
    @UdpServer(0) @Concurrent()
    class Stuck {
      @Handle() async handle() { await new Promise(() => undefined); }
      @HandleError() async err(e: Error, client: { port: number }) {
        reported.push(`${client.port} ${e.message.slice(0, 30)}`);
        await new Promise((r) => setTimeout(r, 200)); // slow reports: close() comes while they run
      }
    }
    const server = await bootstrap(Stuck, { shutdownTimeout: 0.3 });
    const loop = server.serveForever(0.05);
    const clients = await Promise.all([0, 1, 2].map(async () => {
      const c = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', resolve));
      return c;
    }));
    try {
      const { host, port } = tcp(server);
      for (const c of clients) c.send('x', port, host);
      await until(() => server.stats().active === 3, 5000);
      const shutdown = server.shutdown();
      await until(() => reported.length >= 1, 5000); // shutdownTimeout's reports have begun (side by side: all three at once)
      await within(10000, 'close', server.close());
      await within(10000, 'shutdown', shutdown);
      await within(10000, 'the loop', loop);
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
    expect(reported).toHaveLength(3);
    expect(new Set(reported.map((r) => r.split(' ')[0])).size).toBe(3);
  });

  test('a failed PROXY header reported to a handleError that throws is logged, not an unhandled rejection, and the server goes on', async () => {
    const { server, logged, target } = throwingServer({ proxyProtocol: true });
    const t = await target();
    const loop = server.serveForever(0.05);
    expect((await streamExchange(t, 'not a proxy header\r\n')).toString()).toBe('');
    await within(5000, 'the failure to be logged', (async () => { while (logged.length === 0) await new Promise((r) => setTimeout(r, 10)); })());
    expect(logged[0]).toContain('handleError failed too');
    expect((await streamExchange(t, 'PROXY TCP4 203.0.113.7 127.0.0.1 5000 80\r\nhi\n')).toString()).toBe('hi\n');
    await within(5000, 'shutdown', server.shutdown());
    await loop;
  });
});

@TcpServer({ port: 0, limits: { maxLineLength: 8 } })
class Lines8 {
  @Handle() async handle(req: StreamRequest) {
    for await (const line of req.rfile) await req.wfile.write(line);
  }
  @HandleError() err(e: unknown) { errors.push(e); }
}

describe('the stream API, hostile', () => {
  test('maxLineLength counts a line without its \\n or \\r\\n, as the lines framer and Netty do: a line of exactly that many bytes is read, one more is a LineTooLongError', async () => {
    const server = serve(await bootstrap(Lines8));
    const reply = await exchange(server, 'aaaaaaaa\nbbbbbbbb\r\nccccccccc\nlost\n', false);
    expect(reply.toString()).toBe('aaaaaaaa\nbbbbbbbb\r\n');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([LineTooLongError.name]);
  });

  test('a line of exactly maxLineLength bytes whose \\r and \\n arrive one byte at a time is read whole', async () => {
    const server = serve(await bootstrap(Lines8));
    const socket = await within(5000, 'connect', connect(tcp(server)));
    try {
      socket.setNoDelay(true);
      const reply = readToEnd(socket);
      for (const piece of ['dddddddd', '\r', '\n']) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
      socket.end();
      expect((await within(10000, 'reply', reply)).toString()).toBe('dddddddd\r\n');
    } finally {
      socket.destroy();
    }
    expect(errors).toEqual([]);
  });
});

@TcpServer(0) @Framing('json-lines')
class GreetsInSetup {
  @Setup() greet(req: MessageRequest) { req.send({ hello: 'client' }); }
  @OnMessage() on(value: unknown) { return { got: value }; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@TcpServer(0) @Concurrent() @Framing('lines')
class RefusesInSetup {
  @Setup() refuse(req: MessageRequest) { req.send('busy, try later'); req.close(); }
  @OnMessage() on(line: string) { return `<${line}>`; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@UdpServer(0) @Framing('json-lines')
class UdpGreets {
  @Setup() greet(req: MessageRequest) { req.send({ hello: 'datagram' }); }
  @OnMessage() on(value: unknown) { return { got: value }; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

describe('req.send() and req.close() from @Setup, before the first message', () => {
  test('a greeting sent from @Setup is framed and written first, and the messages after it are answered', async () => {
    const server = serve(await bootstrap(GreetsInSetup));
    expect((await exchange(server, '1\n')).toString()).toBe('{"hello":"client"}\n{"got":1}\n');
    expect(errors).toEqual([]);
  });

  test('req.close() in @Setup ends the connection after its farewell, without waiting for the client to close', async () => {
    const server = serve(await bootstrap(RefusesInSetup));
    const socket = await within(5000, 'connect', connect(tcp(server)));
    try {
      expect((await within(5000, 'the farewell and the close', readToEnd(socket))).toString()).toBe('busy, try later\n');
    } finally {
      socket.destroy();
    }
    expect(errors).toEqual([]);
  });

  test('a greeting sent from @Setup on a json-lines datagram server is framed like the replies', async () => {
    const server = serve(await bootstrap(UdpGreets));
    const { data } = await datagramExchange(tcp(server), '2\n');
    expect(data.toString()).toBe('{"hello":"datagram"}\n{"got":2}\n');
    expect(errors).toEqual([]);
  });
});

@TcpServer(0) @Framing('lines')
class SerialLines {
  @OnMessage() on(line: string) { return `<${line}>`; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

@TcpServer({ port: 0, limits: { lineTimeout: 0.5 } }) @Concurrent() @Framing('lines')
class SlowlorisLines {
  @OnMessage() on(line: string) { return `<${line}>`; }
  @HandleError() err(e: unknown) { errors.push(e); }
}

describe('@OnMessage connections honour the server\'s timeouts, as rfile reads do', () => {
  test('with requestTimeout, a client that connects and sends nothing no longer holds a serial server: it is closed and the next client is served', async () => {
    const server = serve(await bootstrap(SerialLines, { requestTimeout: 0.3 }));
    const idle = await within(5000, 'connect', connect(tcp(server)));
    try {
      const idleClosed = readToEnd(idle);
      expect((await exchange(server, 'hi\n')).toString()).toBe('<hi>\n');
      expect((await within(5000, 'the idle client to be closed', idleClosed)).toString()).toBe('');
    } finally {
      idle.destroy();
    }
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([RequestTimeoutError.name]);
  });

  test('a message trickling in a byte at a time is cut off lineTimeout after its first byte (slowloris), after the replies owed', async () => {
    const server = serve(await bootstrap(SlowlorisLines, { requestTimeout: 5 }));
    const socket = await within(5000, 'connect', connect(tcp(server)));
    const drip = setInterval(() => !socket.destroyed && socket.write('a'), 100);
    try {
      const reply = readToEnd(socket);
      socket.write('first\n');
      expect((await within(5000, 'the connection to be closed', reply)).toString()).toBe('<first>\n');
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringContaining('limits.lineTimeout')]);
  });
});

@TcpServer(0)
class SerialEchoOnce {
  @Handle() async h(req: StreamRequest) {
    const line = await req.rfile.readline();
    if (line.length > 0) await req.wfile.write(`echo ${line}`);
  }
}

describe('serial shutdown with idle connections queued', () => {
  test('each idle connection\'s first-request grace counts from its accept, so a request whose bytes arrived behind six of them is served', async () => {
    // Before: the serial loop gave each idle connection a fresh 1 s grace when it took it, so six idle ones
    // held the request behind them past shutdownTimeout (5 s), and it was closed unanswered.
    const server = await bootstrap(SerialEchoOnce, { shutdownTimeout: 5 });
    const loop = server.serveForever();
    const idle = await Promise.all(Array.from({ length: 6 }, () => within(5000, 'connect', connect(tcp(server)))));
    try {
      await new Promise((r) => setTimeout(r, 1500)); // older than their grace when shutdown comes
      const legit = await within(5000, 'connect', connect(tcp(server)));
      const reply = readToEnd(legit);
      legit.write('legit\n');
      await new Promise((r) => setTimeout(r, 200)); // its bytes have arrived
      const t0 = Date.now();
      await within(10000, 'shutdown', server.shutdown());
      expect((await within(5000, 'the reply', reply)).toString()).toBe('echo legit\n');
      expect(Date.now() - t0).toBeLessThan(4000);
      legit.destroy();
    } finally {
      idle.forEach((s) => s.destroy());
      await server.close();
      await within(10000, 'the serve loop', loop);
    }
  });
});
