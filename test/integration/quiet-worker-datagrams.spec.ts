/**
 * Datagrams the pool gave a thread whose event loop a handler then blocked, and which the thread never took
 * from its port, are served by another thread when the heartbeat ends it: they were lost with it (hostile
 * run: 6 of 100 unanswered, each a WorkerCrashedError). The one whose handler blocked is the only loss.
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Server } from '../../src';
import { SpinningUdpThreads } from '../fixtures/spinning-handlers';
import { within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
let client: dgram.Socket | undefined;
afterEach(() => client?.close());

test('datagrams queued on a thread that blocks are served by another thread once the heartbeat ends it', async () => {
  const s = serve(await bootstrap(SpinningUdpThreads, { heartbeatTimeout: 4, shutdownTimeout: 2 }));
  const { port } = s.serverAddress as { port: number };
  const c = (client = dgram.createSocket('udp4'));
  const answered = new Map<string, number>();
  c.on('message', (m) => {
    const [text, tid] = m.toString().split(' ');
    answered.set(text!, Number(tid));
  });
  await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', resolve));
  c.send('spin', port, '127.0.0.1');
  // Within the first half of the heartbeatTimeout the blocked thread is not yet quiet: the pool gives it about
  // half of these, some of them while the other thread is busier, and those wait on its port.
  const sent = Array.from({ length: 60 }, (_, i) => `d${i}`);
  for (const text of sent) {
    c.send(text, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 25));
  }
  await within(15000, 'every datagram answered', new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (sent.every((text) => answered.has(text))) {
        clearInterval(check);
        resolve();
      }
    }, 50);
  })).catch((err: Error) => {
    throw new Error(`${err.message}; unanswered: ${sent.filter((text) => !answered.has(text)).join(' ')}`);
  });
  expect(s.stats()).toMatchObject({ accepted: 61, errors: 1, restarts: 1 });
}, 30000);
