import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { AddressInUseError, BaseServer, ConfigurationError, DatagramRequestHandler, LineTooLongError, RequestTimeoutError, StreamRequestHandler, TCPServer, UDPServer, UnixStreamServer } from '../../src/classic';
import { Body, handlerClasses, streamTransports } from '../contracts/transports';
import { preambleFactsServers } from '../fixtures/classic-handlers';
import { connect, readToEnd, removeTempDir, requestAcrossShutdown, streamExchange, tempDir, within } from '../helpers/clients';
import { sleep, until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

describe.each(streamTransports)('stream requests over $name', (t) => {
  let dir: string;
  const errors: unknown[] = [];
  const serve = servingInTests();
  beforeEach(() => { dir = tempDir(); errors.length = 0; });
  afterEach(() => removeTempDir(dir));

  async function start(body: Body, tweak?: (s: BaseServer<any, any>) => void) {
    const server = t.make(body, dir);
    server.handleError = (_r, _a, e) => { errors.push(e); };
    tweak?.(server);
    await server.ready;
    return serve(server);
  }

  test("Python's file methods: rfile.readlines(hint), wfile.writelines() and wfile.flush() (a port calling them ran into 'is not a function')", async () => {
    const s = await start(async (h) => {
      // 'a\n' + 'bb\n' reach the hint of 5 bytes, 'ccc\n' passes it: no more lines (Python's socket file reads on
      // until the lines add up to more than the hint; it stopped at 5, one line short: classic hostile run).
      const first = await h.rfile.readlines(5);
      const rest = await h.rfile.readlines(); // up to EOF, the last line without its '\n'
      await h.wfile.writelines([`${first.length}:${first.join('')}`, Buffer.from('|'), `${rest.length}:${rest.join('')}`]);
      await h.wfile.flush();
      await h.wfile.flush(); // nothing on its way: at once
    });
    const reply = await streamExchange(t.target(s), 'a\nbb\nccc\ndddd', { halfClose: true });
    expect(reply.toString()).toBe('3:a\nbb\nccc\n|1:dddd');
    expect(errors).toEqual([]);
  });

  test.each([
    ['flush()', 'flush'],
    ['writelines()', 'writelines'],
    ['writelines() of items that throw', 'a throwing iterable'],
  ])('an unawaited wfile.%s that fails (the client went, or the items) ends only its request, through handleError', async (_name, how) => {
    // Before: its rejection was unhandled and took the server's process down (hostile re-check).
    const s = await start(async (h) => {
      const line = String(await h.rfile.readline());
      if (line === 'next\n') return void (await h.wfile.write('served\n'));
      if (how === 'a throwing iterable') {
        void h.wfile.writelines((function* () { yield 'a\n'; throw new Error('the items broke'); })());
      } else {
        const big = Buffer.alloc(8 << 20, 97); // more than the socket takes at once: still on its way at the reset
        if (how === 'flush') { void h.wfile.write(big); void h.wfile.flush(); } else void h.wfile.writelines([big, 'tail\n']);
      }
      await sleep(300);
    });
    const socket = await connect(t.target(s));
    socket.on('error', () => undefined);
    socket.pause();
    socket.write('go\n');
    await sleep(100);
    if (t.name.startsWith('TCP')) socket.resetAndDestroy();
    else socket.destroy(); // a Unix stream socket has no reset: closed with the reply unread, the server's write fails
    await until(() => errors.length === 1, 5000);
    expect(String((errors[0] as Error).message)).toMatch(how === 'a throwing iterable' ? /the items broke/ : /ECONNRESET|EPIPE|ECANCELED|closed/);
    expect(String(await streamExchange(t.target(s), 'next\n', { halfClose: true }))).toBe('served\n');
  });

  test('a client that sends and then half-closes still receives its whole reply (1 MiB)', async () => {
    const s = await start(async (h) => {
      const line = await h.rfile.readline();
      for (let i = 0; i < 16; i++) await h.wfile.write(Buffer.alloc(64 * 1024, line[0]));
    });
    const reply = await streamExchange(t.target(s), 'z\n', { halfClose: true });
    expect(reply.length).toBe(1024 * 1024);
    expect(reply.every((b) => b === 'z'.charCodeAt(0))).toBe(true);
  });

  test('a half-closed client that reads late still gets the whole reply, then EOF, never a reset (the FIN may come from close())', async () => {
    // The handler returns while most of the reply still sits in the kernel's buffers (the client reads only
    // later): shutdownRequest asks for the half-close and closeRequest closes the socket at once, and the
    // kernel must deliver every byte before the FIN.
    const size = 256 * 1024; // within what loopback buffers hold: the write completes before the client reads
    let returned = false;
    const s = await start(async (h) => {
      await h.rfile.readline();
      h.wfile.write(Buffer.alloc(size, 'y')).catch(() => undefined);
      returned = true;
    });
    const socket = await connect(t.target(s));
    try {
      socket.pause();
      socket.write('z\n');
      socket.end();
      await until(() => returned);
      await sleep(200);
      const reset: unknown[] = [];
      socket.on('error', (e) => reset.push(e));
      const reply = await within(5000, 'the whole reply', new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('end', () => resolve(Buffer.concat(chunks)));
        socket.resume();
      }));
      expect(reply.length).toBe(size);
      expect(reply.every((b) => b === 'y'.charCodeAt(0))).toBe(true);
      expect(reset).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      socket.destroy();
    }
  });

  test('rfile reads lines, exact counts, read1 and iteration over one connection', async () => {
    const s = await start(async (h) => {
      const r = h.rfile as import('../../src/classic').StreamReader;
      const first = await r.readline();
      const four = await r.read(4);
      const lines: string[] = [];
      for await (const line of r) lines.push(line.toString());
      await h.wfile.write(JSON.stringify({ first: first.toString(), four: four.toString(), lines }));
    });
    const reply = await streamExchange(t.target(s), 'one\nabcdtwo\nthree\nno-newline', { halfClose: true });
    expect(JSON.parse(reply.toString())).toEqual({ first: 'one\n', four: 'abcd', lines: ['two\n', 'three\n', 'no-newline'] });
  });

  test('an endless line ends that request with LineTooLongError and the next request is served', async () => {
    const s = await start(async (h) => { await h.wfile.write(await h.rfile.readline()); }, (srv) => { (srv as TCPServer).lineLimit = 1024; });
    const socket = await connect(t.target(s));
    const closed = readToEnd(socket);
    socket.write(Buffer.alloc(4096, 'a'));
    expect((await within(3000, 'close after long line', closed)).length).toBe(0);
    socket.destroy();
    await until(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(LineTooLongError);
    expect((errors[0] as Error).message).toBe("rfile.readline(): the line is longer than 1024 bytes, the server's line limit. Fix: raise the limit (limits.maxLineLength; the classic servers' lineLimit), or read long lines in parts with readline(limit), read() or read1().");
    expect((await streamExchange(t.target(s), 'next\n', { halfClose: true })).toString()).toBe('next\n');
  });

  test('a client that never sends ends its request with RequestTimeoutError and the next is served', async () => {
    const s = await start(async (h) => { await h.wfile.write(await h.rfile.readline()); }, (srv) => { srv.requestTimeout = 0.1; });
    const silent = await connect(t.target(s));
    const ended = readToEnd(silent);
    await within(3000, 'silent client closed', ended);
    silent.destroy();
    expect(errors[0]).toBeInstanceOf(RequestTimeoutError);
    expect((await streamExchange(t.target(s), 'after\n', { halfClose: true })).toString()).toBe('after\n');
  });

  test('a client that resets mid-request ends only its own request', async () => {
    let reading = false;
    const s = await start(async (h) => {
      await h.rfile.readline();
      reading = true;
      await h.rfile.readline();
      await h.wfile.write('late reply\n');
    });
    const socket = await connect(t.target(s));
    socket.on('error', () => undefined);
    socket.write('first\n');
    await until(() => reading);
    if ('path' in t.target(s)) socket.destroy(); else socket.resetAndDestroy();
    expect((await streamExchange(t.target(s), 'ok\nok\n', { halfClose: true })).toString()).toBe('late reply\n');
  });

  test('the serial server does not read the next connection until the current request has finished', async () => {
    let inFirst = false;
    let release!: () => void;
    const order: string[] = [];
    const s = await start(async (h) => {
      const line = (await h.rfile.readline()).toString().trim();
      order.push(`start ${line}`);
      if (line === 'first') { inFirst = true; await new Promise<void>((r) => (release = r)); }
      order.push(`end ${line}`);
      await h.wfile.write(line);
    });
    const first = streamExchange(t.target(s), 'first\n', { halfClose: true });
    await until(() => inFirst);
    const second = streamExchange(t.target(s), 'second\n', { halfClose: true });
    await sleep(50);
    expect(order).toEqual(['start first']);
    release();
    expect((await first).toString()).toBe('first');
    expect((await second).toString()).toBe('second');
    expect(order).toEqual(['start first', 'end first', 'start second', 'end second']);
  });

  test('shutdown ends an idle keep-alive connection at once instead of hanging', async () => {
    const s = await start(async (h) => {
      for await (const line of h.rfile) await h.wfile.write(line);
    });
    const socket = await connect(t.target(s));
    const all = readToEnd(socket);
    socket.write('ping\n');
    await until(() => s.activeRequests === 1);
    await sleep(20);
    const started = Date.now();
    await within(2000, 'shutdown with idle connection', s.shutdown());
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await within(2000, 'idle client EOF', all)).toString()).toBe('ping\n');
    socket.destroy();
  });

  test('shutdown lets read(n) wait for a body still on its way after its header', async () => {
    const s = await start(async (h) => {
      const header = (await h.rfile.readline()).toString();
      const body = await h.rfile.read(Number(header.split(' ')[1]));
      await h.wfile.write(`body ${body.toString()}`);
    });
    const arrived = async () => { await until(() => s.activeRequests === 1); await sleep(100); };
    const reply = await requestAcrossShutdown(t.target(s), 'LEN 5\n', 'hello', arrived, () => s.shutdown());
    expect(reply).toBe('body hello');
    expect(errors).toEqual([]);
  });

  test('shutdown serves a request whose line is half received whole, then ends the connection', async () => {
    const s = await start(async (h) => {
      for await (const line of h.rfile) await h.wfile.write(`got ${line}`);
    });
    const arrived = async () => { await until(() => s.activeRequests === 1); await sleep(100); };
    const reply = await requestAcrossShutdown(t.target(s), 'first\nhel', 'lo\n', arrived, () => s.shutdown());
    expect(reply).toBe('got first\ngot hello\n');
    expect(errors).toEqual([]);
  });
});

describe('stream address errors', () => {
  let dir: string;
  const servers: BaseServer<any, any>[] = [];
  beforeEach(() => { dir = tempDir(); });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    removeTempDir(dir);
  });
  const { StreamBody } = handlerClasses(() => undefined);

  test('a taken TCP port is an AddressInUseError naming the address', async () => {
    const first = new TCPServer(['127.0.0.1', 0], StreamBody);
    servers.push(first);
    await first.ready;
    const second = new TCPServer(first.serverAddress, StreamBody);
    servers.push(second);
    await expect(second.ready).rejects.toBeInstanceOf(AddressInUseError);
    await expect(second.ready).rejects.toThrow(`TCPServer: address 127.0.0.1:${first.serverAddress[1]} is already in use.`);
    // Node's code, as its own listen() error has it: `err.code === 'EADDRINUSE'` (retry on another port) was undefined
    await expect(second.ready).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  test('a live Unix socket at the path is an error and keeps serving', async () => {
    const p = path.join(dir, 'live.sock');
    const first = new UnixStreamServer(p, StreamBody);
    servers.push(first);
    await first.ready;
    const second = new UnixStreamServer(p, StreamBody);
    servers.push(second);
    await expect(second.ready).rejects.toBeInstanceOf(AddressInUseError);
    await expect(second.ready).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(fs.statSync(p).isSocket()).toBe(true);
    (await connect({ path: p })).destroy();
  });

  test('a regular file at the path is an error and is never deleted', async () => {
    const p = path.join(dir, 'precious.txt');
    fs.writeFileSync(p, 'keep me');
    const s = new UnixStreamServer(p, StreamBody);
    servers.push(s);
    await expect(s.ready).rejects.toBeInstanceOf(AddressInUseError);
    expect(fs.readFileSync(p, 'utf8')).toBe('keep me');
  });

  test('a stale socket file left by a dead server is replaced', async () => {
    const p = path.join(dir, 'stale.sock');
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(p, r));
    fs.linkSync(p, p + '.keep'); // keep the file across close(), which unlinks it
    await new Promise((r) => stale.close(r));
    fs.renameSync(p + '.keep', p);
    const s = new UnixStreamServer(p, StreamBody);
    servers.push(s);
    await s.ready;
    expect(s.serverAddress).toBe(p);
  });
});

describe("StreamRequestHandler's Python attributes: timeout and disableNagleAlgorithm", () => {
  const serve = servingInTests();
  const errors: unknown[] = [];
  beforeEach(() => { errors.length = 0; });

  async function start(Handler: typeof StreamRequestHandler, requestTimeout: number | null = null) {
    const server = new TCPServer(['127.0.0.1', 0], Handler);
    server.requestTimeout = requestTimeout;
    server.handleError = (_r, _a, e) => { errors.push(e); };
    await server.ready;
    return serve(server);
  }
  const target = (s: TCPServer) => ({ host: s.serverAddress[0] as string, port: s.serverAddress[1] as number });

  test("a handler's timeout (seconds) ends a silent client's request with RequestTimeoutError, shorter than the server's requestTimeout", async () => {
    class Impatient extends StreamRequestHandler {
      override timeout = 0.1;
      override async handle() { await this.wfile.write(await this.rfile.readline()); }
    }
    const s = await start(Impatient, 30);
    const silent = await connect(target(s));
    await within(3000, 'silent client closed after the handler timeout', readToEnd(silent));
    silent.destroy();
    await until(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(RequestTimeoutError);
    // Before: it named the server's requestTimeout and told to raise it, which this handler's timeout overrides.
    expect((errors[0] as Error).message).toBe('rfile: no data arrived for 0.1 s (Impatient.timeout). Fix: raise Impatient.timeout, or make the client send sooner.');
    expect((await streamExchange(target(s), 'after\n', { halfClose: true })).toString()).toBe('after\n');
  });

  test('a read timeout after the connection was replied to says the client may have stopped reading its replies (its own sends stall then)', async () => {
    class LineEcho extends StreamRequestHandler {
      override async handle() { for await (const line of this.rfile) await this.wfile.write(line); }
    }
    const s = await start(LineEcho, 0.1);
    const client = await connect(target(s));
    const ended = readToEnd(client);
    client.write('one\n'); // answered, then nothing more
    expect((await within(3000, 'the connection to end after requestTimeout', ended)).toString()).toBe('one\n');
    client.destroy();
    await until(() => errors.length === 1);
    // Before: only "make the client send sooner", to a client that (new-user run) was sending all along but not reading.
    expect((errors[0] as Error).message).toBe('rfile: no data arrived for 0.1 s (requestTimeout). Fix: raise requestTimeout, or make the client send sooner; a client that does not read the replies sent to it can stall its own sends too (its TCP stack stops), so make it read them.');
  });

  test("a write the client takes no byte of for the handler's timeout names that timeout, not the server's requestTimeout", async () => {
    class Flooding extends StreamRequestHandler {
      override timeout = 0.2;
      override async handle() { for (;;) await this.wfile.write(Buffer.alloc(1 << 20)); }
    }
    const s = await start(Flooding, 30);
    const deaf = await connect(target(s));
    deaf.pause(); // reads nothing
    try {
      await until(() => errors.length === 1, 10000);
    } finally {
      deaf.destroy();
    }
    expect(errors[0]).toBeInstanceOf(RequestTimeoutError);
    expect((errors[0] as Error).message).toMatch(/^wfile: the client took no byte of the reply for 0\.2 s \(Flooding\.timeout; \d+ bytes unsent\): .* Fix: raise Flooding\.timeout, or make the client read its replies\.$/);
  });

  test('without a timeout the server requestTimeout applies, as before', async () => {
    class Plain extends StreamRequestHandler {
      override async handle() { await this.wfile.write(await this.rfile.readline()); }
    }
    const s = await start(Plain, 0.1);
    const silent = await connect(target(s));
    await within(3000, 'silent client closed after the server requestTimeout', readToEnd(silent));
    silent.destroy();
    await until(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(RequestTimeoutError);
    expect((errors[0] as Error).message).toMatch(/\(requestTimeout\)\. Fix: raise requestTimeout/);
  });

  test('disableNagleAlgorithm sets TCP_NODELAY on the connection in setup(); the default (false) leaves it alone', async () => {
    const calls: Array<[string, boolean | undefined]> = [];
    const spying = (Base: typeof StreamRequestHandler, name: string) =>
      class extends Base {
        override setup() {
          const original = this.request.setNoDelay.bind(this.request);
          this.request.setNoDelay = (on?: boolean) => { calls.push([name, on]); return original(on); };
          return super.setup();
        }
        override async handle() { await this.wfile.write(await this.rfile.readline()); }
      };
    class NoNagle extends StreamRequestHandler {
      override disableNagleAlgorithm = true;
    }
    const withNagle = await start(spying(StreamRequestHandler, 'default'));
    const noNagle = await start(spying(NoNagle, 'disabled'));
    expect((await streamExchange(target(withNagle), 'a\n', { halfClose: true })).toString()).toBe('a\n');
    expect((await streamExchange(target(noNagle), 'b\n', { halfClose: true })).toString()).toBe('b\n');
    expect(calls).toEqual([['disabled', true]]);
  });
});

describe("the classic stream servers' edge options (new TCPServer(address, Handler, { proxyProtocol, limits, tls }))", () => {
  const serve = servingInTests();
  class Echo extends StreamRequestHandler {
    override async handle() {
      await this.wfile.write(`${JSON.stringify(this.clientAddress)} ${(await this.rfile.readline()).toString()}`);
    }
  }
  const header = 'PROXY TCP4 192.0.2.44 10.0.0.1 4444 80\r\n';
  const target = (s: TCPServer) => ({ host: s.serverAddress[0] as string, port: s.serverAddress[1] as number });

  test('proxyProtocol: false reads no header, as leaving it out does: a header is the handler\'s data', async () => {
    const server = new TCPServer(['127.0.0.1', 0], Echo, { proxyProtocol: process.env.SOCKSERVE_TEST_NEVER_SET === '1' });
    await server.ready;
    serve(server);
    const reply = (await streamExchange(target(server), header + 'hello\n', { halfClose: true })).toString();
    expect(reply).toMatch(/^\{"host":"127\.0\.0\.1","port":\d+,"family":"IPv4"\} PROXY TCP4 192\.0\.2\.44 /);
  });

  test('proxyProtocol: true takes the client from the header', async () => {
    const server = new TCPServer(['127.0.0.1', 0], Echo, { proxyProtocol: true });
    await server.ready;
    serve(server);
    const reply = (await streamExchange(target(server), header + 'hello\n', { halfClose: true })).toString();
    expect(reply).toBe('{"host":"192.0.2.44","port":4444,"family":"IPv4"} hello\n');
  });

  test.each(Object.entries(preambleFactsServers))("%s: preambleFacts(this.request) gives the handler the PROXY header, in the server's process and in a worker", async (_name, make) => {
    // Under ThreadingMixIn it read {}: the header had been read in the main thread, and the bridged connection the
    // thread's handler gets was not marked (new-user run on the undocumented export).
    const server = make();
    await server.ready;
    serve(server);
    const reply = (await streamExchange(target(server as TCPServer), header + 'hello\n', { halfClose: true, ms: 10000 })).toString();
    expect(JSON.parse(reply)).toEqual({ client: '192.0.2.44', proxy: { host: '192.0.2.44', port: 4444 } });
  });

  test('serveForever() and handleRequest() on a server built with bindAndActivate: false and never bound reject with a clear error, not wait for ever (hostile run); once bound, it serves', async () => {
    class Quiet extends DatagramRequestHandler {
      async handle(): Promise<void> {}
    }
    const servers = [new TCPServer(['127.0.0.1', 0], Echo, { bindAndActivate: false }), new UDPServer(['127.0.0.1', 0], Quiet, { bindAndActivate: false })];
    const tcp = servers[0] as TCPServer;
    try {
      for (const server of servers) {
        const name = server.constructor.name;
        const fix = /the server is not bound: it was built with \{ bindAndActivate: false \} and serverBind\(\) has not run.*Fix: await server\.serverBind\(\) and server\.serverActivate\(\) first/;
        await expect(within(3000, `${name}.serveForever()`, server.serveForever())).rejects.toThrow(new RegExp(`^${name}\\.serveForever\\(\\): ${fix.source}`));
        await expect(within(3000, `${name}.handleRequest()`, server.handleRequest())).rejects.toThrow(new RegExp(`^${name}\\.handleRequest\\(\\): ${fix.source}`));
      }
      await tcp.serverBind();
      await tcp.serverActivate();
      serve(tcp); // serveForever(), and shutdown() and close() after the test
      expect((await streamExchange(target(tcp), 'bound\n', { halfClose: true })).toString()).toMatch(/bound\n$/);
    } finally {
      await servers[1].close();
      if (!tcp.serverAddress) await servers[0].close();
    }
  });

  // bindAndActivate: false: were the check to pass, nothing would bind.
  test('a proxyProtocol that is neither a boolean nor an object is a ConfigurationError from the constructor, not taken for "on"', () => {
    expect(() => new TCPServer(['127.0.0.1', 0], Echo, { proxyProtocol: 'yes' as never, bindAndActivate: false }))
      .toThrow(/^new TCPServer\(\) on Echo: proxyProtocol "yes" is not a boolean or an object \{ trusted\?, required\? \}\. Fix: .*or false for none\.$/);
    expect(() => new TCPServer(['127.0.0.1', 0], Echo, { proxyProtocol: 'yes' as never, bindAndActivate: false })).toThrow(ConfigurationError);
  });

  test('bad limits and nested PROXY options are ConfigurationErrors from the constructor, with the decorators\' messages', () => {
    expect(() => new TCPServer(['127.0.0.1', 0], Echo, { limits: { maxConnections: -1 }, bindAndActivate: false }))
      .toThrow(/new TCPServer\(\) on Echo: limits\.maxConnections -1 is not a positive integer\./);
    expect(() => new TCPServer(['127.0.0.1', 0], Echo, { proxyProtocol: { required: 'no' as never }, bindAndActivate: false }))
      .toThrow(/new TCPServer\(\) on Echo: proxyProtocol\.required "no" is not a boolean\./);
    expect(() => new UnixStreamServer('/tmp/never-bound.sock', Echo, { tls: 'cert.pem' as never, bindAndActivate: false }))
      .toThrow(/new UnixStreamServer\(\) on Echo: tls "cert\.pem" is not an object of Node's tls\.createServer\(\) options\./);
  });
});
