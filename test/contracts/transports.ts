import * as path from 'node:path';
import {
  BaseServer, DatagramRequestHandler, StreamRequestHandler, TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer,
} from '../../src/classic';
import type { ServerConstructorOptions } from '../../src/classic';
import { datagramExchange, streamExchange, Target } from '../helpers/clients';

/** A handler body shared by the stream and datagram handlers: it sees rfile, wfile, clientAddress, server. */
export type Body = (h: StreamRequestHandler | DatagramRequestHandler) => unknown;

/** One transport of the matrix: how to build its classic server around a handler body, and how to talk to it. */
export interface TransportCase {
  name: string;
  stream: boolean;
  make(body: Body, dir: string, options?: ServerConstructorOptions): BaseServer<any, any>;
  target(server: BaseServer<any, any>): Target;
  /** One request/response exchange: stream sends and half-closes; datagram sends one datagram. */
  exchange(target: Target, payload: string | Buffer, dir: string): Promise<Buffer>;
}

export function handlerClasses(body: Body) {
  class StreamBody extends StreamRequestHandler {
    override handle() { return body(this); }
  }
  class DatagramBody extends DatagramRequestHandler {
    override handle() { return body(this); }
  }
  return { StreamBody, DatagramBody };
}

const ip = (s: BaseServer<any, any>): Target => ({ host: s.serverAddress[0], port: s.serverAddress[1] });
const unix = (s: BaseServer<any, any>): Target => ({ path: s.serverAddress });
const streamX = (t: Target, p: string | Buffer) => streamExchange(t, p, { halfClose: true });
const dgramX = async (t: Target, p: string | Buffer, dir: string) => (await datagramExchange(t, p, dir)).data;

export const transports: TransportCase[] = [
  { name: 'TCP 127.0.0.1', stream: true, make: (b, _d, o) => new TCPServer(['127.0.0.1', 0], handlerClasses(b).StreamBody, o), target: ip, exchange: streamX },
  { name: 'TCP ::1', stream: true, make: (b, _d, o) => new TCPServer(['::1', 0], handlerClasses(b).StreamBody, o), target: ip, exchange: streamX },
  { name: 'Unix stream', stream: true, make: (b, d, o) => new UnixStreamServer(path.join(d, 'srv.sock'), handlerClasses(b).StreamBody, o), target: unix, exchange: streamX },
  { name: 'UDP 127.0.0.1', stream: false, make: (b, _d, o) => new UDPServer(['127.0.0.1', 0], handlerClasses(b).DatagramBody, o), target: ip, exchange: dgramX },
  { name: 'UDP ::1', stream: false, make: (b, _d, o) => new UDPServer(['::1', 0], handlerClasses(b).DatagramBody, o), target: ip, exchange: dgramX },
  { name: 'Unix datagram', stream: false, make: (b, d, o) => new UnixDatagramServer(path.join(d, 'srv.sock'), handlerClasses(b).DatagramBody, o), target: unix, exchange: dgramX },
];

export const streamTransports = transports.filter((t) => t.stream);
export const datagramTransports = transports.filter((t) => !t.stream);
