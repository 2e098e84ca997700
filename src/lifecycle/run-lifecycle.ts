/**
 * The per-request lifecycle, in one place for every handler shape and every place a request runs
 * (main thread, worker thread, child process): setup → handle → finish, each exactly once. finish runs
 * after handle also when handle threw (and its error then wins, as in Python); it does not run when
 * setup threw. Closing the connection is the server's part (shutdownRequest), not the runner's.
 */
export interface LifecycleSteps {
  setup?(): unknown;
  handle(): unknown;
  finish?(): unknown;
}

export async function runLifecycle(steps: LifecycleSteps): Promise<void> {
  await steps.setup?.();
  try {
    await steps.handle();
  } finally {
    await steps.finish?.();
  }
}
