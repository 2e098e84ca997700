import type * as net from 'node:net';
import type { ClientAddress } from '../transports/address';
import type { ProxyInfo, TlsInfo } from '../transports/edge-options';
import { StreamReader } from '../transports/stream-reader';
import type { BufferWriter, StreamWriter } from '../transports/stream-writer';
import type { Server } from './server';
import type { MessageRequest } from '../framing/message-request';

/**
 * What a stream handler's hooks receive (TCP and Unix stream). `rfile` reads, `wfile` writes with
 * backpressure; `socket` is there only where the connection lives in the handler's own thread or process
 * (a `tls.TLSSocket` for TLS). `tls` is set on TLS connections, `proxy` on connections that came with a
 * PROXY protocol header ([production](../../docs/production.md)); `clientAddress` is then the original client.
 */
export class StreamRequest {
  private face: Server | undefined;

  /** Built by sockserve for every connection; handlers receive it, they do not construct it. */
  constructor(
    /**
     * Buffered reads (Python's `rfile`): `readline(limit?)`, `read(n?)`, `read1(n?)`, `readAll()`,
     * `for await (const line of rfile)`. A line longer than `limits.maxLineLength` (default 64 KiB) rejects
     * with LineTooLongError; a wait past `requestTimeout`, or a line slower than `limits.lineTimeout`,
     * with RequestTimeoutError.
     */
    readonly rfile: StreamReader,
    /**
     * Writes with backpressure (Python's `wfile`): `await wfile.write(data)` resolves once the kernel has
     * taken the bytes; writes not awaited are still delivered, in order, before the connection closes.
     */
    readonly wfile: StreamWriter,
    /** The client: `{ host, port, family }` over TCP (the original client behind a PROXY header), `{ path }` over Unix. */
    readonly clientAddress: ClientAddress,
    private readonly origin: Server,
    /**
     * The connection's socket (a `tls.TLSSocket` with TLS) where it lives in the handler's own thread or
     * process; undefined where the bytes are relayed from the main thread (see [concurrency](../../docs/concurrency.md)).
     */
    readonly socket?: net.Socket,
    /** The classic request this object stands for, so that `server.shutdown()` knows who calls it. */
    private readonly raw?: object,
    /** The TLS session's facts (protocol, cipher, ALPN, SNI, client certificate) on a TLS connection; else undefined. */
    readonly tls?: TlsInfo,
    /** The PROXY protocol header, where the transport has `proxyProtocol` and the client sent one; else undefined. */
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
  private reader: StreamReader | undefined;

  /** Built by sockserve for every datagram; handlers receive it, they do not construct it. */
  constructor(
    /** The datagram's bytes: at most `maxPacketSize` (default 8192). */
    readonly data: Buffer,
    /** True when the datagram was longer than `maxPacketSize` and `data` holds only its beginning (Python truncates silently). */
    readonly truncated: boolean,
    /** The reader over `data`; undefined: made on first use of `rfile` (most handlers read `data`). */
    rfile: StreamReader | undefined,
    /**
     * Collects the reply: everything written is sent back to the sender as one datagram when the request
     * finishes (Python's DatagramRequestHandler); nothing written, nothing sent.
     */
    readonly wfile: BufferWriter,
    /** The sender: `{ host, port, family }` over UDP, `{ path }` over Unix (`''` for an unbound client, which cannot be answered). */
    readonly clientAddress: ClientAddress,
    private readonly origin: Server,
    private readonly raw?: object,
  ) {
    this.reader = rfile;
  }

  /** Reads over `data`, as a stream request's `rfile` reads a connection; EOF at its end. */
  get rfile(): StreamReader {
    return (this.reader ??= StreamReader.fromBuffer(this.data));
  }

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
