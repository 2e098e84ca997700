/**
 * A FIFO of requests that the transport has received and the server loop has not yet taken: accepted
 * connections (paused, unread) or datagrams. The loop waits on it with a bound, as Python's select()
 * does with `poll_interval`; `wake()` ends a wait early so that `shutdown()` never waits a poll interval.
 */
export class RequestQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((ready: boolean) => void) | undefined;

  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    this.settle(true);
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Empties the queue, handing back what was in it (for close()). */
  drain(): T[] {
    return this.items.splice(0, this.items.length);
  }

  /** Resolves true as soon as an item is queued, false after `ms` (Infinity: no bound) or on `wake()`. */
  wait(ms: number): Promise<boolean> {
    if (this.items.length > 0) return Promise.resolve(true);
    this.settle(false);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (ready: boolean) => {
        if (timer) clearTimeout(timer);
        this.waiter = undefined;
        resolve(ready);
      };
      this.waiter = done;
      if (Number.isFinite(ms)) timer = setTimeout(() => done(false), Math.max(0, ms));
    });
  }

  /** Ends the current wait with `false`. */
  wake(): void {
    this.settle(false);
  }

  private settle(ready: boolean): void {
    this.waiter?.(ready);
  }
}
