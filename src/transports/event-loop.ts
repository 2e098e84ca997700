/**
 * Runs `fn` after two turns of the event loop, so at least one full poll phase lies between: bytes the
 * kernel already holds for a socket that is reading have been delivered by then. Shutdown uses it to
 * tell an idle connection from one whose request has arrived but was not read yet.
 */
export function afterPollPhase(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

/**
 * Resolves true once `work` has settled, or false after `ms` milliseconds (Infinity: as long as it takes);
 * the timer is cleared either way. A rejection of `work` rejects this too.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  if (!Number.isFinite(ms)) return work.then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.min(ms, 2 ** 31 - 1))));
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
