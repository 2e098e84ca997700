/**
 * Two helpers of the code that runs once per request and chains only what is pending.
 *
 * `RESOLVED`: one promise, resolved with undefined, shared by the steps that are usually done at once (a
 * scope with nothing to dispose, a datagram's shutdownRequest, a request @Concurrent took with a slot to
 * spare): a caller that meets it knows, by identity, that nothing is pending, and skips the reaction it
 * would otherwise chain.
 */
export const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Whether `value` is a promise or another thenable (what `await` would wait for). An object whose `then` getter
 * throws (a strict or revoked Proxy) counts as one: `await` and Promise.resolve() turn it into a rejection with
 * that error, where the bare read threw out of a socket's 'data' listener and ended the process (hostile run:
 * a synchronous @OnMessage returning such a Proxy). A function with a `then` method is one too, as for `await`.
 * Callers adopt it with Promise.resolve(), never `.then` it.
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  try {
    return typeof (value as PromiseLike<unknown>).then === 'function';
  } catch {
    return true;
  }
}
