import 'reflect-metadata';
import * as diagnostics from 'node:diagnostics_channel';
import { bootstrap, Concurrent, Framing, OnMessage, Server, TcpServer } from '../../src';
import { datagramExchange, datagramSilence, streamExchange } from '../helpers/clients';
import { handlers, UdpLinesForkedMortal, UdpRawThreaded } from '../fixtures/message-handlers';
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

  // A child reading the server's UDP socket tells of each datagram it served in its bookkeeping records, which the
  // server pairs into one `served`: that dropped the messages total its `done` carried, so the count came only with
  // the child's next report (a second), and a child that died before it took the datagrams it had answered with it:
  // 0 where @Threading said 5 (hostile run).
  test('@Forking over UDP: the messages of datagrams a child answered stay counted when it dies before its next report', async () => {
    const s = serve(await bootstrap(UdpLinesForkedMortal));
    const address = s.serverAddress as { host: string; port: number };
    expect((await datagramExchange(address, 'a\nb\nc\nd\ne', undefined, 10000)).data.toString()).toBe('A\nB\nC\nD\nE\n');
    await new Promise((r) => setTimeout(r, 100)); // the server reads the child's records every 20 ms
    expect(await datagramSilence(address, 'exit')).toBe(true);
    const t0 = Date.now();
    while (s.stats().restarts < 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(s.stats().restarts).toBe(1);
    expect(s.stats().messages).toBeGreaterThanOrEqual(5);
  });
});
