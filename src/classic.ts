/**
 * `sockserve/classic`: Python's socketserver classes, in camelCase. The decorator layer assembles these
 * same classes, so every behaviour has one implementation.
 */
export { BaseServer } from './classic/base-server';
export type { RequestHandlerClass, ServerConstructorOptions } from './classic/base-server';
export { TCPServer, UnixStreamServer } from './classic/stream-servers';
export type { IpAddressInput, UnixAddressInput, StreamServerOptions } from './classic/stream-servers';
export { Preamble, preambleFacts } from './transports/connection-preamble';
export type { PreambleResult } from './transports/connection-preamble';
export { UDPServer, UnixDatagramServer } from './classic/datagram-servers';
export { BaseRequestHandler, StreamRequestHandler, DatagramRequestHandler } from './classic/request-handler';
export type { DatagramRequestTuple } from './classic/request-handler';
export {
  ConcurrentMixIn, ThreadingMixIn, ForkingMixIn, ThreadingTCPServer, ThreadingUDPServer, ThreadingUnixStreamServer,
  ThreadingUnixDatagramServer, ForkingTCPServer, ForkingUDPServer, ForkingUnixStreamServer, ForkingUnixDatagramServer,
} from './classic/mixins';
export { StreamReader } from './transports/stream-reader';
export { StreamWriter, BufferWriter } from './transports/stream-writer';
export type { ClientAddress, IpAddress, UnixAddress } from './transports/address';
export * from './errors/errors';
