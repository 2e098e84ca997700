import type * as net from 'node:net';
import { availableParallelism } from 'node:os';
import type { DatagramRequestTuple } from '../classic/request-handler';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import type { ThreadingOptions } from '../metadata/definition';
import type { ClientAddress } from '../transports/address';
import { processInBackground } from './process-in-background';
import type { WorkerSpec } from './remote/protocol';
import { ThreadSlot } from './remote/thread-slot';
import { WorkerLaunch } from './remote/worker-launch';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';

type RemoteRequest = net.Socket | DatagramRequestTuple;

/**
 * Python's ThreadingMixIn on real threads: each request runs in a worker thread, one request per thread
 * at a time, so a handler that burns CPU or blocks its thread stalls nobody else. A warm pool of
 * `threads` (default: one per core) grows to `maxThreads` (64) when all are busy; past that the loop
 * stops taking requests, so new ones wait in the backlog. Threads above the warm count retire after
 * `idleTimeoutMs` idle. `perRequest` starts a fresh thread for every request, as Python does.
 * A thread that crashes, exits or goes silent past `requestTimeout` fails its own request only.
 */
export class ThreadingStrategy implements ConcurrencyStrategy<RemoteRequest> {
  private readonly slots = new Set<ThreadSlot>();
  private idle: ThreadSlot[] = [];
  private readonly waiters: Array<(slot: ThreadSlot) => void> = [];
  private readonly running = new Map<Promise<void>, ThreadSlot>();
  private readonly idleTimers = new Map<ThreadSlot, NodeJS.Timeout>();
  private readonly warm: number;
  private readonly max: number;
  private closed = false;

  constructor(
    private readonly spec: WorkerSpec,
    private readonly launch: WorkerLaunch,
    private readonly options: ThreadingOptions,
    private readonly handlerName: string,
  ) {
    this.max = options.maxThreads ?? 64;
    this.warm = options.perRequest ? 0 : Math.min(options.threads ?? availableParallelism(), this.max);
  }

  get active(): number {
    return this.running.size;
  }

  /** Live worker threads. */
  get workers(): number {
    return this.slots.size;
  }

  /** Starts the warm pool and proves the handler loads in a thread; a failure is a ConfigurationError. */
  async start(): Promise<void> {
    const first = Array.from({ length: Math.max(1, this.warm) }, () => this.spawn());
    try {
      await Promise.all(first.map((s) => s.ready));
    } catch (err) {
      await this.close();
      throw new ConfigurationError(messages.workerLoadFailed(this.handlerName, 'threading', (err as Error).message));
    }
    if (this.warm === 0) await Promise.all(first.map((s) => this.retire(s)));
    else this.idle.push(...first);
  }

  async dispatch(server: RequestProcessor<RemoteRequest>, request: RemoteRequest, clientAddress: ClientAddress): Promise<void> {
    const slot = await this.acquire();
    const requestTimeout = (server as { requestTimeout?: number | null }).requestTimeout ?? null;
    const run = processInBackground(
      {
        finishRequest: (r, a) => slot.run(r, a, requestTimeout),
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
  }

  stopReading(): void {
    for (const slot of this.running.values()) slot.stopReading();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    this.idle = [];
    await Promise.all([...this.slots].map((s) => this.retire(s)));
  }

  private spawn(): ThreadSlot {
    const slot = new ThreadSlot(this.spec, this.launch, (dead) => this.onDeath(dead));
    this.slots.add(slot);
    return slot;
  }

  private async acquire(): Promise<ThreadSlot> {
    for (;;) {
      if (this.closed) throw new Error('the threading pool is closed');
      const idle = this.idle.pop();
      if (idle) {
        clearTimeout(this.idleTimers.get(idle));
        this.idleTimers.delete(idle);
        if (!idle.dead) return idle;
        continue;
      }
      if (this.slots.size < this.max) {
        const slot = this.spawn();
        await slot.ready;
        return slot;
      }
      return new Promise<ThreadSlot>((resolve) => this.waiters.push(resolve));
    }
  }

  private release(slot: ThreadSlot): void {
    if (slot.dead) return;
    if (this.options.perRequest || this.closed) {
      void this.retire(slot);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) return waiter(slot);
    this.idle.push(slot);
    if (this.slots.size > this.warm) {
      const timer = setTimeout(() => {
        this.idle = this.idle.filter((s) => s !== slot);
        void this.retire(slot);
      }, this.options.idleTimeoutMs ?? 30_000);
      timer.unref();
      this.idleTimers.set(slot, timer);
    }
  }

  private async retire(slot: ThreadSlot): Promise<void> {
    this.slots.delete(slot);
    await slot.terminate();
  }

  /** A worker died (crash, exit, watchdog): keep the warm pool warm and let a waiting request go on. */
  private onDeath(slot: ThreadSlot): void {
    this.slots.delete(slot);
    this.idle = this.idle.filter((s) => s !== slot);
    if (this.closed) return;
    if (this.slots.size < this.warm || this.waiters.length > 0) {
      const fresh = this.spawn();
      fresh.ready.then(
        () => this.release(fresh),
        () => this.slots.delete(fresh),
      );
    }
  }
}
