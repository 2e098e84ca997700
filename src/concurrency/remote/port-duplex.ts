import { Duplex } from 'node:stream';
import type { FromWorker } from './protocol';
import { BRIDGE_WINDOW, deserializeError, SerializedError } from './protocol';

/** The code of the main thread's answer to a write on a connection it has closed (remote-slot.ts, closedError). */
const CLOSED_BY_MAIN = 'ERR_STREAM_DESTROYED';

/** A write of nothing: carries a setNoDelay() made after writes. */
const EMPTY = new Uint8Array(0);

/** The client's end, held behind bytes that wait (holdReadsWhileWriting). */
const EOF = Buffer.alloc(0);

/** Consumed bytes acknowledged in one message, at least (unless the buffer has drained). */
const ACK_BATCH = 64 * 1024;

/**
 * The worker's side of a connection the main thread owns: a Duplex whose reads are the bytes the main
 * thread forwards and whose writes go to the main thread, which hands them to the kernel.
 * Flow control both ways: the main thread sends at most BRIDGE_WINDOW bytes that this side has not
 * acknowledged, and this side acknowledges bytes as they are consumed from its buffer, so a handler
 * that does not read (or whose event loop is blocked) holds the client back. Acks are batched, and only
 * sent once half the window is outstanding: small ping-pong exchanges cost no extra message.
 *
 * Writes are done, as a socket's are once its kernel buffer takes them, as soon as they are sent while the
 * bytes the main thread has not answered for stay within BRIDGE_WINDOW; past it, a write is done when the
 * main thread has written it (so `await wfile.write()` is backpressure, and a client that does not read
 * holds at most the window in the main thread). A write done early that then fails (the client reset)
 * fails the connection with its error, as a socket's later error does: the next read or write sees it.
 * Waiting for the main thread's answer to every write cost a round trip between threads per write:
 * `@Threading` streaming ran at 0.26x raw net on Node 20.
 */
export class PortDuplex extends Duplex {
  private seq = 0;
  /**
   * Writes (and the end) the main thread has not answered yet, by seq, with their size and, unless they were
   * done early, their callback; made at the first (an idle connection has none).
   */
  private pending: Map<number, { bytes: number; size: number; done?: (err?: Error | null) => void }> | undefined;
  /** Bytes of the writes in `pending`. */
  private unanswered = 0;
  /** The seq of the latest write sent with `answer` whose answer has not come (0: none outstanding). */
  private asking = 0;
  /** A write not yet sent whole: its chunks (the caller's), where the next slice starts, the bytes left, and its callback. */
  private rest: Unsent | undefined;
  /** setNoDelay()'s last value, until the next write takes it to the main thread. */
  private noDelay: boolean | undefined;
  /** Bytes received from the main thread, and how many of them have been acknowledged. */
  private received = 0;
  private acked = 0;
  private sent = 0;
  /**
   * holdReadsWhileWriting(): bytes from the client that wait until no write of this side's reader is on its
   * way, and their size; `writing` counts those writes, each until a check phase after its callback.
   */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private writing = 0;

  constructor(
    private readonly id: number,
    private readonly post: (msg: FromWorker, transfer?: ArrayBuffer[]) => void,
  ) {
    super({ allowHalfOpen: true });
  }

  /** Bytes received from the client so far, and bytes written towards it (as net.Socket's fields). */
  get bytesRead(): number {
    return this.received;
  }

  get bytesWritten(): number {
    return this.sent;
  }

  /**
   * As net.Socket's: TCP_NODELAY on (true, the default) or off for the connection, set by the main thread on
   * the socket it owns (a no-op there for a Unix socket). A handler's `disableNagleAlgorithm` and the
   * decorators' default reach the real socket so. Before the first write the setting waits to go with it (it
   * matters to writes only): a message of its own cost every connection a wake-up of the main thread. After
   * writes it goes at once, as a socket's would push out a tail that Nagle's algorithm holds. Returns this.
   */
  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    if (this.seq > 0 && !this.destroyed && !this.writableEnded) this.post({ t: 'write', id: this.id, seq: ++this.seq, chunk: EMPTY, noDelay: this.takeNoDelay() });
    return this;
  }

  private takeNoDelay(): boolean | undefined {
    const noDelay = this.noDelay;
    this.noDelay = undefined;
    return noDelay;
  }

  /**
   * For Node's TLS over this duplex (a relayed connection whose TLS this worker terminates): the client's
   * bytes are handed on only while no write is on its way. Node's JSStreamSocket, which carries TLS over a
   * JS stream, takes one write at a time, until a check phase after the write's callback; TLS that answers
   * what it reads at once (a renegotiation's handshake, a KeyUpdate) wrote again within that time, Node
   * asserted (ERR_INTERNAL_ASSERTION, Node 20 and 22) and the worker died with every connection it served
   * (hostile-client run: one client renegotiating TLS 1.2). The assertion is raised inside Node's native
   * callback, where no try/catch of the caller sees it, so it is kept from happening.
   */
  holdReadsWhileWriting(): void {
    this.held ??= [];
  }

  /** Bytes from the client. */
  feed(chunk: Uint8Array): void {
    this.received += chunk.byteLength;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.held && (this.writing > 0 || this.held.length > 0)) {
      this.held.push(bytes);
      this.heldBytes += bytes.byteLength;
      return;
    }
    this.push(bytes);
    this.acknowledge(); // a flowing stream may have passed them on at once
  }

  /** The client closed its side; with `error`, the connection failed (a reset): reads and writes fail with it. */
  eof(error?: SerializedError): void {
    if (error) this.destroy(deserializeError(error));
    else if (this.held && this.held.length > 0) this.held.push(EOF);
    else this.push(null);
  }

  /** Hands on held bytes (and the end) until a write goes out again. */
  private release(): void {
    const held = this.held!;
    while (held.length > 0 && this.writing === 0 && !this.destroyed) {
      const bytes = held.shift()!;
      if (bytes === EOF) {
        this.push(null);
        continue;
      }
      this.heldBytes -= bytes.byteLength;
      this.push(bytes);
    }
    this.acknowledge();
  }

  /**
   * The main thread's answer to a write or to the end. Without `error`: `seq` and every write before it are
   * written (the main thread answers writes done early together; the socket calls its writes back in order).
   * With `error`: `seq` alone failed (a failure may be answered before writes queued ahead of it are);
   * a write that was waiting for it fails with it, else (done early) the connection does.
   */
  written(seq: number, error?: SerializedError): void {
    const pending = this.pending;
    if (!pending) return;
    if (error) {
      // The main thread had closed the connection already (close(), shutdownTimeout, a limit): a write on its
      // way then is not the handler's failure. It closes this side as that close would have: writes still
      // waiting fail, 'close' comes, and no 'error' is emitted (a socket closed under a write says nothing).
      if (error.code === CLOSED_BY_MAIN) return void this.destroy();
      const failed = deserializeError(error);
      const entry = pending.get(seq);
      if (entry) {
        pending.delete(seq);
        this.unanswered -= entry.bytes;
        // Its bytes never reached the client: bytesWritten counts what did, as a socket's delivered bytes do
        // (a client gone before a @Finish's goodbye was a health check everywhere but here: hostile re-check).
        this.sent -= entry.size;
        if (entry.done) return entry.done(failed);
      }
      return void this.destroy(failed); // as a socket's later error: the next read or write sees it
    }
    if (seq >= this.asking) this.asking = 0;
    for (const [at, entry] of pending) {
      if (at > seq) break;
      pending.delete(at);
      this.unanswered -= entry.bytes;
      entry.done?.(null);
    }
    this.sendRest();
  }

  override _read(): void {
    // Bytes arrive when the main thread sends them; acknowledge() is what lets it send more.
  }

  override read(size?: number): any {
    const chunk = super.read(size);
    this.acknowledge();
    return chunk;
  }

  /** Tells the main thread how many more bytes have left this buffer, when it is worth a message. */
  private acknowledge(): void {
    if (this.received - this.acked < BRIDGE_WINDOW / 2) return; // far from the window: no need yet
    const consumed = this.received - this.heldBytes - this.readableLength;
    const bytes = consumed - this.acked;
    if (bytes === 0 || (bytes < ACK_BATCH && this.readableLength > 0)) return;
    this.acked = consumed;
    this.post({ t: 'ack', id: this.id, bytes });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.send([chunk], callback);
  }

  /**
   * Writes queued together (corked, or waiting behind a write in flight) cross as one message and reach
   * the kernel in one write: a TLS socket over this one writes a handshake flight as several records, and
   * written one by one, with Nagle's algorithm on, the client's delayed ACK would hold the second for 40 ms.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.send(chunks.map(({ chunk }) => chunk), callback);
  }

  /**
   * Sends the bytes of `chunks` in slices copied as the window takes them (nextSlice; each transferred);
   * `callback` once the last is sent within the window (done early) or written by the main thread. What the
   * window cannot take yet stays here (`rest`), uncopied, so many writes queued together (a writev of a
   * handler's unawaited writes) never cross at once, and are never held twice: the main thread holds at most
   * the window and one slice, and this side the caller's chunks until each is copied. Copied all at once,
   * 100 connections whose handlers wrote 15 MB each unawaited held 2.7 GB in their threads (hostile run).
   * As with a socket, the caller's buffers are read until the write's callback.
   */
  private send(chunks: readonly Uint8Array[], callback: (err?: Error | null) => void): void {
    if (this.held) callback = this.writingUntilChecked(callback);
    let left = 0;
    for (const chunk of chunks) left += chunk.byteLength;
    this.rest = { chunks, chunk: 0, from: 0, left, callback };
    this.sendRest();
  }

  /** Sends the slices of `rest` that the window has room for. */
  private sendRest(): void {
    const rest = this.rest;
    if (!rest) return;
    while (this.unanswered < BRIDGE_WINDOW) {
      const chunk = nextSlice(rest);
      const size = chunk.byteLength;
      // The window bounds what the main thread holds, and a write queued there costs more than its bytes.
      const cost = Math.max(size, WRITE_COST_MIN);
      const last = rest.left === 0;
      const seq = ++this.seq;
      const early = last && this.unanswered + cost <= BRIDGE_WINDOW;
      const before = this.unanswered;
      this.unanswered += cost;
      this.sent += size;
      (this.pending ??= new Map()).set(seq, last && !early ? { bytes: cost, size, done: rest.callback } : { bytes: cost, size });
      const msg: FromWorker & { t: 'write' } = { t: 'write', id: this.id, seq, chunk };
      // The main thread answers writes done early together: this side asks for that answer with the write that
      // takes the window past its half (by cost, which the main thread cannot see: counted by bytes there,
      // 256 writes of 64 bytes filled the window and were never answered, and the connection stalled for
      // good), and for a write it waits for (its callback, or room for the rest), answered once written.
      if (!early && (last || this.unanswered >= BRIDGE_WINDOW)) msg.answer = true;
      else if (before < BRIDGE_WINDOW / 2 && this.unanswered >= BRIDGE_WINDOW / 2) msg.answer = true;
      // Past half the window, one answer is always on its way: asked only on the crossing, an answer that came
      // late (the client read late) left the window above half with none asked, and early writes filled it to
      // the brim, where the rest waited for an answer no one had asked for (hostile-client run).
      else if (this.asking === 0 && this.unanswered >= BRIDGE_WINDOW / 2) msg.answer = true;
      if (msg.answer) this.asking = seq;
      if (this.noDelay !== undefined) msg.noDelay = this.takeNoDelay();
      this.post(msg, [chunk.buffer as ArrayBuffer]);
      if (last) {
        this.rest = undefined;
        if (early) rest.callback();
        return;
      }
    }
  }

  /** `callback`, counted in `writing` until a check phase after it has run (holdReadsWhileWriting). */
  private writingUntilChecked(callback: (err?: Error | null) => void): (err?: Error | null) => void {
    this.writing++;
    return (err) => {
      callback(err);
      // Queued after the check-phase callback Node's JSStreamSocket queues from within `callback` (finishWrite).
      setImmediate(() => {
        if (--this.writing === 0) this.release();
      });
    };
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.held) callback = this.writingUntilChecked(callback); // Node's JSStreamSocket takes no write while its end is on its way either
    const seq = ++this.seq;
    (this.pending ??= new Map()).set(seq, { bytes: 0, size: 0, done: callback });
    this.post({ t: 'end', id: this.id, seq });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // A reset (eof with an error) fails the writes still waiting with that error, code and all.
    const gone = err ?? new Error('the connection closed');
    const pending = this.pending;
    const rest = this.rest;
    this.pending = undefined;
    this.rest = undefined;
    this.unanswered = 0;
    this.asking = 0;
    if (pending) for (const { done } of pending.values()) done?.(gone);
    rest?.callback(gone);
    callback(err);
  }
}

/**
 * What one write counts against the window at least, in bytes. The main thread holds a write its socket has
 * not taken as its bytes plus about 650 bytes (the chunk's object, the write request, the callback; measured
 * on Node 20): counted by bytes alone, a client that never read the replies of pipelined 17-byte messages held
 * some 15,000 writes, 7.5 MB, in the main thread per connection (hostile-client run). Counted so, at most
 * BRIDGE_WINDOW / WRITE_COST_MIN (256) writes wait there per connection.
 */
const WRITE_COST_MIN = 1024;

/** A write's bytes not yet sent: the caller's chunks, the chunk and offset the next slice starts at, the bytes left. */
interface Unsent {
  readonly chunks: readonly Uint8Array[];
  chunk: number;
  from: number;
  left: number;
  readonly callback: (err?: Error | null) => void;
}

/**
 * The next slice of `rest`: its next bytes (at most half the bridge's window), copied into a buffer of their
 * own (its ArrayBuffer holds exactly them, so it can be transferred); empty for a write of nothing. Not
 * zero-filled first, as `new Uint8Array(size)` is: the copy sets every byte, and a write of 64 KiB cost twice
 * the memory traffic so.
 */
function nextSlice(rest: Unsent): Buffer {
  const slice = Buffer.allocUnsafeSlow(Math.min(rest.left, BRIDGE_WINDOW / 2));
  let at = 0;
  while (at < slice.length) {
    const chunk = rest.chunks[rest.chunk];
    const n = Math.min(chunk.byteLength - rest.from, slice.length - at);
    slice.set(n === chunk.byteLength ? chunk : chunk.subarray(rest.from, rest.from + n), at);
    at += n;
    rest.from += n;
    if (rest.from === chunk.byteLength) {
      rest.chunk++;
      rest.from = 0;
    }
  }
  rest.left -= slice.length;
  return slice;
}
