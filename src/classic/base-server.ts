import { ServerClosedError, SystemExit } from '../errors/errors';
import { messages } from '../errors/messages';
import { SerialStrategy } from '../concurrency/serial.strategy';
import type { ConcurrencyStrategy, RequestProcessor } from '../concurrency/strategy';
import type { ClientAddress } from '../transports/address';
import { isRoutine } from '../observability/error-kind';
import { LevelledLogger, stderrLogger } from '../observability/logger';
import { PoolStats, poolStatsOf } from '../observability/pool-stats';

export interface ServerConstructorOptions {
  /** false defers binding to explicit `await serverBind(); await serverActivate()`, as Python's bind_and_activate. */
  bindAndActivate?: boolean;
}

/** Anything a server can build per request: `new Handler(request, clientAddress, server)` then `run()`. */
export interface RequestHandlerClass<Req, S> {
  new (request: Req, clientAddress: ClientAddress, server: S): { run(): Promise<void> };
}

/**
 * The request loop of Python's `socketserver.BaseServer`, in camelCase and async.
 *
 * Methods for the caller: `ready`, `serveForever(pollInterval)`, `handleRequest()`, `shutdown()`,
 * `close()` (Python's server_close), `[Symbol.asyncDispose]`.
 *
 * Methods that may be overridden (sync or async): `serverBind`, `serverActivate`, `serverClose`,
 * `getRequest`, `verifyRequest`, `processRequest`, `finishRequest`, `shutdownRequest`, `closeRequest`,
 * `handleError`, `handleTimeout`, `serviceActions`.
 *
 * Attributes that may be overridden: `timeout` (seconds, handleRequest only), `requestTimeout` (seconds a
 * read may wait), `shutdownTimeout` (seconds shutdown waits for requests in flight before closing them),
 * `requestQueueSize`, `allowReuseAddress`, `maxPacketSize`, `blockOnClose`, `maxChildren`, `logger`
 * (where every line the server prints goes: `{ error, warn, info, debug }`; default stderr for errors
 * and warnings, nothing else).
 *
 * One turn of the loop: getRequest → verifyRequest → processRequest (→ finishRequest → shutdownRequest →
 * closeRequest), handleError on an error, then serviceActions. Concurrency enters only through
 * processRequest, which hands the request to the server's strategy.
 */
export abstract class BaseServer<Req = unknown, Addr = unknown> implements RequestProcessor<Req> {
  timeout: number | null = null;
  requestTimeout: number | null = null;
  shutdownTimeout: number | null = 30;
  requestQueueSize = 5;
  allowReuseAddress = true;
  maxPacketSize = 8192;
  blockOnClose = true;
  maxChildren = 40;
  logger: LevelledLogger = stderrLogger;

  /** Resolves once bound and listening; rejects with the bind error (AddressInUseError…). */
  readonly ready: Promise<void>;
  protected strategy: ConcurrencyStrategy<Req> = new SerialStrategy<Req>();

  private shutdownRequested = false;
  private loop: { exited: Promise<void>; release: () => void } | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    public serverAddress: Addr,
    public readonly RequestHandlerClass: RequestHandlerClass<Req, any>,
    options: ServerConstructorOptions = {},
  ) {
    // Python binds in the constructor; here on a microtask, so a subclass's fields are in place first.
    this.ready = Promise.resolve().then(async () => {
      if (options.bindAndActivate === false) return;
      try {
        await this.serverBind();
        await this.serverActivate();
      } catch (err) {
        await this.serverClose();
        throw err;
      }
    });
    this.ready.catch(() => undefined); // reported by serveForever()/handleRequest(), which await it
  }

  // ---- the transport's part: implemented by TCPServer, UDPServer and the Unix servers ----

  serverBind(): Promise<void> | void {}
  serverActivate(): Promise<void> | void {}
  /** Releases the socket. Mixins extend it to release threads or children. */
  serverClose(): Promise<void> | void {}
  /** Takes the next queued request; an error with an errno `code` is dropped silently, as Python's OSError. */
  abstract getRequest(): Promise<[Req, ClientAddress]> | [Req, ClientAddress];
  /** Resolves true when a request is queued, false after `ms` or on wakeLoop(). */
  protected abstract waitForRequest(ms: number): Promise<boolean>;
  protected abstract wakeLoop(): void;
  /** Shutdown: reads that would wait see EOF, so idle connections end now and busy ones after their reply. */
  protected stopReading(): void {}
  /** shutdownTimeout passed: close every connection still open. */
  protected abortRequests(): void {}

  // ---- the loop ----

  /** Serves until shutdown(); resolves once the loop has exited and requests in flight have finished. */
  async serveForever(pollInterval = 0.5): Promise<void> {
    if (this.loop) throw new Error(messages.alreadyServing(this.constructor.name));
    let release!: () => void;
    const exited = new Promise<void>((resolve) => (release = resolve));
    this.loop = { exited, release };
    try {
      await this.ready;
      this.assertOpen('serveForever');
      while (!this.shutdownRequested) {
        const ready = await this.waitForRequest(pollInterval * 1000);
        if (this.shutdownRequested) break; // bpo-35017: no request is taken after shutdown()
        if (ready) await this.handleRequestNoBlock();
        await this.serviceActions();
      }
      await this.strategy.drain();
    } finally {
      this.shutdownRequested = false;
      this.loop = undefined;
      release();
    }
  }

  /** Serves exactly one request, or, after `timeout` seconds with none, returns `handleTimeout()`. */
  async handleRequest(): Promise<unknown> {
    await this.ready;
    this.assertOpen('handleRequest');
    const ms = this.timeout === null ? Infinity : this.timeout * 1000;
    const deadline = Date.now() + ms;
    while (!(await this.waitForRequest(Math.max(0, deadline - Date.now())))) {
      if (Date.now() >= deadline) return this.handleTimeout();
      if (this.closing) return undefined;
    }
    await this.handleRequestNoBlock();
    return undefined;
  }

  /**
   * Stops the loop, waits for requests in flight, resolves when the loop has exited. Idle connections
   * end at once; after `shutdownTimeout` seconds whatever is still open is closed. Safe to call twice,
   * and before serving (it then resolves at once). Never deadlocks, even from inside a handler.
   */
  async shutdown(): Promise<void> {
    const loop = this.loop;
    if (!loop) return;
    this.shutdownRequested = true;
    this.wakeLoop();
    this.stopReading();
    this.strategy.stopReading?.();
    const limit = this.shutdownTimeout;
    const timer =
      limit === null
        ? undefined
        : setTimeout(() => {
            this.abortRequests();
            this.strategy.abort?.();
            loop.release();
          }, limit * 1000);
    try {
      await loop.exited;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Releases the socket and the strategy's workers; stops a running loop. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.loop) {
        this.shutdownRequested = true;
        this.wakeLoop();
      }
      await this.ready.catch(() => undefined);
      await this.serverClose();
      await this.strategy.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Requests being processed now. */
  get activeRequests(): number {
    return this.strategy.active;
  }

  /** Worker threads or child processes alive. */
  get workerCount(): number {
    return this.strategy.workers ?? 0;
  }

  /** The pool's figures (workers, restarts, their counters) for strategies with workers; else undefined. */
  get poolStats(): PoolStats | undefined {
    return poolStatsOf(this.strategy);
  }

  // ---- the stages of one request ----

  private async handleRequestNoBlock(): Promise<void> {
    let request: Req;
    let clientAddress: ClientAddress;
    try {
      [request, clientAddress] = await this.getRequest();
    } catch (err) {
      if (isOsError(err)) return;
      throw err;
    }
    let verified: boolean;
    try {
      verified = Boolean(await this.verifyRequest(request, clientAddress));
    } catch (err) {
      // Python lets this escape and leaks the request; here it ends that request only.
      verified = false;
      await this.reportError(request, clientAddress, err);
    }
    if (!verified) {
      await this.shutdownRequest(request);
      return;
    }
    try {
      await this.processRequest(request, clientAddress);
    } catch (err) {
      await this.reportError(request, clientAddress, err);
      await this.shutdownRequest(request);
    }
  }

  private async reportError(request: Req, clientAddress: ClientAddress, err: unknown): Promise<void> {
    if (err instanceof SystemExit) {
      await this.shutdownRequest(request);
      throw err;
    }
    await this.handleError(request, clientAddress, err);
  }

  /** Return false to refuse the request: it is closed and no handler runs. */
  verifyRequest(_request: Req, _clientAddress: ClientAddress): boolean | Promise<boolean> {
    return true;
  }

  /** The concurrency seam: hands the request to the strategy (serial: finishRequest then shutdownRequest). */
  processRequest(request: Req, clientAddress: ClientAddress): Promise<void> {
    return this.strategy.dispatch(this, request, clientAddress);
  }

  /** Builds the handler, which runs setup → handle → finish. */
  finishRequest(request: Req, clientAddress: ClientAddress): Promise<void> {
    // Not async: an idle keep-alive connection holds this frame, and one frame less is memory saved per connection.
    try {
      return new this.RequestHandlerClass(request, clientAddress, this).run();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Ends the request's connection (stream: FIN after the reply), then closeRequest. */
  async shutdownRequest(request: Req): Promise<void> {
    await this.closeRequest(request);
  }

  closeRequest(_request: Req): Promise<void> | void {}

  /**
   * Default: Python's traceback block at `logger.error` (stderr) for an error of the handler; one line at
   * `logger.warn` for routine client behaviour (a reset, a timeout, a line too long: see error-kind.ts).
   * The server keeps serving.
   */
  handleError(_request: Req | undefined, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> | void {
    if (isRoutine(error)) {
      this.logger.warn(messages.clientError(this.logName, clientAddress, error));
      return;
    }
    const trace = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    this.logger.error(messages.errorBlock(clientAddress, trace));
  }

  handleTimeout(): unknown {
    return undefined;
  }

  serviceActions(): Promise<void> | void {}

  /** Who the server's log lines say they are from: the class name (the decorator layer: the handler's). */
  protected get logName(): string {
    return this.constructor.name;
  }

  protected get isClosed(): boolean {
    return this.closing !== undefined;
  }

  private assertOpen(member: string): void {
    if (this.closing) throw new ServerClosedError(messages.serverClosed(this.constructor.name, member));
  }
}

function isOsError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('E');
}
