import { availableParallelism } from 'node:os';
import type { ThreadingOptions } from '../metadata/definition';
import type { WorkerSpec } from './remote/protocol';
import { ThreadSlot } from './remote/thread-slot';
import type { WorkerLaunch } from './remote/worker-launch';
import { PoolTuning, WorkerPoolStrategy } from './worker-pool.strategy';

/**
 * Python's ThreadingMixIn on real threads (`worker_threads`), each thread an event loop serving many
 * connections: `threads` (default one per core) kept, growing to `maxThreads` (64) only while every
 * thread holds `connectionsPerThread` connections, or a fresh thread per connection with `perRequest`.
 */
export function threadingStrategy(spec: WorkerSpec, launch: WorkerLaunch, options: ThreadingOptions, handlerName: string, tuning: PoolTuning): WorkerPoolStrategy {
  return new WorkerPoolStrategy(
    {
      mode: 'threading',
      warm: options.threads ?? availableParallelism(),
      max: options.maxThreads ?? 64,
      perWorker: options.connectionsPerThread ?? Infinity,
      perRequest: options.perRequest ?? false,
      idleTimeoutMs: (options.workerIdleTimeout ?? 30) * 1000,
      maxConnectionsPerWorker: options.maxConnectionsPerThread ?? Infinity,
      spawn: (onDeath) => new ThreadSlot(spec, launch, onDeath, tuning.heartbeatTimeout, options.resourceLimits),
      log: tuning.log,
      error: tuning.error,
      info: tuning.info,
      owner: tuning.owner,
    },
    handlerName,
  );
}
