import type { BaseServer } from '../classic/base-server';
import type { Provider } from '../container';
import type { TcpServerOptions, UdpServerOptions, UnixDatagramServerOptions, UnixStreamServerOptions } from '../metadata/definition';
import type { Logger } from '../observability/logger';

export type { Logger } from '../observability/logger';

/**
 * `bootstrap()`'s `serverClass`: a classic server class (sockserve/classic), extended and constructed by
 * sockserve with `(serverAddress, RequestHandlerClass, options)`, as every classic server is.
 */
export type ServerSubclass = new (...args: any[]) => BaseServer<any, any>;

/** Any transport decorator's options, each optional: what bootstrap() may override at run time. */
export type TransportOverrides = Partial<TcpServerOptions & UdpServerOptions & UnixStreamServerOptions & UnixDatagramServerOptions>;

/**
 * The second argument of `bootstrap(Handler, options)` ([production](../../docs/production.md)). Every field is optional; times are in
 * seconds (fractions allowed), as in Python's socketserver.
 */
export interface BootstrapOptions {
  /**
   * Run-time overrides of the transport decorator's options (port, host, path, backlog…), laid over
   * them and validated by the same rules: `{ transport: { port: 0 } }` in tests, or a port from
   * configuration. With several handlers it applies to each.
   */
  transport?: TransportOverrides;
  /** DI providers for the handler's dependencies; they take precedence over `@Injectable` classes. Default none. */
  providers?: Provider[];
  /** Seconds handleRequest() waits for a request before calling `@HandleTimeout` (Python's `timeout`); default null: forever. */
  timeout?: number | null;
  /**
   * Seconds one read (`rfile.readline()`, `read()`…) may wait with no byte arriving before it rejects with
   * RequestTimeoutError, ending that request; default null: forever. It bounds idle waits only: a slow
   * line or body is bounded by `limits.lineTimeout`. The same bounds writes: a `wfile.write()` (or
   * `@OnMessage`'s replies) of which the client takes no byte for that long closes the connection with a
   * RequestTimeoutError (a client that does not read; HAProxy's `timeout client`, nginx's `send_timeout`).
   */
  requestTimeout?: number | null;
  /**
   * Seconds a worker thread's or child's event loop may stay blocked (no heartbeat) before the worker is
   * ended and its connections reported with WorkerCrashedError; default 30 (@Threading, @Forking).
   */
  heartbeatTimeout?: number;
  /**
   * Seconds shutdown() waits for requests in flight before closing their connections and reporting them
   * through @HandleError; default 30; null waits forever.
   */
  shutdownTimeout?: number | null;
  /**
   * A subclass of the classic server matching the transport (`TCPServer` for `@TcpServer`, `UDPServer`,
   * `UnixStreamServer`, `UnixDatagramServer`), to override its hooks (`verifyRequest`, `handleError`,
   * `serviceActions`…) as in Python; default the plain class. sockserve extends and constructs it itself (its
   * constructor receives the classic constructor's arguments), so the decorated hooks wrap its stages. A class
   * that does not extend the transport's classic class is a ConfigurationError.
   */
  serverClass?: ServerSubclass;
  /**
   * Where every line sockserve prints goes: `{ error, warn?, info?, debug? }` (console, pino, winston…).
   * Handler errors at `error` (Python's traceback block), routine client behaviour at `warn` (one line),
   * lifecycle at `info`. Default: the console for `error` and `warn`, `info`/`debug` quiet ([production](../../docs/production.md)).
   */
  logger?: Logger;
  /**
   * Default false. When true: SIGINT/SIGTERM → keep accepting for `drainDelay` seconds, close the listening sockets (new clients are
   * refused), graceful shutdown() (in-flight requests drain), then close(), so the process exits 0. A second signal skips the
   * rest of `drainDelay`; one during the drain closes now (requests in flight ended and reported) and exits with 128 + the
   * signal's number (130, 143).
   */
  handleSignals?: boolean;
  /**
   * Seconds to keep accepting after SIGTERM/SIGINT before the listening sockets close, so a load
   * balancer's health check marks the server down first ([production](../../docs/production.md)). Default 0.
   * The program's own `shutdown()` or `close()` of a server in that time ends it for that server (its listener
   * closes at once).
   */
  drainDelay?: number;
}
