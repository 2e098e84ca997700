import type * as net from 'node:net';

/** A limit of `limits` that refuses connections. */
export type LimitName = 'maxConnections' | 'maxConnectionsPerClient';

/**
 * `limits.maxConnections` and `limits.maxConnectionsPerClient`: counts a server's open connections, in
 * total and per client host, and refuses a new one over either limit (the caller closes it at once with
 * nothing read, as Node's `server.maxConnections` does, so open descriptors stay within the limit).
 *
 * A connection counts from its accept until its socket here has closed, once the server loop took it its
 * request has ended, and a worker's socket of it that lingers past that end has closed too: a socket handed
 * to a worker closes here at once while the worker holds its descriptor, and a request's socket lingers for
 * the client's FIN after its reply, here or in the worker. Lookups are by socket: the
 * accepted one, or the TLS socket over it (`alias`).
 */
export class ConnectionLimiter {
  private total = 0;
  private readonly perClient = new Map<string, number>();
  private readonly leases = new WeakMap<object, Lease>();
  /**
   * Leases that may end any moment without the client having to wait for it: a worker's connection (its socket here
   * closed at the hand-over, its request still running there), whose end the server's process hears a moment after
   * its client saw the close; and a connection whose request has ended while its socket here still lingers for the
   * client's FIN (a relayed worker's). In all, and per client host. A connection over a limit waits for one of these
   * (waitForRoom) rather than being refused at once.
   */
  private ending = 0;
  private readonly endingPerClient = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly maxConnections = Infinity,
    readonly maxPerClient = Infinity,
  ) {}

  /** Connections counted now. */
  get open(): number {
    return this.total;
  }

  /** The limit a new connection from `host` is over now, if any (maxConnections first): what admit() refuses on. */
  overWhich(host: string | undefined): LimitName | undefined {
    if (this.total >= this.maxConnections) return 'maxConnections';
    if (host !== undefined && this.countOf(host) >= this.maxPerClient) return 'maxConnectionsPerClient';
    return undefined;
  }

  /**
   * Counts a newly accepted socket, against the per-client limit too when `host` is known (undefined when a
   * PROXY header will name the client: see `identify`). False when over a limit: the caller closes it.
   */
  admit(socket: net.Socket, host: string | undefined): boolean {
    if (this.overWhich(host) !== undefined) return false;
    const lease: Lease = { host, socketOpen: true, busy: false, released: false };
    this.total++;
    if (host !== undefined) this.perClient.set(host, this.countOf(host) + 1);
    this.leases.set(socket, lease);
    socket.once('close', () => {
      lease.socketOpen = false;
      if (lease.busy && !lease.released) this.markEnding(lease);
      this.maybeRelease(lease);
    });
    // The server's side has ended (its FIN sent): a relayed worker's connection the client sees end before its
    // request's end reaches this process.
    socket.once('finish', () => {
      if (!lease.released) this.markEnding(lease);
    });
    return true;
  }

  /**
   * A connection `attempt` (admit() or identify()) refused while a connection that counts against the same limit
   * may end any moment (`ending`: one in a worker, one lingering; for maxConnectionsPerClient, one of `host`'s): a
   * client that opens its next connection as soon as its last one closed was refused (maxConnectionsPerClient 1
   * served 12 of 40 such clients with @Threading, hostile run). `attempt` is tried again at each release, for
   * WAIT_MS (milliseconds) at most, at most WAIT_MAX connections at once (descriptors stay within the limit plus
   * that, API.md §11). Then `decide(true)` once it has room, `decide(false)` when none came or the client left.
   * False, with nothing held, when no such connection is there or WAIT_MAX wait already: refuse now.
   */
  waitForRoom(socket: net.Socket, host: string | undefined, attempt: () => boolean, decide: (admitted: boolean) => void): boolean {
    if (this.waiting.length >= WAIT_MAX) return false;
    // Over maxConnections: any such end makes room; over the client's own limit, only one of that client's.
    const overTotal = this.total >= this.maxConnections;
    if (overTotal ? this.ending === 0 : host === undefined || (this.endingPerClient.get(host) ?? 0) === 0) return false;
    const waiter: Waiter = { socket, attempt, decide, timer: undefined, left: () => this.settle(waiter, false) };
    waiter.timer = setTimeout(waiter.left, WAIT_MS);
    socket.once('close', waiter.left); // the client left: refused (it is gone)
    this.waiting.push(waiter);
    return true;
  }

  private settle(waiter: Waiter, admitted: boolean): void {
    const at = this.waiting.indexOf(waiter);
    if (at < 0) return;
    this.waiting.splice(at, 1);
    clearTimeout(waiter.timer);
    waiter.socket.off('close', waiter.left);
    waiter.decide(admitted);
  }

  /** Room was made: the waiting connections, oldest first, try again. */
  private retryWaiting(): void {
    for (const waiter of [...this.waiting]) if (waiter.attempt()) this.settle(waiter, true);
  }

  /** The client behind a PROXY header is known now: counts it, or says false when it is over its limit. */
  identify(socket: object, host: string): boolean {
    const lease = this.leases.get(socket);
    if (!lease || lease.host !== undefined || lease.released) return true;
    if (this.countOf(host) >= this.maxPerClient) return false;
    lease.host = host;
    this.perClient.set(host, this.countOf(host) + 1);
    return true;
  }

  /** `alias` (the TLS socket over `socket`) is the same connection. */
  alias(socket: object, alias: object): void {
    const lease = this.leases.get(socket);
    if (lease) this.leases.set(alias, lease);
  }

  /** The server loop took the connection: it counts until requestEnded, even after its socket here closed. */
  requestStarted(socket: object): void {
    const lease = this.leases.get(socket);
    if (lease) lease.busy = true;
  }

  requestEnded(socket: object): void {
    const lease = this.leases.get(socket);
    if (!lease) return;
    lease.busy = false;
    // Its socket here still lingers for the client's FIN: released when that comes (relayed hostile re-check: a client
    // that reconnected as it read the server's end was refused half the time).
    if (lease.socketOpen && !lease.released) this.markEnding(lease);
    this.maybeRelease(lease);
  }

  /**
   * The request of `socket`'s connection has ended in a worker that owns its socket, which lingers there for the
   * client's FIN (at most the linger's 2 s): it counts until closedInWorker, as a socket lingering here does.
   */
  lingersInWorker(socket: object): void {
    const lease = this.leases.get(socket);
    if (!lease || lease.released) return;
    lease.inWorker = true;
    this.markEnding(lease);
  }

  /** That socket has closed in the worker, or the worker has ended. */
  closedInWorker(socket: object): void {
    const lease = this.leases.get(socket);
    if (!lease?.inWorker) return;
    lease.inWorker = false;
    this.maybeRelease(lease);
  }

  private markEnding(lease: Lease): void {
    if (lease.ending) return;
    lease.ending = true;
    this.ending++;
    if (lease.host !== undefined) this.endingPerClient.set(lease.host, (this.endingPerClient.get(lease.host) ?? 0) + 1);
  }

  private countOf(host: string): number {
    return this.perClient.get(host) ?? 0;
  }

  private maybeRelease(lease: Lease): void {
    if (lease.released || lease.socketOpen || lease.busy || lease.inWorker) return;
    lease.released = true;
    if (lease.ending) this.ending--;
    this.total--;
    if (lease.host !== undefined) {
      if (lease.ending) decrement(this.endingPerClient, lease.host);
      decrement(this.perClient, lease.host);
    }
    if (this.waiting.length > 0) this.retryWaiting();
  }
}

/** One less of `key` in a count by key; the key goes at 0. */
function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** Milliseconds a connection over a limit waits for one that may end any moment (waitForRoom). */
const WAIT_MS = 250;
/** Connections that may wait so at once; the next ones are refused at once. */
const WAIT_MAX = 16;

interface Lease {
  host: string | undefined;
  socketOpen: boolean;
  busy: boolean;
  released: boolean;
  /** Counted in `ending`: its socket here closed while its request still ran elsewhere, or its request ended while its socket lingers. */
  ending?: boolean;
  /** Its socket in the worker that owns it lingers after its request's end (lingersInWorker): it counts until that closes. */
  inWorker?: boolean;
}

interface Waiter {
  socket: net.Socket;
  attempt: () => boolean;
  decide: (admitted: boolean) => void;
  timer: NodeJS.Timeout | undefined;
  left: () => void;
}
