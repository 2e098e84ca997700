/**
 * Datagrams the pool gave a thread whose event loop a handler then blocked, and which the thread never took
 * from its port, are served by another thread when the heartbeat ends it: they were lost with it (hostile
 * run: 6 of 100 unanswered, each a WorkerCrashedError). The one whose handler blocked is the only loss.
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Server } from '../../src';
import { RemoteSlot } from '../../src/concurrency/remote/remote-slot';
import { SpinningUdpOneThread, SpinningUdpRecycled, SpinningUdpThreads, SpinningUnixDatagramChildren } from '../fixtures/spinning-handlers';
import { createUnixDatagramSocket, ReceivedDatagram } from '../../src/transports/datagram-socket';
import * as path from 'node:path';
import { removeTempDir, tempDir } from '../helpers/clients';
import { within } from '../helpers/clients';
import { recordEvents } from '../helpers/events';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';

const serve = servingInTests<Server>();
let client: dgram.Socket | undefined;
let recorded: ReturnType<typeof recordEvents> | undefined;
const run = RemoteSlot.prototype.run;
afterEach(() => {
  client?.close();
  client = undefined; // a test without one must not close the last test's again (ERR_SOCKET_DGRAM_NOT_RUNNING)
  recorded?.stop();
  recorded = undefined;
  RemoteSlot.prototype.run = run;
});

/** Sends `first` then `count` datagrams `d0`…, `gapMs` apart, from one client; what answered each (by text). */
async function sendAll(port: number, first: string[], count: number, gapMs: number): Promise<{ sent: string[]; answered: Map<string, number> }> {
  const c = (client = dgram.createSocket('udp4'));
  const answered = new Map<string, number>();
  c.on('message', (m) => {
    const [text, tid] = m.toString().split(' ');
    answered.set(text!, Number(tid));
  });
  await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', resolve));
  for (const text of first) c.send(text, port, '127.0.0.1');
  const sent = Array.from({ length: count }, (_, i) => `d${i}`);
  for (const text of sent) {
    c.send(text, port, '127.0.0.1');
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return { sent, answered };
}

/** Resolves once every datagram of `sent` is answered (bounded), naming those that were not. */
function allAnswered(sent: string[], answered: { has(text: string): boolean }, ms = 15000): Promise<void> {
  return within(ms, 'every datagram answered', new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (sent.every((text) => answered.has(text))) {
        clearInterval(check);
        resolve();
      }
    }, 50);
  })).catch((err: Error) => {
    throw new Error(`${err.message}; unanswered: ${sent.filter((text) => !answered.has(text)).join(' ')}`);
  });
}

test.each([
  ['', 0],
  [', on a thread whose request ids have passed 2^31 (a long-lived one: an Int32 record wrapped negative)', 2 ** 31],
])('datagrams queued on a thread that blocks are served by another thread once the heartbeat ends it%s', async (_what, firstId) => {
  if (firstId > 0) {
    RemoteSlot.prototype.run = function (this: RemoteSlot, ...args: Parameters<RemoteSlot['run']>) {
      const ids = this as unknown as { nextId: number; bumped?: true };
      if (!ids.bumped) Object.assign(ids, { bumped: true, nextId: firstId });
      return run.apply(this, args);
    };
  }
  const events = (recorded = recordEvents());
  const s = serve(await bootstrap(SpinningUdpThreads, { heartbeatTimeout: 4, shutdownTimeout: 2 }));
  // Within the first half of the heartbeatTimeout the blocked thread is not yet quiet: the pool gives it about
  // half of these, some of them while the other thread is busier, and those wait on its port.
  const { sent, answered } = await sendAll((s.serverAddress as { port: number }).port, ['spin'], 60, 25);
  await allAnswered(sent, answered);
  expect(s.stats()).toMatchObject({ accepted: 61, errors: 1, restarts: 1 });
  // Each datagram ends once on the channels, the one whose handler blocked with its error.
  await until(() => events.named('sockserve:request.end').length === 61, 5000);
  expect(events.named('sockserve:request.end').filter((e) => e.error !== undefined)).toHaveLength(1);
}, 30000);

test('datagrams queued on a recycled thread that blocks are served by its successor when its shutdownTimeout bound ends it', async () => {
  const s = serve(await bootstrap(SpinningUdpRecycled, { heartbeatTimeout: 10, shutdownTimeout: 1 }));
  // The thread takes 8 (the spin among them) and retires; those past its count wait on its port until its
  // bound (shutdownTimeout) ends it: they were failed as handlers still running.
  const { sent, answered } = await sendAll((s.serverAddress as { port: number }).port, ['spin'], 20, 0);
  await allAnswered(sent, answered);
  expect(s.stats()).toMatchObject({ accepted: 21, errors: 0, clientErrors: 1 });
}, 30000);

test('datagrams placed three times on threads that each die before taking them end once, with their error, on the channels', async () => {
  const events = (recorded = recordEvents());
  const s = serve(await bootstrap(SpinningUdpOneThread, { heartbeatTimeout: 2, shutdownTimeout: 2 }));
  // Three spins ahead of ten datagrams on one thread at a time: each thread takes a spin and dies; the ten are placed
  // on the next, three times, then given up. They ended on no channel, with a connection's words.
  await sendAll((s.serverAddress as { port: number }).port, ['spin', 'spin', 'spin'], 10, 0);
  await until(() => events.named('sockserve:request.end').length === 13, 20000);
  const ends = events.named('sockserve:request.end');
  expect(ends.every((e) => (e.error as Error | undefined)?.name === 'WorkerCrashedError')).toBe(true);
  expect(s.stats()).toMatchObject({ accepted: 13, errors: 13, restarts: 3 });
}, 40000);

test('children: datagrams queued on the IPC channel of a child that blocks are served by the other child once the heartbeat ends it', async () => {
  const dir = tempDir();
  const c = createUnixDatagramSocket({ path: path.join(dir, 'client.sock'), maxPacketSize: 65534 });
  try {
    const s = serve(await bootstrap(SpinningUnixDatagramChildren, { transport: { path: path.join(dir, 's.sock') }, heartbeatTimeout: 4, shutdownTimeout: 2 }));
    const answered = new Set<string>();
    c.onMessage(({ data }: ReceivedDatagram) => answered.add(data.toString().split(' ')[0]!));
    await c.bind();
    const target = { path: path.join(dir, 's.sock') };
    await c.send(Buffer.from('spin'), target);
    const sent = Array.from({ length: 60 }, (_, i) => `d${i}`);
    for (const text of sent) {
      await c.send(Buffer.from(text), target);
      await new Promise((r) => setTimeout(r, 25));
    }
    await allAnswered(sent, answered, 20000);
    expect(s.stats()).toMatchObject({ accepted: 61, errors: 1, restarts: 1 });
  } finally {
    await c.close();
    removeTempDir(dir);
  }
}, 40000);

/** The descriptors of the server's child processes that are the record's unlinked file (Linux's /proc). */
function takenRecordsOfChildren(): string[] {
  const fs = require('node:fs') as typeof import('node:fs');
  const children = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const records: string[] = [];
  for (const pid of children) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited meanwhile
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).includes('sockserve-taken-')) records.push(`${pid}/${fd}`);
      } catch {
        // closed meanwhile
      }
    }
  }
  return records;
}

(process.platform === 'linux' ? test : test.skip)('only a datagram server\'s children get a file to record the datagrams they take', async () => {
  const { ChildrenSay } = await import('../fixtures/as-in-worker-handlers');
  const { ObservedChildDatagrams } = await import('../fixtures/observed-handlers');
  const before = takenRecordsOfChildren();
  const stream = serve(await bootstrap(ChildrenSay));
  expect(stream.stats().workers).toHaveLength(1);
  expect(takenRecordsOfChildren()).toEqual(before);
  await stream.close();
  const datagrams = serve(await bootstrap(ObservedChildDatagrams));
  expect(datagrams.stats().workers).toHaveLength(1);
  expect(takenRecordsOfChildren().length).toBe(before.length + 1);
  await datagrams.close();
  // The classic layer's ForkingMixIn servers alike (a ForkingUDPServer starts one child per core).
  const { ForkingTCPServer, ForkingUDPServer } = await import('../../src/classic');
  const { WhereDatagram, WhereStream } = await import('../fixtures/classic-handlers');
  const classicStream = new ForkingTCPServer(['127.0.0.1', 0], WhereStream);
  try {
    await classicStream.ready;
    expect(takenRecordsOfChildren()).toEqual(before);
  } finally {
    await classicStream.close();
  }
  const classicDatagrams = new ForkingUDPServer(['127.0.0.1', 0], WhereDatagram);
  try {
    await classicDatagrams.ready;
    expect(takenRecordsOfChildren().length).toBeGreaterThan(before.length);
  } finally {
    await classicDatagrams.close();
  }
});
