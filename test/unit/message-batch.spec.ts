import { MessageChannel, MessagePort } from 'node:worker_threads';
import { MessageBatch } from '../../src/concurrency/remote/message-batch';

type Msg = { t: string; id: number; chunk?: Uint8Array; bad?: unknown };
type Posted = Msg | { t: 'batch'; msgs: Msg[] };

/** The messages `port` receives until `count` have come (a batch counts as one), bounded. */
function receive(port: MessagePort, count: number): Promise<Posted[]> {
  const got: Posted[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} messages came`)), 2000);
    port.on('message', (msg: Posted) => {
      got.push(msg);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('MessageBatch (a relayed connection\'s traffic to a worker thread)', () => {
  let channel: MessageChannel;
  beforeEach(() => (channel = new MessageChannel()));
  afterEach(() => {
    channel.port1.close();
    channel.port2.close();
  });

  const batchOn = (lost: Array<[Msg, unknown]> = []) =>
    new MessageBatch<Msg>((msg, transfer) => channel.port1.postMessage(msg, transfer), (msg, err) => lost.push([msg, err]));

  test('messages posted in one turn of the event loop cross as one batch, in order, their buffers moved', async () => {
    const batch = batchOn();
    const chunks = [1, 2, 3].map((n) => new Uint8Array([n, n, n]));
    for (const [i, chunk] of chunks.entries()) batch.post({ t: 'data', id: i, chunk }, [chunk.buffer as ArrayBuffer]);
    batch.post({ t: 'eof', id: 0 });
    const [only] = await receive(channel.port2, 1);
    expect(only.t).toBe('batch');
    const msgs = (only as { msgs: Msg[] }).msgs;
    expect(msgs.map((m) => [m.t, m.id])).toEqual([['data', 0], ['data', 1], ['data', 2], ['eof', 0]]);
    expect(msgs.slice(0, 3).map((m) => [...m.chunk!])).toEqual([[1, 1, 1], [2, 2, 2], [3, 3, 3]]);
    expect(chunks.every((chunk) => chunk.byteLength === 0)).toBe(true); // transferred, not copied
  });

  test('a lone message goes as itself, and the next turn starts a new batch', async () => {
    const batch = batchOn();
    const got = receive(channel.port2, 2);
    batch.post({ t: 'written', id: 7 });
    await new Promise((resolve) => setImmediate(resolve));
    batch.post({ t: 'written', id: 8 });
    expect((await got).map((m) => [m.t, (m as Msg).id])).toEqual([['written', 7], ['written', 8]]);
  });

  test('flush() sends what waits at once, so a message posted directly after it does not overtake it', async () => {
    const batch = batchOn();
    const got = receive(channel.port2, 2);
    batch.post({ t: 'data', id: 1 });
    batch.flush();
    channel.port1.postMessage({ t: 'listen', id: 0 });
    batch.flush(); // nothing waits: nothing sent
    expect((await got).map((m) => m.t)).toEqual(['data', 'listen']);
  });

  test('a message that cannot be cloned costs only itself: the others still cross, and `lost` says which failed', async () => {
    const lost: Array<[Msg, unknown]> = [];
    const batch = batchOn(lost);
    const good = new Uint8Array([9]);
    batch.post({ t: 'data', id: 1, chunk: good }, [good.buffer as ArrayBuffer]);
    batch.post({ t: 'data', id: 2, bad: () => 'a function' });
    batch.post({ t: 'eof', id: 3 });
    const got = await receive(channel.port2, 2);
    expect(got.map((m) => [m.t, (m as Msg).id])).toEqual([['data', 1], ['eof', 3]]);
    expect([...(got[0] as Msg).chunk!]).toEqual([9]);
    expect(lost.map(([msg]) => msg.id)).toEqual([2]);
    expect((lost[0][1] as Error).name).toBe('DataCloneError');
  });
});
