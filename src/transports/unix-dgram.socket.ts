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
 * - a send the kernel cannot take (EAGAIN: the client's receive queue is full, `net.unix.max_dgram_qlen`
 *   datagrams, 10 by default, because it does not read) is queued inside the addon, which then polls its
 *   socket for writability *instead of* readability, for good: it never reads again and spins the CPU,
 *   even after the client reads or goes away. So one client that does not read its replies would stop the
 *   whole server. This class sees it (the send's callback did not run inside `sendTo()`), drops that
 *   reply (rejected with a routine EAGAIN error, as UDP drops a datagram a receiver has no room for) and
 *   replaces the native socket by a fresh one bound at the same path (`reopen()`): the datagrams that were
 *   waiting in the old socket's receive queue (at most max_dgram_qlen + 1) are lost with it, the server
 *   goes on. Then replies to that client are dropped unsent for 250 ms, doubling to 30 s while it still
 *   has no room, so that a client that never reads costs one reopen per hold, not one per reply;
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
import { identityOf, identityOfSync, isOwnFile, PathIdentity, prepareUnixPath, removeUnixPath } from './unix-path';

type NativeDgramSocket = UnixSocketAddon.DgramSocket;

/** How long replies to a client whose receive queue was full are dropped unsent, at first and at most (ms). */
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

export interface ResolvedUnixDgramOptions {
  path: string;
  maxPacketSize: number;
  owner: string;
  onFailure?: (error: Error) => void;
}

export class UnixDatagramSocket implements DatagramSocket {
  private socket: NativeDgramSocket | undefined;
  /** The file we bound, so close() never removes a file that someone else put there later. */
  private created: PathIdentity | undefined;
  private wasBound = false;
  private closed = false;
  /** An error the addon raised after binding (the addon closes the socket then); later sends report it. */
  private failure: Error | undefined;
  private readonly listeners: Array<(d: ReceivedDatagram) => void> = [];
  /**
   * Clients whose receive queue was full, by path: replies to them are dropped unsent until `until`
   * (performance.now() milliseconds), because each EAGAIN costs a reopen(). `hold` doubles from
   * FULL_HOLD_MS to FULL_HOLD_MAX_MS while the client still has no room, and the entry goes when a send
   * to it succeeds, or when another socket is bound at that path (a new client: `client`, the identity of the
   * file that was full, is no longer the file there; its inode alone is not enough, file systems reuse a freed one).
   * At most FULL_MAX entries, the oldest forgotten first.
   */
  private readonly full = new Map<string, { until: number; hold: number; client: PathIdentity | undefined }>();

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
    const socket = new this.Native();
    try {
      socket.bind(path);
      this.created = await identityOf(path);
    } catch (err) {
      socket.close();
      if (/address already in use/i.test((err as Error).message)) {
        throw new AddressInUseError(text.inUse(owner, path), { cause: err });
      }
      throw new Error(text.bindFailed(owner, path, err), { cause: err });
    }
    if (this.closed) {
      socket.close(); // close() ran while we were checking the path
      await this.removeOwnFile();
      return;
    }
    this.wasBound = true;
    this.use(socket);
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
   * After a send the kernel refused with EAGAIN the addon reads no more (see the top of this file): bind a
   * fresh native socket at the same path, synchronously so that no other send reaches the stuck one, and
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
      if (mode !== undefined) fs.unlinkSync(path);
      fresh = new this.Native();
      fresh.bind(path);
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
    if (to.path === '') return Promise.reject(new UnreachableClientError(text.unboundPeer(owner), 'EDESTADDRREQ'));
    let full = this.full.get(to.path);
    if (full && performance.now() < full.until) {
      if (isOwnFile(to.path, full.client)) {
        return Promise.reject(new UnreachableClientError(text.stillFull(owner, data.length, to.path, full.hold), 'EAGAIN'));
      }
      this.full.delete(to.path); // another client bound that path since: it owes nothing of the old one's hold
      full = undefined;
    }
    return new Promise<void>((resolve, reject) => {
      let answered = false;
      try {
        socket.sendTo(data, 0, data.length, to.path, (err) => {
          answered = true;
          if (err) reject(sendError(owner, data.length, to.path, err));
          else resolve();
          if (full) this.full.delete(to.path); // it reads again
        });
      } catch (err) {
        answered = true;
        reject(sendError(owner, data.length, to.path, err));
      }
      if (answered) return;
      // The addon calls back inside sendTo() unless the kernel said EAGAIN: it has queued the datagram and
      // stopped reading. Drop the reply (reopen() closes the stuck socket, which drops its queue silently).
      reject(new UnreachableClientError(text.queueFull(owner, data.length, to.path), 'EAGAIN'));
      this.holdBack(to.path, full);
      this.reopen(socket);
    });
  }

  onMessage(listener: (d: ReceivedDatagram) => void): void {
    this.listeners.push(listener);
  }

  /** Closes the socket and removes the socket file we bound. No send is ever left queued in the addon (see send()). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
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
 * reached by this process (EACCES: its socket file's permission bits; ENOTDIR, ELOOP: the path itself).
 */
const PEER_ERRORS: Array<[RegExp, UnreachableClientError['code']]> = [
  [/connection refused/i, 'ECONNREFUSED'],
  [/no such file/i, 'ENOENT'],
  [/protocol wrong type/i, 'EPROTOTYPE'],
  [/permission denied/i, 'EACCES'],
  [/not a directory/i, 'ENOTDIR'],
  [/too many levels of symbolic links/i, 'ELOOP'],
];

/** The error for a send the addon refused: UnreachableClientError when the client is gone, else a plain Error. */
function sendError(owner: string, bytes: number, path: string, err: unknown): Error {
  const why = message(err);
  const code = PEER_ERRORS.find(([pattern]) => pattern.test(why))?.[1];
  const line = text.sendFailed(owner, bytes, path, err);
  return code ? new UnreachableClientError(line, code, { cause: err }) : new Error(line, { cause: err });
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

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
  queueFull: (owner: string, bytes: number, path: string) =>
    `${owner}.send(): ${path} has no room for a datagram (EAGAIN: its receive queue is full, the client does ` +
    `not read its replies); the reply of ${bytes} bytes was dropped, as UDP drops a datagram the receiver has ` +
    `no room for. Fix (client side): read replies as they come, or raise net.unix.max_dgram_qlen.`,
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
  failed: (owner: string, err: unknown) =>
    `${owner}: the Unix datagram socket failed and receives nothing more: ${message(err)}. ` +
    `Fix: close this server and bind a new one (and check that nothing else has taken its path).`,
};

/** Queues an empty immediate: the loop runs it this turn, and with it the ticks and microtasks queued from native code. */
function kick(): void {
  setImmediate(noop);
}
function noop(): void {}
