/**
 * `sockserve/classic`: Python's socketserver classes, in camelCase. The decorator layer assembles these
 * same classes, so every behaviour has one implementation.
 *
 * @module sockserve/classic
 */
/// <reference types="node" preserve="true" />
export { BaseServer } from './classic/base-server';
export type { RequestHandlerClass, ServerConstructorOptions } from './classic/base-server';
export type { RequestProcessor } from './concurrency/strategy';
export type { PoolStats, CounterTotals } from './observability/server-metrics';
export type { LevelledLogger } from './observability/logger';
export { TCPServer, UnixStreamServer } from './classic/stream-servers';
export type { IpAddressInput, UnixAddressInput, StreamServerOptions } from './classic/stream-servers';
export { Preamble, preambleFacts } from './transports/connection-preamble';
export type { PreambleDone, PreambleResult } from './transports/connection-preamble';
export type { TlsTerminator } from './transports/tls-terminate';
export type { EdgeOptions } from './transports/edge-options';
export type { DropKind } from './transports/stream-listener';
export type { DatagramSocket, ReceivedDatagram } from './transports/datagram-socket';
export { UDPServer, UnixDatagramServer } from './classic/datagram-servers';
export { BaseRequestHandler, StreamRequestHandler, DatagramRequestHandler } from './classic/request-handler';
export type { DatagramRequestTuple } from './classic/request-handler';
export {
  ConcurrentMixIn, ThreadingMixIn, ForkingMixIn, ThreadingTCPServer, ThreadingUDPServer, ThreadingUnixStreamServer,
  ThreadingUnixDatagramServer, ForkingTCPServer, ForkingUDPServer, ForkingUnixStreamServer, ForkingUnixDatagramServer,
} from './classic/mixins';
export type { ServerClass, PoolMixInOptions, ConcurrentMixInOptions } from './classic/mixins';
export { StreamReader } from './transports/stream-reader';
export type { ReaderOptions } from './transports/stream-reader';
export { StreamWriter, BufferWriter } from './transports/stream-writer';
export type { ClientAddress, IpAddress, UnixAddress } from './transports/address';
export * from './errors/errors';
