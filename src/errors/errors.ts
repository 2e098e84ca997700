/**
 * sockserve's error classes: one line each. The text is built in the `*.messages.ts` files beside this one,
 * so every message names the class and member involved and one way to fix it.
 */
export class SockserveError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad decorators or options: raised before any socket is bound. */
export class ConfigurationError extends SockserveError {}
/** The container cannot build something: unknown token, cycle, missing reflect-metadata. */
export class InjectionError extends SockserveError {}
/**
 * The address is taken (EADDRINUSE), or a Unix path is held by a live socket or a regular file. Its `code` is
 * `'EADDRINUSE'`, as on the error of Node's own `listen()`/`bind()` (code that retries another port on
 * `err.code === 'EADDRINUSE'` keeps working); the system's error, where there was one, is its `cause`.
 */
export class AddressInUseError extends SockserveError {
  /** `'EADDRINUSE'`, Node's code for it (Python's `errno.EADDRINUSE`). */
  readonly code = 'EADDRINUSE';
}
/** `rfile.readline()` met a line longer than its limit; ends that request only. */
export class LineTooLongError extends SockserveError {}
/** Malformed input from a framer (`@Framing`): a line that is not JSON, a bad netstring; ends that connection only. */
export class FramingError extends SockserveError {}
/** A message longer than its framer's `maxLength`; ends that connection only. */
export class FrameTooLongError extends FramingError {}
/**
 * A connection's pushed messages (`req.send()`) waiting unsent passed `@Framing`'s `maxOutputBuffer`: the client
 * does not read. Ends that connection only (Redis's client-output-buffer-limit, NATS's slow consumer).
 */
export class OutputBufferFullError extends SockserveError {}
/** A read waited longer than the server's `requestTimeout`; ends that request only. */
export class RequestTimeoutError extends SockserveError {}
/** A hook ran on a server that is closed (Python raises ValueError on a closed fd). */
export class ServerClosedError extends SockserveError {}
/** A worker thread or child process died while it held a request. */
export class WorkerCrashedError extends SockserveError {}
/**
 * Python's SystemExit: thrown from a hook, it skips handleError and still closes the request. In serial mode
 * (Python's default) it also ends serveForever()/handleRequest() by propagating to their caller; with
 * `@Concurrent`, `@Threading` and `@Forking` it ends that request only, silently, as a SystemExit raised in
 * one of Python's ThreadingMixIn threads ends that thread only.
 */
export class SystemExit extends SockserveError {
  constructor(
    /** The exit code asked for; default 0. */
    readonly code: number = 0,
  ) {
    super(`SystemExit(${code})`);
  }
}
/** A connection's PROXY protocol header was missing, malformed, or sent by an untrusted peer; ends that connection only. */
export class ProxyProtocolError extends SockserveError {}
/** A client failed its TLS handshake (plain text, a bad certificate, too slow); ends that connection only. */
export class TlsHandshakeError extends SockserveError {}
/**
 * A Unix datagram reply that cannot reach its client: the client's socket is gone (ENOENT, ECONNREFUSED),
 * unbound (EDESTADDRREQ), of another kind (EPROTOTYPE), not ours to write (EACCES, ENOTDIR, ELOOP), connect()ed
 * to another socket (EPERM: elsewhere, or to the server's receiving socket before it was replaced), or does not read
 * (EAGAIN: its queue stayed full). The client's doing: counted in `stats().clientErrors`, as a reset TCP
 * client is. `code` is the errno name (read from the message of node-unix-socket's error, which carries none).
 */
export class UnreachableClientError extends SockserveError {
  constructor(
    message: string,
    /** The errno name: why the reply could not be delivered (see the class). */
    readonly code: 'EAGAIN' | 'ECONNREFUSED' | 'ENOENT' | 'EDESTADDRREQ' | 'EPROTOTYPE' | 'EACCES' | 'ENOTDIR' | 'ELOOP' | 'EPERM',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
