import type { Duplex } from 'node:stream';
import * as timers from 'node:timers';
import { edgeMessages } from '../errors/edge.messages';
import { LineTooLongError, RequestTimeoutError } from '../errors/errors';
import { messages } from '../errors/messages';
import { acceptedAt, takeHeldSince } from './connection-stamps';
import { ChunkQueue } from './chunk-queue';
import { afterPollPhase, microtask } from './event-loop';

/** The default line limit of `readline()`: 64 KiB, as asyncio's StreamReader. */
export const DEFAULT_LINE_LIMIT = 64 * 1024;
/**
 * At shutdown, how long a connection that has not sent a byte yet may take to send its first request: one
 * accepted moments before the listener closed has a request on its way (a load balancer connects, then
 * forwards it), and is served, not mistaken for an idle one. Measured from the rfile's creation.
 */
export const FIRST_REQUEST_GRACE_MS = 1000;

/**
 * Starts a connection's first-request grace at shutdown: `over()` runs once FIRST_REQUEST_GRACE_MS have passed
 * since `born` (a Date.now() time, in ms). Returns the timer, or undefined when the grace is already over.
 * The timer ends the grace itself: it may fire a moment before Date.now() says the grace is over (timers run on
 * another clock), and a grace still running then would have no timer left to end it. node:timers' own: under
 * jest.useFakeTimers() an idle in-memory connection never ended after sockserve/testing's shutdown() (the grace
 * is the server's wait, not the handler's). At most the grace itself: a clock set back since the accept (a
 * test's faked Date) made the wait huge (TimeoutOverflowWarning, and a timer that fired at once).
 */
export function startFirstRequestGrace(born: number, over: () => void): NodeJS.Timeout | undefined {
  const left = born + FIRST_REQUEST_GRACE_MS - Date.now();
  return left > 0 ? timers.setTimeout(over, Math.min(left, FIRST_REQUEST_GRACE_MS)) : undefined;
}
/** While this many bytes sit unread, the socket is paused: a fast sender cannot grow memory without bound. */
const HIGH_WATER = 256 * 1024;
const CR = 0x0d;

/** The second argument of `new StreamReader(source, options)`: its limits. Times in seconds. */
export interface ReaderOptions {
  /** Longest line, in bytes, `readline()` accepts without an explicit limit (LineTooLongError past it); default 65536 (64 KiB). */
  lineLimit?: number;
  /** Seconds a read may wait for data before it rejects with RequestTimeoutError; null: forever. */
  requestTimeout?: number | null;
  /** What that error calls `requestTimeout`, and tells to raise: default 'requestTimeout'; a classic handler's own `timeout` names itself. */
  timeoutSetting?: string;
  /**
   * Seconds a line (readline) or a body (read(n)) may take from its first byte before the read rejects with
   * RequestTimeoutError (slowloris); null or undefined: no bound. requestTimeout still bounds each wait.
   */
  lineTimeout?: number | null;
}

/**
 * The request's `rfile`: buffered reads over a stream socket (Python's `makefile('rb')`), pull-based, so
 * bytes are only taken from the kernel as the handler asks for them. A read returns what is there or
 * waits for more; at EOF it returns what is left, then empty buffers.
 *
 * Methods for the caller: readline(limit?), read(n?), read1(n?), readAll(), `for await (const line of rfile)`.
 * The server calls stopReading() on shutdown: from then on a read that finds nothing buffered, once the
 * socket has had a turn of the event loop to deliver what the kernel already holds, returns
 * EOF instead of waiting, so idle connections end at once and busy ones after their reply. A read that
 * already has part of what it asks for (half a line) still waits for the rest, and so does read(n),
 * which asks for the rest of a request by its length: a request whose bytes are on their way is served
 * whole, never cut short and mistaken for a complete one. (Between two readline() calls with nothing
 * buffered the connection looks idle: a request of several lines that arrive apart can end there.)
 */
export class StreamReader implements AsyncIterable<Buffer> {
  private readonly buffer = new ChunkQueue();
  private eof = false;
  /** Shutdown asked: reads stop waiting at the next boundary (nothing buffered). */
  private stopping = false;
  /** After stopReading(): the socket has been read for a full turn of the event loop since. */
  private drained = false;
  /** The source is paused because HIGH_WATER bytes wait unread. */
  private held = false;
  private draining = false;
  private error: Error | undefined;
  /** A read waiting in more(): how to wake it, and its requestTimeout. */
  private wakeResolve: (() => void) | undefined;
  private wakeReject: ((err: Error) => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly lineLimit: number;
  private readonly timeoutMs: number | null;
  private readonly timeoutSetting: string | undefined;
  private readonly lineTimeoutMs: number | null;
  /**
   * When the connection was accepted (else when this rfile was made), and whether a byte ever came: a fresh
   * connection's first request has a grace at shutdown, counted from its accept: a serial server's queued
   * idle connections do not each get a new one when the loop takes them (hostile run: six idle ones held a
   * request whose bytes had arrived past shutdownTimeout).
   */
  private readonly born: number;
  /**
   * When bytes its preamble put back first came: the first line (or body) they begin counts its lineTimeout
   * from then; cleared once bytes are handed out (a line that came whole must not pass it to the next one).
   */
  private heldSince: number | undefined;
  private everReceived = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private graceOver = false;

  constructor(private readonly source: Duplex | null, options: ReaderOptions = {}) {
    this.born = acceptedAt(source) ?? Date.now();
    this.heldSince = takeHeldSince(source);
    this.lineLimit = options.lineLimit ?? DEFAULT_LINE_LIMIT;
    this.timeoutMs = options.requestTimeout == null ? null : options.requestTimeout * 1000;
    this.timeoutSetting = options.timeoutSetting;
    this.lineTimeoutMs = options.lineTimeout == null ? null : options.lineTimeout * 1000;
    if (!source) {
      this.eof = true;
      return;
    }
    // The listeners are shared by every connection and find their reader on the socket: an idle
    // connection holds no closures for them. (on, not once: ended() is idempotent.)
    const fed = source as Fed;
    if (fed[READER]) throw new Error('this stream already has an rfile; share it (readerFor) instead of making another');
    fed[READER] = this;
    // An end read before this rfile was made (a TLS socket that read the client's close_notify and FIN with
    // its handshake) was emitted then, to no one: a read would wait for it forever (hostile run: the
    // connection was never closed).
    if (source.destroyed || source.readableEnded) this.gone(source);
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('close', onEnd);
    source.on('error', onError);
    source.pause();
  }

  /**
   * The source was destroyed (or its end read) before this rfile was made: a connection whose PROXY header (or TLS first
   * bytes) had been read, reset while it waited in the queue. Its 'error' and 'close' have been emitted
   * and it emits no byte any more, so a read would wait forever (and a serial server with it): take what it
   * left buffered (read() still returns it, without a 'data' event) and its end or error now.
   */
  private gone(source: Duplex): void {
    for (let chunk: Buffer | null; (chunk = source.read() as Buffer | null) !== null;) {
      this.everReceived = true;
      this.buffer.push(chunk);
    }
    const err = source.errored;
    if (err) this.error = err;
    this.eof = true;
  }

  /** @internal Bytes from the source (its shared 'data' listener). */
  received(chunk: Buffer): void {
    this.everReceived = true;
    this.buffer.push(chunk);
    if (this.buffer.length >= HIGH_WATER) {
      this.held = true;
      this.source!.pause();
    }
    this.notify();
  }

  /** @internal The source ended or closed. */
  ended(): void {
    this.eof = true;
    this.endGrace();
    this.notify();
  }

  /** @internal The source failed. */
  failed(err: Error): void {
    // What the socket had read before the reset is still the client's input, read first (as it is when
    // the reader was resuming): a line sent whole, then a reset, was lost when the reset came while the
    // handler was not reading (a slow @Setup; in workers, 3 of 3: hostile run).
    if (this.error === undefined && this.source) {
      for (let chunk: Buffer | null; (chunk = this.source.read() as Buffer | null) !== null;) {
        this.everReceived = true;
        this.buffer.push(chunk);
      }
    }
    this.error ??= err;
    this.endGrace();
    this.notify();
  }

  /** @internal Bytes buffered while a read waits for the rest of them (half a line, part of read(n)'s body); else 0. */
  heldPartial(): number {
    return this.wakeResolve !== undefined ? this.buffer.length : 0;
  }

  /**
   * @internal shutdownTimeout passed during shutdown's first-request grace: the grace ends now, and a read
   * waiting in it sees EOF. Returns true when a read was waiting in it (the connection had sent nothing).
   */
  endShutdownGrace(): boolean {
    if (this.graceTimer !== undefined) this.endGrace();
    // A read waiting on a connection that never sent a byte, whose grace no stop has armed yet (a relayed
    // connection's stop comes a poll phase after shutdown's): over all the same. A handler that is not reading
    // (stuck elsewhere) is no idle connection: it is abandoned, and its scope disposed.
    else if (this.wakeResolve !== undefined && !this.everReceived && this.source && !this.eof && this.buffer.length === 0) {
      this.stopping = true;
      this.graceOver = true;
    } else return false;
    this.notify();
    return true;
  }

  /**
   * The connection is done (EOF, close, error): a first-request grace still running has nothing left to
   * wait for, and its timer must not outlive the connection (it held the process open for up to 1 s after
   * a server's close()).
   */
  private endGrace(): void {
    if (this.graceTimer === undefined) return;
    timers.clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.graceOver = true;
  }

  /** An rfile over bytes already in hand: a datagram's payload. */
  static fromBuffer(data: Buffer): StreamReader {
    const reader = new StreamReader(null);
    reader.buffer.push(data);
    return reader;
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * True once the server's shutdown has reached this connection (a plain `shutdown()`, or SIGTERM's drain
   * with `handleSignals`): from then on a read that finds nothing buffered returns end of input (`''`), the
   * client still there. Tells that end from the client's own close, in the server's process and in workers alike.
   */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * One line, '\n' kept; the rest of the stream at EOF without '\n'; empty at EOF. Without `limit`, a line
   * longer than the server's cap (64 KiB by default; its '\n' or '\r\n' not counted, as Netty's
   * LineBasedFrameDecoder and asyncio's StreamReader count, and as `@Framing('lines')` does) rejects with
   * LineTooLongError, ending the request.
   * With `limit` (bytes), as Python's `readline(limit)`: at most `limit` bytes, a partial line when the
   * line is longer (the rest comes with the next read). A negative `limit` (Python's `readline(-1)`) is no
   * limit: the same as none.
   */
  readline(limit?: number | null): Promise<Buffer> {
    let checked: number | undefined;
    try {
      checked = byteCount(limit, 'readline');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.lineAs(checked, asIs);
  }

  /** @internal readline(), its line passed through `map` (the line iterator's `{ done, value }`) without a promise more. */
  lineAs<T>(limit: number | undefined, map: (line: Buffer) => T): Promise<T> {
    const partial = limit !== undefined && !(limit < 0);
    const cap = partial ? limit : this.lineLimit;
    // One promise settled by a step that re-arms itself, not an async function (an idle keep-alive
    // connection waits here, and a suspended frame costs several times the memory) and not a chain of
    // promises (a line trickling in a byte per packet would grow it by one per packet). While it waits,
    // the reader holds the step itself (wait()), so an idle connection holds this promise and one closure.
    return new Promise<T>((resolve, reject) => {
      let deadline: number | undefined; // the line's first byte + lineTimeout
      let scanned = 0;
      const step = (): void => {
        try {
          const nl = this.buffer.indexOf(0x0a, scanned);
          if (partial) {
            if (nl >= 0 && nl < cap) return resolve(map(this.take(nl + 1)));
            if (nl >= cap || this.buffer.length >= cap) return resolve(map(this.take(cap)));
          } else if (nl >= 0) {
            // cap bytes of line, then '\n' or '\r\n': within the cap.
            if (nl <= cap || (nl === cap + 1 && this.buffer.at(cap) === CR)) return resolve(map(this.take(nl + 1)));
            throw new LineTooLongError(messages.lineTooLong(cap));
          } else {
            const held = this.buffer.length;
            if (held > cap + 1 || (held === cap + 1 && this.buffer.at(cap) !== CR)) throw new LineTooLongError(messages.lineTooLong(cap));
          }
          if (this.eof || this.atStop()) return resolve(map(this.rest()));
          scanned = this.buffer.length;
          if (scanned > 0) deadline ??= this.lineDeadline();
          this.wait(deadline, 'a line', step, reject);
        } catch (err) {
          reject(err);
        }
      };
      step();
    });
  }

  /**
   * `n` bytes (fewer only at EOF); without `n`, everything up to EOF. Asking for `n` bytes is asking for
   * the rest of a request (a body after its header), so shutdown does not end this read early: it waits
   * for them, bounded by requestTimeout and shutdownTimeout.
   */
  async read(n?: number | null): Promise<Buffer> {
    n = byteCount(n, 'read');
    if (n === undefined || n < 0) return this.readAll();
    let deadline: number | undefined; // the body's first byte + lineTimeout
    while (this.buffer.length < n && !this.eof) {
      if (this.buffer.length > 0) deadline ??= this.lineDeadline();
      await this.more(deadline, `a body of ${n} bytes`);
    }
    return this.buffer.length >= n ? this.take(n) : this.rest();
  }

  /**
   * Whatever has arrived: at least one byte, at most `n` (default 65536; negative: all that has arrived, as
   * Python's `read1(-1)`); empty at EOF (Python's `request.recv(n)`). `read1(0)` is empty at once, as Python's.
   */
  async read1(n: number | null = 64 * 1024): Promise<Buffer> {
    n = byteCount(n, 'read1') ?? 64 * 1024;
    if (n === 0) return Buffer.alloc(0); // it waited for the client's next bytes, to return none of them
    while (this.buffer.length === 0 && !this.eof && !this.atStop()) await this.more();
    return this.buffer.length > 0 ? this.take(n < 0 ? this.buffer.length : Math.min(n, this.buffer.length)) : this.rest();
  }

  /**
   * Lines up to EOF, each as readline() reads it (its '\n' kept; the last one without, if the input ends so), as
   * Python's `rfile.readlines(hint)`: with `hint` > 0 (bytes), no more lines once the lines so far add up to more
   * than `hint` (a socket's buffered reader, IOBase's rule), or to `hint` or more for a datagram's rfile (Python's
   * BytesIO there). Rejects as readline() does (LineTooLongError, a reset, lineTimeout).
   */
  async readlines(hint?: number | null): Promise<Buffer[]> {
    const bound = byteCount(hint, 'readlines');
    const lines: Buffer[] = [];
    let total = 0;
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return lines;
      lines.push(line);
      total += line.length;
      if (bound !== undefined && bound > 0 && (this.source ? total > bound : total >= bound)) return lines;
    }
  }

  /** Everything up to EOF. */
  async readAll(): Promise<Buffer> {
    while (!this.eof && !this.atStop()) await this.more();
    return this.rest();
  }

  /**
   * What is left once the stream has ended (or shutdown stopped the reads): the bytes still buffered, or,
   * when the stream ended with an error (a client's reset), that error. A reset is never a clean end of
   * input, whether a read was waiting when it came or came later (a reset while an async `@Verify` ran):
   * Python's recv() raises ConnectionResetError, and Node's socket emits 'error'. Whole lines and
   * bodies buffered before it are still returned first.
   */
  private rest(): Buffer {
    if (this.error && this.eof) throw this.error;
    return this.take(this.buffer.length);
  }

  /** Lines until EOF. A plain iterator, not an async generator: one promise per line, not several. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return new LineIterator(this);
  }

  /**
   * Shutdown: from now on a read that finds nothing buffered sees EOF instead of waiting, except a
   * connection's first request, which has FIRST_REQUEST_GRACE_MS from its accept to start.
   */
  stopReading(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.source) this.drained = true;
    this.notify();
  }

  /**
   * Stopped, and between requests: nothing of a next request has arrived, not even bytes the kernel
   * had already received when shutdown began (a request accepted before it is served, not dropped).
   */
  private atStop(): boolean {
    if (!this.stopping || this.buffer.length > 0) return false;
    if (!this.everReceived && this.source && !this.eof && !this.graceOver) {
      if (this.graceTimer === undefined) {
        this.graceTimer = startFirstRequestGrace(this.born, () => {
          this.graceTimer = undefined;
          this.graceOver = true;
          this.notify();
        });
        if (this.graceTimer === undefined) this.graceOver = true;
      }
      if (!this.graceOver) return false;
    }
    if (this.drained) return true;
    this.drainOnce();
    return false;
  }

  /** Reads the socket through one full poll phase, then wakes the reader. */
  private drainOnce(): void {
    if (this.draining) return;
    this.draining = true;
    this.source?.resume();
    afterPollPhase(() => {
      this.drained = true;
      this.notify();
    });
  }

  private take(n: number): Buffer {
    const out = this.buffer.take(n);
    // the bytes the preamble put back are being handed out: a later line's lineTimeout counts from its own first byte
    if (this.heldSince !== undefined) this.heldSince = undefined;
    // Paused at the high-water mark: read on as soon as half of it has been consumed, not only when a
    // read runs dry, so the kernel's window stays open while the handler works through what it has.
    if (this.held && this.buffer.length < HIGH_WATER / 2) {
      this.held = false;
      this.source?.resume();
    }
    return out;
  }

  /** Wakes a read waiting in more(): with the source's error, or to look again. */
  private notify(): void {
    const resolve = this.wakeResolve;
    const reject = this.wakeReject;
    if (!resolve || !reject) return;
    this.wakeResolve = this.wakeReject = undefined;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (this.error) reject(this.error);
    else resolve();
  }

  /** When a line or body whose first byte is here now must be complete (undefined: no lineTimeout). */
  private lineDeadline(): number | undefined {
    const since = this.heldSince ?? Date.now();
    this.heldSince = undefined;
    return this.lineTimeoutMs === null ? undefined : since + this.lineTimeoutMs;
  }

  /**
   * Waits for more data, EOF or an error, bounded by requestTimeout and by `deadline` (a line's or a
   * body's lineTimeout, `what` naming it in the error), whichever comes first.
   */
  private more(deadline?: number, what = 'a line'): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.eof) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.wait(deadline, what, resolve, reject));
  }

  /**
   * more() with callbacks: `wake` is called once data, EOF or the stop arrives (from the event that brought
   * it: a later turn than the call), `fail` with the source's error or a RequestTimeoutError.
   */
  private wait(deadline: number | undefined, what: string, wake: () => void, fail: (err: Error) => void): void {
    if (this.error) return void microtask(() => fail(this.error!));
    if (this.eof) return void microtask(wake);
    this.wakeResolve = wake;
    this.wakeReject = fail;
    const lineMs = deadline === undefined ? null : Math.max(0, deadline - Date.now());
    if (this.timeoutMs !== null || lineMs !== null) {
      const byLine = lineMs !== null && (this.timeoutMs === null || lineMs <= this.timeoutMs);
      this.wakeTimer = setTimeout(() => {
        this.wakeResolve = this.wakeReject = this.wakeTimer = undefined;
        // A connection that has been replied to may be a client that stopped reading: its own sends then stall too (new-user run:
        // the fix said "send sooner" to a client sending all along).
        const replied = ((this.source as { bytesWritten?: number } | undefined)?.bytesWritten ?? 0) > 0;
        const text = byLine ? edgeMessages.lineTimeout(this.lineTimeoutMs! / 1000, what) : messages.requestTimeout(this.timeoutMs! / 1000, this.timeoutSetting, replied);
        fail(new RequestTimeoutError(text));
      }, byLine ? lineMs! : this.timeoutMs!);
    }
    this.source?.resume();
  }
}

const READER = Symbol('sockserve.rfile');
type Fed = Duplex & { [READER]?: StreamReader };

function onData(this: Fed, chunk: Buffer): void {
  this[READER]?.received(chunk);
}
function onEnd(this: Fed): void {
  this[READER]?.ended();
}
function onError(this: Fed, err: Error): void {
  this[READER]?.failed(err);
}

/** `for await (const line of rfile)`: a class, so an idle connection holds no closures for it. */
class LineIterator implements AsyncIterator<Buffer> {
  constructor(private readonly reader: StreamReader) {}

  next(): Promise<IteratorResult<Buffer>> {
    return this.reader.lineAs(undefined, lineResult);
  }

  return(value?: unknown): Promise<IteratorResult<Buffer>> {
    return Promise.resolve({ done: true, value: value as Buffer });
  }
}

function asIs(line: Buffer): Buffer {
  return line;
}

function lineResult(line: Buffer): IteratorResult<Buffer> {
  return line.length === 0 ? { done: true, value: undefined } : { done: false, value: line };
}

/**
 * A byte count as Python's file methods take it: undefined or null (Python's None) is none, a negative number
 * is none too, and anything else must be an integer: `read(1.5)` lost a byte of what followed, and
 * `readline(null)` read nothing and looked like the end of the stream (hostile run). TypeError otherwise, as
 * Python's "integer argument expected".
 */
function byteCount(n: number | null | undefined, member: string): number | undefined {
  if (n === undefined || n === null) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new TypeError(`rfile.${member}(${String(n)}): the byte count must be an integer (or left out, or negative: no limit), as Python's.`);
  }
  return n;
}
