/**
 * The messages between the server (main thread) and a worker thread or child process that runs
 * handlers. A worker runs one request at a time; `id` names it, so a late message from a finished
 * request is recognised and dropped.
 */
import type { ClientAddress } from '../../transports/address';
import type { ProxyInfo, TlsInfo } from '../../transports/edge-options';

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export type ToWorker =
  /**
   * A stream request starts. `owned`: the connection itself comes along (a child process gets it as
   * the message's handle, a Node 24+ thread in `socket`) and the worker reads and writes it directly;
   * otherwise the main thread keeps it and its bytes follow as `data`, then `eof`. `heartbeatMs` (here
   * and in `dgram`): with a requestTimeout, how often the worker sends `alive` while the request runs.
   */
  | { t: 'stream'; id: number; client: ClientAddress; owned: boolean; socket?: unknown; heartbeatMs?: number; server?: unknown; tls?: TlsInfo; proxy?: ProxyInfo }
  | { t: 'data'; id: number; chunk: Uint8Array }
  | { t: 'eof'; id: number }
  /** Shutdown: the request's reads stop waiting once nothing is buffered (StreamReader.stopReading). */
  | { t: 'stop'; id: number }
  /** The main thread handed write `seq` to the kernel (or failed to). */
  | { t: 'written'; id: number; seq: number; error?: SerializedError }
  /** A datagram request: the reply comes back in `done`. */
  | { t: 'dgram'; id: number; client: ClientAddress; data: Uint8Array; truncated: boolean; heartbeatMs?: number; server?: unknown };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'load-error'; message: string }
  | { t: 'write'; id: number; seq: number; chunk: Uint8Array }
  /** Half-close the connection after everything written (wfile.end()). */
  | { t: 'end'; id: number; seq: number }
  /** Sent every `heartbeatMs` while the request runs: the worker's event loop is not blocked. */
  | { t: 'alive'; id: number }
  /** The handler's side consumed `bytes` more of the connection's input: the main thread may send as much again. */
  | { t: 'ack'; id: number; bytes: number }
  | { t: 'done'; id: number; reply?: Uint8Array; error?: SerializedError }
  /** A handler called `server.shutdown()`: the server shuts down (the request goes on until it ends). */
  | { t: 'shutdown'; id: number };

/** Bytes of a bridged connection's input in flight to the worker, unacknowledged, before the main thread pauses the socket. */
export const BRIDGE_WINDOW = 256 * 1024;

/** A class a worker can load again: the module file that exports it, and the name it is exported under. */
export interface ClassRef {
  source: string;
  exportName: string;
}

/** A provider's token as a worker can rebuild it. */
export type PortableToken = { kind: 'string'; key: string } | { kind: 'symbol'; key: string } | { kind: 'class'; ref: ClassRef };

/** What a worker needs to load and run the handler. Everything here crosses by structured clone. */
export interface WorkerSpec {
  /** The module file that declares the handler class, and the name it is exported under. */
  source: string;
  exportName: string;
  /** useValue providers whose token is a string or a Symbol.for() symbol: rebuilt in the worker. */
  values: Array<{ token: string; symbolKey?: boolean; value: unknown }>;
  /** useClass providers: the class (and a class token) found again by module path and export name. */
  classes: Array<{ token: PortableToken; useClass: ClassRef; scope?: 'singleton' | 'transient' | 'request' }>;
  reader: { requestTimeout: number | null; lineLimit?: number; lineTimeout?: number | null };
  /** A classic handler class (sockserve/classic's ThreadingMixIn, ForkingMixIn), not a decorated one. */
  classic?: boolean;
  /** What classic handlers read as `this.server.serverAddress`. */
  serverAddress?: unknown;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

/** An Error in this thread standing for one raised over there: same name, message and stack. */
export function deserializeError(e: SerializedError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

/** A copy of `chunk` in an ArrayBuffer of its own, so it can be transferred without touching a shared pool. */
export function ownBytes(chunk: Uint8Array): Uint8Array {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer)) {
    return chunk;
  }
  return new Uint8Array(chunk);
}
