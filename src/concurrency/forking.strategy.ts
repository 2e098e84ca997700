import { availableParallelism } from 'node:os';
import type { ForkingOptions } from '../metadata/definition';
import { ChildSlot } from './remote/child-slot';
import type { WorkerSpec } from './remote/protocol';
import type { WorkerLaunch } from './remote/worker-launch';
import { WorkerPoolStrategy } from './worker-pool.strategy';

/**
 * Python's ForkingMixIn on real child processes: a warm pool of `children` (default one per core)
 * growing to `maxChildren` (40, as Python), or a fresh process per request with `perRequest`. Each
 * connection is handed to its child whole; children are reaped on close() and exit with their parent.
 */
export function forkingStrategy(spec: WorkerSpec, launch: WorkerLaunch, options: ForkingOptions, handlerName: string): WorkerPoolStrategy {
  return new WorkerPoolStrategy(
    {
      mode: 'forking',
      warm: options.children ?? availableParallelism(),
      max: options.maxChildren ?? 40,
      perRequest: options.perRequest ?? false,
      idleTimeoutMs: 30_000,
      spawn: (onDeath) => new ChildSlot(spec, launch, onDeath),
    },
    handlerName,
  );
}
