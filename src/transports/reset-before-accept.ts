import * as net from 'node:net';
import type { IpAddress } from './address';

/**
 * A TCP connection whose client reset before Node accepted it: the kernel had completed the handshake, but
 * Node's accept finds the peer gone and no longer knows its address (`remoteAddress` is undefined). HAProxy
 * ends its health checks so; a client in a burst may do it too, after sending its request. Wherever a
 * connection is accepted (the server's process, a child or a thread that accepts) it is handled the same:
 * no byte, a quiet health check; bytes, a connection like any other, whose client is `resetClient()`.
 */
export function isResetBeforeAccept(socket: net.Socket): boolean {
  return socket.remoteAddress === undefined;
}

/**
 * The client of an accepted TCP socket, `{ host, port, family }`, read at accept time (it is gone once the socket
 * closes); for a client that reset before accept, `resetClient()`. Used wherever a TCP connection is accepted.
 */
export function peerAddress(socket: net.Socket): IpAddress {
  if (isResetBeforeAccept(socket)) return resetClient(socket);
  return {
    host: socket.remoteAddress!,
    port: socket.remotePort ?? 0,
    family: socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4',
  };
}

/**
 * The client of such a connection: `{ host: '', port: 0, family }`, the IP shape with no address left (the
 * family is the accepting socket's). Logs name it `<reset before accept>` (formatAddress).
 */
export function resetClient(socket: net.Socket): IpAddress {
  return { host: '', port: 0, family: socket.localFamily === 'IPv6' ? 'IPv6' : 'IPv4' };
}

/**
 * Reads such a connection once, then calls `settle` once: with false when it ended, reset or closed before
 * a byte (a health check: the caller closes it), with true when bytes came, put back on the socket, which
 * is left paused for whatever reads next (it then reads those bytes, then the reset).
 */
export function readFirstBytes(socket: net.Socket, settle: (gotBytes: boolean) => void): void {
  const done = (chunk?: Buffer) => {
    socket.off('data', onData);
    socket.off('error', gone);
    socket.off('end', gone);
    socket.off('close', gone);
    if (chunk !== undefined) {
      socket.pause();
      socket.unshift(chunk);
    }
    settle(chunk !== undefined);
  };
  const onData = (chunk: Buffer) => done(chunk);
  const gone = () => done();
  socket.on('data', onData);
  socket.once('error', gone);
  socket.once('end', gone);
  socket.once('close', gone);
  socket.resume();
}
