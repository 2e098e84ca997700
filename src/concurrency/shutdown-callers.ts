/**
 * The requests whose handlers are awaiting `server.shutdown()` right now. A drain on behalf of one of them
 * must wait for none of them: two handlers that each waited for the other would hold both until
 * `shutdownTimeout` (Python's `shutdown()` from a handler never waits for requests at all). `grown()`
 * settles when a request joins, so that a drain already waiting on it looks again.
 */
export class ShutdownCallers<Req> {
  private readonly callers = new Set<Req>();
  private wake: () => void = () => {};
  private joined = this.nextJoin();

  has(request: Req): boolean {
    return this.callers.has(request);
  }

  add(request: Req): void {
    this.callers.add(request);
    const wake = this.wake;
    this.joined = this.nextJoin();
    wake();
  }

  delete(request: Req): void {
    this.callers.delete(request);
  }

  /** Settles the next time a request joins. */
  grown(): Promise<void> {
    return this.joined;
  }

  private nextJoin(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }
}

/**
 * Waits until every request of `running` has finished, but those `except` holds; looks again whenever one
 * finishes the wait or a request joins `except`. `running` maps each run's promise to its request.
 */
export async function drainRunning<Req>(running: () => Iterable<[Promise<unknown>, Req]>, except?: ShutdownCallers<Req>): Promise<void> {
  for (;;) {
    const others = [...running()].filter(([, request]) => !except?.has(request)).map(([run]) => run);
    if (others.length === 0) return;
    await (except ? Promise.race([Promise.all(others), except.grown()]) : Promise.all(others));
  }
}
