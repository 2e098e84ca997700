import type { BaseServer } from '../classic/base-server';
import type { Provider } from '../container';
import type { TcpServerOptions, UdpServerOptions, UnixDatagramServerOptions, UnixStreamServerOptions } from '../metadata/definition';
import type { Logger } from '../observability/logger';

export type { Logger } from '../observability/logger';

/** Any transport decorator's options, each optional: what bootstrap() may override at run time. */
export type TransportOverrides = Partial<TcpServerOptions & UdpServerOptions & UnixStreamServerOptions & UnixDatagramServerOptions>;

export interface BootstrapOptions {
  /**
   * Run-time overrides of the transport decorator's options (port, host, path, backlog…), laid over
   * them and validated by the same rules: `{ transport: { port: 0 } }` in tests, or a port from
   * configuration. With several handlers it applies to each.
   */
  transport?: TransportOverrides;
  /** DI providers for the handler's dependencies. */
  providers?: Provider[];
  /** Seconds handleRequest() waits for a request before calling @HandleTimeout. */
  timeout?: number | null;
  /** Seconds a read may wait for data before it fails with RequestTimeoutError. */
  requestTimeout?: number | null;
  /**
   * Seconds a worker thread's or child's event loop may stay blocked (no heartbeat) before the worker is
   * ended and its connections reported with WorkerCrashedError; default 30 (@Threading, @Forking).
   */
  heartbeatTimeout?: number;
  /** Seconds shutdown() waits for requests in flight before closing them; default 30. */
  shutdownTimeout?: number | null;
  /** A subclass of the classic server matching the transport (TCPServer for @TcpServer…), to override its hooks. */
  serverClass?: new (...args: any[]) => BaseServer<any, any>;
  /**
   * Where every line sockserve prints goes: `{ error, warn?, info?, debug? }` (console, pino, winston…).
   * Handler errors at `error` (Python's traceback block), routine client behaviour at `warn` (one line),
   * lifecycle at `info`. Default: the console for `error` and `warn`, `info`/`debug` quiet (API.md §6).
   */
  logger?: Logger;
  /**
   * SIGINT/SIGTERM → keep accepting for `drainDelay` seconds, close the listening sockets (new clients are
   * refused), graceful shutdown() (in-flight requests drain), then close(), so the process exits 0.
   */
  handleSignals?: boolean;
  /**
   * Seconds to keep accepting after SIGTERM/SIGINT before the listening sockets close, so a load
   * balancer's health check marks the server down first (API.md §6, §15). Default 0.
   */
  drainDelay?: number;
}
