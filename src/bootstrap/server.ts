import type { BaseServer } from '../classic/base-server';
import { ServerAddress, toServerAddress } from '../transports/address';

export interface ServerCounters {
  accepted: number;
  rejected: number;
  errors: number;
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
  readonly counters: ServerCounters = { accepted: 0, rejected: 0, errors: 0 };
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
