import type { EdgeOptions } from '../transports/edge-options';

/**
 * The typed definitions the explorer produces from a decorated handler class. Everything after the
 * explorer (bootstrap, strategies, workers) reads these, never `Reflect` directly.
 */

export type TransportKind = 'tcp' | 'udp' | 'unix-stream' | 'unix-dgram';

/** `@TcpServer({ … })`'s options; `tls`, `proxyProtocol` and `limits` come from the stream edge (docs/production.md). */
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
}
/** `@UnixDatagramServer({ … })`'s options. */
export interface UnixDatagramServerOptions {
  /** The socket file's path, shorter than 108 bytes. */
  path: string;
  /** Bytes read per datagram; longer ones are truncated and flagged `truncated`; default 8192. */
  maxPacketSize?: number;
}

export type TransportDefinition =
  | { kind: 'tcp'; options: TcpServerOptions }
  | { kind: 'udp'; options: UdpServerOptions }
  | { kind: 'unix-stream'; options: UnixStreamServerOptions }
  | { kind: 'unix-dgram'; options: UnixDatagramServerOptions };

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

/** @Threading's options (API.md §3). Each thread is an event loop serving many connections. */
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
/** @Forking's options (API.md §3): the same with child processes. */
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

export type ConcurrencyDefinition =
  | { kind: 'serial' }
  | { kind: 'concurrent'; options: ConcurrentOptions }
  | { kind: 'threading'; options: ThreadingOptions }
  | { kind: 'forking'; options: ForkingOptions };

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
  /** Builds the framer of one connection (or one datagram). */
  create: () => import('../framing/framer').Framer;
}

export interface HandlerDefinition {
  /** The user's handler class. */
  handler: abstract new (...args: any[]) => unknown;
  transport: TransportDefinition;
  concurrency: ConcurrencyDefinition;
  hooks: HookDefinition;
  /** `@Framing`: present with an `@OnMessage` handler on a stream transport, optional on a datagram one. */
  framing?: FramingDefinition;
  /** The module file that declares the class (from the decorators' call site): workers load it from there. */
  source?: string;
}
