import type * as net from 'node:net';
import { messages } from '../errors/messages';
import type { ClientAddress } from '../transports/address';
import { StreamEndpoint, StreamListener } from '../transports/stream-listener';
import { BaseServer, RequestHandlerClass, ServerConstructorOptions } from './base-server';
import { stopReaderOf } from './reader-registry';
import { endGracefully, lingeringClose } from '../transports/lingering-close';
import { AcceptWatch } from '../observability/accept-watch';

export type IpAddressInput = [host: string, port: number] | { host?: string; port: number };
export type UnixAddressInput = string | { path: string };

/** How long shutdownRequest waits for the reply to drain before it closes the socket anyway. */
const FLUSH_LIMIT_MS = 5000;

/**
 * The stream half of the classic layer: TCPServer and UnixStreamServer differ only in their endpoint.
 * The request is the accepted `net.Socket`; shutdownRequest half-closes it after the reply (SHUT_WR),
 * closeRequest destroys it.
 */
abstract class StreamServer<Addr> extends BaseServer<net.Socket, Addr> {
  /** Longest line rfile.readline() accepts by default. */
  lineLimit = 64 * 1024;
  /** How long a closed request's socket waits for the client to close before it is destroyed. */
  lingerMs = 2000;
  protected listener: StreamListener | undefined;

  protected abstract endpoint(): StreamEndpoint;
  protected abstract boundAddress(address: ClientAddress): Addr;

  /** Binds and listens (one call in Node); `serverAddress` then holds the real port. */
  override async serverBind(): Promise<void> {
    const watch = new AcceptWatch(
      (error, first) => this.acceptError(error, first),
      (failures, ms) => this.logger.info(messages.acceptRecovered(this.logName, this.describeAddress(), failures, ms)),
    );
    this.listener = new StreamListener(this.endpoint(), this.constructor.name, watch);
    await this.listener.listen();
    this.serverAddress = this.boundAddress(this.listener.address());
  }

  override serverClose(): Promise<void> {
    return this.listener?.close() ?? Promise.resolve();
  }

  /**
   * Accepting failed for lack of file descriptors (EMFILE/ENFILE), and connections were dropped: called
   * for each failure seen (at most about once a second while it lasts), `first` for the first of a burst.
   * Default: one line at `logger.error` per burst. May be overridden (the decorator layer counts here).
   */
  acceptError(error: NodeJS.ErrnoException, first: boolean): void {
    if (first) this.logger.error(messages.acceptFailing(this.logName, this.describeAddress(), error.code));
  }

  private describeAddress(): string {
    const a = this.serverAddress as unknown;
    return typeof a === 'string' ? a : `${(a as [string, number])[0]}:${(a as [string, number])[1]}`;
  }

  override getRequest(): [net.Socket, ClientAddress] {
    const next = this.listener?.queue.shift();
    if (!next) throw Object.assign(new Error('no connection is waiting'), { code: 'EAGAIN' });
    return next;
  }

  override async shutdownRequest(request: net.Socket): Promise<void> {
    await endGracefully(request, FLUSH_LIMIT_MS);
    await this.closeRequest(request);
  }

  /**
   * Closes the connection. When the reply has been half-closed (the usual path through shutdownRequest),
   * unread input is discarded until the client closes its side, bounded by `lingerMs`: closing a socket
   * with unread input makes the kernel send a reset, which can destroy the reply on its way to the client.
   */
  override closeRequest(request: net.Socket): void {
    lingeringClose(request, this.lingerMs);
  }

  protected waitForRequest(ms: number): Promise<boolean> {
    return this.listener ? this.listener.queue.wait(ms) : new Promise((r) => setTimeout(() => r(false), Math.min(ms, 2 ** 31 - 1)));
  }

  protected wakeLoop(): void {
    this.listener?.queue.wake();
  }

  protected override stopReading(): void {
    for (const socket of this.listener?.connections ?? []) stopReaderOf(socket);
  }

  protected override abortRequests(): void {
    for (const socket of this.listener?.connections ?? []) socket.destroy();
  }
}

/**
 * Python's TCPServer. `new TCPServer(['127.0.0.1', 0], Handler)` binds on a microtask; `await server.ready`.
 * `serverAddress` is `[host, port]`. Attributes: `requestQueueSize` (listen backlog, default 5),
 * `allowReuseAddress` (Node always sets SO_REUSEADDR on listening TCP sockets), `ipv6Only`.
 */
export class TCPServer extends StreamServer<[string, number]> {
  ipv6Only = false;

  constructor(address: IpAddressInput, Handler: RequestHandlerClass<net.Socket, any>, options?: ServerConstructorOptions) {
    super(normaliseIp(address, 'TCPServer'), Handler, options);
  }

  protected endpoint(): StreamEndpoint {
    const [host, port] = this.serverAddress;
    return { kind: 'tcp', host, port, backlog: this.requestQueueSize, ipv6Only: this.ipv6Only };
  }

  protected boundAddress(a: ClientAddress): [string, number] {
    const ip = a as { host: string; port: number };
    return [ip.host, ip.port];
  }
}

/** Python's UnixStreamServer: `serverAddress` is the path. A stale socket file is replaced; the file is removed on close. */
export class UnixStreamServer extends StreamServer<string> {
  constructor(address: UnixAddressInput, Handler: RequestHandlerClass<net.Socket, any>, options?: ServerConstructorOptions) {
    super(normaliseUnix(address, 'UnixStreamServer'), Handler, options);
  }

  protected endpoint(): StreamEndpoint {
    return { kind: 'unix', path: this.serverAddress, backlog: this.requestQueueSize };
  }

  protected boundAddress(): string {
    return this.serverAddress;
  }
}

export function normaliseIp(address: IpAddressInput, owner: string): [string, number] {
  const [host, port] = Array.isArray(address) ? address : [address?.host ?? '127.0.0.1', address?.port];
  if (typeof host !== 'string' || !Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    throw new RangeError(messages.badAddress(owner, address));
  }
  return [host, port as number];
}

export function normaliseUnix(address: UnixAddressInput, owner: string): string {
  const path = typeof address === 'string' ? address : address?.path;
  if (typeof path !== 'string' || path.length === 0) throw new RangeError(messages.badAddress(owner, address));
  return path;
}
