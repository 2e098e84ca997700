import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Concurrent, DatagramRequest, Handle, Server, UdpServer } from '../../src';
import { within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';

const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
];

describe.each(modes)('a datagram abandoned at shutdownTimeout in $mode mode', (m) => {
  const serve = servingInTests<Server>();

  test.each(['returns', 'throws'])('whose handler %s later sends no reply: it was reported and counted (bytesOut 0) then, as the pools end theirs', async (how) => {
    @UdpServer(0) @m.decorate()
    class Late {
      @Handle() async h(req: DatagramRequest) {
        await req.wfile.write('early;');
        await new Promise((r) => setTimeout(r, 600));
        await req.wfile.write('late');
        if (how === 'throws') throw new Error('late');
      }
    }
    const s = serve(await bootstrap(Late, { logger: memoryLogger(), shutdownTimeout: 0.3 }));
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      await within(5000, 'shutdown', s.shutdown());
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1 });
      await new Promise((r) => setTimeout(r, 900)); // the handler comes back
      // it sent 'early;late' to the client, uncounted (bytesOut stayed 0), after its RequestTimeoutError
      expect(got).toEqual([]);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1, errors: 0 });
    } finally {
      client.close();
    }
  }, 15000);
});
