import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { registerReader } from '../classic/reader-registry';
import { FrameTooLongError, OutputBufferFullError, RequestTimeoutError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import type { FramingDefinition } from '../metadata/definition';
import * as timers from 'node:timers';
import { acceptedAt, takeCloseAsked, takeHeldSince } from '../transports/connection-stamps';
import { startFirstRequestGrace } from '../transports/stream-reader';
import { destroyUndelivered, kernelQueue, unsentText, writeStalled } from '../transports/stream-writer';
import { afterPollPhase } from '../transports/event-loop';
import { DECODED_BEFORE, Framer, FramerInPlace } from './framer';
import { tooLongMessage } from './framers';
import type { MessageChannel } from './message-request';
import { isThenable } from '../lifecycle/resolved';

/** A dispatched message whose reply is not written yet: it waits for its turn (message order). */
interface Slot {
  done: boolean;
  /** The reply, or the error the call threw (`failed`). */
  value: unknown;
  failed?: boolean;
}

/** The server's read timeouts, in seconds (null or undefined: none), honoured as the rfile honours them. */
export interface MessageTimeouts {
  /** No byte at all for this long, while the loop waits for input: RequestTimeoutError (bootstrap's requestTimeout). */
  requestTimeout?: number | null;
  /** A message still incomplete this long after its first byte (slowloris): RequestTimeoutError (limits.lineTimeout). */
  lineTimeout?: number | null;
}

/** Bytes of one block of output held while the client is behind (see MessageConnection.hold). */
const HOLD_BLOCK = 16 * 1024;

/** Bytes a framer may hold beyond `maxLength` (its delimiter or prefix) before the runner calls the message too long. */
const SLACK = 1024;

/**
 * The message loop of one stream connection under `@OnMessage` ([messages and framing](../../docs/messages-and-framing.md)): bytes from the connection go
 * through its framer, each message to the handler, each reply back through the framer, in message order.
 *
 * - The fast path: a synchronous handler is called straight from the socket's 'data' callback, and the
 *   replies to the messages of one chunk go out in one write; no promise and no extra turn of the
 *   event loop per message.
 * - An async handler (a returned promise): at most `concurrency` calls overlap; the messages behind
 *   them wait, reading pauses, and replies are written in message order whatever order they settle in.
 * - Timeouts, as the rfile's: `requestTimeout` while it waits for input with none arriving, `lineTimeout` for a
 *   message from its first byte (slowloris). Either ends the connection with a RequestTimeoutError once the
 *   replies owed are written. One timer per connection, re-armed lazily (no timer work per chunk).
 * - Backpressure: reading pauses while the connection's unsent output is above its
 *   writableHighWaterMark and resumes on 'drain', so a client that never reads cannot grow memory by
 *   sending. Pushes (`send()`) say whether the output is below the mark (Node's `write()`), `drained()` waits
 *   for it, and a push while more than `maxOutputBuffer` bytes of pushes wait unsent ends the connection with an
 *   OutputBufferFullError (the socket destroyed, what it held dropped): a client that never reads cannot
 *   grow memory by being pushed to either.
 * - It ends (`serve()` resolves) when the input has ended and every reply is written, after `close()`
 *   once the replies already owed are written, or, after shutdown's stopReading(), once nothing is in
 *   flight or half-received.
 * - An error stops reading and rejects once the calls in flight have returned. Bad input (the framer's
 *   error) and a handler that threw still owe the replies of the messages before them, in order: those
 *   messages are handled and answered first (Netty's decoder hands on what it decoded before the bad
 *   bytes, as Python's handler answers each line before the next fails). A socket error owes nothing
 *   more: it cannot be written to.
 */
export class MessageConnection implements MessageChannel {
  /** Made on first use: a reply sent from @Setup (a greeting) comes before serve(). */
  private framer: Framer | undefined;
  private call!: (message: unknown) => unknown;
  private readonly concurrency: number;
  private inFlight = 0;
  /**
   * Messages decoded and not handed to the handler yet: behind `concurrency` calls running, or behind
   * output above the high-water mark. At most what one chunk held; `head` is the next one.
   */
  private waiting: unknown[] = [];
  private head = 0;
  private readonly slots: Slot[] = [];
  /**
   * Replies gathered while one chunk's messages are handled: they go out in one write. String replies in
   * a row are joined as they come (`text`), as a hand-written echo does; `batch[0..batched)` holds what came
   * before (slots cleared, not the array, after each write: no allocation per chunk).
   */
  private batch: Array<Buffer | string | undefined> = [];
  private batched = 0;
  private text = '';
  private batchBytes = 0;
  private batching = false;
  private reading = false;
  private writeBlocked = false;
  private inputEnded = false;
  private closeAsked = false;
  private stopping = false;
  /** Shutdown: the bytes already in the kernel when stopReading() came have been read. */
  private kernelRead = false;
  /** When the connection was accepted (else when this loop was made): the start of its first-request grace. */
  private readonly born: number;
  /** A byte ever came. */
  private everReceived = false;
  /**
   * Shutdown came before the first byte, within FIRST_REQUEST_GRACE_MS of the accept: the connection is not
   * idle until then (a balancer connects, then forwards the request), as a @Handle server's rfile decides it.
   */
  private graceTimer: NodeJS.Timeout | undefined;
  /** A check for kernelRead is scheduled (see checkKernelRead). */
  private kernelCheck = false;
  /** Counts the times reading (re)started: a kernel check spans one stretch of reading. */
  private readEpoch = 0;
  private failed = false;
  private error: unknown;
  /** An error that ends the connection once the replies owed before it are written (bad input, a handler that threw). */
  private endError: { error: unknown; input?: true } | undefined;
  /** A handler call failed: no further message is handed to the handler; the waiting ones are dropped. */
  private halted = false;
  private finished = false;
  /** The framer's `buffered` threw or gave no count (partial()): read as 0 from then on. */
  private badCount = false;
  /** Bytes fed since the framer last gave a message: the length check for framers without `buffered`. */
  private sinceMessage = 0;
  private settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private readonly idleMs: number;
  private readonly partialMs: number;
  /** Whether requestTimeout or lineTimeout bounds this connection (either one: the clock is read per chunk). */
  private readonly timed: boolean;
  /** The connection's writableHighWaterMark (bytes): replies gathered past it go out at once. */
  private readonly highWater: number;
  /**
   * Output held here while the connection is above its high-water mark (the client is behind): small
   * messages copied into blocks (HOLD_BLOCK bytes), larger ones kept whole, written out at the next 'drain'.
   * Written one by one, each would sit in Node's write queue with an entry of ~100 bytes: a client that did
   * not read 9-byte pushes held ten times maxOutputBuffer (hostile-client run: +210 MB at 16 MiB).
   */
  private held: Buffer[] | undefined;
  private block: Buffer | undefined;
  private blockUsed = 0;
  private heldBytes = 0;
  /**
   * Bytes of output encoded so far (`queued`), and where the last reply ended in that count (`replyEnd`):
   * what follows it are pushes, which alone maxOutputBuffer bounds. Replies are bounded by pausing reading.
   */
  private queued = 0;
  private replyEnd = 0;
  /** drained() after the message loop ended (from `@Finish`), shared by its callers while the socket needs draining. */
  private drainAfterServe: Promise<boolean> | undefined;
  /** Pushers waiting in drained(): called with true once the output is below the high-water mark, false once the connection ended. */
  private drainWaiters: Array<(writable: boolean) => void> | undefined;
  /** Removes watchBeforeServe()'s listeners. */
  private unwatch: (() => void) | undefined;
  /** When a byte last arrived, or reading last resumed (ms); when the incomplete message held began (0: none). */
  private lastByte = 0;
  /** When the output last moved (blocked, or a 'drain'), while writeBlocked: requestTimeout bounds a client that does not read. */
  private lastOutput = 0;
  /** The socket's kernel write queue then (kernelQueue): a large reply the client takes slowly moves it with no 'drain'. */
  private outputQueue: number | undefined;
  private partialSince = 0;
  /** When reading paused with an incomplete message held (0: not paused, or nothing held): that wait is the server's, not lineTimeout's. */
  private pausedAt = 0;
  /** When bytes the preamble put back first came (they begin the first message): its lineTimeout counts from then; 0: none. */
  private heldSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;

  constructor(
    private readonly socket: Duplex,
    private readonly framing: FramingDefinition,
    /** Called once per message handed to the handler (observability's seam: stats().messages, sockserve:message). */
    private readonly observe?: () => void,
    timeouts: MessageTimeouts = {},
  ) {
    this.concurrency = framing.concurrency;
    this.idleMs = seconds(timeouts.requestTimeout);
    this.partialMs = seconds(timeouts.lineTimeout);
    this.timed = this.idleMs !== Infinity || this.partialMs !== Infinity;
    this.highWater = socket.writableHighWaterMark;
    this.born = acceptedAt(socket) ?? Date.now();
    if (this.partialMs !== Infinity) this.heldSince = takeHeldSince(socket) ?? 0;
  }

  serve(call: (message: unknown) => unknown): Promise<void> {
    this.call = call;
    this.codec();
    if (takeCloseAsked(this.socket)) this.closeAsked = true; // @Verify's req.close() in the server's process
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      const fed = this.socket as Fed;
      this.unwatch?.();
      fed[CONNECTION] = this;
      fed.on('data', onData);
      fed.on('end', onEnd);
      fed.on('close', onClose);
      fed.on('error', onError);
      fed.on('drain', onDrain);
      registerReader(fed, this);
      if (fed.destroyed) return this.closed();
      // Replies are small writes that a client waits for: no Nagle delay (Netty's TCP_NODELAY default).
      (fed as Partial<Socket>).setNoDelay?.(true);
      // A greeting from @Setup past the high-water mark whose 'drain' came before these listeners: not blocked.
      if (this.writeBlocked && !fed.writableNeedDrain) this.outputDrained();
      this.flow();
      // its end read before serve() (a TLS socket that read the client's close_notify and FIN with its
      // handshake): that 'end' was emitted to no one
      if (fed.readableEnded) this.ended();
      this.maybeEnd(); // close() or an error before serve() (in @Setup): nothing more will come to end it
    });
  }

  private codec(): Framer {
    return (this.framer ??= this.framing.create());
  }

  send(message: unknown): boolean {
    if (this.failed) return false;
    if (this.finished) return this.sendAfterServe(message);
    if (message !== undefined) {
      // Pushes waiting unsent: the output behind the last reply (a large reply the client is still reading
      // is not the pusher's doing). The pushes count in bytes (reply()); Node's writableLength counts a string queued
      // there by its length, as does batchBytes.
      const unsent = Math.min(this.socket.writableLength + this.batchBytes + this.heldBytes, this.queued - this.replyEnd);
      if (unsent > this.framing.maxOutputBuffer) {
        this.overflow(unsent);
        return false;
      }
      this.reply(message, false, true);
      if (this.endError) return false; // it could not be encoded: the connection is ending with that error
      if (!this.batching) this.flow();
    }
    return this.writable();
  }

  /**
   * drained() once the message loop has ended (from `@Finish`): as sendAfterServe() sends, true while the socket
   * takes writes without waiting, false once it is ended or destroyed; while it needs draining, until it drains
   * or closes, or false after requestTimeout with no 'drain' (a client that does not read: as the loop's output
   * stall; it waited for ever, and a serial server with it: hostile re-check). It said false there, though a
   * farewell send() still went out (hostile run).
   */
  private drainedAfterServe(): Promise<boolean> {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return Promise.resolve(false);
    if (!socket.writableNeedDrain) return Promise.resolve(true);
    // One wait however many callers: a listener pair each warned of a leak (MaxListeners) past ten.
    return (this.drainAfterServe ??= new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (ok: boolean) => () => {
        clearTimeout(timer);
        socket.off('drain', drained);
        socket.off('close', closed);
        this.drainAfterServe = undefined;
        resolve(ok);
      };
      const drained = settle(true);
      const closed = settle(false);
      socket.once('drain', drained);
      socket.once('close', closed);
      if (this.idleMs !== Infinity) timer = setTimeout(closed, this.idleMs);
    }));
  }

  /**
   * A send once the message loop has ended (from `@Finish`, a farewell): the connection is not closed yet, so
   * it goes to the socket at once, ahead of the close. Dropped (false) where the socket cannot take it: reset,
   * destroyed, or already ended, and where the framer cannot encode it: the loop that would report that is
   * over, and thrown at the caller (a timer) it stopped the process.
   */
  private sendAfterServe(message: unknown): boolean {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return false;
    if (message === undefined) return !socket.writableNeedDrain;
    let bytes: Buffer | string | Uint8Array;
    try {
      bytes = this.codec().encode(message);
    } catch {
      return false;
    }
    return socket.write(bytes);
  }

  drained(): Promise<boolean> {
    if (this.finished && !this.failed) return this.drainedAfterServe();
    if (this.writable() || this.failed) return Promise.resolve(this.writable());
    if (this.settle === undefined) this.watchBeforeServe();
    return new Promise<boolean>((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /**
   * drained() before serve() (a greeting sent from @Setup): the loop's listeners are not on the socket yet, so
   * these tell the pushers, until serve()'s own listeners take over. They only wake them: reading must not
   * start before serve() listens for data. An error (a client that resets) fails the connection, as it would
   * in the loop, rather than reach a socket without an 'error' listener (which throws, killing a worker).
   */
  private watchBeforeServe(): void {
    if (this.unwatch !== undefined) return;
    const socket = this.socket;
    const onDrain = () => this.outputDrained();
    const onClose = () => this.wakePushers(false);
    const onError = (err: Error) => this.fail(err);
    socket.on('drain', onDrain);
    socket.on('close', onClose);
    socket.on('error', onError);
    this.unwatch = () => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      socket.off('error', onError);
      this.unwatch = undefined;
    };
  }

  /**
   * The socket's output went below its high-water mark ('drain'): writes what was held meanwhile; if that
   * took it above the mark again, waits for the next 'drain'. Else writing is unblocked, the messages that
   * waited go on (in the loop), and the pushers waiting in drained() are told.
   */
  private outputDrained(): void {
    if (this.heldBytes > 0 && !this.flushHeld()) {
      if (this.idleMs !== Infinity) this.outputMoved(Date.now()); // the client took some: the stall clock restarts
      return; // above the mark again: the next 'drain' goes on
    }
    this.writeBlocked = false;
    if (this.settle !== undefined) this.pump();
    if (this.drainWaiters !== undefined && (this.writable() || this.finished)) this.wakePushers(this.writable());
  }

  /** More may be sent now: the connection is open and its unsent output below the high-water mark. */
  private writable(): boolean {
    const socket = this.socket;
    return (
      !this.finished && !this.failed && !socket.destroyed && !socket.writableEnded && !socket.writableNeedDrain && this.heldBytes === 0 && this.batchBytes < this.highWater
    );
  }

  /**
   * The output stayed above the high-water mark for requestTimeout with no 'drain': the client does not read
   * its replies (Python's socket timeout bounds `sendall` so, HAProxy's `timeout client` both directions).
   * Ends the connection now, its unsent replies dropped, as a push past maxOutputBuffer does.
   */
  private outputStalled(): void {
    const unsent = unsentText(this.socket, this.heldBytes);
    this.dropHeld();
    this.fail(writeStalled(new RequestTimeoutError(messages.writeTimeout(this.framing.name, this.idleMs / 1000, unsent))));
    destroyUndelivered(this.socket);
  }

  /** A push found more than maxOutputBuffer bytes unsent: the client does not read. Ends the connection now. */
  private overflow(unsent: number): void {
    this.dropHeld();
    this.fail(new OutputBufferFullError(messages.outputBufferFull(this.framing.name, unsent, this.framing.maxOutputBuffer)));
    destroyUndelivered(this.socket); // what it holds is dropped: waiting for a client that does not read would hold it
  }

  /** Tells the pushers waiting in drained() (`writable`: whether they may send). */
  private wakePushers(writable: boolean): void {
    const waiters = this.drainWaiters;
    if (waiters === undefined) return;
    this.drainWaiters = undefined;
    for (const resolve of waiters) resolve(writable);
  }

  /** @internal Whether close() was asked (by @Verify, say, before the loop runs elsewhere). */
  get closing(): boolean {
    return this.closeAsked;
  }

  close(): void {
    if (this.finished || this.closeAsked) return;
    this.closeAsked = true;
    this.dropWaiting();
    this.flow();
    this.maybeEnd();
  }

  /** Shutdown: end once nothing is in flight or half-received, after the bytes already in the kernel were read. */
  stopReading(): void {
    if (this.stopping || this.finished) return;
    this.stopping = true;
    if (!this.everReceived && !this.inputEnded) {
      this.graceTimer = startFirstRequestGrace(this.born, () => {
        this.graceTimer = undefined;
        this.maybeEnd();
      });
    }
    this.checkKernelRead();
  }

  /**
   * @internal shutdownTimeout passed during shutdown's first-request grace (nothing received): the connection
   * ends now, as it would have after the grace. Returns true when the grace was running.
   */
  endShutdownGrace(): boolean {
    // Its stop not here yet (a relayed connection's comes a poll phase after shutdown's), and nothing received nor running: it stops now.
    if (this.graceTimer === undefined && !this.stopping && !this.finished && !this.everReceived && !this.inputEnded && this.inFlight === 0) this.stopReading();
    if (this.graceTimer === undefined) return false;
    this.endGrace();
    this.maybeEnd();
    return true;
  }

  private endGrace(): void {
    if (this.graceTimer === undefined) return;
    timers.clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /**
   * Sets kernelRead after a full poll phase during which the connection was reading. While reading is paused
   * (the client is behind on its replies, messages wait), bytes the kernel holds are not delivered: the
   * check waits for reading to resume (flow()), so a request that arrived meanwhile is served, not dropped.
   */
  private checkKernelRead(): void {
    if (this.kernelRead || this.kernelCheck || !this.reading) return;
    this.kernelCheck = true;
    const epoch = this.readEpoch;
    afterPollPhase(() => {
      this.kernelCheck = false;
      if (this.finished) return;
      if (!this.reading || this.readEpoch !== epoch) return this.checkKernelRead(); // paused meanwhile: again
      this.kernelRead = true;
      this.maybeEnd();
    });
  }

  // ---- events of the connection (through the shared listeners below) ----

  /** @internal */
  received(chunk: Buffer): void {
    if (!this.everReceived) {
      this.everReceived = true;
      this.endGrace();
    }
    if (this.closeAsked || this.failed || this.endError || this.halted) return;
    let decoded: unknown[];
    try {
      decoded = this.codec().decode(chunk);
      if (!Array.isArray(decoded)) throw new TypeError(messages.badDecode(this.framing.name, 'decode()', decoded)); // the framer's bug, not the client's
      // A user framer's array copied here, as end()'s is: one whose elements throw when read (a Proxy) threw from
      // this listener, which ended the process (hostile run). The built-in framers' arrays are their own.
      if (this.framing.checkMessages && decoded.length > 0) decoded = decoded.slice();
    } catch (err) {
      // Reading stops now; the messages decoded before the bad input are still handled and answered.
      this.endWith(err, true);
      decoded = (err as { [DECODED_BEFORE]?: unknown[] } | null)?.[DECODED_BEFORE] ?? [];
    }
    if (this.framing.checkMessages && decoded.length > 0) decoded = this.withinMaxLength(decoded);
    if (!this.endError) this.checkLength(chunk.length, decoded.length);
    if (this.timed) this.clock(decoded.length > 0);
    this.handleAll(decoded);
  }

  /** @internal The client closed its side: what the framer still holds, then end once every reply is out. */
  ended(): void {
    if (this.finished || this.inputEnded) return;
    this.inputEnded = true;
    const framer = this.codec();
    if (!this.closeAsked && !this.failed && !this.endError && !this.halted) {
      let last: unknown[];
      try {
        // All of it guarded: this runs in the socket's 'end' listener, where a throw ends the process (or the worker).
        // `end` read here (a getter that threw did: hostile re-check), and what it returned copied here (an array
        // whose length getter throws did too).
        const end: unknown = framer.end;
        if (end != null && typeof end !== 'function') throw new TypeError(messages.badEndMember(this.framing.name, end));
        const held: unknown = end == null ? [] : (end as () => unknown).call(framer);
        // The framer's bug: reported, and nothing of what it returned handled (undefined threw a TypeError from this
        // listener, which ended the process; a string was handled a character at a time: hostile run).
        if (!Array.isArray(held)) throw new TypeError(messages.badDecode(this.framing.name, 'end()', held));
        last = held.length === 0 ? held : held.slice();
      } catch (err) {
        this.endWith(err, true); // a message cut short: the replies owed before it still go out
        last = (err as { [DECODED_BEFORE]?: unknown[] } | null)?.[DECODED_BEFORE] ?? [];
      }
      if (this.framing.checkMessages && last.length > 0) last = this.withinMaxLength(last);
      if (last.length > 0) this.handleAll(last);
    }
    this.flow();
    this.maybeEnd();
  }

  /** @internal The connection is gone (destroyed, reset): nothing more can be written. */
  closed(): void {
    if (this.finished) return;
    this.inputEnded = true;
    this.closeAsked = true;
    this.dropWaiting();
    this.wakePushers(false); // a call waiting in drained() must return for the connection to end
    this.maybeEnd();
  }

  /** @internal The output went below the high-water mark: the messages that waited for it go on. */
  drain(): void {
    this.outputDrained();
  }

  /** @internal */
  fail(err: unknown): void {
    if (this.failed || this.finished) return;
    this.failed = true;
    this.error = err;
    this.dropWaiting();
    this.wakePushers(false);
    this.flow();
    this.maybeEnd();
  }

  // ---- messages and replies ----

  private handleAll(decoded: unknown[]): void {
    this.batching = true;
    const n = decoded.length;
    let i = 0;
    if (this.slots.length === 0 && this.head === this.waiting.length) {
      // Nothing in flight nor waiting (a client that waits for its replies, or pipelines to a synchronous
      // handler): each message straight to the handler, each synchronous reply owed at once.
      const call = this.call;
      while (i < n && this.canDispatch()) {
        const message = decoded[i++];
        this.observe?.();
        let result: unknown;
        try {
          result = call(message);
        } catch (err) {
          this.callFailed(undefined, err);
          break;
        }
        if (isThenable(result)) {
          this.started(result);
          break;
        }
        this.reply(result, i === n);
      }
    }
    for (; i < n; i++) {
      if (this.closeAsked || this.failed || this.halted) break;
      if (this.head === this.waiting.length && this.canDispatch()) this.dispatch(decoded[i], i === decoded.length - 1);
      else this.waiting.push(decoded[i]);
    }
    this.flush();
    this.flow();
    this.maybeEnd();
  }

  /** A chunk arrived (`produced`: it completed messages): when the last byte came, and when the message held began. */
  private clock(produced: boolean): void {
    const held = this.partial() ?? this.sinceMessage;
    const since = this.heldSince; // only the first chunk's: the bytes the preamble put back come first
    if (since !== 0) this.heldSince = 0;
    if (held === 0) {
      // Between messages only requestTimeout needs the time (no clock read per chunk without it).
      this.partialSince = 0;
      if (this.idleMs !== Infinity) this.lastByte = Date.now();
      return;
    }
    const now = Date.now();
    this.lastByte = now;
    if (produced || this.partialSince === 0) {
      this.partialSince = (!produced && since) || now;
      this.armTimer();
    }
  }

  /** Every call has completed: requestTimeout counts from now, and the timer is set for it if none is. */
  private restartIdleWait(): void {
    this.lastByte = Date.now();
    this.armTimer();
  }

  /** Reading (re)starts: a wait for input begins, timed by requestTimeout and lineTimeout. */
  private armTimeouts(): void {
    if (!this.timed) return;
    this.lastByte = Date.now();
    this.armTimer();
  }

  /**
   * A timer for the nearest deadline, if something is timed: the wait for input (requestTimeout), or a message
   * held incomplete (lineTimeout). An idle connection without requestTimeout holds no timer.
   */
  private armTimer(): void {
    const next = Math.min(
      this.lastByte + this.idleMs,
      this.partialSince > 0 ? this.partialSince + this.partialMs : Infinity,
      this.writeBlocked ? this.lastOutput + this.idleMs : Infinity,
    );
    if (next === Infinity || (this.timer !== undefined && this.timerAt <= next)) return; // a later deadline: checked then
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.checkTimeouts(), Math.max(1, next - Date.now()));
  }

  /** The timer fired: ends the connection if a timeout passed while reading; else re-arms for the nearest one. */
  private checkTimeouts(): void {
    this.timer = undefined;
    if (this.finished) return;
    const now = Date.now();
    if (this.writeBlocked && now - this.lastOutput >= this.idleMs) {
      const queue = kernelQueue(this.socket);
      if (queue === undefined || queue === this.outputQueue) return this.outputStalled();
      this.outputMoved(now); // part of a large write went out: progress without a 'drain'
    }
    if (!this.reading) return this.writeBlocked ? this.armTimer() : undefined; // paused: the handler or the output holds it, not the client
    let error: Error | undefined;
    if (this.partialSince > 0 && now - this.partialSince >= this.partialMs) {
      error = new RequestTimeoutError(messages.messageTimeout(this.framing.name, this.partialMs / 1000));
    } else if (this.inFlight > 0 || this.slots.length > 0) {
      // A call is running: the client waits for its reply, not the other way round (requestTimeout is the
      // wait for input). Checked again a whole requestTimeout later; completed() restarts the wait from its end.
      this.lastByte = now;
    } else if (now - this.lastByte >= this.idleMs) {
      error = new RequestTimeoutError(messages.idleTimeout(this.framing.name, this.idleMs / 1000));
    }
    if (!error) return this.armTimer();
    this.endWith(error);
    this.flow();
    this.maybeEnd();
  }

  /** Another call may start: fewer than `concurrency` running, and the output below the high-water mark. */
  private canDispatch(): boolean {
    return this.inFlight < this.concurrency && !this.writeBlocked && !this.closeAsked && !this.failed && !this.halted;
  }

  /**
   * Ends the connection with `err` once the replies owed before it are written (the first such error wins).
   * `input`: the client's bytes (a FramingError, a FrameTooLongError), which stop the reading; a handler's error
   * on a message decoded before them still comes first, and wins: it was lost behind the input's error when a bad
   * line followed the message in the same packet (new-user run).
   */
  private endWith(err: unknown, input = false): void {
    if (this.endError === undefined || (this.endError.input === true && !input)) this.endError = input ? { error: err, input } : { error: err };
  }

  /**
   * A handler call threw or rejected (`slot`: the async call's place in reply order). Nothing more is
   * handed to the handler; the replies of the messages before it are still written, then the connection
   * ends with its error.
   */
  private callFailed(slot: Slot | undefined, err: unknown): void {
    this.halted = true;
    this.dropWaiting();
    if (slot) {
      slot.done = true;
      slot.failed = true;
      slot.value = err;
    } else if (this.slots.length > 0) this.slots.push({ done: true, failed: true, value: err });
    else this.endWith(err);
  }

  /** Writes the replies whose turn has come, and hands waiting messages on while calls may start. */
  private pump(): void {
    if (this.finished) return;
    this.batching = true;
    this.writeReady();
    // The replies of the calls that have settled go now, before the next handler call: a synchronous one (seconds
    // of CPU) held a reply already made as long, and a worker that died in it lost it (hostile run, every mode).
    if (this.batchBytes > 0 && this.head < this.waiting.length && this.canDispatch()) {
      this.writeBatch();
      if (!this.canDispatch()) return this.pumpEnd(); // that write filled the output: the messages wait for 'drain'
    }
    while (this.head < this.waiting.length && this.canDispatch()) {
      const message = this.waiting[this.head];
      this.waiting[this.head++] = undefined;
      if (this.head === this.waiting.length) this.dropWaiting();
      this.dispatch(message);
      this.writeReady();
    }
    this.pumpEnd();
  }

  private pumpEnd(): void {
    this.flush();
    this.flow();
    this.maybeEnd();
  }

  private dropWaiting(): void {
    this.waiting = [];
    this.head = 0;
  }

  /** `last`: the chunk's last message, whose synchronous reply is written before any other handler call runs. */
  private dispatch(message: unknown, last = false): void {
    this.observe?.();
    let result: unknown;
    try {
      result = this.call(message);
    } catch (err) {
      return this.callFailed(undefined, err); // the caller (handleAll, pump) writes the replies before it
    }
    if (isThenable(result)) this.started(result);
    else if (this.slots.length === 0) this.reply(result, last);
    else this.slots.push({ done: true, value: result });
  }

  /**
   * An async call began: its reply takes the next place in reply order. Adopted as `await` would: a
   * thenable whose then() throws is a rejection of that call, not an exception out of the socket's data
   * listener (which ended the process or worker, hostile run 2026-12-04). A native promise is itself.
   */
  private started(result: PromiseLike<unknown>): void {
    const slot: Slot = { done: false, value: undefined };
    this.slots.push(slot);
    this.inFlight++;
    Promise.resolve(result).then(
      (value) => this.completed(slot, value),
      (err) => {
        this.inFlight--;
        this.callFailed(slot, err);
        if (this.failed) return this.maybeEnd();
        this.pump();
      },
    );
  }

  private completed(slot: Slot, value: unknown): void {
    this.inFlight--;
    // The reply owed is on its way: the wait for the client's next message starts now.
    if (this.inFlight === 0 && this.idleMs !== Infinity) this.restartIdleWait();
    slot.done = true;
    slot.value = value;
    if (this.failed) return this.maybeEnd();
    this.pump();
  }

  /** Writes the replies whose turn has come: the settled slots at the head. */
  private writeReady(): void {
    while (this.slots.length > 0 && this.slots[0].done) {
      const slot = this.slots.shift()!;
      if (slot.failed) {
        this.slots.length = 0; // the replies after a failed call are not owed
        return this.endWith(slot.value);
      }
      this.reply(slot.value);
    }
  }

  /**
   * Encodes `value` into the batch (or writes it, outside one). `inPlace`: it is written before any other
   * handler code runs, so a framer that can (FramerInPlace) may send the bytes received rather than a copy,
   * when nothing is queued on the connection (the kernel takes them now, not a later write). `push`: sent
   * by req.send(), counted against maxOutputBuffer; else a reply.
   */
  private reply(value: unknown, inPlace = false, push = false): void {
    if (value === undefined) return;
    let bytes: Buffer | string;
    try {
      const framer = this.codec() as Framer & Partial<FramerInPlace>;
      bytes = inPlace && framer.encodeInPlace !== undefined && this.socket.writableLength === 0 && this.heldBytes === 0 ? framer.encodeInPlace(value) : framer.encode(value);
      if (typeof bytes !== 'string' && !(bytes instanceof Uint8Array)) throw new TypeError(messages.badEncode(this.framing.name, bytes));
    } catch (err) {
      // A reply the framer cannot encode is the handler's error at this place in reply order: the replies
      // after it are not owed. A push is no place in reply order: the replies owed to calls still running
      // go out first, then the connection ends with the error.
      this.halted = true;
      this.dropWaiting();
      if (!push) this.slots.length = 0;
      this.endWith(err);
      if (push && !this.batching) {
        this.flow();
        this.maybeEnd();
      }
      return;
    }
    // A push counts in bytes, as maxOutputBuffer does: a string's length is UTF-16 units, and pushes of '€' held
    // three times maxOutputBuffer before it stopped them (hostile run). A reply only moves replyEnd along with
    // `queued`, so its length, whatever its unit, cancels out (no byteLength on the replies' fast path).
    this.queued += push && typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
    if (!push) this.replyEnd = this.queued;
    if (!this.batching) return this.write(bytes);
    if (typeof bytes === 'string') this.text += bytes;
    else {
      if (this.text !== '') this.batch[this.batched++] = this.text;
      this.text = '';
      this.batch[this.batched++] = bytes;
    }
    this.batchBytes += bytes.length;
    // Replies to one chunk's messages can be many times its size: past the high-water mark they go out
    // now, and if the connection cannot take them, the messages left wait (writeBlocked) for 'drain'.
    if (this.batchBytes >= this.highWater) this.writeBatch();
  }

  private flush(): void {
    this.batching = false;
    this.writeBatch();
  }

  private writeBatch(): void {
    const text = this.text;
    const n = this.batched;
    this.text = '';
    this.batchBytes = 0;
    if (n === 0) {
      if (text !== '') this.write(text);
      return;
    }
    this.batched = 0;
    const batch = this.batch;
    if (n === 1 && text === '') {
      const only = batch[0]!;
      batch[0] = undefined;
      return this.write(only);
    }
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const piece = batch[i]!;
      parts.push(typeof piece === 'string' ? Buffer.from(piece) : piece);
      batch[i] = undefined;
    }
    if (text !== '') parts.push(Buffer.from(text));
    if (n > 64) this.batch = []; // a pipelined burst: its slots are not kept per connection
    this.write(Buffer.concat(parts));
  }

  private write(bytes: Buffer | string): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (this.heldBytes > 0 || socket.writableNeedDrain) {
      this.hold(bytes); // behind output the client has not taken: kept compact here until 'drain'
      this.blocked();
      return;
    }
    if (!socket.write(bytes)) this.blocked(); // 'drain' follows
  }

  /** The output is above the high-water mark: writing waits for 'drain', and requestTimeout times the wait. */
  private blocked(): void {
    if (this.writeBlocked) return;
    this.writeBlocked = true;
    if (this.idleMs === Infinity) return;
    this.outputMoved(Date.now());
    this.armTimer();
  }

  private outputMoved(now: number): void {
    this.lastOutput = now;
    this.outputQueue = kernelQueue(this.socket);
  }

  /** Keeps `bytes` until the next flushHeld(), in order: small ones copied into a block, larger ones whole. */
  private hold(bytes: Buffer | string): void {
    const n = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
    this.heldBytes += n;
    const held = (this.held ??= []);
    if (n > HOLD_BLOCK / 4) {
      this.sealBlock();
      held.push(typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
      return;
    }
    if (this.block === undefined || this.block.length - this.blockUsed < n) {
      this.sealBlock();
      this.block = Buffer.allocUnsafe(HOLD_BLOCK);
    }
    this.blockUsed += typeof bytes === 'string' ? this.block.write(bytes, this.blockUsed) : bytes.copy(this.block, this.blockUsed);
  }

  private sealBlock(): void {
    if (this.block !== undefined && this.blockUsed > 0) this.held!.push(this.block.subarray(0, this.blockUsed));
    this.block = undefined;
    this.blockUsed = 0;
  }

  /** Writes what hold() kept, in one corked burst; whether the connection is still below its high-water mark. */
  private flushHeld(): boolean {
    this.sealBlock();
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return false;
    if (held.length === 1) return socket.write(held[0]);
    let ok = true;
    socket.cork();
    for (const bytes of held) ok = socket.write(bytes);
    socket.uncork();
    return ok;
  }

  private dropHeld(): void {
    this.held = undefined;
    this.block = undefined;
    this.blockUsed = 0;
    this.heldBytes = 0;
  }

  /**
   * Reads while a message may be taken: not before serve() listens for data, not after the end, not while messages
   * wait, not above the high-water mark. Before serve() (a greeting sent from @Setup) a resume() let the bytes
   * already buffered (read with a PROXY header or a TLS handshake, or relayed to a worker) go to no listener: the
   * client's first lines were lost, nothing logged (new-user run).
   */
  private flow(): void {
    const want =
      this.settle !== undefined && !this.finished && !this.closeAsked && !this.failed && !this.endError && !this.halted && !this.inputEnded && this.head === this.waiting.length && !this.writeBlocked;
    if (want === this.reading) return;
    this.reading = want;
    if (want) {
      this.readEpoch++;
      this.socket.resume();
      if (this.pausedAt !== 0) {
        // The incomplete message's clock stood still while the server did not read: a client that sent half a
        // line while waiting for earlier replies was cut the moment reading resumed (hostile run).
        if (this.partialSince > 0) this.partialSince += Date.now() - this.pausedAt;
        this.pausedAt = 0;
      }
      this.armTimeouts();
      if (this.stopping) this.checkKernelRead();
    } else {
      this.socket.pause();
      if (this.partialSince > 0) this.pausedAt = Date.now();
    }
  }

  /** A user framer's messages up to the first longer than maxLength, which ends the connection after the replies to those before it. */
  private withinMaxLength(decoded: unknown[]): unknown[] {
    let over: ReturnType<typeof tooLongMessage>;
    try {
      over = tooLongMessage(decoded, this.framing);
    } catch (err) {
      // A message the framer made that throws when looked at (a revoked Proxy's `instanceof`): its bug, this
      // connection's end, not an exception out of the socket's data listener (hostile re-check: the process died).
      this.endWith(err, true);
      return [];
    }
    if (!over) return decoded;
    this.endWith(over.error, true);
    return decoded.slice(0, over.at);
  }

  /** The framer's partial message within maxLength (plus its delimiter or prefix); else the connection ends with a FrameTooLongError after the messages decoded. */
  private checkLength(bytes: number, produced: number): void {
    const max = this.framing.maxLength + SLACK;
    this.codec();
    const held = this.partial();
    if (held === undefined) {
      // Every byte fed since the last chunk that gave a message belongs to the message still coming.
      this.sinceMessage = produced > 0 ? 0 : this.sinceMessage + bytes;
      if (this.sinceMessage <= max) return;
    } else if (held <= max) return;
    this.endWith(new FrameTooLongError(messages.frameTooLong(this.framing.name, this.framing.maxLength, undefined, false, this.framing.fromLineLimit)), true);
  }

  /**
   * @internal Bytes of a message begun and not finished (the framer's count, else those fed since the last message),
   * while nothing else holds the connection: 0 while a call of the handler is still running (it holds the request,
   * not the client: hostile re-check, a stuck handler's error blamed the client's half line behind it).
   */
  heldPartial(): number {
    if (this.finished || this.inputEnded || this.inFlight > 0) return 0;
    return this.partial() ?? this.sinceMessage;
  }

  /**
   * The framer's `buffered` (undefined: it has none). A user framer's getter that throws, or gives no count of
   * bytes (NaN, negative), is its bug: the connection ends with that error, through @HandleError, and the count
   * is read as 0 from then on. It was read unguarded from the socket's data callback: the server's process (or
   * the worker, with every connection on it) died of it (hostile run).
   */
  private partial(): number | undefined {
    const framer = this.framer;
    if (framer === undefined) return undefined;
    if (this.badCount) return 0;
    let held: unknown;
    try {
      held = framer.buffered;
      if (held === undefined || (typeof held === 'number' && held >= 0)) return held as number | undefined;
      throw new TypeError(messages.badBuffered(this.framing.name, held));
    } catch (err) {
      this.badCount = true;
      this.endWith(err);
      return 0;
    }
  }

  private maybeEnd(): void {
    // Before serve() (a close() in @Setup) it waits: serve() ends it at once.
    if (this.finished || !this.settle || this.batching || this.inFlight > 0) return;
    if (this.failed) return this.finish();
    if (this.slots.length > 0) return;
    const idle = this.head === this.waiting.length;
    const partial = this.stopping ? this.partial() : 0; // before endError is read: a framer's bad count ends the connection
    if (this.endError && idle) return this.finish();
    const stopped = this.stopping && this.kernelRead && this.graceTimer === undefined && idle && !((partial ?? 0) > 0);
    if (this.closeAsked || (this.inputEnded && idle) || stopped) this.finish();
  }

  private finish(): void {
    this.finished = true;
    // A reply the kernel refused as it was written errored the socket on the spot (its 'error' event comes a
    // tick later, to no loop): that is how the connection ended. On Node 20 and 22, whose libuv reads a reset
    // that came with the request's bytes as an end of input, it is the only sign of the reset (hostile run: in
    // serial mode, four of five clients that reset while queued were counted nowhere).
    // Not when the connection was being closed (close(), shutdown, req.close()): its writes fail by design.
    const refused = this.failed || this.endError || this.closeAsked ? undefined : (this.socket as { errored?: Error | null }).errored;
    if (refused) {
      this.failed = true;
      this.error = refused;
    }
    // What is held is owed (the end waits for the socket to take it, bounded), unless the connection failed.
    if (this.heldBytes > 0) {
      if (this.failed) this.dropHeld();
      else this.flushHeld();
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.endGrace();
    const fed = this.socket as Fed;
    fed.off('data', onData);
    fed.off('end', onEnd);
    fed.off('close', onClose);
    fed.off('drain', onDrain);
    // 'error' stays: with the loop gone it does nothing, and a late error (a write that fails while the
    // server closes the connection) must find a listener rather than crash the process.
    fed[CONNECTION] = undefined;
    this.wakePushers(false);
    if (this.reading) {
      this.reading = false;
      fed.pause();
    }
    if (this.failed) this.settle?.reject(this.error);
    else if (this.endError) this.settle?.reject(this.endError.error);
    else this.settle?.resolve();
  }
}

// The listeners are shared by every connection and find their loop on the socket: an idle connection
// holds no closures for them.
const CONNECTION = Symbol('sockserve.messages');
type Fed = Duplex & { [CONNECTION]?: MessageConnection };

function onData(this: Fed, chunk: Buffer): void {
  this[CONNECTION]?.received(chunk);
}
function onEnd(this: Fed): void {
  this[CONNECTION]?.ended();
}
function onClose(this: Fed): void {
  this[CONNECTION]?.closed();
}
function onError(this: Fed, err: Error): void {
  this[CONNECTION]?.fail(err);
}
function onDrain(this: Fed): void {
  this[CONNECTION]?.drain();
}

/** Seconds to milliseconds; null, undefined, 0 or Infinity: no bound. */
function seconds(value: number | null | undefined): number {
  return value == null || !(value > 0) || value === Infinity ? Infinity : value * 1000;
}
