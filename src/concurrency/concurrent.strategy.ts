import type { ClientAddress } from '../transports/address';
import { RESOLVED } from '../lifecycle/resolved';
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

  dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
    // Started, and a slot still free: the loop may go on at once (RESOLVED: no turn to wait).
    if (this.dispatchNow(server, request, clientAddress)) return this.whenSlotFree() ?? RESOLVED;
    // dispatchNow() from the socket may have taken the free slots since the loop last looked: the limit holds for both
    return this.slotFree().then(() => this.dispatch(server, request, clientAddress));
  }

  /**
   * Undefined while fewer than maxConnections requests run; else a promise that resolves once a slot is
   * free. The loop waits on it before it takes the next request: requests dispatchNow() started may have
   * filled the slots, and a request the loop took must not wait here past shutdown() or close().
   */
  whenSlotFree(): Promise<void> | undefined {
    return this.running.size < this.maxConnections ? undefined : this.slotFree();
  }

  /** Resolves once fewer than maxConnections requests run. */
  private async slotFree(): Promise<void> {
    while (this.running.size >= this.maxConnections) await Promise.race(this.running.keys());
  }

  /**
   * dispatch() for a caller that cannot wait: starts the request and returns true when fewer than
   * `maxConnections` run; false, starting nothing, at the limit. Synchronous: no promise for the caller.
   */
  dispatchNow(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): boolean {
    if (this.running.size >= this.maxConnections) return false;
    this.start(server, request, clientAddress);
    return true;
  }

  private start(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): void {
    // forgotten as it ends (processInBackground never rejects): one closure, no reaction of its own
    const run: Promise<void> = processInBackground(server, request, clientAddress, () => void this.running.delete(run));
    this.running.set(run, [request, clientAddress]);
  }

  aside(verdict: Promise<void>, request: Req, clientAddress: ClientAddress): void {
    const run: Promise<void> = verdict.then(() => void this.running.delete(run));
    this.running.set(run, [request, clientAddress]);
  }

  drain(except?: ShutdownCallers<Req>): Promise<void> {
    return drainRunning(() => [...this.running].map(([run, [request]]) => [run, request] as [Promise<unknown>, Req]), except);
  }

  inFlight(): Iterable<[Req, ClientAddress]> {
    return this.running.values();
  }

  forget(request: Req): void {
    for (const [run, [running]] of this.running) if (running === request) this.running.delete(run);
  }

  async close(): Promise<void> {}
}
