import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { RequestTimeoutError } from '../errors/errors';
import { messages } from '../errors/messages';

/**
 * The request's `wfile`: writes to a stream socket. Each `write()` resolves once the data has been handed
 * to the kernel (Python's `sendall`), so awaiting it is backpressure; it never writes partially.
 *
 * Writes the handler does not await still go out, in order, before the connection closes. One of them
 * that fails (the client reset; a write after end()) never becomes an unhandled rejection: the writer
 * keeps it, and once the handler is done the lifecycle ends the request with the first one the handler
 * never awaited (`throwUnobservedFailure`), so it reaches `@HandleError` like any other error of the
 * request. A failure the handler awaited, caught or chained, whenever it did, is the handler's to deal
 * with, and is not reported again.
 */
export class StreamWriter {
  private ended = false;
  /**
   * The writes that failed, in order, judged when the handler is done (throwUnobservedFailure): a handler may
   * await or catch one long after it failed. Each is a small record its promise marks when looked at (the promise
   * itself is not kept). At most MAX_FAILURES are kept; the first one past them is `unkept`, reported when every
   * kept one was looked at (a 64-write cap lost the 65th, never awaited: hostile re-check).
   */
  private failures: FailedWrite[] | undefined;
  private unkept: Error | undefined;
  /** What the latest write (`last`) failed with, once it has: flush() rejects with it. */
  private lastFailure: Error | undefined;
  /** Writes not settled yet, and who waits for them to be (finishWrites). */
  private pending = 0;
  /** The latest tracked write (writes settle in order): what flush() waits for. */
  private last: WritePromise<number> | undefined;
  private onIdle: (() => void) | undefined;
  /** Milliseconds a write may wait with none of the pending writes taken by the kernel (0: no bound). */
  private readonly stallMs: number;
  /** Writes the kernel took after waiting, counted so the stall check sees progress. */
  private writesDone = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  /** The RequestTimeoutError the connection was destroyed with when its writes stalled. */
  private stalled: Error | undefined;

  /**
   * @param sink the connection.
   * @param requestTimeout seconds a write may wait with no byte of it taken by a client that does not read,
   *   before the connection is destroyed and the write rejects with RequestTimeoutError (as Python's socket
   *   timeout bounds `sendall`, HAProxy's `timeout client` both directions); null or undefined: no bound.
   *   Progress is any byte the kernel takes (a write completed, or part of one).
   * @param timeoutSetting what the error calls that timeout, and tells to raise: default 'requestTimeout'.
   */
  constructor(private readonly sink: Duplex, requestTimeout?: number | null, private readonly timeoutSetting?: string) {
    this.stallMs = requestTimeout == null || !(requestTimeout < Infinity) ? 0 : Math.max(1, requestTimeout * 1000);
  }

  /** Writes all of `data`; resolves to its length in bytes once the kernel has it. */
  write(data: Buffer | Uint8Array | string): Promise<number> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.ended || this.sink.destroyed || this.sink.writableEnded) {
      const ended = this.ended || this.sink.writableEnded;
      // The server closed it (close(), shutdownTimeout): why, not the client's EPIPE (hostile run: counted and
      // reported as `wfile.write() on a closed connection`, the client's doing, in every mode).
      const err = (!ended && closedByServer(this.sink)) || closedForWriting(ended ? 'after wfile.end()' : 'on a closed connection');
      return this.track((_, reject) => reject(err));
    }
    // Usually the kernel takes a write on the spot (writeThrough calls back at once): then nothing can fail
    // later, and a plain resolved promise (one job when awaited) replaces the tracked one (a subclass, whose
    // await costs an extra thenable job).
    let calledBack = false;
    let early: Error | null | undefined;
    let settle: ((err?: Error | null) => void) | undefined;
    writeThrough(this.sink, bytes, (err) => {
      if (settle) return settle(err);
      calledBack = true;
      early = err;
    });
    if (calledBack && !early) {
      this.lastFailure = undefined; // the latest write went well: flush() has nothing to reject with
      return Promise.resolve(bytes.length);
    }
    if (!calledBack && this.stallMs > 0) this.watchStall();
    return this.track((resolve, reject) => {
      settle = (err) => {
        this.writesDone++;
        // A write cancelled by destroy() (writeThrough gives it what destroyed the connection): the stall is its reason,
        // or the server's close of the connection under it (close(), shutdownTimeout: a relayed thread's write waiting
        // for the main thread's answer failed as "the connection closed").
        if (err || this.stalled) reject(this.stalled ?? (err && closedByServer(this.sink)) ?? err!);
        else resolve(bytes.length);
      };
      if (calledBack) settle(early);
    });
  }

  /**
   * A write is waiting for the kernel: checks every `stallMs` that some waiting write completed meanwhile;
   * when none did, the client is not reading: the connection is destroyed with a RequestTimeoutError, which
   * the waiting writes reject with.
   */
  private watchStall(): void {
    if (this.stallTimer !== undefined) return;
    const seen = this.writesDone;
    const queued = kernelQueue(this.sink);
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.pending === 0 || this.sink.destroyed) return;
      if (this.writesDone !== seen || kernelQueue(this.sink) !== queued) return this.watchStall();
      this.stalled = writeStalled(new RequestTimeoutError(messages.writeTimeout(this.stallMs / 1000, unsentText(this.sink), this.timeoutSetting)));
      destroyUndelivered(this.sink, this.stalled);
    }, this.stallMs);
    this.stallTimer.unref?.();
  }

  /**
   * Writes each item in turn, as Python's `wfile.writelines(lines)` (no separators added); resolves to the bytes
   * written once the kernel has the last of them. Rejects as write() does.
   */
  writelines(lines: Iterable<Buffer | Uint8Array | string>): Promise<number> {
    // Tracked as a write is: left unawaited, its failure (a reset, an item the iterable threw) ends the request
    // through @HandleError, never as an unhandled rejection (hostile re-check: it took the server's process down).
    return this.track<number>((resolve, reject) => {
      (async () => {
        let total = 0;
        for (const line of lines) total += await this.write(line);
        return total;
      })().then(resolve, reject);
    }, false, true);
  }

  /**
   * Resolves once every write made so far has been taken by the kernel; rejects with the last one's failure.
   * Python's `wfile.flush()`: this `wfile` is unbuffered (Python's default `wbufsize = 0`), so there is nothing
   * to push, only writes still on their way to wait for. Resolves at once when none is. Left unawaited, its
   * failure ends the request as an unawaited write's does.
   */
  flush(): Promise<void> {
    // Every write and writelines() on its way now (a writelines() whose later items are not written yet included: it
    // waited for its first item only), then the latest write's failure, if it failed (it resolved: hostile re-checks).
    const waiting = [...this.inFlight];
    const outcome = (resolve: () => void, reject: (err: Error) => void) => {
      const failed = this.lastFailure;
      if (failed !== undefined) reject(failed);
      else resolve();
    };
    if (waiting.length === 0) return this.lastFailure === undefined ? Promise.resolve() : this.track<void>(outcome, false);
    // The tracked promise itself, not one derived from it: a derived one left unawaited would reject unhandled.
    return this.track<void>((resolve, reject) => void Promise.allSettled(waiting).then(() => outcome(resolve, reject)), false);
  }

  /** Tracked writes and writelines() not settled yet: what flush() waits for. */
  private readonly inFlight = new Set<Promise<unknown>>();

  /** Half-closes the connection (FIN) after everything written; the client reads EOF. Idempotent. */
  end(): Promise<void> {
    if (this.ended || this.sink.writableEnded || this.sink.destroyed) {
      this.ended = true;
      return Promise.resolve();
    }
    this.ended = true;
    return new Promise((resolve) => this.sink.end(() => resolve()));
  }

  /** True once the connection can take no more writes (ended or destroyed). */
  get closed(): boolean {
    return this.ended || this.sink.destroyed;
  }

  /**
   * @internal Called by the lifecycle once the handler has returned: waits for the writes still on their
   * way (at most FLUSH_LIMIT_MS: a client that stops reading must not hold the request), then throws the
   * failure of a write the handler did not await, if one failed, so that it ends the request through
   * handleError. Nothing pending (the usual case): no promise, it returns or throws at once.
   */
  finishWrites(): void | Promise<void> {
    if (this.pending === 0) return this.throwUnobservedFailure();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.onIdle = undefined;
        try {
          this.throwUnobservedFailure();
          resolve();
        } catch (err) {
          reject(err);
        }
      };
      const timer = setTimeout(done, FLUSH_LIMIT_MS);
      this.onIdle = done;
    });
  }

  /** Throws the first failed write nobody awaited, caught or chained (then() never called on it), if any. */
  private throwUnobservedFailure(): void {
    const failures = this.failures;
    const unkept = this.unkept;
    this.failures = undefined;
    this.unkept = undefined;
    this.failuresFull = false;
    const unobserved = failures?.find((failure) => !failure.observed)?.error ?? unkept;
    if (unobserved) throw unobserved;
  }

  /**
   * A write's promise, marked as handled, that keeps its failure for the handler's end, when it counts unless
   * somebody asked for its outcome by then (keepFailure): judged when it failed, a write that failed at once
   * (after `end()`, on a closed connection) and that the handler awaited after another await still ended the
   * request through @HandleError. `flushWaits`: flush() waits for it (writes, and writelines()).
   */
  private track<T = number>(executor: (resolve: (value: T) => void, reject: (err: Error) => void) => void, isWrite = true, flushWaits = isWrite): Promise<T> {
    const write = new WritePromise<T>(executor);
    if (isWrite) {
      this.last = write as unknown as WritePromise<number>;
      this.lastFailure = undefined;
    }
    if (flushWaits) this.inFlight.add(write);
    this.pending++;
    Promise.prototype.then.call(write, () => {
      if (flushWaits) this.inFlight.delete(write);
      if (isWrite && this.last === (write as unknown)) this.lastFailure = undefined;
      this.settled();
    }, (error: Error) => {
      if (flushWaits) this.inFlight.delete(write);
      if (isWrite && this.last === (write as unknown)) this.lastFailure = error;
      const failed: FailedWrite = { observed: write.observed, error };
      write.failed = failed;
      this.keepFailure(failed);
      this.settled();
    });
    return write;
  }

  /**
   * Keeps a failed write for the handler's end. A handler writing on in a loop to a connection gone: at MAX_FAILURES
   * the ones already looked at make room, once; when that frees less than half, no more are kept (the first one
   * past them is `unkept`). Re-filtering the full list on every failure took 19 s of event loop for 75,000 writes.
   */
  private keepFailure(failed: FailedWrite): void {
    if (this.failuresFull) {
      this.unkept ??= failed.error;
      return;
    }
    const failures = (this.failures ??= []);
    if (failures.length >= MAX_FAILURES) {
      this.failures = failures.filter((f) => !f.observed);
      this.failuresFull = this.failures.length >= MAX_FAILURES / 2;
      if (this.failuresFull) {
        this.unkept ??= failed.error;
        return;
      }
    }
    this.failures!.push(failed);
  }

  /** keepFailure() keeps no more. */
  private failuresFull = false;

  private readonly settled = (): void => {
    if (--this.pending !== 0) return;
    if (this.stallTimer !== undefined) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    this.onIdle?.();
  };
}

/**
 * A write's promise that knows whether anyone asked for its outcome (`then`, `catch`, `finally` and
 * `await` all go through `then`). Derived promises are plain ones.
 */
export class WritePromise<T> extends Promise<T> {
  observed = false;
  /** @internal A StreamWriter's record of this write's failure, marked too when someone asks for the outcome. */
  failed: FailedWrite | undefined;

  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  override then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.observed = true;
    if (this.failed !== undefined) this.failed.observed = true;
    return super.then(onFulfilled, onRejected);
  }
}

/** The `code` of the RequestTimeoutError that ends a connection whose client took no byte of a write for requestTimeout. */
export const WRITE_STALLED = 'ERR_SOCKSERVE_WRITE_STALLED';

/** `err` marked as a stalled write's: a relayed connection's main-thread side then resets the client instead of flushing to it. */
export function writeStalled<E extends Error>(err: E): E {
  return Object.assign(err, { code: WRITE_STALLED });
}

/**
 * Bytes libuv still has to hand to the kernel for `sink` (its handle's `writeQueueSize`, which a partial write
 * lowers; a TLS socket's is its TCP socket's), or undefined where there is no such handle (a relayed
 * connection, whose writes are sliced small anyway): a write the client takes slowly is progress, not a stall.
 */
export function kernelQueue(sink: Duplex): number | undefined {
  const socket = sink as Duplex & { _handle?: { writeQueueSize?: number } | null; _parent?: { _handle?: { writeQueueSize?: number } | null } | null };
  return (socket._parent?._handle ?? socket._handle)?.writeQueueSize;
}

/** On a socket sockserve destroyed with output still unsent (symbol-keyed): the bytes of it that left. */
const DELIVERED = Symbol('sockserve.delivered');
type Delivered = { [DELIVERED]?: number };

/**
 * The bytes written to `sink` that never left, in words for an error message. Node's `writableLength` counts a
 * write libuv has partly sent as wholly unsent, and `bytesWritten` counts every byte given to write() until the
 * stream drops what it still buffers (a connection cut short counted up to a megabyte its client never got, or
 * the reverse: new-user run). On a plain TCP or Unix socket the count is exact ("4096 bytes unsent"): given,
 * less what the kernel took. Elsewhere it is an upper bound ("at most 4096 bytes unsent"): over TLS what the TLS
 * socket still holds plus the records its TCP socket still queues, on a connection relayed to a thread what the
 * thread has not heard was written (the server's process wrote some of it to the kernel meanwhile).
 * `held`: bytes sockserve held back and drops with the connection (@OnMessage's replies behind a full buffer).
 */
export function unsentText(sink: Duplex, held = 0): string {
  const sent = kernelTook(sink);
  if (sent !== undefined) return `${Math.max(0, ((sink as { bytesWritten?: number }).bytesWritten ?? 0) - sent) + held} bytes unsent`;
  const encrypted = (sink as { encrypted?: boolean }).encrypted === true;
  return `at most ${sink.writableLength + (encrypted ? kernelQueue(sink) ?? 0 : 0) + held} bytes unsent`;
}

/** The bytes the kernel took from a plain socket (undefined elsewhere): dispatched to libuv, less what it still queues. */
function kernelTook(sink: Duplex): number | undefined {
  const socket = sink as Duplex & { _bytesDispatched?: number; encrypted?: boolean; _parent?: unknown };
  const queued = kernelQueue(sink);
  if (socket.encrypted || socket._parent || typeof socket._bytesDispatched !== 'number' || typeof queued !== 'number') return undefined;
  return Math.max(0, socket._bytesDispatched - queued);
}

/**
 * Destroys `sink` with `error`, first noting the bytes the kernel took (it still sends them after the close),
 * so that the connection's `bytesOut` (deliveredBytes) counts those and not what never left. Only where that
 * count is exact (a plain socket); elsewhere bytesOut stays Node's `bytesWritten`.
 */
export function destroyUndelivered(sink: Duplex, error?: Error): void {
  const sent = sink.destroyed ? undefined : kernelTook(sink);
  if (sent !== undefined) (sink as Delivered)[DELIVERED] = sent;
  sink.destroy(error);
}

/** The bytes written on a socket that left it: what destroyUndelivered() found the kernel took, else Node's `bytesWritten`. */
export function deliveredBytes(socket: { bytesWritten?: number }): number {
  return (socket as Delivered)[DELIVERED] ?? socket.bytesWritten ?? 0;
}

/** On a connection the server closed under its request: why (markClosedByServer). */
const CLOSED_BY_SERVER = Symbol('sockserve.closedByServer');

/**
 * The server is closing `sink` under its request (close(), a worker's close): a write the handler makes after that
 * rejects with `reason` (closedByServer). The connection is destroyed without it, so its reads still see their end.
 */
export function markClosedByServer(sink: Duplex, reason: Error): void {
  (sink as Duplex & { [CLOSED_BY_SERVER]?: Error })[CLOSED_BY_SERVER] ??= reason;
}

/**
 * Why the server closed `sink`, when it did: its mark (markClosedByServer), or the RequestTimeoutError it was
 * destroyed with (shutdownTimeout abandoning the request, a stalled write; by name, so that one rebuilt in a worker
 * counts too). Undefined otherwise.
 */
export function closedByServer(sink: Duplex): Error | undefined {
  const marked = (sink as Duplex & { [CLOSED_BY_SERVER]?: Error })[CLOSED_BY_SERVER];
  if (marked) return marked;
  const errored = (sink as Duplex & { errored?: unknown }).errored;
  return errored instanceof Error && errored.name === 'RequestTimeoutError' ? errored : undefined;
}

/** How long the end of a request waits for writes still on their way before it goes on. */
const FLUSH_LIMIT_MS = 5000;

/** Failed writes a StreamWriter keeps for the handler's end (see track): a record each, a few dozen bytes. */
const MAX_FAILURES = 65536;

/** A failed write, as the StreamWriter keeps it for the handler's end: its error, and whether anyone looked. */
interface FailedWrite {
  observed: boolean;
  error: Error;
}

/**
 * Writes `bytes` to `sink` and calls `done` once: at once when the kernel took them all (usually, for a
 * small write, libuv hands it over on the spot and nothing stays queued, while Node would call back only
 * on a later tick), otherwise from the write callback, with its error if any.
 *
 * A write the kernel refused on the spot (the client's RST already arrived: ECONNRESET, EPIPE) also
 * leaves nothing queued, but Node reports it on a later tick: the stream is `errored` at once, not yet
 * `destroyed`, so `errored` is what tells the two apart and the failure reaches `done`.
 */
export function writeThrough(sink: Duplex, bytes: Uint8Array, done: (err?: Error | null) => void): void {
  let settled = false;
  let cancel: ((err: Error) => void) | undefined;
  sink.write(bytes, (err) => {
    if (settled) return;
    settled = true;
    if (cancel) pendingWritesOf(sink).delete(cancel);
    // Node 20 calls a write cancelled by destroy() back without an error, as if the kernel had the bytes (a reply
    // cut at shutdownTimeout was neither an error to its handler nor reported: hostile run). Its error is what
    // destroyed the connection (shutdownTimeout's RequestTimeoutError, a reset), or, destroyed with none
    // (close()), the ECANCELED that Node 22+ give such a write, so a handler sees the same error on every line.
    if (!err && sink.destroyed) err = sink.errored ?? cancelledWrite();
    done(err && cancelledBy(sink, err));
  });
  if (!settled && sink.writableLength === 0 && !sink.destroyed && !sink.errored) {
    settled = true;
    done();
  }
  if (settled) return;
  // Waiting: settled by the stream's error too, should its callback never come. Node's TLS layer drops it when a
  // reset was read as the client's end (tls-terminate's endStuckWritesAfterEnd then destroys the socket with
  // ECONNRESET, and neither the callback nor 'close' follows: hostile run, a request held for good). Not by 'close':
  // a relayed connection's writes are called back after it, with the reset that ended it, not ECANCELED.
  cancel = (err) => {
    if (settled) return;
    settled = true;
    done(cancelledBy(sink, err));
  };
  pendingWritesOf(sink).add(cancel);
}

const PENDING_WRITES = Symbol('sockserve.pendingWrites');
type WithPendingWrites = Duplex & { [PENDING_WRITES]?: Set<(err: Error) => void> };

/** The writes waiting on `sink` (writeThrough), each failed by the stream's 'error' (one listener per stream). */
function pendingWritesOf(sink: Duplex): Set<(err: Error) => void> {
  const marked = sink as WithPendingWrites;
  let pending = marked[PENDING_WRITES];
  if (pending) return pending;
  const waiting = (pending = marked[PENDING_WRITES] = new Set());
  sink.on('error', (err: Error) => {
    for (const cancel of [...waiting]) cancel(err);
    waiting.clear();
  });
  return pending;
}

/**
 * The error a failed write reports: the stream's own when the write was only cancelled because of it.
 * From Node 22, a reset that destroys the socket (read ECONNRESET) makes libuv cancel the write still in
 * progress, and its callback gets ECANCELED (Node 20 calls it back without an error): the handler and
 * `@HandleError` see the cause, the client's reset, as Python's `sendall` raises it.
 */
function cancelledBy(sink: Duplex, err: Error): Error {
  return (err as NodeJS.ErrnoException).code === 'ECANCELED' && sink.errored ? sink.errored : err;
}

/** A datagram request's `wfile`: collects writes; the server sends them as one datagram at finish. */
export class BufferWriter {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private sealed = false;

  /**
   * Appends a copy of `data` (strings as UTF-8); resolves to its length in bytes at once. Once the reply has
   * been taken (the handler returned) it rejects, code `ERR_STREAM_WRITE_AFTER_END` as Node's streams say:
   * the bytes would never be sent. Not awaited, that rejection is dropped, never an unhandled one.
   */
  write(data: Buffer | Uint8Array | string): Promise<number> {
    if (this.sealed) {
      const late = Promise.reject(Object.assign(new Error(messages.datagramWriteAfterReply), { code: 'ERR_STREAM_WRITE_AFTER_END' }));
      late.catch(() => undefined);
      return late;
    }
    // a copy: the caller may reuse its buffer, as with Python's BytesIO
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    this.chunks.push(bytes);
    this.bytes += bytes.length;
    return Promise.resolve(bytes.length);
  }

  /** Nothing to do: the reply is sent when the request finishes. Resolves at once. */
  end(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Appends each item in turn (Python's `writelines`, no separators added); resolves to the bytes appended. Rejects
   * as write() does once the reply has gone, or with what the iterable threw; not awaited, that rejection is
   * dropped, never an unhandled one.
   */
  writelines(lines: Iterable<Buffer | Uint8Array | string>): Promise<number> {
    let total = 0;
    try {
      for (const line of lines) {
        if (this.sealed) return this.write(line);
        total += typeof line === 'string' ? Buffer.byteLength(line) : line.length;
        void this.write(line);
      }
    } catch (err) {
      const failed = Promise.reject(err);
      failed.catch(() => undefined);
      return failed;
    }
    return Promise.resolve(total);
  }

  /** Nothing to push: the reply is sent as one datagram when the request finishes (Python's `BytesIO.flush()`). Resolves at once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Everything written so far (Python's `BytesIO.getvalue()`). */
  getValue(): Buffer {
    // one write is already a private copy: no second one
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.bytes;
  }

  /** Whether write() was called at all: an empty write is a reply too (an empty datagram, as Python sends). */
  get written(): boolean {
    return this.chunks.length > 0;
  }

  /** The handler has finished and its reply is being taken: later writes reject (they would be lost). Idempotent. */
  seal(): void {
    this.sealed = true;
  }

  /** Drops what was written and seals: no reply is owed (the request's `@Setup` threw, as Python's finish() then never sends). */
  discard(): void {
    this.chunks.length = 0;
    this.bytes = 0;
    this.sealed = true;
  }

  /** Whether seal() has been called: the reply has been taken, and nothing written now would be sent. */
  get isSealed(): boolean {
    return this.sealed;
  }
}

/** What Node 22+ calls back a write with when destroy() cancels it: libuv's ECANCELED, as a `write` errno error. */
function cancelledWrite(): Error {
  return Object.assign(new Error('write ECANCELED'), { errno: -constants.errno.ECANCELED, code: 'ECANCELED', syscall: 'write' });
}

/** The error of a write that the connection could not take: it was ended, or closed. */
function closedForWriting(reason: string): Error {
  return Object.assign(new Error(`wfile.write() ${reason}: the connection is closed for writing.`), { code: 'EPIPE' });
}
