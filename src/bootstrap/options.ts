import type { BaseServer } from '../classic/base-server';
import type { Provider } from '../container';
import type { Logger } from '../observability/logger';

export type { Logger } from '../observability/logger';

export interface BootstrapOptions {
  /** DI providers for the handler's dependencies. */
  providers?: Provider[];
  /** Seconds handleRequest() waits for a request before calling @HandleTimeout. */
  timeout?: number | null;
  /** Seconds a read may wait for data before it fails with RequestTimeoutError. */
  requestTimeout?: number | null;
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
  /** SIGINT/SIGTERM → graceful shutdown() then close(), so the process exits 0. */
  handleSignals?: boolean;
}
