import { ConfigurationError } from '../../src';
import { fakePool } from '../helpers/fake-pool';

/** A worker that never becomes ready (its handler cannot load) and takes `exitMs` to end once killed. */
class UnloadableWorker {
  load = 0;
  retiring = false;
  dead = false;
  started = false;
  listening = false;
  exited = false;
  onReport?: unknown;
  onAccepted?: unknown;
  onAcceptError?: unknown;
  readonly ready = Promise.reject(new Error('the handler cannot load here'));

  constructor(private readonly exitMs: number) {
    this.ready.catch(() => undefined);
  }

  finalReport(): Promise<void> {
    return Promise.resolve();
  }
  disposeSingletons(): Promise<Error | undefined> {
    return Promise.resolve(undefined);
  }

  /** A worker that cannot answer (its connections stay theirs: end() loses them). */
  abandon(): Promise<boolean> {
    return Promise.resolve(false);
  }

  end(): Promise<void> {
    return this.kill();
  }

  async kill(): Promise<void> {
    this.dead = true;
    await new Promise((resolve) => setTimeout(resolve, this.exitMs));
    this.exited = true;
  }
}

describe("WorkerPoolStrategy's start() and close()", () => {
  test.each([1, 3])('a pool of %i warm workers that cannot load rejects only once every worker it started has ended (a slow one too), and starts no replacement meanwhile', async (warm) => {
    const workers: UnloadableWorker[] = [];
    // The first worker ends slowly, as a thread does on a busy machine; the others at once.
    const pool = fakePool(() => {
      const worker = new UnloadableWorker(workers.length === 0 ? 300 : 0);
      workers.push(worker);
      return worker;
    }, { warm, max: Math.max(warm, 4) }, 'Unloadable');

    await expect(pool.start()).rejects.toBeInstanceOf(ConfigurationError);

    // start() reports the failure itself: replacements were only a "could not start" line ahead of its error
    expect(workers).toHaveLength(warm);
    expect(workers.filter((w) => !w.exited)).toEqual([]);
  });
});
