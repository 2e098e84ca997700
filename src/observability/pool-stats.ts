import type { ConcurrencyStrategy } from '../concurrency/strategy';
import type { PoolStats, WorkerStats } from './server-metrics';

export type { PoolStats } from './server-metrics';

/**
 * The seam between `stats()` and a concurrency strategy: a pool's own `stats()` (fed by its workers'
 * reports, see worker-report.ts), or undefined for strategies without workers. A pool that does not
 * report yet is listed by its live workers only (ids in order, figures zero), so `workers.length` holds.
 */
export function poolStatsOf(strategy: ConcurrencyStrategy<unknown>): PoolStats | undefined {
  if (strategy.stats) return strategy.stats();
  const live = strategy.workers;
  if (live === undefined) return undefined;
  const workers: WorkerStats[] = Array.from({ length: live }, (_, i) => ({ id: i + 1, connections: 0, requests: 0, heapUsedBytes: 0 }));
  return { restarts: 0, oversubscribed: 0, workers };
}
