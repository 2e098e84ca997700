import type { SecureContextOptions } from 'node:tls';
import type { BaseServer } from '../classic/base-server';
import { edgeMessages } from '../errors/edge.messages';
import { ConfigurationError } from '../errors/errors';
import { ServerAddress, toServerAddress } from '../transports/address';

export interface ServerCounters {
  accepted: number;
  rejected: number;
  errors: number;
  /** Failed TLS handshakes (plain-text clients included). */
  tlsErrors: number;
  /** Missing, malformed or untrusted PROXY headers. */
  proxyErrors: number;
  /** Connections closed before their first byte (a load balancer's TCP check). */
  healthChecks: number;
}

export interface ServerStats extends ServerCounters {
  /** Requests being processed now. */
  active: number;
  /** Worker threads or child processes alive (0 for serial and concurrent). */
  workers: number;
  /** Dead workers replaced (@Threading, @Forking; 0 otherwise). */
  restarts: number;
  /** Connections placed on a worker already at connectionsPerThread/connectionsPerChild because the pool was at its max. */
  oversubscribed: number;
}

/**
 * The running server that bootstrap() returns: the public face over the assembled classic server.
 * `serverAddress` is `{ host, port }` or `{ path }`.
 */
export class Server implements AsyncDisposable {
  readonly counters: ServerCounters = { accepted: 0, rejected: 0, errors: 0, tlsErrors: 0, proxyErrors: 0, healthChecks: 0 };
  private classic!: BaseServer<any, any>;
  private readonly cleanups: Array<() => void> = [];
  private closing: Promise<void> | undefined;

  /** `release` runs once after the classic server has closed: bootstrap disposes the shared container there. */
  constructor(
    readonly handlerName: string,
    private readonly release: () => Promise<void>,
  ) {}

  /** @internal bootstrap's wiring step. */
  attach(classic: BaseServer<any, any>): void {
    this.classic = classic;
  }

  /** @internal runs on close(), e.g. to remove signal listeners. */
  onClose(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  get serverAddress(): ServerAddress {
    return toServerAddress(this.classic.serverAddress);
  }

  /** The classic server underneath (its hooks, attributes and `socket`). */
  get classicServer(): BaseServer<any, any> {
    return this.classic;
  }

  /** Serves until shutdown(); resolves once shutdown() has completed. */
  serveForever(pollInterval = 0.5): Promise<void> {
    return this.classic.serveForever(pollInterval);
  }

  /** Serves exactly one request, or returns after `timeout` having called @HandleTimeout. */
  handleRequest(): Promise<unknown> {
    return this.classic.handleRequest();
  }

  /** Stops the loop, waits for requests in flight; safe twice or before serving. */
  shutdown(): Promise<void> {
    return this.classic.shutdown();
  }

  /** @internal shutdown() called by the handler of `request` (see BaseServer.shutdownFromRequest). */
  shutdownFromRequest(request: object): Promise<void> {
    return this.classic.shutdownFromRequest(request);
  }

  /** Releases the socket, the workers and (once every server sharing it has closed) the container's singletons. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.cleanups.splice(0).forEach((c) => c());
      await this.classic.close();
      await this.release();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Swaps the TLS certificate (key, cert, ca…) without a restart: new connections get it, open ones keep
   * theirs (Node's `tls.Server.setSecureContext`). A ConfigurationError on a server without `tls`.
   */
  setSecureContext(options: SecureContextOptions): void {
    const classic = this.classic as unknown as { setSecureContext?: (o: SecureContextOptions) => void };
    if (!classic.setSecureContext) throw new ConfigurationError(edgeMessages.notTls(this.handlerName));
    classic.setSecureContext(options);
  }

  /** @internal SIGTERM's drain begins: health checks that come with a PROXY LOCAL header go unanswered. */
  beginDrain(): void {
    (this.classic as unknown as { beginDrain?: () => void }).beginDrain?.();
  }

  /** @internal SIGTERM's drain: close the listening socket so new clients are refused, keep the connections. */
  stopListening(): Promise<void> {
    const classic = this.classic as unknown as { stopListening?: () => Promise<void> };
    return classic.stopListening?.() ?? Promise.resolve();
  }

  stats(): ServerStats {
    const pool = this.classic.poolStats;
    return {
      ...this.counters,
      active: this.classic.activeRequests,
      workers: this.classic.workerCount,
      restarts: pool?.restarts ?? 0,
      oversubscribed: pool?.oversubscribed ?? 0,
    };
  }
}
