import type { EdgeOptions } from '../transports/edge-options';

/**
 * The typed definitions the explorer produces from a decorated handler class. Everything after the
 * explorer (bootstrap, strategies, workers) reads these, never `Reflect` directly.
 */

/**
 * A handler class, abstract ones included: what bootstrap(), `TestServer.create()` and the explorer take.
 * Its constructor's parameters are resolved by the DI container from their design types (or `@Inject`);
 * a new instance is built for every request.
 */
export type HandlerClass = abstract new (...args: any[]) => unknown;

/** Which transport decorator a handler carries: `@TcpServer`, `@UdpServer`, `@UnixStreamServer`, `@UnixDatagramServer`. */
export type TransportKind = 'tcp' | 'udp' | 'unix-stream' | 'unix-dgram';

/** `@TcpServer({ … })`'s options; `tls`, `proxyProtocol` and `limits` come from the stream edge ([production](../../docs/production.md)). */
export interface TcpServerOptions extends EdgeOptions {
  /** The port; 0 lets the OS choose (read it from `server.serverAddress`). */
  port: number;
  /** Default '127.0.0.1', as Python; '0.0.0.0' or '::' must be asked for. */
  host?: string;
  /** The listen backlog; default 511, Node's (the classic layer keeps Python's `request_queue_size` 5). */
  backlog?: number;
  /** SO_REUSEADDR; default true (no effect on TCP: libuv always sets it). */
  reuseAddress?: boolean;
  /** With an IPv6 `host` such as `'::'`, accept IPv6 clients only; default false (Node's `ipv6Only`). */
  ipv6Only?: boolean;
}
/** `@UdpServer({ … })`'s options. */
export interface UdpServerOptions {
  /** The port; 0 lets the OS choose. */
  port: number;
  /** Default '127.0.0.1', as Python; `'::1'` or `'::'` gives IPv6. */
  host?: string;
  /** Bytes read per datagram: longer ones are truncated and flagged `truncated`, as Python; default 8192, at most 65,507 (IPv4) or 65,527 (IPv6). */
  maxPacketSize?: number;
}
/** `@UnixStreamServer({ … })`'s options; `tls`, `proxyProtocol` and `limits` as for TCP. */
export interface UnixStreamServerOptions extends EdgeOptions {
  /** The socket file's path, shorter than 108 bytes; a stale socket there is replaced, anything else is an error. */
  path: string;
  /** The listen backlog; default 511. */
  backlog?: number;
  /**
   * The socket file's permission bits, e.g. `0o660` (who may connect); set right after binding, before
   * the first connection is served. Default: the process's umask decides.
   */
  mode?: number;
}
/** `@UnixDatagramServer({ … })`'s options. */
export interface UnixDatagramServerOptions {
  /** The socket file's path, shorter than 108 bytes. */
  path: string;
  /** Bytes read per datagram; longer ones are truncated and flagged `truncated`; default 8192. */
  maxPacketSize?: number;
  /** The socket file's permission bits, e.g. `0o660` (who may send); set right after binding. Default: the umask decides. */
  mode?: number;
}

/**
 * A handler's transport, as the explorer settled it from its transport decorator (and as bootstrap()'s
 * `transport` overrides amend it): which kind, and the decorator's options as written (defaults are applied
 * when the server is built, not here).
 */
export type TransportDefinition =
  | {
      /** `@TcpServer`. */
      kind: 'tcp';
      /** The decorator's options (`@TcpServer(9000)` gives `{ port: 9000 }`). */
      options: TcpServerOptions;
    }
  | {
      /** `@UdpServer`. */
      kind: 'udp';
      /** The decorator's options (`@UdpServer(9000)` gives `{ port: 9000 }`). */
      options: UdpServerOptions;
    }
  | {
      /** `@UnixStreamServer`. */
      kind: 'unix-stream';
      /** The decorator's options (`@UnixStreamServer('/tmp/s')` gives `{ path: '/tmp/s' }`). */
      options: UnixStreamServerOptions;
    }
  | {
      /** `@UnixDatagramServer`. */
      kind: 'unix-dgram';
      /** The decorator's options (`@UnixDatagramServer('/tmp/s')` gives `{ path: '/tmp/s' }`). */
      options: UnixDatagramServerOptions;
    };

/** A stream transport's definition: `@TcpServer` or `@UnixStreamServer`. */
export type StreamTransportDefinition = Extract<TransportDefinition, { kind: 'tcp' | 'unix-stream' }>;

/** Whether `t` is a stream transport (TCP or a Unix stream socket): backlog, `limits`, `tls`, `proxyProtocol`. */
export function isStreamTransport(t: TransportDefinition): t is StreamTransportDefinition {
  return t.kind === 'tcp' || t.kind === 'unix-stream';
}

/** A worker's V8 heap limits (Node's `Worker` resourceLimits); children get `--max-old-space-size` from `maxOldGenerationSizeMb`. */
export interface WorkerResourceLimits {
  /** Megabytes of V8's old generation (the main heap); past it the worker dies and is replaced. */
  maxOldGenerationSizeMb?: number;
  /** Megabytes of V8's young generation (threads only). */
  maxYoungGenerationSizeMb?: number;
  /** Megabytes for generated code (threads only). */
  codeRangeSizeMb?: number;
  /** Megabytes of the thread's stack (threads only); Node's default 4. */
  stackSizeMb?: number;
}

/** @Threading's options ([concurrency](../../docs/concurrency.md)). Each thread is an event loop serving many connections. */
export interface ThreadingOptions {
  /** Threads started at bootstrap() and kept; default `os.availableParallelism()`. */
  threads?: number;
  /** Connections a thread takes before the pool grows; default no limit. 1 is Python's model. */
  connectionsPerThread?: number;
  /** Most threads; default 64. Past it, connections share the least-loaded thread (oversubscribed). */
  maxThreads?: number;
  /** A fresh thread per connection, as Python's ThreadingMixIn. */
  perRequest?: boolean;
  /** Seconds a thread above `threads` may stay without a connection before it exits; default 30. */
  workerIdleTimeout?: number;
  /** Connections after which a thread is recycled (it ends once its open ones have); default no limit. */
  maxConnectionsPerThread?: number;
  /** Each thread's V8 heap limits; a thread past them dies and is replaced (its connections see WorkerCrashedError). */
  resourceLimits?: WorkerResourceLimits;
}
/** @Forking's options ([concurrency](../../docs/concurrency.md)): the same with child processes. */
export interface ForkingOptions {
  /** Children started at bootstrap() and kept; default `os.availableParallelism()`. */
  children?: number;
  /** Connections a child takes before the pool grows; default no limit. 1 is Python's model. */
  connectionsPerChild?: number;
  /** Default 40, as Python's max_children. */
  maxChildren?: number;
  /** A fresh child per connection, as Python's ForkingMixIn. */
  perRequest?: boolean;
  /** Seconds a child above `children` may stay without a connection before it exits; default 30. */
  workerIdleTimeout?: number;
  /** Connections after which a child is recycled (it ends once its open ones have); default no limit. */
  maxConnectionsPerChild?: number;
  /** `maxOldGenerationSizeMb` becomes the child's `--max-old-space-size`. */
  resourceLimits?: WorkerResourceLimits;
}
/** `@Concurrent({ … })`'s options. */
export interface ConcurrentOptions {
  /** A shorthand for the transport's `limits.maxConnections`: past it, a new connection is accepted and closed at once. */
  maxConnections?: number;
}

/**
 * A handler's concurrency, as the explorer settled it from its concurrency decorator ([concurrency](../../docs/concurrency.md)): `serial`
 * when it has none (one request at a time, Python's `TCPServer`), else the decorator and its options as written.
 */
export type ConcurrencyDefinition =
  | {
      /** No concurrency decorator: one request at a time on the main thread. */
      kind: 'serial';
    }
  | {
      /** `@Concurrent`: requests interleaved on the main thread's event loop. */
      kind: 'concurrent';
      /** The decorator's options; `{}` when called bare. */
      options: ConcurrentOptions;
    }
  | {
      /** `@Threading`: a pool of `worker_threads`, each an event loop (Python's `ThreadingMixIn`). */
      kind: 'threading';
      /** The decorator's options; `{}` when called bare. */
      options: ThreadingOptions;
    }
  | {
      /** `@Forking`: a pool of child processes, each an event loop (Python's `ForkingMixIn`). */
      kind: 'forking';
      /** The decorator's options; `{}` when called bare. */
      options: ForkingOptions;
    };

/** The lifecycle hooks a handler method can be decorated as: `@Verify` is `'verify'`, `@OnMessage` is `'message'`… */
export type HookName = 'verify' | 'setup' | 'handle' | 'message' | 'finish' | 'handleError' | 'handleTimeout' | 'serviceActions';

/**
 * Method names (or symbols) on the handler class's prototype, per lifecycle hook. Exactly one of
 * `handle` and `message` (`@OnMessage`) is present.
 */
export type HookDefinition = Partial<Record<HookName, string | symbol>>;

/** `@Framing(kind, options)`, settled: how each connection's messages are cut and its replies framed. */
export interface FramingDefinition {
  /** 'lines', 'length-prefixed', 'netstring', 'json-lines', or a user factory's name: for messages. */
  name: string;
  /** Bytes of one message (delimiter or prefix not counted). */
  maxLength: number;
  /** `@OnMessage` calls of one connection that may overlap (default 1). */
  concurrency: number;
  /** Bytes that may wait unsent on a connection when `req.send()` pushes more (default 16 MiB); past it the connection ends. */
  maxOutputBuffer: number;
  /** Builds the framer of one connection (or one datagram). */
  create: () => import('../framing/framer').Framer;
  /** A user framer's: the runner checks each message it gives against maxLength (the built-in ones check their own). */
  checkMessages?: boolean;
  /**
   * The same framing with `maxLength` set to the transport's `limits.maxLineLength`: present on `'lines'` and
   * `'json-lines'` when `@Framing` gave no `maxLength`, so that the server's line limit holds for `@OnMessage`
   * as it does for `readline()` (withLineLimit()).
   */
  lineLimited?: (maxLineLength: number) => FramingDefinition;
  /** `maxLength` is the transport's `limits.maxLineLength` (lineLimited()): errors name that setting. */
  fromLineLimit?: boolean;
}

/**
 * Everything sockserve knows about a decorated handler class, read from its decorators once and checked
 * before anything is bound (a ConfigurationError otherwise: no or two transports, two concurrency
 * decorators, no or two `@Handle`…). bootstrap() and `sockserve/testing` build servers from it; user code
 * rarely needs it, except to inspect what a class declares.
 */
export interface HandlerDefinition {
  /** The user's handler class. */
  handler: HandlerClass;
  /** From the transport decorator (exactly one). */
  transport: TransportDefinition;
  /** From the concurrency decorator (at most one; `serial` without). */
  concurrency: ConcurrencyDefinition;
  /** The methods decorated as lifecycle hooks. */
  hooks: HookDefinition;
  /** `@Framing`: present with an `@OnMessage` handler on a stream transport, optional on a datagram one. */
  framing?: FramingDefinition;
  /** The module file that declares the class (from the decorators' call site): workers load it from there. */
  source?: string;
}
