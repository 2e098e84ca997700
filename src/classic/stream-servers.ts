import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { edgeMessages } from '../errors/edge.messages';
import { ConfigurationError, RequestTimeoutError } from '../errors/errors';
import { messages, opensslWords } from '../errors/messages';
import type { ClientAddress } from '../transports/address';
import { ConnectionLimiter, LimitName } from '../transports/connection-limiter';
import { blamedOption, Preamble, preambleAbandonedError } from '../transports/connection-preamble';
import { DEFAULT_LINE_TIMEOUT, EdgeOptions } from '../transports/edge-options';
import { DropKind, StreamEndpoint, StreamListener } from '../transports/stream-listener';
import { alreadyBound, BaseServer, constructorOptions, RequestHandlerClass, ServerConstructorOptions } from './base-server';
import { classNameOf } from './class-name';
import { LineBudget } from '../observability/line-budget';
import { endShutdownGraceOf, partialHeldOn, stopReaderOf } from './reader-registry';
import { workerOf } from '../observability/connection-bytes';
import { destroyUndelivered, markClosedByServer } from '../transports/stream-writer';
import { endGracefully, FLUSH_LIMIT_MS, lingeringClose } from '../transports/lingering-close';
import { missingCredentials } from '../transports/tls-terminate';
import { AcceptWatch } from '../observability/accept-watch';
import { checkEdgeOptions, checkUnixPerClient } from '../decorators/edge-options.validation';
import { boundPath } from '../transports/unix-path';
import { supportsReusePort } from '../runtime';
import { RESOLVED } from '../lifecycle/resolved';
import { loggerOf } from '../observability/logger';

/** An IP server's address: `[host, port]` as Python, or `{ host?, port }` (host default `'127.0.0.1'`; `''` is every IPv4 interface, `'0.0.0.0'`, as Python's); port 0 lets the OS choose. */
export type IpAddressInput =
  | [host: string, port: number]
  | {
      /** Default `'127.0.0.1'`. */
      host?: string;
      /** 0 lets the OS choose. */
      port: number;
    };
/** A Unix server's address: the socket file's path, or `{ path }`; shorter than 108 bytes. */
export type UnixAddressInput =
  | string
  | {
      /** The socket file's path. */
      path: string;
    };

/** The stream servers' constructor options: Python's, plus the production edge ([production](../../docs/production.md)). */
export interface StreamServerOptions extends ServerConstructorOptions, EdgeOptions {}

/**
 * The stream half of the classic layer: TCPServer and UnixStreamServer differ only in their endpoint.
 * The request is the accepted `net.Socket`; shutdownRequest half-closes it after the reply (SHUT_WR),
 * closeRequest destroys it.
 */
abstract class StreamServer<Addr> extends BaseServer<net.Socket, Addr> {
  /** Longest line rfile.readline() accepts by default (limits.maxLineLength). */
  lineLimit = 64 * 1024;
  /** Seconds a line or read(n) body may take from its first byte (limits.lineTimeout); null: no bound. */
  lineTimeout: number | null = DEFAULT_LINE_TIMEOUT;
  /** How long a closed request's socket waits for the client to close before it is destroyed. */
  lingerMs = 2000;
  /** TLS, PROXY protocol and limits ([production](../../docs/production.md)); read when the server binds. */
  edge: EdgeOptions;
  protected listener: StreamListener | undefined;
  private limiter: ConnectionLimiter | undefined;
  private preamble: Preamble | undefined;
  /** The listener's mark when shutdown() was called: connections accepted up to it are still served. */
  private shutdownMark: number | undefined;

  static override readonly optionNames: readonly string[] = ['bindAndActivate', 'tls', 'proxyProtocol', 'limits'];

  constructor(address: Addr, Handler: RequestHandlerClass<net.Socket, any>, given: StreamServerOptions | boolean = {}) {
    super(address, Handler, given);
    // Python's positional bind_and_activate: `new TCPServer(address, Handler, false)`.
    const options = constructorOptions<StreamServerOptions>(given as StreamServerOptions | boolean | null | undefined);
    checkEdgeOptions(new.target.name, Handler?.name, options);
    const { tls, proxyProtocol, limits } = options;
    this.edge = { tls, proxyProtocol, limits };
    if (limits?.maxLineLength !== undefined) this.lineLimit = limits.maxLineLength;
    if (limits?.lineTimeout !== undefined) this.lineTimeout = limits.lineTimeout;
  }

  protected abstract endpoint(): StreamEndpoint;
  protected abstract boundAddress(address: ClientAddress): Addr;
  /** Whether to listen with SO_REUSEPORT (TCPServer's allowReusePort). */
  protected reusePort(): boolean {
    return false;
  }

  protected override get bound(): boolean {
    return this.listener !== undefined;
  }

  /** Binds and listens (one call in Node); `serverAddress` then holds the real port. */
  override async serverBind(): Promise<void> {
    if (this.listener !== undefined) throw alreadyBound(classNameOf(this), JSON.stringify(this.serverAddress));
    // allowReusePort: the server's own listening socket carries SO_REUSEPORT, so children cannot share one bound
    // without listening (bindShared); threads listening with reusePort of their own still can.
    const reusePort = this.reusePort();
    const { limits } = this.edge;
    const edge = { ...this.edge, limits: { ...limits, lineTimeout: this.lineTimeout ?? Infinity } }; // null: no bound
    try {
      this.preamble = Preamble.from(edge);
    } catch (err) {
      const reason = (err as Error)?.message ?? String(err);
      throw new ConfigurationError(blamedOption(err) === 'tls' ? edgeMessages.badTls(this.logName, reason) : edgeMessages.badTrusted(this.logName, reason));
    }
    if (limits?.maxConnections !== undefined || limits?.maxConnectionsPerClient !== undefined) {
      this.limiter = new ConnectionLimiter(limits.maxConnections, limits.maxConnectionsPerClient);
    }
    this.listener = new StreamListener(this.endpoint(), this.logName, {
      limiter: this.limiter,
      preamble: this.preamble,
      preambleElsewhere: () => this.preambleInWorkers(),
      accepted: () => this.connectionAccepted(),
      dropped: (kind, client, error) => this.droppedSafely(kind, client, error),
      refused: (client, limit) => this.refusedAtLimit(client, limit),
      watch: new AcceptWatch(
        (error, first) => this.acceptError(error, first),
        (failures, ms) => loggerOf(this).info(messages.acceptRecovered(this.logName, this.describeAddress(), failures, ms)),
      ),
    });
    const possible = this.workersAccept(this.listener);
    const accept = reusePort && possible === 'shared-socket' ? undefined : possible;
    this.workersTake = accept === 'shared-socket';
    if (accept === 'shared-socket') await this.listener.bindShared();
    else await this.listener.listen(accept === 'reuse-port' || reusePort);
    this.serverAddress = this.boundAddress(this.listener.address());
    if (accept) {
      const bound = this.listener.address();
      const address = bound.port === undefined ? undefined : { host: bound.host!, port: bound.port, backlog: this.requestQueueSize };
      const listener = this.listener;
      let listens = accept !== 'shared-socket';
      const shared = { handle: listener.sharedHandle, listens: () => void ((listens = true), listener.sharedListens().catch(() => undefined)) };
      try {
        await this.strategy.shareListener!(accept === 'shared-socket' ? shared : { address }, this as never);
      } catch (err) {
        await listener.sharedListens(); // the start failed: the path's lock goes (bindShared())
        throw err;
      }
      // Primed: the path's lock goes. Not primed (every child died at once, the pool's backoff case): the socket is
      // bound and not listening, which looks stale, so the lock stays until a child listens (listens()) or close():
      // released here, a server started on the path meanwhile removed the file and bound its own (hostile run).
      if (listens) await listener.sharedListens();
    }
  }

  /**
   * Whether the pool's workers accept connections themselves (API.md §3, [concurrency](../../docs/concurrency.md)):
   * where the strategy can (acceptsItself), unless a global limit (maxConnections, maxConnectionsPerClient)
   * must count every connection here, or verifyRequest is overridden (it runs in this process). Those keep
   * the main-thread accept, which hands each connection over.
   */
  private workersAccept(listener: StreamListener): 'shared-socket' | 'reuse-port' | undefined {
    const how = this.strategy.acceptsItself?.(this.endpointKind);
    if (!how || this.limiter || this.verifiesHere()) return undefined;
    if (how === 'shared-socket' && !listener.canShare()) return undefined;
    return how;
  }

  /**
   * Releases the socket. Called by itself on a server that serves in its own loop (serial, ConcurrentMixIn),
   * as Python's `server_close()`, it closes the listening socket only: a request being served goes on and
   * its client gets the whole reply (every connection was destroyed, the reply cut). Through close(), and
   * for the pools (whose serverClose() ends their workers), every connection is closed.
   */
  override serverClose(): Promise<void> {
    if (this.listener) this.socketReleased = true;
    this.refusals?.flush(); // its summary's timer would log after the close (after a test had ended, in jest)
    if (!this.isClosed && this.strategy.workers === undefined) return this.listener?.closeListening() ?? Promise.resolve();
    if (this.closeError) this.closeMidMessage();
    return this.listener?.close(this.closeError, this.closedWhen) ?? Promise.resolve();
  }

  /**
   * close() (or a second signal) closes the connections: one whose client was part-way through a message ends with
   * an error that says so (messages.closedMidMessage), through whatever reads it: the held bytes were parsed as if the
   * client had ended there (a FramingError blaming it) or dropped unreported (new-user run). Those a worker reads are
   * the pool's (the worker tells, RemoteSlot).
   */
  private closeMidMessage(): void {
    for (const socket of this.listener?.connections ?? []) {
      if (workerOf(socket) !== undefined) continue;
      const held = partialHeldOn(socket);
      if (held === 0) continue;
      const { owner, signal } = this.closingAs();
      const error = new RequestTimeoutError(messages.closedMidMessage(owner, signal, held));
      if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
      markClosedByServer(socket, error);
      destroyUndelivered(socket, error);
    }
  }

  /**
   * Accepting failed for lack of file descriptors (EMFILE/ENFILE), and connections were dropped: called
   * for each failure seen (at most about once a second while it lasts), `first` for the first of a burst.
   * Default: one line at `logger.error` per burst. May be overridden (the decorator layer counts here).
   */
  acceptError(error: NodeJS.ErrnoException, first: boolean): void {
    if (first) loggerOf(this).error(messages.acceptFailing(this.logName, this.describeAddress(), error.code));
  }

  private describeAddress(): string {
    const a = this.serverAddress as unknown;
    return typeof a === 'string' ? a : `${(a as [string, number])[0]}:${(a as [string, number])[1]}`;
  }

  override get queuedRequests(): number {
    return this.listener?.queue.length ?? 0;
  }

  override getRequest(): [net.Socket, ClientAddress] {
    const mark = this.shutdownMark;
    const next = this.takeQueued(mark);
    if (!next) throw Object.assign(new Error('no connection is waiting'), { code: 'EAGAIN' });
    // Taken after shutdown() began: its reads end at the next request boundary, as every other's did then.
    if (mark !== undefined) stopReaderOf(next[0]);
    return next;
  }

  /** The next queued connection (after shutdown(), of those accepted before it: `mark`), counted by the limits as started. */
  private takeQueued(mark: number | undefined): [net.Socket, ClientAddress] | undefined {
    const next = mark === undefined ? this.listener?.queue.shift() : this.listener?.takeAcceptedBy(mark);
    if (next) this.limiter?.requestStarted(next[0]);
    return next;
  }

  protected override markAcceptedBeforeShutdown(): void {
    this.shutdownMark = this.listener?.mark();
  }

  protected override waitForAcceptedBeforeShutdown(): Promise<boolean> {
    const mark = this.shutdownMark;
    return mark === undefined || !this.listener ? Promise.resolve(false) : this.listener.waitAcceptedBy(mark);
  }

  protected override takeUnservedBeforeShutdown(): Array<[net.Socket, ClientAddress]> {
    const mark = this.shutdownMark;
    return mark === undefined ? [] : this.takeQueuedBy(mark);
  }

  protected override forgetShutdownMark(): void {
    this.shutdownMark = undefined;
  }

  protected override takeAllQueued(): Array<[net.Socket, ClientAddress]> {
    return this.takeQueuedBy(undefined);
  }

  /** Every queued connection (accepted before `mark`, when given). */
  private takeQueuedBy(mark: number | undefined): Array<[net.Socket, ClientAddress]> {
    const left: Array<[net.Socket, ClientAddress]> = [];
    for (let next = this.takeQueued(mark); next; next = this.takeQueued(mark)) left.push(next);
    return left;
  }

  /** Called for every connection accepted (refused ones included), as soon as it is. Default: nothing; the decorator layer counts here. */
  connectionAccepted(): void {}

  /**
   * A connection ended before its lifecycle: refused by a limit, a health check (closed before its first
   * byte), or a failed PROXY header or TLS handshake ('error'). `counted` is true when connectionAccepted()
   * has already been called for it (every connection this process accepted, the ones the loop handed
   * unread to a worker, where their preamble ran, included: a worker's `@Verify` refusing it is 'rejected'
   * then; its errors come through handleError instead), false for one accepted elsewhere. Default: errors
   * go to handleError (one line, no traceback, for these routine errors); the rest is quiet. May be overridden.
   */
  connectionDropped(kind: DropKind, clientAddress: ClientAddress, error?: unknown, _counted = true): Promise<void> | void {
    if (kind === 'error') return this.callHandleError(undefined, clientAddress, error);
  }

  /**
   * A connection refused by `limits.maxConnections` or `maxConnectionsPerClient`: a warn line naming the client and
   * the limit, at most one a second, then one a second summing up the rest, as nginx logs limit_conn's refusals. They
   * were only counted: a balancer's check refused at maxConnectionsPerClient marked the backend down, unexplained (new user).
   */
  private refusedAtLimit(client: ClientAddress, limit?: LimitName): void {
    if (this.socketReleased) return; // closing: what is refused now is not news (its line came after close() resolved)
    this.refusals ??= new LineBudget(1, (n) => loggerOf(this).warn(messages.refusedHeldBack(this.logName, n)));
    if (this.refusals.take()) loggerOf(this).warn(messages.refusedAtLimit(this.logName, client, this.edge.limits, limit));
  }

  private refusals: LineBudget | undefined;

  /** connectionDropped from the listener, where a throw (a handleError that fails) would be an unhandled rejection. */
  private droppedSafely(kind: DropKind, clientAddress: ClientAddress, error: unknown): void {
    const report = (failure: unknown) =>
      loggerOf(this).error(messages.handleErrorFailed(classNameOf(this), clientAddress, String((error as Error)?.stack ?? error), String((failure as Error)?.stack ?? failure)));
    try {
      const done = this.connectionDropped(kind, clientAddress, error, true); // counted when accepted
      if (done) done.catch(report);
    } catch (failure) {
      report(failure);
    }
  }

  /**
   * Swaps the TLS certificate (key, cert, ca…) for new connections, without a restart (Node's
   * tls.Server.setSecureContext), here at once and in every worker that terminates TLS; resolves once
   * every worker uses it (workers that accept connections themselves may take one meanwhile). Throws,
   * synchronously and changing nothing: ConfigurationError on a server without `tls`, for options without a key and
   * its certificate (or pfx: the new context replaces the whole old one), or with workers when
   * an option cannot be copied to them (a function), or for a key or certificate Node's TLS refuses (its error the `cause`).
   */
  setSecureContext(options: tls.SecureContextOptions): Promise<void> {
    if (!this.preamble?.tls) throw new ConfigurationError(edgeMessages.notTls(this.logName));
    const missing = missingCredentials(options);
    if (missing) throw new ConfigurationError(edgeMessages.secureContextWithout(this.logName, missing));
    if (this.strategy.setSecureContext) {
      try {
        structuredClone(options);
      } catch (err) {
        throw new ConfigurationError(edgeMessages.secureContextNotCloneable(classNameOf(this), (err as Error).message));
      }
    }
    try {
      this.preamble.tls.setSecureContext(options);
    } catch (err) {
      // Node's own words (`error:1E08010C:DECODER routines::unsupported`) named neither the call nor a fix (hostile run).
      const reason = opensslWords((err as Error)?.message ?? '') ?? String((err as Error)?.message ?? err);
      throw new ConfigurationError(edgeMessages.secureContextRefused(this.logName, reason), { cause: err });
    }
    return this.strategy.setSecureContext?.(options) ?? Promise.resolve();
  }

  /** SIGTERM's drainDelay is on (beginDrain): what workers running a preamble are told with each connection. */
  get edgeDraining(): boolean {
    return this.preamble?.draining ?? false;
  }

  /** Whether connections start with a PROXY header or a TLS handshake (known once bound). */
  protected get preambleConfigured(): boolean {
    return this.preamble !== undefined;
  }

  /**
   * Asked for each new connection that has a preamble: true when the worker that will own it runs the PROXY
   * header, the TLS handshake and `@Verify` itself (API.md §3), so the connection is handed over unread. It
   * must stay here when the strategy cannot hand it over unread (see ConcurrencyStrategy.ownsUnread), when
   * verifyRequest runs here (verifiesHere), and with maxConnectionsPerClient behind a PROXY header, whose
   * count needs the client the header names before the connection goes anywhere.
   */
  protected preambleInWorkers(): boolean {
    if (!this.strategy.ownsUnread?.(this.endpointKind)) return false;
    if (this.preamble?.namesClient && this.limiter && this.limiter.maxPerClient !== Infinity) return false;
    return !this.verifiesHere();
  }

  private get endpointKind(): 'tcp' | 'unix' {
    return this instanceof UnixStreamServer ? 'unix' : 'tcp';
  }

  /**
   * The drain begins (SIGTERM, before drainDelay): the server still accepts and serves, but a proxy's
   * health checks (PROXY v2 LOCAL connections) are closed unanswered, so the proxy marks it down.
   */
  beginDrain(): void {
    if (this.preamble) this.preamble.draining = true;
    this.strategy.beginDrain?.();
  }

  /**
   * Stops accepting: new clients are refused (ECONNREFUSED) while accepted connections go on (SIGTERM's
   * drain, [production](../../docs/production.md)). It does not wait for the connections accepted before
   * (queued, or in their PROXY/TLS preamble): the shutdown() that follows serves them, within its one
   * `shutdownTimeout` (accepted means served; waiting here too made a serial server's drain take twice that).
   * Workers that accept close their listeners too, within `shutdownTimeout` (one whose event loop is
   * blocked is ended then, its connections failing with a RequestTimeoutError).
   */
  async stopListening(): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    this.drainBegan ??= performance.now(); // shutdown()'s shutdownTimeout counts from here: a blocked worker's wait is part of it
    // Workers that accept close their listeners too (the shared socket closes with the last of them).
    const boundMs = (this.shutdownTimeout ?? Infinity) * 1000;
    await Promise.all([listener.stopListening(), this.strategy.stopAccepting?.(false, true, boundMs)]);
    listener.cutPreambles(); // a connection that sent nothing in its PROXY/TLS preamble held this for lineTimeout
  }

  /** Whether the limits count each connection until its socket closes, in a worker too (RemoteServer.countsConnections). */
  get countsConnections(): boolean {
    return this.limiter !== undefined;
  }

  /** A worker's socket of `connection` lingers past its request's end (RemoteServer.workerSocketLingers): it still counts. */
  workerSocketLingers(connection: object): void {
    this.limiter?.lingersInWorker(connection);
  }

  /** That socket has closed in the worker (RemoteServer.workerSocketClosed). */
  workerSocketClosed(connection: object): void {
    this.limiter?.closedInWorker(connection);
  }

  /** Connections the limits count now (open here, or running in a worker). */
  get openConnections(): number {
    return this.limiter?.open ?? this.listener?.connections.size ?? 0;
  }

  override shutdownRequest(request: net.Socket): Promise<void> {
    const ended = endGracefully(request, FLUSH_LIMIT_MS);
    // The half-close asked for at once (a plain socket with nothing queued, the usual case): closeRequest in the
    // same turn, and RESOLVED when it returns nothing, so that the caller chains nothing and arms no timer for
    // it (shutdownSafely bounds a pending end by shutdownTimeout: a timer, a race and two reactions a connection).
    if (ended === RESOLVED) return this.closeRequestNow(request);
    // A chain, not an async function: one suspended frame and one turn less per connection.
    return ended.then(() => this.closeRequest(request));
  }

  /**
   * Closes the connection. When the reply has been half-closed (the usual path through shutdownRequest),
   * unread input is discarded until the client closes its side, bounded by `lingerMs`: closing a socket
   * with unread input makes the kernel send a reset, which can destroy the reply on its way to the client.
   */
  override closeRequest(request: net.Socket): void {
    lingeringClose(request, this.lingerMs);
    this.limiter?.requestEnded(request);
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

  protected override abortRequests(reason: Error, preambleWhen?: number | string): void {
    for (const socket of this.listener?.connections ?? []) {
      // Still waiting out shutdown's first-request grace (shutdownTimeout under a second): an idle connection,
      // whose reads now see EOF as after the grace, not a request still running (it was reported as one, with a
      // Fix telling to make the handler return when its reads end, which it was doing).
      if (endShutdownGraceOf(socket)) continue;
      // Relayed to a worker (a thread before Node 24) and silent so far: the pool's abort() asks the worker, which
      // ends such a connection's grace there, or abandons and reports a request that is still running.
      if (socket.bytesRead === 0 && workerOf(socket) !== undefined) continue;
      // What reads or writes the connection (a handler's rfile or wfile, @OnMessage's replies) fails with the
      // reason and reports it: a client that never read its replies was closed unreported (hostile-client run).
      // A connection nothing listens to yet (queued, not taken) just closes.
      if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
      // bytesOut then counts what the kernel took, not every byte written to a client that stopped reading.
      // One part-way through its PROXY header or TLS handshake (shutdownTimeout under shutdown's 1 s cut) ran no
      // hook: it was reported as a request still running, with the handler's Fix (hostile re-check).
      destroyUndelivered(socket, (preambleWhen !== undefined ? preambleAbandonedError(socket, preambleWhen) : undefined) ?? midMessage(socket, preambleWhen) ?? reason);
    }
  }
}

/** shutdownTimeout's error for a connection whose client was part-way through a message (`when`: its seconds); else undefined. */
function midMessage(socket: object, when: number | string | undefined): RequestTimeoutError | undefined {
  if (typeof when !== 'number') return undefined;
  const held = partialHeldOn(socket);
  return held > 0 ? new RequestTimeoutError(messages.abandonedMidMessage(when, held)) : undefined;
}

/**
 * Python's TCPServer. `new TCPServer(['127.0.0.1', 0], Handler)` binds on a microtask; `await server.ready`.
 * `serverAddress` is `[host, port]`. Attributes: `requestQueueSize` (listen backlog, default 5),
 * `allowReuseAddress` (Node always sets SO_REUSEADDR on listening TCP sockets), `ipv6Only`.
 */
export class TCPServer extends StreamServer<[string, number]> {
  /** With an IPv6 host such as `'::'`, accept IPv6 only (no IPv4-mapped clients); default false (Node's `ipv6Only`). */
  ipv6Only = false;

  constructor(address: IpAddressInput, Handler: RequestHandlerClass<net.Socket, any>, options?: StreamServerOptions | boolean) {
    super(normaliseIp(address, 'TCPServer'), Handler, options);
  }

  protected endpoint(): StreamEndpoint {
    const [host, port] = this.serverAddress;
    return { kind: 'tcp', host, port, backlog: this.requestQueueSize, ipv6Only: this.ipv6Only };
  }

  protected override reusePort(): boolean {
    return reusePortAllowed(this.allowReusePort, this.logName);
  }

  protected boundAddress(a: ClientAddress): [string, number] {
    const ip = a as { host: string; port: number };
    return [ip.host, ip.port];
  }
}

/** Python's UnixStreamServer: `serverAddress` is the path. A stale socket file is replaced; the file is removed on close. */
export class UnixStreamServer extends StreamServer<string> {
  constructor(address: UnixAddressInput, Handler: RequestHandlerClass<net.Socket, any>, options?: StreamServerOptions | boolean) {
    super(normaliseUnix(address, 'UnixStreamServer'), Handler, options);
    if (typeof options === 'object' && options !== null) checkUnixPerClient({ decorator: `new ${new.target.name}()`, cls: Handler?.name || 'its handler' }, options);
  }

  /** @internal The socket file's permission bits (the decorators' `mode`): the file is created with them, not chmod()ed to them after. */
  socketMode: number | undefined;

  protected endpoint(): StreamEndpoint {
    return { kind: 'unix', path: boundPath(this.serverAddress), backlog: this.requestQueueSize, mode: this.socketMode };
  }

  protected boundAddress(): string {
    return this.serverAddress;
  }
}

/** allowReusePort where Node can set SO_REUSEPORT (22.12+); a ConfigurationError where it cannot. */
export function reusePortAllowed(allowed: boolean, owner: string): boolean {
  if (!allowed) return false;
  if (!supportsReusePort()) throw new ConfigurationError(messages.reusePortUnsupported(owner, process.version));
  return true;
}

export function normaliseIp(address: IpAddressInput, owner: string): [string, number] {
  const [host, port] = Array.isArray(address) ? address : [address?.host ?? '127.0.0.1', address?.port];
  if (typeof host !== 'string' || !Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    throw new RangeError(messages.badAddress(owner, address));
  }
  // '' is Python's INADDR_ANY: every IPv4 interface, for TCP as for UDP (Node's listen would take it for '::')
  return [host === '' ? '0.0.0.0' : host, port as number];
}

export function normaliseUnix(address: UnixAddressInput, owner: string): string {
  const path = typeof address === 'string' ? address : address?.path;
  if (typeof path !== 'string' || path.length === 0) throw new RangeError(messages.badAddress(owner, address));
  return path;
}
