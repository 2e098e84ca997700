import { getHeapStatistics } from 'node:v8';
import { ChannelKey, channels, EVENTS_ENABLED } from './channels';
import { COUNTER_KEYS, CounterTotals, PoolStats, WorkerStats } from './server-metrics';

/**
 * How workers (threads and child processes) tell the server's process what they did, without a message
 * per request: each worker sends a `WorkerReport` at most once a second (and a last one when it exits
 * on purpose), and the pool hands each one to its `WorkerStatsBook`, whose `snapshot()` is the pool
 * strategy's `stats()`. The server's `stats()` adds the book's totals to its own counters.
 *
 * The calls the pool makes (src/concurrency/worker-pool.strategy.ts and the worker entry points):
 *
 *   in the worker:                 reporter = new WorkerReporter(id, (r) => port.postMessage(r), { threadId | pid, child })
 *                                 reporter.start() … reporter.stop()       (a report every ≤ 1 s, a last one at exit)
 *                                 reporter.metrics / connections / requests (count there as the server does)
 *                                 reporter.setWanted(msg.wantsEvents)      (from the server's process)
 *   in the server's process:      book.started(id, { pid | threadId })     (a worker is up: it shows at once)
 *                                 book.update(report)                      (each report; republishes its events)
 *                                 book.retire(id)                          (the worker exited: its counts stay)
 *                                 book.restarts++ / book.oversubscribed++
 *                                 book.interestChange()                    (on each report: tell workers when defined)
 *                                 strategy.stats = () => book.snapshot()
 *
 * Counts a worker made after its last report are lost when it dies (at most 1 s of them).
 */
export interface WorkerReport extends WorkerStats {
  /** The worker's counters since it started (cumulative, not deltas: a lost report loses nothing). */
  totals: Partial<CounterTotals>;
  /** Events published in the worker since the last report, when the server's process wants them. */
  events?: WorkerEvent[];
  /** Events the worker's buffer had no room for since the last report. */
  droppedEvents?: number;
}

/** An event of a worker, as plain data: `data` is the payload without `server`. */
export interface WorkerEvent {
  channel: Extract<ChannelKey, 'connectionOpen' | 'connectionClose' | 'requestEnd'>;
  data: Record<string, unknown>;
}

/** The channels whose worker events are republished in the server's process (API.md §14). */
const REPUBLISHED: ReadonlyArray<WorkerEvent['channel']> = ['connectionOpen', 'connectionClose', 'requestEnd'];

/** In the server's process: whether anyone subscribes to a channel that workers' events are republished on. */
export function wantsWorkerEvents(): boolean {
  return EVENTS_ENABLED && REPUBLISHED.some((key) => channels[key].hasSubscribers);
}

/** Who to tell at once when a subscriber to a republished channel comes or goes (the pools of this process). */
const interestListeners = new Set<() => void>();
let interestWatched = false;

/**
 * In the server's process: calls `listener` right after anyone subscribes to or unsubscribes from a channel
 * whose worker events are republished here, so that the pool tells its workers to record their events at
 * once. Told only with their next report (up to a second later), the workers missed the requests in between:
 * a subscriber added after bootstrap() (the README's `watch(server)`) saw none of a `@Forking` server's first
 * requests. Node gives no such notice, so each of those channels gets its own `subscribe`/`unsubscribe`,
 * which call Node's (the channel's prototype, which Node swaps as subscribers come and go) and then tell.
 * Where that cannot be done, workers learn with their next report, as before. Returns the unregistering function.
 */
export function onWorkerInterest(listener: () => void): () => void {
  interestListeners.add(listener);
  if (!interestWatched) {
    interestWatched = true;
    for (const key of REPUBLISHED) for (const method of ['subscribe', 'unsubscribe'] as const) tellAfter(channels[key], method);
  }
  return () => void interestListeners.delete(listener);
}

function tellAfter(channel: object, method: 'subscribe' | 'unsubscribe'): void {
  // Another copy of sockserve in this process (two versions in node_modules, or each test file's modules under
  // jest) may have put its own method there first: it is called in turn, so that its pools are told too.
  const previous = Object.getOwnPropertyDescriptor(channel, method);
  const own: PropertyDescriptor = {
    configurable: true,
    writable: true,
    value(this: Record<string, (fn: unknown) => unknown>, subscriber: unknown): unknown {
      // Node's own method (or the previous copy's) for the duration of the call: Channel.prototype.subscribe
      // calls this.subscribe again once it has made the channel active
      if (previous) Object.defineProperty(this, method, previous);
      else delete this[method];
      try {
        return this[method](subscriber);
      } finally {
        Object.defineProperty(this, method, own);
        tellInterest();
      }
    },
  };
  try {
    Object.defineProperty(channel, method, own);
  } catch {
    // a channel Node made non-extensible: its workers learn of subscribers with their reports
  }
}

/**
 * Tells each pool, each on its own: a pool that fails to tell its workers must neither break the caller's
 * subscribe()/unsubscribe() nor keep the other pools from hearing (their workers learn with their next report).
 */
function tellInterest(): void {
  for (const listener of [...interestListeners]) {
    try {
      listener();
    } catch (err) {
      process.emitWarning(`sockserve: a pool could not tell its workers of a new subscriber (they learn with their next report): ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

/**
 * In the server's process: publishes a worker's batch of events on the same channels, each payload
 * `{ workerId, ...data }`. Events of a channel nobody subscribes to (any more) are skipped.
 */
export function republishWorkerEvents(workerId: number, events: readonly WorkerEvent[]): void {
  if (!EVENTS_ENABLED) return;
  for (const event of events) {
    if (!REPUBLISHED.includes(event.channel)) continue;
    const channel = channels[event.channel];
    if (channel.hasSubscribers) channel.publish({ workerId, ...event.data });
  }
}

/**
 * In a worker: the events to send with the next report. `wanted` is set from the server's process
 * (`wantsWorkerEvents()`); while it is false nothing is recorded. At most `capacity` events wait;
 * more are counted in `dropped`, not kept, so a stalled server's process cannot make a worker grow.
 */
export class WorkerEventBuffer {
  wanted = false;
  dropped = 0;
  private events: WorkerEvent[] = [];

  constructor(private readonly capacity = 10_000) {}

  record(channel: WorkerEvent['channel'], data: Record<string, unknown>): void {
    if (!this.wanted) return;
    if (this.events.length >= this.capacity) this.dropped++;
    else this.events.push({ channel, data });
  }

  /** The events since the last call, and how many were dropped; empties the buffer. */
  take(): { events: WorkerEvent[]; dropped: number } {
    const out = { events: this.events, dropped: this.dropped };
    this.events = [];
    this.dropped = 0;
    return out;
  }
}

/** In a worker: its report, with its heap (and, in a child process, its resident set) measured now. */
export function workerReport(
  id: number,
  totals: Partial<CounterTotals>,
  now: { connections: number; requests: number; pid?: number; threadId?: number; child: boolean },
  events?: { events: WorkerEvent[]; dropped: number },
): WorkerReport {
  const report: WorkerReport = {
    id,
    connections: now.connections,
    requests: now.requests,
    heapUsedBytes: getHeapStatistics().used_heap_size,
    totals,
  };
  if (now.pid !== undefined) report.pid = now.pid;
  if (now.threadId !== undefined) report.threadId = now.threadId;
  if (now.child) {
    try {
      report.rssBytes = process.memoryUsage.rss();
    } catch {
      // EMFILE: reading it opens a file under /proc; a child out of descriptors must not die of its report
    }
  }
  if (events && events.events.length > 0) report.events = events.events;
  if (events && events.dropped > 0) report.droppedEvents = events.dropped;
  return report;
}

/**
 * In the server's process: the pool's book of its workers. Keeps each live worker's last report and
 * the totals of workers that have exited, and merges them into the pool's `stats()`.
 */
export class WorkerStatsBook {
  restarts = 0;
  oversubscribed = 0;
  /** Worker events lost because a worker's buffer was full. */
  droppedEvents = 0;
  private readonly live = new Map<number, WorkerReport>();
  private readonly retired: Record<keyof CounterTotals, number> = zeros();
  private wanted = false;

  /**
   * Whether the server's process now wants workers' events, when that changed since the last call
   * (else undefined): the pool calls it on each report (or each second) and tells its workers.
   */
  interestChange(): boolean | undefined {
    const now = wantsWorkerEvents();
    if (now === this.wanted) return undefined;
    this.wanted = now;
    return now;
  }

  /** Whether workers were last told to send their events (interestChange). */
  get wantsEvents(): boolean {
    return this.wanted;
  }

  /** A worker is up: it is listed (with zeros) before its first report. */
  started(id: number, who: { pid?: number; threadId?: number } = {}): void {
    if (!this.live.has(id)) this.live.set(id, { id, ...who, connections: 0, requests: 0, heapUsedBytes: 0, totals: {} });
  }

  /** A report arrived: it replaces the worker's last one; its events are republished here. */
  update(report: WorkerReport): void {
    const { events, droppedEvents, ...kept } = report;
    // A request's end may have told a newer messages total (messagesSoFar) than a report written before it.
    const told = this.live.get(report.id)?.totals.messages;
    this.live.set(report.id, kept);
    if (told !== undefined) this.messagesSoFar(report.id, told);
    if (droppedEvents) this.droppedEvents += droppedEvents;
    if (events && events.length > 0) republishWorkerEvents(report.id, events);
  }

  /**
   * The worker's `messages` total as of a request's end (cumulative, like a report's): newer than its last report,
   * so that stats().messages is current when the request has ended. Never lowers the total a report gave.
   */
  messagesSoFar(id: number, total: number): void {
    const last = this.live.get(id);
    if (last && total > (last.totals.messages ?? 0)) last.totals = { ...last.totals, messages: total };
  }

  /** The worker exited: its row goes, its counts stay in the totals. */
  retire(id: number): void {
    const last = this.live.get(id);
    if (!last) return;
    this.live.delete(id);
    addInto(this.retired, last.totals);
  }

  snapshot(): PoolStats {
    const totals = { ...this.retired };
    const workers: WorkerStats[] = [];
    for (const report of this.live.values()) {
      addInto(totals, report.totals);
      const { totals: _t, ...row } = report;
      workers.push(row);
    }
    return { restarts: this.restarts, oversubscribed: this.oversubscribed, workers, totals };
  }
}

function zeros(): Record<keyof CounterTotals, number> {
  const out = {} as Record<keyof CounterTotals, number>;
  for (const key of COUNTER_KEYS) out[key] = 0;
  return out;
}

function addInto(into: Record<keyof CounterTotals, number>, from: Partial<CounterTotals>): void {
  for (const key of COUNTER_KEYS) into[key] += from[key] ?? 0;
}
