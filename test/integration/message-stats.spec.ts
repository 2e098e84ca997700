import 'reflect-metadata';
import * as diagnostics from 'node:diagnostics_channel';
import { bootstrap, Concurrent, Framing, OnMessage, Server, TcpServer } from '../../src';
import { streamExchange } from '../helpers/clients';
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
});
