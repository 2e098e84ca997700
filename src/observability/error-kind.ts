import { readThrown } from '../errors/thrown';

/**
 * What kind of failure an error is, for counting and logging (API.md §4, §14):
 * - `'handler'`: an error of the handler (a hook threw, a worker died): `stats().errors`, the
 *   traceback block at `error`;
 * - `'client'`: routine client behaviour (a reset, a broken pipe, a timeout, a line or frame too long,
 *   malformed framing: FramingError, pushes a client does not read): `stats().clientErrors`, one line at `warn`;
 * - `'tls'` / `'proxy'`: a failed TLS handshake, a TLS connection the client broke after it (a bad record,
 *   renegotiation abuse), or a failed PROXY header: `stats().tlsErrors` / `proxyErrors` only, one line at `warn`.
 *
 * Errors are recognised by `name` and `code`, not by class, so that errors rebuilt after crossing from
 * a worker thread or child process (which keep their name and code) are classified the same way. An
 * error whose `cause` is routine (one level) is routine too. A handler's own outbound connection that
 * resets (a database, say) and is not caught counts as a client error: catch it to count it otherwise.
 */
export type ErrorKind = 'handler' | 'client' | 'tls' | 'proxy';

/**
 * errno codes of a peer that went away or stopped answering (Node's net, libuv), and of a datagram reply
 * sent after close() closed the socket under its request (transports/socket-closed.ts).
 */
const CLIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECANCELED', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_SOCKET_DGRAM_NOT_RUNNING']);
/**
 * Node's codes for a TLS connection the client broke after its handshake: OpenSSL's protocol errors
 * (`ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC`, `ERR_SSL_WRONG_VERSION_NUMBER`…, a corrupted or forged
 * record) and Node's renegotiation guard (`ERR_TLS_SESSION_ATTACK`). A failed TLS handshake is a
 * TlsHandshakeError already. Certificate checks of the handler's own outbound TLS connections have codes
 * of their own (`DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`) and stay the handler's.
 */
const TLS_CODES = /^(ERR_SSL_|ERR_TLS_SESSION_ATTACK$)/;
/**
 * sockserve's errors for bad or slow input (API.md §5, §12; FramingError: malformed framing, §14), for a client
 * that does not read its pushed messages (OutputBufferFullError), and for a
 * Unix datagram reply whose client is gone or does not read (UnreachableClientError, unix-dgram.socket.ts).
 */
const CLIENT_NAMES = new Set(['RequestTimeoutError', 'LineTooLongError', 'FramingError', 'FrameTooLongError', 'OutputBufferFullError', 'UnreachableClientError']);

export function errorKind(error: unknown): ErrorKind {
  const own = kindOf(error);
  if (own !== 'handler') return own;
  const cause = readThrown(error, 'cause');
  if (cause !== undefined) return kindOf(cause);
  return aggregateKind(error);
}

/**
 * An AggregateError of a request's two failures (a reset, then a @Finish farewell that met the closed connection)
 * is of its first failure's kind when none of them is the handler's: a client's reset during the reply with a
 * farewell in @Finish counted in `errors` with a traceback (hostile re-check), not in `clientErrors`.
 */
function aggregateKind(error: unknown): ErrorKind {
  if (readThrown(error, 'name') !== 'AggregateError') return 'handler';
  const errors = readThrown(error, 'errors');
  if (!Array.isArray(errors) || errors.length === 0) return 'handler';
  const kinds = errors.map(kindOf);
  return kinds.includes('handler') ? 'handler' : kinds[0];
}

function kindOf(error: unknown): ErrorKind {
  if (typeof error !== 'object' || error === null) return 'handler';
  const [name, code] = [readThrown(error, 'name'), readThrown(error, 'code')];
  if (name === 'TlsHandshakeError' || (typeof code === 'string' && TLS_CODES.test(code))) return 'tls';
  if (name === 'ProxyProtocolError') return 'proxy';
  if (typeof name === 'string' && CLIENT_NAMES.has(name)) return 'client';
  if (typeof code === 'string' && CLIENT_CODES.has(code)) return 'client';
  return 'handler';
}

/** errno codes of a connection the peer closed or reset (not one that stopped answering). */
const HANG_UP_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Whether the error is the peer hanging up (a reset, a broken pipe), itself or as its cause (one level). */
export function isHangUp(error: unknown): boolean {
  const code = readThrown(error, 'code');
  if (typeof code === 'string' && HANG_UP_CODES.has(code)) return true;
  const cause = readThrown(readThrown(error, 'cause'), 'code');
  return typeof cause === 'string' && HANG_UP_CODES.has(cause);
}

/** Routine: counted apart from handler errors and logged in one line, without a traceback. */
export function isRoutine(error: unknown): boolean {
  return errorKind(error) !== 'handler';
}
