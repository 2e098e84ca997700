import { PortDuplex } from '../../src/concurrency/remote/port-duplex';
import { BRIDGE_WINDOW, FromWorker } from '../../src/concurrency/remote/protocol';

type Write = FromWorker & { t: 'write' };

/** A worker-side duplex whose messages to the main thread are collected instead of posted. */
function duplex() {
  const posted: FromWorker[] = [];
  const d = new PortDuplex(7, (msg) => void posted.push(msg));
  d.on('error', () => undefined);
  const writes = () => posted.filter((m): m is Write => m.t === 'write');
  return { d, posted, writes };
}

/** Whether `d.write(bytes)` called back within the current turn and its microtasks (true), or not yet (false). */
async function calledBackAtOnce(d: PortDuplex, bytes: number): Promise<boolean | Error> {
  let done: boolean | Error = false;
  d.write(Buffer.alloc(bytes, 'x'), (err) => (done = err ?? true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('PortDuplex (a relayed connection, the worker\'s side)', () => {
  test('writes within the window are done at once, and ask for no answer', async () => {
    const { d, writes } = duplex();
    expect(await calledBackAtOnce(d, 1024)).toBe(true);
    expect(await calledBackAtOnce(d, 1024)).toBe(true);
    expect(writes().map((w) => w.answer)).toEqual([undefined, undefined]);
    expect(writes().map((w) => w.chunk.byteLength)).toEqual([1024, 1024]);
  });

  test('a write past the window waits, unsent, for the main thread\'s answer; an answer covers every write before it', async () => {
    const { d, writes } = duplex();
    const half = BRIDGE_WINDOW / 2;
    expect(await calledBackAtOnce(d, half)).toBe(true);
    expect(await calledBackAtOnce(d, half)).toBe(true);
    let third: boolean | Error = false;
    d.write(Buffer.alloc(16), (err) => (third = err ?? true));
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false); // the main thread has not written the window yet: backpressure
    expect(writes()).toHaveLength(2); // and the write waits here, not in the main thread
    d.written(writes()[1].seq); // the main thread wrote both halves
    await new Promise((r) => setImmediate(r));
    expect(writes()).toHaveLength(3);
    expect(third).toBe(true);
    expect(await calledBackAtOnce(d, half)).toBe(true); // the window is free again
  });

  test('many tiny writes the client never reads hold a bounded number of writes in the main thread, not the window in 17-byte writes', async () => {
    const { d, writes } = duplex();
    let calledBack = 0;
    // An async @OnMessage's replies to pipelined messages: one write each, each awaited by nobody.
    for (let i = 0; i < 20000; i++) {
      d.write(Buffer.alloc(17, 'r'), () => calledBack++);
      await Promise.resolve();
    }
    await new Promise((r) => setImmediate(r));
    // Each write costs the main thread ~650 bytes beyond its own: it counts at least 1 KiB against the window.
    expect(writes().length).toBeLessThanOrEqual(BRIDGE_WINDOW / 1024);
    expect(writes().length).toBeGreaterThan(16); // still many in flight: pipelining is not serialised
    expect(calledBack).toBeLessThan(20000); // the rest wait here, as backpressure
    d.written(writes()[writes().length - 1].seq); // the main thread wrote them all
    await new Promise((r) => setImmediate(r));
    expect(writes().length).toBeGreaterThan(BRIDGE_WINDOW / 1024); // and more follow
  });

  test('an answer that comes late (the client read late) never leaves the window full of early writes with no answer asked (hostile run: the connection stalled for good)', async () => {
    const { d, posted } = duplex();
    // The main thread as remote-slot.ts: it answers a write that asks, or once half the window's bytes are
    // written since its last answer.
    let unreported = 0;
    const asked = () => {
      const seqs: number[] = [];
      for (const msg of posted.splice(0)) {
        if (msg.t !== 'write') continue;
        unreported += msg.chunk.byteLength;
        if (!msg.answer && unreported < BRIDGE_WINDOW / 2) continue;
        unreported = 0;
        seqs.push(msg.seq);
      }
      return seqs;
    };
    const line = Buffer.alloc(306, 'x'); // a pushed line: 306 bytes, counted as 1 KiB against the window
    for (let i = 0; i < BRIDGE_WINDOW / 1024; i++) d.write(line); // the window fills; one answer was asked, at half
    const late = asked();
    expect(late).toHaveLength(1);
    for (const seq of late) d.written(seq); // the client read: that answer comes only now
    // from now on the main thread answers whatever it is asked, at once; a pusher writes while write() says
    // true, else awaits 'drain'
    let written = 0;
    for (; written < 2000; written++) {
      if (d.writableNeedDrain) {
        const drained = new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 1000);
          d.once('drain', () => (clearTimeout(timer), resolve(true)));
        });
        for (let turn = 0; turn < 20 && d.writableNeedDrain; turn++) {
          for (const seq of asked()) d.written(seq);
          await new Promise((r) => setImmediate(r));
        }
        if (!(await drained)) break;
      }
      d.write(line);
      for (const seq of asked()) d.written(seq);
    }
    expect(written).toBe(2000);
  });

  test('writes queued together (a writev) cross in slices within the window, however many there are', async () => {
    const { d, writes } = duplex();
    d.cork();
    for (let i = 0; i < 64; i++) d.write(Buffer.alloc(64 * 1024, i)); // 4 MiB the handler did not await
    let done = false;
    d.write(Buffer.from('end'), () => (done = true));
    d.uncork();
    await new Promise((r) => setImmediate(r));
    const inFlight = () => writes().reduce((n, w) => n + w.chunk.byteLength, 0);
    expect(inFlight()).toBeLessThanOrEqual(BRIDGE_WINDOW + BRIDGE_WINDOW / 2);
    // The main thread answers what it has written, as it does when a write asks for it; the rest follows.
    for (let round = 0; !done && round < 100; round++) {
      const asked = writes().filter((w) => w.answer).pop();
      expect(asked).toBeDefined();
      d.written(asked!.seq);
      await new Promise((r) => setImmediate(r));
    }
    expect(done).toBe(true);
    const bytes = Buffer.concat(writes().map((w) => Buffer.from(w.chunk)));
    expect(bytes.length).toBe(64 * 64 * 1024 + 3);
    for (let i = 0; i < 64; i++) expect(bytes[i * 64 * 1024]).toBe(i); // in order
    expect(bytes.subarray(-3).toString()).toBe('end');
  });

  test('one write larger than half the window crosses in slices of half the window, in order', async () => {
    const { d, writes } = duplex();
    const mine = Buffer.alloc(BRIDGE_WINDOW * 2);
    for (let i = 0; i < mine.length; i++) mine[i] = i % 251;
    let done = false;
    d.write(mine, () => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(writes().map((w) => w.chunk.byteLength)).toEqual([BRIDGE_WINDOW / 2, BRIDGE_WINDOW / 2]); // the window is full
    d.written(writes()[1].seq);
    await new Promise((r) => setImmediate(r));
    d.written(writes()[3].seq);
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(true);
    mine.fill(0); // after its callback, as with a socket, the caller may reuse its buffer
    const bytes = Buffer.concat(writes().map((w) => Buffer.from(w.chunk)));
    expect(bytes.length).toBe(BRIDGE_WINDOW * 2);
    expect(bytes.every((b, i) => b === i % 251)).toBe(true);
  });

  test('a write done early that the main thread then fails to write fails the connection with its error and code', async () => {
    const { d, writes } = duplex();
    const errors: Error[] = [];
    d.on('error', (err) => errors.push(err));
    expect(await calledBackAtOnce(d, 100)).toBe(true);
    d.written(writes()[0].seq, { name: 'Error', message: 'read ECONNRESET', code: 'ECONNRESET' });
    await new Promise((r) => setImmediate(r));
    expect(d.destroyed).toBe(true);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });

  test('a failure answered for a later message does not release the writes before it as written', async () => {
    const { d, writes } = duplex();
    const results: Array<string> = [];
    d.write(Buffer.alloc(BRIDGE_WINDOW), (err) => results.push(err ? 'first failed' : 'first ok')); // fills the window: done early
    d.write(Buffer.alloc(16), (err) => results.push(err ? `second ${(err as NodeJS.ErrnoException).code}` : 'second ok')); // waits
    await new Promise((r) => setImmediate(r));
    expect(results).toEqual(['first ok']);
    // The socket is gone: the main thread refuses a later message at once, before the second write's own answer.
    d.written(writes()[1].seq + 1, { name: 'Error', message: 'closed', code: 'EPIPE' });
    await new Promise((r) => setImmediate(r));
    expect(d.destroyed).toBe(true);
    expect(results).toEqual(['first ok', 'second EPIPE']); // failed with the connection, not released as written
  });

  test('the end waits for its answer, which comes after the writes before it', async () => {
    const { d, posted, writes } = duplex();
    d.write(Buffer.from('last line\n'));
    let ended = false;
    d.end(() => (ended = true));
    await new Promise((r) => setImmediate(r));
    const end = posted.find((m) => m.t === 'end') as FromWorker & { t: 'end'; seq: number };
    expect(end.seq).toBeGreaterThan(writes()[0].seq);
    expect(ended).toBe(false);
    d.written(end.seq);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(true);
  });

  test('setNoDelay() before any write travels with the first write; after writes it goes at once', async () => {
    const { d, posted, writes } = duplex();
    d.setNoDelay(true);
    expect(posted).toHaveLength(0); // no message of its own for a connection that has written nothing
    d.write(Buffer.from('a'));
    expect(writes()[0].noDelay).toBe(true);
    d.write(Buffer.from('b'));
    expect(writes()[1].noDelay).toBeUndefined();
    d.setNoDelay(false);
    expect(writes()[2]).toMatchObject({ noDelay: false });
    expect(writes()[2].chunk.byteLength).toBe(0);
  });

  test('a write sent within the window is copied: the caller may reuse its buffer once it has called back', () => {
    const { d, writes } = duplex();
    const mine = Buffer.from('keep me');
    d.write(mine);
    mine.fill(0);
    expect(Buffer.from(writes()[0].chunk).toString()).toBe('keep me');
  });

  // Copied all at once, a writev of a handler's unawaited writes was held twice in the thread (15 MB a
  // connection, 2.7 GB for 100 connections whose clients left, in a hostile run): slices are copied as sent.
  test('writes queued beyond the window stay the caller\'s own buffers, copied a slice at a time as the window takes them', async () => {
    const { d, writes } = duplex();
    const theirs = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i));
    d.cork();
    for (const b of theirs) d.write(b);
    d.uncork(); // one writev of 2.5 MiB
    await new Promise((r) => setImmediate(r));
    const sent = () => writes().reduce((n, w) => n + w.chunk.byteLength, 0);
    expect(sent()).toBe(BRIDGE_WINDOW); // what the window takes, copied; the rest waits uncopied
    theirs[39].fill(0xee); // not yet sent: what goes later is what the buffer holds then, as a socket would send
    while (sent() < 40 * 64 * 1024) {
      d.written(writes()[writes().length - 1].seq);
      await new Promise((r) => setImmediate(r));
    }
    const bytes = Buffer.concat(writes().map((w) => Buffer.from(w.chunk)));
    for (let i = 0; i < 39; i++) expect(bytes.subarray(i * 65536, (i + 1) * 65536).every((b) => b === i)).toBe(true);
    expect(bytes.subarray(39 * 65536).every((b) => b === 0xee)).toBe(true);
  });
});

describe('PortDuplex under TLS (holdReadsWhileWriting)', () => {
  test('bytes from the client wait while a write is on its way, and go on, in order and with the end, a check phase after its callback', async () => {
    const { d } = duplex();
    d.holdReadsWhileWriting();
    const read: string[] = [];
    d.on('data', (b: Buffer) => read.push(b.toString()));
    d.on('end', () => read.push('<end>'));
    await new Promise((r) => process.nextTick(r)); // flowing from here on (as a TLS socket's reader is)
    d.feed(Buffer.from('a'));
    expect(read).toEqual(['a']); // no write on its way: handed on at once
    let calledBack = false;
    d.write(Buffer.from('reply'), () => {
      calledBack = true;
      d.feed(Buffer.from('c')); // as the client's bytes may come while the write's completion is still queued
      d.eof();
    });
    d.feed(Buffer.from('b'));
    expect(read).toEqual(['a']); // held: Node's TLS over this duplex must not write again before the write completes
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(calledBack).toBe(true); // done early, within the window
    expect(read).toEqual(['a', 'b', 'c', '<end>']);
  });

  test('without it (no TLS here), bytes are handed on at once, writes or not', async () => {
    const { d } = duplex();
    const read: string[] = [];
    d.on('data', (b: Buffer) => read.push(b.toString()));
    await new Promise((r) => process.nextTick(r));
    d.write(Buffer.from('reply'));
    d.feed(Buffer.from('b'));
    expect(read).toEqual(['b']);
  });
});
