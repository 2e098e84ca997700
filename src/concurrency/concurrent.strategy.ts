import type { ClientAddress } from '../transports/address';
import { processInBackground } from './process-in-background';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';
import { drainRunning, type ShutdownCallers } from './shutdown-callers';

/**
 * Many requests interleaved on the main thread's event loop. At `maxConnections` the loop stops taking
 * requests until one finishes, so new connections wait in the backlog.
 */
export class ConcurrentStrategy<Req> implements ConcurrencyStrategy<Req> {
  private readonly running = new Map<Promise<void>, [Req, ClientAddress]>();

  constructor(private readonly maxConnections = Infinity) {}

  get active(): number {
    return this.running.size;
  }

  async dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
    // then(forget, forget) rather than finally(): one closure per connection instead of three
    const forget = () => void this.running.delete(run);
    const run: Promise<void> = processInBackground(server, request, clientAddress).then(forget, forget);
    this.running.set(run, [request, clientAddress]);
    while (this.running.size >= this.maxConnections) await Promise.race(this.running.keys());
  }

  drain(except?: ShutdownCallers<Req>): Promise<void> {
    return drainRunning(() => [...this.running].map(([run, [request]]) => [run, request] as [Promise<unknown>, Req]), except);
  }

  inFlight(): Iterable<[Req, ClientAddress]> {
    return this.running.values();
  }

  async close(): Promise<void> {}
}
