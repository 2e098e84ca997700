import type * as net from 'node:net';

/**
 * `limits.maxConnections` and `limits.maxConnectionsPerClient`: counts a server's open connections, in
 * total and per client host, and refuses a new one over either limit (the caller closes it at once with
 * nothing read, as Node's `server.maxConnections` does, so open descriptors stay within the limit).
 *
 * A connection counts from its accept until both its socket here has closed and, once the server loop took
 * it, its request has ended: a socket handed to a child process closes here at once while the child still
 * holds its descriptor, and a request's socket lingers here after its reply. Lookups are by socket: the
 * accepted one, or the TLS socket over it (`alias`).
 */
export class ConnectionLimiter {
  private total = 0;
  private readonly perClient = new Map<string, number>();
  private readonly leases = new WeakMap<object, Lease>();

  constructor(
    readonly maxConnections = Infinity,
    readonly maxPerClient = Infinity,
  ) {}

  /** Connections counted now. */
  get open(): number {
    return this.total;
  }

  /**
   * Counts a newly accepted socket, against the per-client limit too when `host` is known (undefined when a
   * PROXY header will name the client: see `identify`). False when over a limit: the caller closes it.
   */
  admit(socket: net.Socket, host: string | undefined): boolean {
    if (this.total >= this.maxConnections) return false;
    if (host !== undefined && this.countOf(host) >= this.maxPerClient) return false;
    const lease: Lease = { host, socketOpen: true, busy: false, released: false };
    this.total++;
    if (host !== undefined) this.perClient.set(host, this.countOf(host) + 1);
    this.leases.set(socket, lease);
    socket.once('close', () => {
      lease.socketOpen = false;
      this.maybeRelease(lease);
    });
    return true;
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
    this.maybeRelease(lease);
  }

  private countOf(host: string): number {
    return this.perClient.get(host) ?? 0;
  }

  private maybeRelease(lease: Lease): void {
    if (lease.released || lease.socketOpen || lease.busy) return;
    lease.released = true;
    this.total--;
    if (lease.host === undefined) return;
    const left = this.countOf(lease.host) - 1;
    if (left > 0) this.perClient.set(lease.host, left);
    else this.perClient.delete(lease.host);
  }
}

interface Lease {
  host: string | undefined;
  socketOpen: boolean;
  busy: boolean;
  released: boolean;
}
