import { describeThrown, isSystemExit } from '../errors/thrown';
import { messages } from '../errors/messages';
import { LevelledLogger, loggerOf } from '../observability/logger';
import { ClientAddress, clientNamedBy } from '../transports/address';
import { isThenable, RESOLVED } from '../lifecycle/resolved';
import { settledWithin } from '../transports/event-loop';
import type { RequestProcessor } from './strategy';

/**
 * One request away from the loop's turn: Python's `process_request_thread`. finishRequest, handleError
 * on an error (SystemExit skips it), and shutdownRequest exactly once, whatever happens; then `onEnd`, before
 * the promise resolves (so that a strategy forgets the request without a reaction of its own). Never rejects.
 */
export function processInBackground<Req>(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress, onEnd?: () => void): Promise<void> {
  // A chain, not an async function: an idle keep-alive connection waits in finishRequest for as long as it
  // lives, and a suspended async frame per connection is memory that a reaction here does not cost.
  let running: Promise<void>;
  try {
    running = Promise.resolve(server.finishRequest(request, clientAddress)); // an override may return no promise
  } catch (err) {
    running = Promise.reject(err);
  }
  const end = (): Promise<void> | void => {
    const ended = shutdownSafely(server, request);
    if (ended === undefined) return onEnd?.();
    return onEnd ? ended.then(onEnd) : ended;
  };
  return running.then(end, (err: unknown) => {
    if (isSystemExit(err)) return end();
    return handleErrorSafely(server, request, clientAddress, err).then(end);
  });
}

/**
 * `server.handleError(request, clientAddress, err)`, which never throws: a handleError that throws (a user's
 * override, a failing @HandleError) is logged at `error` with the error it was given, and whoever called it goes
 * on closing the request and serving (Python would let it escape serve_forever; a server must not stop for it).
 * Nothing is reported for a request the server has abandoned (`wasAbandoned`), which was reported then.
 */
export async function handleErrorSafely<Req>(server: RequestProcessor<Req>, request: Req | undefined, clientAddress: ClientAddress | undefined, err: unknown): Promise<void> {
  clientAddress = clientNamedBy(err) ?? clientAddress;
  // An abandoned request was reported once; what its handler meets later (its closed socket) is no news.
  if (request !== undefined && server.wasAbandoned?.(request) && !server.owesReport?.(request)) return;
  const owner = serverOf(server).constructor.name;
  const logger = loggerOf(serverOf(server));
  if (request !== undefined) server.reporting?.(request, true);
  try {
    // callHandleError where the server has it: the error kept for an override that leaves it out (BaseServer).
    const handled: unknown = server.callHandleError ? server.callHandleError(request, clientAddress, err) : server.handleError(request, clientAddress, err);
    // A handleError that never settles (a user's override) is waited for shutdownTimeout at most, as @HandleError
    // is: it held its request open, and shutdown() and close() with it, for ever (hostile run on the classic layer).
    // A second more here, so that a decorated server's own bound on @HandleError (the same) reports first.
    const limit = limitOf(server);
    if (limit !== undefined && isThenable(handled) && !(await settledWithin(Promise.resolve(handled), limit * 1000 + 1000))) {
      logger.error(messages.hookUnsettled(owner, 'handleError()', limit, describeThrown(err)));
      return;
    }
    await handled;
  } catch (failure) {
    logger.error(messages.handleErrorFailed(owner, clientAddress, describeThrown(err), describeThrown(failure)));
  } finally {
    // A report the abandoning left to this one (it began first): done now, owed no more.
    if (request !== undefined) {
      server.owesReport?.(request);
      server.reporting?.(request, false);
    }
  }
}

/** A processor that stands in for a server (a pool's): `hooksOf` is the server whose hooks it calls. */
export interface BoundedHooks {
  hooksOf: object;
}

/** The server behind `processor`: its shutdownTimeout, logger and name. */
function serverOf(processor: unknown): { shutdownTimeout?: number | null; logger?: LevelledLogger; constructor: { name: string } } {
  return ((processor as Partial<BoundedHooks>).hooksOf ?? processor) as never;
}

/** The server's shutdownTimeout in seconds, the bound of its request-ending hooks; undefined: none. */
function limitOf(processor: unknown): number | undefined {
  const seconds = serverOf(processor).shutdownTimeout;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/**
 * shutdownRequest, its failure logged; undefined when it was done at once (no promise for the caller to wait on).
 * Never throws nor rejects: a request is ended once (API.md §4), and a failing override does not stop the loop.
 * Nothing for a request the server abandoned (`wasAbandoned`: shutdownTimeout or close()), which it ended then
 * (endAbandoned): its handler returning or throwing later, or its late @Verify verdict, ends nothing a second time.
 */
export function shutdownSafely<Req>(server: RequestProcessor<Req>, request: Req): Promise<void> | undefined {
  if (server.wasAbandoned?.(request)) return undefined;
  // Not async: for a datagram this runs once per request, and a shutdownRequest that is done at once needs no turn.
  let done: unknown;
  try {
    done = server.shutdownRequest(request);
  } catch (err) {
    logEndFailure(server, err);
    release(request);
    return undefined;
  }
  if (done === RESOLVED || !isThenable(done)) return undefined;
  // One that never settles (a user's closeRequest or shutdownRequest) is waited for shutdownTimeout at most.
  return endedWithin(server, Promise.resolve(done).then(ignore, (err: unknown) => {
    logEndFailure(server, err);
    release(request);
  }));
}

/**
 * A connection whose shutdownRequest failed (a user's override that threw before closeRequest) is closed all
 * the same: it held its socket, and a descriptor, until close(), and its client never got EOF (hostile run on
 * the classic layer; Python's garbage collector closes such a socket). A datagram request (data and the
 * server's socket) holds nothing of its own to close.
 */
function release(request: unknown): void {
  if (Array.isArray(request)) return;
  const stream = request as { destroy?: () => void } | null | undefined;
  if (typeof stream?.destroy === 'function') stream.destroy();
}

/** handleError or shutdownRequest itself failed: there is nobody left to tell but the logger. */
function logEndFailure(server: RequestProcessor<unknown>, err: unknown): void {
  // The server's logger, also for a pool's processor (hooksOf): a pool's failing closeRequest went to stderr.
  loggerOf(serverOf(server)).error(`sockserve: error while ending a request: ${(err as Error)?.stack ?? String(err)}`);
}


function ignore(): void {}

/**
 * `work`, what a request-ending hook returned (shutdownRequest, and the closeRequest it calls), waited for the
 * server's shutdownTimeout at most: past it the server goes on (logged at error; the hook goes on running).
 * Its own outcome otherwise, a rejection included. A serial server waited on one that never settled for ever,
 * and served no one after it (hostile re-check).
 */
export function endedWithin(server: unknown, work: unknown): Promise<void> | undefined {
  if (work === RESOLVED || !isThenable(work)) return undefined;
  const ended = Promise.resolve(work).then(ignore);
  const limit = limitOf(server);
  if (limit === undefined) return ended;
  return settledWithin(ended, limit * 1000).then((settled) => {
    if (settled) return ended;
    loggerOf(serverOf(server)).error(messages.hookUnsettled(serverOf(server).constructor.name, 'shutdownRequest()/closeRequest()', limit, 'none: the request had ended'));
    ended.catch(ignore); // its late failure has nobody to tell
    return undefined;
  });
}
