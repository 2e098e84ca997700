import 'reflect-metadata';
import * as diagnostics from 'node:diagnostics_channel';
import { bootstrap, Concurrent, Framing, OnMessage, Server, TcpServer } from '../../src';
import { datagramExchange, streamExchange } from '../helpers/clients';
import { handlers, UdpRawThreaded } from '../fixtures/message-handlers';
import { servingInTests } from '../helpers/serving';

describe('@OnMessage and observability', () => {
  const serve = servingInTests<Server>();

  test('every message counts in stats().messages and is published on sockserve:message', async () => {
    @TcpServer(0) @Concurrent() @Framing('lines')
    class Upper {
      @OnMessage() on(line: string) { return line.toUpperCase(); }
    }
    const published: unknown[] = [];
    const onMessage = (m: unknown) => published.push(m);
    diagnostics.subscribe('sockserve:message', onMessage);
    try {
      const s = serve(await bootstrap(Upper));
      const { host, port } = s.serverAddress as { host: string; port: number };
      const reply = await streamExchange({ host, port }, 'a\nb\nc\n', { halfClose: true });
      expect(reply.toString()).toBe('A\nB\nC\n');
      expect(s.stats().messages).toBe(3);
      expect(published).toHaveLength(3);
      expect(published[0]).toMatchObject({ clientAddress: { host: '127.0.0.1' } });
    } finally {
      diagnostics.unsubscribe('sockserve:message', onMessage);
    }
  });

  // Workers count messages where the framer runs and report them at most once a second: the count came with the
  // next report, so stats() read right after the replies said 0 (hostile run). It comes with the request's end now.
  test('@Threading: stats().messages is current once the request has ended, not a report later (TCP lines)', async () => {
    const s = serve(await bootstrap(handlers['lines-threading'] as never));
    const { host, port } = s.serverAddress as { host: string; port: number };
    const reply = await streamExchange({ host, port }, 'a\nb\nc\n', { halfClose: true });
    expect(reply.toString().split('\n').filter(Boolean)).toHaveLength(3);
    const t0 = Date.now();
    while (s.stats().accepted < 1 || s.stats().active > 0) await new Promise((r) => setTimeout(r, 5));
    expect(s.stats().messages).toBe(3);
    expect(Date.now() - t0).toBeLessThan(1000); // read before the worker's next report could have brought it
  });

  test('@Threading: stats().messages is current once each datagram is answered (UDP, a datagram per message)', async () => {
    const s = serve(await bootstrap(UdpRawThreaded));
    const address = s.serverAddress as { host: string; port: number };
    for (const text of ['x', 'y', 'z']) expect((await datagramExchange(address, text)).data.toString()).toMatch(new RegExp(`${text}$`));
    const t0 = Date.now();
    while (s.stats().active > 0) await new Promise((r) => setTimeout(r, 5));
    expect(s.stats().messages).toBe(3);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
