import { forwardEventsTo } from './events';
import { ServerMetrics } from './server-metrics';
import { WorkerEventBuffer, WorkerReport, workerReport } from './worker-report';

/**
 * Everything a worker (thread or child process) keeps for observability, in one object for the
 * worker's runtime to hold: its counters (`metrics`, counted as in the server's process), its open
 * `connections` and served `requests`, and the events the server's process wants. `start()` sends a
 * report through `post` every `intervalMs` (≤ 1 s), on a timer that does not keep the worker alive;
 * `stop()` sends a last one. `setWanted(msg.wantsEvents)` follows the server's process's interest.
 */
export class WorkerReporter {
  readonly metrics = new ServerMetrics();
  readonly events = new WorkerEventBuffer();
  connections = 0;
  requests = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly id: number,
    private readonly post: (report: WorkerReport) => void,
    private readonly who: { pid?: number; threadId?: number; child: boolean },
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (this.timer) return;
    forwardEventsTo(this.events);
    this.timer = setInterval(() => this.send(), this.intervalMs);
    this.timer.unref();
  }

  /** Sends the last report and stops (idempotent). */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    forwardEventsTo(undefined);
    this.send();
  }

  /** The server's process says whether it has subscribers for workers' events. */
  setWanted(wanted: boolean): void {
    this.events.wanted = wanted;
    if (!wanted) this.events.take();
  }

  /** Builds and posts a report now. A post that throws (the channel closed) is not the request's problem. */
  send(): void {
    const report = workerReport(this.id, this.metrics.totals(), { connections: this.connections, requests: this.requests, ...this.who }, this.events.take());
    try {
      this.post(report);
    } catch {
      // the server's process is gone or closing: nothing to tell
    }
  }
}
