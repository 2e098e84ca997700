import type * as net from 'node:net';
import { ResourceLimits, Worker, WorkerOptions } from 'node:worker_threads';
import { workerYoungGenerationMb } from './young-generation';
import { canTransferTcpSockets } from '../../runtime';
import type { FromWorker, ToWorker, WorkerSpec } from './protocol';
import { MessageBatch } from './message-batch';
import { RemoteSlot } from './remote-slot';
import type { WorkerLaunch } from './worker-launch';

/** Milliseconds a responsive thread has to exit by itself when the pool ends it, before terminate(). */
const SELF_EXIT_MS = 1000;

/** The messages a thread's MessageBatch gathers: those of relayed connections and datagrams, built by sockserve. */
const BATCHED = new Set<ToWorker['t']>(['stream', 'data', 'eof', 'written', 'stop', 'dgram']);

/**
 * A worker thread. Where Node can move an accepted TCP socket into a worker (24.21+, 26.6+), the
 * connection is handed over and its bytes never cross threads; otherwise (Node 20 and 22, and Unix
 * stream sockets everywhere) the main thread bridges them.
 */
export class ThreadSlot extends RemoteSlot {
  private readonly worker: Worker;
  private readonly batch: MessageBatch<ToWorker>;

  constructor(spec: WorkerSpec, launch: WorkerLaunch, onDeath: (slot: RemoteSlot) => void, heartbeatTimeout: number, resourceLimits?: ResourceLimits) {
    super('threading', onDeath, heartbeatTimeout);
    this.messageHandler = spec.messages === true;
    // Each thread's own young generation, by default a small one (young-generation.ts).
    const young = workerYoungGenerationMb(resourceLimits);
    const limits = young !== undefined ? { ...resourceLimits, maxYoungGenerationSizeMb: young } : resourceLimits;
    this.worker = startThread(launch.file, launch.execArgv, { workerData: { ...spec, datagramsTaken: this.taken.buffer }, ...(limits ? { resourceLimits: limits } : {}) });
    this.threadId = this.worker.threadId;
    this.batch = new MessageBatch<ToWorker>(
      (msg, transfer) => !this.dead && this.worker.postMessage(msg, transfer),
      (msg, err) => 'id' in msg && this.lost(msg.id, err),
    );
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg)); // the thread posts each message at once
    this.worker.on('error', (err) => {
      // The thread is ending (an uncaught error, its heap limit): no new connection goes to it meanwhile.
      this.lastError = err;
      this.leaving = true;
    });
    // terminate() makes a thread exit with code 1, which would read as a failure: say what happened.
    this.worker.once('exit', (code) => {
      this.threadExited = true;
      this.onExit(this.terminated ? 'was terminated' : `exited with code ${code}`, this.terminated ? {} : { code });
    });
  }

  /**
   * Cell 0: the id of the last datagram the thread took from its port (WorkerSpec.datagramsTaken, datagrams-taken.ts),
   * read once the thread has exited (onExit), when its last store is visible.
   */
  private readonly taken = new Float64Array(new SharedArrayBuffer(8));

  protected override lastDatagramTaken(): number {
    return this.taken[0]!;
  }

  /** The thread's 'exit' has come. */
  private threadExited = false;

  /** The thread's id, kept: Worker.threadId reads -1 once the thread has exited. */
  private readonly threadId: number;

  get id(): number {
    return this.threadId;
  }

  get ids(): { threadId: number } {
    return { threadId: this.threadId };
  }

  /** Set by kill(): the thread was ended by terminate(), by the pool or its watchdog. */
  private terminated = false;

  /**
   * Ends the thread. A responsive one is asked to exit by itself first (process.exit() there, within
   * SELF_EXIT_MS): terminate() cut off its console output still on its way to the main thread (a singleton's
   * dispose() logging three lines showed one: hostile run). terminate() ends the rest, a blocked one too.
   */
  async kill(unresponsive = false): Promise<void> {
    const askable = !unresponsive && !this.dead && this.started && !this.threadExited;
    if (askable) {
      this.batch.flush();
      this.worker.postMessage({ t: 'exit' } satisfies ToWorker);
    }
    this.dead = true;
    this.terminated = true;
    if (askable && (await this.exitsWithin(SELF_EXIT_MS))) return;
    await this.worker.terminate();
  }

  /** Resolves true once the thread has exited, false after `ms`. */
  private exitsWithin(ms: number): Promise<boolean> {
    if (this.threadExited) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * A relayed connection's traffic (and a datagram, and a bridged connection's start) waits for the end of
   * this turn of the event loop, to cross with the rest (MessageBatch); anything else goes at once, after
   * what waits, and throws here if it cannot be cloned.
   */
  protected post(msg: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.dead) return;
    if (BATCHED.has(msg.t)) return this.batch.post(msg, transfer); // a 'stream' here is a bridged one: owned ones go by handOver()
    this.batch.flush();
    this.worker.postMessage(msg, transfer ?? []);
  }

  protected postListen(msg: ToWorker & { t: 'listen' }): void {
    this.post(msg); // a thread listens on the address itself, with reusePort
  }

  protected handOver(msg: ToWorker & { t: 'stream' }, socket: net.Socket): boolean {
    if (this.dead || !canTransferTcpSockets() || socket.remotePort === undefined) return false;
    try {
      this.batch.flush(); // what was posted before goes first
      this.worker.postMessage({ ...msg, socket }, [socket as never]);
      return true;
    } catch {
      return false; // not transferable after all (read from, or an older line): bridge it instead
    }
  }
}

/** Flags of the process that a worker thread refused (ERR_WORKER_INVALID_EXEC_ARGV), left out from then on. */
const refusedFlags = new Set<string>();

/**
 * `new Worker(file)` with the process's flags (worker-launch.ts), less any a thread refuses: Node accepts
 * only per-thread options there, and which those are varies by line. A refused flag is named in Node's
 * message; it is left out and the start tried again (the process's own V8 flags already hold in the
 * thread). A refusal that names no flag this call passed is thrown as it came.
 */
export function startThread(file: string, execArgv: readonly string[], options: WorkerOptions): Worker {
  for (;;) {
    const argv = execArgv.filter((flag) => !refusedFlags.has(flag));
    try {
      return new Worker(file, { ...options, execArgv: argv });
    } catch (err) {
      const named = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? /flags: (.*)$/.exec((err as Error).message)?.[1]?.split(', ') ?? [] : [];
      const refused = named.filter((flag) => argv.includes(flag));
      if (refused.length === 0) throw err;
      for (const flag of refused) refusedFlags.add(flag);
    }
  }
}
