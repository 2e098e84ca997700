/**
 * DatagramSocket over AF_UNIX/SOCK_DGRAM, using the native addon `node-unix-socket` (Node has no Unix
 * datagram sockets of its own). The addon is loaded on first use only, so programs that never use Unix
 * datagrams never load it.
 *
 * What the addon does (measured with node-unix-socket 0.2.7, Node 20, Linux):
 * - a native socket holds the event loop open from its construction until `close()`, bound or not, so it
 *   is created in `bind()` and closed on every failure path;
 * - it delivers at most 65535 bytes of a datagram, silently: with maxPacketSize ≥ 65535 a cut datagram
 *   cannot be told apart from a 65535-byte one, and `truncated` stays false;
 * - its errors have no errno `code`, only a message ("Address already in use", "Message too long",
 *   "Connection refused"…);
 * - a send the kernel cannot take yet (EAGAIN) is queued inside the addon and its callback runs later;
 *   `close()` drops such queued sends without calling back, so this class rejects them itself;
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
import { promises as fsp } from 'fs';
import { isMainThread } from 'worker_threads';
import type * as UnixSocketAddon from 'node-unix-socket';
import { AddressInUseError } from '../errors/errors';
import { ClientAddress, formatAddress, isUnixAddress } from './address';
import type { DatagramSocket, ReceivedDatagram } from './datagram-socket';
import { identityOf, PathIdentity, prepareUnixPath, removeUnixPath } from './unix-path';

type NativeDgramSocket = UnixSocketAddon.DgramSocket;
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
}

export class UnixDatagramSocket implements DatagramSocket {
  private socket: NativeDgramSocket | undefined;
  /** The file we bound, so close() never removes a file that someone else put there later. */
  private created: PathIdentity | undefined;
  private wasBound = false;
  private closed = false;
  /** An error the addon raised after binding (the addon closes the socket then); later sends report it. */
  private failure: Error | undefined;
  private readonly pending = new Set<(err: Error) => void>();
  private readonly listeners: Array<(d: ReceivedDatagram) => void> = [];

  constructor(
    private readonly opts: ResolvedUnixDgramOptions,
    private readonly Native: NativeDgramSocketClass,
  ) {}

  /** Replaces a stale socket file at the path (see prepareUnixPath), then binds. */
  async bind(): Promise<void> {
    const { path, owner } = this.opts;
    if (this.closed) throw new Error(text.closed(owner, 'bind'));
    if (this.socket) throw new Error(text.bindTwice(owner));
    await prepareUnixPath(path, owner);
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
    this.socket = socket;
    this.wasBound = true;
    socket.on('error', (err: Error) => this.fail(err));
    socket.on('data', (buf: Buffer, from: string) => this.deliver(buf, from));
    // The addon's native events (0.2.7: '_data', '_error'): wake the loop so that its nextTick'd 'data' runs now.
    socket.on('_data', kick);
    socket.on('_error', kick);
  }

  address(): ClientAddress {
    if (!this.wasBound) throw new Error(text.notBound(this.opts.owner, 'address'));
    return { path: this.opts.path };
  }

  send(data: Buffer, to: ClientAddress): Promise<void> {
    const { owner } = this.opts;
    const socket = this.socket;
    if (this.closed) return Promise.reject(new Error(text.closed(owner, 'send')));
    if (this.failure) return Promise.reject(this.failure);
    if (!socket) return Promise.reject(new Error(text.notBound(owner, 'send')));
    if (!isUnixAddress(to)) return Promise.reject(new Error(text.notUnix(owner, formatAddress(to))));
    if (to.path === '') return Promise.reject(new Error(text.unboundPeer(owner)));
    return new Promise<void>((resolve, reject) => {
      const abort = (err: Error) => reject(err);
      this.pending.add(abort);
      try {
        socket.sendTo(data, 0, data.length, to.path, (err) => {
          kick(); // called from native code: let the promise's reactions run in this loop turn
          this.pending.delete(abort);
          if (err) reject(new Error(text.sendFailed(owner, data.length, to.path, err), { cause: err }));
          else resolve();
        });
      } catch (err) {
        this.pending.delete(abort);
        reject(new Error(text.sendFailed(owner, data.length, to.path, err), { cause: err }));
      }
    });
  }

  onMessage(listener: (d: ReceivedDatagram) => void): void {
    this.listeners.push(listener);
  }

  /** Closes the socket, rejects sends still queued in the addon, and removes the socket file we bound. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
    this.rejectPending(new Error(text.closedWhileSending(this.opts.owner)));
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
    this.failure = new Error(text.failed(this.opts.owner, err), { cause: err });
    this.rejectPending(this.failure);
  }

  private rejectPending(err: Error): void {
    for (const abort of this.pending) abort(err);
    this.pending.clear();
  }

  private async removeOwnFile(): Promise<void> {
    const created = this.created;
    this.created = undefined;
    if (created) await removeUnixPath(this.opts.path, created);
  }
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
  closedWhileSending: (owner: string) =>
    `${owner}.send(): the socket was closed before the datagram reached the kernel. ` +
    `Fix: await send() before close(), or accept that datagrams in flight are dropped on close.`,
  notUnix: (owner: string, address: string) =>
    `${owner}.send(): ${address} is an IP address, but this is a Unix datagram socket. Fix: send to { path }.`,
  unboundPeer: (owner: string) =>
    `${owner}.send(): the client's Unix datagram socket is unbound (its address is empty), so no reply can ` +
    `reach it. Fix: bind the client socket to its own path before it sends, or do not reply to unbound clients.`,
  sendFailed: (owner: string, bytes: number, path: string, err: unknown) =>
    `${owner}.send(): could not send ${bytes} bytes to ${path}: ${message(err)}. ` +
    `Fix: check that a socket is bound at that path, and keep datagrams small (the receiver gets at most ` +
    `65535 bytes of one).`,
  failed: (owner: string, err: unknown) =>
    `${owner}: the Unix datagram socket failed and was closed by node-unix-socket: ${message(err)}. ` +
    `Fix: close this server and bind a new one.`,
};

/** Queues an empty immediate: the loop runs it this turn, and with it the ticks and microtasks queued from native code. */
function kick(): void {
  setImmediate(noop);
}
function noop(): void {}
