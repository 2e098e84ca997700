import type { ClientAddress } from '../transports/address';
import { processInBackground } from './process-in-background';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';

/**
 * Many requests interleaved on the main thread's event loop. At `maxConnections` the loop stops taking
 * requests until one finishes, so new connections wait in the backlog.
 */
export class ConcurrentStrategy<Req> implements ConcurrencyStrategy<Req> {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly maxConnections = Infinity) {}

  get active(): number {
    return this.running.size;
  }

  async dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
    const run = processInBackground(server, request, clientAddress).finally(() => this.running.delete(run));
    this.running.add(run);
    while (this.running.size >= this.maxConnections) await Promise.race(this.running);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  async close(): Promise<void> {}
}
