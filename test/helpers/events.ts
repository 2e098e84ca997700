import * as dc from 'node:diagnostics_channel';

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
