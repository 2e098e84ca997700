/**
 * The datagram socket layer: one small interface that the UDP and the Unix-datagram transports both
 * implement, so the datagram servers never see `dgram` or the native addon.
 *
 * Lifecycle: create → `onMessage()` (any time) → `bind()` → `send()`… → `close()`. Nothing is opened
 * before `bind()`, and a closed socket never keeps the event loop alive.
 */
import { ClientAddress } from './address';
import { UdpSocket } from './udp.socket';
import { loadUnixDgramAddon, MAX_UNIX_DATAGRAM_PACKET, SPARE_SENDERS, UnixDatagramSocket } from './unix-dgram.socket';

/** Python's `max_packet_size`: a longer datagram is cut to this length. */
export const DEFAULT_MAX_PACKET_SIZE = 8192;

/** One datagram as a DatagramSocket delivers it to its `onMessage` listener. */
export interface ReceivedDatagram {
  /** Its bytes, at most the socket's `maxPacketSize`. */
  data: Buffer;
  /** The sender: `{ host, port, family }` for UDP, `{ path }` for Unix (`''` for an unbound client). */
  from: ClientAddress;
  /** True when the datagram was longer than maxPacketSize and `data` holds only its beginning. */
  truncated: boolean;
}

/**
 * The socket of a datagram server (UDP over Node's `dgram`, Unix datagram over node-unix-socket), as the
 * classic UDPServer and UnixDatagramServer use it and as a datagram request carries it (Python's
 * `(data, socket)` pair). Lifecycle: `onMessage()` (any time) → `bind()` → `send()`… → `close()`.
 */
export interface DatagramSocket {
  /** Binds; rejects with AddressInUseError (message names the address and says what to try) on EADDRINUSE. */
  bind(): Promise<void>;
  /** The bound address: { host, port, family } for UDP (real port after port 0), { path } for Unix. */
  address(): ClientAddress;
  /** Sends one datagram to `to`. Resolves when handed to the kernel; rejects on error (e.g. unbound Unix client: `to.path === ''` → clear Error). */
  send(data: Buffer, to: ClientAddress): Promise<void>;
  /** Called for every datagram received; data longer than maxPacketSize is cut to maxPacketSize with truncated=true. */
  onMessage(listener: (d: ReceivedDatagram) => void): void;
  /**
   * @internal Stops reading here and returns what child processes can be sent to read this socket instead,
   * or undefined (and goes on reading) where that cannot be done: UDP only, where Node allows it.
   */
  shareWithChildren?(): unknown;
  /** @internal After shareWithChildren(): reads here again (`true`) or stops (`false`). */
  readHere?(on: boolean): void;
  /** Idempotent. Unix: removes the socket file. */
  close(): Promise<void>;
}

export interface UdpSocketOptions {
  port: number;
  /** Default '127.0.0.1'; an IPv6 literal ('::1', '::') gives a udp6 socket. */
  host?: string;
  /** Default 8192. */
  maxPacketSize?: number;
  /** SO_REUSEADDR. Default false, as Python's UDPServer (on Linux it lets two sockets share a port). */
  reuseAddress?: boolean;
  /** SO_REUSEPORT (Node 22.12+; the caller checks). Default false. */
  reusePort?: boolean;
  /** Who binds, for error messages. Default 'UdpServer'. */
  owner?: string;
}

export interface UnixDatagramSocketOptions {
  path: string;
  /** Default 8192. node-unix-socket itself never delivers more than 65535 bytes. */
  maxPacketSize?: number;
  /** Who binds, for error messages. Default 'UnixDatagramServer'. */
  owner?: string;
  /**
   * Called once if the socket fails for good after binding (node-unix-socket closed it on a receive error,
   * or a fresh socket could not be bound at the path after a client's full queue): it receives nothing more.
   */
  onFailure?: (error: Error) => void;
  /** Senders bound beside the first at bind(), for the replacements of a stuck one (see unix-dgram.socket.ts). Default 64. */
  spareSenders?: number;
  /** The socket file's permission bits: it is created with them (none: the process's umask decides). */
  mode?: number;
}

export function createUdpSocket(opts: UdpSocketOptions): DatagramSocket {
  return new UdpSocket({
    port: opts.port,
    host: opts.host ?? '127.0.0.1',
    maxPacketSize: checkMaxPacketSize(opts.maxPacketSize, opts.owner ?? 'UdpServer'),
    reuseAddress: opts.reuseAddress ?? false,
    reusePort: opts.reusePort ?? false,
    owner: opts.owner ?? 'UdpServer',
  });
}

/**
 * Loads the native addon `node-unix-socket` here, on first use, and throws a clear Error when it cannot.
 * Main thread only: in a worker thread it throws (see unix-dgram.socket.ts for why).
 */
export function createUnixDatagramSocket(opts: UnixDatagramSocketOptions): DatagramSocket {
  const owner = opts.owner ?? 'UnixDatagramServer';
  return new UnixDatagramSocket(
    { path: opts.path, maxPacketSize: checkMaxPacketSize(opts.maxPacketSize, owner, MAX_UNIX_DATAGRAM_PACKET), owner, onFailure: opts.onFailure, spareSenders: opts.spareSenders ?? SPARE_SENDERS, mode: opts.mode },
    loadUnixDgramAddon(),
  );
}

function checkMaxPacketSize(size: number | undefined, owner: string, max = Number.MAX_SAFE_INTEGER): number {
  if (size === undefined) return DEFAULT_MAX_PACKET_SIZE;
  if (Number.isInteger(size) && size > 0 && size <= max) return size;
  if (Number.isInteger(size) && size > max) {
    throw new RangeError(`${owner}: maxPacketSize ${size} is more than ${max}: node-unix-socket reads at most 65535 bytes of a datagram, so a longer one would arrive cut and not flagged truncated. Fix: pass at most ${max}.`);
  }
  throw new RangeError(`${owner}: maxPacketSize ${size} is not a positive integer. Fix: pass a byte count such as 8192.`);
}
