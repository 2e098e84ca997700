import type { SecureContextOptions } from 'node:tls';
import type { ClientAddress } from '../transports/address';
import type { WorkerStats } from '../observability/server-metrics';
import type { ShutdownCallers } from './shutdown-callers';
import type { AcceptingServer, SharedListener, WorkerAccept } from './worker-pool.strategy';

/**
 * What a server asks of its concurrency strategy. This is the one seam where serial, concurrent,
 * threading and forking differ (Python's `process_request`); each keeps its own duties inside it.
 */
export interface RequestProcessor<Req> {
  /** Runs one request to its end, lifecycle and close included; errors go to the server's handleError. */
  finishRequest(request: Req, clientAddress: ClientAddress): Promise<void>;
  /** Ends the request's connection (stream: FIN after the reply), then closes it: Python's `shutdown_request`. */
  shutdownRequest(request: Req): Promise<void>;
  /** Reports an error of a request (or, with `request` undefined, of a connection the loop never took): Python's `handle_error`. */
  handleError(request: Req | undefined, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> | void;
  /** @internal Whether the request was given up at shutdownTimeout or close() and reported then: later errors of it are not reported. */
  wasAbandoned?(request: Req): boolean;
  /**
   * @internal handleError with `error` kept while it runs, for an override that leaves it out (Python's two-argument
   * `handle_error`): BaseServer's. handleErrorSafely calls it where the server has it.
   */
  callHandleError?(request: Req | undefined, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> | void;
  /**
   * @internal A report of the request's error began (`now` true) or settled (false): shutdownTimeout's abandoning
   * does not report again a request whose report is under way (its hook had the error; a second call came 100 ms later).
   */
  reporting?(request: Req, now: boolean): void;
  /**
   * @internal Abandoned while its own report was under way (`reporting`): true once, so that handleErrorSafely
   * still runs what follows that report (the count in stats(), a failing hook's report), which it skips for
   * an abandoned request. A slow @HandleError's request was otherwise counted in neither errors nor clientErrors.
   */
  owesReport?(request: Req): boolean;
}

/** A worker pool's part of stats(): dead workers replaced, connections placed past the pool's size, and each worker. */
export interface PoolStats {
  /** Workers that died (crashed, exited, killed by the heartbeat watchdog) since the server started; each is replaced. Retired workers are not counted. */
  restarts: number;
  /** Connections placed on a worker already holding `connectionsPerThread`/`connectionsPerChild`, because the pool was at `maxThreads`/`maxChildren` (or a new worker could not start). */
  oversubscribed: number;
  /** One entry per live worker, oldest first. */
  workers: WorkerStats[];
}

export interface ConcurrencyStrategy<Req> {
  /**
   * Takes over one verified request. Resolves when the server loop may take the next one: serial
   * resolves when the request is done; the others as soon as it is handed over (or a slot is free).
   */
  dispatch(server: RequestProcessor<Req>, request: Req, clientAddress: ClientAddress): Promise<void>;
  /**
   * Resolves when every dispatched request has finished; with `except`, every one but those requests (the
   * handlers awaiting `server.shutdown()`, which must wait neither for themselves nor for each other).
   */
  drain(except?: ShutdownCallers<Req>): Promise<void>;
  /** Requests dispatched and not finished, with their client addresses (for reporting abandoned ones). */
  inFlight?(): Iterable<[Req, ClientAddress]>;
  /**
   * A request whose verifyRequest() (`@Verify`) has not settled: counted as running until `verdict` settles, so
   * that the loop goes on taking requests meanwhile (strategies that run many at once); shutdown waits for it
   * as for a request in flight. Absent (serial): the loop waits for the verdict, as Python's does.
   */
  aside?(verdict: Promise<void>, request: Req, clientAddress: ClientAddress): void;
  /**
   * Undefined when the strategy can take a request now; else a promise resolving once it can (@Concurrent
   * at maxConnections). The loop awaits it before getRequest(), so that it takes nothing it must hold.
   */
  whenSlotFree?(): Promise<void> | undefined;
  /** Requests running now. */
  readonly active: number;
  /** Worker threads or child processes alive (strategies that have none leave it out). */
  readonly workers?: number;
  /** A worker pool's figures (API.md §14), from each worker's periodic report (at most 1 s old). */
  stats?(): PoolStats;
  /** Shutdown: reads of requests running elsewhere (threads, children) see EOF. */
  stopReading?(): void;
  /**
   * Shutdown's timeout passed: ends the requests still running elsewhere, whose work (and, in a child,
   * whose connection) the server cannot end by closing its sockets.
   */
  abort?(): void;
  /**
   * The request was abandoned (shutdownTimeout or close()) and reported: it no longer counts as running
   * (`active`, `stats().active`), though its handler, which nothing can stop on this thread, may still be
   * suspended. Strategies whose abort() ends the work themselves leave it out.
   */
  forget?(request: Req): void;
  /**
   * Strategies without inFlight() (the pools): the requests whose @Verify verdict is pending (aside()), which
   * shutdown's abandoning closes and reports as the pool does its own requests.
   */
  pendingVerdicts?(): Iterable<[Req, ClientAddress]>;
  /**
   * Strategies without aside() (serial): the loop awaits this request's @Verify verdict, and the request
   * counts as running (`active`, shutdown's abandoning) until the returned function is called.
   */
  awaitingVerdict?(request: Req, clientAddress: ClientAddress): () => void;
  /**
   * Whether a worker will own a new connection of this kind unread, so that its PROXY header, TLS
   * handshake and @Verify can run there (API.md §3): the pooled modes, where the socket can be handed over
   * (children always; threads where Node can move a TCP socket). False (or absent) keeps them here.
   */
  ownsUnread?(endpoint: 'tcp' | 'unix'): boolean;
  /** Whether (and how) the workers can accept connections of this kind themselves (API.md §3); absent or undefined: the server accepts. */
  acceptsItself?(endpoint: 'tcp' | 'unix' | 'udp'): WorkerAccept | undefined;
  /** After binding: where the workers will accept from, and the server their connections are reported to. */
  shareListener?(listener: SharedListener, server: AcceptingServer): Promise<void>;
  /** The workers start accepting (serveForever() began); resolves once they listen. */
  startAccepting?(): Promise<void>;
  /**
   * The workers stop accepting (`stop`: and reading, for shutdown); `forGood`: the listener closes (SIGTERM,
   * close()). `boundMs`: a worker that has not closed its listener by then (its event loop blocked) is ended.
   */
  stopAccepting?(stop?: boolean, forGood?: boolean, boundMs?: number): Promise<void>;
  /** Resolves true once a worker has accepted a connection, false after `ms` (handleRequest() with workers accepting). */
  nextAccepted?(ms: number): Promise<boolean>;
  /** SIGTERM's drainDelay began (workers that accept close PROXY LOCAL health checks unanswered). */
  beginDrain?(): void;
  /** server.setSecureContext(): the workers that terminate TLS take the new certificate for new connections. */
  setSecureContext?(options: SecureContextOptions): Promise<void>;
  /**
   * Releases whatever the strategy owns (threads, children). Idempotent. `urgent`: a second signal during the
   * drain closes the server now (bootstrap's handleSignals), within a bound: a worker that does not answer is
   * not given a grace to exit by itself. `signal`: that second signal, for what the requests it ends are told.
   */
  close(urgent?: boolean, signal?: string): Promise<void>;
}
