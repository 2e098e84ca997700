import * as timers from 'node:timers';
import { ConfigurationError, RequestTimeoutError, ServerClosedError } from '../errors/errors';
import { describeThrown, isSystemExit } from '../errors/thrown';
import { closedWhen, messages } from '../errors/messages';
import { configurationMessages } from '../errors/configuration.messages';
import { refuseStartInWorker, startedWhileWorkerLoads } from '../runtime';
import { SerialStrategy } from '../concurrency/serial.strategy';
import { isThenable, RESOLVED } from '../lifecycle/resolved';
import { isDisposing } from '../lifecycle/dispose-after-end';
import { handleErrorSafely, shutdownSafely } from '../concurrency/process-in-background';
import { settledWithin } from '../transports/event-loop';
import type { ConcurrencyStrategy, RequestProcessor } from '../concurrency/strategy';
import { ShutdownCallers } from '../concurrency/shutdown-callers';
import type { ClientAddress } from '../transports/address';
import { isRoutine } from '../observability/error-kind';
import { LineBudget } from '../observability/line-budget';
import { LevelledLogger, loggerOf, stderrLogger } from '../observability/logger';
import { classNameOf } from './class-name';
import { PoolStats, poolStatsOf } from '../observability/pool-stats';
import { FORKING_OPTION_NAMES } from '../decorators/forking.decorator';
import { THREADING_OPTION_NAMES } from '../decorators/threading.decorator';
import { MIXIN_RULES } from './mixin-options';

/** The stream servers' attributes, not yet set when BaseServer's constructor checks the options' names. */
const STREAM_ATTRIBUTES = ['lineLimit', 'lineTimeout', 'lingerMs'];

/** The pool mixins' options, given to ThreadingMixIn(Base, options) or ForkingMixIn, not to a server's constructor. */
const POOL_OPTIONS: readonly string[] = [...new Set([...THREADING_OPTION_NAMES, ...FORKING_OPTION_NAMES, ...MIXIN_RULES.map((rule) => rule.name)])];

/** Seconds shutdown() waits for requests in flight before closing them, unless the server says otherwise. */
export const DEFAULT_SHUTDOWN_TIMEOUT = 30;

/**
 * serverBind() on a server that is bound already (Python's second `bind()` fails with EINVAL): the error, with
 * `code` 'EINVAL'. Binding again used to open a second socket and leak the first, still accepting after close().
 */
export function alreadyBound(owner: string, address: string): Error {
  return Object.assign(new Error(messages.alreadyBound(owner, address)), { code: 'EINVAL' });
}

/** The third argument of every classic server constructor. */
export interface ServerConstructorOptions {
  /** false defers binding to explicit `await serverBind(); await serverActivate()`, as Python's bind_and_activate. */
  bindAndActivate?: boolean;
}

/**
 * The third constructor argument as options: an object as it is; omitted, none; anything else is Python's
 * positional `bind_and_activate`, taken by its truth as Python's `if bind_and_activate:` does (`null`, `0` or
 * `''` defer binding as `false` does; a `null` crashed TCPServer's constructor with a destructuring TypeError,
 * and `0` bound).
 */
export function constructorOptions<O extends ServerConstructorOptions>(given: O | boolean | null | undefined): O {
  if (given === undefined) return {} as O;
  if (typeof given === 'object' && given !== null) return given;
  return { bindAndActivate: Boolean(given) } as O;
}

/** Anything a server can build per request: `new Handler(request, clientAddress, server)` then `run()`. */
export interface RequestHandlerClass<Req, S> {
  new (request: Req, clientAddress: ClientAddress, server: S): {
    /** Runs the request's handler to its end (setup → handle → finish, as Python's constructor does); rejects with what a hook threw. */
    run(): Promise<void>;
  };
}

/**
 * The request loop of Python's `socketserver.BaseServer`, in camelCase and async.
 *
 * Methods for the caller: `ready`, `serveForever(pollInterval)`, `handleRequest()`, `shutdown()`,
 * `close()` (Python's server_close), `[Symbol.asyncDispose]`.
 *
 * Methods that may be overridden (sync or async): `serverBind`, `serverActivate`, `serverClose`,
 * `getRequest`, `verifyRequest`, `processRequest`, `finishRequest`, `shutdownRequest`, `closeRequest`,
 * `handleError`, `handleTimeout`, `serviceActions`.
 *
 * Attributes that may be overridden: `timeout` (seconds, handleRequest only), `requestTimeout` (seconds a
 * read may wait), `shutdownTimeout` (seconds shutdown waits for requests in flight before closing them),
 * `requestQueueSize`, `allowReuseAddress`, `allowReusePort`, `maxPacketSize`, `blockOnClose`, `daemonThreads`,
 * `maxChildren`, `logger`
 * (where every line the server prints goes: `{ error, warn, info, debug }`; default stderr for errors
 * and warnings, nothing else).
 *
 * One turn of the loop: getRequest → verifyRequest → processRequest (→ finishRequest → shutdownRequest →
 * closeRequest), handleError on an error, then serviceActions. Concurrency enters only through
 * processRequest, which hands the request to the server's strategy.
 */
export abstract class BaseServer<Req = unknown, Addr = unknown> implements RequestProcessor<Req> {
  /** Seconds handleRequest() waits for a request before calling handleTimeout(); null (default) waits forever. Python's `timeout`. */
  timeout: number | null = null;
  /** Seconds a read may wait with no byte arriving before it rejects with RequestTimeoutError; null (default) waits forever. */
  requestTimeout: number | null = null;
  /** Seconds shutdown() waits for requests in flight before closing their connections and abandoning them; default 30. */
  shutdownTimeout: number | null = DEFAULT_SHUTDOWN_TIMEOUT;
  /** The listen backlog of stream servers; default 5, Python's `request_queue_size` (the decorators use 511). */
  requestQueueSize = 5;
  /** Python's `allow_reuse_address`; default true (UDPServer: false, as Python). Node always sets `SO_REUSEADDR` on TCP, so false has no effect there. */
  allowReuseAddress = true;
  /**
   * Python 3.11's `allow_reuse_port`: true sets `SO_REUSEPORT` before binding (TCPServer, UDPServer), so that
   * several servers (processes) may bind the same address and the kernel spreads clients among them; default
   * false. Node sets it from 22.12 (`reusePort`); on Node 20, where Node cannot, binding rejects with a
   * ConfigurationError (the second server would have failed with EADDRINUSE). No effect on Unix sockets.
   */
  allowReusePort = false;
  /** Bytes read per datagram; a longer one is truncated, as Python's `max_packet_size`. Default 8192; at most 65,507 (IPv4) or 65,527 (IPv6). */
  maxPacketSize = 8192;
  /**
   * Python's `block_on_close`: with ThreadingMixIn/ForkingMixIn, close() waits for the requests their
   * threads or children are serving to finish (bounded by `shutdownTimeout`) before ending the workers;
   * default true. No effect on other servers, nor on the decorators' (their close() ends what still runs).
   */
  blockOnClose = true;
  /**
   * Python's ThreadingMixIn `daemon_threads`: true, close() does not wait for the requests the threads are
   * serving (Python never joins daemon threads), as `blockOnClose` false; default false. No worker outlives
   * close() here either way. No effect on other servers.
   */
  daemonThreads = false;
  /** Most child processes a forking server runs at once; default 40, Python's `max_children`. */
  maxChildren = 40;
  /**
   * Where every line the server prints goes: `{ error, warn, info, debug }`. Default: stderr for `error`
   * (handler errors, Python's traceback block) and `warn` (routine client errors, one line); `info` and
   * `debug` quiet. The decorator layer sets it from bootstrap()'s `logger` option.
   */
  logger: LevelledLogger = stderrLogger;

  /**
   * Resolves once bound and listening; rejects with the bind error (AddressInUseError…). Python raises that in
   * the constructor: here a failure nothing has awaited `ready` for (nor served) within UNOBSERVED_BIND_MS is
   * also logged at `error`, so a program that never awaits it does not end quietly as if it had served.
   */
  get ready(): Promise<void> {
    this.readyObserved = true;
    return this.readyPromise;
  }
  private readonly readyPromise: Promise<void>;
  private readyObserved = false;
  protected strategy: ConcurrencyStrategy<Req> = new SerialStrategy<Req>();
  /** @internal The pool's workers take requests themselves (set at binding): see handleRequest() and serveForever(). */
  protected workersTake = false;

  private shutdownRequested = false;
  private loop: Loop | undefined;
  private closing: Promise<void> | undefined;
  /** Set for the synchronous start of a shutdown() that a request's handler called (see shutdownFromRequest). */
  private shutdownCaller: Req | undefined;
  /** The budget of routine client-error lines (handleError), made at the first one. */
  private routineLines: LineBudget | undefined;
  /** Requests given up at shutdownTimeout or close() and reported then: nothing later about them is reported. */
  private readonly abandoned = new WeakSet<object>();
  /** The error each request's handleError() is reporting now (callHandleError()), for a call that leaves it out. */
  private readonly errorsReported = new WeakMap<object, unknown>();
  /** Requests whose async `@Verify` verdict has not come yet. */
  private readonly verdictPending = new WeakSet<object>();
  /**
   * @internal When SIGTERM's stopListening() began (performance.now()): the shutdown() that follows counts its
   * shutdownTimeout from then, once (production.md), not afresh after a blocked worker held the listeners up.
   */
  drainBegan: number | undefined;
  /** Requests whose error is being reported now (handleError, or the hook of `@HandleError` on the request's instance). */
  private readonly reportsUnderWay = new WeakSet<object>();
  /**
   * Abandoned while their own report was under way: what follows that report (the server's handleError, which
   * counts it in stats() and reports a hook's own failure) is still owed once, though the request was abandoned.
   */
  private readonly reportOwed = new WeakSet<object>();
  /** The abandoning's wait for such an owed report: resolved once it has run (reporting(request, false) after owesReport). */
  private readonly owedReported = new WeakMap<object, () => void>();
  /** Requests being given up (reported or about to be): a second abandoning that overlaps leaves them out. */
  private readonly abandoning = new WeakSet<object>();
  /** The reports of the last abandoning, which a later one awaits before it lets the loop go. */
  private abandonReports: Promise<void> | undefined;
  /** Requests whose handlers await shutdown() now: no such shutdown waits for any of them. */
  private readonly shutdownCallers = new ShutdownCallers<Req>();

  /**
   * @param serverAddress Where to listen: `[host, port]` or `{ host, port }` for IP servers (port 0 lets the OS
   *   choose), a path or `{ path }` for Unix servers; after binding, the address actually bound.
   * @param RequestHandlerClass The handler class built for every request.
   * @param given `{ bindAndActivate: false }` (or Python's positional `false`, or another falsy value but `undefined`:
   *   `null`, `0`) defers binding, as Python's `bind_and_activate`.
   */
  constructor(
    /** The bound address: `[host, port]` for IP servers, as Python's `server_address`; the path for Unix servers. */
    public serverAddress: Addr,
    /** The handler class built for every request, as Python's `RequestHandlerClass`. */
    public readonly RequestHandlerClass: RequestHandlerClass<Req, any>,
    given: ServerConstructorOptions | boolean = {},
  ) {
    // Anything Python could call is taken (a plain function too); the rest failed late and unclearly: every
    // request with "not a constructor", or a pool's ready with "Cannot read properties of undefined".
    if (typeof RequestHandlerClass !== 'function') throw new ConfigurationError(messages.badHandlerClass(new.target.name, RequestHandlerClass));
    // An array is no options object: its indexes were named as unknown options ("0").
    if (Array.isArray(given)) {
      throw new ConfigurationError(configurationMessages.badArgument(`new ${new.target.name}()`, RequestHandlerClass.name || 'its handler', given, 'an options object or a boolean (bindAndActivate, as Python\'s bind_and_activate)', `new ${new.target.name}(address, Handler, { bindAndActivate: false }) or new ${new.target.name}(address, Handler, false)`));
    }
    const options = constructorOptions(given as ServerConstructorOptions | boolean | null | undefined);
    this.checkOptionNames(new.target as unknown as { name: string; optionNames: readonly string[] }, options, RequestHandlerClass.name);
    // Python binds in the constructor; here on a microtask, so a subclass's fields are in place first.
    this.readyPromise = Promise.resolve().then(async () => {
      if (startedWhileWorkerLoads()) throw refuseStartInWorker(new ConfigurationError(messages.serverInWorker(classNameOf(this))));
      if (options.bindAndActivate !== undefined && !options.bindAndActivate) return; // a falsy value defers, as Python reads bind_and_activate
      try {
        await this.serverBind();
        await this.serverActivate();
      } catch (err) {
        await this.serverClose();
        throw err;
      }
    });
    // Reported by serveForever()/handleRequest(), which await it, and by whoever awaits `ready`; else logged (a
    // failed bind ended the process quietly, exit 0, when nothing awaited it: new-user run).
    this.readyPromise.catch((err: unknown) => {
      if (this.readyObserved) return;
      setTimeout(() => {
        if (!this.readyObserved) loggerOf(this).error(messages.bindFailedUnobserved(classNameOf(this), describeThrown(err)));
      }, UNOBSERVED_BIND_MS);
    });
  }

  /** The keys the constructor's options object may have; the stream servers add the production edge's. */
  static readonly optionNames: readonly string[] = ['bindAndActivate'];

  /**
   * An unknown key of the options object is a ConfigurationError, as Python's constructors raise TypeError on
   * an unexpected keyword: `{ requestTimeout: 5 }` or a misspelt `proxyprotocol` was ignored without a word.
   */
  private checkOptionNames(cls: { name: string; optionNames: readonly string[] }, options: object, handler: string): void {
    // Own keys, enumerable or not, and inherited enumerable ones: the constructors read those too (a known key on
    // a prototype was taken while a misspelt one there went unseen: hostile re-check).
    const names = new Set(Object.getOwnPropertyNames(options));
    for (const name in options) names.add(name);
    for (const name of names) {
      if (cls.optionNames.includes(name)) continue;
      const where = name === 'maxConnections' ? 'concurrent' : POOL_OPTIONS.includes(name) ? 'pool' : name in this || STREAM_ATTRIBUTES.includes(name) ? 'attribute' : undefined;
      throw new ConfigurationError(messages.unknownServerOption(cls.name, handler || 'its handler', name, cls.optionNames, where));
    }
  }

  // ---- the transport's part: implemented by TCPServer, UDPServer and the Unix servers ----

  /** Binds the socket to `serverAddress` (Python's `server_bind`); rejects with AddressInUseError when taken. */
  serverBind(): Promise<void> | void {}
  /** Starts listening with `requestQueueSize` as backlog (Python's `server_activate`); nothing for datagram servers. */
  serverActivate(): Promise<void> | void {}
  /** Releases the socket. Mixins extend it to release threads or children. */
  serverClose(): Promise<void> | void {}
  /** Takes the next queued request; an error with an errno `code` is dropped silently, as Python's OSError. */
  abstract getRequest(): Promise<[Req, ClientAddress]> | [Req, ClientAddress];
  /** Resolves true when a request is queued, false after `ms` or on wakeLoop(). */
  protected abstract waitForRequest(ms: number): Promise<boolean>;
  protected abstract wakeLoop(): void;
  /** Shutdown: reads that would wait see EOF, so idle connections end now and busy ones after their reply. */
  protected stopReading(): void {}
  /**
   * shutdownTimeout passed (or close() came): close every connection still open, failing what reads or writes it with
   * `reason`; one still in its PROXY header or TLS handshake with edgeMessages.preambleAbandoned(step, `preambleWhen`).
   */
  protected abortRequests(_reason: Error, _preambleWhen?: number | string): void {}
  /**
   * shutdown() was called while serving: remember which connections the transport had accepted by now
   * (queued, or still in their PROXY header or TLS handshake), so the loop serves them before it exits.
   */
  protected markAcceptedBeforeShutdown(): void {}
  /**
   * After the loop stopped taking new requests: resolves true when one accepted before shutdown() (see
   * markAcceptedBeforeShutdown) is ready to take with getRequest(), false when none is left.
   */
  protected waitForAcceptedBeforeShutdown(): Promise<boolean> {
    return Promise.resolve(false);
  }
  /** The loop has exited: the next serveForever() takes every connection as usual. */
  protected forgetShutdownMark(): void {}
  /**
   * shutdownTimeout passed before the loop took every request accepted before shutdown() (a serial server
   * still serving the one before), or close() came then: takes those left, to be closed and reported.
   */
  protected takeUnservedBeforeShutdown(): Array<[Req, ClientAddress]> {
    return [];
  }
  /** Takes every request accepted (datagram received) and still queued, to be closed and reported (close()). */
  protected takeAllQueued(): Array<[Req, ClientAddress]> {
    return [];
  }

  // ---- the loop ----

  /**
   * Serves until shutdown(); resolves once the loop has exited and requests in flight have finished, or,
   * for a request that never finishes, once shutdownTimeout has passed and it was abandoned (reported
   * through handleError).
   */
  async serveForever(pollInterval: number | null = 0.5): Promise<void> {
    // Seconds between turns with no request (serviceActions runs once a turn); null, as Python's None, waits
    // for requests only. null and NaN were 0 ms here: the loop spun, 1,000 turns a second (hostile run).
    if (pollInterval !== null && !(typeof pollInterval === 'number' && pollInterval >= 0)) {
      throw new TypeError(messages.badPollInterval(this.callerName, pollInterval));
    }
    const waitMs = pollInterval === null ? Infinity : pollInterval * 1000;
    if (this.loop) throw new Error(messages.alreadyServing(this.callerName));
    if (this.handling) throw new Error(messages.alreadyWaiting(this.callerName, 'serveForever', 'handleRequest'));
    this.assertOpen('serveForever'); // asked for after close(): refused at once
    const loop = new Loop();
    this.loop = loop;
    try {
      await this.ready;
      // close() came while the server got ready (serveForever() and close() in one turn): the loop ends before
      // it began, as one running would end, instead of failing as if it had been asked for after close().
      if (this.closing) return;
      this.assertBound('serveForever');
      // Where the pool's workers accept themselves (a shared socket, or listeners of their own with reusePort),
      // they do while the loop runs (shutdown() stops them); the strategy knows whether they do.
      this.strategy.startAccepting?.().catch(() => undefined);
      const slice = new LoopSlice();
      while (!this.shutdownRequested) {
        const eventLoopTurn = slice.next();
        if (eventLoopTurn) await eventLoopTurn;
        if (this.shutdownRequested) break;
        const ready = await this.waitForRequest(waitMs);
        if (this.shutdownRequested) break; // bpo-35017: no request is taken after shutdown()
        if (this.socketReleased && !this.closing) throw new ServerClosedError(messages.socketReleased(this.callerName, 'serveForever'));
        // At the strategy's limit (requests started outside the loop may fill it): take nothing until a slot is free.
        const full = ready ? this.strategy.whenSlotFree?.() : undefined;
        if (full) {
          await loop.unlessAbandoned(full);
          if (this.shutdownRequested || loop.abandoned) break;
        }
        const turn = ready ? this.handleRequestNoBlock() : undefined;
        if (turn) await loop.unlessAbandoned(turn);
        if (loop.abandoned) break;
        this.throwAsideError();
        const acted = this.serviceActions();
        if (acted) {
          // Bounded once shutdown() has begun, as requests are: a hook that never settles would keep the loop,
          // and shutdown() with it, waiting for ever. It goes on running, unawaited, and is named in the log.
          // (Released at shutdownTimeout itself: the worker pools end their requests without abandoning the loop.)
          let settled = false;
          await loop.unlessOverdue(Promise.resolve(acted).finally(() => (settled = true)));
          if (!settled) {
            loggerOf(this).warn(messages.serviceActionsAbandoned(this.logName, this.shutdownTimeout ?? 0));
            break;
          }
        }
      }
      // Every connection accepted before shutdown() is served (API.md §6), whatever stage it was in then:
      // queued, or still in its PROXY header or TLS handshake. Those accepted after it wait for the next loop.
      while (!loop.abandoned && !loop.overdue && !this.closing) {
        const eventLoopTurn = slice.next();
        if (eventLoopTurn) await eventLoopTurn;
        if (loop.abandoned || loop.overdue || this.closing) break;
        if ((await loop.unlessAbandoned(this.waitForAcceptedBeforeShutdown())) !== true) break;
        // As above: at the strategy's limit, nothing is taken until a slot is free; and nothing once
        // shutdownTimeout has passed (a request that waited for a slot started after the server gave up).
        const full = this.strategy.whenSlotFree?.();
        if (full) {
          await loop.unlessAbandoned(full);
          if (loop.abandoned || loop.overdue || this.closing) break;
        }
        const turn = this.handleRequestNoBlock();
        if (turn) await loop.unlessAbandoned(turn);
      }
      // shutdownTimeout passed first: those still waiting were accepted, so they are owed a word, not a silent
      // reset at close(): each is closed unserved and reported (handleError) with a RequestTimeoutError.
      if (loop.overdue && !this.closing) await this.endUnserved();
      await loop.unlessAbandoned(this.strategy.drain());
    } finally {
      loop.end();
      this.shutdownRequested = false;
      this.loop = undefined;
      this.forgetShutdownMark();
    }
  }

  /**
   * Serves exactly one request, or, after `timeout` seconds with none, returns `handleTimeout()`. Where the
   * pool's workers take requests themselves (workersTake: children accepting from the shared listening
   * socket, or reading the shared UDP socket), nothing here takes one: the workers take while it waits, and
   * it returns once one of them has taken a request (one arriving in that same instant may be taken too,
   * and is served), or after `timeout` seconds with handleTimeout().
   * Rejects while serveForever() runs or another handleRequest() waits: one loop takes a server's requests
   * at a time (Python lets threads share the socket; here the two waits took turns waking each other, and
   * the event loop spun until one timed out).
   */
  handleRequest(): Promise<unknown> {
    if (!this.oneWaitAtATime) return this.handleOneRequest();
    if (this.loop) return Promise.reject(new Error(messages.alreadyWaiting(this.callerName, 'handleRequest', 'serveForever')));
    if (this.handling) return Promise.reject(new Error(messages.alreadyWaiting(this.callerName, 'handleRequest', 'handleRequest')));
    this.handling = true;
    return this.handleOneRequest().finally(() => {
      this.handling = false;
    });
  }

  /** @internal Whether requests are datagrams (no connection to close, no EOF): for the wording of errors. */
  protected get servesDatagrams(): boolean {
    return false;
  }

  /** Whether a handleRequest() is in progress. */
  private handling = false;

  /**
   * @internal Whether the transport's wait for a request takes one waiter at a time (a socket's queue), so that
   * overlapping handleRequest()/serveForever() calls are refused. False for a transport whose wait never
   * blocks (sockserve/testing's in-memory server takes each connection with a handleRequest() of its own).
   */
  protected readonly oneWaitAtATime: boolean = true;

  /** handleRequest() once it may wait (no other wait is in progress): what a transport overrides. */
  protected async handleOneRequest(): Promise<unknown> {
    await this.ready;
    this.assertBound('handleRequest');
    if (this.socketReleased && !this.closing) throw new ServerClosedError(messages.socketReleased(this.callerName, 'handleRequest'));
    if (this.workersTake && !this.isServing && !this.closing && this.strategy.nextAccepted) {
      const accepted = this.strategy.nextAccepted(this.handleRequestMs());
      try {
        await this.strategy.startAccepting?.();
        if (!(await accepted)) return this.closing ? undefined : this.handleTimeout();
        return undefined;
      } finally {
        if (!this.isServing) await this.strategy.stopAccepting?.(false);
      }
    }
    this.assertOpen('handleRequest');
    const ms = this.handleRequestMs();
    const deadline = Date.now() + ms;
    while (!(await this.waitForRequest(Math.max(0, deadline - Date.now())))) {
      if (Date.now() >= deadline) return this.handleTimeout();
      if (this.closing) return undefined;
      // serverClose() by itself while this waited: no request can come, as for a running serveForever().
      // It waited on (for ever with timeout null), and close() later did not wake it: serverClose() had.
      if (this.socketReleased) throw new ServerClosedError(messages.socketReleased(this.callerName, 'handleRequest'));
    }
    await this.handleRequestNoBlock();
    return undefined;
  }

  /**
   * `timeout` in milliseconds: Infinity for null (or undefined); a TypeError for what is no number of seconds.
   * NaN waited for ever, waking every millisecond (Python's select() raises ValueError for it).
   */
  private handleRequestMs(): number {
    const seconds: unknown = this.timeout;
    if (seconds === null || seconds === undefined) return Infinity;
    if (typeof seconds !== 'number' || Number.isNaN(seconds)) throw new TypeError(messages.badTimeout(this.callerName, seconds));
    return seconds * 1000;
  }

  /**
   * Stops the loop, waits for requests in flight, resolves when the loop has exited. Idle connections
   * end at once; after `shutdownTimeout` seconds whatever is still open is closed, and a request that
   * still has not finished is abandoned and reported through handleError. Safe to call twice, and before
   * serving (it then resolves at once). Called by a request's own handler (`this.server.shutdown()`,
   * `req.server.shutdown()`), it resolves once every *other* request has finished, never waiting for the
   * caller, whose connection stays open for its later writes.
   */
  async shutdown(): Promise<void> {
    const caller = this.shutdownCaller;
    this.shutdownCaller = undefined;
    const loop = this.loop;
    if (!loop) return;
    if (!this.shutdownRequested) this.markAcceptedBeforeShutdown();
    this.shutdownRequested = true;
    this.wakeLoop();
    this.stopReading();
    this.strategy.stopReading?.();
    if (this.shutdownTimeout !== null) {
      const spent = this.drainBegan === undefined ? 0 : performance.now() - this.drainBegan;
      loop.armDeadline(Math.max(0, this.shutdownTimeout * 1000 - spent), () => this.abandonRequests(loop, 'timeout'));
    }
    if (caller === undefined) return loop.exited;
    this.shutdownCallers.add(caller);
    try {
      await loop.unlessAbandoned(this.strategy.drain(this.shutdownCallers));
    } finally {
      this.shutdownCallers.delete(caller);
    }
  }

  /**
   * @internal shutdown() as called by the handler of `request`: the request handlers' `server` faces call
   * this, so that the shutdown knows not to wait for its caller.
   */
  shutdownFromRequest(request: Req): Promise<void> {
    this.shutdownCaller = request;
    try {
      return this.shutdown(); // an override of shutdown() reaches BaseServer's synchronously, via super
    } finally {
      this.shutdownCaller = undefined;
    }
  }

  /**
   * shutdownTimeout has passed: close every connection, end the work running elsewhere, give the requests
   * a moment to see it, then abandon those that still have not finished (a handler awaiting something
   * that never settles), each reported through handleError, and let the loop return.
   */
  private async abandonRequests(loop: Loop, why: 'timeout' | 'closed', pending = this.strategy.pendingVerdicts?.()): Promise<void> {
    const limit = this.shutdownTimeout ?? 0;
    const reason = (request?: Req) =>
      new RequestTimeoutError(
        request !== undefined && this.verdictPending.has(request as object)
          ? messages.verifyAbandoned(why === 'timeout' ? limit : this.closedWhen, this.servesDatagrams)
          : request !== undefined && isDisposing(request)
            ? messages.abandonedInDispose(why === 'timeout' ? limit : this.closedWhen)
          : why === 'timeout'
            ? messages.abandoned(limit, this.servesDatagrams)
            : this.closeMessage(),
      );
    // A request still reading or writing ends with the reason and is reported by its own end; one that is not
    // (a handler awaiting something else) is reported below, once the grace has passed.
    // A connection still in its PROXY header or TLS handshake ran no hook: no handler's Fix for it (preambleAbandoned).
    this.abortRequests(reason(), why === 'timeout' ? limit : this.closedWhen);
    // A strategy that cannot list its requests (the worker pools) ends them itself in abort(): its drain ends.
    // Those still awaiting their @Verify here never reached a worker: closed and reported here, once.
    this.strategy.abort?.();
    if (!this.strategy.inFlight) return this.abandonVerdicts(pending ?? [], reason);
    await new Promise((resolve) => timers.setTimeout(resolve, ABANDON_GRACE_MS));
    if (loop.ended) return;
    // Each request is given up once: shutdownTimeout's and close()'s abandoning may overlap.
    const stuck = [...(this.strategy.inFlight?.() ?? [])].filter(([request]) => !this.abandoning.has(request as object));
    for (const [request] of stuck) if (typeof request === 'object' && request !== null) this.abandoning.add(request);
    const earlier = this.abandonReports;
    // Reported side by side, not one after another: each report is bounded by shutdownTimeout, so N stuck
    // requests whose @HandleError never settles held the loop (and serveForever(), close()) N × shutdownTimeout.
    const reports = Promise.all(
      stuck.map(async ([request, clientAddress]) => {
        // One whose own error is being reported now (the abort above ended its read or write) is not reported twice.
        const error = reason(request);
        const owed = this.leaveReportToItsOwn(request);
        if (!owed) await this.reportError(request, clientAddress, error).catch(() => undefined);
        if (typeof request === 'object' && request !== null) this.abandoned.add(request);
        await this.endAbandoned(request, error);
        this.strategy.forget?.(request);
        // The report left to its own @HandleError, and the count after it, land before shutdown() resolves, as the
        // pools count theirs: stats() read then missed the request (errors 0, counted later).
        await owed;
      }),
    ).then(() => undefined);
    this.abandonReports = reports;
    await earlier; // an abandoning still reporting (shutdownTimeout's, when close() comes) ends first
    await reports;
    loop.abandon();
  }

  /** Requests whose `@Verify` verdict is still pending (the pools' aside()): each closed and reported once, with `reason`. */
  private async abandonVerdicts(pending: Iterable<[Req, ClientAddress]>, reason: (request: Req) => Error): Promise<void> {
    const verdicts = [...pending].filter(([request]) => !this.abandoning.has(request as object));
    for (const [request] of verdicts) if (typeof request === 'object' && request !== null) this.abandoning.add(request);
    for (const [request, clientAddress] of verdicts) {
      await this.endWithError(request, clientAddress, reason(request)).catch(() => undefined);
      if (typeof request === 'object' && request !== null) this.abandoned.add(request);
    }
  }

  /** @internal The signal whose repeat during the drain made handleSignals close this server (what its reports say). */
  closedBySignal: string | undefined;

  /**
   * @internal Who closes the server, once close() has begun: `owner` as closeMessage() names it, and the signal whose
   * repeat during the drain did it (else close() was called). For messages.closedMidMessage, made here or in a worker.
   */
  closingAs(): { owner: string; signal?: string } {
    return this.closedBySignal !== undefined ? { owner: this.logName, signal: this.closedBySignal } : { owner: this.callerName };
  }

  /**
   * @internal What gave the server up, once close() has begun, as the abandon messages' `when` (givenUpWhen): the signal
   * whose repeat during the drain closed it ('SIGTERM'), else the close() call. A TLS handshake a second signal ended said
   * "when close() was called… Fix: await shutdown() before close()" (hostile run).
   */
  get closedWhen(): string {
    return closedWhen(this.closingAs());
  }

  /** What a request close() ends says: close() was called (or a signal during the drain) while it ran. */
  private closeMessage(): string {
    return this.closedBySignal
      ? messages.abandonedBySignal(this.logName, this.closedBySignal, this.servesDatagrams)
      : messages.abandonedByClose(this.callerName, this.servesDatagrams);
  }

  /**
   * close() has begun (not Python's server_close() called by itself): what the connections it closes under their
   * requests fail with, once (a RequestTimeoutError saying close() ended them); undefined otherwise.
   */
  protected get closeError(): Error | undefined {
    if (!this.closing) return undefined;
    return (this.closedWith ??= new RequestTimeoutError(this.closeMessage()));
  }
  private closedWith: Error | undefined;

  /** Releases the socket and the strategy's workers; stops a running loop. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const loop = this.loop;
      // Accepted while the loop served, still queued behind a request, which the loop owed service (after shutdown(),
      // those accepted before it; the rest are Python's backlog, closed unreported): closed unserved, and said (a serial
      // server reset them unreported at a second signal or a close(): hostile run).
      const unserved = !loop || loop.ended ? [] : this.shutdownRequested ? this.takeUnservedBeforeShutdown() : this.takeAllQueued();
      if (loop) {
        this.shutdownRequested = true;
        this.wakeLoop();
      }
      const reported = unserved.map(([request, clientAddress]) =>
        this.endUntaken(request, clientAddress, new RequestTimeoutError(messages.unservedAtClose(this.closedBySignal !== undefined ? this.logName : this.callerName, this.closedBySignal, this.servesDatagrams))).catch(() => undefined),
      );
      await this.ready.catch(() => undefined);
      await this.serverClose();
      const pending = [...(this.strategy.pendingVerdicts?.() ?? [])]; // the strategy's close() stops waiting for them
      await this.strategy.close(this.closedBySignal !== undefined, this.closedBySignal);
      // Every connection is closed now: a loop still waiting on a request that never finishes gives it up.
      if (loop && !loop.ended) await this.abandonRequests(loop, 'closed', pending);
      // A pool's close() ends its drain, and so the loop, while @Verify verdicts are still pending here: they
      // were dropped unreported (hostile run: datagrams accepted, then neither answered nor counted anywhere).
      else if (!this.strategy.inFlight && pending.length > 0) await this.abandonVerdicts(pending, () => new RequestTimeoutError(messages.verifyAbandoned(this.closedWhen, this.servesDatagrams)));
      await Promise.all(reported);
      this.routineLines?.flush(); // after the last reports: the process may exit before the second ends
    })();
    return this.closing;
  }

  /** `await using server = …`: calls close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Requests being processed now. */
  get activeRequests(): number {
    return this.strategy.active;
  }

  /** Requests accepted (or datagrams received) and waiting for the loop to take them. */
  get queuedRequests(): number {
    return 0;
  }

  /** Worker threads or child processes alive. */
  get workerCount(): number {
    return this.strategy.workers ?? 0;
  }

  /** The pool's figures (workers, restarts, their counters) for strategies with workers; else undefined. */
  get poolStats(): PoolStats | undefined {
    return poolStatsOf(this.strategy);
  }

  // ---- the stages of one request ----

  /**
   * One request's stages: getRequest → verifyRequest → processRequest. Not async: a stage that returns
   * no promise (the usual getRequest and verifyRequest) costs no turn, and a request a strategy takes
   * at once (@Concurrent) returns undefined, so that the loop's turn costs a few reactions, not a dozen.
   */
  private handleRequestNoBlock(): Promise<void> | void {
    let got: Promise<[Req, ClientAddress]> | [Req, ClientAddress];
    try {
      got = this.getRequest();
    } catch (err) {
      if (isOsError(err)) return;
      return Promise.reject(err);
    }
    if (!Array.isArray(got)) {
      return Promise.resolve(got).then(
        ([request, clientAddress]) => this.verifyThenProcess(request, clientAddress),
        (err: unknown) => (isOsError(err) ? undefined : Promise.reject(err)),
      );
    }
    return this.verifyThenProcess(got[0], got[1]);
  }

  private verifyThenProcess(request: Req, clientAddress: ClientAddress): Promise<void> | void {
    let verified: boolean | Promise<boolean>;
    try {
      verified = this.verifyRequest(request, clientAddress);
    } catch (err) {
      return this.endWithError(request, clientAddress, err); // Python lets this escape and leaks the request
    }
    if (verified === true) return this.process(request, clientAddress);
    if (isThenable(verified)) {
      // its verdict is pending: shutdown's abandoning says so, not "the handler was running"
      if (typeof request === 'object' && request !== null) {
        this.verdictPending.add(request);
        const judged = () => void this.verdictPending.delete(request as object);
        verified = Promise.resolve(verified).finally(judged);
      }
      const aside = this.strategy.aside;
      if (!aside) {
        // Serial: the loop waits for the verdict; meanwhile the request counts as running (stats().active,
        // and shutdownTimeout abandons and reports a verdict that never comes).
        const settled = this.strategy.awaitingVerdict?.(request, clientAddress);
        return Promise.resolve(verified).then(
          (ok) => {
            settled?.();
            return ok && this.mayStillRun(request) ? this.process(request, clientAddress) : this.endRequest(request);
          },
          (err: unknown) => {
            settled?.();
            return this.endWithError(request, clientAddress, err);
          },
        );
      }
      // Where requests run many at once, the loop does not wait for the verdict: one slow or stalled
      // @Verify held every other client back (hostile run). The strategy counts the request meanwhile.
      let judged!: () => void;
      aside.call(this.strategy, new Promise<void>((resolve) => (judged = resolve)), request, clientAddress);
      Promise.resolve(verified)
        .then(
          (ok) => {
            judged();
            return ok && this.mayStillRun(request) ? this.process(request, clientAddress) : this.endRequest(request);
          },
          (err: unknown) => {
            judged();
            return this.endWithError(request, clientAddress, err);
          },
        )
        .then(undefined, (err: unknown) => this.asideFailed(err));
      return;
    }
    return verified ? this.process(request, clientAddress) : this.endRequest(request);
  }

  /**
   * Whether a request whose `@Verify` verdict came late may still be handled: not once close() has begun
   * (its connection is being closed; the handler ran on a dead socket) nor once it was abandoned and reported.
   */
  private mayStillRun(request: Req): boolean {
    return !this.closing && !this.abandoning.has(request as object);
  }

  private process(request: Req, clientAddress: ClientAddress): Promise<void> | void {
    let processed: Promise<void> | void;
    try {
      processed = this.processRequest(request, clientAddress);
    } catch (err) {
      return this.endWithError(request, clientAddress, err);
    }
    const handed = typeof request !== 'object' || request === null || this.handedOver.delete(request);
    if (processed === RESOLVED || !isThenable(processed)) return handed ? undefined : this.releaseKept(request);
    const settled = Promise.resolve(processed);
    if (handed) return settled.then(undefined, (err: unknown) => this.endWithError(request, clientAddress, err));
    return settled.then(() => this.releaseKept(request), (err: unknown) => this.endWithError(request, clientAddress, err));
  }

  /** Requests processRequest() handed to the strategy (handOver()), until process() has seen it. */
  private readonly handedOver = new WeakSet<object>();

  /** @internal processRequest()'s default (and the mixins'): the strategy serves the request, then ends it. */
  protected handOver(request: Req, clientAddress: ClientAddress): Promise<void> {
    if (typeof request === 'object' && request !== null) this.handedOver.add(request);
    return this.strategy.dispatch(this, request, clientAddress);
  }

  /** releaseKept() has warned (once per server). */
  private keptWarned = false;

  /**
   * A processRequest() override that neither handed the request over (super.processRequest()) nor shut down its
   * connection (Python's port `return this.finishRequest(r, a)`): its client never got EOF and its descriptor was
   * held until close() (hostile run: 20 requests, 40 descriptors). Python's garbage collector closes such a
   * socket; here it is ended as any request is, with a warning once per server. A datagram holds nothing.
   */
  private releaseKept(request: Req): Promise<void> | undefined {
    if (this.handedOver.delete(request as object)) return undefined; // handed over late (after an await)
    const socket = request as { destroyed?: unknown; writableEnded?: unknown };
    if (Array.isArray(request) || typeof socket.destroyed !== 'boolean' || socket.destroyed || socket.writableEnded) return undefined;
    if (!this.keptWarned) {
      this.keptWarned = true;
      loggerOf(this).warn(messages.requestKept(classNameOf(this)));
    }
    return this.endRequest(request);
  }

  /** A SystemExit out of a request verified aside: the loop stops with it at its next turn, as it would have in the turn. */
  private asideError: { error: unknown } | undefined;

  private throwAsideError(): void {
    const failed = this.asideError;
    this.asideError = undefined;
    if (failed) throw failed.error;
  }

  private asideFailed(err: unknown): void {
    this.asideError ??= { error: err };
    this.wakeLoop();
  }

  private async endUnserved(): Promise<void> {
    const limit = this.shutdownTimeout ?? 0;
    const left = this.takeUnservedBeforeShutdown();
    await Promise.all(
      left.map(([request, clientAddress]) => this.endUntaken(request, clientAddress, new RequestTimeoutError(messages.unserved(limit, this.servesDatagrams))).catch(() => undefined)),
    );
  }

  /** A request the loop never took, closed unserved (close(), shutdownTimeout) with `err`: reported, told (untakenEnded), released. */
  private async endUntaken(request: Req, clientAddress: ClientAddress, err: Error): Promise<void> {
    await this.reportError(request, clientAddress, err);
    this.untakenEnded(request, clientAddress, err);
    await this.endRequest(request);
  }

  /**
   * @internal A request the loop never took has been reported with `err` and is about to be released: the
   * decorators' server publishes it as a request that ended so. Nothing here.
   */
  protected untakenEnded(_request: Req, _clientAddress: ClientAddress, _err: Error): void {}

  /** verifyRequest or processRequest failed: reported, and that request ends (the loop goes on; SystemExit stops it). */
  private async endWithError(request: Req, clientAddress: ClientAddress, err: unknown): Promise<void> {
    await this.reportError(request, clientAddress, err);
    await this.endRequest(request);
  }

  private async reportError(request: Req, clientAddress: ClientAddress, err: unknown): Promise<void> {
    if (isSystemExit(err)) {
      await this.endRequest(request);
      throw err;
    }
    await handleErrorSafely(this, request, clientAddress, err); // a throwing handleError must not stop the loop or leak the request
  }

  /**
   * shutdownRequest(request), waited for shutdownTimeout at most: a user's override that never settles holds
   * nothing up, one that fails is logged, as the pools do (it stopped the loop), and an abandoned request, which
   * endAbandoned ended, is not ended again (shutdownSafely).
   */
  private endRequest(request: Req): Promise<void> | undefined {
    return shutdownSafely(this, request);
  }

  /**
   * A request given up at shutdownTimeout (or close()), already reported: its connection is released as any
   * other's (shutdownRequest, then closeRequest), so that the limits, stats() and `connection.close` count it
   * before shutdown() resolves; its handler, should it ever return, ends nothing a second time (wasAbandoned).
   * Waited for ABANDON_GRACE_MS at most, its failure logged: the request was reported and its connection
   * closed already. The decorators' server publishes its `request.end` here too, with `error`.
   */
  protected async endAbandoned(request: Req, _error: Error): Promise<void> {
    let ended: unknown;
    try {
      ended = this.shutdownRequest(request);
    } catch (err) {
      ended = Promise.reject(err);
    }
    if (ended === RESOLVED || !isThenable(ended)) return;
    const logged = Promise.resolve(ended).then(ignore, (err: unknown) => loggerOf(this).error(`sockserve: error while ending an abandoned request: ${describeThrown(err)}`));
    await settledWithin(logged, ABANDON_GRACE_MS);
  }

  /** @internal See RequestProcessor.reporting. */
  reporting(request: Req, now: boolean): void {
    if (typeof request !== 'object' || request === null) return;
    if (now) this.reportsUnderWay.add(request);
    else {
      this.reportsUnderWay.delete(request);
      // Owed no longer (handleErrorSafely ran it, or was running it when the abandoning came): the abandoning goes on.
      if (!this.reportOwed.has(request)) this.owedReported.get(request)?.();
    }
  }

  /**
   * @internal A request being given up while its own error is being reported (`reporting`): that report is left
   * to run, and what follows it (the count in stats(), a failing hook's report) is still owed once (owesReport).
   * Undefined when none is under way; else a promise of that report's end, bounded as the hook is.
   */
  protected leaveReportToItsOwn(request: Req): Promise<void> | undefined {
    if (typeof request !== 'object' || request === null || !this.reportsUnderWay.has(request)) return undefined;
    this.reportOwed.add(request);
    const owed = new Promise<void>((resolve) => this.owedReported.set(request, resolve));
    return settledWithin(owed, ((this.shutdownTimeout ?? 0) + 1) * 1000 + ABANDON_GRACE_MS).then(() => undefined);
  }

  /** @internal See RequestProcessor.owesReport. */
  owesReport(request: Req): boolean {
    return typeof request === 'object' && request !== null && this.reportOwed.delete(request);
  }

  /** @internal See RequestProcessor.wasAbandoned. */
  wasAbandoned(request: Req): boolean {
    return this.abandoned.has(request as object);
  }

  /** Return false to refuse the request: it is closed and no handler runs. */
  verifyRequest(_request: Req, _clientAddress: ClientAddress): boolean | Promise<boolean> {
    return true;
  }

  /** The concurrency seam: hands the request to the strategy (serial: finishRequest then shutdownRequest). */
  processRequest(request: Req, clientAddress: ClientAddress): Promise<void> {
    return this.handOver(request, clientAddress);
  }

  /** Builds the handler, which runs setup → handle → finish. */
  finishRequest(request: Req, clientAddress: ClientAddress): Promise<void> {
    // Not async: an idle keep-alive connection holds this frame, and one frame less is memory saved per connection.
    try {
      return new this.RequestHandlerClass(request, clientAddress, this).run();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Ends the request's connection (stream: FIN after the reply), then closeRequest. */
  shutdownRequest(request: Req): Promise<void> {
    return this.closeRequestNow(request);
  }

  /**
   * closeRequest(request) now, as a promise: RESOLVED when it returned nothing (the caller chains nothing), its
   * failure as a rejection. Not async: a datagram ends here once per request, and a closeRequest that returns
   * nothing needs no turn; a stream server's shutdownRequest comes here when the half-close was asked for at once.
   */
  protected closeRequestNow(request: Req): Promise<void> {
    let closed: Promise<void> | void;
    try {
      closed = this.closeRequest(request);
    } catch (err) {
      return Promise.reject(err);
    }
    return closed ? Promise.resolve(closed).then(ignore) : RESOLVED;
  }

  /** Releases the request's socket (Python's `close_request`); called exactly once per request, after shutdownRequest. */
  closeRequest(_request: Req): Promise<void> | void {}

  /**
   * Default: Python's traceback block at `logger.error` (stderr) for an error of the handler; one line at
   * `logger.warn` for routine client behaviour (a reset, a timeout, a line too long: see error-kind.ts), at
   * most ROUTINE_LINES_PER_SECOND (10) a second, then one line saying how many more were not logged.
   * The server keeps serving. `error` may be left out, as Python's `handle_error(request, client_address)`
   * leaves it: the error being reported for `request` is meant.
   */
  handleError(request: Req | undefined, clientAddress: ClientAddress | undefined, error?: unknown): Promise<void> | void {
    // Python's handle_error(request, client_address) takes no error (it prints the one being handled): an override
    // ported from it that calls super.handleError(request, clientAddress) reports the request's error all the same.
    if (arguments.length < 3) {
      const kept = typeof request === 'object' && request !== null && this.errorsReported.has(request);
      error = kept ? this.errorsReported.get(request as object) : errorInHand?.error;
    }
    if (isRoutine(error)) {
      this.routineLines ??= new LineBudget(ROUTINE_LINES_PER_SECOND, (n) =>
        loggerOf(this).warn(messages.clientErrorsHeldBack(this.logName, n, ROUTINE_LINES_PER_SECOND, this.routineErrorsCountedIn)),
      );
      if (this.routineLines.take()) loggerOf(this).warn(messages.clientError(clientAddress, error));
      return;
    }
    loggerOf(this).error(messages.errorBlock(clientAddress, describeThrown(error)));
  }

  /**
   * @internal handleError(request, clientAddress, error) as the server's own code calls it (handleErrorSafely, a
   * pool's processor, a failed preamble): `error` kept for an override ported from Python's two-argument
   * `handle_error`, which calls the base's without it: for the request until the call settles (an override that
   * awaits first), and while the call runs synchronously (one with no request: a TLS handshake).
   */
  callHandleError(request: Req | undefined, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> | void {
    const key = typeof request === 'object' && request !== null && !this.errorsReported.has(request) ? (request as object) : undefined;
    if (key) this.errorsReported.set(key, error);
    const forget = () => void (key && this.errorsReported.delete(key));
    const before = errorInHand;
    errorInHand = { error };
    let result: Promise<void> | void;
    try {
      result = this.handleError(request, clientAddress, error);
    } catch (err) {
      forget();
      throw err;
    } finally {
      errorInHand = before;
    }
    if (!isThenable(result)) return forget();
    return Promise.resolve(result).finally(forget);
  }

  /** Called by handleRequest() when `timeout` seconds passed with no request (Python's `handle_timeout`); its value is handleRequest()'s. */
  handleTimeout(): unknown {
    return undefined;
  }

  /** Called once per serveForever() loop turn (Python's `service_actions`): periodic housekeeping. */
  serviceActions(): Promise<void> | void {}

  /**
   * @internal Where the routine client errors a log leaves out are counted, named in the line that says how many were
   * left out; none in the classic layer (no stats(), as Python's servers have none), the decorators' stats().
   */
  protected get routineErrorsCountedIn(): string | undefined {
    return undefined;
  }

  /**
   * What error messages call this server where they name a call of its (`TCPServer.close()`): the class name; the
   * decorator layer's, `Echo's server` (its users never meet the classic class: new-user run).
   */
  protected get callerName(): string {
    return classNameOf(this);
  }

  /** Who the server's log lines say they are from: the class name (the decorator layer: the handler's). */
  protected get logName(): string {
    return classNameOf(this);
  }

  /** serverBind() has run (or the transport needs none): false only for `{ bindAndActivate: false }` before it. */
  protected get bound(): boolean {
    return true;
  }

  /** serveForever()/handleRequest() on a server built with `{ bindAndActivate: false }` and never bound would wait for ever. */
  private assertBound(member: string): void {
    if (!this.bound) throw new Error(messages.notBound(this.callerName, member));
  }

  /** serveForever() is running (and has not been asked to shut down): queued requests will be taken. */
  protected get isServing(): boolean {
    return this.loop !== undefined && !this.shutdownRequested;
  }

  /** Whether verifyRequest must run in this process (it is overridden): then requests are taken here, not by workers, and a stream's preamble runs here too. */
  protected verifiesHere(): boolean {
    return this.verifyRequest !== BaseServer.prototype.verifyRequest;
  }

  protected get isClosed(): boolean {
    return this.closing !== undefined;
  }

  private assertOpen(member: string): void {
    if (this.closing) throw new ServerClosedError(messages.serverClosed(this.callerName, member));
    if (this.socketReleased) throw new ServerClosedError(messages.socketReleased(this.callerName, member));
  }

  /**
   * serverClose() released the socket (called by itself, Python's `server_close()`, not through close()): no
   * loop can take a request any more. serveForever() and handleRequest() then reject with ServerClosedError, as
   * Python's raise ValueError on the closed descriptor; they waited for ever, or the program exited mid-await.
   */
  protected socketReleased = false;
}

function ignore(): void {}

/** The error of the handleError() call running now (synchronously) through callHandleError(), for one that leaves it out. */
let errorInHand: { error: unknown } | undefined;

/** Milliseconds a failed bind may go unobserved (nothing awaited `ready`, nothing served) before it is logged. */
const UNOBSERVED_BIND_MS = 100;
/** How long abandoning waits, after closing every connection, for requests to notice before it gives them up. */
const ABANDON_GRACE_MS = 100;
/** Routine client-error lines a server logs a second at most (handleError); the rest are counted in one line. */
const ROUTINE_LINES_PER_SECOND = 10;

/**
 * Milliseconds the loop may run turns that never wait for Node's event loop (requests already queued, handlers
 * that finish at once) before it gives the event loop a turn. Without it a serial datagram server with a queue
 * served the whole queue (up to maxQueuedDatagrams) before any signal, timer, IPC message or shutdown() was
 * seen: SIGTERM with shutdownTimeout 1 ended the loop after 7.5 s (hostile run). Python's loop waits in
 * select() at every turn.
 */
const LOOP_SLICE_MS = 10;

/**
 * Whether Node's event loop has had a turn since the loop's current slice began: a setImmediate() set when it
 * began has run. A loop that waits for I/O gives it turns of its own, and then never yields here: its timing is
 * that of a loop without slices. On `node:timers`, which jest does not fake.
 */
class LoopSlice {
  private began = performance.now();
  private turned = false;
  private readonly mark = (): void => {
    this.turned = true;
  };

  constructor() {
    timers.setImmediate(this.mark);
  }

  /**
   * Undefined while the slice lasts; at its end, undefined again if the event loop had a turn in it (a new slice
   * begins), else a turn of the event loop to await. At most one setImmediate() a slice, however many requests.
   */
  next(): Promise<void> | undefined {
    if (performance.now() - this.began < LOOP_SLICE_MS) return undefined;
    if (this.turned) return this.restart();
    return new Promise((resolve) => timers.setImmediate(() => resolve(this.restart())));
  }

  private restart(): undefined {
    this.began = performance.now();
    this.turned = false;
    timers.setImmediate(this.mark);
    return undefined;
  }
}

/** One run of serveForever(): when it has exited, and whether it gave up waiting for requests. */
class Loop {
  readonly exited: Promise<void>;
  ended = false;
  abandoned = false;
  private release!: () => void;
  /** Those waiting in unlessAbandoned(): abandon() lets them go. */
  private readonly waiting = new Set<() => void>();
  private deadline: NodeJS.Timeout | undefined;

  constructor() {
    this.exited = new Promise<void>((resolve) => (this.release = resolve));
  }

  /**
   * `work`, or nothing once the loop has abandoned its requests (work left running is not awaited; if it
   * fails later, no one hears). Not a Promise.race with a "given up" promise: each race would leave a
   * reaction on it, one per request for the life of the loop.
   */
  unlessAbandoned(work: Promise<unknown>): Promise<unknown> {
    return this.abandoned ? Promise.resolve() : releasable(this.waiting, work);
  }

  /**
   * Calls `onDeadline` after `ms`, once per loop (a second shutdown() keeps the first deadline). On `node:timers`,
   * which jest does not fake: shutdownTimeout is the server's wait, and on the fake clock a request that never
   * returned was never abandoned, so shutdown() and serveForever() hung under jest.useFakeTimers().
   */
  armDeadline(ms: number, onDeadline: () => void): void {
    if (this.deadline || this.ended) return;
    this.deadline = timers.setTimeout(() => {
      this.overdue = true;
      this.letGoOverdue();
      onDeadline();
    }, ms);
  }

  /** Those waiting in unlessOverdue(): shutdownTimeout's deadline or abandon() lets them go. */
  private readonly waitingOverdue = new Set<() => void>();

  /** `work`, or nothing once shutdownTimeout has passed (overdue) or the loop abandoned its requests: for a hook of the loop itself. */
  unlessOverdue(work: Promise<unknown>): Promise<unknown> {
    return this.overdue || this.abandoned ? Promise.resolve() : releasable(this.waitingOverdue, work);
  }

  private letGoOverdue(): void {
    for (const letGo of this.waitingOverdue) letGo();
    this.waitingOverdue.clear();
  }

  /** shutdownTimeout has passed: no request is taken any more, even one received before shutdown(). */
  overdue = false;

  abandon(): void {
    this.abandoned = true;
    for (const letGo of this.waiting) letGo();
    this.waiting.clear();
    this.letGoOverdue();
  }

  end(): void {
    this.ended = true;
    timers.clearTimeout(this.deadline);
    this.release();
  }
}

/** `work`'s outcome, or undefined once one of `waiters` (a release function it adds there) is called first. */
function releasable(waiters: Set<() => void>, work: Promise<unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const letGo = () => resolve(undefined);
    waiters.add(letGo);
    work.then(
      (value) => {
        waiters.delete(letGo);
        resolve(value);
      },
      (err) => {
        waiters.delete(letGo);
        reject(err);
      },
    );
  });
}

function isOsError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('E');
}

/** Errors of the client's making that deserve one line, not a traceback (observability/error-kind.ts). */
export function isRoutineError(error: unknown): boolean {
  return isRoutine(error);
}
