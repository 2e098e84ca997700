import * as dc from 'node:diagnostics_channel';
import type { SockserveEvents } from '../../src';

/** Every sockserve channel name (API.md §14). */
export const SOCKSERVE_CHANNELS = [
  'sockserve:connection.open', 'sockserve:connection.close', 'sockserve:request.start', 'sockserve:request.end',
  'sockserve:message', 'sockserve:worker.start', 'sockserve:worker.exit',
];

export interface Recorded {
  name: string;
  payload: Record<string, unknown>;
}

/**
 * Subscribes to every sockserve channel and to the request tracing channel (as `tracing:start`,
 * `tracing:asyncEnd`, `tracing:error`…) and records what arrives, in order. `stop()` unsubscribes.
 */
export function recordEvents(): { events: Recorded[]; named(name: string): Array<Record<string, unknown>>; stop(): void } {
  const events: Recorded[] = [];
  const stops: Array<() => void> = [];
  for (const name of SOCKSERVE_CHANNELS) {
    const fn = (payload: unknown) => events.push({ name, payload: payload as Record<string, unknown> });
    dc.subscribe(name, fn);
    stops.push(() => dc.unsubscribe(name, fn));
  }
  const tracing = (dc as unknown as { tracingChannel?: (n: string) => { subscribe(h: object): void; unsubscribe(h: object): void } }).tracingChannel;
  if (tracing) {
    const channel = tracing('sockserve:request');
    const on = (kind: string) => (context: unknown) => events.push({ name: `tracing:${kind}`, payload: context as Record<string, unknown> });
    const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
    channel.subscribe(handlers);
    stops.push(() => channel.unsubscribe(handlers));
  }
  return {
    events,
    named: (name) => events.filter((e) => e.name === name).map((e) => e.payload),
    stop: () => stops.splice(0).forEach((s) => s()),
  };
}

/** Every key of every member of a union (keyof of a union gives only the common ones). */
type KeysOf<T> = T extends unknown ? keyof T : never;

/**
 * The fields of each channel's exported payload type (SockserveEvents). Checked both ways at compile
 * time: every name listed must be a field of the type, and every field of the type must be listed.
 */
const DECLARED = {
  'sockserve:connection.open': ['server', 'clientAddress'],
  'sockserve:connection.close': ['server', 'workerId', 'clientAddress', 'durationMs', 'bytesIn', 'bytesOut'],
  'sockserve:request.start': ['server', 'clientAddress'],
  'sockserve:request.end': ['server', 'workerId', 'clientAddress', 'durationMs', 'bytesIn', 'bytesOut', 'healthCheck', 'error'],
  'sockserve:message': ['server', 'clientAddress'],
  'sockserve:worker.start': ['server', 'workerId', 'pid', 'threadId'],
  'sockserve:worker.exit': ['server', 'workerId', 'pid', 'threadId', 'code', 'signal', 'reason'],
} as const satisfies { [K in keyof SockserveEvents]: ReadonlyArray<KeysOf<SockserveEvents[K]>> };
const everyFieldListed: { [K in keyof SockserveEvents]: Exclude<KeysOf<SockserveEvents[K]>, (typeof DECLARED)[K][number]> extends never ? true : false } = {
  'sockserve:connection.open': true,
  'sockserve:connection.close': true,
  'sockserve:request.start': true,
  'sockserve:request.end': true,
  'sockserve:message': true,
  'sockserve:worker.start': true,
  'sockserve:worker.exit': true,
};
void everyFieldListed;

/** `channel: field` for each recorded sockserve payload field that its channel's exported type does not declare. */
export function undeclaredFields(events: readonly Recorded[]): string[] {
  const out: string[] = [];
  for (const { name, payload } of events) {
    const declared = (DECLARED as Record<string, readonly string[] | undefined>)[name];
    if (!declared) continue; // the tracing channel's context: tracers add their own fields
    for (const key of Object.keys(payload)) if (!declared.includes(key)) out.push(`${name}: ${key}`);
  }
  return out;
}
