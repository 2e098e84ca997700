import { settledWithin } from '../transports/event-loop';
import { ConfigurationError, RequestTimeoutError, SystemExit } from '../errors/errors';
import { messages } from '../errors/messages';
import type { SecureContextOptions } from 'node:tls';
import { canChildrenShareDatagrams, canChildrenShareListener, canThreadsListenReusePort, supportsReusePort } from '../runtime';
import { ClientAddress, clientNamedBy } from '../transports/address';
import { BoundedHooks, handleErrorSafely, processInBackground } from './process-in-background';
import { AdoptedEnds, NotTakenError, RemoteRequest, RemoteServer, RemoteSlot, WorkerAcceptedConnection } from './remote/remote-slot';
import type { DroppedInWorker, FromWorker } from './remote/protocol';
import type { ConcurrencyStrategy, RequestProcessor } from './strategy';
import { drainRunning, type ShutdownCallers } from './shutdown-callers';
import { workerExited, workerStarted } from '../observability/events';
import type { PoolStats, WorkerStats } from '../observability/server-metrics';
import { onWorkerInterest, WorkerStatsBook } from '../observability/worker-report';

/** Failed starts in a row for a connection before it fails with the reason. */
const START_ATTEMPTS = 3;
/** Datagrams that may wait for a worker to free up (pick()); past this many a datagram is placed at once, as a connection is. */
const DATAGRAMS_WAITING_MAX = 1024;
/**
 * Datagrams held in the pool at once (waiting, or sent to a worker that has not finished them), unless the
 * server says otherwise (its `maxQueuedDatagrams`); past this, a datagram the loop takes is dropped, as a full
 * kernel buffer drops it. Without it, workers slower than the flood (children read their datagrams over IPC)
 * let the server's process hold every datagram of the flood: a hostile run measured 82,000 and 743 MB in 8 s.
 */
const DATAGRAMS_IN_POOL_MAX = 4096;
/** Seconds close() waits for the reports of the requests it ended when shutdownTimeout is null (no bound of its own). */
const REPORTS_AT_CLOSE_S = 30;
/** How long close() waits for the workers that accept to close their listeners before it ends them anyway (ms). */
const UNLISTEN_AT_CLOSE_MS = 1000;
/** How long a datagram waits for a busy worker before the pool starts another for it (ms). */
const GROW_AFTER_MS = 50;
/** After START_ATTEMPTS workers in a row failed to start, how long before a new connection may try again (ms). */
const START_RETRY_MS = 1000;
/** More than DEATH_LIMIT deaths within DEATH_WINDOW_MS: replacements wait, from BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS. */
const DEATH_LIMIT = 5;
const DEATH_WINDOW_MS = 10_000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/**
 * Connections that may wait for a worker while none is serving after workers died (the backoff holds, up to 30 s,
 * or a replacement is still starting): Node's default listen backlog, the queue a burst of clients may fill. Past it a connection is refused
 * (closed at once, counted in `rejected`) rather than held: a flood during a crash loop held one descriptor per
 * client (a hostile run: 47 to 418 in seconds, unbounded).
 */
const CONNECTIONS_WAITING_MAX = 511;

export interface PoolOptions {
  mode: 'threading' | 'forking';
  /** Workers started at start() and kept (0 with perRequest). */
  warm: number;
  max: number;
  /** Connections a worker takes before the pool grows (connectionsPerThread); Infinity by default. */
  perWorker: number;
  perRequest: boolean;
  /** Milliseconds a worker above `warm` may stay without a connection before it exits. */
  idleTimeoutMs: number;
  /** Connections after which a worker takes no new one and exits once its open ones end (recycling). */
  maxConnectionsPerWorker: number;
  /** Starts one worker; it reports its death through `onDeath`. */
  spawn: (onDeath: (slot: RemoteSlot) => void) => RemoteSlot;
  /** Where the backoff notice goes (the logger's warn). */
  log: (message: string) => void;
  /** Where a worker's failed disposal of its singletons goes (the logger's error); `log` when absent. */
  error?: (message: string) => void;
  /** Where lifecycle lines go (the logger's info): a worker that died and is replaced. Dropped when absent. */
  info?: (message: string) => void;
  /** The `server` of the pool's `sockserve:worker.start`/`worker.exit` events (bootstrap()'s Server). */
  owner?: unknown;
}

/** What bootstrap() (or the classic mixin) tells every pool: the heartbeat bound and where notices go. */
export interface PoolTuning {
  /** Seconds a worker's event loop may stay silent before the worker is ended (default 30). */
  heartbeatTimeout: number;
  log: (message: string) => void;
  /** Errors of the pool's own doing (a worker's singletons that failed to dispose): the logger's error. */
  error?: (message: string) => void;
  /** Lifecycle lines (a worker replaced after it died): the logger's info. */
  info?: (message: string) => void;
  /** The `server` of the pool's worker events: bootstrap()'s Server, or the classic server. */
  owner?: unknown;
}

/**
 * How workers accept connections themselves (API.md §3): children from the server's own listening socket
 * (its descriptor sent to each, as Node's cluster does with SCHED_NONE), threads each with a listener of
 * their own on the same port (SO_REUSEPORT, Node 22.12+).
 */
export type WorkerAccept = 'shared-socket' | 'reuse-port';

/** Where workers accept: the shared listening socket (children) or the address to listen on with reusePort (threads). */
export interface SharedListener {
  handle?: unknown;
  address?: { host: string; port: number; backlog: number };
  /** The handle is a bound UDP socket that children read datagrams from (not a listening socket): its maxPacketSize. */
  datagrams?: { maxPacketSize: number; /** Datagrams each child holds at most: the server's maxQueuedDatagrams. */ maxHeld?: number };
  /** Called once a worker has listened on the shared handle (primed it, or accepts from it): the socket listens now. */
  listens?: () => void;
}

/** The server a pool whose workers accept reports their connections to. */
export type AcceptingServer = RemoteServer & RequestProcessor<RemoteRequest> & { shutdownTimeout?: number | null };

/** Milliseconds a retiring worker gets to send its last report before it is ended. */
const FINAL_REPORT_MS = 1000;
/** Milliseconds a worker ended on purpose gets to dispose its singletons (their dispose() methods) before it is ended anyway. */
const DISPOSE_MS = 5000;
/** Milliseconds a worker ended with connections running gets to end them itself and send back their counts (abandon()). */
const ABANDON_MS = 500;

/** Seconds, when bootstrap() or the mixin does not say. */
export const DEFAULT_HEARTBEAT_TIMEOUT = 30;

export { reportPeriodMs } from './remote/remote-slot';


/**
 * Connections on a pool of workers (threads or child processes), each worker an event loop serving many
 * connections at once, as nginx workers and Node's cluster workers do. A new connection goes to the
 * worker with the fewest open connections; the pool starts `warm` workers and grows (to `max`) only
 * while every worker holds `perWorker` connections (connectionsPerThread: 1 is Python's one connection
 * per thread). Past `max` a connection still never waits: it shares the least-loaded worker and is
 * counted `oversubscribed`. `perRequest` starts a fresh worker per connection, as Python does.
 * A datagram is a request of microseconds, not a connection: when every worker is full it waits for the
 * first to free up, and only while datagrams keep waiting (blocked handlers) does the pool grow, by one
 * worker every GROW_AFTER_MS (`growing`), instead of one worker per datagram in flight (a burst of 100
 * started 62 threads, 1 GB, and was answered later than by the two threads there were).
 *
 * Workers above `warm` exit after `idleTimeoutMs` without a connection; a worker that has taken
 * `maxConnectionsPerWorker` connections retires (Apache's MaxConnectionsPerChild) once its own have
 * ended, bounded by the server's shutdownTimeout, and a fresh one takes its place. A worker that dies
 * fails its own connections only (RemoteSlot) and is replaced; more than 5 deaths within 10 s delay the
 * replacements (1 s doubling to 30 s), logged once per backoff. Past shutdown's timeout, abort() ends
 * the workers still serving.
 */
export class WorkerPoolStrategy implements ConcurrencyStrategy<RemoteRequest>, AdoptedEnds {
  private readonly slots = new Set<RemoteSlot>();
  /** Requests in flight, by their promise (what the server sees of each: the request). */
  private readonly running = new Map<Promise<void>, RemoteRequest>();
  /** Connections the workers accepted themselves, until their end (adoptedEnded). */
  private readonly adopted = new Set<WorkerAcceptedConnection>();
  /** Workers in a row that could not start: past START_ATTEMPTS the pool stops starting more until a connection asks. */
  private startFailures = 0;
  /** start() is waiting for the warm workers: it reports their failure itself. */
  private startingUp = false;
  /** When the last worker failed to start (performance.now() ms), and why. */
  private lastStartFailure: { at: number; error?: Error } = { at: -Infinity };
  private readonly idleTimers = new Map<RemoteSlot, NodeJS.Timeout>();
  /** Connections waiting for a worker while none is alive (every worker died and the backoff holds). */
  private readonly waiters: Array<{ resolve: (slot: RemoteSlot) => void; reject: (err: Error) => void }> = [];
  /** Datagrams waiting for a worker below perWorker (see the class comment), each resolved with its worker already loaded. */
  private readonly datagramWaiters: Array<{ resolve: (slot: RemoteSlot) => void; reject: (err: Error) => void }> = [];
  /** Workers started because datagrams wait, until each is ready or has failed. */
  private readonly growing = new Set<RemoteSlot>();
  /** Armed while datagrams wait and no worker is starting for them (growSoon()). */
  private growTimer: NodeJS.Timeout | undefined;
  private readonly warm: number;
  private closed = false;
  /** close() came from a second signal during the drain (its `urgent`): a worker that does not answer gets no grace. */
  private closingUrgently = false;
  /** Between stopReading() (shutdown) and the end of drain(): requests that start now are told to stop too. */
  private stopping = false;
  /**
   * shutdown's stopAccepting() while it runs: each worker answers it after reporting every connection it
   * accepted before, so a drain that awaits it first knows them all (a connection accepted an instant before
   * shutdown() may still be reported on its way).
   */
  private unlistening: Promise<void> | undefined;
  private deaths: number[] = [];
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  /**
   * Workers being ended now (retire(), or one that never became ready): close() waits for these too, so that
   * no worker outlives it. A worker taken out of `slots` before close() (a failed start, abort(), recycling)
   * still runs until its kill() or end() resolves.
   */
  private readonly ending = new Set<Promise<void>>();
  /** Each worker's last report and the counts of exited ones (worker-report.ts): stats() and events. */
  private readonly book = new WorkerStatsBook();
  /** The last server.setSecureContext(): workers started later get it too. */
  private secureContext: SecureContextOptions | undefined;
  /** handleRequest() waiting for a worker to accept one connection (nextAccepted()). */
  private readonly acceptedWaiters = new Set<(got: boolean) => void>();
  /** Workers retiring because they were idle above warm (not recycled): their connections get no shutdownTimeout. */
  private readonly idleRetiring = new WeakSet<RemoteSlot>();
  /** Retiring workers that still accept because no other worker does yet (stopAcceptingOnceCovered()). */
  private readonly uncovered = new Set<RemoteSlot>();
  /** Where workers accept connections themselves (shareListener()), and whether they do now. */
  private shared: (SharedListener & { server: AcceptingServer; accepting: boolean; draining: boolean; closed: boolean }) | undefined;

  constructor(
    private readonly options: PoolOptions,
    private readonly handlerName: string,
  ) {
    this.warm = options.perRequest ? 0 : Math.min(options.warm, options.max);
  }

  /** Stops telling this pool of new subscribers (close()). */
  private unwatchInterest: (() => void) | undefined = onWorkerInterest(() => this.followInterest());

  /**
   * Requests in flight now: those handed over and those the workers accepted. A child's records of the
   * connections it accepted are taken in first (catchUp), as stats() does; else shutdown's "draining N
   * requests" line missed those not yet read (every 20 ms to 1 s).
   */
  get active(): number {
    for (const slot of this.slots) slot.catchUp();
    return this.running.size + this.adopted.size;
  }

  /** Live workers. */
  get workers(): number {
    return this.slots.size;
  }

  /**
   * restarts, oversubscribed, each live worker (its open connections as the pool counts them now, the
   * rest from its last report, at most one report period old), and the counters workers reported,
   * those of exited workers included.
   */
  stats(): PoolStats {
    for (const slot of this.slots) slot.catchUp();
    const book = this.book.snapshot();
    const reported = new Map(book.workers.map((w) => [w.id, w]));
    const workers = [...this.slots].map((s): WorkerStats => ({ heapUsedBytes: 0, ...reported.get(s.id), id: s.id, ...s.ids, requests: reported.get(s.id)?.requests ?? 0, connections: s.load }));
    return { ...book, workers };
  }

  /**
   * Whether new connections go to their worker unread, their PROXY header, TLS handshake and @Verify run
   * there (API.md §3), so that handshakes use the workers' cores: in the pooled modes (many connections per
   * worker). The worker owns the socket where it can (children; threads over TCP where Node moves sockets,
   * 24.21+, 26.6+); elsewhere the main thread relays the connection's raw bytes, TLS records included. Not
   * with `connectionsPerThread: 1` or `perRequest`, where each connection costs a worker, so a client
   * refused by @Verify (or a failed handshake) must not cost one: the main thread runs those first.
   */
  ownsUnread(_endpoint: 'tcp' | 'unix'): boolean {
    return !this.options.perRequest && this.options.perWorker > 1;
  }

  /**
   * Whether this pool's workers can accept connections of this kind themselves (API.md §3), and how: in the
   * pooled modes with no bound on a worker's connections only (not with `connectionsPerThread`/`connectionsPerChild`,
   * nor `perRequest`, where each connection is placed on a worker by the main thread: a child accepting from the
   * shared socket took every connection, past its connectionsPerChild, while the pool never grew, hostile run);
   * children from the shared listening socket where Node can bind one without accepting on it; threads over TCP
   * with reusePort (Node 22.12+). The server
   * also keeps the main-thread accept when a global limit or a verifyRequest of its own needs every
   * connection to pass through it (StreamServer).
   */
  acceptsItself(endpoint: 'tcp' | 'unix' | 'udp'): WorkerAccept | undefined {
    if (this.options.perRequest || Number.isFinite(this.options.perWorker)) return undefined;
    if (endpoint === 'udp') return this.options.mode === 'forking' && canChildrenShareDatagrams() ? 'shared-socket' : undefined;
    if (this.options.mode === 'forking') return canChildrenShareListener() ? 'shared-socket' : undefined;
    return endpoint === 'tcp' && canThreadsListenReusePort() ? 'reuse-port' : undefined;
  }

  /**
   * From now on the workers may accept from `listener` (startAccepting() lets them): each connection a
   * worker accepts is adopted (counted, drained at shutdown, failed with the worker that dies) and reported
   * to `server`. A shared listening socket (children) is first primed: one child listens on it once and
   * closes its copy, so the socket listens, with nobody accepting, until startAccepting().
   */
  async shareListener(listener: SharedListener, server: AcceptingServer): Promise<void> {
    // The server's maxQueuedDatagrams, shared among the children that read its socket (the pool's `children`): each held
    // that many, so two children held 8192 where the docs, and @Concurrent and @Threading, hold 4096 (hostile run).
    const held = listener.datagrams?.maxHeld;
    if (held !== undefined && listener.datagrams) listener = { ...listener, datagrams: { ...listener.datagrams, maxHeld: Math.max(1, Math.ceil(held / Math.max(1, this.warm))) } };
    this.shared = { ...listener, server, accepting: false, draining: false, closed: false };
    // A UDP socket needs no priming: it is bound, and datagrams wait in its queue until a child reads.
    if (listener.handle === undefined || listener.datagrams) return;
    for (let attempt = 1; attempt <= START_ATTEMPTS && !this.closed; attempt++) {
      const slot = [...this.slots].find((s) => s.started && !s.dead) ?? [...this.slots].find((s) => !s.dead);
      if (!slot) return;
      try {
        await slot.ready;
        await slot.listen(listener, false, true);
        listener.listens?.();
        return;
      } catch {
        // it died first: the next one tries
      }
    }
    // Workers that die at once (the backoff's case): the first that listens for startAccepting() makes the
    // socket listen; until then a client is refused, as before binding.
  }

  /** The workers accept (serveForever() began); resolves once every live worker listens. */
  async startAccepting(): Promise<void> {
    const shared = this.shared;
    if (!shared || shared.accepting || shared.closed || this.closed) return;
    shared.accepting = true;
    await Promise.all([...this.slots].filter((s) => s.started && !s.dead && !s.retiring).map((s) => this.listenOn(s)));
  }

  /**
   * The workers stop accepting (shutdown, SIGTERM's stopListening, close); `stop`: they also stop reading
   * their connections, as stopReading() does for those the pool knows (a connection whose `accepted` is
   * still on its way included). Resolves once every worker's listener is closed. A worker that has not
   * closed its listener after `boundMs` (its event loop blocked: it cannot) is ended as shutdownTimeout ends
   * a request that overruns, its connections failing with a RequestTimeoutError: while it lives, a listening
   * socket it shares stays open, and new clients would wait in the kernel's queue instead of being refused
   * until the heartbeat ended it.
   */
  async stopAccepting(stop = false, forGood = false, boundMs = Infinity): Promise<void> {
    const shared = this.shared;
    if (!shared) return;
    shared.accepting = false;
    if (forGood) shared.closed = true;
    const asked = [...this.slots].filter((s) => s.listening || stop);
    const answered = new Set<RemoteSlot>();
    const answers = Promise.all(asked.map((s) => s.unlisten(stop).then(() => void answered.add(s))));
    this.coverRetiring(); // every listener is closing: those that waited for a successor to accept wait no more
    if (await settledWithin(answers, boundMs)) return;
    await Promise.all(asked.filter((s) => !answered.has(s) && !s.dead).map((s) => this.retire(s, 'shutdownTimeout')));
  }

  /** SIGTERM's drainDelay began: workers that accept close PROXY LOCAL health checks unanswered. */
  beginDrain(): void {
    if (!this.shared) return;
    this.shared.draining = true;
    for (const slot of this.slots) slot.draining();
  }

  /** Resolves true when a worker has accepted a connection (the next one from now), false after `ms`. */
  nextAccepted(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), Math.min(ms, 2 ** 31 - 1));
      const done = (got: boolean) => {
        clearTimeout(timer);
        this.acceptedWaiters.delete(done);
        resolve(got);
      };
      this.acceptedWaiters.add(done);
    });
  }

  /** Every worker (and every one started later) gives new connections this certificate; open ones keep theirs. */
  setSecureContext(options: SecureContextOptions): Promise<void> {
    this.secureContext = options;
    return Promise.all([...this.slots].filter((s) => s.started && !s.dead).map((s) => s.setSecureContext(options))).then(() => undefined);
  }

  /** Starts the warm pool and proves the handler loads in a worker; a failure is a ConfigurationError. */
  async start(): Promise<void> {
    // Asked for and not to be had on this Node: said once, or nothing shows that the setting did nothing (new-user run).
    if (this.options.mode === 'threading' && process.env.SOCKSERVE_THREADS_REUSEPORT === '1' && !supportsReusePort()) {
      this.options.info?.(messages.reusePortIgnored(this.handlerName, process.version));
    }
    this.startingUp = true;
    const first = Array.from({ length: Math.max(1, this.warm) }, () => this.spawn());
    try {
      await Promise.all(first.map((s) => s.ready));
    } catch (err) {
      await this.close();
      throw new ConfigurationError(messages.workerLoadFailed(this.handlerName, this.options.mode, (err as Error).message));
    } finally {
      this.startingUp = false;
    }
    if (this.warm === 0) await Promise.all(first.map((s) => this.retire(s)));
  }

  /** Hands the connection to a worker at once (never waits for one): the loop takes the next one right away. */
  async dispatch(server: RequestProcessor<RemoteRequest>, request: RemoteRequest, clientAddress: ClientAddress): Promise<void> {
    if (this.closed) throw this.closedError();
    // Forgotten as it ends (processInBackground never rejects): one closure, no promise or reaction of its own.
    const run: Promise<void> = processInBackground(this.processorFor(server), request, clientAddress, () => void this.running.delete(run));
    this.running.set(run, request);
  }

  /**
   * A request whose verification runs here, counted as running until its verdict (see ConcurrencyStrategy.aside).
   * Shutdown's timeout and close() stop waiting for a verdict that never comes; one that comes later is
   * dispatched and refused as after close().
   */
  aside(verdict: Promise<void>, request: RemoteRequest, clientAddress: ClientAddress): void {
    let end!: () => void;
    const run: Promise<void> = Promise.race([verdict, new Promise<void>((resolve) => (end = resolve))]).then(() => {
      this.running.delete(run);
      this.asideEnds.delete(end);
    });
    this.running.set(run, request);
    this.asideEnds.set(end, [request, clientAddress]);
  }

  /** What ends each aside() wait (abort() and close() call them), and its request. */
  private readonly asideEnds = new Map<() => void, [RemoteRequest, ClientAddress]>();

  pendingVerdicts(): Iterable<[RemoteRequest, ClientAddress]> {
    return this.asideEnds.values();
  }

  /** The last server dispatch() served, and what runs its requests here: one object for all its requests, not three closures each. */
  private processor: { server: RequestProcessor<RemoteRequest>; runs: RequestProcessor<RemoteRequest> } | undefined;

  private processorFor(server: RequestProcessor<RemoteRequest>): RequestProcessor<RemoteRequest> {
    if (this.processor?.server === server) return this.processor.runs;
    const runs: RequestProcessor<RemoteRequest> & BoundedHooks = {
      finishRequest: (r, a) => this.serve(r, a, server as unknown as RemoteServer, (server as { shutdownTimeout?: number | null }).shutdownTimeout ?? null),
      shutdownRequest: (r) => server.shutdownRequest(r),
      handleError: (r, a, e) => server.handleError(r, a, e),
      // The error kept for an override that leaves it out (BaseServer.callHandleError): handleErrorSafely calls this.
      callHandleError: (r, a, e) => (server.callHandleError ? server.callHandleError(r, a, e) : server.handleError(r, a, e)),
      // What bounds the server's request-ending hooks, and names it in their log lines (processInBackground).
      hooksOf: server,
    };
    this.processor = { server, runs };
    return runs;
  }

  /** Every request in flight with what settles once it has ended: those handed over, and those the workers accepted. */
  private *unfinished(): Iterable<[Promise<unknown>, RemoteRequest]> {
    yield* this.running;
    for (const connection of this.adopted) yield [connection.ended(), connection];
  }

  /** Resolves once every request in flight has finished, but those in `except` (requests awaiting the shutdown they asked for). */
  async drain(except?: ShutdownCallers<RemoteRequest>): Promise<void> {
    while (this.unlistening) {
      const unlistening = this.unlistening;
      await unlistening;
      if (this.unlistening === unlistening) this.unlistening = undefined;
    }
    await drainRunning(() => this.unfinished(), except);
    if (except === undefined) this.stopping = false; // the loop has stopped; a new serveForever() reads as usual
  }

  /**
   * A classic pool's serverClose() (Python's server_close() on a ThreadingMixIn/ForkingMixIn server), once the
   * workers accept no more: the connections still in their PROXY header or TLS handshake in a worker close, as
   * the server's own process closes its own (they held serverClose() for lineTimeout, 30 s); requests go on.
   */
  closePreambles(): void {
    for (const slot of this.slots) slot.stopReading(true);
  }

  stopReading(): void {
    this.stopping = true;
    for (const slot of this.slots) slot.stopReading();
    if (this.shared) this.unlistening = this.stopAccepting(true);
  }

  /**
   * Shutdown's timeout passed: ends the workers still serving a connection; each connection fails with a
   * RequestTimeoutError (reported, as an abandoned request in the server's process), and the worker is
   * replaced. Retired on purpose, so no death towards the backoff.
   */
  abort(): void {
    for (const end of [...this.asideEnds.keys()]) end();
    this.rejectWaiting('shutdownTimeout');
    for (const slot of [...this.slots]) if (slot.load > 0) void this.retire(slot, 'shutdownTimeout');
  }

  /** Requests still waiting for a worker end as those in a worker do at shutdown's timeout or close(): a RequestTimeoutError (routine). */
  private rejectWaiting(why: 'shutdownTimeout' | 'close'): void {
    const error = new RequestTimeoutError(messages.waitingEnded(this.options.mode, why));
    for (const waiter of [...this.waiters.splice(0), ...this.datagramWaiters.splice(0)]) waiter.reject(error);
  }

  async close(urgent = false, signal?: string): Promise<void> {
    this.closed = true;
    // The requests a second signal's close ends say so, as the server's own process's do (they read as a plain close: hostile run).
    if (signal !== undefined) for (const slot of this.slots) slot.closedBySignal = { owner: this.handlerName, signal };
    this.closingUrgently ||= urgent;
    this.unwatchInterest?.();
    this.unwatchInterest = undefined;
    for (const end of [...this.asideEnds.keys()]) end();
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    clearTimeout(this.backoffTimer);
    clearTimeout(this.growTimer);
    this.rejectWaiting('close');
    for (const waiter of [...this.acceptedWaiters]) waiter(false); // a handleRequest() waiting for a worker's request returns
    // Workers that accept stop first (bounded: one whose event loop is blocked cannot answer, and is ended below): a
    // child went on accepting and serving new clients while close() ended the others' requests, its singletons' dispose()
    // took up to 5 s more (hostile run).
    const shared = this.shared;
    if (shared && !shared.closed) {
      shared.accepting = false;
      shared.closed = true;
      const listening = [...this.slots].filter((s) => s.listening && !s.dead).map((s) => s.unlisten(false));
      if (!this.closingUrgently) await settledWithin(Promise.all(listening), UNLISTEN_AT_CLOSE_MS);
    }
    await Promise.all([...this.slots].map((s) => this.retire(s, 'close')));
    while (this.ending.size > 0) await Promise.all([...this.ending]);
    // The requests the workers' ends failed are reported (handleError) and closed (shutdownRequest) on chains of
    // their own: close() resolved before they had, so stats().active still counted them and their request.end came
    // after (hostile run: active 1 to 3 right after close()). Each report is bounded already (handleErrorSafely).
    if (this.running.size > 0) await settledWithin(Promise.all(this.running.keys()), ((this.shutdownBound ?? REPORTS_AT_CLOSE_S) + 1) * 1000);
  }

  /** Keeps a worker's end in `ending` until it settles, for close() to await; returns it as it came. */
  private track(ending: Promise<void>): Promise<void> {
    const settled = ending.then(
      () => undefined,
      () => undefined,
    );
    this.ending.add(settled);
    void settled.then(() => this.ending.delete(settled));
    return ending;
  }

  // ---- one connection ----

  /** One request: a datagram within the pool's bound on datagrams (serveDatagram), a connection at once. */
  private serve(request: RemoteRequest, client: ClientAddress, server: RemoteServer, shutdownTimeout: number | null): Promise<void> {
    this.shutdownBound = shutdownTimeout;
    if (Array.isArray(request)) return this.serveDatagram(request, client, server, shutdownTimeout);
    return this.serveOne(request, client, server, shutdownTimeout);
  }

  /** A datagram: served as any request while the pool holds fewer than its bound, else dropped (counted in the server's `dropped`). */
  private async serveDatagram(request: RemoteRequest, client: ClientAddress, server: RemoteServer, shutdownTimeout: number | null): Promise<void> {
    const bound = (server as { maxQueuedDatagrams?: number }).maxQueuedDatagrams ?? DATAGRAMS_IN_POOL_MAX;
    if (this.datagramsInPool >= bound) {
      // The request itself: the loop took it (and counted it accepted) before the pool dropped it (datagramDropped un-counts it).
      (server as { datagramDropped?: (taken?: object) => void }).datagramDropped?.(request as object);
      return;
    }
    this.datagramsInPool++;
    try {
      await this.serveOne(request, client, server, shutdownTimeout);
    } finally {
      this.datagramsInPool--;
    }
  }

  /**
   * A connection past CONNECTIONS_WAITING_MAX while no worker is alive: refused as a limit refuses one (closed
   * with nothing read, counted in `rejected`, no hook), said once until a worker serves again.
   */
  private async refuseWaiting(client: ClientAddress, server: RemoteServer): Promise<void> {
    if (!this.refusingWaiting) {
      this.refusingWaiting = true;
      this.options.log(messages.connectionsWaitingFull(this.handlerName, this.options.mode, CONNECTIONS_WAITING_MAX));
    }
    await server.connectionDropped?.('rejected', client, undefined, true);
  }

  /** Connections are being refused for want of a live worker (refuseWaiting); cleared once one is ready. */
  private refusingWaiting = false;

  /** Datagrams the pool holds now (serveDatagram). */
  private datagramsInPool = 0;

  /** Runs one request on a worker, trying another when the one picked could not start. */
  private async serveOne(request: RemoteRequest, client: ClientAddress, server: RemoteServer, shutdownTimeout: number | null, placed = 0): Promise<void> {
    this.followInterest();
    for (let attempt = 1; ; attempt++) {
      const slot = await this.pick(Array.isArray(request));
      if (!slot) return this.refuseWaiting(client, server);
      try {
        await slot.ready;
      } catch (err) {
        this.unload(slot, shutdownTimeout);
        // Its worker was ended by the pool as it started (shutdown's timeout, close()): the request ends as one still
        // waiting for a worker, not tried on a fresh one (which kept shutdown waiting for another worker's start,
        // 11 s with shutdownTimeout 4, and reported the request as a handler abandoned: hostile run).
        const ended = slot.endedBecause;
        if (ended === 'shutdownTimeout' || ended === 'close') throw new RequestTimeoutError(messages.waitingEnded(this.options.mode, ended));
        if (attempt >= START_ATTEMPTS || this.closed) throw this.closed ? this.closedError() : this.startError(err as Error);
        continue;
      }
      const done = slot.run(request, client, server);
      if (this.stopping) slot.stopReading(); // it waited for a worker while shutdown began
      // Returned, not awaited: this frame ends here, and the connection's life is waited for by a reaction
      // (an idle connection would otherwise keep a suspended frame, its registers and context, for its life).
      return this.ended(done, slot, client, server, shutdownTimeout).catch((err: unknown) => {
        // Its worker died before it took the connection (its descriptor never left): another worker takes it,
        // a few times at most (workers that die as they are handed connections).
        if (!(err instanceof NotTakenError)) throw err;
        if (placed + 1 >= START_ATTEMPTS || this.closed) {
          const error = slot.crashedError(Array.isArray(request));
          err.publishEnd?.(error);
          throw error;
        }
        return this.serveOne(request, client, server, shutdownTimeout, placed + 1);
      });
    }
  }

  /** The end of a request running on `slot`: a connection dropped before its lifecycle is counted as the server's own; the worker's load goes down. */
  private ended(done: Promise<DroppedInWorker | undefined>, slot: RemoteSlot, client: ClientAddress, server: RemoteServer, shutdownTimeout: number | null): Promise<void> {
    const unloadThenRethrow = (err: unknown): never => {
      this.unload(slot, shutdownTimeout);
      throw err;
    };
    return done.then((dropped) => {
      if (!dropped) return this.unload(slot, shutdownTimeout);
      // Handed over unread, it ended before its lifecycle (@Verify refused it, or a health check): counted as the server's own.
      let counted: unknown;
      try {
        counted = server.connectionDropped?.(dropped, client, undefined, true);
      } catch (err) {
        counted = Promise.reject(err);
      }
      return Promise.resolve(counted).then(() => this.unload(slot, shutdownTimeout), unloadThenRethrow);
    }, unloadThenRethrow);
  }

  /**
   * The worker for a new connection, reserved at once (its load counts it before it runs): the
   * least-loaded worker below `perWorker`; else a new one while below `max`; else the least-loaded
   * (oversubscribed). With perRequest, always a fresh one while below `max`. With no worker alive, the
   * connection waits for the next one; undefined when CONNECTIONS_WAITING_MAX already wait.
   */
  private async pick(datagram = false): Promise<RemoteSlot | undefined> {
    if (this.closed) throw this.closedError();
    let best: RemoteSlot | undefined;
    let bestStarted: RemoteSlot | undefined;
    let anyLive: RemoteSlot | undefined; // retiring ones too: past max, sharing one beats waiting
    let starting = false;
    let startedLive = false;
    /** Connections booked on workers still starting: those wait too. */
    let bookedOnStarting = 0;
    // A worker quiet for half its heartbeatTimeout while another speaks has a blocked event loop (or one long
    // synchronous task): no new work while another worker can take it (RemoteSlot.quietSince()); shared last.
    let freshest = 0;
    for (const slot of this.slots) if (slot.started && slot.heardAt > freshest) freshest = slot.heardAt;
    // Above warm, idle workers are taken last-used first, so that those not needed idle out (armIdleTimer, by the
    // same count): in turn, a health check a second kept every worker of a grown pool alive (new user behind
    // HAProxy: 8 threads and their descriptors for as long as the checks came).
    const lifo = this.servingCount() > this.warm;
    let anyLiveQuiet = false;
    for (const slot of this.slots) {
      if (slot.dead || slot.leaving) continue;
      if (!slot.started) {
        starting = true;
        bookedOnStarting += slot.load;
      } else startedLive = true;
      const quiet = slot.quietSince(freshest);
      if (!anyLive || (anyLiveQuiet && !quiet) || (anyLiveQuiet === quiet && lessLoaded(slot, anyLive))) {
        anyLive = slot;
        anyLiveQuiet = quiet;
      }
      if (slot.retiring || quiet) continue;
      if (!best || lessLoaded(slot, best, lifo)) best = slot;
      if (slot.started && (!bestStarted || lessLoaded(slot, bestStarted, lifo))) bestStarted = slot;
    }
    // A worker still starting has the fewest connections, but may never be ready (its module's start-up hangs,
    // until the start bound): connections go to a started worker with room first (hostile run: half of them
    // waited on a replacement that hung loading).
    if (bestStarted !== undefined && bestStarted.load < this.options.perWorker) best = bestStarted;
    // Since a start failed (a module that throws, EMFILE…) and until one succeeds, one worker starts at a
    // time; after START_ATTEMPTS failures in a row, one every START_RETRY_MS at most, and in between a
    // request with no worker to go to fails at once with the reason: a flood meets no storm of starts.
    const mayStart = this.startFailures === 0 || (!starting && (this.startFailures < START_ATTEMPTS || performance.now() - this.lastStartFailure.at >= START_RETRY_MS));
    if (!mayStart && !anyLive) throw this.startError(this.lastStartFailure.error!);
    // Workers have died and none is serving now: the connections waiting for one (booked on a replacement still
    // starting, or in `waiters` during the backoff) are bounded. Booked on a slow replacement, a flood was held
    // whole (hostile re-check: 1,500 descriptors).
    if (!datagram && !startedLive && bookedOnStarting + this.waiters.length >= CONNECTIONS_WAITING_MAX && this.diedRecently()) return undefined;
    const room = !this.options.perRequest && best !== undefined && best.load < this.options.perWorker;
    let chosen: RemoteSlot | undefined = room ? best : undefined;
    if (!chosen && datagram && best?.started && !this.options.perRequest && this.datagramWaiters.length < DATAGRAMS_WAITING_MAX && (this.growing.size > 0 || this.canGrow())) {
      this.growSoon();
      return new Promise<RemoteSlot>((resolve, reject) => this.datagramWaiters.push({ resolve, reject }));
    }
    if (!chosen && mayStart && this.slots.size < this.options.max && !this.backoffTimer) {
      try {
        chosen = this.spawn();
      } catch {
        chosen = undefined; // new Worker() or fork() threw: share a live worker if there is one
      }
    }
    const shared = best ?? anyLive;
    if (!chosen && shared) {
      chosen = shared;
      this.book.oversubscribed++;
    }
    if (!chosen) {
      if (!datagram && bookedOnStarting + this.waiters.length >= CONNECTIONS_WAITING_MAX) return undefined;
      chosen = await new Promise<RemoteSlot>((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
    this.load(chosen);
    return chosen;
  }

  /** Connections and datagrams given to workers so far (RemoteSlot.lastPicked). */
  private picks = 0;

  /** A worker died within DEATH_WINDOW_MS (the backoff's window); one crash long ago bounded cold starts for good. */
  private diedRecently(): boolean {
    const now = Date.now();
    return this.deaths.some((t) => now - t < DEATH_WINDOW_MS);
  }

  private canGrow(): boolean {
    return this.slots.size < this.options.max && !this.backoffTimer;
  }

  /** Datagrams wait: unless workers free up for them within GROW_AFTER_MS (they are short), start workers for them. */
  private growSoon(): void {
    if (this.growTimer) return;
    this.growTimer = setTimeout(() => {
      this.growTimer = undefined;
      if (!this.closed) this.growOrShare();
    }, GROW_AFTER_MS);
  }

  /**
   * Starts one worker for the datagrams waiting, if no starting worker will take each of them already, and
   * looks again GROW_AFTER_MS later: the pool grows by one worker per GROW_AFTER_MS while datagrams wait.
   * False when none is starting and none could start.
   */
  private grow(): boolean {
    if (this.growing.size < this.datagramWaiters.length && this.canGrow() && this.startFailures === 0) {
      try {
        this.growing.add(this.spawn());
      } catch {
        // new Worker() or fork() threw: the datagrams share the workers there are
      }
    }
    if (this.datagramWaiters.length > this.growing.size && this.growing.size > 0) this.growSoon();
    return this.growing.size > 0;
  }

  /** `slot` has room (a request of it ended, or it is ready): waiting datagrams take it, up to perWorker. */
  private handToWaitingDatagrams(slot: RemoteSlot): void {
    while (this.datagramWaiters.length > 0 && slot.load < this.options.perWorker && !slot.retiring && !slot.dead && !slot.leaving) {
      this.load(slot);
      this.datagramWaiters.shift()!.resolve(slot);
    }
    if (this.datagramWaiters.length > this.growing.size) this.growSoon();
  }

  /** Datagrams have waited GROW_AFTER_MS: start workers for them, or (at max, or none can start) share the least-loaded. */
  private growOrShare(): void {
    if (this.datagramWaiters.length > 0 && !this.grow()) this.shareWithWaitingDatagrams();
  }

  /**
   * Each waiting datagram goes to the least-loaded started worker now (oversubscribed). With none started,
   * after `failed` (the worker started for them could not start) each fails with that reason; else each
   * waits with the connections for the next worker to start.
   */
  private shareWithWaitingDatagrams(failed?: Error): void {
    for (const waiter of this.datagramWaiters.splice(0)) {
      let least: RemoteSlot | undefined;
      for (const slot of this.slots) if (slot.started && !slot.dead && !slot.leaving && !slot.retiring && (!least || slot.load < least.load)) least = slot;
      if (least) {
        this.book.oversubscribed++;
        this.load(least);
        waiter.resolve(least);
      } else if (failed) {
        waiter.reject(this.startError(failed));
      } else {
        // Loaded when one starts, as pick() loads its own.
        this.waiters.push({ resolve: (slot) => (this.load(slot), waiter.resolve(slot)), reject: waiter.reject });
        this.replace();
      }
    }
  }

  /** The server's shutdownTimeout (seconds; null: none), as serve() and the accepting server give it. */
  private shutdownBound: number | null = null;

  /** A connection goes to `slot` (an idle timer stops; a recycled worker's bound, boundRecycled(), stays). */
  private load(slot: RemoteSlot): void {
    if (!slot.retiring) {
      clearTimeout(this.idleTimers.get(slot));
      this.idleTimers.delete(slot);
    }
    slot.load++;
    slot.served++;
    slot.lastPicked = ++this.picks;
    if (!slot.retiring && (this.options.perRequest || slot.served >= this.options.maxConnectionsPerWorker)) {
      slot.retiring = true; // takes no more; a fresh worker takes its place
      this.stopAcceptingOnceCovered(slot); // and accepts no more itself, once another worker does
      // Its connections get shutdownTimeout from now (API.md §3): armed only when one of several ended, a worker
      // whose connections all stayed open outlived it (hostile run: 5 s for a bound of 1 s). perRequest's one
      // connection runs as long as it takes, as a request does.
      if (!this.options.perRequest) this.boundRecycled(slot, this.shutdownBound);
      this.replace();
    }
  }

  /** Ends the recycled `slot` after `shutdownTimeout` seconds if its connections have not all ended by then. */
  private boundRecycled(slot: RemoteSlot, shutdownTimeout: number | null): void {
    if (shutdownTimeout === null || this.idleTimers.has(slot)) return;
    // Counted from its start: one that reached its count while still starting runs none of them yet, and was
    // ended unready once a start took longer than shutdownTimeout, each of its requests failing and counted as
    // a failed start (hostile run: 70 of 100 datagrams of a burst lost, with shutdownTimeout 0.5 s).
    if (!slot.started) {
      slot.ready.then(() => {
        if (!slot.dead && this.slots.has(slot)) this.boundRecycled(slot, shutdownTimeout);
      }, () => undefined);
      return;
    }
    const timer = setTimeout(() => void this.retire(slot, 'recycled'), shutdownTimeout * 1000);
    timer.unref();
    this.idleTimers.set(slot, timer);
  }

  /**
   * A thread that listens with reusePort itself and has reached maxConnectionsPerThread stops accepting at
   * once while another worker that is not retiring accepts; otherwise it goes on accepting (past its count)
   * until one does: its successor, once that listens (coverRetiring()). (A child on the shared socket stops
   * itself at its count, and its queue waits for the others: full().) Workers spread evenly reach
   * their counts together, and stopping them all at once left nobody accepting for a worker's start-up
   * (hostile-client run: p99 482 ms against 43 ms without recycling).
   */
  private stopAcceptingOnceCovered(slot: RemoteSlot): void {
    if (!slot.listening) return;
    for (const other of this.slots) {
      if (other !== slot && other.listening && !other.retiring && !other.dead) return void slot.unlisten(false);
    }
    this.uncovered.add(slot);
  }

  /** A worker that is not retiring accepts now: the retiring ones still accepting for want of one stop, and go once they hold nothing. */
  private coverRetiring(): void {
    for (const slot of [...this.uncovered]) {
      this.uncovered.delete(slot);
      if (slot.dead) continue;
      if (slot.listening) void slot.unlisten(false);
      if (slot.load === 0) this.retireOnceQuiet(slot, this.retirementOf(slot));
    }
  }

  /**
   * A worker that accepts from the shared socket took the connection that makes its count and stopped
   * accepting itself, then and there (worker-runtime.ts): it no longer keeps the socket covered, and goes
   * once its connections have ended. Its records were read first (they come before this message), so it is
   * retiring and its successor is starting; meanwhile new clients wait in the kernel's queue, or another worker takes them.
   */
  private full(slot: RemoteSlot): void {
    if (slot.dead || this.closed) return;
    if (!slot.retiring) {
      slot.retiring = true;
      this.replace();
    }
    if (this.uncovered.delete(slot) && slot.load === 0) this.retireOnceQuiet(slot, this.retirementOf(slot));
  }

  /**
   * A worker that accepts from the shared socket has taken most of its count: its successor starts now and
   * accepts beside it, so that the socket has an acceptor when this one stops at its count (a pool of one,
   * or workers reaching their counts together, left clients waiting in the kernel's queue for a process's
   * start-up). The pool is one over its size meanwhile (never more: the first worker to come near its count
   * starts the one extra); when this one retires, replace() starts nobody. One
   * that never reaches its count (the load fell) retires as any worker above the pool's size does, idle.
   */
  private startSuccessor(slot: RemoteSlot): void {
    if (slot.retiring || slot.dead || this.closed || this.backoffTimer || !this.shared?.accepting) return;
    // One worker over the pool's size at most: another's successor already started covers this one too.
    if (this.servingCount() > this.warm) return;
    try {
      this.spawn();
    } catch {
      return; // it cannot start now: replace() tries again when this one retires
    }
    if (slot.load === 0 && !this.idleTimers.has(slot)) this.armIdleTimer(slot);
  }

  /** Why a retiring worker goes (worker.exit says so): recycled past its count; perRequest's and an idle one simply retire. */
  private retirementOf(slot: RemoteSlot): 'recycled' | 'retired' {
    return this.options.perRequest || this.idleRetiring.has(slot) ? 'retired' : 'recycled';
  }

  /** A connection of `slot` ended: retire it when it is done serving, or time it out when idle above warm. */
  private unload(slot: RemoteSlot, shutdownTimeout: number | null): void {
    slot.load--;
    if (slot.dead || this.closed) return;
    if (this.datagramWaiters.length > 0) this.handToWaitingDatagrams(slot);
    if (slot.retiring) {
      // Still accepting until another worker does (stopAcceptingOnceCovered): coverRetiring() retires it then.
      if (this.uncovered.has(slot)) return;
      if (slot.load === 0) this.retireOnceQuiet(slot, this.retirementOf(slot));
      else if (!this.idleRetiring.has(slot) && !this.options.perRequest) this.boundRecycled(slot, shutdownTimeout); // armed in load() already, unless its bound was unknown there
      return;
    }
    if (slot.load === 0 && this.servingCount() > this.warm) this.armIdleTimer(slot);
  }

  /**
   * A worker above the warm count with no connection retires after idleTimeoutMs, unless the pool has shrunk
   * to warm by then. One that accepts connections itself may have taken one the server has not heard of yet
   * (a child's news comes in batches): it stops accepting first, and retires once what it took has ended.
   */
  private armIdleTimer(slot: RemoteSlot): void {
    const timer = setTimeout(() => {
      this.idleTimers.delete(slot);
      if (slot.load > 0 || slot.retiring || slot.dead || this.servingCount() <= this.warm) return;
      if (!slot.listening) return void this.retire(slot);
      slot.retiring = true;
      this.idleRetiring.add(slot);
      void slot.unlisten(false);
      this.retireOnceQuiet(slot, 'retired');
    }, this.options.idleTimeoutMs);
    timer.unref();
    this.idleTimers.set(slot, timer);
  }

  /**
   * Retires `slot`, which takes no more connections and holds none, once it has answered its last unlisten():
   * a connection it accepted before closing its listener is heard of before that answer, and is then served
   * first (unload() comes back here when it ends), not lost with the worker.
   */
  private retireOnceQuiet(slot: RemoteSlot, why: 'recycled' | 'retired'): void {
    const pending = slot.pendingUnlisten;
    if (!pending) return void this.retire(slot, why);
    void pending.then(() => {
      if (slot.load === 0 && !slot.dead && !this.closed && this.slots.has(slot)) void this.retire(slot, why);
    });
  }

  /** Workers that take new connections: started or starting, neither dead nor retiring. */
  private servingCount(): number {
    let n = 0;
    for (const s of this.slots) if (!s.retiring && !s.dead) n++;
    return n;
  }

  // ---- workers ----

  private spawn(): RemoteSlot {
    const slot = this.options.spawn((dead) => {
      this.exited(dead);
      this.onDeath(dead);
    });
    slot.onReport = (report) => {
      this.book.update(report);
      this.followInterest();
    };
    slot.onMessagesCounted = (total) => this.book.messagesSoFar(slot.id, total);
    slot.onAccepted = (id, client, datagram, bytes, unopened) => this.adopt(slot, id, client, datagram, bytes, unopened);
    slot.onServed = (msg) => this.served(slot, msg);
    slot.onFull = () => this.full(slot);
    slot.onNearlyFull = () => this.startSuccessor(slot);
    slot.onAcceptError = (error, first) => this.shared?.server.acceptError?.(error as NodeJS.ErrnoException, first);
    this.slots.add(slot);
    slot.ready.then(
      () => {
        this.startFailures = 0;
        this.book.started(slot.id, slot.ids);
        workerStarted(this.options.owner, slot.id, slot.ids);
        if (this.book.wantsEvents) slot.wantEvents(true);
        // Before any connection reaches it (those wait for `ready` after this): the current certificate.
        if (this.secureContext && !slot.dead) void slot.setSecureContext(this.secureContext);
        if (this.shared?.accepting && !slot.dead && !slot.retiring) void this.listenOn(slot);
        if (!slot.dead) this.waiters.splice(0).forEach((w) => w.resolve(slot));
        this.refusingWaiting = false;
        this.growing.delete(slot);
        if (!slot.dead) this.handToWaitingDatagrams(slot);
      },
      (err: Error) => {
        this.lastStartFailure = { at: performance.now(), error: err };
        this.growing.delete(slot);
        if (this.slots.delete(slot)) void this.track(slot.kill()); // it never became ready: end it, and keep its place free
        // start() reports a warm worker's failure itself (a ConfigurationError, with the first reason), and ends the
        // others: no replacement and no "could not start" line about those (it said "terminated before it was ready").
        // One the pool ended itself while it started (shutdown's timeout, close()) did not fail to start: no
        // "could not start" line at shutdown about workers it terminated (hostile run).
        if (this.startingUp || this.closed || slot.endedBecause !== undefined) return;
        if (++this.startFailures < START_ATTEMPTS) {
          if (this.datagramWaiters.length > this.growing.size) this.growSoon(); // another try for the datagrams waiting
          return this.replace();
        }
        // Said once per run of failures (the next start that works ends it), with when the pool tries again.
        const accepting = this.shared !== undefined && !this.shared.closed;
        if (this.startFailures === START_ATTEMPTS) {
          const next = accepting ? (this.backoffMs === 0 ? BACKOFF_MIN_MS : Math.min(this.backoffMs * 2, BACKOFF_MAX_MS)) : START_RETRY_MS;
          this.options.log(messages.workersCannotStart(this.handlerName, this.options.mode, START_ATTEMPTS, err.message, next / 1000, accepting));
        }
        // Datagrams waiting go to a started worker, or fail with the reason, as a connection does after START_ATTEMPTS.
        this.shareWithWaitingDatagrams(err);
        // Workers that accept: no connection comes here to ask for a worker, so try again, later and later.
        if (accepting) this.retryStart();
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.startError(err));
      },
    );
    return slot;
  }

  /** A worker starts accepting; one that cannot is logged once and left to the others (it still takes handed-over connections). */
  private async listenOn(slot: RemoteSlot): Promise<void> {
    const shared = this.shared!;
    if (shared.draining) slot.draining();
    // Past maxConnectionsPerThread/Child the server tells a worker to stop accepting (stopAcceptingOnceCovered).
    // A child stops by itself, exactly at its count (`limit`, worker-runtime.ts): the server hears of a child's
    // connections late (its news is read in batches, bookkeeping.ts). A thread's reusePort listener may take a few more.
    try {
      await slot.listen(shared, shared.draining, false, shared.server, this.options.maxConnectionsPerWorker);
      if (!slot.dead && slot.listening) shared.listens?.(); // not primed at start (its workers died at once): now it listens
      if (!slot.dead && slot.listening && !slot.retiring) this.coverRetiring();
    } catch (err) {
      slot.listening = false;
      if (!slot.dead) this.options.log(messages.workerListenFailed(this.options.mode, slot.id, (err as Error).message));
    }
  }

  /**
   * A connection the worker accepted itself: from here on one of its connections, as those handed over
   * (counted, drained at shutdown, failed with a WorkerCrashedError when the worker dies), reported to
   * the server as accepted, then dropped, failed or ended.
   */
  private adopt(slot: RemoteSlot, id: number, client: ClientAddress, datagram = false, bytes?: number, unopened = false): void {
    const shared = this.shared;
    // Twice the same id (a record forged on a child's bookkeeping descriptor): the first stays, and its `done` settles it.
    if (!shared || slot.dead || slot.runs(id)) return;
    const server = shared.server;
    const connection = new WorkerAcceptedConnection(client, datagram);
    if (datagram && Number.isSafeInteger(bytes) && bytes! > 0) connection.datagramBytes = bytes!; // counted if its child dies before its `done`
    this.shutdownBound = server.shutdownTimeout ?? null;
    this.load(slot);
    this.adopted.add(connection);
    // No promise and no closure per connection: an idle one waits in the slot's table as one small record,
    // and its end comes back through adoptedEnded(). With 10,000 idle connections, a chain of promises each
    // cost the server's process 2.4 KB of heap per connection; this costs about 0.4 KB.
    slot.adopt(id, connection, server, this);
    server.workerAccepted?.(connection, client, unopened);
    this.tellAccepted();
  }

  /**
   * AdoptedEnds: a connection its worker accepted has ended there (or with the worker): its error reported
   * (a SystemExit is not one) or how it was dropped, then its counts taken and its worker's load lowered;
   * a drain waiting for it goes on once all of that is done.
   */
  adoptedEnded(slot: RemoteSlot, connection: WorkerAcceptedConnection, server: RemoteServer | undefined, error: Error | undefined, dropped: DroppedInWorker | undefined): void {
    const accepting = server as AcceptingServer;
    const client = connection.clientAddress;
    let reported: unknown;
    try {
      // Bounded by shutdownTimeout, its failure logged (handleErrorSafely): a user's handleError that never settled held this connection, and shutdown(), for ever.
      if (error !== undefined) reported = error instanceof SystemExit ? undefined : handleErrorSafely(accepting as unknown as RequestProcessor<unknown>, undefined, clientNamedBy(error) ?? client, error);
      else if (dropped) reported = accepting.connectionDropped?.(dropped, client, undefined, true);
    } catch (err) {
      reported = Promise.reject(err);
    }
    const end = (failure?: unknown): void => {
      try {
        this.unload(slot, accepting.shutdownTimeout ?? null);
        accepting.connectionEnded?.(connection);
      } catch (err) {
        failure = err;
      }
      if (failure !== undefined) this.options.log(`sockserve: error while ending a request: ${(failure as Error)?.stack ?? String(failure)}`);
      this.adopted.delete(connection);
      connection.markEnded();
    };
    if (reported instanceof Promise) reported.then(() => end(), end);
    else end();
  }

  /**
   * A datagram the worker read itself and has already served (its `accepted` and `done`, read together: the
   * BookkeepingReader pairs them): counted as adopt() and its end would count it, without adopting it
   * (nothing of it is left to fail or to drain).
   */
  private served(slot: RemoteSlot, msg: FromWorker & { t: 'served' }): void {
    const shared = this.shared;
    if (!shared || slot.dead) return;
    const server = shared.server;
    this.shutdownBound = server.shutdownTimeout ?? null;
    this.load(slot); // towards maxConnectionsPerChild, as any request it serves
    this.unload(slot, server.shutdownTimeout ?? null);
    server.datagramServed?.(msg.client, msg.bytes);
    if (msg.dropped) void Promise.resolve(server.connectionDropped?.(msg.dropped, msg.client, undefined, true)).catch(() => undefined);
    this.tellAccepted();
  }

  /** A worker has taken a request itself: a handleRequest() waiting for one (nextAccepted) returns. */
  private tellAccepted(): void {
    if (this.acceptedWaiters.size > 0) for (const waiter of [...this.acceptedWaiters]) waiter(true);
  }

  /** Starts a worker again after a backoff (1 s doubling to 30 s) while none can start and workers accept. */
  private retryStart(): void {
    if (this.closed || this.backoffTimer) return;
    this.backoffMs = this.backoffMs === 0 ? BACKOFF_MIN_MS : Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.startFailures = 0;
      this.replace();
    }, this.backoffMs);
    this.backoffTimer.unref();
  }

  /** A request the pool can no longer serve because close() was called: as one close() ended in a worker (routine). */
  private closedError(): Error {
    return new RequestTimeoutError(messages.waitingEnded(this.options.mode, 'close'));
  }

  private startError(err: Error): Error {
    return new Error(messages.workerStartFailed(this.handlerName, this.options.mode, err.message));
  }

  /**
   * Removes a worker on purpose (idle, perRequest, recycling, close); its exit is then no death to make up
   * for. An idle one first sends its last report (bounded), so that its counts stay in stats().
   */
  private retire(slot: RemoteSlot, why: 'shutdownTimeout' | 'close' | 'recycled' | 'retired' = 'retired'): Promise<void> {
    return this.track(this.retireNow(slot, why));
  }

  private async retireNow(slot: RemoteSlot, why: 'shutdownTimeout' | 'close' | 'recycled' | 'retired'): Promise<void> {
    clearTimeout(this.idleTimers.get(slot));
    this.idleTimers.delete(slot);
    const was = this.slots.delete(slot);
    // A child's news of the connections it accepted itself, not read yet, counts in its load (bookkeeping.ts)
    slot.catchUp();
    // Connections still running are ended by the worker first, so that what it counted of them is not lost;
    // a worker that sent them all back is heard once more, as an idle one is.
    const answered = slot.load > 0 && why !== 'retired' ? await slot.abandon(why, ABANDON_MS) : slot.load === 0;
    if (answered) {
      await slot.finalReport(FINAL_REPORT_MS);
      // Its singletons are its own (one container per worker): disposed before it ends, as the server's are at close().
      const failed = await slot.disposeSingletons(DISPOSE_MS);
      if (failed) (this.options.error ?? this.options.log)(messages.workerDisposeFailed(this.handlerName, this.options.mode, slot.id, failed));
    }
    // One that left abandon() unanswered at shutdownTimeout or close() (a long synchronous chunk, a blocked event loop)
    // is ended at once (a child: SIGKILL, as a thread's terminate()): its requests were reported as given up, their
    // replies as not sent. Given SIGTERM and 2 s to exit by itself, a child came back within them, sent the replies
    // close() had said were not, and went on reading the shared UDP socket, serving datagrams nothing counted; at
    // shutdownTimeout it made shutdown() last 2.5 s longer (hostile runs).
    await slot.end(why, !answered && (why === 'shutdownTimeout' || why === 'close'));
    if (was) this.replace();
  }

  /** Any worker's end (death or retirement): its counts stay in the book, and worker.exit is published. */
  private exited(slot: RemoteSlot): void {
    if (!slot.started) return; // never counted nor announced
    this.book.retire(slot.id);
    // Why: ended on purpose by the pool (retired, recycled, close, shutdownTimeout), or how it died.
    // The heartbeat's verdict is the pool's too: it read as a kill from outside (`was killed by SIGKILL`, hostile run).
    const why = slot.endedBecause ?? (slot.unresponsive !== undefined ? 'heartbeatTimeout' : undefined);
    workerExited(this.options.owner, slot.id, { ...slot.ids, ...slot.exitStatus, reason: why ? `${why}: ${slot.exitDetail}` : slot.exitDetail });
  }

  /**
   * Tells every worker when the server's process starts or stops wanting their events (a subscriber to
   * connection.*, request.end came or went): on each report, and on each new connection, so that a
   * request dispatched after a subscription is forwarded.
   */
  private followInterest(): void {
    const wanted = this.book.interestChange();
    if (wanted === undefined) return;
    for (const slot of this.slots) slot.wantEvents(wanted);
  }

  /** A worker died (crash, exit, watchdog): keep the pool at its size, with backoff when deaths pile up. */
  private onDeath(slot: RemoteSlot): void {
    clearTimeout(this.idleTimers.get(slot));
    this.idleTimers.delete(slot);
    this.uncovered.delete(slot);
    if (!this.slots.delete(slot)) return; // retired: whoever retired it has seen to its place
    if (!slot.started) return; // one that died starting is seen to in spawn()
    const now = Date.now();
    this.deaths = this.deaths.filter((t) => now - t < DEATH_WINDOW_MS);
    this.deaths.push(now);
    this.book.restarts++;
    // A worker per connection (perRequest), or serving one connection at a time (connectionsPerThread: 1,
    // connectionsPerChild: 1), that dies while serving dies with its own request: six clients that crashed
    // their own workers made every other client wait for the backoff, up to 30 s (hostile runs). The backoff
    // is for workers that die by themselves (idle, or at start: spawn() sees to those); Python's mixins have none.
    const ownRequest = (this.options.perRequest || this.options.perWorker <= 1) && slot.load > 0;
    if (this.deaths.length > DEATH_LIMIT && !ownRequest) {
      // One step per backoff, not per death: two workers dying in one wait doubled it twice, unlogged (1, 4, 16 s).
      if (!this.backoffTimer) {
        this.backoffMs = this.backoffMs === 0 ? BACKOFF_MIN_MS : Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
        this.options.log(messages.workerBackoff(this.handlerName, this.options.mode, this.deaths.length, DEATH_WINDOW_MS / 1000, this.backoffMs / 1000, slot.deathCause));
        this.refusingWaiting = false; // the refusals of each backoff are said once (they were said once per crash loop)
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = undefined;
          this.replace();
        }, this.backoffMs);
        this.backoffTimer.unref();
      }
      return;
    }
    this.backoffMs = 0;
    // A worker that died with connections: each is reported through @HandleError with the cause. One that died
    // with none left no word at all (info only) of why it died, however often (new user: a handler module's stray rejection).
    if (slot.servingAtDeath === 0) this.options.log(messages.workerDiedIdle(this.handlerName, this.options.mode, slot.id, slot.deathCause, slot.killedFromOutside));
    else this.options.info?.(messages.workerRestarted(this.handlerName, this.options.mode, slot.id, slot.exitDetail ?? 'ended', slot.unresponsive));
    this.replace();
  }

  /** Starts workers while the pool is below its warm size (not retiring ones) or a connection waits for one. */
  private replace(): void {
    if (this.closed || this.backoffTimer) return;
    // Retiring workers keep their places until they exit, so their successors may go past max for that while.
    const cap = Math.max(this.options.max, this.warm + this.retiringCount());
    while (this.slots.size < cap && (this.servingCount() < this.warm || (this.waiters.length > 0 && this.servingCount() === 0))) {
      try {
        this.spawn();
      } catch (err) {
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.startError(err as Error));
        return;
      }
    }
  }

  private retiringCount(): number {
    let n = 0;
    for (const s of this.slots) if (s.retiring) n++;
    return n;
  }
}

/**
 * Fewer open connections first; between equals, the one given one longest ago (round robin, as Node's cluster
 * and nginx spread: the first worker took every connection of a client that opened them one after another), or,
 * between idle ones with `idleLifo` (the pool above warm), the one given one last, so that the others idle out.
 */
function lessLoaded(slot: RemoteSlot, than: RemoteSlot, idleLifo = false): boolean {
  if (slot.load !== than.load) return slot.load < than.load;
  return idleLifo && slot.load === 0 ? slot.lastPicked > than.lastPicked : slot.lastPicked < than.lastPicked;
}
