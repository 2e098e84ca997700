import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import type { ClientAddress } from '../transports/address';
import { processInBackground } from './process-in-background';
import type { RemoteRequest, RemoteServer, RemoteSlot } from './remote/remote-slot';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';

/** Failed starts in a row for a free place before the pool stops trying (until the next request). */
const START_ATTEMPTS = 3;

export interface PoolOptions {
  mode: 'threading' | 'forking';
  /** Workers kept warm (0 with perRequest). */
  warm: number;
  max: number;
  perRequest: boolean;
  idleTimeoutMs: number;
  /** Starts one worker; it reports its death through `onDeath`. */
  spawn: (onDeath: (slot: RemoteSlot) => void) => RemoteSlot;
}

/**
 * Requests on a pool of workers (threads or child processes), one request per worker at a time, so a
 * handler that burns CPU or blocks stalls nobody else. A warm pool grows to `max` when all are busy;
 * past that the loop stops taking requests, so new ones wait in the backlog. Workers above the warm
 * count retire after `idleTimeoutMs` idle; `perRequest` starts a fresh worker for every request, as
 * Python does. A worker that crashes, exits, or whose event loop stays blocked past `requestTimeout`
 * (its heartbeat stops) fails its own request only, and is replaced. A worker that cannot start (fork()
 * fails, or the module broke after start) is ended; after a few such starts in a row the requests
 * waiting for one fail with the reason. Past shutdown's timeout, abort() ends the workers still busy.
 */
export class WorkerPoolStrategy implements ConcurrencyStrategy<RemoteRequest> {
  private readonly slots = new Set<RemoteSlot>();
  private idle: RemoteSlot[] = [];
  private readonly waiters: Array<{ resolve: (slot: RemoteSlot) => void; reject: (err: Error) => void }> = [];
  private readonly running = new Map<Promise<void>, RemoteSlot>();
  private readonly idleTimers = new Map<RemoteSlot, NodeJS.Timeout>();
  private readonly warm: number;
  private readonly max: number;
  private closed = false;
  /** Between stopReading() (shutdown) and the end of drain(): requests that start now are told to stop too. */
  private stopping = false;

  constructor(
    private readonly options: PoolOptions,
    private readonly handlerName: string,
  ) {
    this.max = options.max;
    this.warm = options.perRequest ? 0 : Math.min(options.warm, this.max);
  }

  get active(): number {
    return this.running.size;
  }

  /** Live workers. */
  get workers(): number {
    return this.slots.size;
  }

  /** Starts the warm pool and proves the handler loads in a worker; a failure is a ConfigurationError. */
  async start(): Promise<void> {
    const first = Array.from({ length: Math.max(1, this.warm) }, () => this.spawn());
    try {
      await Promise.all(first.map((s) => s.ready));
    } catch (err) {
      await this.close();
      throw new ConfigurationError(messages.workerLoadFailed(this.handlerName, this.options.mode, (err as Error).message));
    }
    if (this.warm === 0) await Promise.all(first.map((s) => this.retire(s)));
    else this.idle.push(...first);
  }

  async dispatch(server: RequestProcessor<RemoteRequest>, request: RemoteRequest, clientAddress: ClientAddress): Promise<void> {
    const slot = await this.acquire();
    const requestTimeout = (server as { requestTimeout?: number | null }).requestTimeout ?? null;
    const run = processInBackground(
      {
        finishRequest: (r, a) => {
          const done = slot.run(r, a, requestTimeout, server as unknown as RemoteServer);
          if (this.stopping) slot.stopReading(); // it waited for a worker while shutdown began
          return done;
        },
        shutdownRequest: (r) => server.shutdownRequest(r),
        handleError: (r, a, e) => server.handleError(r, a, e),
      },
      request,
      clientAddress,
    ).finally(() => {
      this.running.delete(run);
      this.release(slot);
    });
    this.running.set(run, slot);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.keys());
    this.stopping = false; // the loop has stopped; a new serveForever() reads as usual
  }

  stopReading(): void {
    this.stopping = true;
    for (const slot of this.running.values()) slot.stopReading();
  }

  /** Ends the workers still running a request; each request fails as a crash, and the worker is replaced. */
  abort(): void {
    for (const slot of this.running.values()) void slot.kill();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    this.idle = [];
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.closedError());
    await Promise.all([...this.slots].map((s) => this.retire(s)));
  }

  private spawn(): RemoteSlot {
    const slot = this.options.spawn((dead) => this.onDeath(dead));
    this.slots.add(slot);
    return slot;
  }

  private async acquire(): Promise<RemoteSlot> {
    for (;;) {
      if (this.closed) throw this.closedError();
      const idle = this.idle.pop();
      if (idle) {
        clearTimeout(this.idleTimers.get(idle));
        this.idleTimers.delete(idle);
        if (!idle.dead) return idle;
        continue;
      }
      if (this.slots.size < this.max) {
        let slot: RemoteSlot | undefined;
        try {
          slot = this.spawn();
          await slot.ready;
          return slot;
        } catch (err) {
          if (slot) void this.retire(slot);
          this.replace(); // its place may be one a waiting request counts on
          throw this.startError(err as Error);
        }
      }
      return new Promise<RemoteSlot>((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
  }

  private closedError(): Error {
    return new Error(`the ${this.options.mode} pool is closed`);
  }

  private startError(err: Error): Error {
    return new Error(messages.workerStartFailed(this.handlerName, this.options.mode, err.message));
  }

  private release(slot: RemoteSlot): void {
    if (slot.dead) return;
    if (this.closed) {
      void this.retire(slot);
      return;
    }
    if (this.options.perRequest) {
      void this.retire(slot);
      this.replace(); // a request waiting for this place gets a fresh worker
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) return waiter.resolve(slot);
    this.idle.push(slot);
    if (this.idle.length > this.warm) this.armIdleTimer(slot);
  }

  /** A worker idle above the warm count retires after idleTimeoutMs, unless the pool has shrunk to warm by then. */
  private armIdleTimer(slot: RemoteSlot): void {
    const timer = setTimeout(() => {
      this.idleTimers.delete(slot);
      if (this.slots.size <= this.warm) return;
      this.idle = this.idle.filter((s) => s !== slot);
      void this.retire(slot);
    }, this.options.idleTimeoutMs);
    timer.unref();
    this.idleTimers.set(slot, timer);
  }

  /** Removes a worker on purpose (idle, perRequest, close); its exit is then no death to make up for. */
  private async retire(slot: RemoteSlot): Promise<void> {
    this.slots.delete(slot);
    await slot.kill();
  }

  /** A worker died (crash, exit, watchdog): keep the warm pool warm and let a waiting request go on. */
  private onDeath(slot: RemoteSlot): void {
    if (!this.slots.delete(slot)) return; // retired: whoever retired it has seen to its place
    this.idle = this.idle.filter((s) => s !== slot);
    clearTimeout(this.idleTimers.get(slot));
    this.idleTimers.delete(slot);
    if (slot.started) this.replace(); // one that died starting is seen to where it was started
  }

  /**
   * A place in the pool came free: start a worker in it when the warm pool is short or a request waits.
   * A worker that cannot start or load is ended and another tried, START_ATTEMPTS in all; then the
   * waiting requests fail with the reason (a later request tries again).
   */
  private replace(attempt = 1): void {
    if (this.closed || this.slots.size >= this.max) return;
    if (this.slots.size >= this.warm && this.waiters.length === 0) return;
    let fresh: RemoteSlot;
    try {
      fresh = this.spawn();
    } catch (err) {
      return this.failWaiters(err as Error); // new Worker() or fork() threw: so would another try, now
    }
    fresh.ready.then(
      () => {
        if (fresh.dead) return; // it died at once, and its death has been seen to
        // Straight to a waiting request: release() would retire a perRequest worker before it served anyone.
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(fresh);
        else this.release(fresh);
      },
      (err: Error) => {
        void this.retire(fresh);
        if (attempt < START_ATTEMPTS) return this.replace(attempt + 1);
        this.failWaiters(err);
      },
    );
  }

  private failWaiters(err: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.startError(err));
  }
}
