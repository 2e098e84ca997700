import type { ClientAddress } from '../transports/address';
import { shutdownSafely } from './process-in-background';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';

/**
 * Python's default: the request runs in the loop's own turn, and the next connection or datagram is
 * taken only when it has finished. Errors propagate to the loop, which calls handleError and
 * shutdownRequest (exactly once), as `_handle_request_noblock` does.
 */
export class SerialStrategy<Req> implements ConcurrencyStrategy<Req> {
  private current: [Req, ClientAddress] | undefined;

  get active(): number {
    return this.current ? 1 : 0;
  }

  async dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
    this.current = [request, clientAddress];
    try {
      await server.finishRequest(request, clientAddress);
    } finally {
      this.current = undefined;
    }
    // Bounded by shutdownTimeout; a failure is logged: rejecting here made the loop report it and end the request a second
    // time. Nothing for a request abandoned meanwhile (the server ended it then).
    await shutdownSafely(server, request);
  }

  /** The loop itself awaits the one request; there is never another to wait for. */
  async drain(): Promise<void> {}

  inFlight(): Iterable<[Req, ClientAddress]> {
    return this.current ? [this.current] : [];
  }

  awaitingVerdict(request: Req, clientAddress: ClientAddress): () => void {
    const verifying: [Req, ClientAddress] = [request, clientAddress];
    this.current = verifying;
    return () => {
      if (this.current === verifying) this.current = undefined;
    };
  }

  forget(request: Req): void {
    if (this.current?.[0] === request) this.current = undefined;
  }

  async close(): Promise<void> {}
}
