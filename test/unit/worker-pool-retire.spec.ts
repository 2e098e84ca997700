import type { PoolOptions, WorkerPoolStrategy } from '../../src/concurrency/worker-pool.strategy';
import { fakePool } from '../helpers/fake-pool';
import type { ClientAddress } from '../../src/transports/address';

/**
 * A worker that accepts connections itself (a thread with reusePort, a child on the shared socket), driven by
 * the test: it "accepts" when the test calls onAccepted(), ends a connection when the test says so, and
 * answers unlisten() only when the test says so, as a real worker's answer comes after the news of every
 * connection it accepted before closing its listener.
 */
class AcceptingWorker {
  static count = 0;
  readonly id = ++AcceptingWorker.count;
  readonly ids = { threadId: this.id };
  load = 0;
  served = 0;
  retiring = false;
  dead = false;
  started = true;
  listening = false;
  pendingUnlisten: Promise<void> | undefined;
  onReport?: unknown;
  onAccepted?: (id: number, client: ClientAddress) => void;
  onServed?: unknown;
  onAcceptError?: unknown;
  /** Workers started while `AcceptingWorker.hold` is set become ready only when the test calls start(). */
  static hold = false;
  readonly start: () => void;
  readonly ready: Promise<void>;
  /** Why the pool ended it, and which of its connections were still running then (lost with it). */
  ended: string | undefined;
  lostWithIt: number[] = [];
  private readonly running = new Map<unknown, () => void>();
  private answerUnlisten: (() => void) | undefined;
  /** How many times the pool told it to stop accepting. */
  unlistened = 0;

  constructor() {
    let start = () => undefined as void;
    this.ready = AcceptingWorker.hold ? new Promise<void>((resolve) => (start = resolve)) : Promise.resolve();
    this.start = start;
  }

  listen(): Promise<void> {
    this.listening = true;
    return Promise.resolve();
  }

  unlisten(): Promise<void> {
    this.unlistened++;
    this.listening = false;
    this.pendingUnlisten = new Promise<void>((resolve) => {
      this.answerUnlisten = () => {
        this.pendingUnlisten = undefined;
        resolve();
      };
    });
    return this.pendingUnlisten;
  }

  /** The worker's answer to unlisten(): its listener is closed. */
  answer(): void {
    this.answerUnlisten?.();
  }

  accept(id: number): void {
    this.onAccepted!(id, { host: '127.0.0.1', port: 40000 - id, family: 'IPv4' });
  }

  /** Ends connection (or handed-over request) `key`. */
  finish(key: unknown): void {
    this.running.get(key)!();
  }

  runs(id: number): boolean {
    return this.running.has(id);
  }

  /** As RemoteSlot.adopt(): the connection's end goes to the pool's adoptedEnded(), in a microtask. */
  adopt(id: number, connection: unknown, server: unknown, ends: { adoptedEnded(...args: unknown[]): void }): void {
    void this.started_(id).then(() => ends.adoptedEnded(this, connection, server, undefined, undefined));
  }

  run(request: unknown): Promise<undefined> {
    return this.started_(request);
  }

  private started_(key: unknown): Promise<undefined> {
    return new Promise((resolve) =>
      this.running.set(key, () => {
        this.running.delete(key);
        resolve(undefined);
      }),
    );
  }

  end(why: string): Promise<void> {
    this.ended = why;
    this.lostWithIt = [...this.running.keys()] as number[];
    this.dead = true;
    return Promise.resolve();
  }

  kill(): Promise<void> {
    return this.end('killed');
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

  /** Its news comes with each call here: nothing to read later. */
  catchUp(): void {}
  /** Heard from as often as the others: never quiet (RemoteSlot.quietSince()). */
  heardAt = 0;
  quietSince(): boolean {
    return false;
  }
  wantEvents(): void {}
  setSecureContext(): Promise<void> {
    return Promise.resolve();
  }
  stopReading(): void {}
  draining(): void {}
}

/** Lets the pool's promise chains run (a few turns of the event loop). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

const server = {
  shutdownTimeout: null,
  serverAddress: { host: '127.0.0.1', port: 9 },
  handleError: () => undefined,
  shutdownRequest: () => undefined,
};

function pool(options: Partial<PoolOptions>, workers: AcceptingWorker[]): WorkerPoolStrategy {
  return fakePool(() => {
    const worker = new AcceptingWorker();
    workers.push(worker);
    return worker;
  }, options, 'Accepting');
}

describe('WorkerPoolStrategy retires a worker that accepts connections itself only once it has none', () => {
  let strategy: WorkerPoolStrategy | undefined;
  afterEach(async () => {
    await strategy?.close();
    strategy = undefined;
  });

  /** A pool whose workers accept for themselves (shareListener, startAccepting), kept for afterEach to close. */
  async function accepting(options: Partial<PoolOptions>, workers: AcceptingWorker[]): Promise<void> {
    strategy = pool(options, workers);
    await strategy.start();
    await strategy.shareListener({ address: { host: '127.0.0.1', port: 9, backlog: 511 } }, server as never);
    await strategy.startAccepting();
  }

  test('recycled (maxConnectionsPerThread): a connection it accepted before its listener closed is served, not lost', async () => {
    const workers: AcceptingWorker[] = [];
    await accepting({ maxConnectionsPerWorker: 1 }, workers);
    const [first] = workers;
    expect(first.listening).toBe(true);

    first.accept(-1); // its last connection: it is told to stop accepting
    await settle();
    expect(first.retiring).toBe(true);
    first.finish(-1); // it ends before the worker has answered: its listener may have taken another meanwhile
    await settle();
    first.accept(-2); // it had: that news comes before the answer
    first.answer();
    await settle();
    expect(first.ended).toBeUndefined(); // -2 is served first

    first.finish(-2);
    await settle();
    expect(first.ended).toBe('recycled');
    expect(first.lostWithIt).toEqual([]);
  });

  test('recycled while no other worker accepts: it goes on accepting until its successor listens, so there is no gap', async () => {
    const workers: AcceptingWorker[] = [];
    await accepting({ maxConnectionsPerWorker: 2 }, workers);
    const [first] = workers;
    AcceptingWorker.hold = true; // its successor takes its time to start
    try {
      first.accept(-1);
      first.accept(-2); // its count: a successor starts
      await settle();
      expect(workers.length).toBe(2);
      expect(first.retiring).toBe(true);
      expect(first.listening).toBe(true); // nobody else accepts yet: it goes on
      expect(first.unlistened).toBe(0);
      first.accept(-3); // past its count, served as any other
      first.finish(-1);
      first.finish(-2);
      first.finish(-3);
      await settle();
      expect(first.ended).toBeUndefined(); // it is still the one accepting

      workers[1].start(); // the successor is ready, and listens
      await settle();
      expect(workers[1].listening).toBe(true);
      expect(first.unlistened).toBe(1);
      first.answer();
      await settle();
      expect(first.ended).toBe('recycled');
      expect(first.lostWithIt).toEqual([]);
    } finally {
      AcceptingWorker.hold = false;
    }
  });

  test('recycled while another worker accepts: it stops accepting at its count', async () => {
    const workers: AcceptingWorker[] = [];
    await accepting({ warm: 2, maxConnectionsPerWorker: 2 }, workers);
    const [first, second] = workers;
    first.accept(-1);
    first.accept(-2);
    await settle();
    expect(first.unlistened).toBe(1);
    expect(second.listening).toBe(true);
  });

  test('idle above warm: it stops accepting first, and a connection taken meanwhile is served before it goes', async () => {
    const workers: AcceptingWorker[] = [];
    strategy = pool({ perWorker: 1, idleTimeoutMs: 20 }, workers);
    await strategy.start();
    // Two connections placed by the server (perWorker 1): the pool grows to two workers.
    const requests = [{}, {}];
    for (const request of requests) await strategy.dispatch(server as never, request as never, { host: '127.0.0.1', port: 1, family: 'IPv4' });
    await settle();
    expect(workers.length).toBe(2);
    await strategy.shareListener({ address: { host: '127.0.0.1', port: 9, backlog: 511 } }, server as never);
    await strategy.startAccepting();
    workers[0].finish(requests[0]);
    workers[1].finish(requests[1]);

    // Above warm, idle: after idleTimeoutMs one of the two stops accepting; the other stays (warm is 1).
    const deadline = Date.now() + 2000;
    while (!workers.some((w) => w.retiring) && Date.now() < deadline) await settle();
    const idle = workers.find((w) => w.retiring)!;
    expect(idle).toBeDefined();
    expect(idle.listening).toBe(false);
    idle.accept(-1); // taken before its listener closed, heard of before its answer
    idle.answer();
    await settle();
    expect(idle.ended).toBeUndefined();
    expect(workers.filter((w) => w.retiring)).toEqual([idle]);

    idle.finish(-1);
    await settle();
    expect(idle.ended).toBe('retired');
    expect(idle.lostWithIt).toEqual([]);
  });
});
