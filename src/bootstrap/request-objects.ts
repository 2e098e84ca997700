import type * as net from 'node:net';
import type { ClientAddress } from '../transports/address';
import type { ProxyInfo, TlsInfo } from '../transports/edge-options';
import type { StreamReader } from '../transports/stream-reader';
import type { BufferWriter, StreamWriter } from '../transports/stream-writer';
import type { Server } from './server';
import type { MessageRequest } from '../framing/message-request';

/**
 * What a stream handler's hooks receive (TCP and Unix stream). `rfile` reads, `wfile` writes with
 * backpressure; `socket` is there only where the connection lives in the handler's own thread or process
 * (a `tls.TLSSocket` for TLS). `tls` is set on TLS connections, `proxy` on connections that came with a
 * PROXY protocol header (API.md §11); `clientAddress` is then the original client.
 */
export class StreamRequest {
  private face: Server | undefined;

  constructor(
    readonly rfile: StreamReader,
    readonly wfile: StreamWriter,
    readonly clientAddress: ClientAddress,
    private readonly origin: Server,
    readonly socket?: net.Socket,
    /** The classic request this object stands for, so that `server.shutdown()` knows who calls it. */
    private readonly raw?: object,
    readonly tls?: TlsInfo,
    readonly proxy?: ProxyInfo,
  ) {}

  /** The running server; its `shutdown()`, called from this request's handler, does not wait for this request. */
  get server(): Server {
    return (this.face ??= requestFace(this.origin, this.raw));
  }
}

/**
 * What a datagram handler's hooks receive (UDP and Unix datagram). Writes to `wfile` are collected and
 * sent back to the sender as one datagram when the request finishes.
 */
export class DatagramRequest {
  private face: Server | undefined;

  constructor(
    readonly data: Buffer,
    readonly truncated: boolean,
    readonly rfile: StreamReader,
    readonly wfile: BufferWriter,
    readonly clientAddress: ClientAddress,
    private readonly origin: Server,
    private readonly raw?: object,
  ) {}

  /** The running server; its `shutdown()`, called from this request's handler, does not wait for this request. */
  get server(): Server {
    return (this.face ??= requestFace(this.origin, this.raw));
  }
}

/** The server as one request's handler sees it: the same object, but a shutdown() that knows its caller. */
export function requestFace(server: Server, raw: object | undefined): Server {
  if (raw === undefined || typeof server.shutdownFromRequest !== 'function') return server;
  return Object.create(server, { shutdown: { value: () => server.shutdownFromRequest(raw) } }) as Server;
}

export type AnyRequest = StreamRequest | DatagramRequest | MessageRequest;
