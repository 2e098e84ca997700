/**
 * DatagramSocket over Node's `dgram`: udp6 when the host is an IPv6 literal, udp4 otherwise.
 * The `dgram.Socket` is created in `bind()`, so an unbound instance holds no handle.
 */
import * as dgram from 'dgram';
import * as net from 'net';
import { AddressInUseError } from '../errors/errors';
import { bindError } from './bind-error';
import { ClientAddress, formatAddress, IpAddress, isUnixAddress } from './address';
import type { DatagramSocket, ReceivedDatagram } from './datagram-socket';
import { closedForSend } from './socket-closed';

export interface ResolvedUdpOptions {
  port: number;
  host: string;
  maxPacketSize: number;
  reuseAddress: boolean;
  /** SO_REUSEPORT (Node 22.12+). */
  reusePort?: boolean;
  owner: string;
}

export class UdpSocket implements DatagramSocket {
  private socket: dgram.Socket | undefined;
  private bound: IpAddress | undefined;
  private closed = false;
  /** An error the socket raised after binding; later sends report it. */
  private failure: Error | undefined;
  private readonly listeners: Array<(d: ReceivedDatagram) => void> = [];

  constructor(private readonly opts: ResolvedUdpOptions) {}

  async bind(): Promise<void> {
    if (this.closed) throw new Error(text.closed(this.opts.owner, 'bind'));
    if (this.socket) throw new Error(text.bindTwice(this.opts.owner));
    const { host, port, reuseAddress, reusePort } = this.opts;
    const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: reuseAddress, ...(reusePort ? { reusePort } : {}) });
    this.socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port, address: host }, () => {
          socket.removeListener('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.socket = undefined;
      await closeQuietly(socket);
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new AddressInUseError(text.inUse(this.opts.owner, formatAddress({ host, port, family: 'IPv4' })), { cause: err });
      }
      throw bindError(this.opts.owner, `UDP ${formatAddress({ host, port, family: 'IPv4' })}`, { host, port }, err as NodeJS.ErrnoException);
    }
    const a = socket.address();
    this.bound = { host: a.address, port: a.port, family: toFamily(a.family) };
    socket.on('error', (err) => { this.failure = err; });
    socket.on('message', (msg, rinfo) => this.deliver(msg, rinfo));
  }

  address(): ClientAddress {
    if (!this.bound) throw new Error(text.notBound(this.opts.owner, 'address'));
    return { ...this.bound };
  }

  send(data: Buffer, to: ClientAddress): Promise<void> {
    const socket = this.socket;
    if (this.closed) return Promise.reject(closedForSend(this.opts.owner));
    if (!socket || !this.bound) return Promise.reject(new Error(text.notBound(this.opts.owner, 'send')));
    if (this.failure) return Promise.reject(this.failure);
    if (isUnixAddress(to)) return Promise.reject(new Error(text.notIp(this.opts.owner, to.path)));
    return new Promise<void>((resolve, reject) => {
      socket.send(data, to.port, to.host, (err) => (err ? reject(sendError(this.opts.owner, data.length, to, err)) : resolve()));
    });
  }

  onMessage(listener: (d: ReceivedDatagram) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Stops reading here and returns the bound `dgram.Socket`, for child processes to read instead (it is sent
   * to each over the IPC channel, as Node's child_process sends a dgram.Socket): this copy stays open, so the
   * port stays bound while children come and go. Undefined where this Node has no way to stop the reads of a
   * bound socket (dgram has no public one: the handle's recvStop, found by feature detection); the server
   * then reads and hands each datagram over.
   */
  shareWithChildren(): dgram.Socket | undefined {
    const socket = this.socket;
    if (!socket || this.closed) return undefined;
    return stopReading(socket) ? socket : undefined;
  }

  /** After shareWithChildren(): reads here again (`true`, for a handleRequest() of its own) or stops (`false`). */
  readHere(on: boolean): void {
    const handle = this.socket && udpHandleOf(this.socket);
    if (handle) void (on ? handle.recvStart() : handle.recvStop());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await closeQuietly(socket);
  }

  private deliver(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const datagram = receivedDatagram(msg, rinfo, this.opts.maxPacketSize);
    for (const listener of this.listeners) listener(datagram);
  }
}

/** A datagram as `dgram` delivered it, cut to `maxPacketSize` (a copy of its beginning, `truncated`) if longer. */
export function receivedDatagram(msg: Buffer, rinfo: dgram.RemoteInfo, maxPacketSize: number): ReceivedDatagram {
  const truncated = msg.length > maxPacketSize;
  return {
    data: truncated ? Buffer.from(msg.subarray(0, maxPacketSize)) : msg,
    from: { host: rinfo.address, port: rinfo.port, family: toFamily(rinfo.family) },
    truncated,
  };
}

/**
 * Stops a bound dgram.Socket's reads (what stays in the kernel's queue is for the other sockets of the same
 * descriptor). False where this Node offers no way: dgram has no public one, so the libuv handle's
 * recvStop is found by feature detection.
 */
export function stopReading(socket: dgram.Socket): boolean {
  const handle = udpHandleOf(socket);
  return handle !== undefined && handle.recvStop() === 0;
}

/** Reads a dgram.Socket again after stopReading(); false where this Node offers no way. */
export function startReading(socket: dgram.Socket): boolean {
  const handle = udpHandleOf(socket);
  return handle !== undefined && handle.recvStart() === 0;
}

/** The libuv UDP handle under a bound dgram.Socket (Node keeps it in the socket's state, under `Symbol('state symbol')`), if it can stop reading. */
function udpHandleOf(socket: dgram.Socket): { recvStop(): number; recvStart(): number } | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'state symbol');
  const handle = key && (socket as unknown as Record<symbol, { handle?: { recvStop?: unknown; recvStart?: unknown } } | undefined>)[key]?.handle;
  return handle && typeof handle.recvStop === 'function' && typeof handle.recvStart === 'function'
    ? (handle as { recvStop(): number; recvStart(): number })
    : undefined;
}

function toFamily(family: string | number): 'IPv4' | 'IPv6' {
  return family === 'IPv6' || family === 6 ? 'IPv6' : 'IPv4';
}

function closeQuietly(socket: dgram.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // ERR_SOCKET_DGRAM_NOT_RUNNING: the handle is already gone
    }
  });
}

/** A reply too long for one UDP datagram (EMSGSIZE) says so, with its size and the fix; other errors pass as they are. */
export function sendError(owner: string, bytes: number, to: { host: string; family?: string }, err: Error): Error {
  if ((err as NodeJS.ErrnoException).code !== 'EMSGSIZE') return err;
  return Object.assign(new Error(text.tooLong(owner, bytes, carriedOverIpv6(to)), { cause: err }), { code: 'EMSGSIZE' });
}

/**
 * Whether a datagram to `to` travels as IPv6, so may carry 65,527 bytes rather than IPv4's 65,507. An
 * IPv4-mapped address (`::ffff:127.0.0.1`: an IPv4 client of a dual-stack `'::'` socket, whose family Node
 * reports as IPv6) travels as IPv4, and the kernel refuses more than 65,507 bytes to it (EMSGSIZE).
 */
export function carriedOverIpv6(to: { host: string; family?: string }): boolean {
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(to.host)) return false;
  return to.family === 'IPv6' || to.host.includes(':');
}

const text = {
  tooLong: (owner: string, bytes: number, ipv6: boolean) =>
    `${owner}: a reply of ${bytes} bytes is longer than one UDP datagram can carry (${ipv6 ? '65,527 bytes over IPv6' : '65,507 bytes over IPv4'}; ` +
    `less where the network's MTU and the kernel's buffers are smaller), so it was not sent (EMSGSIZE). ` +
    `Fix: send less per datagram (split the reply over several datagrams), or serve this protocol on a stream transport.`,
  inUse: (owner: string, address: string) =>
    `${owner}: UDP address ${address} is already in use. Fix: stop the other server, or pick another port ` +
    `(0 lets the OS choose).`,
  bindTwice: (owner: string) =>
    `${owner}.bind(): the socket is already bound. Fix: call bind() once; create a new socket for another address.`,
  notBound: (owner: string, member: string) =>
    `${owner}.${member}(): the socket is not bound yet. Fix: await bind() first.`,
  closed: (owner: string, member: string) =>
    `${owner}.${member}(): the socket is closed. Fix: create a new socket; close() is final.`,
  notIp: (owner: string, path: string) =>
    `${owner}.send(): ${JSON.stringify(path)} is a Unix socket address, but this is a UDP socket. ` +
    `Fix: send to { host, port }.`,
};
