/**
 * The error of a datagram socket's send() after close(): a reply of a request that close() cut short, whose
 * handler finished after the socket was closed. Node's code for a dgram operation on a closed socket
 * (`ERR_SOCKET_DGRAM_NOT_RUNNING`) marks it routine (observability/error-kind.ts), as a request abandoned
 * by close() is: one `warn` line, counted in `stats().clientErrors`, not a handler's traceback.
 */
export function closedForSend(owner: string): Error {
  return Object.assign(
    new Error(`${owner}.send(): the socket is closed (close() was called while the request ran), so the reply was not sent.`),
    { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' },
  );
}
