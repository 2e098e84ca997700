import { SystemExit } from '../errors/errors';
import { messages } from '../errors/messages';
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
    if (!(err instanceof SystemExit)) await handleErrorSafely(server, request, clientAddress, err);
  } finally {
    await safely(server, () => server.shutdownRequest(request));
  }
}

/**
 * `server.handleError(request, clientAddress, err)`, which never throws: a handleError that throws (a user's
 * override, a failing @HandleError) is logged at `error` with the error it was given, and whoever called it goes
 * on closing the request and serving (Python would let it escape serve_forever; a server must not stop for it).
 */
export async function handleErrorSafely<Req>(server: RequestProcessor<Req>, request: Req | undefined, clientAddress: ClientAddress | undefined, err: unknown): Promise<void> {
  try {
    await server.handleError(request, clientAddress, err);
  } catch (failure) {
    const owner = (server as { constructor: { name: string } }).constructor.name;
    ((server as { logger?: LevelledLogger }).logger ?? stderrLogger).error(messages.handleErrorFailed(owner, clientAddress, traceOf(err), traceOf(failure)));
  }
}

function traceOf(error: unknown): string {
  return error instanceof Error ? (error.stack ?? String(error)) : String(error);
}

async function safely(server: RequestProcessor<unknown>, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (err) {
    // handleError or shutdownRequest itself failed: there is nobody left to tell but the logger.
    ((server as { logger?: LevelledLogger }).logger ?? stderrLogger).error(`sockserve: error while ending a request: ${(err as Error)?.stack ?? String(err)}`);
  }
}
