/**
 * The typed definitions the explorer produces from a decorated handler class. Everything after the
 * explorer (bootstrap, strategies, workers) reads these, never `Reflect` directly.
 */

export type TransportKind = 'tcp' | 'udp' | 'unix-stream' | 'unix-dgram';

export interface TcpServerOptions {
  port: number;
  /** Default '127.0.0.1', as Python; '0.0.0.0' or '::' must be asked for. */
  host?: string;
  /** Python's request_queue_size: default 5. */
  backlog?: number;
  /** SO_REUSEADDR; default true. */
  reuseAddress?: boolean;
  ipv6Only?: boolean;
}
export interface UdpServerOptions {
  port: number;
  host?: string;
  /** Longer datagrams are truncated and flagged `truncated`; default 8192. */
  maxPacketSize?: number;
}
export interface UnixStreamServerOptions {
  path: string;
  backlog?: number;
}
export interface UnixDatagramServerOptions {
  path: string;
  maxPacketSize?: number;
}

export type TransportDefinition =
  | { kind: 'tcp'; options: TcpServerOptions }
  | { kind: 'udp'; options: UdpServerOptions }
  | { kind: 'unix-stream'; options: UnixStreamServerOptions }
  | { kind: 'unix-dgram'; options: UnixDatagramServerOptions };

export interface ThreadingOptions {
  /** Warm pool size; default `os.availableParallelism()`. */
  threads?: number;
  /** Default 64. */
  maxThreads?: number;
  /** A fresh thread per request, as Python's ThreadingMixIn. */
  perRequest?: boolean;
  idleTimeoutMs?: number;
}
export interface ForkingOptions {
  children?: number;
  /** Default 40, as Python's max_children. */
  maxChildren?: number;
  perRequest?: boolean;
}
export interface ConcurrentOptions {
  /** No limit by default; at the limit new connections wait in the backlog. */
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
