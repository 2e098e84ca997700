/**
 * The per-request lifecycle, in one place for every handler shape and every place a request runs
 * (main thread, worker thread, child process): setup → handle → finish, each exactly once. finish runs
 * after handle also when handle threw (and its error then wins, as in Python); it does not run when
 * setup threw. Closing the connection is the server's part (shutdownRequest), not the runner's.
 *
 * `steps` names the methods of `self` to call (a classic handler's setup/handle/finish, a decorated
 * one's @Setup/@Handle/@Finish methods), each with `args`. It runs once per request or datagram, so a
 * step the class does not have costs nothing and a handle() that returns no promise is not awaited.
 */
export interface LifecycleSteps {
  setup?: PropertyKey;
  /** A method of `self`, or the step itself (an `@OnMessage` handler's message loop). */
  handle: PropertyKey | ((...args: unknown[]) => unknown);
  finish?: PropertyKey;
}

type Steps = Record<PropertyKey, (...args: unknown[]) => unknown>;

export async function runLifecycle(self: object, steps: LifecycleSteps, ...args: unknown[]): Promise<void> {
  const target = self as Steps;
  if (steps.setup !== undefined) await target[steps.setup](...args);
  try {
    const handled = typeof steps.handle === 'function' ? steps.handle(...args) : target[steps.handle](...args);
    if (isThenable(handled)) await handled;
  } finally {
    if (steps.finish !== undefined) await target[steps.finish](...args);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
