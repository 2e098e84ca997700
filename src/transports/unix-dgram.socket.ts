/**
 * DatagramSocket over AF_UNIX/SOCK_DGRAM, using the native addon `node-unix-socket` (Node has no Unix
 * datagram sockets of its own). The addon is loaded on first use only, so programs that never use Unix
 * datagrams never load it.
 *
 * What the addon does (measured with node-unix-socket 0.2.7, Node 20, Linux):
 * - a native socket holds the event loop open from its construction until `close()`, bound or not, so it
 *   is created in `bind()` and closed on every failure path;
 * - it delivers at most 65535 bytes of a datagram, silently: with maxPacketSize ≥ 65535 a cut datagram
 *   cannot be told apart from a 65535-byte one, and `truncated` stays false; so maxPacketSize is at most
 *   MAX_UNIX_DATAGRAM_PACKET (65534), where a longer datagram shows as one cut to it;
 * - its errors have no errno `code`, only a message ("Address already in use", "Message too long",
 *   "Connection refused"…);
 * - a send the kernel cannot take (EAGAIN: the client's receive queue is full, `net.unix.max_dgram_qlen` datagrams,
 *   10 by default, because it does not read, or not yet) is held inside the addon, which then polls its socket for
 *   writability *instead of* readability, for good: it sends the held datagram (and calls back) once the client
 *   makes room, but never reads again and spins the CPU until closed (measured: the event loop busy, 0.4 to 0.85 s
 *   of CPU a second, however many are stuck; calling its `startRecv()` again fails with EEXIST). It offers no
 *   writable event, no file descriptor and no blocking send. So replies go out from a second native socket, the
 *   sender, bound at the path before the receiving one (its file then unlinked for the receiver's): it has the
 *   server's name, so clients see replies come from the path, but no request reaches it. A send the kernel refuses
 *   (seen because the send's callback did not run inside `sendTo()`) makes the sender stuck: it is put aside with
 *   that reply (`park()`, which Python's blocking sendto resembles: the reply waits for room), for at most 250 ms,
 *   then closed, which drops it; the next reply goes from a fresh sender (`replaceSender()`), or, once the held
 *   reply went, from that one again, or next when another took its place meanwhile, until it has been idle for a while
 *   (`reuse()`). Fresh senders come
 *   from SPARE_SENDERS spares bound at the path with the first, and from more bound a turn before they are needed
 *   once few are left (SPARE_LOW); when none is ready, one is bound at the path (the receiving socket's file
 *   hard-linked aside meanwhile), and a client that sends to the server in the microseconds without a file there
 *   gets ENOENT. Each EAGAIN may cost a sender, so replies to a client are paced to about the speed it reads them (a
 *   token bucket per client, slowed by each EAGAIN); one held back drops its replies for 250 ms, doubling to 30 s
 *   while it still makes no room, so that a client that never reads costs a sender per hold, not one per reply. At
 *   most 1024 replies (1 MiB) wait per client, 16 MiB in all. The receiving socket loses nothing meanwhile. A client
 *   connect()ed to the server takes datagrams from the receiving socket only (the kernel says EPERM to the sender),
 *   so its replies go from that one, which the kernel never refuses for a full queue (it does not throttle a
 *   socket's own peer), but does once its own send buffer is full (some 250 unread replies to connected clients
 *   with the kernel's default buffer, about 10,000 with the 8 MiB a widened() one gets here);
 *   then the receiving socket is replaced (`reopen()`), and the requests waiting in its receive queue are lost with
 *   it; such a reply is sent again after 1 ms, doubling to 64 ms, for at most 250 ms (an abstract name, which has no
 *   file for the sender's trick, is refused before binding: unix-path.ts);
 * - `close()` drops sends queued in the addon without calling back; none is ever left queued (above);
 * - `close()` leaves the socket file behind; this class removes it;
 * - it calls into JavaScript from libuv's poll phase without a callback scope, and its 'data' event is
 *   emitted through process.nextTick: on Node 26 (not 20) nothing drains that tick queue until something
 *   else wakes the loop (a timer), so a datagram waited for the next timer, up to seconds. Each native
 *   callback (the internal '_data' and '_error' events, send callbacks) therefore queues an immediate,
 *   which runs in the same loop turn and drains the ticks and microtasks behind it (`kick`);
 * - when a worker thread that loaded the addon exits, the addon's cleanup hook closes the native sockets of
 *   the whole process, not only that thread's: the main thread's socket stops receiving and its next
 *   `close()` aborts the process (libuv `uv_close: Assertion !uv__is_closing(handle)`). So the addon is
 *   loaded in the main thread only; workers get datagrams forwarded by the main thread.
 */
import * as fs from 'fs';
import { isMainThread } from 'worker_threads';
import type * as UnixSocketAddon from 'node-unix-socket';
import { AddressInUseError, UnreachableClientError } from '../errors/errors';
import { ClientAddress, formatAddress, isUnixAddress } from './address';
import type { DatagramSocket, ReceivedDatagram } from './datagram-socket';
import { closedForSend } from './socket-closed';
import { bindingWithMode, identityOf, identityOfSync, isOwnFile, PathIdentity, prepareUnixPath, removeUnixPath } from './unix-path';

type NativeDgramSocket = UnixSocketAddon.DgramSocket;

/**
 * A reply the kernel refused (EAGAIN: the client's receive queue is full) waits for room, for at most
 * WAIT_MAX_MS: held by the stuck sender (park()), or, refused to the receiving socket, sent again after
 * RETRY_FIRST_MS, the delay doubling to RETRY_MAX_MS. Replies to that client sent meanwhile wait behind it, in
 * order. At most WAIT_MAX_REPLIES replies and WAIT_MAX_BYTES bytes wait per client, WAIT_TOTAL_BYTES in all;
 * past them a reply is dropped at once.
 */
const RETRY_FIRST_MS = 1;
const RETRY_MAX_MS = 64;
const WAIT_MAX_MS = 250;
const WAIT_MAX_REPLIES = 1024;
const WAIT_MAX_BYTES = 1 << 20;
const WAIT_TOTAL_BYTES = 16 << 20;
/**
 * Pacing, a token bucket per client: replies go to it at `rate` a millisecond, in bursts of at most its
 * receive queue's length (net.unix.max_dgram_qlen, +1); the rest wait their turn, in order. `rate` starts at
 * PACE_RATE_MAX, halves at each EAGAIN (down to PACE_RATE_MIN) and grows by PACE_SPEED_UP with each reply sent
 * without one; after PACE_RESET_MS without a reply the client starts again at full pace. So replies go about
 * as fast as the client reads them, and a client that reads slowly empties its queue now and then: each EAGAIN
 * may cost a fresh sender (replaceSender()).
 */
const PACE_RATE_MIN = 1 / 64;
const PACE_SPEED_UP = 1.02;
const PACE_RESET_MS = 1000;
/**
 * Spare senders bound at bind() (see UnixDatagramSocket.spares): the first SPARE_SENDERS replacements of a
 * stuck sender (one per reply that met EAGAIN) leave no moment without a file at the path. Each is a file
 * descriptor and an idle native handle.
 */
export const SPARE_SENDERS = 64;
/**
 * Once fewer than SPARE_LOW spares are left, SPARE_REFILL more are bound at the path on the next turn (each
 * with its moment without a file there, see replaceSender()), and handed out from the turn after: a request
 * that reached one in its moment with the path is read meanwhile, and lost if that sender met EAGAIN first.
 */
const SPARE_LOW = 4;
/** A reused sender (reuse()) is closed once this long (ms) passes without an EAGAIN. */
const RETIRE_MS = 250;
const SPARE_REFILL = 8;
/** The send buffer asked for each sender (see widened()); the kernel cuts it to net.core.wmem_max. */
const SENDER_BUFFER = 4 << 20;
/**
 * What the kernel charges a sender's send buffer for a datagram until its receiver reads it (the skb's truesize),
 * at most: its bytes, rounded up to a page, and the buffer's bookkeeping. See `charged`.
 */
const CHARGE_OVERHEAD = 4096 + 1024;
/** Clients remembered for pacing and waiting replies; an idle one (nothing waiting) goes first. */
const PACE_MAX = 1024;
/** How many datagrams a client's receive queue holds: net.unix.max_dgram_qlen (Linux; 10 by default), and one more. */
const QUEUE_LENGTH = (() => {
  try {
    return Math.max(1, Number(fs.readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8')) || 10) + 1;
  } catch {
    return 11;
  }
})();
/** Replies a millisecond to a client, at most (a burst of a full queue each millisecond) and at least. */
const PACE_RATE_MAX = QUEUE_LENGTH;
/** How long replies to a client that never made room are dropped unsent, at first and at most (ms). */
const FULL_HOLD_MS = 250;
const FULL_HOLD_MAX_MS = 30_000;
/** How many such clients are remembered. */
const FULL_MAX = 1024;
/** The largest maxPacketSize of a Unix datagram server: node-unix-socket reads at most 65535 bytes, silently. */
export const MAX_UNIX_DATAGRAM_PACKET = 65534;

export type NativeDgramSocketClass = typeof UnixSocketAddon.DgramSocket;

/**
 * Loads `node-unix-socket` now; throws an Error naming @UnixDatagramServer, the platform and the fix, and
 * refuses to load it in a worker thread (see the top of this file).
 */
export function loadUnixDgramAddon(): NativeDgramSocketClass {
  if (!isMainThread) throw new Error(text.notInWorker());
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('node-unix-socket') as typeof UnixSocketAddon;
    return addon.DgramSocket;
  } catch (err) {
    throw new Error(text.noAddon(err), { cause: err });
  }
}

interface WaitingReply {
  data: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface WaitingClient {
  /** Replies waiting for room, oldest first; the first is the one the kernel refused. */
  queue: WaitingReply[];
  bytes: number;
  /** When the first reply in the queue was first refused (performance.now()), 0 while sends succeed. */
  since: number;
  /** The next retry's delay (ms). */
  delay: number;
  /** Pacing (see PACE_RATE_MIN): replies it may have a millisecond, the bucket's tokens, and when they were counted. */
  rate: number;
  tokens: number;
  counted: number;
  /** A reply the sender met EAGAIN with, which its socket holds until the client makes room (park()). */
  stall: { sender: NativeDgramSocket; reply: WaitingReply; since: number; timer: NodeJS.Timeout | undefined; ownBuffer: boolean } | undefined;
  timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
}

export interface ResolvedUnixDgramOptions {
  path: string;
  maxPacketSize: number;
  owner: string;
  onFailure?: (error: Error) => void;
  /** How many spare senders bind() binds (SPARE_SENDERS by default). */
  spareSenders: number;
  /** The socket file's permission bits (`@UnixDatagramServer`'s `mode`): it is created with them (bindingWithMode). */
  mode?: number;
}

export class UnixDatagramSocket implements DatagramSocket {
  private socket: NativeDgramSocket | undefined;
  /**
   * The socket replies are sent from: bound at the path before `socket`, its
   * file then unlinked for `socket`'s, so it has the same name (replies come from the path) but no request
   * reaches it. An EAGAIN makes it stuck (see the top of this file): it is parked (park()) and the next send
   * takes a fresh one (replaceSender()), while `socket`, which never sends but to connected clients, goes on
   * reading and loses nothing.
   */
  private sender: NativeDgramSocket | undefined;
  /**
   * Senders bound with the path's name in bind(), before the receiving socket, each taking the place of a stuck
   * one in turn: binding a fresh one later leaves the path without a file for a moment, and a client that sends
   * to the server then gets ENOENT (replaceSender()).
   */
  private readonly spares: NativeDgramSocket[] = [];
  /** Spares bound by refill() whose first turn has not passed yet (see SPARE_LOW). */
  private readonly unready = new WeakSet<NativeDgramSocket>();
  private refilling: NodeJS.Immediate | undefined;
  /** Senders that met EAGAIN (they spin: see the top of this file), when the last EAGAIN was, and the timer that closes a reused one (reuse()). */
  private readonly spinning = new WeakSet<NativeDgramSocket>();
  private lastEagain = 0;
  private retiring: NodeJS.Timeout | undefined;
  /** Senders whose parked reply went while another was the sender (reuse()): the next ones, before any spare. */
  private readonly reusable: NativeDgramSocket[] = [];
  /** The file we bound, so close() never removes a file that someone else put there later. */
  private created: PathIdentity | undefined;
  private wasBound = false;
  private closed = false;
  /** An error the addon raised after binding (the addon closes the socket then); later sends report it. */
  private failure: Error | undefined;
  private readonly listeners: Array<(d: ReceivedDatagram) => void> = [];
  /**
   * Clients that made no room for WAIT_MAX_MS, by path: replies to them are dropped unsent until `until`
   * (performance.now() milliseconds), because each EAGAIN costs a fresh socket. `hold` doubles from
   * FULL_HOLD_MS to FULL_HOLD_MAX_MS while the client still has no room, and the entry goes when a send
   * to it succeeds, or when another socket is bound at that path (a new client: `client`, the identity of the
   * file that was full, is no longer the file there; its inode alone is not enough, file systems reuse a freed one).
   * At most FULL_MAX entries, the oldest forgotten first.
   */
  private readonly full = new Map<string, { until: number; hold: number; client: PathIdentity | undefined }>();
  /**
   * Clients replied to lately, by path: the pacing of sends to them, and their replies waiting for room or
   * for their turn (in order). At most PACE_MAX entries, least recently used first out among those with
   * nothing waiting; the bytes waiting are counted in `waitingBytes`.
   */
  private readonly waiting = new Map<string, WaitingClient>();
  private waitingBytes = 0;
  /**
   * What each sender has sent, as the kernel charges it (CHARGE_OVERHEAD), read or not: while that is less than
   * its send buffer, an EAGAIN it meets cannot be its own buffer's (giveUp()).
   */
  private readonly charged = new WeakMap<NativeDgramSocket, number>();

  constructor(
    private readonly opts: ResolvedUnixDgramOptions,
    private readonly Native: NativeDgramSocketClass,
  ) {}

  /** Replaces a stale socket file at the path (see prepareUnixPath), then binds. */
  async bind(): Promise<void> {
    const { path, owner } = this.opts;
    if (this.closed) throw new Error(text.closed(owner, 'bind'));
    if (this.socket) throw new Error(text.bindTwice(owner));
    await prepareUnixPath(path, owner, true);
    if (this.closed) throw new Error(text.closed(owner, 'bind'));
    // Wide too: it sends the replies to clients connected to it, whose unread ones count against its buffer.
    const socket = widened(new this.Native());
    let sender: NativeDgramSocket | undefined;
    const spares: NativeDgramSocket[] = [];
    try {
      // Every file made at the path has the server's mode from its creation, the senders' too (clients could send to them).
      bindingWithMode(this.opts.mode, () => {
        sender = widened(new this.Native());
        sender.bind(path);
        fs.unlinkSync(path);
        // Spare senders, bound with the name now, while no client can be sending to the path (see `spares`).
        for (let i = 0; i < this.opts.spareSenders; i++) {
          const spare = widened(new this.Native());
          spares.push(spare);
          spare.bind(path);
          fs.unlinkSync(path);
        }
        socket.bind(path);
      });
      this.created = await identityOf(path);
    } catch (err) {
      socket.close();
      sender?.close();
      for (const spare of spares) spare.close();
      if (/address already in use/i.test((err as Error).message)) {
        throw new AddressInUseError(text.inUse(owner, path), { cause: err });
      }
      throw new Error(text.bindFailed(owner, path, err), { cause: err });
    }
    if (this.closed) {
      socket.close(); // close() ran while we were checking the path
      sender?.close();
      for (const spare of spares) spare.close();
      await this.removeOwnFile();
      return;
    }
    this.wasBound = true;
    this.use(socket);
    if (sender) this.listenTo(sender);
    this.sender = sender;
    for (const spare of spares) this.listenTo(spare);
    this.spares.push(...spares);
  }

  /** A sender's events, from its binding on: a spare reads, and delivers, whatever reached it in its moment with the path. */
  private listenTo(sender: NativeDgramSocket): void {
    // It errs only on a receive error, and the addon closes it then: the next send binds another.
    sender.on('error', () => {
      if (this.sender === sender) this.sender = undefined;
      const spare = this.spares.indexOf(sender);
      if (spare >= 0) this.spares.splice(spare, 1);
      const again = this.reusable.indexOf(sender);
      if (again >= 0) this.reusable.splice(again, 1);
    });
    // Datagrams that reached it in the moment it had the path (replaceSender()) are requests too.
    sender.on('data', (buf: Buffer, from: string) => this.deliver(buf, from));
    sender.on('_data', kick);
    sender.on('_error', kick);
  }

  /** Binds SPARE_REFILL spares at the path on the next turn, ready on the turn after (see SPARE_LOW). */
  private refill(): void {
    if (this.refilling || this.closed || this.failure || this.opts.spareSenders === 0) return;
    this.refilling = setImmediate(() => {
      this.refilling = undefined;
      const fresh: NativeDgramSocket[] = [];
      while (!this.closed && !this.failure && fresh.length < Math.min(SPARE_REFILL, this.opts.spareSenders)) {
        let spare: NativeDgramSocket;
        try {
          spare = this.bindAtPath();
        } catch {
          break; // the path is not ours any more: the next replaceSender() that needs one says so
        }
        this.listenTo(spare);
        this.unready.add(spare);
        this.spares.push(spare);
        fresh.push(spare);
      }
      // An immediate queued from an immediate runs on the next turn, after its poll phase has read the spares.
      if (fresh.length > 0) setImmediate(() => fresh.forEach((spare) => this.unready.delete(spare)));
    });
  }

  /**
   * A fresh sender in place of the stuck one (or the one the addon closed, or none): a spare (`spares`) while
   * one is left. Else one is bound with the same name: the socket file
   * at the path (the receiving socket's) is hard-linked beside it and unlinked, the fresh socket binds the
   * path, and the link is renamed back over it. Clients that send in the microseconds without a file at the
   * path get ENOENT; those that send while the fresh sender has it reach the fresh sender, which delivers
   * them. Returns the fresh sender, or undefined when the socket failed (the path is not ours any more).
   */
  private replaceSender(stuck: NativeDgramSocket | undefined): NativeDgramSocket | undefined {
    let next = this.reusable.pop();
    if (!next) {
      const ready = this.spares.findIndex((spare) => !this.unready.has(spare));
      next = ready >= 0 ? this.spares.splice(ready, 1)[0] : undefined;
      if (this.spares.length < SPARE_LOW) this.refill();
    }
    if (!next) {
      try {
        next = this.bindAtPath();
      } catch (err) {
        this.sender = undefined;
        stuck?.close();
        this.fail(err as Error);
        return undefined;
      }
      this.listenTo(next);
    }
    this.sender = next;
    stuck?.close();
    return next;
  }

  /**
   * A fresh native socket bound with the path's name (see replaceSender()), the receiving socket's file back at
   * the path; throws, with nothing left open, when it cannot be bound.
   */
  private bindAtPath(): NativeDgramSocket {
    const { path } = this.opts;
    const aside = `${path}.${process.pid}.swap`;
    let fresh: NativeDgramSocket | undefined;
    let linked = false;
    try {
      fresh = widened(new this.Native()); // before the unlink: the moment without a file at the path is the bind's alone
      if (isOwnFile(path, this.created)) {
        fs.rmSync(aside, { force: true });
        fs.linkSync(path, aside);
        linked = true;
        fs.unlinkSync(path);
      }
      try {
        fresh.bind(path);
      } finally {
        if (linked) fs.renameSync(aside, path);
      }
      return fresh;
    } catch (err) {
      fresh?.close();
      if (linked) fs.rmSync(aside, { force: true });
      throw err;
    }
  }

  private holdBack(path: string, previous: { hold: number } | undefined): void {
    const hold = previous ? Math.min(previous.hold * 2, FULL_HOLD_MAX_MS) : FULL_HOLD_MS;
    this.full.delete(path);
    this.full.set(path, { until: performance.now() + hold, hold, client: identityOfSync(path) });
    if (this.full.size > FULL_MAX) this.full.delete(this.full.keys().next().value!);
  }

  private use(socket: NativeDgramSocket): void {
    this.socket = socket;
    socket.on('error', (err: Error) => {
      if (this.socket === socket) this.fail(err);
    });
    socket.on('data', (buf: Buffer, from: string) => this.deliver(buf, from));
    // The addon's native events (0.2.7: '_data', '_error'): wake the loop so that its nextTick'd 'data' runs now.
    socket.on('_data', kick);
    socket.on('_error', kick);
  }

  /**
   * After a send from the receiving socket (to a connected client) the kernel refused with EAGAIN the addon reads
   * no more (see the top of this file): bind a fresh native socket at the same path, synchronously so that no other send reaches the stuck one, and
   * close the stuck one. Clients that send in the microseconds between the unlink and the bind get ENOENT;
   * datagrams still queued in the old socket are lost; a client that had connect()ed to the server must
   * connect again (as after a server restart). If the path cannot be bound again, the socket fails as the
   * addon's own errors make it fail.
   */
  private reopen(stuck: NativeDgramSocket): void {
    const { path } = this.opts;
    let fresh: NativeDgramSocket | undefined;
    try {
      // The file's permission bits (@UnixDatagramServer({ mode }) set them after binding) go to the new file.
      const mode = isOwnFile(path, this.created) ? fs.statSync(path).mode & 0o777 : undefined;
      fresh = widened(new this.Native()); // before the unlink, as in replaceSender()
      if (mode !== undefined) fs.unlinkSync(path);
      const bound = fresh;
      bindingWithMode(mode, () => bound.bind(path)); // never wider than the file it replaces, even for a moment
      if (mode !== undefined) fs.chmodSync(path, mode);
      this.created = identityOfSync(path);
    } catch (err) {
      fresh?.close();
      this.socket = undefined;
      stuck.close();
      this.fail(err as Error);
      return;
    }
    this.use(fresh);
    stuck.close();
  }

  address(): ClientAddress {
    if (!this.wasBound) throw new Error(text.notBound(this.opts.owner, 'address'));
    return { path: this.opts.path };
  }

  send(data: Buffer, to: ClientAddress): Promise<void> {
    const { owner } = this.opts;
    const socket = this.socket;
    if (this.closed) return Promise.reject(closedForSend(owner));
    if (this.failure) return Promise.reject(this.failure);
    if (!socket) return Promise.reject(new Error(text.notBound(owner, 'send')));
    if (!isUnixAddress(to)) return Promise.reject(new Error(text.notUnix(owner, formatAddress(to))));
    if (to.path === '') return Promise.reject(unboundPeerError(owner));
    const path = to.path;
    const full = this.full.get(path);
    if (full && performance.now() < full.until) {
      if (isOwnFile(path, full.client)) {
        return Promise.reject(new UnreachableClientError(text.stillFull(owner, data.length, path, full.hold), 'EAGAIN'));
      }
      this.full.delete(path); // another client bound that path since: it owes nothing of the old one's hold
    }
    return new Promise<void>((resolve, reject) => {
      const reply: WaitingReply = { data, resolve, reject };
      const client = this.paced(path);
      if (!client) {
        reject(new UnreachableClientError(text.tooManyWaiting(owner, data.length, path, PACE_MAX), 'EAGAIN'));
        return;
      }
      if (client.queue.length > 0 || client.stall || !this.mayGo(client)) {
        this.enqueue(client, path, reply);
        return;
      }
      if (this.trySend(client, path, reply)) return;
      // Refused (EAGAIN): the reply waits for room, and so do the replies sent to that client after it.
      this.enqueue(client, path, reply);
      this.refused(client, path);
    });
  }

  /** The client's pacing entry (made now, evicting the least recently used idle one), or none if all wait. */
  private paced(path: string): WaitingClient | undefined {
    let client = this.waiting.get(path);
    if (client) {
      this.waiting.delete(path); // to the end: most recently used
      this.waiting.set(path, client);
      return client;
    }
    if (this.waiting.size >= PACE_MAX) {
      for (const [other, idle] of this.waiting) {
        if (idle.queue.length > 0 || idle.timer || idle.stall) continue;
        this.waiting.delete(other);
        break;
      }
      if (this.waiting.size >= PACE_MAX) return undefined;
    }
    client = { queue: [], bytes: 0, since: 0, delay: RETRY_FIRST_MS, rate: PACE_RATE_MAX, tokens: QUEUE_LENGTH, counted: performance.now(), stall: undefined, timer: undefined };
    this.waiting.set(path, client);
    return client;
  }

  /** Whether the client's bucket holds a token now (taken if so); else due() says in how many ms it will. */
  private mayGo(client: WaitingClient): boolean {
    const now = performance.now();
    const elapsed = now - client.counted;
    if (elapsed >= PACE_RESET_MS) client.rate = PACE_RATE_MAX; // quiet for long: its queue is empty
    client.tokens = Math.min(client.tokens + elapsed * client.rate, QUEUE_LENGTH);
    client.counted = now;
    if (client.tokens < 1) return false;
    client.tokens -= 1;
    return true;
  }

  /**
   * Sends one reply now, from the sender (see `sender`), or from the receiving socket to a client connected to
   * it (the kernel refuses others' datagrams to a connected socket: EPERM). When the kernel refused the sender
   * (EAGAIN), the addon holds the datagram: the sender is parked with the reply (park()), which settles when it
   * goes or is given up. False when the kernel refused the receiving
   * socket: it stops reading (see the top of this file), so it is replaced at once (which drops the datagram)
   * and the reply is the caller's to send again. Otherwise the reply is settled.
   */
  private trySend(client: WaitingClient, path: string, reply: WaitingReply, retryOf?: number): boolean {
    const { owner } = this.opts;
    const { data } = reply;
    const attempt = (socket: NativeDgramSocket, onError: (err: unknown, late: boolean) => void, onLate?: () => void): boolean => {
      let answered = false;
      let returned = false;
      try {
        socket.sendTo(data, 0, data.length, path, (err) => {
          answered = true;
          if (err) onError(err, returned);
          else {
            reply.resolve();
            this.full.delete(path); // it reads again
          }
          if (returned) onLate?.();
        });
      } catch (err) {
        answered = true;
        onError(err, false);
      }
      returned = true;
      return answered;
    };
    const fail = (err: unknown) => reply.reject(sendError(owner, data.length, path, err));
    const viaReceiver = (): boolean => {
      const socket = this.socket;
      if (!socket) {
        reply.reject(this.failure ?? closedForSend(owner));
        return true;
      }
      if (attempt(socket, fail)) return true;
      this.reopen(socket);
      return false;
    };
    const sender = this.sender ?? this.replaceSender(undefined);
    if (!sender) {
      reply.reject(this.failure ?? closedForSend(owner));
      return true;
    }
    let connected = false;
    // EPERM: the client is connected to the receiving socket, which sends that reply; too late for that once stalled.
    const onError = (err: unknown, late: boolean) => (!late && peerErrorCode(err) === 'EPERM' ? (connected = true) : fail(err));
    const sent = attempt(sender, onError, () => this.unstall(path, client, sender));
    if (connected) return viaReceiver();
    if (sent) {
      client.rate = Math.min(client.rate * PACE_SPEED_UP, PACE_RATE_MAX);
      this.charged.set(sender, (this.charged.get(sender) ?? 0) + data.length + CHARGE_OVERHEAD);
    } else this.park(client, path, sender, reply, retryOf);
    return true;
  }

  /**
   * The sender met EAGAIN: the addon holds the reply and sends it when the client makes room (its callback then
   * runs: unstall()), polling the socket meanwhile and reading no more for good (see the top of this file). So
   * that socket is parked with the reply, and the next send takes a fresh sender (replaceSender()); replies to
   * that client wait behind it, for at most WAIT_MAX_MS (giveUp()); a client held back before and not heard of
   * since gets no wait.
   */
  private park(client: WaitingClient, path: string, sender: NativeDgramSocket, reply: WaitingReply, retryOf?: number): void {
    slowDown(client);
    if (this.sender === sender) this.sender = undefined;
    this.spinning.add(sender);
    this.lastEagain = performance.now();
    client.stall = { sender, reply, since: retryOf ?? performance.now(), timer: undefined, ownBuffer: this.mayBeFull(sender) };
    const previous = this.full.get(path);
    if (retryOf !== undefined || (previous !== undefined && isOwnFile(path, previous.client))) this.giveUp(path, client, false);
    else client.stall.timer = setTimeout(() => this.giveUp(path, client, true), WAIT_MAX_MS);
  }

  /** Whether the sender's own send buffer may be what refused it (see `charged`). */
  private mayBeFull(sender: NativeDgramSocket): boolean {
    try {
      return (this.charged.get(sender) ?? 0) >= sender.getSendBufferSize();
    } catch {
      return true;
    }
  }

  /** The parked reply went (the client read): its socket sends again (reuse()) or is closed, and what waited behind it goes. */
  private unstall(path: string, client: WaitingClient, sender: NativeDgramSocket): void {
    const stall = client.stall;
    if (stall?.sender !== sender) return;
    client.stall = undefined;
    cancel(stall.timer);
    // It sends again (it only reads no more, and spins): the sender again, or the next one if another took its place meanwhile.
    if (!this.closed && !this.failure) this.reuse(sender);
    else closeParked(sender);
    if (this.waiting.get(path) === client && client.queue.length > 0) this.schedule(client, path, 0);
  }

  /**
   * A sender whose parked reply went is the sender again (or, when another took its place meanwhile, waits in
   * `reusable` to be the next one, before any spare): a client that reads slowly costs one sender for its whole
   * burst, not one per EAGAIN (30 for 1,000 replies read at 0.5 ms each), and so do several slow readers, or one
   * among other clients, whose replies took a fresh sender while its reply was parked (a spare per EAGAIN: 45 in
   * 3 s for one slow reader and four ping-pong clients, and the spares ran out). It spins the event loop while
   * open (see the top of this file), so it is closed once RETIRE_MS pass without an EAGAIN, and the next send
   * takes a fresh one.
   */
  private reuse(sender: NativeDgramSocket): void {
    if (this.sender === undefined) this.sender = sender;
    else this.reusable.push(sender);
    this.lastEagain = performance.now();
    if (this.retiring) return;
    const check = () => {
      this.retiring = undefined;
      if (this.closed) return;
      const current = this.sender;
      const currentSpins = current !== undefined && this.spinning.has(current);
      if (!currentSpins && this.reusable.length === 0) return;
      const idle = performance.now() - this.lastEagain;
      if (idle < RETIRE_MS) {
        this.retiring = setTimeout(check, RETIRE_MS - idle);
        return;
      }
      // None holds a datagram: a parked sender is neither current nor reusable.
      for (const spinning of this.reusable.splice(0)) spinning.close();
      if (currentSpins) {
        this.sender = undefined;
        current.close();
      }
    };
    this.retiring = setTimeout(check, RETIRE_MS);
  }

  /**
   * The parked reply found no room for WAIT_MAX_MS: drop it and the client's waiting replies, hold it back. But
   * first (`retry`) it goes once more, from a fresh sender: an EAGAIN does not say whose room was short, the
   * client's receive queue or the stuck sender's own send buffer (SO_SNDBUF, 208 KiB by default), against which
   * the kernel counts every datagram it sent until its receiver reads it. Replies it sent to other clients that do
   * not read yet (large ones: four of 60 KB) fill that buffer, and its next reply, to a client that reads, meets
   * EAGAIN and never gets room however fast that client reads. Only a refusal to the fresh sender (whose buffer
   * holds nothing) says that the client's queue is full. Not when the stuck sender had sent less than its buffer
   * holds (`charged`): then it was the client's queue, and a second sender is not spent on it.
   */
  private giveUp(path: string, client: WaitingClient, retry: boolean): void {
    const stall = client.stall;
    if (!stall) return;
    if (retry && stall.ownBuffer && !this.closed && !this.failure && this.waiting.get(path) === client) {
      client.stall = undefined;
      cancel(stall.timer);
      // A timer, not one of its callbacks: closed at once, it drops the reply it holds without calling back.
      stall.sender.close();
      if (!this.trySend(client, path, stall.reply, stall.since)) {
        // Refused to the receiving socket (the path is a client connected to it now): it waits, as in flush().
        this.putBack(client, stall.reply);
        this.refused(client, path);
        return;
      }
      if (this.waiting.get(path) === client && client.queue.length > 0 && !client.stall) this.schedule(client, path, due(client));
      return;
    }
    const waited = Math.round(performance.now() - stall.since);
    this.forget(path, client, (reply) => new UnreachableClientError(text.queueFull(this.opts.owner, reply.data.length, path, waited), 'EAGAIN'));
    this.holdBack(path, this.full.get(path));
  }

  /** Puts a reply in the client's queue, or drops it when the queue or all queues hold their most. */
  private enqueue(client: WaitingClient, path: string, reply: WaitingReply): void {
    const bytes = reply.data.length;
    if (client.queue.length >= WAIT_MAX_REPLIES || client.bytes + bytes > WAIT_MAX_BYTES || this.waitingBytes + bytes > WAIT_TOTAL_BYTES) {
      const why = client.queue.length >= WAIT_MAX_REPLIES || client.bytes + bytes > WAIT_MAX_BYTES
        ? `${client.queue.length} replies (${client.bytes} bytes) to it were already waiting for room, at most ${WAIT_MAX_REPLIES} (${WAIT_MAX_BYTES} bytes)`
        : `replies of ${this.waitingBytes} bytes to all clients were already waiting for room, at most ${WAIT_TOTAL_BYTES}`;
      reply.reject(new UnreachableClientError(text.waitFull(this.opts.owner, bytes, path, why), 'EAGAIN'));
      return;
    }
    client.queue.push(reply);
    client.bytes += bytes;
    this.waitingBytes += bytes;
    if (!client.timer) this.schedule(client, path, due(client));
  }

  /** A send to the client met EAGAIN: try again later, or give up if it has had no room for WAIT_MAX_MS. */
  private refused(client: WaitingClient, path: string): void {
    const now = performance.now();
    slowDown(client);
    if (client.since === 0) {
      client.since = now;
      client.delay = RETRY_FIRST_MS;
    } else client.delay = Math.min(client.delay * 2, RETRY_MAX_MS);
    const previous = this.full.get(path);
    // A client held back before and not heard of since (no send to it succeeded) gets no second wait.
    const known = previous !== undefined && isOwnFile(path, previous.client);
    if (known || now - client.since >= WAIT_MAX_MS) {
      // It makes no room: drop what waits, and hold its next replies back (each refusal costs a fresh socket).
      const waited = Math.round(now - client.since);
      this.forget(path, client, (reply) => new UnreachableClientError(text.queueFull(this.opts.owner, reply.data.length, path, waited), 'EAGAIN'));
      this.holdBack(path, previous);
      return;
    }
    this.schedule(client, path, client.delay);
  }

  private schedule(client: WaitingClient, path: string, delay: number): void {
    cancel(client.timer);
    client.timer = delay > 0 ? setTimeout(() => this.flush(path, client), delay) : setImmediate(() => this.flush(path, client));
  }

  /** Sends the client's waiting replies, as many as its pacing window allows; the rest wait for the next. */
  private flush(path: string, client: WaitingClient): void {
    client.timer = undefined;
    if (this.waiting.get(path) !== client) return;
    if (this.closed || this.failure || !this.socket) {
      const error = this.closed ? closedForSend(this.opts.owner) : this.failure ?? new Error(text.notBound(this.opts.owner, 'send'));
      this.forget(path, client, () => error);
      return;
    }
    while (client.queue.length > 0 && !client.stall && this.mayGo(client)) {
      if (this.failure) return this.flush(path, client); // a fresh socket could not be bound: fail what waits
      // Off the queue first: parking may drop the client's queue (giveUp()) before trySend() returns.
      const reply = client.queue.shift()!;
      client.bytes -= reply.data.length;
      this.waitingBytes -= reply.data.length;
      if (!this.trySend(client, path, reply)) {
        this.putBack(client, reply);
        this.refused(client, path);
        return;
      }
      client.since = 0;
      client.delay = RETRY_FIRST_MS;
    }
    // Behind a parked reply, the rest wait for unstall().
    if (client.queue.length > 0 && !client.stall) this.schedule(client, path, due(client));
  }

  /** Puts a reply back at the head of the client's queue (it was taken off to be sent), counting its bytes again. */
  private putBack(client: WaitingClient, reply: WaitingReply): void {
    client.queue.unshift(reply);
    client.bytes += reply.data.length;
    this.waitingBytes += reply.data.length;
  }

  /** Removes the client's entry; its waiting replies are rejected with `error(reply)`. */
  private forget(path: string, client: WaitingClient, error?: (reply: WaitingReply) => Error): void {
    cancel(client.timer);
    client.timer = undefined;
    if (this.waiting.get(path) === client) this.waiting.delete(path);
    const stall = client.stall;
    client.stall = undefined;
    if (stall) {
      cancel(stall.timer);
      closeParked(stall.sender); // which drops the reply it holds, unanswered
      this.putBack(client, stall.reply);
    }
    const queue = client.queue.splice(0);
    this.waitingBytes -= client.bytes;
    client.bytes = 0;
    for (const reply of queue) reply.reject(error ? error(reply) : closedForSend(this.opts.owner));
  }

  onMessage(listener: (d: ReceivedDatagram) => void): void {
    this.listeners.push(listener);
  }

  /** Closes the socket and removes the socket file we bound. No send is ever left queued in the addon (see send()). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [path, client] of [...this.waiting]) this.forget(path, client);
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
    this.sender?.close();
    this.sender = undefined;
    cancel(this.refilling);
    cancel(this.retiring);
    this.retiring = undefined;
    this.refilling = undefined;
    for (const spinning of this.reusable.splice(0)) spinning.close();
    for (const spare of this.spares.splice(0)) spare.close();
    await this.removeOwnFile();
  }

  private deliver(buf: Buffer, from: string): void {
    if (this.closed) return; // the addon emits on a later tick, possibly after close()
    const max = this.opts.maxPacketSize;
    const truncated = buf.length > max;
    const data = truncated ? Buffer.from(buf.subarray(0, max)) : buf;
    const datagram: ReceivedDatagram = { data, from: { path: from ?? '' }, truncated };
    for (const listener of this.listeners) listener(datagram);
  }

  private fail(err: Error): void {
    if (this.failure || this.closed) return;
    this.failure = new Error(text.failed(this.opts.owner, err), { cause: err });
    this.opts.onFailure?.(this.failure);
  }

  private async removeOwnFile(): Promise<void> {
    const created = this.created;
    this.created = undefined;
    if (created) await removeUnixPath(this.opts.path, created);
  }
}

/**
 * The addon's messages (strerror) for a client path that cannot take a reply, each the client's doing: it
 * went away (ECONNREFUSED, ENOENT), its path is not a datagram socket any more (EPROTOTYPE), or cannot be
 * reached by this process (EACCES: its socket file's permission bits; ENOTDIR, ELOOP: the path itself), or is
 * connect()ed to another socket (EPERM: the kernel refuses datagrams from any other socket to a connected one; it
 * connected elsewhere, or to the server's receiving socket before reopen() replaced it). The sender's own EPERM for a
 * client connected to the receiving socket is no error: that reply goes again from the receiving socket (trySend).
 */
const PEER_ERRORS: Array<[RegExp, UnreachableClientError['code']]> = [
  [/connection refused/i, 'ECONNREFUSED'],
  [/no such file/i, 'ENOENT'],
  [/protocol wrong type/i, 'EPROTOTYPE'],
  [/permission denied/i, 'EACCES'],
  [/not a directory/i, 'ENOTDIR'],
  [/too many levels of symbolic links/i, 'ELOOP'],
  [/operation not permitted/i, 'EPERM'],
];

/** The errno name of a send error the client caused (PEER_ERRORS), read from the addon's message; undefined for others. */
function peerErrorCode(err: unknown): UnreachableClientError['code'] | undefined {
  const why = message(err);
  return PEER_ERRORS.find(([pattern]) => pattern.test(why))?.[1];
}

/** The error for a send the addon refused: UnreachableClientError when the client is gone, else a plain Error. */
function sendError(owner: string, bytes: number, path: string, err: unknown): Error {
  const code = peerErrorCode(err);
  const line = code === 'EPERM' ? text.connectedElsewhere(owner, bytes, path) : text.sendFailed(owner, bytes, path, err);
  return code ? new UnreachableClientError(line, code, { cause: err }) : new Error(line, { cause: err });
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A reply to a client with no path (unbound, or abstract): it cannot be sent (EDESTADDRREQ). sockserve/testing's server says it too. */
export function unboundPeerError(owner: string): UnreachableClientError {
  return new UnreachableClientError(text.unboundPeer(owner), 'EDESTADDRREQ');
}

const text = {
  noAddon: (err: unknown) =>
    `@UnixDatagramServer / UnixDatagramServer: could not load the native addon 'node-unix-socket' on ` +
    `${process.platform}-${process.arch} (${message(err)}). Node has no Unix datagram sockets of its own. ` +
    `Fix: run 'npm install node-unix-socket' so that its prebuilt binary for this platform is installed ` +
    `(Linux and macOS only), or use @UnixStreamServer or @UdpServer instead.`,
  notInWorker: () =>
    `@UnixDatagramServer / UnixDatagramServer: Unix datagram sockets can only be opened in the main thread. ` +
    `node-unix-socket closes every socket of the process when a worker thread that loaded it exits, and the ` +
    `process then aborts. Fix: open the socket in the main thread and hand the datagrams to workers ` +
    `(the @Threading strategy does this), or use @Forking, whose children are separate processes.`,
  inUse: (owner: string, path: string) =>
    `${owner}: the Unix socket path ${path} is already in use (another socket bound it just now). ` +
    `Fix: stop the other server, or choose another path.`,
  bindFailed: (owner: string, path: string, err: unknown) =>
    `${owner}: cannot bind a Unix datagram socket at ${path}: ${message(err)}. ` +
    `Fix: make sure the directory exists and is writable, and that the path is shorter than 108 bytes.`,
  bindTwice: (owner: string) =>
    `${owner}.bind(): the socket is already bound. Fix: call bind() once; create a new socket for another path.`,
  notBound: (owner: string, member: string) =>
    `${owner}.${member}(): the socket is not bound yet. Fix: await bind() first.`,
  closed: (owner: string, member: string) =>
    `${owner}.${member}(): the socket is closed. Fix: create a new socket; close() is final.`,
  stillFull: (owner: string, bytes: number, path: string, hold: number) =>
    `${owner}.send(): ${path} had no room for a datagram (EAGAIN) less than ${hold} ms ago; the reply of ` +
    `${bytes} bytes was dropped unsent. Fix (client side): read replies as they come.`,
  queueFull: (owner: string, bytes: number, path: string, waited: number) =>
    `${owner}.send(): ${path} had no room for a datagram ${waited > 0 ? `for ${waited} ms` : 'again, after a hold'} (EAGAIN: its receive queue is full, ` +
    `the client does not read its replies); the reply of ${bytes} bytes was dropped, as UDP drops a datagram ` +
    `the receiver has no room for. Fix (client side): read replies as they come, or raise net.unix.max_dgram_qlen.`,
  waitFull: (owner: string, bytes: number, path: string, why: string) =>
    `${owner}.send(): ${path} has no room for a datagram (EAGAIN) and ${why}; the reply of ${bytes} bytes was ` +
    `dropped. Fix (client side): read replies as they come, or send fewer requests at once.`,
  tooManyWaiting: (owner: string, bytes: number, path: string, most: number) =>
    `${owner}.send(): ${path} has no room for a datagram (EAGAIN), and ${most} other clients' replies are ` +
    `already waiting for room; the reply of ${bytes} bytes was dropped. Fix (client side): read replies as they come.`,
  notUnix: (owner: string, address: string) =>
    `${owner}.send(): ${address} is an IP address, but this is a Unix datagram socket. Fix: send to { path }.`,
  unboundPeer: (owner: string) =>
    `${owner}.send(): the client's Unix datagram socket has no path (it is unbound, or bound in Linux's abstract ` +
    `namespace, which node-unix-socket reports as an empty address too), so no reply can reach it. Fix: bind ` +
    `the client socket to a filesystem path before it sends, or do not reply to such clients.`,
  sendFailed: (owner: string, bytes: number, path: string, err: unknown) =>
    `${owner}.send(): could not send ${bytes} bytes to ${path}: ${message(err)}. ` +
    `Fix: check that a socket is bound at that path, and keep datagrams small (the receiver gets at most ` +
    `65535 bytes of one).`,
  connectedElsewhere: (owner: string, bytes: number, path: string) =>
    `${owner}.send(): ${path} is connect()ed to another socket and refuses datagrams from this one (EPERM): it ` +
    `connected elsewhere, or to this server's receiving socket before a reply that found its queue full had that socket ` +
    `replaced. The reply of ${bytes} bytes was dropped. Fix (client side): read replies as they come, and connect() to ` +
    `the server's path again after an error.`,
  failed: (owner: string, err: unknown) =>
    `${owner}: the Unix datagram socket failed and receives nothing more: ${message(err)}. ` +
    `Fix: close this server and bind a new one (and check that nothing else has taken its path).`,
};

function cancel(timer: NodeJS.Timeout | NodeJS.Immediate | undefined): void {
  if (!timer) return;
  if ('hasRef' in timer && 'refresh' in timer) clearTimeout(timer as NodeJS.Timeout);
  else clearImmediate(timer as NodeJS.Immediate);
}

/**
 * A sender with the largest send buffer the kernel allows (SENDER_BUFFER, cut to net.core.wmem_max, and doubled
 * by the kernel). The kernel charges a sender for each datagram until its receiver reads it, and polls it as
 * writable only while that charge is at most a quarter of its buffer; the addon sends a held (parked) reply only
 * when polled writable. With the default buffer (208 KiB) a client's full queue of 11 replies of 4 KB or more
 * is over that quarter, so a parked reply waited until the client had read 5 (4 KB) to 9 (20 KB) of them, not one,
 * and a client reading one every 100 to 200 ms lost all but 12 of a burst of 30 replies of 8 KB (hostile run).
 */
function widened(socket: NativeDgramSocket): NativeDgramSocket {
  try {
    socket.setSendBufferSize(SENDER_BUFFER);
  } catch {
    // the kernel's default buffer then
  }
  return socket;
}

/** Closes a parked sender on the next turn: never from inside one of its own callbacks. */
function closeParked(sender: NativeDgramSocket): void {
  setImmediate(() => sender.close());
}

/** An EAGAIN: half the rate, and an empty bucket (see PACE_RATE_MIN). */
function slowDown(client: WaitingClient): void {
  client.rate = Math.max(client.rate / 2, PACE_RATE_MIN);
  client.tokens = 0;
}

/** How long (ms, at least 1) until the client's bucket holds a token. */
function due(client: WaitingClient): number {
  return Math.max(1, (1 - client.tokens) / client.rate);
}

/** Queues an empty immediate: the loop runs it this turn, and with it the ticks and microtasks queued from native code. */
function kick(): void {
  setImmediate(noop);
}
function noop(): void {}
