import { ChildProcess, spawn } from 'node:child_process';
import type * as net from 'node:net';
import type { ResourceLimits } from 'node:worker_threads';
import { semiSpaceFlag, workerYoungGenerationMb } from './young-generation';
import { CHILD_ENV } from '../../runtime';
import type { FromWorker, ToWorker, WorkerSpec } from './protocol';
import { RemoteSlot } from './remote-slot';
import { BOOKKEEPING_FD, BookkeepingReader } from './bookkeeping';
import { TAKEN_FD, TakenFile } from './datagrams-taken';
import type { WorkerLaunch } from './worker-launch';
import { parentDeathCommand } from './parent-death';

/** How long a child gets to exit on SIGTERM at close() before SIGKILL. */
const KILL_GRACE_MS = 2000;
/**
 * Milliseconds between reads of a child's bookkeeping (bookkeeping.ts) while records come; doubled up to
 * BOOKKEEPING_IDLE_MS while none do. Each read wakes the server's process on a core the children may share:
 * measured (connection rate, 4 clients, two children and the server pinned to one core, 2026-12-02), 20 ms
 * served 21–36 % more connections a second than 5 ms, the server's CPU per connection halved, and 50 ms
 * gained nothing more. What needs the counts now reads them at once (stats(), a message from the child).
 */
const BOOKKEEPING_MS = 20;
const BOOKKEEPING_IDLE_MS = 200;

/**
 * A child process. Connections are handed over whole (`child.send(msg, socket)`: the kernel passes the
 * descriptor and the parent's copy is closed), so their bytes never pass through the parent. The child
 * exits when its IPC channel closes, and on Linux the kernel kills it when the server's process dies
 * (parent-death.ts), so it never outlives the server, even one killed by SIGKILL while the child is blocked.
 */
export class ChildSlot extends RemoteSlot {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  /**
   * Sockets given to child.send() that the child has not said it has (`took`), by request id. A child that dies
   * before reading the message (out of memory, killed) leaves the send unfinished; with `keepOpen: false` Node
   * has already taken the descriptor from the socket and never closes it, so the connection stayed open in this
   * process and its client waited forever. We keep the socket whole and close it ourselves once the child has
   * it; at the child's exit, those it never took go to another worker (notTaken).
   */
  private readonly sending = new Map<number, net.Socket>();
  /** The child's bookkeeping channel (bookkeeping.ts): our end of the socket pair, and its reader. */
  private readonly side: net.Socket | undefined;
  private readonly bookkeeping: BookkeepingReader | undefined;
  private bookkeepingTimer: NodeJS.Timeout | undefined;

  constructor(spec: WorkerSpec, launch: WorkerLaunch, onDeath: (slot: RemoteSlot) => void, heartbeatTimeout: number, resourceLimits?: ResourceLimits) {
    super('forking', onDeath, heartbeatTimeout);
    this.taken = spec.datagrams && process.platform !== 'win32' ? TakenFile.open() : undefined;
    // resourceLimits as V8 flags: the old generation's cap, and the young one's (by default a small one for
    // every worker, young-generation.ts).
    const heap = resourceLimits?.maxOldGenerationSizeMb;
    const young = workerYoungGenerationMb(resourceLimits);
    const execArgv = [
      ...launch.execArgv.filter((a) => !(heap && a.startsWith('--max-old-space-size=')) && !(young && a.startsWith('--max-semi-space-size='))),
      ...(heap ? [`--max-old-space-size=${heap}`] : []),
      ...(young ? [semiSpaceFlag(young)] : []),
    ];
    // What fork() does (spawn with an IPC channel), started through `setpriv --pdeathsig KILL` where Linux has it:
    // a child blocked in a handler cannot see its channel close, and must not outlive a server killed outright.
    const [command, ...prefix] = [...(parentDeathCommand() ?? []), process.execPath];
    this.child = spawn(command, [...prefix, ...execArgv, launch.file], {
      // UV_TCP_SINGLE_ACCEPT (libuv): a child that accepts from the shared socket takes one connection per
      // wake-up and lets the others take the next, rather than all that are queued (unless the user says).
      env: { UV_TCP_SINGLE_ACCEPT: '1', ...process.env, [CHILD_ENV]: '1' },
      serialization: 'advanced',
      // BOOKKEEPING_FD: a socket pair for the bookkeeping of the connections the child accepts itself.
      // TAKEN_FD: the record of the last datagram the child took (datagrams-taken.ts).
      stdio: process.platform === 'win32' ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc', 'pipe', this.taken?.fd ?? 'ignore'],
    });
    this.child.on('error', (err) => (this.lastError = err));
    if (this.child.pid === undefined) {
      this.taken?.close();
      // spawn failed (EMFILE, EAGAIN…): no process, no channel (no send), no 'exit'; 'error' says why.
      this.exited = Promise.resolve();
      this.dead = true;
      this.child.once('error', (err) => this.startFailed(err));
      return;
    }
    // Our end is read without waiting, when we choose, never polled: stop the read Node's socket started.
    this.side = this.child.stdio[BOOKKEEPING_FD] as net.Socket | undefined;
    const handle = (this.side as unknown as { _handle?: { fd?: number; readStop?: () => number } } | undefined)?._handle;
    if (handle && typeof handle.fd === 'number' && handle.fd >= 0 && typeof handle.readStop === 'function') {
      handle.readStop();
      this.bookkeeping = new BookkeepingReader(handle.fd, (msg) => this.onMessage(msg));
    }
    this.side?.on('error', () => undefined);
    this.child.send({ t: 'init', spec, ...(this.bookkeeping ? { bookkeepingFd: BOOKKEEPING_FD } : {}), ...(this.taken ? { takenFd: TAKEN_FD } : {}) }, undefined, {}, () => undefined);
    // Its channel closed: it is exiting (a child killed by a signal says no `leaving`); its 'exit' may come later.
    this.child.once('disconnect', () => (this.leaving = true));
    this.child.on('message', (msg: FromWorker) => {
      this.bookkeeping?.drain(); // what the child wrote before this message comes first
      if (msg.t === 'took') return this.tookOver(msg.id);
      this.onMessage(msg);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        // Gone, whatever its channel still holds: no new connection goes to it meanwhile (a child killed by a
        // signal says no `leaving`).
        this.leaving = true;
        let seen = false;
        const ended = () => {
          if (seen) return;
          seen = true;
          this.closeBookkeeping(); // every record the child wrote, read before its connections are failed
          // Sent but not taken: their descriptors never reached the child, and go to another worker.
          for (const socket of this.sending.values()) this.notTaken(socket);
          this.sending.clear();
          this.onExit(signal ? killedBy(signal, heap) : `exited with code ${code}`, { code, signal });
          this.taken?.close();
          resolve();
        };
        // A child that failed to load, or met an uncaught exception, sends why, then exits: its 'exit' can be
        // seen before that message is read. The IPC channel is drained first (bounded), so the reason is not lost.
        if (!this.child.connected) return ended();
        const timer = setTimeout(ended, 1000);
        this.child.once('disconnect', () => {
          clearTimeout(timer);
          ended();
        });
      }),
    );
  }

  get id(): number {
    return this.child.pid ?? -1;
  }

  /**
   * The record of the last datagram the child took from its IPC channel (datagrams-taken.ts); its own descriptor
   * here. Only for a datagram transport: a stream server's children never take a datagram.
   */
  private readonly taken: TakenFile | undefined;

  protected override lastDatagramTaken(): number {
    return this.taken?.read() ?? Infinity;
  }

  /** Reads the bookkeeping the child has written (stats() wants it current). */
  catchUp(): void {
    this.bookkeeping?.drain();
  }

  /** Reads the bookkeeping every BOOKKEEPING_MS while records come, backing off to BOOKKEEPING_IDLE_MS while none do. */
  private readBookkeepingEvery(ms: number): void {
    if (!this.bookkeeping || this.bookkeepingTimer) return;
    this.bookkeepingTimer = setTimeout(() => {
      this.bookkeepingTimer = undefined;
      if (this.dead) return;
      const got = this.bookkeeping!.drain();
      this.readBookkeepingEvery(got > 0 ? BOOKKEEPING_MS : Math.min(ms * 2, BOOKKEEPING_IDLE_MS));
    }, ms);
    this.bookkeepingTimer.unref();
  }

  /** The child has exited: its last records, then our end of the pair is closed. */
  private closeBookkeeping(): void {
    clearTimeout(this.bookkeepingTimer);
    this.bookkeeping?.drain();
    this.bookkeeping?.close();
    this.side?.destroy();
  }

  get ids(): { pid: number } {
    return { pid: this.id };
  }

  /**
   * Ends the child and waits until it has been reaped: its IPC channel closed (on which it exits) and SIGTERM
   * (on which it exits once the channel is gone: child-main.ts), then SIGKILL after a grace period (a child
   * whose event loop is blocked runs neither). `unresponsive`: its heartbeat stopped (heartbeatTimeout
   * of silence), or it left the pool's abandon unanswered at shutdownTimeout or at a close a second signal asked
   * for: SIGKILL at once, as waiting out the grace ends nothing sooner. So is a child that has not
   * started yet (still loading the handler's module): it has served nothing, and one whose load blocked its
   * event loop finished loading in the grace and served a request handed to it after shutdown's timeout,
   * which then took 2 s longer than shutdownTimeout (hostile re-check).
   */
  async kill(unresponsive = false): Promise<void> {
    if (!this.dead) this.bookkeeping?.drain(); // the connections it holds, known before they are failed
    this.dead = true;
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      if (this.child.connected) this.child.disconnect();
      this.child.kill(unresponsive || !this.started ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), KILL_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }

  protected post(msg: ToWorker): void {
    if (!this.dead && this.child.connected) this.child.send(msg, undefined, {}, () => undefined);
  }

  protected postListen(msg: ToWorker & { t: 'listen' }, handle: unknown): void {
    // The listening socket's descriptor goes along (SCM_RIGHTS): the child accepts from the same socket.
    if (!this.dead && this.child.connected) this.child.send(msg, handle as net.Server | undefined, {}, () => undefined);
    if (!msg.prime) this.readBookkeepingEvery(BOOKKEEPING_MS); // it accepts: its news comes by the bookkeeping channel
  }

  protected handOver(msg: ToWorker & { t: 'stream' }, socket: net.Socket): boolean {
    if (this.dead || !this.child.connected) return false;
    // The kernel passes the descriptor; the parent's copy (paused since accept: it reads nothing) is closed
    // once sent, or when the child exits without having taken it.
    // Kept here until the child says it has it (`took`): a child killed between the send and its read lost
    // the connection with it, the client reset (hostile re-check: a SIGKILL, 4 of 4 with connectionsPerChild 1).
    this.sending.set(msg.id, socket);
    this.child.send(msg, socket, { keepOpen: true }, (err) => {
      if (!err || this.sending.get(msg.id) !== socket) return;
      this.sending.delete(msg.id);
      this.notTaken(socket); // the channel was closed: the child is gone, the descriptor still here
    });
    return true;
  }

  /** The child has connection `id`'s descriptor: our copy (paused since its accept, never read) is closed. */
  private tookOver(id: number): void {
    const socket = this.sending.get(id);
    if (!socket) return;
    this.sending.delete(id);
    socket.destroy();
  }
}

/**
 * A child's death by `signal`, in words. SIGABRT and SIGTRAP are how V8 ends a process whose heap reached its limit
 * (after a `FATAL ERROR: … heap limit` report on the child's stderr): said so, with the limit when resourceLimits set
 * one, as a thread's death says "reaching memory limit" (a hostile run read only "was killed by SIGABRT").
 * @param heapMb resourceLimits.maxOldGenerationSizeMb, if any.
 */
export function killedBy(signal: NodeJS.Signals, heapMb: number | undefined): string {
  if (signal !== 'SIGABRT' && signal !== 'SIGTRAP') return `was killed by ${signal}`;
  const limit = heapMb ? `resourceLimits.maxOldGenerationSizeMb, ${heapMb} MB` : "Node's default heap limit";
  return `was killed by ${signal}, as V8 ends a process that runs out of memory (${limit}; its FATAL ERROR report is then on the child's stderr), or as process.abort() does`;
}
