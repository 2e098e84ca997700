import type { ClientAddress } from '../transports/address';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';

/**
 * Python's default: the request runs in the loop's own turn, and the next connection or datagram is
 * taken only when it has finished. Errors propagate to the loop, which calls handleError and
 * shutdownRequest (exactly once), as `_handle_request_noblock` does.
 */
export class SerialStrategy<Req> implements ConcurrencyStrategy<Req> {
  active = 0;

  async dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
    this.active++;
    try {
      await server.finishRequest(request, clientAddress);
    } finally {
      this.active--;
    }
    await server.shutdownRequest(request);
  }

  async drain(): Promise<void> {}

  async close(): Promise<void> {}
}
