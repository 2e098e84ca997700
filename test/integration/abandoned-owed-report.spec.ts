import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Concurrent, DatagramRequest, Handle, HandleError, Server, StreamRequest, TcpServer, UdpServer } from '../../src';
import { connect, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';

const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The handler fails at 0.5 s, its @HandleError runs until 1.3 s, shutdownTimeout (1 s) abandons it meanwhile: the
// abandoning leaves the report to that hook (140002c), and the count that follows it came after shutdown() had
// resolved (errors 0 then, 1 later), where @Threading and @Forking count the request before shutdown() resolves.
/** Shuts the server down with its one request in flight: counted once (errors 1) by then, and not again later, its hook run once. */
async function countedOnceWhenShutdownResolves(s: Server, hooks: () => number): Promise<void> {
  await until(() => s.stats().active === 1, 5000);
  await within(5000, 'shutdown', s.shutdown());
  expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
  await sleep(800);
  expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
  expect(hooks()).toBe(1);
}

describe.each(modes)('a request abandoned while its own @HandleError runs, in $mode mode', (m) => {
  const serve = servingInTests<Server>();

  test('over TCP, is counted in stats() when shutdown() resolves', async () => {
    let hooks = 0;
    @TcpServer(0) @m.decorate()
    class FailsThenReportsSlowly {
      @Handle() async h(req: StreamRequest) {
        await req.rfile.readline();
        await sleep(500);
        throw new Error('boom');
      }
      @HandleError() async report() {
        hooks++;
        await sleep(800);
      }
    }
    const s = serve(await bootstrap(FailsThenReportsSlowly, { logger: memoryLogger(), shutdownTimeout: 1 }));
    const socket = await within(5000, 'connect', connect(s.serverAddress as { host: string; port: number }));
    socket.on('error', () => undefined);
    try {
      socket.write('go\n');
      await countedOnceWhenShutdownResolves(s, () => hooks);
    } finally {
      socket.destroy();
    }
  }, 15000);

  test('over UDP, is counted in stats() when shutdown() resolves', async () => {
    let hooks = 0;
    @UdpServer(0) @m.decorate()
    class FailsThenReportsSlowly {
      @Handle() async h(req: DatagramRequest) {
        await req.wfile.write('x');
        await sleep(500);
        throw new Error('boom');
      }
      @HandleError() async report() {
        hooks++;
        await sleep(800);
      }
    }
    const s = serve(await bootstrap(FailsThenReportsSlowly, { logger: memoryLogger(), shutdownTimeout: 1 }));
    const client = dgram.createSocket('udp4');
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await countedOnceWhenShutdownResolves(s, () => hooks);
    } finally {
      client.close();
    }
  }, 15000);
});
