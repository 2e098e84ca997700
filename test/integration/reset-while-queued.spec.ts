/**
 * A client that sends its request and resets while its connection waits in the serial queue: its reset is
 * reported (one client error each), on every Node line. Node 20 and 22's libuv read a reset that came with the
 * request's bytes as an end of input; the reply's write then failed after the message loop had ended, and the
 * reset was counted nowhere (hostile run: clientErrors 1 of 5 on Node 20 and 22, 5 on Node 24 and 26).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, ClientAddress, Framing, Handle, HandleError, OnMessage, Server, StreamRequest, TcpServer } from '../../src';
import { servingInTests } from '../helpers/serving';

const reported: string[] = [];

@TcpServer({ host: '127.0.0.1', port: 0 }) @Framing('lines')
class SlowReplies {
  @OnMessage() async on(line: string): Promise<string> {
    await new Promise((r) => setTimeout(r, 50));
    return `done ${line}`;
  }

  @HandleError() failed(err: Error, client: ClientAddress) {
    reported.push(`${err.name}: ${(err as NodeJS.ErrnoException).code} from ${'port' in client ? 'a TCP client' : '?'}`);
  }
}

/** The same with the stream API: the handler reads the request and writes its reply through wfile. */
@TcpServer({ host: '127.0.0.1', port: 0 })
class SlowStreamReplies {
  @Handle() async handle(req: StreamRequest): Promise<void> {
    const line = await req.rfile.readline();
    await new Promise((r) => setTimeout(r, 50));
    await req.wfile.write(`done ${line.toString()}`);
  }

  @HandleError() failed(err: Error, client: ClientAddress) {
    reported.push(`${err.name}: ${(err as NodeJS.ErrnoException).code} from ${'port' in client ? 'a TCP client' : '?'}`);
  }
}

describe('a serial server whose queued clients reset after sending their request', () => {
  const serve = servingInTests<Server>();
  beforeEach(() => (reported.length = 0));

  test.each([
    ['@OnMessage', SlowReplies],
    ['@Handle with rfile and wfile', SlowStreamReplies],
  ])('%s: reports each reset once, as a client error, and serves on', async (_api, handler) => {
    const server = serve(await bootstrap(handler));
    const { port } = server.serverAddress as { port: number };
    for (let i = 0; i < 5; i++) {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => undefined);
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      client.write(`request ${i}\n`);
      await new Promise((r) => setTimeout(r, 10));
      client.resetAndDestroy();
    }
    // bounded: the polling itself stops at its deadline (a loop left running would keep jest from exiting)
    const deadline = Date.now() + 5000;
    while ((server.stats().clientErrors < 5 || server.stats().active > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(server.stats()).toMatchObject({ accepted: 5, clientErrors: 5, errors: 0 });
    expect(reported).toHaveLength(5);
    // @OnMessage names the reset; a handler's own write to the reset connection fails with EPIPE first (Linux)
    for (const r of reported) expect(r).toMatch(handler === SlowReplies ? /^Error: ECONNRESET from a TCP client$/ : /^Error: (ECONNRESET|EPIPE) from a TCP client$/);
    // and it serves on
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let got = '';
      c.setEncoding('utf8').on('data', (d: string) => (got += d)).on('error', reject).on('close', () => resolve(got));
      c.end('last\n');
    });
    expect(reply).toBe('done last\n');
  });
});
