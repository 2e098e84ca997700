import { availableParallelism } from 'node:os';
import type { ForkingOptions } from '../metadata/definition';
import { ChildSlot } from './remote/child-slot';
import type { WorkerSpec } from './remote/protocol';
import type { WorkerLaunch } from './remote/worker-launch';
import { PoolTuning, WorkerPoolStrategy } from './worker-pool.strategy';

/**
 * Python's ForkingMixIn on real child processes, each an event loop serving many connections:
 * `children` (default one per core) kept, growing to `maxChildren` (40, as Python) only while every
 * child holds `connectionsPerChild` connections, or a fresh process per connection with `perRequest`.
 * Each connection is handed to its child whole; children are reaped on close() and exit with their parent.
 */
export function forkingStrategy(spec: WorkerSpec, launch: WorkerLaunch, options: ForkingOptions, handlerName: string, tuning: PoolTuning): WorkerPoolStrategy {
  return new WorkerPoolStrategy(
    {
      mode: 'forking',
      warm: options.children ?? availableParallelism(),
      max: options.maxChildren ?? 40,
      perWorker: options.connectionsPerChild ?? Infinity,
      perRequest: options.perRequest ?? false,
      idleTimeoutMs: (options.workerIdleTimeout ?? 30) * 1000,
      maxConnectionsPerWorker: options.maxConnectionsPerChild ?? Infinity,
      spawn: (onDeath) => new ChildSlot(spec, launch, onDeath, tuning.heartbeatTimeout, options.resourceLimits),
      log: tuning.log,
      error: tuning.error,
      info: tuning.info,
      owner: tuning.owner,
    },
    handlerName,
  );
}
