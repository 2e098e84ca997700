import type { Server } from '../bootstrap/server';
import type { ClientAddress } from '../transports/address';

/**
 * The payloads of sockserve's `node:diagnostics_channel` events (API.md §14; [observability](../../docs/observability.md)),
 * as TypeScript types. Times are in milliseconds, sizes in bytes. `diagnostics_channel` hands subscribers
 * `unknown`; cast to the channel's type, or look it up by name in `SockserveEvents`:
 *
 *     dc.subscribe('sockserve:request.end', (m) => { const e = m as SockserveEvents['sockserve:request.end']; ... });
 *
 * An event published where it happened carries the `server` (in a worker: that worker's face of it).
 * `connection.open`/`close` are always published in the server's process, with `server` (and, on a close,
 * the `workerId` of the worker that served it). A `request.end` that a worker thread or child republishes
 * in the server's process (or that the server's process publishes for a worker that died) is plain data
 * with the worker's `workerId` and no `server`, and its `error` is a PlainError `{ name, message, code? }`:
 * test `server` to tell the two apart (`if (!e.server) e.error?.name`).
 */

/** An error as it crosses from a worker to the server's process. */
export interface PlainError {
  /** The error's class name (`Error`, `WorkerCrashedError`, …). */
  name: string;
  /** Its message. */
  message: string;
  /** The error's `code` (`ECONNRESET`, …), when it had a string one. */
  code?: string;
}

/** `sockserve:connection.open`: a stream connection was taken by the server. */
export interface ConnectionOpenEvent {
  /** The running server (bootstrap()'s result): connections open and close in the server's process. */
  server: Server;
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
}

/** `sockserve:connection.close`: a stream connection closed (`workerId` beside `server` when a worker served it). */
export interface ConnectionCloseEvent {
  /** The running server (bootstrap()'s result): connections open and close in the server's process. */
  server: Server;
  /** The worker that served the connection (as in `stats().workers[].id`), when one did. */
  workerId?: number;
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
  /** From the connection's open to its close, in milliseconds. */
  durationMs: number;
  /** Bytes received from the client. */
  bytesIn: number;
  /** Bytes written towards the client. */
  bytesOut: number;
}

/** `sockserve:request.start`: a request's lifecycle starts (after `@Verify`). Published where the request runs. */
export interface RequestStartEvent {
  /** The running server; in a worker, that worker's face of it. */
  server: Server;
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
}

/** The fields of every `sockserve:request.end`, wherever it is published. */
export interface RequestEndFields {
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
  /** From the request's start to its end, in milliseconds. */
  durationMs: number;
  /** Bytes the request read. */
  bytesIn: number;
  /** Bytes the request wrote. */
  bytesOut: number;
  /**
   * `true` when the request was a health check, as `stats().healthChecks` counts it: a connect and close with no
   * byte either way, a PROXY header and then the close, or a PROXY v2 `LOCAL` connection (the load balancer's own
   * check, HAProxy's `tcp-check` with `send-proxy-v2`). Absent otherwise.
   */
  healthCheck?: true;
}

/**
 * `sockserve:request.end`: a request ended. Published where the request ran, with `server` and the error
 * thrown as it was; or, for a worker's request, in the server's process with `workerId`, no `server`,
 * and the error as a PlainError (a `WorkerCrashedError` too, when the worker died). Narrow on `server`.
 */
export type RequestEndEvent =
  | (RequestEndFields & {
      /** The running server; in a worker, that worker's face of it. */
      server: Server;
      /** Absent: published where the request ran. */
      workerId?: undefined;
      /** Why the request failed, when it did: the error thrown, as thrown. */
      error?: unknown;
    })
  | (RequestEndFields & {
      /** Absent: the request ran in a worker. */
      server?: undefined;
      /** The worker it ran in (as in `stats().workers[].id`). */
      workerId: number;
      /** Why the request failed, when it did, as plain data (`name` `'WorkerCrashedError'` when the worker died). */
      error?: PlainError;
    });

/** `sockserve:message`: one message handed to `@OnMessage`. Published where the handler runs. */
export interface MessageReceivedEvent {
  /** The running server; in a worker, that worker's face of it. */
  server: Server;
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
}

/** `sockserve:worker.start`: a worker thread (`threadId`) or child process (`pid`) is up. Published in the server's process. */
export interface WorkerStartEvent {
  /** The running server. */
  server: Server;
  /** The worker's id in the pool (as in `stats().workers[].id`). */
  workerId: number;
  /** A child process's pid. */
  pid?: number;
  /** A worker thread's threadId. */
  threadId?: number;
}

/** `sockserve:worker.exit`: a worker exited. */
export interface WorkerExitEvent extends WorkerStartEvent {
  /** The exit code, when it exited with one (a thread the pool terminated has none). */
  code?: number | null;
  /** The signal that ended a child, when one did. */
  signal?: NodeJS.Signals | null;
  /** Why: a crash's message, or why it was retired (`close: …`, `recycled: …`). */
  reason?: string;
}

/** The context of `tracingChannel('sockserve:request')`'s events; a tracer adds its span to it. */
export interface RequestTraceContext {
  /** The running server; in a worker, that worker's face of it. */
  server: Server;
  /** The client (behind a PROXY header: the original client). */
  clientAddress: ClientAddress;
  /** What tracers add (their span, say). */
  [key: string]: unknown;
}

/** Every sockserve channel's name and payload type. */
export interface SockserveEvents {
  /** See ConnectionOpenEvent. */
  'sockserve:connection.open': ConnectionOpenEvent;
  /** See ConnectionCloseEvent. */
  'sockserve:connection.close': ConnectionCloseEvent;
  /** See RequestStartEvent. */
  'sockserve:request.start': RequestStartEvent;
  /** See RequestEndEvent. */
  'sockserve:request.end': RequestEndEvent;
  /** See MessageReceivedEvent. */
  'sockserve:message': MessageReceivedEvent;
  /** See WorkerStartEvent. */
  'sockserve:worker.start': WorkerStartEvent;
  /** See WorkerExitEvent. */
  'sockserve:worker.exit': WorkerExitEvent;
}
