/**
 * sockserve: network servers the way Python's socketserver builds them, driven by decorators and DI.
 *
 * The server owns the communication, the handler class owns the protocol. bootstrap() reads a handler
 * class's decorators (explorer → HandlerDefinition), checks its dependency graph (container), and
 * assembles one classic server from three independent parts:
 *
 * ```text
 *   transport             stream: TCP, Unix
 *                         datagram: UDP, Unix
 *       │
 *       ▼
 *   concurrency           serial | concurrent
 *   (processRequest)      threading | forking
 *       │
 *       ▼
 *   lifecycle             verify → setup → handle → finish
 *   (once per request)    → close, each exactly once; the
 *                         handler built by the container
 * ```
 *
 * `sockserve/classic` exports the Python-shaped classes the decorators are built on.
 *
 * @module sockserve
 */
/// <reference types="node" preserve="true" />
export * from './decorators';
export { Injectable, Inject, Token, Container } from './container';
export type { Provider, InjectionToken, Scope } from './container';
export { bootstrap } from './bootstrap/bootstrap';
export type { BootstrapOptions, Logger, TransportOverrides, ServerSubclass } from './bootstrap/options';
export type { LevelledLogger } from './observability/logger';
export type {
  SockserveEvents, ConnectionOpenEvent, ConnectionCloseEvent, RequestStartEvent, RequestEndEvent, MessageReceivedEvent, WorkerStartEvent,
  WorkerExitEvent, RequestTraceContext, PlainError, RequestEndFields,
} from './observability/event-types';
export { Server } from './bootstrap/server';
export type { ServerStats, WorkerStats } from './bootstrap/server';
export { StreamRequest, DatagramRequest } from './bootstrap/request-objects';
export { MessageRequest } from './framing/message-request';
export type { MessageChannel } from './framing/message-request';
export type { Framer, FramerFactory, FramerKind, FramerOptions, FramingOptions, LengthPrefixedOptions } from './framing/framer';
export { LinesFramer } from './framing/lines.framer';
export { JsonLinesFramer } from './framing/json-lines.framer';
export { LengthPrefixedFramer } from './framing/length-prefixed.framer';
export { NetstringFramer } from './framing/netstring.framer';
export type { ClientAddress, IpAddress, UnixAddress, ServerAddress } from './transports/address';
export { isWorker, workerAcceptMechanism } from './runtime';
export type { AcceptMechanism } from './runtime';
export {
  SockserveError, ConfigurationError, InjectionError, AddressInUseError, LineTooLongError, RequestTimeoutError,
  FramingError, FrameTooLongError, OutputBufferFullError,
  ServerClosedError, WorkerCrashedError, SystemExit, ProxyProtocolError, TlsHandshakeError, UnreachableClientError,
} from './errors/errors';
export type { TlsServerOptions, ProxyProtocolOption, StreamLimits, TlsInfo, ProxyInfo, EdgeOptions } from './transports/edge-options';
export type {
  HandlerDefinition, HandlerClass, TransportDefinition, TransportKind, ConcurrencyDefinition, HookDefinition, HookName, FramingDefinition,
} from './metadata/definition';
export type { AnyClass, InjectableOptions, ClassProvider, ValueProvider, FactoryProvider, ClassType, RequestScope } from './container';
export type {
  TcpServerOptions, UdpServerOptions, UnixStreamServerOptions, UnixDatagramServerOptions,
  ConcurrentOptions, ThreadingOptions, ForkingOptions, WorkerResourceLimits,
} from './metadata/definition';
