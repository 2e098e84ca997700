/**
 * A FIFO of requests that the transport has received and the server loop has not yet taken: accepted
 * connections (paused, unread) or datagrams. The loop waits on it with a bound, as Python's select()
 * does with `poll_interval`; `wake()` ends a wait early so that `shutdown()` never waits a poll interval.
 */
export class RequestQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((ready: boolean) => void) | undefined;
  /** When the current wait times out (performance.now() ms). */
  private deadline = Infinity;
  /**
   * One timer for every wait, armed when a bounded wait starts and none is pending, re-armed when it
   * fires early: a busy loop waits many times per millisecond, and a fresh timer per wait would cost
   * more than the wait itself.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

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

  /** Takes the first item that `pick` accepts, out of order; undefined when none does. */
  takeFirst(pick: (item: T) => boolean): T | undefined {
    const i = this.items.findIndex(pick);
    return i < 0 ? undefined : this.items.splice(i, 1)[0];
  }

  /** Whether an item that `pick` accepts is queued. */
  some(pick: (item: T) => boolean): boolean {
    return this.items.some(pick);
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
      this.waiter = resolve;
      if (!Number.isFinite(ms)) return;
      const delay = Math.min(Math.max(0, ms), 2 ** 31 - 1);
      this.deadline = performance.now() + delay;
      if (this.timer && this.timerAt <= this.deadline) this.timer.ref();
      else this.arm(delay);
    });
  }

  /** Ends the current wait with `false`. */
  wake(): void {
    this.settle(false);
  }

  private settle(ready: boolean): void {
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = undefined;
    this.deadline = Infinity;
    this.timer?.unref(); // nobody waits: a pending timer must not keep the process alive
    waiter(ready);
  }

  private arm(delay: number): void {
    clearTimeout(this.timer);
    this.timerAt = performance.now() + delay;
    this.timer = setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!this.waiter || this.deadline === Infinity) return;
    const left = this.deadline - performance.now();
    if (left <= 0) this.settle(false);
    else this.arm(left);
  }
}
