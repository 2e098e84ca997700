import { fakePool } from '../helpers/fake-pool';

/** A worker still loading (its `ready` never settles here): the connections booked on it wait. */
class LoadingWorker {
  readonly ids = { threadId: 1 };
  readonly id = 1;
  load = 0;
  retiring = false;
  dead = false;
  started = false;
  readonly ready = new Promise<void>(() => undefined);
  catchUp(): void {}
  /** Heard from as often as the others: never quiet (RemoteSlot.quietSince()). */
  heardAt = 0;
  quietSince(): boolean {
    return false;
  }
  wantEvents(): void {}
  /** Still loading: it cannot answer (close() then ends it). */
  abandon(): Promise<boolean> {
    return Promise.resolve(false);
  }
  end(): Promise<void> {
    this.dead = true;
    return Promise.resolve();
  }
}

/**
 * The bound on connections waiting for a worker while none serves after workers died (worker-pool.strategy.ts
 * pick()): it holds only while a death is recent. One crash long ago made every later cold start (perRequest,
 * a pool growing from nothing) refuse past 511, and say that workers "keep dying" (hostile re-check).
 */
describe("WorkerPoolStrategy's bound on connections waiting after deaths", () => {
  type Picking = { pick(datagram?: boolean): Promise<unknown>; deaths: number[]; close(): Promise<void> };
  let pool: Picking | undefined;
  // Closed, so that it stops following diagnostics_channel subscribers (a pool left open in this jest worker was
  // told of a later test file's subscription)
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  test.each([
    ['within the last 10 s: refused past 511', 1_000, 511],
    ['11 s ago, outside the backoff\'s window: none refused', 11_000, 520],
  ])('a death %s', async (_when, ago, placed) => {
    pool = fakePool(() => new LoadingWorker(), { perRequest: true, warm: 0, max: 1 }) as unknown as Picking;
    pool.deaths = [Date.now() - ago];
    const picked = [];
    for (let i = 0; i < 520; i++) picked.push(await pool.pick());
    expect(picked.filter((slot) => slot !== undefined)).toHaveLength(placed);
  });
});
