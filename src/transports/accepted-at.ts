/**
 * When a connection was accepted (Date.now(), milliseconds), stamped on its socket by the listener (and on
 * the TLS socket that takes its place): a serial server's queued connection gets its first-request grace at
 * shutdown from its accept, not from the moment the loop takes it.
 */
const ACCEPTED_AT = Symbol('sockserve.acceptedAt');
type Stamped = { [ACCEPTED_AT]?: number };

export function stampAccepted(socket: object, at: number = Date.now()): void {
  (socket as Stamped)[ACCEPTED_AT] = at;
}

/** The accept time stamped on `socket`, or undefined (a socket this process did not accept, an in-memory one). */
export function acceptedAt(socket: object | null): number | undefined {
  return socket === null ? undefined : (socket as Stamped)[ACCEPTED_AT];
}
