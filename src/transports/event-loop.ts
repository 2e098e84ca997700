import * as timers from 'node:timers';
/**
 * Runs `fn` after two turns of the event loop, so at least one full poll phase lies between: bytes the
 * kernel already holds for a socket that is reading have been delivered by then. Shutdown uses it to
 * tell an idle connection from one whose request has arrived but was not read yet. `node:timers`'s
 * setImmediate, not the global one a test may have faked: sockserve/testing's shutdown() ends an idle
 * in-memory connection's reads through this, and under `jest.useFakeTimers()` they waited for ever.
 */
export function afterPollPhase(fn: () => void): void {
  timers.setImmediate(() => timers.setImmediate(fn));
}

/**
 * Resolves true once `work` has settled, or false after `ms` milliseconds (Infinity: as long as it takes);
 * the timer is cleared either way. A rejection of `work` rejects this too. The timer is `node:timers`'s,
 * not the global one a test may have faked (`jest.useFakeTimers()` replaces only the globals): the bound
 * on a hung handler (shutdownTimeout, sockserve/testing's close()) holds in real time whatever the test's
 * clock does; with the global one faked, close() waited for a clock nobody advanced. `hold` false: the timer
 * does not keep the process alive (a bound on work nobody awaits to exit, such as a request scope's disposal).
 */
export async function settledWithin(work: Promise<unknown>, ms: number, hold = true): Promise<boolean> {
  if (!Number.isFinite(ms)) return work.then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = timers.setTimeout(() => resolve(false), Math.min(ms, 2 ** 31 - 1))));
  if (!hold) timer!.unref();
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    timers.clearTimeout(timer);
  }
}

/**
 * `queueMicrotask(fn)` that a test's fake clock cannot hold: jest's modern `useFakeTimers()` replaces the
 * global `queueMicrotask` (and `process.nextTick`) too, so a job queued through it ran only when the test
 * advanced the clock, and an in-memory client never saw its server's EOF (`readAll()` hung). A resolved
 * promise's `then` is the same one microtask later, and no fake timer replaces it.
 */
export function microtask(fn: () => void): void {
  void Promise.resolve().then(fn);
}
