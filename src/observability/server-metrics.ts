import type { PoolStats as StrategyPoolStats } from '../concurrency/strategy';
import { ErrorKind, errorKind } from './error-kind';

/**
 * Counters that only grow, kept where the event happens (the server's process, or a worker): plain
 * fields, incremented in place, so counting costs an addition. Sizes in bytes.
 */
export interface CounterTotals {
  /** Connections (and datagrams) the server took, refused ones included. */
  accepted: number;
  /** Connections closed by limits or refused by @Verify. */
  rejected: number;
  /** Errors of the handler: hooks that threw, workers that died. */
  errors: number;
  /** Routine client behaviour: resets, timeouts, lines or frames too long, malformed framing. */
  clientErrors: number;
  /** Failed TLS handshakes (counted only here). */
  tlsErrors: number;
  /** Malformed, missing or untrusted PROXY headers (counted only here). */
  proxyErrors: number;
  /** Connections closed before sending a byte (a TCP health check): no error, no hook. */
  healthChecks: number;
  /** Messages decoded by `@Framing` and given to `@OnMessage`. */
  messages: number;
  /** Bytes read from clients' connections and datagrams, counted when each connection closes. */
  bytesIn: number;
  /** Bytes written to clients' connections and datagrams, counted when each connection closes. */
  bytesOut: number;
  /** Accepting failed for lack of file descriptors (EMFILE/ENFILE): connections were dropped meanwhile. */
  acceptErrors: number;
}

/** One worker thread or child process, as its last report (at most 1 s old) described it. */
export interface WorkerStats {
  /** The pool's id for the worker: its `threadId` for a thread, its `pid` for a child. */
  id: number;
  /** The child's process id (`@Forking`). */
  pid?: number;
  /** The thread's `threadId` (`@Threading`). */
  threadId?: number;
  /** Connections open in the worker now. */
  connections: number;
  /** Requests the worker has taken since it started, those still running included (health checks and `@Verify` refusals left out). */
  requests: number;
  /** Bytes of V8 heap the worker uses (its own isolate), at its last report (at most 1 s old). */
  heapUsedBytes: number;
  /** Bytes of resident memory of a child process; absent for threads, which share the server's. */
  rssBytes?: number;
}

/**
 * What a pool strategy's `stats()` gives (`PoolStats` of src/concurrency/strategy.ts: restarts,
 * oversubscribed, workers), plus, from a `WorkerStatsBook`, the counters its workers reported.
 */
export interface PoolStats extends StrategyPoolStats {
  /** Counters kept in the workers (their reports summed, retired workers included). */
  totals?: Partial<CounterTotals>;
}

/** `server.stats()`: a synchronous snapshot ([observability](../../docs/observability.md)). */
export interface ServerStats extends CounterTotals {
  /** Requests being processed now (connections in flight, in every worker). */
  active: number;
  /** Connections placed on a worker already full, the pool being at `maxThreads`/`maxChildren` (0 without workers). */
  oversubscribed: number;
  /** Workers (threads or children) that died and were replaced (0 without workers). */
  restarts: number;
  /**
   * Datagrams dropped unanswered because the server already held `maxQueuedDatagrams` (4096) waiting or
   * in its workers: the handler is slower than its clients (0 on stream servers). Datagrams a full kernel
   * buffer drops are not seen by Node, so not counted.
   */
  dropped: number;
  /** One entry per live worker thread or child, oldest first; empty without `@Threading`/`@Forking`. Figures at most 1 s old. */
  workers: WorkerStats[];
}

export const COUNTER_KEYS: ReadonlyArray<keyof CounterTotals> = [
  'accepted', 'rejected', 'errors', 'clientErrors', 'tlsErrors', 'proxyErrors', 'healthChecks', 'messages', 'bytesIn', 'bytesOut', 'acceptErrors',
];

/**
 * A server's counters (or a worker's, which it reports): increment the fields directly. `countError`
 * is the one place where an error is sorted into `errors`, `clientErrors`, `tlsErrors` or `proxyErrors`;
 * code that routes an error through `handleError` must not count it again.
 */
export class ServerMetrics implements CounterTotals {
  accepted = 0;
  rejected = 0;
  errors = 0;
  clientErrors = 0;
  tlsErrors = 0;
  proxyErrors = 0;
  healthChecks = 0;
  messages = 0;
  bytesIn = 0;
  bytesOut = 0;
  acceptErrors = 0;

  /** Counts one error in the field of its kind, and says which kind it was. */
  countError(error: unknown): ErrorKind {
    const kind = errorKind(error);
    if (kind === 'handler') this.errors++;
    else if (kind === 'client') this.clientErrors++;
    else if (kind === 'tls') this.tlsErrors++;
    else this.proxyErrors++;
    return kind;
  }

  /** The counters as plain data (for a worker's report). */
  totals(): CounterTotals {
    const out = {} as CounterTotals;
    for (const key of COUNTER_KEYS) out[key] = this[key];
    return out;
  }

  /** The server's snapshot: its own counters plus the pool's (workers' counters, restarts, the workers). */
  snapshot(active: number, pool?: PoolStats, dropped = 0): ServerStats {
    const stats: ServerStats = { ...this.totals(), active, oversubscribed: 0, restarts: 0, dropped, workers: [] };
    if (!pool) return stats;
    for (const key of COUNTER_KEYS) stats[key] += pool.totals?.[key] ?? 0;
    stats.oversubscribed = pool.oversubscribed;
    stats.restarts = pool.restarts;
    stats.workers = pool.workers.map((w) => ({ ...w }));
    return stats;
  }
}
