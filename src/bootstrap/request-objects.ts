import type * as net from 'node:net';
import type { ClientAddress } from '../transports/address';
import type { StreamReader } from '../transports/stream-reader';
import type { BufferWriter, StreamWriter } from '../transports/stream-writer';
import type { Server } from './server';
import type { MessageRequest } from '../framing/message-request';

/**
 * What a stream handler's hooks receive (TCP and Unix stream). `rfile` reads, `wfile` writes with
 * backpressure; `socket` is there only in the main thread.
 */
export class StreamRequest {
  constructor(
    readonly rfile: StreamReader,
    readonly wfile: StreamWriter,
    readonly clientAddress: ClientAddress,
    readonly server: Server,
    readonly socket?: net.Socket,
  ) {}
}

/**
 * What a datagram handler's hooks receive (UDP and Unix datagram). Writes to `wfile` are collected and
 * sent back to the sender as one datagram when the request finishes.
 */
export class DatagramRequest {
  constructor(
    readonly data: Buffer,
    readonly truncated: boolean,
    readonly rfile: StreamReader,
    readonly wfile: BufferWriter,
    readonly clientAddress: ClientAddress,
    readonly server: Server,
  ) {}
}

export type AnyRequest = StreamRequest | DatagramRequest | MessageRequest;
