import type { RemoteSlot } from '../../src/concurrency/remote/remote-slot';
import { PoolOptions, WorkerPoolStrategy } from '../../src/concurrency/worker-pool.strategy';

/**
 * A WorkerPoolStrategy over fake workers, for unit tests of the pool's own logic: `makeWorker()` builds each
 * worker the pool starts (a test double with the RemoteSlot members the test's path uses); the options are a
 * threads pool of warm 1, max 4, no recycling, unless `options` says otherwise.
 */
export function fakePool<W>(makeWorker: () => W, options: Partial<PoolOptions> = {}, name = 'Fake'): WorkerPoolStrategy {
  return new WorkerPoolStrategy(
    {
      mode: 'threading',
      warm: 1,
      max: 4,
      perWorker: Infinity,
      perRequest: false,
      idleTimeoutMs: 30000,
      maxConnectionsPerWorker: Infinity,
      spawn: () => makeWorker() as unknown as RemoteSlot,
      log: () => undefined,
      ...options,
    },
    name,
  );
}
