/**
 * Datagrams on a pool in Python's model (connectionsPerThread/connectionsPerChild: 1). A datagram is a
 * request of microseconds: when every worker is busy it waits for the first to free up, and the pool
 * grows, one worker at a time, only for datagrams that keep waiting (blocked handlers). A burst used to
 * start one worker per datagram in flight, up to maxThreads (64 threads, 1 GB, for a burst of 100).
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { bootstrap, Server } from '../../src';
import { fixtureDir, OnePerThreadUdp } from '../fixtures/threaded-handlers';
import { forkDir, OnePerChildUdp } from '../fixtures/forked-handlers';
import { within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const providers = [{ provide: 'suffix', useValue: '!' }];
const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
beforeAll(() => [fixtureDir, forkDir].forEach((d) => fs.mkdirSync(d, { recursive: true })));
afterAll(() => [fixtureDir, forkDir].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Sends each payload from one client socket at once, and collects one reply per payload (bounded). */
async function burst(server: Server, payloads: string[], ms = 20000): Promise<string[]> {
  const { host, port } = server.serverAddress as { host: string; port: number };
  const client = dgram.createSocket('udp4');
  try {
    const replies: string[] = [];
    const all = new Promise<void>((resolve) => client.on('message', (m) => replies.push(m.toString()) === payloads.length && resolve()));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    for (const payload of payloads) client.send(payload, port, host);
    await within(ms, `${payloads.length} replies`, all);
    return replies;
  } finally {
    client.close();
  }
}

describe.each([
  ['@Threading({ connectionsPerThread: 1, maxThreads: 8 })', OnePerThreadUdp, /^Thread-(\d+): /],
  ['@Forking({ connectionsPerChild: 1, maxChildren: 8 })', OnePerChildUdp, /^(\d+): /],
])('UDP on %s', (_name, handler, who) => {
  test('a burst of 100 datagrams is answered by the workers there are, not one new worker per datagram', async () => {
    const server = serve(await bootstrap(handler as never, { providers }));
    const started = performance.now();
    const replies = await burst(server, Array.from({ length: 100 }, (_, i) => `d${i}\n`));
    const elapsed = performance.now() - started;
    expect(new Set(replies.map((r) => r.replace(who, ''))).size).toBe(100);
    // While datagrams wait the pool grows by one worker per 50 ms at most (it went to maxThreads at once).
    expect(server.stats().workers.length).toBeLessThanOrEqual(Math.min(8, 2 + Math.ceil(elapsed / 50)));
    expect(server.stats().oversubscribed).toBe(0);
  });

  test('datagrams waiting behind handlers that block their workers make the pool grow, one worker for each', async () => {
    const server = serve(await bootstrap(handler as never, { providers }));
    const replies = await burst(server, ['burn 1500', 'burn 1500', 'burn 1500', 'burn 1500']);
    expect(replies).toHaveLength(4);
    expect(server.stats().workers.length).toBe(4);
    expect(server.stats().oversubscribed).toBe(0);
  });
});
