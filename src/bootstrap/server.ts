import type { SecureContextOptions } from 'node:tls';
import { inspect } from 'node:util';
import type { BaseServer } from '../classic/base-server';
import { edgeMessages } from '../errors/edge.messages';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import { LevelledLogger, loggerOf } from '../observability/logger';
import { ServerMetrics, ServerStats } from '../observability/server-metrics';
import { describeServerAddress, ServerAddress, toServerAddress } from '../transports/address';

export type { ServerStats, WorkerStats } from '../observability/server-metrics';
/** The counters a server keeps (its `counters`): increment fields in place; see ServerMetrics. */
export type ServerCounters = ServerMetrics;

/**
 * The running server that bootstrap() returns: the public face over the assembled classic server.
 * `serverAddress` is `{ host, port }` or `{ path }`.
 */
export class Server implements AsyncDisposable {
  /** @internal the counters behind stats(), incremented where things happen (see ServerMetrics). */
  readonly counters = new ServerMetrics();
  private classic!: BaseServer<any, any>;
  private readonly cleanups: Array<() => void> = [];
  private closing: Promise<void> | undefined;

  /** Built by bootstrap(); `release` runs once after the classic server has closed (bootstrap disposes the shared container there). */
  constructor(
    /** The handler class's name: what the server's log lines and error messages say they are from. */
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

  /**
   * The address bound: `{ host, port }` for TCP and UDP (the real port after port 0), `{ path }` for Unix
   * sockets. The classic layer's `serverAddress` is Python's `[host, port]` pair instead.
   */
  get serverAddress(): ServerAddress {
    return toServerAddress(this.classic.serverAddress);
  }

  /**
   * `JSON.stringify(server)` (an event's payload logged whole, `server` in it): `{ handler, address }`, not the
   * internals, which refer back to this server (a circular structure, which JSON.stringify throws on; thrown in
   * a diagnostics_channel subscriber, that error reaches the process).
   */
  toJSON(): {
    /** The handler class's name (`handlerName`). */
    handler: string;
    /** `serverAddress`; undefined before the server is bound. */
    address: ServerAddress | undefined;
  } {
    return { handler: this.handlerName, address: this.addressIfBound() };
  }

  /** `console.log(server)` / util.inspect: `Server { handler: 'Echo', address: 127.0.0.1:9000 }`. */
  [inspect.custom](): string {
    return `Server { handler: '${this.handlerName}', address: ${this.where()} }`;
  }

  /**
   * `` `${server}` `` (a log line, `String(event.server)`): `Echo on 127.0.0.1:9000`; it read `[object Object]`.
   * Before the bind, `Echo (not bound yet)`: the first workers' `worker.start` comes then (it read `Echo on none`).
   */
  toString(): string {
    const address = this.addressIfBound();
    return address === undefined ? `${this.handlerName} (not bound yet)` : `${this.handlerName} on ${this.describeAddress(address)}`;
  }

  private where(): string {
    const address = this.addressIfBound();
    return address === undefined ? 'none' : this.describeAddress(address);
  }

  private addressIfBound(): ServerAddress | undefined {
    try {
      return this.classic ? this.serverAddress : undefined;
    } catch {
      return undefined; // not bound (yet)
    }
  }

  /** The classic server underneath (its hooks, attributes and `socket`). */
  get classicServer(): BaseServer<any, any> {
    return this.classic;
  }

  /**
   * Serves until shutdown(); resolves once shutdown() has completed. Ended by a signal (`handleSignals`), or by the
   * program's own close(), it resolves once the server is closed too (its workers ended, its singletons disposed),
   * as docs/production.md says: it resolved at the loop's end, before the close, so a program that calls
   * `process.exit()` after it cut the close short (new-user runs: no dispose(), no "closed" line).
   */
  serveForever(pollInterval: number | null = 0.5): Promise<void> {
    // handleSignals closed the server before the program got to serve it (a SIGTERM during its start-up): there is
    // nothing to serve, and rejecting with ServerClosedError made `await server.serveForever()` crash it (hostile run).
    if (this.endedBySignal && this.closing) return this.closing.then(() => undefined, () => undefined);
    this.shutdownSaid = false; // a new serving: its shutdown is said again
    return this.classic.serveForever(pollInterval).then(() => (this.endedBySignal ? this.signalDrain : this.closing?.then(() => undefined, () => undefined)));
  }

  /** @internal handleSignals began this server's drain: a serveForever() after its close() resolves instead of rejecting. */
  endedBySignal = false;

  /** @internal bootstrap() logged that this server listens: its close() logs that it closed. */
  announced = false;

  /** @internal The signal's drain of this server, to its close (it never rejects: its failure is logged and sets the exit code). */
  signalDrain: Promise<void> | undefined;

  /**
   * @internal Set by handleSignals while a signal's drainDelay runs: the program's own shutdown() or close() then
   * calls it, once, and this server's delay ends there (its listener closes at once). Left accepting, it took
   * clients that nothing would serve any more and reset them at the close (hostile run).
   */
  endDrainDelay: (() => void) | undefined;

  /** shutdown's "draining" line was logged since the last serveForever(): a second shutdown() (the program's, the signal's) does not repeat it. */
  private shutdownSaid = false;

  /** Serves exactly one request, or returns after `timeout` having called @HandleTimeout. */
  handleRequest(): Promise<unknown> {
    return this.classic.handleRequest();
  }

  /**
   * Stops the loop, waits for requests in flight; safe twice or before serving. The listening socket stays open
   * (Python's), except during a signal's `drainDelay` (`handleSignals`): there it closes now, new clients refused,
   * since the close the signal began follows and a client accepted now would only be reset.
   */
  shutdown(): Promise<void> {
    const stopped = this.takeDrainDelay() ? this.stopListening() : undefined;
    this.announceShutdown();
    const shut = this.shutdownAnnounced();
    return stopped ? Promise.all([stopped, shut]).then(() => undefined) : shut;
  }

  /** Ends this server's part of a signal's drainDelay (endDrainDelay) when one runs; true if it did. */
  private takeDrainDelay(): boolean {
    const end = this.endDrainDelay;
    if (!end) return false;
    this.endDrainDelay = undefined;
    end();
    return true;
  }

  /**
   * @internal Logs that shutdown drains the requests in flight. handleSignals' drain says it before it closes the
   * listeners: that can wait for a worker whose event loop is blocked until shutdownTimeout ends it, and the line
   * came after the request it counted had been ended (new-user run). A signal's drain that keeps the process
   * waiting for requests (`signal` given, some in flight) is said at `warn`, which the default logger prints, with
   * how long it may last and how to end it: a Ctrl-C that printed nothing while a request ran looked ignored (new-user runs).
   */
  announceShutdown(signal?: NodeJS.Signals): void {
    if (this.shutdownSaid || this.closing) return; // said once; a closed server drains nothing (it logged "closed")
    this.shutdownSaid = true;
    const line = messages.draining(this.handlerName, this.classic.activeRequests, this.classic.queuedRequests);
    if (signal !== undefined && this.drainWaits) this.logger.warn(line + messages.drainingUntil(signal, this.classic.shutdownTimeout));
    else this.logger.info(line);
  }

  /** @internal Requests run or wait to be served: a signal's drain waits for them, and says so at warn (announceShutdown, a repeated signal). */
  get drainWaits(): boolean {
    return this.classic.activeRequests + this.classic.queuedRequests > 0;
  }

  /** @internal shutdown() once announceShutdown() has logged it (handleSignals' drain). */
  shutdownAnnounced(): Promise<void> {
    return this.classic.shutdown();
  }

  /** @internal shutdown() called by the handler of `request` (see BaseServer.shutdownFromRequest). */
  shutdownFromRequest(request: object): Promise<void> {
    return this.classic.shutdownFromRequest(request);
  }

  /** Releases the socket, the workers and (once every server sharing it has closed) the container's singletons. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.takeDrainDelay();
      this.cleanups.splice(0).forEach((c) => c());
      await this.classic.close();
      await this.release();
      // Not for a server bootstrap() gave up on before it said it listened (a path in use): it never opened.
      if (this.announced) this.logger.info(messages.closed(this.handlerName));
    })();
    return this.closing;
  }

  /** @internal handleSignals: `signal` came again during the drain: close() now, the requests it abandons reported as ended by it. */
  closeForSignal(signal: string): Promise<void> {
    this.classic.closedBySignal ??= signal;
    return this.close();
  }

  /** `await using server = await bootstrap(Handler)`: calls close() when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * A synchronous snapshot ([observability](../../docs/observability.md)): `{ accepted, active, rejected, oversubscribed, errors,
   * clientErrors, tlsErrors, proxyErrors, healthChecks, restarts, messages, bytesIn, bytesOut,
   * acceptErrors, dropped, workers: [{ id, pid | threadId, connections, requests, heapUsedBytes, rssBytes? }] }`.
   * Counters grow from 0 at bootstrap(); sizes in bytes; worker figures are at most 1 s old.
   */
  stats(): ServerStats {
    const pool = this.classic.poolStats; // first: it takes in what workers have said (their counts come with it)
    return this.counters.snapshot(this.classic.activeRequests, pool, (this.classic as { dropped?: number }).dropped);
  }

  /** @internal where the server's lines go (bootstrap's `logger` option). */
  get logger(): LevelledLogger {
    return loggerOf(this.classic); // a serverClass's own logger is guarded too (levelled())
  }

  /**
   * The address as text, for log lines: `host:port` (an IPv6 host in brackets, `[::1]:9000`) or the Unix path;
   * of `a`, by default the bound address (`serverAddress`, which throws before the server is bound).
   */
  describeAddress(a: ServerAddress = this.serverAddress): string {
    return describeServerAddress(a);
  }

  /**
   * Swaps the TLS certificate (key, cert, ca…) without a restart: new connections get it, open ones keep
   * theirs (Node's `tls.Server.setSecureContext`). In the server's process at once; the returned promise
   * resolves once every worker uses it too (children that accept connections themselves may take one in
   * between). Throws ConfigurationError, synchronously, on a server without `tls`.
   */
  setSecureContext(options: SecureContextOptions): Promise<void> {
    const classic = this.classic as unknown as { setSecureContext?: (o: SecureContextOptions) => Promise<void> | void };
    if (!classic.setSecureContext) throw new ConfigurationError(edgeMessages.notTls(this.handlerName));
    return Promise.resolve(classic.setSecureContext(options));
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
}
