import { deliveredBytes } from '../transports/stream-writer';
/**
 * A connection's bytes in and out, wherever they were read and written. A connection the server's
 * process handed whole to a worker (a child process, or a thread on Node 24.21+/26.6+) is read and
 * written there, so its socket here counts nothing: the worker sends its counts with the end of the
 * request (`done`), and they are recorded against the socket here, so that `stats().bytesIn/bytesOut`
 * and `sockserve:connection.close` count them once, when the connection closes, as for any other.
 */
const handedOver = new WeakMap<object, { bytes: [number, number]; whole: boolean }>();

/**
 * The worker that owned `socket` read `bytesIn` and wrote `bytesOut` on it. `whole`: the worker's counts are
 * all there is to count, whatever this process relayed: a connection whose PROXY header and TLS handshake ran
 * in the worker counts the bytes its handler saw (a TLS socket's, not the records this process relayed), and
 * none when the preamble failed, as a connection whose preamble runs here does.
 */
export function recordHandedOverBytes(socket: object, bytes: readonly [number, number], whole = false): void {
  handedOver.set(socket, { bytes: [bytes[0], bytes[1]], whole });
}

/** On a TLS socket (symbol-keyed): the bytes its connection brought before the handshake, its PROXY header. */
const BEFORE = Symbol('sockserve.bytesBefore');
type Preceded = { [BEFORE]?: number };

/**
 * `socket` (a TLS socket) serves a connection whose first `bytes` were read before it took over: its PROXY
 * header, which counts in bytesIn as on a plain connection (docs/observability.md), though the TLS socket's
 * own count starts after it.
 */
export function recordBytesBefore(socket: object, bytes: number): void {
  (socket as Preceded)[BEFORE] = bytes;
}

/** What recordBytesBefore() recorded for `socket`; 0 when nothing came before it. */
export function bytesBefore(socket: object): number {
  return (socket as Preceded)[BEFORE] ?? 0;
}

/** A stream connection's bytes: what this process read and wrote, plus what a worker did on it. */
export function streamBytes(socket: { bytesRead?: number; bytesWritten?: number }): [number, number] {
  const there = handedOver.get(socket);
  if (there?.whole) return [there.bytes[0], there.bytes[1]];
  const bytesIn = (socket.bytesRead ?? 0) + bytesBefore(socket);
  const bytesOut = deliveredBytes(socket);
  return there ? [bytesIn + there.bytes[0], bytesOut + there.bytes[1]] : [bytesIn, bytesOut];
}

/** The worker (its id: a child's pid, a thread's threadId) that served each connection a pool placed or adopted. */
const servedBy = new WeakMap<object, number>();

/** `connection` is served by the worker `workerId`: its `sockserve:connection.close` says so. */
export function recordWorker(connection: object, workerId: number): void {
  servedBy.set(connection, workerId);
}

/** The worker that served `connection`, if a pool's worker did. */
export function workerOf(connection: object): number | undefined {
  return servedBy.get(connection);
}

/** How long a worker held each connection it accepted itself (milliseconds), as it measured it. */
const heldFor = new WeakMap<object, number>();

/** The worker that accepted `connection` itself held it `ms` milliseconds: its `sockserve:connection.close` says so. */
export function recordWorkerDuration(connection: object, ms: number): void {
  heldFor.set(connection, ms);
}

/** The duration a worker measured for `connection`, if it accepted it itself. */
export function workerDuration(connection: object): number | undefined {
  return heldFor.get(connection);
}
