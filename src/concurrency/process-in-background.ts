import { SystemExit } from '../errors/errors';
import { LevelledLogger, stderrLogger } from '../observability/logger';
import type { ClientAddress } from '../transports/address';
import type { RequestProcessor } from './strategy';

/**
 * One request away from the loop's turn: Python's `process_request_thread`. finishRequest, handleError
 * on an error (SystemExit skips it), and shutdownRequest exactly once, whatever happens. Never rejects.
 */
export function processInBackground<Req>(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void> {
  // A chain, not an async function: an idle keep-alive connection waits in finishRequest for as long as it
  // lives, and a suspended async frame per connection is memory that a reaction here does not cost.
  let running: Promise<void>;
  try {
    running = Promise.resolve(server.finishRequest(request, clientAddress)); // an override may return no promise
  } catch (err) {
    running = Promise.reject(err);
  }
  const end = () => safely(server, () => server.shutdownRequest(request));
  return running.then(end, (err: unknown) => {
    if (err instanceof SystemExit) return end();
    return safely(server, () => server.handleError(request, clientAddress, err)).then(end);
  });
}

async function safely(server: RequestProcessor<unknown>, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (err) {
    // handleError or shutdownRequest itself failed: there is nobody left to tell but the logger.
    ((server as { logger?: LevelledLogger }).logger ?? stderrLogger).error(`sockserve: error while ending a request: ${(err as Error)?.stack ?? String(err)}`);
  }
}
