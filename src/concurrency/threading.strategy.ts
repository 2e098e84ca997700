import { availableParallelism } from 'node:os';
import type { ThreadingOptions } from '../metadata/definition';
import type { WorkerSpec } from './remote/protocol';
import { ThreadSlot } from './remote/thread-slot';
import type { WorkerLaunch } from './remote/worker-launch';
import { WorkerPoolStrategy } from './worker-pool.strategy';

/**
 * Python's ThreadingMixIn on real threads (`worker_threads`): a warm pool of `threads` (default one per
 * core) growing to `maxThreads` (64), or a fresh thread per request with `perRequest`.
 */
export function threadingStrategy(spec: WorkerSpec, launch: WorkerLaunch, options: ThreadingOptions, handlerName: string): WorkerPoolStrategy {
  return new WorkerPoolStrategy(
    {
      mode: 'threading',
      warm: options.threads ?? availableParallelism(),
      max: options.maxThreads ?? 64,
      perRequest: options.perRequest ?? false,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      spawn: (onDeath) => new ThreadSlot(spec, launch, onDeath),
    },
    handlerName,
  );
}
