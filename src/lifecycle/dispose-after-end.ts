import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestScope } from '../container';
import { ContainerRequestScope } from '../container/request-scope';
import { endGracefully, FLUSH_LIMIT_MS } from '../transports/lingering-close';
import { describeBriefly, markDisposalFailure } from '../errors/thrown';

/**
 * A stream request's scope, disposed once the connection's end (its FIN, after every byte written) has gone
 * out: the documented order is `@Finish`, the connection's close, then the disposal
 * ([lifecycle](../../docs/handlers-and-lifecycle.md)), so a slow `dispose()` never holds the client's
 * connection open. A scope that built nothing request-scoped (most requests) is disposed at once, and no
 * end is asked for: the server's shutdownRequest ends the connection as always.
 */
export function disposeAfterEnd(connection: Duplex | undefined, scope: RequestScope): Promise<void> {
  if (connection === undefined || !holdsInstances(scope)) return scope.dispose();
  const disposed = connection.destroyed || connection.writableEnded ? scope.dispose() : endGracefully(connection as net.Socket, FLUSH_LIMIT_MS).then(() => scope.dispose());
  disposing.add(connection);
  return disposed.finally(() => disposing.delete(connection));
}

/** Whether disposing `scope` has request-scoped instances to dispose (most requests build none: nothing to wait for). */
export function holdsInstances(scope: RequestScope): boolean {
  return scope instanceof ContainerRequestScope && scope.holdsInstances;
}

/** Connections (and datagrams: whileDisposing) whose handler has returned and whose request scope is being disposed. */
const disposing = new WeakSet<object>();

/**
 * A datagram's request scope being disposed (`disposal`), its reply made: isDisposing(request) says so until it
 * settles, so that shutdownTimeout or close() giving it up names the dispose() (the reply had gone), not the handler.
 */
export function whileDisposing(request: object, disposal: Promise<void>): Promise<void> {
  disposing.add(request);
  return disposal.finally(() => disposing.delete(request));
}

/**
 * Whether `request`'s handler has returned and only its request-scoped disposal is still running: what the
 * server says when shutdownTimeout or close() gives such a request up (its dispose(), not its handler, to fix).
 */
export function isDisposing(request: unknown): boolean {
  return typeof request === 'object' && request !== null && disposing.has(request);
}

/**
 * `failure` (the request's error) once the scope is disposed; when disposing failed too, both, as an
 * AggregateError whose message names each: rejecting with the disposal's error alone hid the error that ended
 * the request (a handler's TypeError, a client's FramingError) from the log and from stats (hostile run).
 * `mark` copies what the error carried across (reported in a worker) onto the aggregate. When a @HandleError had
 * `failure` already, the server reports the disposal's error alone (disposalFailureOf): no hook saw it.
 */
export function disposeThenFail(disposal: Promise<void>, failure: unknown, mark?: (from: unknown, to: Error) => void): Promise<never> {
  return disposal.then(
    () => Promise.reject(failure),
    (disposeError: unknown) => {
      const both = markDisposalFailure(new AggregateError([failure, disposeError], `${describeBriefly(failure)}; and disposing the request's scope failed too: ${describeBriefly(disposeError)}`), disposeError);
      mark?.(failure, both);
      return Promise.reject(both);
    },
  );
}
