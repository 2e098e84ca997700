import type * as net from 'node:net';
import { Socket } from 'node:net';
import { RESOLVED } from '../lifecycle/resolved';

/**
 * Closes a connection whose reply has been half-closed (FIN sent) without turning unread input into a
 * reset: closing a socket with unread input makes the kernel send RST, which can destroy the reply on
 * its way to the client. Unread input is discarded until the client closes its side, bounded by
 * `lingerMs` (milliseconds); a connection not half-closed yet, or already closed by the client, is closed at once.
 *
 * Not bounded by bytes: stopping to read leaves input unread when `lingerMs` ends it, which is the reset
 * this exists to avoid (a client that pipelined 1 MiB past a failing message and read its replies slowly
 * lost a fifth of them that way). What is discarded is read into one buffer shared by every lingering
 * socket (discardIntoSink), so a client that keeps sending after the FIN at loopback speed costs no memory;
 * where that cannot be done (a relayed connection, a Node without the hook) each chunk is garbage until V8
 * collects it (~34 MB of RSS over the linger's 2 s, `npm run bench -- --only nodelim`).
 */
export function lingeringClose(socket: net.Socket, lingerMs: number): void {
  if (socket.destroyed) return;
  if (!socket.writableEnded || socket.readableEnded) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  discardIntoSink(socket);
  socket.resume();
}

/** Where lingering sockets read what they discard: never looked at, so one buffer serves them all. */
let sink: Buffer | undefined;
/** net.Socket's `kBuffer` and `kBufferCb` symbols (null: this Node has none); undefined until a socket is looked at. */
let userBufferKeys: { kBuffer: symbol; kBufferCb: symbol } | null | undefined;

function findUserBufferKeys(socket: net.Socket): { kBuffer: symbol; kBufferCb: symbol } | null {
  let kBuffer: symbol | undefined;
  let kBufferCb: symbol | undefined;
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description === 'kBuffer') kBuffer = key;
    else if (key.description === 'kBufferCb') kBufferCb = key;
  }
  return kBuffer && kBufferCb ? { kBuffer, kBufferCb } : null;
}

/**
 * From now on, `socket` reads into the shared sink buffer and drops each read, emitting no 'data': what Node
 * does for a socket made with `onread: { buffer, callback }` (Node's own option, which an accepted socket
 * cannot be given), set up on an accepted one through the same internals (`kBuffer`/`kBufferCb` and the
 * handle's `useUserBuffer()`), found by feature detection on Node 20–26. Returns false, changing nothing,
 * where they are missing (a stream that is not a `net.Socket` with a handle, another Node): the caller's
 * 'data' listener then discards. 'end' and 'close' come as before.
 */
export function discardIntoSink(socket: net.Socket): boolean {
  const handle = (socket as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null })._handle;
  if (!(socket instanceof Socket) || typeof handle?.useUserBuffer !== 'function') return false;
  // Node's module-level symbols, the same on every socket: looked for once.
  userBufferKeys ??= findUserBufferKeys(socket);
  if (!userBufferKeys) return false;
  const { kBuffer, kBufferCb } = userBufferKeys;
  const own = socket as unknown as Record<symbol, unknown>;
  // Both null on a socket made without onread (Node's constructor sets them): anything else is not ours to change.
  if (own[kBuffer] !== null || own[kBufferCb] !== null) return false;
  sink ??= Buffer.allocUnsafe(64 * 1024);
  try {
    handle.useUserBuffer(sink);
  } catch {
    return false;
  }
  own[kBuffer] = sink;
  own[kBufferCb] = () => true; // true: keep reading
  return true;
}

/**
 * Milliseconds the end of a connection waits for its reply to drain (endGracefully's usual bound) before it
 * goes on: a client that stops reading must not hold the connection.
 */
export const FLUSH_LIMIT_MS = 5000;

/**
 * Half-closes after everything written has gone out (bounded), as Python's shutdown(SHUT_WR). `RESOLVED` (by
 * identity) when nothing is left to wait for: the caller may go on in the same turn.
 */
export function endGracefully(socket: net.Socket, limitMs: number): Promise<void> {
  if (socket.destroyed || socket.writableEnded) return RESOLVED;
  // A plain TCP or Unix socket with nothing queued (the usual case): every byte written is in the kernel,
  // so the half-close is asked for and nothing is left to wait for. Waiting for Node's 'finish' cost a turn
  // of the event loop per connection (a serial server took no next client meanwhile). If closeRequest then
  // closes the socket before libuv has run the shutdown, close() sends the FIN itself: the client reads
  // every byte, then EOF, as after shutdown(SHUT_WR). A TLS socket still waits: its close_notify is
  // written on the way, and a close before it would cut it.
  if (socket.writableLength === 0 && socket instanceof Socket && !(socket as { encrypted?: boolean }).encrypted) {
    socket.end();
    return RESOLVED;
  }
  // Nothing queued on another stream (TLS, a relayed connection): the FIN goes out at once, so no bound is needed.
  if (socket.writableLength === 0) return new Promise<void>((resolve) => socket.end(resolve));
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, limitMs);
    socket.end(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
