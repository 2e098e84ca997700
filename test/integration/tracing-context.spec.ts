/**
 * The OpenTelemetry recipe of docs/observability.md: `tracingChannel('sockserve:request').start.bindStore(als, …)`
 * makes the request's context current in the handler's code. @OnMessage calls are handed over from the socket's
 * data callback, outside that context: they saw no store (new-user run) where @Handle saw it.
 */
import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import * as dc from 'node:diagnostics_channel';
import * as dgram from 'node:dgram';
import { bootstrap, Concurrent, Framing, Handle, OnMessage, Server, StreamRequest, TcpServer, UdpServer } from '../../src';
import { streamExchange, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const als = new AsyncLocalStorage<{ id: number }>();
let next = 0;
const store = () => String(als.getStore()?.id ?? 'none');

@TcpServer(0) @Concurrent()
class ByHandle {
  @Handle() async handle(req: StreamRequest) {
    await req.rfile.readline();
    await req.wfile.write(`${store()}\n`);
  }
}

@TcpServer(0) @Framing('lines') @Concurrent()
class BySyncMessage {
  @OnMessage() on() { return store(); }
}

@TcpServer(0) @Framing('lines')
class ByAsyncMessageSerial {
  @OnMessage() async on() {
    await new Promise((r) => setImmediate(r));
    return store();
  }
}

@UdpServer({ port: 0, host: '127.0.0.1' }) @Framing('lines') @Concurrent()
class ByDatagramMessage {
  @OnMessage() on() { return store(); }
}

const tracing = (dc as unknown as { tracingChannel(name: string): { start: dc.Channel & { bindStore(s: AsyncLocalStorage<unknown>, f: () => unknown): void; unbindStore(s: AsyncLocalStorage<unknown>): void } } }).tracingChannel;

describe('the request span is current in the handler (tracingChannel start.bindStore)', () => {
  const serve = servingInTests<Server>();
  beforeEach(() => tracing('sockserve:request').start.bindStore(als as AsyncLocalStorage<unknown>, () => ({ id: ++next })));
  afterEach(() => tracing('sockserve:request').start.unbindStore(als as AsyncLocalStorage<unknown>));

  test.each([
    ['@Handle', ByHandle],
    ['a synchronous @OnMessage, @Concurrent', BySyncMessage],
    ['an async @OnMessage, serial', ByAsyncMessageSerial],
  ])('%s over TCP sees the store the request started with', async (_what, Handler) => {
    const s = serve(await bootstrap(Handler));
    const [host, port] = [(s.serverAddress as { host: string }).host, (s.serverAddress as { port: number }).port];
    const first = String(await streamExchange({ host, port }, 'a\n', { halfClose: true, ms: 10000 })).trim();
    const second = String(await streamExchange({ host, port }, 'b\n', { halfClose: true, ms: 10000 })).trim();
    expect(first).toMatch(/^\d+$/);
    expect(Number(second)).toBeGreaterThan(Number(first)); // each request its own
  });

  test('an @OnMessage over UDP sees it too', async () => {
    const s = serve(await bootstrap(ByDatagramMessage));
    const client = dgram.createSocket('udp4');
    try {
      const reply = await within(5000, 'the reply', new Promise<string>((resolve) => {
        client.once('message', (m) => resolve(m.toString().trim()));
        client.send('x\n', (s.serverAddress as { port: number }).port, '127.0.0.1');
      }));
      expect(reply).toMatch(/^\d+$/);
    } finally {
      client.close();
    }
  });
});
