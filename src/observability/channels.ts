import * as dc from 'node:diagnostics_channel';

/**
 * sockserve's `node:diagnostics_channel` channels (API.md §14), created once at load. Publishing code
 * checks `channel.hasSubscribers` before it builds a payload, so a channel nobody listens to costs one
 * property read. `SOCKSERVE_EVENTS=0` in the environment (read once, at load) turns every publication
 * off, whoever subscribes: the bench's "events compiled out" build.
 *
 * Payloads (times in milliseconds, sizes in bytes):
 * - `sockserve:connection.open`  `{ server, clientAddress }`: a stream connection was taken by the server.
 * - `sockserve:connection.close` `{ server, workerId?, clientAddress, durationMs, bytesIn, bytesOut }`: `workerId` when a worker served it.
 * - `sockserve:request.start`    `{ server, clientAddress }`.
 * - `sockserve:request.end`      `{ server, clientAddress, durationMs, bytesIn, bytesOut, healthCheck?, error? }`: `healthCheck` on a health check (stats().healthChecks).
 * - `sockserve:message`          `{ server, clientAddress }` per `@OnMessage` message.
 * - `sockserve:worker.start`     `{ server, workerId, pid?, threadId? }`.
 * - `sockserve:worker.exit`      `{ server, workerId, pid?, threadId?, code?, signal?, reason? }`.
 * - `tracingChannel('sockserve:request')`: start/end/asyncStart/asyncEnd/error around each request,
 *   with the context `{ server, clientAddress }` (tracers add their span to it), where Node has
 *   tracing channels (18.19+, 20+).
 *
 * `server` is the running `Server` (bootstrap()'s result). Events that happen in a worker thread or child
 * process are published there, and `connection.*`, `request.end` are republished in the server's process
 * as plain data with `workerId` in place of `server` (see worker-report.ts).
 */
export const CHANNEL_NAMES = {
  connectionOpen: 'sockserve:connection.open',
  connectionClose: 'sockserve:connection.close',
  requestStart: 'sockserve:request.start',
  requestEnd: 'sockserve:request.end',
  message: 'sockserve:message',
  workerStart: 'sockserve:worker.start',
  workerExit: 'sockserve:worker.exit',
} as const;

/** The tracing channel's name: its sub-channels are `tracing:sockserve:request:start` and so on. */
export const TRACING_NAME = 'sockserve:request';

export type ChannelKey = keyof typeof CHANNEL_NAMES;

/** false when `SOCKSERVE_EVENTS=0`: nothing is ever published. */
export const EVENTS_ENABLED = process.env.SOCKSERVE_EVENTS !== '0';

export const channels: { readonly [K in ChannelKey]: dc.Channel } = {
  connectionOpen: dc.channel(CHANNEL_NAMES.connectionOpen),
  connectionClose: dc.channel(CHANNEL_NAMES.connectionClose),
  requestStart: dc.channel(CHANNEL_NAMES.requestStart),
  requestEnd: dc.channel(CHANNEL_NAMES.requestEnd),
  message: dc.channel(CHANNEL_NAMES.message),
  workerStart: dc.channel(CHANNEL_NAMES.workerStart),
  workerExit: dc.channel(CHANNEL_NAMES.workerExit),
};

/** The subset of Node's TracingChannel sockserve uses (typed here: @types/node 20 may lack it). */
export interface RequestTracing {
  start: dc.Channel;
  end: dc.Channel;
  asyncStart: dc.Channel;
  asyncEnd: dc.Channel;
  error: dc.Channel;
  tracePromise<T>(fn: () => Promise<T>, context: object): Promise<T>;
}

/** `tracingChannel('sockserve:request')`, or undefined on a Node without tracing channels. */
export const requestTracing: RequestTracing | undefined =
  typeof (dc as { tracingChannel?: unknown }).tracingChannel === 'function'
    ? ((dc as unknown as { tracingChannel(name: string): RequestTracing }).tracingChannel(TRACING_NAME))
    : undefined;

/** Whether anything listens to the tracing channel (TracingChannel.hasSubscribers is Node 20.13+). */
export function isTracing(): boolean {
  const t = requestTracing;
  return t !== undefined && (t.start.hasSubscribers || t.end.hasSubscribers || t.asyncStart.hasSubscribers || t.asyncEnd.hasSubscribers || t.error.hasSubscribers);
}

/** Whether a channel would deliver: events on and someone subscribed. */
export function listening(channel: dc.Channel): boolean {
  return EVENTS_ENABLED && channel.hasSubscribers;
}
