import type * as net from 'node:net';
import type { DatagramRequestTuple } from '../../classic/request-handler';
import { RequestTimeoutError, WorkerCrashedError } from '../../errors/errors';
import { messages } from '../../errors/messages';
import { ClientAddress, nameClient } from '../../transports/address';
import { afterPollPhase } from '../../transports/event-loop';
import type { SecureContextOptions } from 'node:tls';
import { canHandOver, preambleDeferred, preambleFacts } from '../../transports/connection-preamble';
import { peekCloseAsked, peekHeldSince } from '../../transports/connection-stamps';
import type { DropKind } from '../../transports/stream-listener';
import { closedByServer, destroyUndelivered, writeThrough, WRITE_STALLED } from '../../transports/stream-writer';
import type { WorkerReport } from '../../observability/worker-report';
import { recordHandedOverBytes, recordWorker, recordWorkerDuration, streamBytes } from '../../observability/connection-bytes';
import { plainError, RequestEndData, requestEndObserved } from '../../observability/events';
import { endedHealthCheck } from '../../observability/health-check';
import { republishWorkerEvents } from '../../observability/worker-report';
import { performance } from 'node:perf_hooks';
import { BRIDGE_WINDOW, ClosingAs, deserializeError, DroppedInWorker, FromWorker, ownBytes, replySent, serializeError, ToWorker, UnreadConnection } from './protocol';

/** Seconds a worker may take to become ready (load the handler's module) at the least, whatever heartbeatTimeout is. */
const START_BOUND_MIN_S = 30;

/**
 * START_BOUND_MIN_S, or, for sockserve's own tests only, the seconds in SOCKSERVE_TEST_START_BOUND_S: the test of
 * the bound waited it out whole, 30 s on each Node line CI runs.
 */
function startBoundMin(): number {
  const forTests = Number(process.env.SOCKSERVE_TEST_START_BOUND_S);
  return forTests > 0 ? forTests : START_BOUND_MIN_S;
}

/** Milliseconds of a worker's dispose() budget kept for its answer to reach the pool. */
const DISPOSE_ANSWER_MS = 250;

/** Milliseconds between looks at whether an abandoning worker has sent back every connection (abandon()). */
const ABANDON_POLL_MS = 10;

interface Running {
  id: number;
  /** How run()'s promise settles; a connection the worker accepted itself ends through `ends` instead. */
  resolve?: (dropped?: DroppedInWorker) => void;
  reject?: (err: Error) => void;
  /** A connection the worker accepted itself (adopt()): where its end goes. */
  ends?: AdoptedEnds;
  /** Bridged stream requests: the connection, a function that detaches it from the worker, and the worker's acks. */
  socket?: net.Socket;
  /** The bridged connection's own failure (ECONNRESET…), so the worker's writes fail with it, code and all. */
  socketError?: Error;
  /**
   * Bytes the worker wrote reached the bridged connection after the server's close() had closed it (the worker
   * counts a write done when it sends it): the reply was lost, and the request ends with why (closedByServer).
   */
  lostToClose?: Error;
  detach?: () => void;
  ack?: (bytes: number) => void;
  /** Bytes of the worker's writes handed to the kernel and not yet reported to it ('written' is cumulative). */
  unreported?: number;
  /** Datagram requests: sends the reply to the client. */
  reply?: (bytes: Uint8Array) => Promise<void>;
  /** The reply the worker sent ahead of its `done` ('reply'), on its way: its size, and the send's error if it failed. */
  replying?: { bytes: number; failed: Promise<{ error: unknown } | undefined> };
  /** A datagram a child read and answered itself, ahead of its `done` ('replied'): the bytes of the reply that left. */
  replied?: number;
  /** The server the request came to: its address goes to the worker, and the worker may ask it to shut down. */
  server?: RemoteServer;
  /** The request as the server knows it: a shutdown it asks for does not wait for it. */
  request: RemoteRequest;
  /** Its client, and when it was handed to the worker (performance.now()): its request.end if the worker dies. */
  client: ClientAddress;
  at: number;
}

/** What a worker's request sees of the server: its (classic) address, and shutdown(). */
export interface RemoteServer {
  serverAddress: unknown;
  shutdown(): unknown;
  /** shutdown() on behalf of `request`, which it does not wait for (BaseServer.shutdownFromRequest). */
  shutdownFromRequest?(request: RemoteRequest): Promise<void>;
  /** Who closes it, once close() has begun (BaseServer.closingAs). */
  closingAs?(): ClosingAs;
  /** SIGTERM's drainDelay is on: a worker running a connection's preamble closes PROXY LOCAL health checks unanswered. */
  readonly edgeDraining?: boolean;
  /**
   * A connection handed over unread ended in its worker before its lifecycle: `counted` (this process
   * accepted it, and counted it then). StreamServer.connectionDropped.
   */
  connectionDropped?(kind: DropKind, client: ClientAddress, error: unknown, counted: boolean): unknown;
  /** A worker accepted a connection itself (API.md §3): counted and published as one the loop took. */
  workerAccepted?(connection: WorkerAcceptedConnection, client: ClientAddress, unopened?: boolean): void;
  /** The preamble of `connection` passed in its worker (`opened`): its connection.open, with the client the PROXY header names. */
  workerOpened?(connection: object, client: ClientAddress): void;
  /** The server's limits count each connection until its socket closes, wherever it is (the `stream` message's `counted`). */
  readonly countsConnections?: boolean;
  /** The request of `connection` has ended in its worker, whose socket of it still lingers for the client's FIN: it still counts. */
  workerSocketLingers?(connection: object): void;
  /** That socket has closed in the worker (or the worker has ended): it no longer counts. */
  workerSocketClosed?(connection: object): void;
  /** That connection has ended (its bytes recorded against it): counted and published as closed. */
  connectionEnded?(connection: WorkerAcceptedConnection): void;
  /** A child read a datagram from the shared UDP socket and served it (`bytes`: in, out): counted as one the loop took. */
  datagramServed?(client: ClientAddress, bytes: [number, number]): void;
  /** A worker that accepts could not, for lack of descriptors (StreamServer.acceptError: counted, logged once per burst). */
  acceptError?(error: NodeJS.ErrnoException, first: boolean): void;
  /**
   * The @HandleError of a request the pool abandoned while it ran failed afterwards in its worker ('hook-failed'):
   * reported the default way, counted nowhere (the request was, with its `done`).
   */
  reportHookFailure?(error: unknown, client: ClientAddress): unknown;
}

/**
 * A connection a worker accepted itself (API.md §3), as the server's process knows it: its client, and the
 * bytes the worker reports at its end (recordHandedOverBytes), so stats() and connection.close count it.
 */
export class WorkerAcceptedConnection {
  readonly bytesRead = 0;
  readonly bytesWritten = 0;
  /**
   * A datagram's length, as the child that read it said with its `accepted`: what its end counts in bytesIn
   * when the child dies before its `done` (which would carry it), as a handed-over datagram counts its own.
   */
  datagramBytes = 0;
  /** Set once the pool has ended it (markEnded); a promise of it is made only when one is asked for (ended()). */
  private over: boolean | (() => void) = false;
  private endedPromise: Promise<void> | undefined;

  /** `datagram`: one datagram a child read from the shared UDP socket (and answered itself), not a connection. */
  constructor(readonly clientAddress: ClientAddress, readonly datagram = false) {}

  /**
   * Resolves once the pool has ended this connection: what a drain waits for. Made on demand, so an idle
   * connection holds no promise (a pool can hold 10,000 of them, API.md §3).
   */
  ended(): Promise<void> {
    if (this.over === true) return Promise.resolve();
    this.endedPromise ??= new Promise<void>((resolve) => (this.over = resolve));
    return this.endedPromise;
  }

  /** The pool has ended it (its error reported, its counts taken): ended() resolves. */
  markEnded(): void {
    const settle = this.over;
    this.over = true;
    if (typeof settle === 'function') settle();
  }
}

/**
 * Where the end of a connection a worker accepted itself goes (the pool, WorkerPoolStrategy), called in a
 * microtask after the worker's `done` or death: `error` it failed with, or how it was `dropped`. A callback,
 * not a promise per connection: an idle connection then costs the server's process one small record.
 */
export interface AdoptedEnds {
  adoptedEnded(slot: RemoteSlot, connection: WorkerAcceptedConnection, server: RemoteServer | undefined, error: Error | undefined, dropped: DroppedInWorker | undefined): void;
}

export type RemoteRequest = net.Socket | DatagramRequestTuple | WorkerAcceptedConnection;

/**
 * One worker (a thread or a child process) and the connections it serves, seen from the server. A
 * worker is an event loop: it serves any number of connections at once, each known by its id.
 * Subclasses say how messages travel and whether a connection can be handed over whole; this class
 * keeps each connection's bookkeeping, the byte bridge for connections that stay in the main thread,
 * the datagram reply, the heartbeat watchdog, and the crash path (a worker that dies fails its own
 * connections only, each with a WorkerCrashedError).
 *
 * The watchdog is fed by every message from the worker, and the worker reports at least every
 * `reportMs`: a worker silent for `heartbeatTimeout` seconds has a blocked event loop and is ended.
 * Silent means that nothing it said has come, not only that nothing has been read: when the timer
 * fires, what the kernel holds from the worker is read first (a server whose own main thread was
 * blocked finds its workers' reports waiting, and keeps them).
 */
/**
 * run()'s rejection for a connection handed over that never reached its worker (it died first): the socket is
 * still the server's, unread, and the pool places it on another worker.
 */
export class NotTakenError extends Error {
  /**
   * A datagram's: publishes its `request.end` with `error`, should the pool give up placing it (every request ends
   * once on the channels, API.md §14: those given up after three placements ended on none, hostile re-check).
   */
  publishEnd: ((error: Error) => void) | undefined;

  constructor() {
    super('the worker died before it took the connection');
    this.name = 'NotTakenError';
  }
}

/** Why a worker died, in a few words: the error it reported (`Name: message`), else how it ended (`it <detail>`). */
function describeDeath(cause: Error | undefined, detail: string | undefined): string {
  return cause ? `${cause.name}: ${cause.message}` : `it ${detail}`;
}

export abstract class RemoteSlot {
  readonly ready: Promise<void>;
  /**
   * Its handler has `@OnMessage`: a reply or push that reaches a connection close() closed is dropped quietly, as
   * MessageConnection's send() drops it in the server's own process (a @Finish farewell); a wfile write fails.
   */
  protected messageHandler = false;
  /** The worker loaded the handler and said it is ready. */
  started = false;
  dead = false;
  /** Takes no new connection: it exits once its open ones have ended (maxConnectionsPerThread, idle, perRequest). */
  retiring = false;
  /** Connections and datagrams given to this worker and not finished, including those still on their way. */
  load = 0;
  /** Connections given to this worker in its life (for maxConnectionsPerThread). */
  served = 0;
  /** When the pool last gave it a connection or datagram (the pool's count of picks): ties go to the longest unpicked. */
  lastPicked = 0;
  /** When the worker last said anything (performance.now(), ms): the pool prefers workers heard from lately (quietSince()). */
  heardAt = 0;
  /** Each report of the worker (its figures and counters, worker-report.ts), for the pool's WorkerStatsBook. */
  onReport: ((report: WorkerReport) => void) | undefined;
  /** The worker's messages total as of a request's end (`done`), newer than its last report. */
  onMessagesCounted: ((total: number) => void) | undefined;
  /** How the worker ended (onExit's detail), once it has. */
  exitDetail: string | undefined;
  /** The worker said it is exiting (`leaving`): it takes no new connection, and its 'exit' is on its way. */
  leaving = false;
  /** Requests the worker had when it died: each is reported through @HandleError with the cause (onExit). */
  servingAtDeath = 0;
  /** How the worker ended, as Node's 'exit' said: its exit code, or the signal that killed a child; nothing for a thread the pool terminated. */
  exitStatus: { code?: number; signal?: string } = {};
  /** The worker accepted a connection itself (`id` its own, negative): the pool adopts it (adopt()). */
  onAccepted: ((id: number, client: ClientAddress, datagram?: boolean, bytes?: number, unopened?: boolean) => void) | undefined;
  /** The worker read a datagram itself and has served it already (`served`): the pool counts it. */
  onServed: ((msg: FromWorker & { t: 'served' }) => void) | undefined;
  /** The worker took the last connection its count allows and closed its listener itself (`full`). */
  onFull: (() => void) | undefined;
  /** The worker has taken most of its count (`nearly-full`): its successor may start. */
  onNearlyFull: (() => void) | undefined;
  /** The worker could not accept for lack of descriptors (`first` of a burst). */
  onAcceptError: ((error: Error, first: boolean) => void) | undefined;
  /** The worker's listener is open (listen() resolved, unlisten() not called since). */
  listening = false;
  /**
   * The last unlisten(), until the worker has answered it: connections it accepted before it closed its
   * listener may still be on their way (their news comes before the answer), so the pool retires no worker
   * that has one pending (WorkerPoolStrategy.retireOnceQuiet).
   */
  pendingUnlisten: Promise<void> | undefined;
  private reportWaiters: Array<() => void> = [];
  private disposeWaiters: Array<(error: Error | undefined) => void> = [];
  private listenWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private unlistenWaiters: Array<() => void> = [];
  private secureContextWaiters: Array<() => void> = [];
  protected lastError: Error | undefined;
  /** The watchdog ended it: the heartbeatTimeout (seconds) it did not answer within. */
  private unresponsiveFor: number | undefined;
  /** Why the pool ended this worker on purpose (end()): its connections then fail with that, not as a crash. */
  private endReason: 'shutdownTimeout' | 'close' | 'recycled' | 'retired' | undefined;
  /** The close that ends this worker is a second signal's during handleSignals' drain (the server's log name, the signal). */
  closedBySignal: { owner: string; signal: string } | undefined;
  /** The server of the requests this worker ended on purpose: where a 'hook-failed' after their `done` goes. */
  private abandonedFor: RemoteServer | undefined;
  private nextId = 0;
  private readonly running = new Map<number, Running>();
  /** Connections whose request has ended (`done`) and whose socket in the worker still lingers (`lingers`), until their `closed`. */
  private readonly lingering = new Map<number, { server: RemoteServer; request: object }>();
  private settleReady!: { resolve: () => void; reject: (e: Error) => void };
  private watchdog: NodeJS.Timeout | undefined;
  /** A message came since the watchdog fired (armWatchdog). */
  private heard = false;

  constructor(
    private readonly mode: 'threading' | 'forking',
    private readonly onDeath: (slot: RemoteSlot) => void,
    private readonly heartbeatTimeout: number,
  ) {
    this.quietAfterMs = Math.max(2 * reportPeriodMs(heartbeatTimeout), (heartbeatTimeout * 1000) / 2);
    this.ready = new Promise<void>((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => undefined);
    // Until it is ready no heartbeat is watched: a worker whose module's start-up code blocks or never settles
    // hung bootstrap(), and the connections waiting for it, for ever (hostile run). Bounded by the heartbeat's
    // bound, at least START_BOUND_MIN_S (loading a TypeScript handler in a child takes seconds on a busy machine).
    const bound = Math.max(heartbeatTimeout, startBoundMin());
    const startBound = setTimeout(() => {
      if (this.started || this.dead) return;
      this.lastError = new Error(messages.workerStartHung(bound));
      void this.kill(true);
    }, bound * 1000);
    startBound.unref();
    void this.ready.then(() => clearTimeout(startBound), () => clearTimeout(startBound));
  }

  /** The worker's id for people: a threadId or a pid. */
  abstract get id(): number;
  /** `{ pid }` for a child, `{ threadId }` for a thread. */
  abstract get ids(): { pid?: number; threadId?: number };
  protected abstract post(msg: ToWorker, transfer?: ArrayBuffer[]): void;
  /** Hands the whole connection to the worker, if this worker and this Node can take it. */
  protected abstract handOver(msg: ToWorker & { t: 'stream' }, socket: net.Socket): boolean;
  /** Sends the `listen` message, with the shared listening socket where there is one (a child's IPC handle). */
  protected abstract postListen(msg: ToWorker & { t: 'listen' }, handle: unknown): void;
  /** Ends the worker and resolves once it is gone; `unresponsive`: its heartbeat stopped (no grace for it to exit by itself). */
  abstract kill(unresponsive?: boolean): Promise<void>;

  /**
   * Tells the worker to accept connections itself (API.md §3): from `handle` (children) or by listening on
   * `address` with reusePort (threads). Resolves once it listens (with `prime`: once it has listened and
   * closed again, leaving the shared socket listening); rejects with the worker's error, or its death.
   */
  listen(target: { handle?: unknown; address?: { host: string; port: number; backlog: number }; datagrams?: { maxPacketSize: number; maxHeld?: number } }, draining: boolean, prime = false, server?: RemoteServer, limit?: number): Promise<void> {
    if (this.dead) return Promise.reject(this.crashError());
    if (!prime) this.listening = true;
    return new Promise<void>((resolve, reject) => {
      this.listenWaiters.push({ resolve, reject });
      const datagrams = target.datagrams ? { datagrams: target.datagrams } : {};
      const limited = limit !== undefined && Number.isFinite(limit) ? { limit } : {};
      this.postListen({ t: 'listen', address: target.address, prime, draining, server: server?.serverAddress, ...datagrams, ...limited }, target.handle);
    });
  }

  /** Tells the worker to stop accepting (`stop`: and to stop reading, for shutdown); resolves once its listener is closed, or it is gone. */
  unlisten(stop: boolean): Promise<void> {
    this.listening = false;
    if (this.dead || !this.started) return Promise.resolve();
    const answered = new Promise<void>((resolve) => {
      this.unlistenWaiters.push(resolve);
      this.post({ t: 'unlisten', stop });
    });
    this.pendingUnlisten = answered;
    void answered.then(() => {
      if (this.pendingUnlisten === answered) this.pendingUnlisten = undefined;
    });
    return answered;
  }

  /** SIGTERM's drainDelay began: connections this worker accepts close PROXY LOCAL health checks unanswered. */
  draining(): void {
    if (this.started && !this.dead) this.post({ t: 'draining' });
  }

  /**
   * Takes on a connection the worker accepted itself (`id` from its `accepted` message): from here it is
   * one of this worker's connections, as if run() had handed it over unread.
   */
  adopt(id: number, request: WorkerAcceptedConnection, server: RemoteServer | undefined, ends: AdoptedEnds): void {
    const running: Running = { id, ends, server, request, client: request.clientAddress, at: performance.now() };
    if (this.dead) return void this.finish(running, this.crashError(undefined, isDatagram(running.request)), undefined, undefined, undefined, true);
    recordWorker(request, this.id);
    this.running.set(id, running);
  }

  /** Whether request `id` is running in this worker (as far as the server knows). */
  runs(id: number): boolean {
    return this.running.has(id);
  }

  /**
   * Ends the worker on purpose, saying why (its open connections fail with that reason); resolves once it has exited.
   * `unresponsive`: it left the pool's last message unanswered, and is ended without a grace (kill()).
   */
  end(reason: 'shutdownTimeout' | 'close' | 'recycled' | 'retired', unresponsive = false): Promise<void> {
    this.endReason ??= reason;
    return this.kill(unresponsive);
  }

  /**
   * Before the pool ends this worker on purpose while connections run: the worker ends each of them with
   * the error end() would give them (a RequestTimeoutError) and sends its `done`, with the bytes it counted
   * on the sockets it owns, which would die with it otherwise. Resolves to true once every one has come
   * back; false when the worker is gone, or after `limitMs` (a worker whose event loop is blocked cannot answer).
   */
  abandon(reason: 'shutdownTimeout' | 'close' | 'recycled', limitMs: number): Promise<boolean> {
    this.endReason ??= reason;
    this.catchUp();
    if (this.dead || !this.started) return Promise.resolve(false);
    if (this.running.size === 0) return Promise.resolve(true);
    // A worker serves one server's requests: all datagrams or all connections
    const datagrams = [...this.running.values()].some((running) => isDatagram(running.request));
    const error = serializeError(this.crashError(undefined, datagrams));
    // Why, for a request the worker finds was no handler's yet (a @Verify that had not settled, a preamble under way):
    // datagrams too, whose @Verify a child that reads them runs (it was reported as a handler still running: hostile run).
    const why = reason !== 'recycled' ? { why: reason === 'close' ? ('closed' as const) : ('shutdownTimeout' as const) } : {};
    const server = reason === 'close' ? [...this.running.values()].find((running) => running.server?.closingAs)?.server : undefined;
    const closing = server?.closingAs ? { closing: server.closingAs() } : {};
    this.post(datagrams
      ? { t: 'abandon', error, closeFirst: reason === 'close', replied: serializeError(this.crashError(undefined, 'replied')), ...why }
      : { t: 'abandon', error, closeFirst: reason === 'close', ...why, ...closing });
    return new Promise<boolean>((resolve) => {
      const started = performance.now();
      const poll = () => {
        this.catchUp();
        if (this.dead || this.running.size === 0) resolve(!this.dead);
        else if (performance.now() - started >= limitMs) resolve(false);
        else setTimeout(poll, ABANDON_POLL_MS).unref();
      };
      setTimeout(poll, ABANDON_POLL_MS).unref();
    });
  }

  /** Why the worker died, in a few words: the error it reported (an uncaught one, the watchdog's), and how it exited. */
  get deathCause(): string {
    const how = `it ${this.exitDetail ?? 'ended'}`;
    return this.lastError ? `${describeDeath(this.lastError, undefined)} (${how})` : how;
  }

  /** A signal ended it (`was killed by SIGKILL`) with no error of its own, and not the pool's doing (the watchdog's, end()). */
  get killedFromOutside(): boolean {
    return this.lastError === undefined && this.unresponsiveFor === undefined && this.endReason === undefined && (this.exitDetail?.startsWith('was killed by') ?? false);
  }

  /**
   * The worker has said nothing for half its heartbeatTimeout (two report periods at least: it reports every
   * reportPeriodMs()) while another was heard at `freshest` (ms): its event loop is blocked, or busy with one
   * long synchronous task. The pool gives it no new work while another can take it: the least loaded, a thread
   * whose handler spun took every new connection (or datagram) until the heartbeat ended them with it (hostile
   * run; with another thread holding 100 connections, 0 of 99 new clients answered over 5 s). Half the timeout, not
   * less: a worker busy with legitimate synchronous tasks of seconds (what threads are for) is quiet between its
   * reports too, and a shorter bound sent new work past it to a worker with a longer queue (2.5 s tasks, 30 s
   * heartbeat: 17 % longer to serve ten clients, hostile re-check). Measured against the other workers, not the
   * clock, so that a main thread held up itself finds no worker quiet.
   */
  quietSince(freshest: number): boolean {
    return this.started && freshest - this.heardAt > this.quietAfterMs;
  }

  /** Milliseconds of silence past which quietSince() says yes: half the heartbeatTimeout, two report periods at least. */
  private readonly quietAfterMs: number;

  /** The watchdog ended it: the heartbeatTimeout (seconds) it did not answer within; undefined otherwise. */
  get unresponsive(): number | undefined {
    return this.unresponsiveFor;
  }

  /** Why the pool ended this worker on purpose (end()), or undefined: it died. */
  get endedBecause(): 'shutdownTimeout' | 'close' | 'recycled' | 'retired' | undefined {
    return this.endReason;
  }

  /** Takes in what the worker has said but not yet been heard (a child's bookkeeping: bookkeeping.ts). */
  catchUp(): void {}

  /** Connections and datagrams running in the worker now. */
  get connections(): number {
    return this.running.size;
  }

  /**
   * Runs one request in the worker, beside the others it serves; resolves when its lifecycle has
   * finished there. A connection closed while it waited for the worker to start (by the client, or by
   * shutdown's timeout) fails at once: a bridge would wait for a 'close' already emitted, and a child
   * would get the message without the descriptor.
   *
   * A connection marked by `deferPreamble` goes to the worker unread, and its PROXY header, TLS handshake
   * and @Verify run there; it resolves with how it was dropped when it never reached its lifecycle.
   */
  run(request: RemoteRequest, client: ClientAddress, server?: RemoteServer): Promise<DroppedInWorker | undefined> {
    // Closed meanwhile with bytes still buffered here (a client that sent and reset): those are relayed, then the reset.
    if (!Array.isArray(request) && (request as net.Socket).destroyed && (request as net.Socket).readableLength === 0) {
      // A health check that ended while it waited (a PROXY header or a TLS handshake read here, then the client's
      // end or reset, no byte): quiet, counted as one, as where no worker is waited for. With connectionsPerThread: 1
      // it reached @HandleError as a client error while its worker started (hostile run on HAProxy-style checks).
      if (endedWaitingHealthCheck(request as net.Socket)) return Promise.resolve('health-check');
      return Promise.reject(closedBeforeWorker(request as net.Socket));
    }
    if (this.dead || this.leaving) {
      // Picked as it went (its end not heard yet): a connection, untouched, goes to another worker.
      return Promise.reject(isDatagram(request) ? this.crashError(undefined, true) : new NotTakenError());
    }
    if (!Array.isArray(request)) recordWorker(request as object, this.id);
    const id = ++this.nextId;
    return new Promise<DroppedInWorker | undefined>((resolve, reject) => {
      const running: Running = { id, resolve, reject, server, request, client, at: performance.now() };
      this.running.set(id, running);
      const address = server?.serverAddress;
      // A socket handed over: the worker says when it closes, should it linger past the request's end (the limits count it).
      const counted = server?.countsConnections ? { counted: true as const } : {};
      if (Array.isArray(request)) this.startDatagram(running, request as DatagramRequestTuple, client);
      else if (preambleDeferred(request)) {
        const unread = { draining: server?.edgeDraining ?? false };
        // Nothing here runs its preamble (the loop has passed it on): a worker that cannot take the socket
        // itself (a thread before Node 24) is sent its raw bytes, and runs the PROXY header, the TLS
        // handshake and @Verify on them all the same; a dead one fails it.
        // Bytes read here already (a client that sent and reset before it was accepted: stream-listener.ts) would
        // be lost with a bare descriptor: relayed.
        if ((request as net.Socket).readableLength > 0 || !this.handOver({ t: 'stream', id, client, owned: true, server: address, unread, ...counted }, request as net.Socket)) {
          if (this.dead) void this.finish(running, this.crashError());
          else this.bridge(running, request as net.Socket, client, unread);
        }
      } else if (!canHandOver(request as net.Socket) || !this.handOver({ t: 'stream', id, client, owned: true, server: address, ...preambleFacts(request), ...carriedStamps(request as net.Socket), ...counted }, request as net.Socket)) {
        this.bridge(running, request as net.Socket, client);
      }
    });
  }

  /**
   * New connections whose TLS this worker terminates get this certificate (server.setSecureContext).
   * Resolves once the worker uses it (or is gone): a worker that accepts connections itself may take one
   * before it reads this message.
   */
  setSecureContext(options: SecureContextOptions): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.secureContextWaiters.push(resolve);
      this.post({ t: 'secure-context', options });
    });
  }

  /**
   * Shutdown: the running requests' reads stop waiting at the next boundary. A bridged connection keeps
   * relaying, so the rest of a request already on its way still arrives. `preamblesOnly`: a classic pool's
   * serverClose(): only the connections still in their PROXY header or TLS handshake close.
   */
  stopReading(preamblesOnly = false): void {
    for (const running of this.running.values()) {
      // A bridged connection first relays what the kernel already holds, so bytes that arrived before
      // shutdown reach the worker before 'stop' does.
      const stop = () => this.running.get(running.id) === running && this.post(preamblesOnly ? { t: 'stop', id: running.id, preamble: true } : { t: 'stop', id: running.id });
      if (running.socket) afterPollPhase(stop);
      else stop();
    }
  }

  // ---- for subclasses: what the worker said, and how it ended ----

  protected onMessage(msg: FromWorker): void {
    this.heard = true;
    this.heardAt = performance.now();
    this.watchdog?.refresh();
    if (msg.t === 'ready') {
      this.started = true;
      this.armWatchdog();
      return this.settleReady.resolve();
    }
    if (msg.t === 'load-error') return this.settleReady.reject(new Error(msg.message));
    if (msg.t === 'fatal') return void (this.lastError = deserializeError(msg.error));
    if (msg.t === 'leaving') return void (this.leaving = true);
    if (msg.t === 'accepted') return this.onAccepted?.(msg.id, msg.client, msg.datagram === true, msg.bytes, msg.unopened === true);
    if (msg.t === 'served') {
      // Its `done`'s messages total, as for any other `done`: else a child that died within a second of its
      // last report took the count of the datagrams it had served with it (stats().messages, hostile run).
      if (msg.messages !== undefined && this.exitDetail === undefined) this.onMessagesCounted?.(msg.messages);
      return this.onServed?.(msg);
    }
    if (msg.t === 'listening') {
      const waiter = this.listenWaiters.shift();
      if (msg.error) waiter?.reject(deserializeError(msg.error));
      else waiter?.resolve();
      return;
    }
    if (msg.t === 'unlistened') return this.unlistenWaiters.shift()?.();
    if (msg.t === 'nearly-full') return this.onNearlyFull?.();
    if (msg.t === 'full') {
      this.listening = false;
      return this.onFull?.();
    }
    if (msg.t === 'secure-context-set') return this.secureContextWaiters.shift()?.();
    if (msg.t === 'accept-error') return this.onAcceptError?.(deserializeError(msg.error), msg.first);
    if (msg.t === 'hook-failed') return void this.abandonedFor?.reportHookFailure?.(deserializeError(msg.error), msg.client);
    if (msg.t === 'disposed') {
      const error = msg.error ? deserializeError(msg.error) : undefined;
      for (const waiter of this.disposeWaiters.splice(0)) waiter(error);
      return;
    }
    if (msg.t === 'closed') {
      const lingered = this.lingering.get(msg.id);
      this.lingering.delete(msg.id);
      return lingered?.server.workerSocketClosed?.(lingered.request);
    }
    if (msg.t === 'report') {
      // The pool's id for it, whatever the worker says. A report read after the exit is dropped: the pool
      // has already moved the worker's counts to its totals, and would count them twice.
      if (this.exitDetail === undefined) this.onReport?.({ ...msg.report, id: this.id });
      for (const waiter of this.reportWaiters.splice(0)) waiter();
      return;
    }
    const running = this.running.get(msg.id);
    if (!running) return; // late news from a finished request
    const socket = running.socket;
    switch (msg.t) {
      case 'write':
        if (!socket || socket.destroyed) {
          // The server's close() closed it under the request (closedByServer): the worker's handler fails saying so, as
          // in the server's own process; answered as a plain close, its reply was dropped and the request counted served.
          const closed = socket && closedByServer(socket);
          if (closed && msg.chunk.byteLength > 0 && !this.messageHandler) running.lostToClose ??= closed;
          this.post({ t: 'written', id: msg.id, seq: msg.seq, error: serializeError(running.socketError ?? closed ?? closedError()) });
          return;
        }
        if (msg.noDelay !== undefined) socket.setNoDelay(msg.noDelay);
        // A setNoDelay() alone, or a write of nothing that the worker does not wait on. One it waits on (it
        // fills the window, or asks for the answer to the writes before it) is answered as any write is:
        // skipped, it stalled the connection for good (hostile-client run).
        if (msg.chunk.byteLength === 0 && !msg.answer) return;
        // As wfile.write does: when the kernel took the bytes at once, say so now, not on a later tick. The
        // worker counts most writes done when it sends them (PortDuplex): those are reported together, when it
        // asks (`answer`: the write that takes its window past half by its count, or one it waits for), once
        // half the window's bytes are written here, or with the end.
        writeThrough(socket, msg.chunk, (err) => {
          // Cancelled by the server's close() (ECANCELED where it waited for a client that does not read): why, as for
          // a write that comes after it (hostile re-check).
          if (err) return this.post({ t: 'written', id: msg.id, seq: msg.seq, error: serializeError(closedByServer(socket) ?? err) });
          const unreported = (running.unreported ?? 0) + msg.chunk.byteLength;
          if (!msg.answer && unreported < BRIDGE_WINDOW / 2) return void (running.unreported = unreported);
          running.unreported = 0;
          this.post({ t: 'written', id: msg.id, seq: msg.seq });
        });
        return;
      case 'end':
        if (socket && !socket.destroyed) socket.end(() => this.post({ t: 'written', id: msg.id, seq: msg.seq }));
        else this.post({ t: 'written', id: msg.id, seq: msg.seq });
        return;
      case 'ack':
        running.ack?.(msg.bytes);
        return;
      case 'reply':
        if (running.reply) running.replying = { bytes: msg.reply.byteLength, failed: replySent(running.reply, msg.reply) };
        return;
      case 'replied':
        running.replied = msg.bytes;
        return;
      case 'opened':
        if (!Array.isArray(running.request)) running.server?.workerOpened?.(running.request as object, msg.client);
        return;
      case 'done': {
        if (msg.messages !== undefined && this.exitDetail === undefined) this.onMessagesCounted?.(msg.messages);
        if (!Array.isArray(running.request)) {
          if (msg.bytes) recordHandedOverBytes(running.request, msg.bytes, preambleDeferred(running.request));
          if (msg.ms !== undefined) recordWorkerDuration(running.request, msg.ms);
        }
        // One that went well there, but whose reply was lost to close() here (lostToClose): it counted as served,
        // unreported (hostile run); it ends as the server's own process ends it.
        const lost = msg.error || msg.dropped ? undefined : running.lostToClose;
        const error = msg.error ? deserializeError(msg.error) : lost;
        if (error !== undefined && msg.client) nameClient(error, msg.client);
        let end = lost && msg.end && msg.end.error === undefined ? { ...msg.end, error: plainError(lost) } : msg.end;
        // Its bytes as its connection.close will say them (the same in both, docs/observability.md), not as the worker
        // counted them when its lifecycle ended: a relayed reply the client reset under counted what the thread wrote
        // (262144 where 0 left), an owned one what it had given its socket (11 MB where 1 MiB left: hostile run).
        if (end && !isDatagram(running.request)) {
          const [bytesIn, bytesOut] = streamBytes(running.request as object);
          end = { ...end, bytesIn, bytesOut };
        }
        // A relayed client that took no byte of its replies for requestTimeout: what waits for it here is dropped
        // (reset), not flushed for FLUSH_LIMIT_MS more, as a socket of the worker's own is destroyed.
        // Its bytesOut is then what the kernel took, as on a socket the worker owns.
        if ((error as NodeJS.ErrnoException | undefined)?.code === WRITE_STALLED && socket) destroyUndelivered(socket);
        // A request the worker abandoned (abandon()) before its trace ended: its request.end is published here, as for a worker that died.
        if (error && !end && this.endReason !== undefined) this.publishEnd(running, error);
        // Its @HandleError may still be running there, and fail later ('hook-failed'): reported to this server.
        if (this.endReason !== undefined) this.abandonedFor = running.server;
        // Its socket there lingers for the client's FIN: the limits count it until its `closed` (or this worker's end).
        if (msg.lingers && running.server?.workerSocketLingers && !Array.isArray(running.request)) {
          this.lingering.set(running.id, { server: running.server, request: running.request as object });
          running.server.workerSocketLingers(running.request as object);
        }
        void this.finish(running, error, msg.reply, msg.dropped, end);
        return;
      }
      case 'shutdown': {
        // Answered once every other request has finished (or the shutdown failed: the handler goes on either way).
        const server = running.server;
        const done = server?.shutdownFromRequest ? server.shutdownFromRequest(running.request) : server?.shutdown();
        void Promise.resolve(done)
          .catch(() => undefined)
          .then(() => !this.dead && this.post({ t: 'shutdown-done', ask: msg.ask }));
        return;
      }
    }
  }

  /**
   * Asks the worker for a report now and resolves when it has come (or after `limitMs`, or at once for a
   * worker that is gone): the pool calls it before retiring a worker, so its last counts are not lost.
   */
  finalReport(limitMs: number): Promise<void> {
    return this.ask({ t: 'report-now' }, this.reportWaiters, limitMs, undefined);
  }

  /**
   * Asks the worker to dispose its container's singletons (the pool is about to end it on purpose, and they
   * are per worker); resolves with what their dispose() threw, or undefined once done, after `limitMs`
   * (milliseconds), or at once for a worker that is gone.
   */
  disposeSingletons(limitMs: number): Promise<Error | undefined> {
    // The worker shares a little less than limitMs among them, so that its answer comes before the wait ends.
    return this.ask({ t: 'dispose', withinMs: Math.max(0, limitMs - DISPOSE_ANSWER_MS) }, this.disposeWaiters, limitMs, undefined);
  }

  /**
   * Posts `msg` and resolves with what its answer hands to `waiters` (the message handler calls them), or with
   * `otherwise` after `limitMs` (milliseconds), on the worker's exit, or at once for a worker that is gone.
   */
  private ask<T>(msg: ToWorker, waiters: Array<(value: T) => void>, limitMs: number, otherwise: T): Promise<T> {
    if (this.dead || !this.started) return Promise.resolve(otherwise);
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => done(otherwise), limitMs);
      timer.unref();
      const done = (value: T) => {
        clearTimeout(timer);
        const at = waiters.indexOf(done);
        if (at >= 0) waiters.splice(at, 1);
        resolve(value);
      };
      waiters.push(done);
      this.post(msg);
    });
  }

  /** Tells the worker whether the server's process wants its events (worker-report.ts). */
  wantEvents(wanted: boolean): void {
    if (this.started && !this.dead) this.post({ t: 'events', wanted });
  }

  /**
   * The id of the last datagram the worker took to serve (ids grow in the order they were posted; datagrams-taken.ts),
   * or Infinity where it keeps no record: a datagram past it was still on its way when the worker died.
   */
  protected lastDatagramTaken(): number {
    return Infinity;
  }

  /** The worker could not even be started: no message and no exit will follow. */
  protected startFailed(err: Error): void {
    this.dead = true;
    this.settleReady.reject(err);
  }

  /** The worker ended (exit, crash, kill): each of its connections fails with a WorkerCrashedError. */
  protected onExit(detail: string, status: { code?: number | null; signal?: string | null } = {}): void {
    this.dead = true;
    this.exitDetail = detail;
    if (typeof status.code === 'number') this.exitStatus.code = status.code;
    if (typeof status.signal === 'string') this.exitStatus.signal = status.signal;
    for (const waiter of this.reportWaiters.splice(0)) waiter();
    for (const waiter of this.disposeWaiters.splice(0)) waiter(undefined);
    for (const waiter of this.unlistenWaiters.splice(0)) waiter();
    for (const waiter of this.secureContextWaiters.splice(0)) waiter();
    for (const waiter of this.listenWaiters.splice(0)) waiter.reject(this.crashError(detail));
    if (this.watchdog) clearTimeout(this.watchdog);
    this.settleReady.reject(this.lastError ?? new Error(`the worker ${detail} before it was ready`));
    const crash = this.crashError(detail);
    const datagramCrash = this.crashError(detail, true);
    this.servingAtDeath = this.running.size;
    // Sockets that lingered there closed with it.
    for (const { server, request } of this.lingering.values()) server.workerSocketClosed?.(request);
    this.lingering.clear();
    // Datagrams it never took (queued behind a handler that blocked its loop, say) go to another worker, as a
    // connection never taken does (NotTakenError), unless the pool is ending (close, shutdown's timeout): a worker
    // recycled or retired ended by its bound lost them with a handler's error (hostile re-check).
    const takenUpTo = this.endReason === 'close' || this.endReason === 'shutdownTimeout' ? Infinity : this.lastDatagramTaken();
    for (const running of [...this.running.values()]) {
      if (running.id > takenUpTo && Array.isArray(running.request)) {
        this.running.delete(running.id);
        const notTaken = new NotTakenError();
        notTaken.publishEnd = (error) => this.publishEnd(running, error);
        running.reject?.(notTaken);
        continue;
      }
      // A datagram whose reply went ahead of its request scope's disposal ('reply'): its reply is not lost.
      const error = !isDatagram(running.request) ? crash : running.replying || running.replied !== undefined ? this.crashError(detail, 'replied') : datagramCrash;
      // A datagram a child read from the shared socket and died with: no `done` brings its bytes, so its
      // length (from its `accepted`) is what it counts, in stats() and in its request.end (hostile run: 0), and its
      // reply's, when it had left ('replied').
      const request = running.request;
      if (request instanceof WorkerAcceptedConnection && request.datagram && request.datagramBytes > 0) recordHandedOverBytes(request, [request.datagramBytes, running.replied ?? 0], true);
      this.publishEnd(running, error);
      void this.finish(running, error);
    }
    this.onDeath(this);
  }

  /**
   * A request whose worker ended before it did (no `done` came): its `request.end`, which the worker can no
   * longer send, is published here (API.md §14: every request ends once on the channels), with the error it
   * failed with and its bytes as far as this process knows them (a relayed connection's; none of an owned one's).
   */
  private publishEnd(running: Running, error: Error): void {
    if (!requestEndObserved()) return;
    // A datagram's reply sent ahead ('reply') counts once it has left, as in stats() (its replyBytes).
    if (running.replying) return void running.replying.failed.then(() => this.publishEndNow(running, error));
    this.publishEndNow(running, error);
  }

  private publishEndNow(running: Running, error: Error): void {
    const [bytesIn, bytesOut] = Array.isArray(running.request)
      ? [running.request[0].length, running.request.replyBytes ?? 0]
      : streamBytes(running.request as { bytesRead?: number; bytesWritten?: number });
    const data = { clientAddress: running.client, durationMs: performance.now() - running.at, bytesIn, bytesOut, error: plainError(error) };
    republishWorkerEvents(this.id, [{ channel: 'requestEnd', data }]);
  }

  /** The error of a connection this worker's death ended (a WorkerCrashedError naming why it died). */
  crashedError(datagram = false): Error {
    return this.crashError(this.exitDetail, datagram);
  }

  /**
   * What each of the worker's open connections fails with: when the pool ended the worker on purpose
   * (shutdown's timeout, close(), a recycled worker's last connections past shutdownTimeout), a
   * RequestTimeoutError, as a request abandoned in the server's process is (routine: one warn line, no
   * traceback); a WorkerCrashedError when it died (the watchdog, an exit, a crash).
   */
  private crashError(detail = 'was ended', datagram: boolean | 'replied' = false): Error {
    const reason = this.endReason;
    const signalled = this.closedBySignal;
    if (reason === 'close' && signalled !== undefined && datagram !== 'replied') return new RequestTimeoutError(messages.abandonedBySignal(signalled.owner, signalled.signal, datagram));
    if (reason === 'shutdownTimeout' || reason === 'close' || reason === 'recycled') return new RequestTimeoutError(messages.workerEnded(this.mode, reason, datagram));
    const cause = this.lastError;
    if (cause instanceof WorkerCrashedError && datagram !== 'replied') {
      // the watchdog's: its message says it all, in a datagram's words for a datagram
      return datagram && this.unresponsiveFor !== undefined ? this.unresponsiveError(this.unresponsiveFor, true) : cause;
    }
    return new WorkerCrashedError(messages.workerCrashed(this.mode, describeDeath(cause, detail), datagram), { cause });
  }

  /**
   * The worker died before it took `socket`, handed over to it (its descriptor never left this process): run()
   * rejects with NotTakenError, the socket intact, and the pool places it on another worker. It was closed, and
   * its client reset, when a client came back at once after its worker was killed (hostile re-check).
   */
  protected notTaken(socket: net.Socket): void {
    for (const running of this.running.values()) {
      if (running.request !== socket) continue;
      this.running.delete(running.id);
      running.reject?.(new NotTakenError());
      return;
    }
  }

  /** A message for request `id` could not reach the worker (MessageBatch): the request fails with why. */
  protected lost(id: number, err: unknown): void {
    const running = this.running.get(id);
    if (!running) return;
    const error = err instanceof Error ? err : new Error(String(err));
    void this.finish(running, error);
    this.post({ t: 'eof', id, error: serializeError(error) }); // the worker's side of it ends too
  }

  // ---- the request's paths ----

  /**
   * The main thread keeps the connection and relays its bytes both ways, with flow control: reading
   * pauses while BRIDGE_WINDOW bytes sent to the worker are unacknowledged (see PortDuplex). `unread`: the
   * connection's preamble has not run (its raw bytes are relayed, TLS records included, and the worker
   * runs it).
   */
  private bridge(running: Running, socket: net.Socket, client: ClientAddress, unread?: UnreadConnection): void {
    const { id } = running;
    const server = running.server?.serverAddress;
    this.post(unread ? { t: 'stream', id, client, owned: false, server, unread } : { t: 'stream', id, client, owned: false, server, ...preambleFacts(socket), ...carriedStamps(socket) });
    let ended = false;
    const eof = () => {
      if (ended) return;
      ended = true;
      // A reset reaches the worker's reads as the error it is (ECONNRESET), as on a socket of its own.
      // Closed by the server (close(), a second signal), not by its client: the worker says so of a message cut short.
      const closing = running.socketError === undefined && closedByServer(socket) !== undefined ? running.server?.closingAs?.() : undefined;
      this.post(running.socketError ? { t: 'eof', id, error: serializeError(running.socketError) } : closing ? { t: 'eof', id, closing } : { t: 'eof', id });
    };
    let unacked = 0;
    const onData = (chunk: Buffer) => {
      const bytes = ownBytes(chunk);
      unacked += bytes.byteLength;
      this.post({ t: 'data', id, chunk: bytes }, [bytes.buffer as ArrayBuffer]);
      if (unacked >= BRIDGE_WINDOW) socket.pause();
    };
    const onError = (err: Error) => {
      running.socketError ??= err;
      // A TLS socket this process ended TLS on emits a failure after the handshake (a forged or corrupted
      // record) without closing (Node's _tls_wrap): the connection stayed open, unreported, holding its worker,
      // until close() (hostile run). It ends now, as a socket's error ends it: the worker reads the error.
      if (!socket.destroyed) socket.destroy();
    };
    socket.on('data', onData);
    socket.on('end', eof);
    socket.on('close', eof);
    socket.on('error', onError);
    running.socket = socket;
    running.ack = (bytes) => {
      unacked -= bytes;
      if (unacked < BRIDGE_WINDOW && socket.isPaused()) socket.resume();
    };
    running.detach = () => {
      socket.off('data', onData);
      socket.off('end', eof);
      socket.off('close', eof);
      socket.off('error', onError);
      socket.pause();
    };
    // The worker terminates TLS on these bytes: its records reach this side as separate writes (the tickets,
    // then the reply), which a socket of its own would send as one; with Nagle's algorithm the second waited
    // for the client's delayed ACK (40 ms a connection). @Threading TLS handshakes/s: 0.29x raw tls -> 0.51x.
    if (socket.destroyed) {
      // Closed with bytes still buffered (run()): they emit no 'data' any more, but read() returns them; then its end.
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null;) onData(chunk);
      if (socket.errored) onError(socket.errored);
      return eof();
    }
    if (unread) socket.setNoDelay(true);
    socket.resume();
    // Its end already read here (a PROXY header and the client's FIN in one read: Node emitted 'end' while
    // the connection waited for its worker, to no listener): the worker is told now, or it waits for ever.
    if (socket.readableEnded) eof();
  }

  private startDatagram(running: Running, request: DatagramRequestTuple, client: ClientAddress): void {
    const [data, dgramSocket] = request;
    const bytes = new Uint8Array(data);
    running.reply = (reply) =>
      dgramSocket.send(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), client).then(() => {
        request.replyBytes = reply.byteLength; // stats().bytesOut, as for a datagram served here: the bytes that left
      });
    this.post({ t: 'dgram', id: running.id, client, data: bytes, truncated: request.truncated, server: running.server?.serverAddress }, [bytes.buffer as ArrayBuffer]);
  }

  /**
   * The request is done in the worker: its datagram reply (which the worker hands back) is sent from here,
   * then the worker's `request.end` (`end`) is published, saying that the reply did not leave when it failed.
   */
  private async finish(running: Running, error?: Error, reply?: Uint8Array, dropped?: DroppedInWorker, end?: RequestEndData, unlisted = false): Promise<void> {
    if (!unlisted && this.running.get(running.id) !== running) {
      if (end) republishWorkerEvents(this.id, [{ channel: 'requestEnd', data: end }]);
      return;
    }
    if (!unlisted) this.running.delete(running.id);
    running.detach?.();
    let failed: Error | undefined;
    // What the handler wrote before it threw is still owed too; then the handler's error is the one reported.
    const replying = reply && running.reply ? { bytes: reply.byteLength, failed: replySent(running.reply, reply) } : running.replying;
    if (replying) {
      failed = (await replying.failed)?.error as Error | undefined; // a send's error (dgram's, or the bridge's)
      if (failed && end) end = { ...end, bytesOut: Number(end.bytesOut ?? 0) - replying.bytes, error: end.error ?? plainError(failed) };
    }
    if (end) republishWorkerEvents(this.id, [{ channel: 'requestEnd', data: end }]);
    const ends = running.ends;
    // In a microtask, as a promise's reactions would run: after the message or the exit that ended it.
    if (ends) queueMicrotask(() => ends.adoptedEnded(this, running.request as WorkerAcceptedConnection, running.server, error ?? failed, dropped));
    else if (error ?? failed) running.reject!((error ?? failed)!);
    else running.resolve!(dropped);
  }

  /** The watchdog's error: the worker did not answer for `seconds`; what that cost a datagram, or the connections. */
  private unresponsiveError(seconds: number, datagram: boolean): WorkerCrashedError {
    return new WorkerCrashedError(`${messages.workerUnresponsive(this.mode, seconds)} ${datagram ? messages.datagramLost() : messages.workerReplaced()}`);
  }

  /** Ends a worker whose event loop has not answered for heartbeatTimeout seconds (every message counts). */
  private armWatchdog(): void {
    const seconds = this.heartbeatTimeout;
    this.watchdog = setTimeout(() => {
      // Timers run before the poll phase that reads the worker's messages: read first, then judge.
      this.heard = false;
      this.catchUp();
      afterPollPhase(() => {
        if (this.heard || this.dead) return; // it spoke (refresh() has set the timer again), or it is gone
        this.unresponsiveFor = seconds;
        this.lastError = this.unresponsiveError(seconds, false);
        void this.kill(true);
      });
    }, seconds * 1000);
    this.watchdog.unref();
  }
}

/** A write to a bridged connection that has closed without an error of its own: Node's own code for it. */
function closedError(): Error {
  return Object.assign(new Error('write after the connection was closed'), { code: 'ERR_STREAM_DESTROYED' });
}

/**
 * A connection that closed while it waited for its worker: the server's reason when the server closed it;
 * else the client's doing (a reset, or it left), so a routine client error with the socket's own code (ECONNRESET), else ERR_STREAM_PREMATURE_CLOSE, not a
 * handler error.
 */
function closedBeforeWorker(socket: net.Socket): Error {
  const closed = closedByServer(socket);
  if (closed) return closed; // the server closed it (shutdownTimeout, close()): its reason
  const cause = socket.errored as NodeJS.ErrnoException | null;
  const code = typeof cause?.code === 'string' ? cause.code : 'ERR_STREAM_PREMATURE_CLOSE';
  return Object.assign(new Error(`the connection closed before a worker could take it (${code})`, cause ? { cause } : undefined), { code });
}

/** Whether `socket`, closed while it waited for its worker, was a health check the client ended (isHealthCheckOn). */
function endedWaitingHealthCheck(socket: net.Socket): boolean {
  if (closedByServer(socket)) return false;
  const error = socket.errored ?? undefined;
  return endedHealthCheck(socket, error, error === undefined && socket.readableEnded);
}

/** A datagram the server read, or one a child read from the shared socket itself; else a connection. */
function isDatagram(request: RemoteRequest): boolean {
  return Array.isArray(request) || (request instanceof WorkerAcceptedConnection && request.datagram);
}

/**
 * What was stamped on `socket` here that the worker must know: `heldSince` when an optional PROXY preamble put
 * bytes back on it (the worker's line timeout counts from them), `closeAsked` when @Verify called req.close().
 */
function carriedStamps(socket: net.Socket): { heldSince?: number; closeAsked?: true } {
  const at = peekHeldSince(socket);
  const carried: { heldSince?: number; closeAsked?: true } = at === undefined ? {} : { heldSince: at };
  if (peekCloseAsked(socket)) carried.closeAsked = true;
  return carried;
}

/** Milliseconds between a worker's reports (its heartbeat) for a heartbeatTimeout in seconds: at most 1 s. */
export function reportPeriodMs(heartbeatTimeout: number): number {
  return Math.max(10, Math.min(1000, (heartbeatTimeout * 1000) / 3));
}
