import { SystemExit } from '../errors/errors';
import { LevelledLogger, stderrLogger } from '../observability/logger';
import type { ClientAddress } from '../transports/address';
import type { RequestProcessor } from './strategy';

/**
 * One request away from the loop's turn: Python's `process_request_thread`. finishRequest, handleError
 * on an error (SystemExit skips it), and shutdownRequest exactly once, whatever happens. Never rejects.
 */
export async function processInBackground<Req>(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
  try {
    await server.finishRequest(request, clientAddress);
  } catch (err) {
    if (!(err instanceof SystemExit)) await safely(server, () => server.handleError(request, clientAddress, err));
  } finally {
    await safely(server, () => server.shutdownRequest(request));
  }
}

async function safely(server: RequestProcessor<unknown>, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (err) {
    // handleError or shutdownRequest itself failed: there is nobody left to tell but the logger.
    ((server as { logger?: LevelledLogger }).logger ?? stderrLogger).error(`sockserve: error while ending a request: ${(err as Error)?.stack ?? String(err)}`);
  }
}
