/**
 * Runs `fn` after two turns of the event loop, so at least one full poll phase lies between: bytes the
 * kernel already holds for a socket that is reading have been delivered by then. Shutdown uses it to
 * tell an idle connection from one whose request has arrived but was not read yet.
 */
export function afterPollPhase(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}
