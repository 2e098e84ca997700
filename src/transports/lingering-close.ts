import type * as net from 'node:net';
import { Socket } from 'node:net';

/**
 * Input discarded while lingering, at most (bytes): 256 KiB. Node reads each chunk into a fresh buffer, so
 * discarding is garbage until the next collection; a client that ignores the server's FIN and keeps sending
 * at loopback speed made ~34 MB of it within the linger time. Past this, reading stops: the client's sends
 * wait in TCP flow control and `lingerMs` ends the connection (with a reset, as any linger that times out).
 */
export const LINGER_BYTES = 256 * 1024;

/**
 * Closes a connection whose reply has been half-closed (FIN sent) without turning unread input into a
 * reset: closing a socket with unread input makes the kernel send RST, which can destroy the reply on
 * its way to the client. Unread input is discarded until the client closes its side, bounded by
 * `lingerMs` (milliseconds) and by `maxBytes` discarded (then reading stops until `lingerMs`), as Apache's
 * and nginx's lingering close bound it by time and by a fixed buffer. A connection not half-closed yet, or
 * already closed by the client, is closed at once.
 */
export function lingeringClose(socket: net.Socket, lingerMs: number, maxBytes = LINGER_BYTES): void {
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
  let discarded = 0;
  socket.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) socket.pause(); // the rest waits in the kernel until lingerMs
  });
  socket.resume();
}

/** Half-closes after everything written has gone out (bounded), as Python's shutdown(SHUT_WR). */
export function endGracefully(socket: net.Socket, limitMs: number): Promise<void> {
  if (socket.destroyed || socket.writableEnded) return Promise.resolve();
  // A plain TCP or Unix socket with nothing queued (the usual case): every byte written is in the kernel,
  // so the half-close is asked for and nothing is left to wait for. Waiting for Node's 'finish' cost a turn
  // of the event loop per connection (a serial server took no next client meanwhile). If closeRequest then
  // closes the socket before libuv has run the shutdown, close() sends the FIN itself: the client reads
  // every byte, then EOF, as after shutdown(SHUT_WR). A TLS socket still waits: its close_notify is
  // written on the way, and a close before it would cut it.
  if (socket.writableLength === 0 && socket instanceof Socket && !(socket as { encrypted?: boolean }).encrypted) {
    socket.end();
    return Promise.resolve();
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
