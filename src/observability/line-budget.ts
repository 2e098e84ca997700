/**
 * At most `perSecond` lines a second; the lines past that are counted, and their number is given to
 * `summary` once, when that second ends. Routine client errors are logged through one (one per server):
 * a client that fails on purpose, a flood of datagrams to a client that does not read, say, would
 * otherwise write a line each, thousands a second, to the server's log (stats() still counts every one).
 */
export class LineBudget {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly summary: (suppressed: number) => void,
  ) {}

  /** True when a line may be written now; false when it is one too many this second (it is counted). */
  take(): boolean {
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used < this.perSecond) {
      this.used++;
      return true;
    }
    if (this.suppressed++ === 0) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, 1000 - (now - this.windowStart)));
      this.timer.unref();
    }
    return false;
  }

  /** Writes the summary of the lines held back so far, if any, now (a closing server calls it). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const n = this.suppressed;
    this.suppressed = 0;
    if (n > 0) this.summary(n);
  }
}
