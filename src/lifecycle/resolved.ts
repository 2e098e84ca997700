/**
 * Two helpers of the code that runs once per request and chains only what is pending.
 *
 * `RESOLVED`: one promise, resolved with undefined, shared by the steps that are usually done at once (a
 * scope with nothing to dispose, a datagram's shutdownRequest, a request @Concurrent took with a slot to
 * spare): a caller that meets it knows, by identity, that nothing is pending, and skips the reaction it
 * would otherwise chain.
 */
export const RESOLVED: Promise<void> = Promise.resolve();

/** Whether `value` is a promise or another thenable (what `await` would wait for). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
