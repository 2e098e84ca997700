import { errorFields } from '../errors/thrown';
import { performance } from 'node:perf_hooks';
import type { ClientAddress } from '../transports/address';
import { channels, EVENTS_ENABLED, isTracing, requestTracing } from './channels';
import { isHealthCheck, isHealthCheckOn } from './health-check';
import { workerDuration, workerOf } from './connection-bytes';
import type { WorkerEventBuffer } from './worker-report';

/**
 * Publishing sockserve's events (channels.ts has the names and payloads). Each function first checks
 * whether anyone listens, and builds nothing when nobody does. In a worker, `forwardEventsTo(buffer)`
 * also records `connection.*` and `request.end` for the server's process (worker-report.ts).
 */

let forward: WorkerEventBuffer | undefined;

/** In a worker: record events for the server's process in `buffer` too (undefined: stop). */
export function forwardEventsTo(buffer: WorkerEventBuffer | undefined): void {
  forward = buffer;
}

const forwarding = (): boolean => forward !== undefined && forward.wanted;

/** In a worker: whether the server's process wants its events (then a preamble that passes is told: `opened`). */
export function eventsWantedByServer(): boolean {
  return EVENTS_ENABLED && forwarding();
}

/** An error as plain data, for payloads that cross to the server's process (errors/thrown.ts reads it). */
export function plainError(error: unknown): { name: string; message: string; code?: string } {
  return errorFields(error);
}

interface Opened {
  at: number;
  clientAddress: ClientAddress;
}
const opened = new WeakMap<object, Opened>();

/** A stream connection was taken by the server (`connection` is its socket, or any object naming it). */
export function connectionOpened(server: unknown, connection: object, clientAddress: ClientAddress): void {
  if (!EVENTS_ENABLED) return;
  const open = channels.connectionOpen.hasSubscribers;
  if (!open && !channels.connectionClose.hasSubscribers && !forwarding()) return;
  opened.set(connection, { at: performance.now(), clientAddress });
  if (open) channels.connectionOpen.publish({ server, clientAddress });
  forward?.record('connectionOpen', { clientAddress });
}

/** The connection closed after `bytesIn`/`bytesOut`; published only for connections seen opening. */
export function connectionClosed(server: unknown, connection: object, bytesIn: number, bytesOut: number): void {
  if (!EVENTS_ENABLED) return;
  const seen = opened.get(connection);
  if (!seen) return;
  opened.delete(connection);
  // A connection a worker accepted itself is timed there: the server's process hears of its start and end late.
  const payload = { clientAddress: seen.clientAddress, durationMs: workerDuration(connection) ?? performance.now() - seen.at, bytesIn, bytesOut };
  if (channels.connectionClose.hasSubscribers) {
    const workerId = workerOf(connection);
    channels.connectionClose.publish(workerId === undefined ? { server, ...payload } : { server, workerId, ...payload });
  }
  forward?.record('connectionClose', payload);
}

/** Whether anyone in this process subscribes to `request.end`. */
export function requestEndObserved(): boolean {
  return EVENTS_ENABLED && channels.requestEnd.hasSubscribers;
}

/** Whether a request would publish anything: callers skip building traceRequest's arguments when not. */
export function requestObserved(): boolean {
  return EVENTS_ENABLED && (channels.requestStart.hasSubscribers || channels.requestEnd.hasSubscribers || isTracing() || forwarding());
}

/** A `request.end` as plain data for the server's process (no `server`; the error as plain data). */
export type RequestEndData = Record<string, unknown>;

/**
 * Runs one request, publishing `request.start`/`request.end` and wrapping it in the tracing channel
 * when anyone listens; otherwise it just calls `run`. `bytes()` gives the request's bytes in and out
 * when it ends. The returned promise settles as `run()`'s does. In a worker whose events the server's
 * process wants, the `request.end` for it goes to `forwardEnd` when given (the worker sends it with the
 * request's end, so it is neither late nor lost with the worker), else into the next report.
 * `connection` (a stream request's socket) lets a reset after its PROXY header count as a health check.
 */
export function traceRequest(
  server: unknown,
  clientAddress: ClientAddress,
  run: () => Promise<void>,
  bytes: () => [number, number],
  forwardEnd?: (data: RequestEndData) => void,
  connection?: object,
): Promise<void> {
  if (!EVENTS_ENABLED) return run();
  const tracing = isTracing();
  const start = channels.requestStart.hasSubscribers;
  const end = channels.requestEnd.hasSubscribers || forwarding();
  if (!tracing && !start && !end) return run();
  const t0 = performance.now();
  if (start) channels.requestStart.publish({ server, clientAddress });
  // A plain TCP health check's reset (no byte either way) is no error (API.md §11): its request ends
  // without one, on request.end and on the tracing channel, and the caller still sees the reset.
  let quiet: { error: unknown } | undefined;
  const body = (): Promise<void> => run().catch((error: unknown) => {
    if (!(connection ? isHealthCheckOn(connection, ...bytes(), false, error) : isHealthCheck(...bytes(), false, error))) throw error;
    quiet = { error };
  });
  const traced = tracing ? requestTracing!.tracePromise(body, { server, clientAddress }) : body();
  if (!end) {
    return traced.then(() => {
      if (quiet) throw quiet.error;
    });
  }
  let published = false;
  const ended = (error?: unknown) => {
    if (published) return; // abandoned (requestAbandoned), then the handler returned after all
    published = true;
    if (connection) unended.delete(connection);
    const [bytesIn, bytesOut] = bytes();
    const payload: Record<string, unknown> = { clientAddress, durationMs: performance.now() - t0, bytesIn, bytesOut };
    // A health check, as stats() counts it (health-check.ts): a connect and close with no byte either way, a PROXY
    // header and the close, a PROXY v2 LOCAL connection (the balancer's own check, whose line the handler answered).
    // Said, so that a subscriber counting requests can leave it out (new users: one phantom request a check).
    if (connection && (quiet !== undefined || isHealthCheckOn(connection, bytesIn, bytesOut, (connection as { readableEnded?: boolean }).readableEnded === true, error))) payload.healthCheck = true;
    if (error !== undefined) payload.error = error;
    if (channels.requestEnd.hasSubscribers) channels.requestEnd.publish({ server, ...payload });
    if (forwarding()) {
      const data = error === undefined ? payload : { ...payload, error: plainError(error) };
      if (forwardEnd) forwardEnd(data);
      else forward!.record('requestEnd', data);
    }
  };
  if (connection) unended.set(connection, ended);
  return traced.then(
    () => {
      ended();
      if (quiet) throw quiet.error;
    },
    (error: unknown) => {
      ended(error ?? new Error('request failed'));
      throw error;
    },
  );
}

/** The `request.end` still to publish of each traced request, by its connection (traceRequest's `connection`). */
const unended = new WeakMap<object, (error: unknown) => void>();

/**
 * The server gave up the request on `connection` (shutdownTimeout, close()): its `request.end` is published
 * now, with `error`, as the pools publish theirs, not when (if ever) its handler returns. Nothing when it
 * was not traced or has ended.
 */
export function requestAbandoned(connection: object, error: unknown): void {
  unended.get(connection)?.(error);
}

/** One `@OnMessage` message (for the framing code): `sockserve:message`. */
export function messageReceived(server: unknown, clientAddress: ClientAddress): void {
  if (EVENTS_ENABLED && channels.message.hasSubscribers) channels.message.publish({ server, clientAddress });
}

/** A worker thread or child process is up (published by the pool, in the server's process). */
export function workerStarted(server: unknown, workerId: number, who: { pid?: number; threadId?: number }): void {
  if (EVENTS_ENABLED && channels.workerStart.hasSubscribers) channels.workerStart.publish({ server, workerId, ...who });
}

/** A worker exited (`reason`: a crash's message, or why it was retired). */
export function workerExited(
  server: unknown,
  workerId: number,
  details: { pid?: number; threadId?: number; code?: number | null; signal?: string | null; reason?: string },
): void {
  if (EVENTS_ENABLED && channels.workerExit.hasSubscribers) channels.workerExit.publish({ server, workerId, ...details });
}
