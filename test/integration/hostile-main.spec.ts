import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Concurrent, DatagramRequest, Framing, FrameTooLongError, Handle, HandleError, OnMessage, Server, TcpServer, UdpServer } from '../../src';
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { connect, datagramExchange, readToEnd, streamExchange, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

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

describe('datagrams, hostile', () => {
  test('a UDP datagram whose lines end in a too-long line still gets the replies to the lines before it, and the error reaches @HandleError', async () => {
    const server = serve(await bootstrap(UdpLines8));
    const { data } = await datagramExchange(tcp(server), 'a\nb\n123456789\nc\n');
    expect(data.toString()).toBe('<a>\n<b>\n');
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([FrameTooLongError.name]);
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
