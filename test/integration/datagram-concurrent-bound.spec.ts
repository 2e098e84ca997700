/**
 * @Concurrent holds at most maxQueuedDatagrams datagrams waiting or being served, as serial servers and the
 * pools do: past it a datagram is dropped and counted in stats().dropped. Datagrams served at once from the
 * socket's callback were not bounded at all (hostile run: a flood of 64 KiB datagrams to slow handlers, 7,000
 * in flight and 1.1 GB of RSS after 10 s, growing).
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Concurrent, DatagramRequest, Handle, Server, UdpServer } from '../../src';
import { UDPServer } from '../../src/classic';
import { until } from '../fakes/fake-server';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { ThreadNeverReturns } from '../fixtures/late-datagram-writes';
import { ChildNeverReturns, ChildrenNeverReturn } from '../fixtures/held-datagram-handlers';

const serve = servingInTests<Server>();

let release: (() => void) | undefined;
let held = new Promise<void>((resolve) => (release = resolve));

@UdpServer(0) @Concurrent()
class Held {
  @Handle() async handle(req: DatagramRequest) {
    await held;
    await req.wfile.write(req.data);
  }
}

class Small extends UDPServer {
  override maxQueuedDatagrams = 50;
}

let client: dgram.Socket | undefined;
afterEach(() => {
  release?.();
  held = new Promise<void>((resolve) => (release = resolve));
  client?.close();
  client = undefined;
});

/**
 * A client of `server` (bound, kept in `client` for afterEach) that sends 200 datagrams in four bursts of 50, paced so that
 * the kernel's buffer drops none unseen: the server reads all 200. `onReply` hears each reply.
 */
async function sendPaced(server: Server, onReply?: () => void): Promise<void> {
  const { host, port } = server.serverAddress as { host: string; port: number };
  client = dgram.createSocket('udp4');
  if (onReply) client.on('message', onReply);
  await new Promise<void>((resolve) => client!.bind(0, '127.0.0.1', resolve));
  for (let i = 0; i < 4; i++) {
    await Promise.all(Array.from({ length: 50 }, () => new Promise((r) => client!.send('x', port, host, r))));
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('@Concurrent: datagrams past maxQueuedDatagrams in flight are dropped and counted; those held are still answered', async () => {
  const logger = memoryLogger();
  const server = serve(await bootstrap(Held, { serverClass: Small, logger }));
  let replies = 0;
  await sendPaced(server, () => replies++);
  try {
    await until(() => server.stats().active + server.stats().dropped === 200, 5000);
    expect(server.stats().active).toBe(50);
    expect(server.stats().dropped).toBe(150);
    const line = logger.lines.warn.filter((l) => / dropped /.test(l))[0];
    expect(line).toMatch(/^Held: a datagram was dropped unanswered: 50 datagrams were already waiting or being served \(maxQueuedDatagrams\)/);
    // Its fix fits the mode: "serve datagrams concurrently" told a @Concurrent server what it already does.
    expect(line).toContain('Fix: serve each datagram faster');
    expect(line).not.toContain('concurrently');
  } finally {
    release!();
  }
  await until(() => replies === 50 && server.stats().active === 0, 5000);
  expect(server.stats()).toMatchObject({ accepted: 50, errors: 0 });
});

test('@Threading: a datagram the pool drops at its bound counts in stats().dropped only, not in accepted nor bytesIn, as serial and @Concurrent ones do', async () => {
  const server = serve(await bootstrap(ThreadNeverReturns, { serverClass: Small, logger: memoryLogger(), shutdownTimeout: 0.5 }));
  await sendPaced(server);
  // 200 read: 50 held in the thread (the pool's bound), the rest dropped, wherever (the loop's queue or the pool)
  await until(() => server.stats().active + server.stats().dropped >= 200, 5000);
  await new Promise((r) => setTimeout(r, 100)); // the loop has closed the dropped ones (their bytes would count then)
  expect(server.stats()).toMatchObject({ accepted: 50, active: 50, dropped: 150, bytesIn: 0 }); // the 50 held count theirs when they end
});

test('@Forking, the child reading the shared UDP socket: it holds at most maxQueuedDatagrams, the rest wait in the kernel (it read on for ever)', async () => {
  const server = serve(await bootstrap(ChildNeverReturns, { serverClass: Small, logger: memoryLogger(), shutdownTimeout: 0.5 }));
  await sendPaced(server);
  await until(() => server.stats().active >= 50, 5000);
  await new Promise((r) => setTimeout(r, 300)); // time to read on, were it to
  expect(server.stats().active).toBe(50);
});

// Each child held maxQueuedDatagrams: two held twice as many as the server's bound (hostile run: 8192 with the default).
test('@Forking, two children reading the shared UDP socket: together they hold at most maxQueuedDatagrams', async () => {
  const server = serve(await bootstrap(ChildrenNeverReturn, { serverClass: Small, logger: memoryLogger(), shutdownTimeout: 0.5 }));
  await sendPaced(server);
  await until(() => server.stats().active >= 50, 5000);
  await new Promise((r) => setTimeout(r, 300)); // time to read on, were they to
  expect(server.stats().active).toBe(50);
});
