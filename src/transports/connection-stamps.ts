/**
 * Facts about a connection stamped on its socket as they happen (a symbol property each, no closure).
 *
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

const HELD_SINCE = Symbol('sockserve.heldSince');
type Held = { [HELD_SINCE]?: number };

/**
 * Bytes put back on `socket` by its preamble (an optional PROXY header that never came) arrived first at `at`
 * (Date.now() milliseconds): limits.lineTimeout for the line or message they begin counts from then, not
 * again from when the reader sees them (hostile run: twice lineTimeout from the first byte).
 */
export function stampHeldSince(socket: object, at: number): void {
  (socket as Held)[HELD_SINCE] = at;
}

/** The time stampHeldSince() left on `socket`, without clearing it (to pass it to the worker that reads it). */
export function peekHeldSince(socket: object): number | undefined {
  return (socket as Held)[HELD_SINCE];
}

/** The time stampHeldSince() left on `socket`, once (it is cleared); undefined when none. */
export function takeHeldSince(socket: object | null): number | undefined {
  if (socket === null) return undefined;
  const at = (socket as Held)[HELD_SINCE];
  if (at !== undefined) (socket as Held)[HELD_SINCE] = undefined;
  return at;
}

const PREAMBLE_BYTES = Symbol('sockserve.preambleBytes');
type Counted = { [PREAMBLE_BYTES]?: number };

/** `bytes` of `socket`'s input were its PROXY header, read by the preamble: not the client's request. */
export function countPreambleBytes(socket: object, bytes: number): void {
  (socket as Counted)[PREAMBLE_BYTES] = ((socket as Counted)[PREAMBLE_BYTES] ?? 0) + bytes;
}

/** Bytes of `socket`'s input its preamble read as a PROXY header (0: none). */
export function preambleBytes(socket: object): number {
  return (socket as Counted)[PREAMBLE_BYTES] ?? 0;
}

const LOCAL_CHECK = Symbol('sockserve.localCheck');
type Local = { [LOCAL_CHECK]?: true };

/**
 * `socket` came with a PROXY v2 LOCAL header: the balancer's own connection, its health check (API.md §11),
 * whatever it says after the header. Stamped by the preamble on the raw socket and on the TLS socket it
 * made, and by a worker on the connection it is given with such a header's facts.
 */
export function stampLocalCheck(socket: object): void {
  (socket as Local)[LOCAL_CHECK] = true;
}

/** Whether stampLocalCheck() marked `socket`. */
export function isLocalCheck(socket: object): boolean {
  return (socket as Local)[LOCAL_CHECK] === true;
}

const CLOSE_ASKED = Symbol('sockserve.closeAsked');
type Closing = { [CLOSE_ASKED]?: true };

/**
 * `@Verify` called `req.close()` (an @OnMessage handler's farewell) where the rest of the lifecycle runs
 * elsewhere (the main thread asked it, a worker serves the connection): the message loop there starts closed,
 * as it does where @Verify and the loop share one request (it was ignored under @Threading: hostile run).
 */
export function stampCloseAsked(socket: object): void {
  (socket as Closing)[CLOSE_ASKED] = true;
}

/** Whether stampCloseAsked() marked `socket`, without clearing it (to pass it on to the worker). */
export function peekCloseAsked(socket: object): boolean {
  return (socket as Closing)[CLOSE_ASKED] === true;
}

/** Whether stampCloseAsked() marked `socket`, once (it is cleared). */
export function takeCloseAsked(socket: object): boolean {
  const asked = (socket as Closing)[CLOSE_ASKED] === true;
  if (asked) (socket as Closing)[CLOSE_ASKED] = undefined;
  return asked;
}
