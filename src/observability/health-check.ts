import { isLocalCheck, preambleBytes } from '../transports/connection-stamps';
import { streamBytes } from './connection-bytes';
import { isHangUp } from './error-kind';

/**
 * Whether a stream connection that reached its handler was a plain TCP health check (API.md §11, §15):
 * the client closed (`clientEnded`) or reset (`error` a hang-up: ECONNRESET, EPIPE…) having sent no byte,
 * and was sent none. Without a PROXY header or TLS handshake to wait for, no byte is read before the
 * handler asks (a server may speak first), so the handler runs; such a connection is then counted in
 * `stats().healthChecks` only, and its reset reaches no @HandleError and no log line, as a health check
 * ended by a preamble is. A handler that wrote something (a banner) makes it a request like any other.
 */
export function isHealthCheck(bytesIn: number, bytesOut: number, clientEnded: boolean, error?: unknown): boolean {
  if (bytesIn !== 0 || bytesOut !== 0) return false;
  return error === undefined ? clientEnded : isHangUp(error);
}

/**
 * isHealthCheck() for `connection`, its PROXY header left out of `bytesIn`: a header and then the client's
 * end or reset is a health check too (HAProxy's `check-send-proxy`; HAProxy ends its checks with a reset),
 * and so is the end of any connection whose header was v2 LOCAL (a `tcp-check` that sent a line and read
 * the reply before its reset).
 */
export function isHealthCheckOn(connection: object, bytesIn: number, bytesOut: number, clientEnded: boolean, error?: unknown): boolean {
  // A PROXY v2 LOCAL connection is the balancer's own check whatever it exchanged (HAProxy's tcp-check sends a
  // line, reads the reply, then resets): its end, by the client's FIN or by a reset, is no client error, and
  // whoever closed first (a handler that answers one line and closes was a request: new-user run).
  if (isLocalCheck(connection)) return error === undefined || isHangUp(error);
  return isHealthCheck(bytesIn - preambleBytes(connection), bytesOut, clientEnded, error);
}

/**
 * Whether `error`, which ended the stream connection `connection`, ended a health check (isHealthCheckOn with the
 * connection's own byte counts): such an error reaches no @HandleError and no log line, wherever it arises. With no
 * error, `clientEnded` says whether the client closed its side (a connection closed while it waited for its worker).
 */
export function endedHealthCheck(connection: object, error: unknown, clientEnded = false): boolean {
  return isHealthCheckOn(connection, ...streamBytes(connection as { bytesRead?: number; bytesWritten?: number }), clientEnded, error);
}
