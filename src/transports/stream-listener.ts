import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { AcceptWatch } from '../observability/accept-watch';
import { ClientAddress, clientNamedBy } from './address';
import { acceptedAt, stampAccepted } from './connection-stamps';
import { bindError, BindTarget } from './bind-error';
import type { ConnectionLimiter, LimitName } from './connection-limiter';
import { cutPreambleOf, deferPreamble, Preamble, preambleAbandonedError, PreambleResult, recordPreamble } from './connection-preamble';
import { afterPollPhase } from './event-loop';
import { RequestQueue } from './request-queue';
import { bindingWithMode, claimUnixPath, closeSparingOthers, identityOf, PathIdentity, prepareUnixPath, removeUnixPath } from './unix-path';
import { markClosedByServer } from './stream-writer';
import { isResetBeforeAccept, peerAddress, readFirstBytes } from './reset-before-accept';

export type StreamEndpoint =
  | { kind: 'tcp'; host: string; port: number; backlog: number; ipv6Only?: boolean }
  | { kind: 'unix'; path: string; backlog: number; mode?: number };

/** `bind` under the umask of the endpoint's `mode` (unix-path.ts bindingWithMode): the file is created with its bits. */
function withModeUmask<T>(ep: StreamEndpoint, bind: () => T): T {
  return ep.kind === 'unix' ? bindingWithMode(ep.mode, bind) : bind();
}

/** Why a connection ended before the server loop saw it. */
export type DropKind = 'rejected' | 'health-check' | 'error';

/** The production edge of a listener (API.md §11): limits, then the PROXY/TLS preamble. */
export interface ListenerEdge {
  limiter?: ConnectionLimiter;
  preamble?: Preamble;
  /**
   * Asked per connection: true when the worker that will own it runs the preamble (and @Verify) itself
   * (API.md §3). Such a connection is queued unread, marked (deferPreamble); the limits still apply here.
   */
  preambleElsewhere?: () => boolean;
  /**
   * A connection ended before the server loop saw it: refused by a limit ('rejected', closed at once with
   * nothing read), closed before its first byte ('health-check'), or failed its preamble ('error', with the
   * ProxyProtocolError or TlsHandshakeError). `client` is the original client when a header named it.
   */
  dropped?(kind: DropKind, client: ClientAddress, error?: unknown): void;
  /** A connection refused by a limit (before its `dropped('rejected')`): the server says so in its log. `limit`: which, when known. */
  refused?(client: ClientAddress, limit?: LimitName): void;
  /** Told of accept failures for lack of descriptors (EMFILE), which libuv otherwise hides. */
  watch?: AcceptWatch;
  /** Called for every connection accepted, before the limits (those it refuses are accepted too, then closed). */
  accepted?(): void;
}

/**
 * The stream transport (TCP and Unix stream): listens, and queues accepted connections for the server
 * loop. With an edge, each connection first passes the limits and then the preamble (PROXY header, TLS
 * handshake), concurrently with the loop, so a slow client stalls only itself; the loop takes connections
 * that are ready to serve. Connections are accepted paused (`pauseOnConnect`) so no byte is read before a handler asks,
 * and half-open (`allowHalfOpen`) so a client that sends and then shuts its side down still gets its
 * whole reply. Every connection is tracked until it closes, so `close()` really closes.
 */
export class StreamListener {
  readonly queue = new RequestQueue<[net.Socket, ClientAddress]>();
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();
  /** Connections over a limit waiting for a worker's connection to end (ConnectionLimiter.waitForRoom): close() destroys them. */
  private readonly held = new Set<net.Socket>();
  private closed: Promise<void> | undefined;
  /** The socket file this listener created (Unix), so close() never removes another server's. */
  private created: PathIdentity | undefined;
  /** Every connection's 'close' listener (Node calls it with the socket as `this`). */
  private readonly forget: (this: net.Socket) => void;

  private stopped: Promise<void> | undefined;
  /** Connections in their preamble (PROXY header, TLS handshake): not queued yet (the raw sockets). */
  private readonly preambles = new Set<net.Socket>();
  /** Connections accepted so far; each connection's number in that order is its ACCEPTED mark (raw and TLS socket alike). */
  private acceptedCount = 0;
  /** Those waiting in waitAcceptedBy() for a preamble to settle. */
  private settleWaiters: Array<() => void> = [];
  /**
   * The listening socket when workers accept from it (bindShared()): bound here, never accepted on here
   * (this process does not watch it), its descriptor sent to each child.
   */
  private shared: SharedHandle | undefined;
  /** Lets go of the Unix path's lock that bindShared() holds until the shared socket listens (claimUnixPath). */
  private releasePath: (() => Promise<void>) | undefined;
  /** The release sharedListens() began, awaited by every later call. */
  private pathReleased: Promise<void> | undefined;

  constructor(
    private readonly endpoint: StreamEndpoint,
    private readonly owner: string,
    private readonly edge: ListenerEdge = {},
  ) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    const open = this.open;
    this.forget = function (this: net.Socket) {
      open.delete(this);
    };
  }

  /**
   * Whether bindShared() can bind this endpoint: a Unix path, or a TCP host given as an IP address (a name
   * would need a lookup, which Node's listen() does and the bare handle does not).
   */
  canShare(): boolean {
    return this.endpoint.kind === 'unix' || net.isIP(this.endpoint.host) !== 0;
  }

  /**
   * Binds the listening socket without accepting on it, for child processes to accept from (API.md §3;
   * Node's cluster does the same with SCHED_NONE, through the same `net._createServerHandle`). The socket
   * listens once a child has called listen() on it (the pool primes it before the server is announced);
   * until then a client is refused. `handle` is then the socket to send. Rejects with AddressInUseError.
   */
  async bindShared(): Promise<void> {
    const ep = this.endpoint;
    // A Unix path stays locked until the socket listens (sharedListens()): bound and not listening, it looks stale.
    if (ep.kind === 'unix') this.releasePath = await claimUnixPath(ep.path, this.owner);
    try {
      await this.bindSharedHandle();
    } catch (err) {
      await this.sharedListens();
      throw err;
    }
  }

  /**
   * The shared socket listens now (a child primed it), or will not (the start failed): other servers checking its
   * Unix path may go on, and will find it live. Idempotent; close() calls it too.
   */
  sharedListens(): Promise<void> {
    const release = this.releasePath;
    this.releasePath = undefined;
    // The same release for every caller: a later one (a child's listen, then the start's own) waits for the unlink too.
    if (release) this.pathReleased = release();
    return this.pathReleased ?? Promise.resolve();
  }

  private async bindSharedHandle(): Promise<void> {
    const ep = this.endpoint;
    const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
    let made = ep.kind === 'unix' ? withModeUmask(ep, () => create(ep.path, -1, -1)) : create(ep.host, ep.port, net.isIP(ep.host), undefined, ep.ipv6Only ? UV_TCP_IPV6ONLY : 0);
    if (typeof made !== 'number' && ep.kind !== 'unix') {
      // libuv defers a TCP bind's EADDRINUSE to listen() (uv_tcp_bind's delayed_error), which the children
      // call: asking for the bound address reports it here, before any child starts.
      const failed = made.getsockname({});
      if (failed < 0) {
        made.close();
        made = failed;
      }
    }
    if (typeof made === 'number') {
      const code = getSystemErrorName(made);
      const err = Object.assign(new Error(`${code}: bind ${this.describe()}`), { code, errno: made, syscall: 'bind' });
      throw bindError(this.owner, this.describe(), this.bindTarget(), err);
    }
    this.shared = made;
    if (ep.kind === 'unix') this.created = await identityOf(ep.path);
  }

  /** The shared listening socket (bindShared()), to send to the children. */
  get sharedHandle(): unknown {
    return this.shared;
  }

  /** Binds and listens (Node does both in one call); rejects with AddressInUseError. `reusePort`: SO_REUSEPORT, so worker threads listen on the same port. */
  async listen(reusePort = false): Promise<void> {
    const ep = this.endpoint;
    if (ep.kind === 'unix') await prepareUnixPath(ep.path, this.owner);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server.off('listening', onListening);
        reject(bindError(this.owner, this.describe(), this.bindTarget(), err));
      };
      const onListening = () => {
        this.server.off('error', onError);
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      if (ep.kind === 'tcp') this.server.listen({ host: ep.host, port: ep.port, backlog: ep.backlog, ipv6Only: ep.ipv6Only, ...(reusePort ? { reusePort } : {}) });
      else withModeUmask(ep, () => this.server.listen({ path: ep.path, backlog: ep.backlog }));
    });
    if (ep.kind === 'unix') this.created = await identityOf(ep.path);
    // After listening, an error on the listening socket (rare: EMFILE on accept) must not crash the process.
    this.server.on('error', (err: NodeJS.ErrnoException) => this.edge.watch?.onError(err));
    this.edge.watch?.start();
  }

  /** The bound address: real port after port 0, or the path. */
  address(): ClientAddress {
    if (this.endpoint.kind === 'unix') return { path: this.endpoint.path };
    let a = this.server.address() as net.AddressInfo;
    if (this.shared) {
      a = {} as net.AddressInfo;
      this.shared.getsockname(a);
    }
    return { host: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  /** SIGTERM's drain: the connections still in their PROXY header or TLS handshake get shutdown's cut (cutPreambleOf). */
  cutPreambles(): void {
    for (const raw of this.preambles) cutPreambleOf(raw);
  }

  /**
   * A mark of the connections accepted so far (shutdown() takes one): `takeAcceptedBy(mark)` and
   * `waitAcceptedBy(mark)` then concern only those, not the ones accepted after.
   */
  mark(): number {
    return this.acceptedCount;
  }

  /** Takes the oldest queued connection accepted up to `mark`, out of turn; undefined when none is queued. */
  takeAcceptedBy(mark: number): [net.Socket, ClientAddress] | undefined {
    return this.queue.takeFirst(([socket]) => this.acceptedBy(socket, mark));
  }

  /**
   * Resolves true once a connection accepted up to `mark` is queued, false when none is left to come (every
   * one taken, or ended in its preamble) or the listener has closed: waits for preambles under way.
   */
  async waitAcceptedBy(mark: number): Promise<boolean> {
    for (;;) {
      if (this.closed) return false;
      if (this.queue.some(([socket]) => this.acceptedBy(socket, mark))) return true;
      if (![...this.preambles].some((raw) => this.acceptedBy(raw, mark))) return false;
      await new Promise<void>((resolve) => this.settleWaiters.push(resolve));
    }
  }

  private acceptedBy(socket: net.Socket, mark: number): boolean {
    return ((socket as Numbered)[ACCEPTED] ?? Infinity) <= mark;
  }

  /** A preamble ended (its connection queued or dropped), or the listener closed: waitAcceptedBy() looks again. */
  private settled(): void {
    for (const wake of this.settleWaiters.splice(0)) wake();
  }

  /** Connections accepted and not yet finished. */
  get connections(): ReadonlySet<net.Socket> {
    return this.open;
  }

  /**
   * Destroys the connections still queued, which no request will take (Python's backlog, which closing the listening
   * socket resets), counted in stats().rejected: they were in `accepted` only, and no event told of them (hostile
   * run: clients that connected after shutdown() and were reset at close()). Returns their sockets.
   */
  private refuseQueued(): net.Socket[] {
    const queued = this.queue.drain();
    for (const [socket, peer] of queued) this.refuse(socket, peer);
    return queued.map(([socket]) => socket);
  }

  /**
   * Python's `server_close()` on a server that serves in its own loop: stops listening and destroys the
   * connections no request has taken yet (queued, or in their PROXY/TLS preamble), as closing the listening
   * socket resets those in the kernel's queue; connections already taken are their requests' own and go on
   * until those end. close() later destroys whatever is left.
   */
  closeListening(): Promise<void> {
    const stopped = this.stopListening();
    this.refuseQueued();
    for (const socket of this.preambles) closePreamble(socket, 'serverClose()');
    this.queue.wake();
    this.settled();
    return stopped;
  }

  /**
   * Stops listening, destroys queued and open connections, removes the Unix socket file. Idempotent.
   * Resolves once every connection this listener still owns has closed. It does not wait for net.Server's
   * own close callback: after a connection has been sent to a child process, Node asks that child for its
   * connection count before calling back, and a child that has exited never answers. `reason`: why, for the
   * writes a handler still makes on an open one (markClosedByServer); they said EPIPE, the client's doing.
   * `preambleWhen`: what gave up a connection still in its PROXY header or TLS handshake (givenUpWhen's: the
   * close() call, by default, or the second signal).
   */
  close(reason?: Error, preambleWhen?: string): Promise<void> {
    this.closed ??= (async () => {
      const stopped = this.stopListening();
      if (reason) for (const socket of this.open) markClosedByServer(socket, reason);
      for (const socket of this.held) socket.destroy();
      this.held.clear();
      const owned = [...this.refuseQueued(), ...this.open];
      const gone = owned.map((socket) => new Promise<void>((resolve) => (socket.destroyed && socket.closed ? resolve() : socket.once('close', () => resolve()))));
      owned.forEach((socket) => (this.preambles.has(socket) ? closePreamble(socket, preambleWhen) : socket.destroy()));
      this.queue.wake();
      this.settled();
      await Promise.all(gone);
      await stopped;
    })();
    return this.closed;
  }

  /**
   * Closes the listening socket only: new clients are refused (ECONNREFUSED), so a load balancer retries
   * them elsewhere; connections already accepted go on. Connections still in the kernel's accept queue at
   * this instant are reset by the kernel. Idempotent; close() does it too.
   */
  stopListening(): Promise<void> {
    this.stopped ??= (async () => {
      this.edge.watch?.stop();
      // Closing a listening socket resets the connections in the kernel's accept queue. Close right after
      // a poll phase, which accepts all it holds, so that only clients arriving in that instant are reset.
      if (this.server.listening && !this.closed) await new Promise<void>((resolve) => afterPollPhase(resolve));
      const listening = this.server.listening || this.shared !== undefined;
      if (listening) {
        const shared = this.shared;
        this.shared = undefined;
        const close = shared ? () => shared.close() : () => void this.server.close(() => undefined);
        if (this.endpoint.kind === 'unix') closeSparingOthers(this.endpoint.path, this.created, close);
        else close();
      }
      if (this.endpoint.kind === 'unix' && listening) await removeUnixPath(this.endpoint.path, this.created);
      await this.sharedListens();
    })();
    return this.stopped;
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const tcp = this.endpoint.kind === 'tcp';
    const reset = tcp && isResetBeforeAccept(socket);
    const peer: ClientAddress = !tcp ? { path: '' } : peerAddress(socket);
    (socket as Numbered)[ACCEPTED] = ++this.acceptedCount;
    stampAccepted(socket);
    this.edge.accepted?.();
    // No peer address: the client reset before Node accepted it (HAProxy ends its checks so). A health check, unless
    // it sent bytes first: those are still readable (then ECONNRESET), and were dropped unread (hostile run).
    if (reset) return this.acceptReset(socket, peer);
    this.admit(socket, peer);
  }

  /**
   * A connection whose client reset before it was accepted (reset-before-accept.ts): read once. No byte: a
   * health check, closed. Bytes: the connection goes on as any other (its reset comes to whatever reads after
   * the bytes), its client `{ host: '', port: 0 }`, the address being gone with the reset.
   */
  private acceptReset(socket: net.Socket, peer: ClientAddress): void {
    this.open.add(socket); // close() destroys it meanwhile
    readFirstBytes(socket, (gotBytes) => {
      if (gotBytes && !this.closed) return this.admit(socket, peer);
      this.open.delete(socket);
      socket.destroy();
      // close() came first (it destroyed the connection before its first read): closed unserved, as those still queued
      // then are (refuseQueued). It was counted accepted and then in no other figure (hostile re-check).
      this.edge.dropped?.(this.closed ? 'rejected' : 'health-check', peer);
    });
  }

  /** The limits, then the queue (the preamble first where this process runs it). */
  private admit(socket: net.Socket, peer: ClientAddress): void {
    const { limiter, preamble } = this.edge;
    // The client's host counts against its limit now, unless a PROXY header is yet to name the client. One that
    // reset before it was accepted has no host left: it counts toward maxConnections only (under '' unrelated
    // clients shared one per-client bucket, and were refused: hostile re-check).
    const host = preamble?.namesClient || peer.host === '' ? undefined : peer.host ?? '';
    if (limiter && !limiter.admit(socket, host)) {
      // Over a limit while a worker's connection is ending: it waits for that end, held unread (waitForRoom).
      const held = limiter.waitForRoom(socket, host, () => limiter.admit(socket, host), (admitted) => {
        this.held.delete(socket);
        // close() ended its wait: refused all the same (counted in accepted only, it was in no other count).
        if (admitted && !this.closed) this.admitted(socket, peer);
        else this.refuse(socket, peer, !this.closed, host);
      });
      if (held) this.held.add(socket);
      else this.refuse(socket, peer, true, host);
      return;
    }
    this.admitted(socket, peer);
  }

  /**
   * Closed at once with nothing read, counted in stats().rejected: over a limit (`atLimit`: the server says so in
   * its log), or queued when the listener closed (a limit's line for those, on a server with none, misled).
   */
  private refuse(socket: net.Socket, peer: ClientAddress, atLimit = false, host?: string): void {
    socket.destroy();
    if (atLimit) this.edge.refused?.(peer, this.edge.limiter?.overWhich(host));
    this.edge.dropped?.('rejected', peer);
  }

  /** Within the limits: queued to serve (its preamble first where this process runs it). */
  private admitted(socket: net.Socket, peer: ClientAddress): void {
    const { limiter, preamble } = this.edge;
    this.open.add(socket);
    socket.on('close', this.forget); // shared by every connection: an idle one holds no closure for it
    // A reset while queued or in a handler surfaces through rfile/wfile; here it must not be unhandled.
    socket.on('error', ignore);
    if (!preamble) {
      this.queue.push([socket, peer]);
      return;
    }
    if (this.edge.preambleElsewhere?.()) {
      deferPreamble(socket);
      this.queue.push([socket, peer]);
      return;
    }
    this.preambles.add(socket);
    preamble.start(socket, peer, (err, result) => {
      this.preambles.delete(socket);
      if (err) {
        socket.destroy();
        this.edge.dropped?.('error', clientNamedBy(err) ?? peer, err);
      } else {
        this.ready(socket, peer, result);
      }
      this.settled();
    }, limiter && this.admitNamed);
  }

  /** maxConnectionsPerClient for the client a PROXY header named, asked by the preamble before its TLS handshake. */
  private readonly admitNamed = (raw: net.Socket, client: ClientAddress): boolean => {
    const key = perClientKey(client);
    return key === undefined || this.edge.limiter!.identify(raw, key);
  };

  /** The preamble is done: queue the connection to serve, or drop it (a health check, a client over its limit). */
  private ready(raw: net.Socket, peer: ClientAddress, result: PreambleResult | undefined): void {
    if (!result) {
      raw.destroy();
      return this.edge.dropped?.('health-check', peer);
    }
    const { socket, clientAddress } = result;
    const limiter = this.edge.limiter;
    if (limiter && socket !== raw) limiter.alias(raw, socket);
    const key = perClientKey(clientAddress);
    const refuse = () => {
      socket.destroy();
      raw.destroy();
      if (!this.closed) this.edge.refused?.(clientAddress, limiter?.overWhich(key)); // at its limit, unless close() ended its wait
      this.edge.dropped?.('rejected', clientAddress);
    };
    if (result.overLimit) return refuse();
    if (limiter && key !== undefined && this.edge.preamble?.namesClient && !limiter.identify(raw, key)) {
      // The client the header names is at its limit while a worker's connection of its is ending: as in admit().
      const held = limiter.waitForRoom(raw, key, () => limiter.identify(raw, key), (admitted) => {
        if (!admitted) refuse();
        else this.queueReady(raw, result);
      });
      if (!held) refuse();
      return;
    }
    this.queueReady(raw, result);
  }

  /** A connection past its preamble and within the limits: queued to serve, tracked by the socket served. */
  private queueReady(raw: net.Socket, result: PreambleResult): void {
    const { socket, clientAddress } = result;
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    if (socket !== raw) {
      // Track the connection by the socket the server serves (the TLS socket): shutdown and close reach it.
      this.open.delete(raw);
      this.open.add(socket);
      socket.on('close', this.forget);
      socket.on('error', ignore);
    }
    recordPreamble(result);
    if (socket !== raw) {
      (socket as Numbered)[ACCEPTED] = (raw as Numbered)[ACCEPTED];
      stampAccepted(socket, acceptedAt(raw));
    }
    this.queue.push([socket, clientAddress]);
  }

  private bindTarget(): BindTarget {
    const ep = this.endpoint;
    return ep.kind === 'unix' ? { path: ep.path } : { host: ep.host, port: ep.port };
  }

  private describe(): string {
    const ep = this.endpoint;
    return ep.kind === 'unix' ? ep.path : ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
  }
}

/** A listening socket's handle as Node's net makes it (TCPWrap or PipeWrap): what is used of it here. */
interface SharedHandle {
  getsockname(out: object): number;
  close(callback?: () => void): void;
}

/** net._createServerHandle(address, port, addressType, fd, flags): the handle, or a negative errno. */
type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => SharedHandle | number;

/** libuv's UV_TCP_IPV6ONLY bind flag. */
const UV_TCP_IPV6ONLY = 1;

/** A connection's number in accept order, kept on the socket (a WeakMap entry per connection costs the GC more). */
const ACCEPTED = Symbol('sockserve.accepted');
type Numbered = { [ACCEPTED]?: number };

function ignore(): void {}

/** `::ffff:a.b.c.d`, as Node and the PROXY parser write an IPv4-mapped IPv6 address. */
const MAPPED_IPV4 = /^::ffff:\d{1,3}(\.\d{1,3}){3}$/i;

/**
 * The key `maxConnectionsPerClient` counts a client a PROXY header named under: its host (IPv4 however it was
 * spelt), or, for a v2 header
 * naming an AF_UNIX client (HAProxy's unix-socket frontends send those), its socket path. Undefined only for
 * an address with neither: such a client counts toward maxConnections only. (Without this, every client named
 * by an AF_UNIX header was counted under no key at all, and maxConnectionsPerClient never refused one.)
 */
function perClientKey(client: ClientAddress): string | undefined {
  // An IPv4 client in its IPv4-mapped IPv6 spelling (a TCP6 header, a dual-stack proxy) is the same client.
  // No address left (a client that reset before it was accepted, `host: ''`; an unbound or abstract Unix client,
  // `path: ''`, as nearly every client of a unix-socket frontend is): not one client, so no per-client key;
  // under '' (or 'unix:') unrelated clients shared one bucket and all but the first were refused.
  if (client.host !== undefined) return client.host === '' ? undefined : MAPPED_IPV4.test(client.host) ? client.host.slice(7) : client.host;
  const path = (client as { path?: string }).path;
  return path === undefined || path === '' ? undefined : `unix:${path}`;
}

/**
 * close() destroys a connection still in its PROXY header or TLS handshake with edgeMessages.preambleAbandoned,
 * which the preamble reports (its closedByServer): it was reported as a header the client cut short
 * ("closed the connection in the middle of its header") or a handshake reset (ECONNRESET), which blamed the client.
 */
function closePreamble(socket: net.Socket, when = 'close()'): void {
  socket.destroy(preambleAbandonedError(socket, when));
}
