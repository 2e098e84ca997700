import { describeBriefly, isSystemExit } from '../errors/thrown';
import { isThenable } from './resolved';

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
  /** Called with the lifecycle's `args` when setup threw or rejected (before the error goes on): a datagram's reply is then not owed. */
  setupFailed?: (...args: unknown[]) => void;
}

type Steps = Record<PropertyKey, (...args: unknown[]) => unknown>;

/**
 * Not an async function, on purpose: an idle keep-alive connection waits inside handle() for as long as
 * it lives, and a suspended async frame here (plus its promise and reaction) would be held per connection
 * on top of the handler's own. While handle() runs, this holds nothing when there is no finish step
 * (handle's own promise is returned), and one reaction when there is.
 */
export function runLifecycle(self: object, steps: LifecycleSteps, ...args: unknown[]): Promise<void> {
  const target = self as Steps;
  if (steps.setup === undefined) return handleThenFinish(target, steps, args);
  let prepared: unknown;
  try {
    prepared = target[steps.setup](...args);
  } catch (err) {
    steps.setupFailed?.(...args);
    return Promise.reject(err);
  }
  // setup is awaited, even when it returns no promise (as an async runner would): handle starts a tick later
  const failed = steps.setupFailed;
  return Promise.resolve(prepared).then(
    () => handleThenFinish(target, steps, args),
    failed === undefined ? undefined : (err: unknown) => {
      failed(...args);
      throw err;
    },
  );
}

function handleThenFinish(target: Steps, steps: LifecycleSteps, args: unknown[]): Promise<void> {
  const finish = steps.finish;
  let handled: unknown;
  try {
    handled = typeof steps.handle === 'function' ? steps.handle(...args) : target[steps.handle](...args);
  } catch (err) {
    return finish === undefined ? Promise.reject(err) : finishAfter(target, finish, args, true, err);
  }
  if (!isThenable(handled)) return finish === undefined ? Promise.resolve() : finishAfter(target, finish, args, false);
  if (finish === undefined) return handled instanceof Promise ? (handled as Promise<void>) : Promise.resolve(handled).then(ignore);
  return Promise.resolve(handled).then(
    () => finishAfter(target, finish, args, false),
    (err: unknown) => finishAfter(target, finish, args, true, err),
  );
}

/**
 * Runs finish; then the lifecycle's outcome is handle's error (`failed`, `error`) if finish succeeded, finish's
 * if only it failed, and both if both did (afterFailure).
 */
function finishAfter(target: Steps, finish: PropertyKey, args: unknown[], failed: boolean, error?: unknown): Promise<void> {
  let finished: unknown;
  try {
    finished = target[finish](...args);
  } catch (err) {
    return Promise.reject(failed ? afterFailure(error, err) : err);
  }
  if (isThenable(finished)) {
    return Promise.resolve(finished).then(
      () => (failed ? Promise.reject(error) : undefined),
      (err: unknown) => Promise.reject(failed ? afterFailure(error, err) : err),
    );
  }
  // finish returned no promise: it is still awaited, as an async runner's `await` would
  return failed ? Promise.resolve().then(() => Promise.reject(error)) : Promise.resolve().then(ignore);
}

/**
 * finish failed after handle had: both errors, as Python's traceback shows both ("During handling of the above
 * exception, another exception occurred"), in one AggregateError (handle's first), as a failed disposal after a
 * failed request is reported. Only finish's was reported: handle's, the request's real failure, was lost (hostile
 * run). A SystemExit on either side goes on as it came (finish's), for the server to stop.
 */
function afterFailure(handled: unknown, finished: unknown): unknown {
  if (isSystemExit(handled) || isSystemExit(finished)) return finished;
  return new AggregateError([handled, finished], `${describeBriefly(handled)}; and the request's finish step failed too: ${describeBriefly(finished)}`);
}

function ignore(): void {}
