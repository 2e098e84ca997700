import { settledWithin } from '../transports/event-loop';
import { findExport, findLoadedExport, isLoadedCommonJs } from '../concurrency/remote/class-ref';
import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import { forkingStrategy } from '../concurrency/forking.strategy';
import type { WorkerSpec } from '../concurrency/remote/protocol';
import { portableEdge } from '../concurrency/remote/worker-edge';
import { workerLaunch } from '../concurrency/remote/worker-launch';
import type { EdgeOptions } from '../transports/edge-options';
import type { ClientAddress } from '../transports/address';
import { threadingStrategy } from '../concurrency/threading.strategy';
import { DEFAULT_HEARTBEAT_TIMEOUT, PoolTuning, reportPeriodMs, WorkerPoolStrategy } from '../concurrency/worker-pool.strategy';
import { ConfigurationError } from '../errors/errors';
import { configurationMessages, optionTexts } from '../errors/configuration.messages';
import { checkConcurrentOptions } from '../decorators/concurrent.decorator';
import { checkForkingOptions } from '../decorators/forking.decorator';
import { checkThreadingOptions } from '../decorators/threading.decorator';
import { positiveInteger } from '../decorators/options.validation';
import { messages } from '../errors/messages';
import type { ForkingOptions, ThreadingOptions } from '../metadata/definition';
import { modulePath } from '../metadata/module-loader';
import { callerFile } from '../metadata/source-location';
import type { BaseServer } from './base-server';
import { classNameOf } from './class-name';
import { MIXIN_RULES } from './mixin-options';
import { UDPServer, UnixDatagramServer } from './datagram-servers';
import { TCPServer, UnixStreamServer } from './stream-servers';
import { loggerOf } from '../observability/logger';

/** A classic server class (TCPServer, UDPServer, a subclass of either…): what the mixins take and return. */
export type ServerClass = abstract new (...args: any[]) => BaseServer<any, any>;

/**
 * The mixins are a thin compatibility face over the strategies, for Python's shape:
 * `class S extends ThreadingMixIn(TCPServer) {}`. They only choose the server's strategy.
 */

/** ConcurrentMixIn's options: those of @Concurrent. */
export interface ConcurrentMixInOptions {
  /** The most requests served at once (a positive integer); default no limit. */
  maxConnections?: number;
}

/**
 * Requests interleaved on the event loop (no Python analogue; asyncio's shape): `ConcurrentMixIn(TCPServer)`,
 * `ConcurrentMixIn(TCPServer, { maxConnections: 100 })` as `@Concurrent` takes it, or the bound alone
 * (`ConcurrentMixIn(TCPServer, 100)`). The class is named as Python names its mixed servers (ConcurrentTCPServer).
 * Throws ConfigurationError for a bound that is not a positive integer, or an unknown option.
 */
export function ConcurrentMixIn<B extends ServerClass>(Base: B, options: ConcurrentMixInOptions | number = {}): B {
  const site = { decorator: 'ConcurrentMixIn', cls: Base.name, example: mixinExample('ConcurrentMixIn', Base, '{ maxConnections: 100 }', '100') };
  oneMixin('ConcurrentMixIn', Base);
  // An options object is checked by @Concurrent's rules (an unknown key is named); a bare number as its maxConnections.
  if (typeof options === 'object' && options !== null) checkConcurrentOptions(site, options);
  const maxConnections = typeof options === 'object' && options !== null ? options.maxConnections ?? Infinity : options;
  // As @Concurrent({ maxConnections }) checks it: 0 or -1 bound the server and served no client (hostile re-check).
  if (maxConnections !== Infinity && !positiveInteger(maxConnections)) {
    throw new ConfigurationError(configurationMessages.badOption(site.decorator, site.cls, 'maxConnections', maxConnections, optionTexts.maxConnections));
  }
  abstract class Concurrent extends Base {
    constructor(...args: any[]) {
      super(...args);
      this.strategy = new ConcurrentStrategy(maxConnections);
    }
  }
  Object.defineProperty(Concurrent, 'name', { value: `Concurrent${Base.name}` });
  Object.defineProperty(Concurrent, MIXED, { value: 'ConcurrentMixIn' });
  return Concurrent as unknown as B;
}

/**
 * How the mixin is written, for a wrong options argument: the decorator's own example (`@Threading({ threads: 4 })`)
 * was shown for ThreadingMixIn(TCPServer, [2]).
 */
function mixinExample(mixin: string, Base: ServerClass, options: string, bare?: string): string {
  const forms = [`${mixin}(${Base.name})`, `${mixin}(${Base.name}, ${options})`, ...(bare === undefined ? [] : [`${mixin}(${Base.name}, ${bare})`])];
  return `${forms.slice(0, -1).join(', ')} or ${forms[forms.length - 1]}`;
}

/** On a class a concurrency mixin made (and so on its subclasses): the mixin's name. */
const MIXED = Symbol('sockserve.concurrencyMixIn');

/**
 * A concurrency mixin over a class another one made is a ConfigurationError, as two concurrency decorators are:
 * the last strategy set replaced the other's silently (ConcurrentMixIn(ThreadingMixIn(TCPServer)) ran a thread
 * pool named ConcurrentThreadingTCPServer, its bound ignored: hostile re-check).
 */
function oneMixin(mixin: string, Base: ServerClass): void {
  const already = (Base as unknown as { [MIXED]?: string })[MIXED];
  if (already !== undefined) throw new ConfigurationError(configurationMessages.mixinTwice(mixin, Base.name, already));
}

/**
 * Python's ThreadingMixIn on real worker threads. The handler class is loaded in each thread from the
 * module that constructs the server if it exports it, else from the CommonJS module that does (or from
 * `handlerModule`).
 */
export function ThreadingMixIn<B extends ServerClass>(Base: B, options: ThreadingOptions & PoolMixInOptions = {}): B {
  oneMixin('ThreadingMixIn', Base);
  checkThreadingOptions({ decorator: 'ThreadingMixIn', cls: Base.name, example: mixinExample('ThreadingMixIn', Base, '{ threads: 4 }') }, options, MIXIN_RULES);
  return poolMixIn(Base, 'threading', options, (spec, name, tuning) =>
    threadingStrategy(spec, workerLaunch('thread-entry', spec.source, name), options, name, tuning),
  );
}

/**
 * Python's ForkingMixIn on real child processes. At most `options.maxChildren`, else the server's
 * `maxChildren` attribute (40 by default, Python's `max_children`; set it on the instance or as a subclass
 * field before binding), run at once. `timeout` (handleRequest's wait) is 300 seconds, as Python's
 * ForkingMixIn. The handler class is loaded in each child from the module that constructs the server if it
 * exports it, else from the CommonJS module that does (or from `handlerModule`).
 */
export function ForkingMixIn<B extends ServerClass>(Base: B, options: ForkingOptions & PoolMixInOptions = {}): B {
  oneMixin('ForkingMixIn', Base);
  checkForkingOptions({ decorator: 'ForkingMixIn', cls: Base.name, example: mixinExample('ForkingMixIn', Base, '{ children: 4 }') }, options, MIXIN_RULES);
  const Forking = poolMixIn(Base, 'forking', options, (spec, name, tuning, server) =>
    forkingStrategy(spec, workerLaunch('child-entry', spec.source, name), { ...options, maxChildren: maxChildrenOf(server, options) }, name, tuning),
  );
  abstract class WithPythonTimeout extends Forking {
    constructor(...args: any[]) {
      super(...args);
      // Python's class attribute: a timeout the base class's constructor set itself stays (an instance attribute wins)
      if (this.timeout === null) this.timeout = FORKING_TIMEOUT;
    }
  }
  Object.defineProperty(WithPythonTimeout, 'name', { value: Forking.name });
  return WithPythonTimeout as unknown as B;
}

/** The pool's bound: the option, else the server's `maxChildren` attribute (Python's `max_children`), a positive integer. */
function maxChildrenOf(server: BaseServer<any, any>, options: ForkingOptions): number {
  const max = options.maxChildren ?? server.maxChildren;
  const site = { decorator: 'ForkingMixIn', cls: server.constructor.name };
  if (!positiveInteger(max)) throw new ConfigurationError(configurationMessages.badOption(site.decorator, site.cls, 'maxChildren (the attribute)', max, optionTexts.maxChildren));
  checkForkingOptions(site, { ...options, maxChildren: max }, MIXIN_RULES);
  return max as number;
}

/** Python's `ForkingMixIn.timeout`: seconds handleRequest() waits for a request. */
const FORKING_TIMEOUT = 300;

/** What both pool mixins take besides the pool's own options. */
export interface PoolMixInOptions {
  /** The module that exports the handler class; default the module that constructs the server if it exports the class, else the CommonJS module that does. */
  handlerModule?: string;
  /** Seconds a worker's event loop may stay blocked before the worker is ended; default 30. */
  heartbeatTimeout?: number;
}

function poolMixIn<B extends ServerClass>(
  Base: B,
  mode: 'threading' | 'forking',
  options: PoolMixInOptions,
  build: (spec: WorkerSpec, handlerName: string, tuning: PoolTuning, server: BaseServer<any, any>) => WorkerPoolStrategy,
): B {
  const heartbeatTimeout = options.heartbeatTimeout ?? DEFAULT_HEARTBEAT_TIMEOUT;
  abstract class Pooled extends Base {
    private readonly handlerSource = options.handlerModule === undefined ? callerFile() : modulePath(options.handlerModule);
    /** The pool's start, once serverActivate() has begun it: a second serverActivate() (Python's listen() again) keeps it. */
    private starting: Promise<void> | undefined;
    /** The pool has started (it is `this.strategy`). */
    private poolStarted = false;
    /** close() is running: its serverClose() leaves the workers to it. */
    private closingAll = false;

    /**
     * Python's ThreadingMixIn/ForkingMixIn `process_request()`: hands the request to the pool, and does not call the
     * base class's. Python's `class S(ThreadingMixIn, Base)` puts the mixin first in the MRO, so a `process_request`
     * that `Base` overrides is not called; `ThreadingMixIn(Base)` called Base's, and a Base that served the request
     * itself (as Python's BaseServer.process_request does) ran it in the server's process (new-user run). A subclass
     * of the mixed class overrides this as usual, and its super.processRequest() comes here.
     */
    override processRequest(request: unknown, clientAddress: ClientAddress): Promise<void> {
      return this.handOver(request, clientAddress);
    }

    /** After binding: starts the pool, proving the handler class loads in a worker (once: later calls keep it). */
    override async serverActivate(): Promise<void> {
      await super.serverActivate();
      this.starting ??= this.startPool();
      await this.starting;
    }

    private async startPool(): Promise<void> {
      const name = this.RequestHandlerClass.name;
      // The module that builds the server exports the handler, else (no handlerModule given) the CommonJS
      // module that does: a handler imported from a module of its own works as with a serial server.
      // (A guess for an ES module, whose exports cannot be read here: a loaded CommonJS module that exports it wins.)
      const direct = findExport(this.RequestHandlerClass, [this.handlerSource]);
      const confirmed = direct !== undefined && isLoadedCommonJs(direct.source) ? direct : undefined;
      const found = confirmed ?? (options.handlerModule === undefined ? findLoadedExport(this.RequestHandlerClass) : undefined) ?? direct;
      const source = found?.source ?? this.handlerSource;
      if (!source) throw new ConfigurationError(messages.handlerSourceUnknown(name));
      // A stream server's TLS and PROXY options: its workers run them on the connections they own unread.
      const streamEdge = this as unknown as { edge?: EdgeOptions; lineTimeout?: number | null };
      const edge = streamEdge.edge && portableEdge(name, mode, streamEdge.edge, streamEdge.lineTimeout ?? null);
      const strategy = build(
        {
          source,
          exportName: found?.exportName ?? name,
          values: [],
          classes: [],
          // What a worker's readers bound, as the server's own process does (API.md §5, §11): lineTimeout is the slowloris bound.
          reader: { requestTimeout: this.requestTimeout, lineLimit: (this as unknown as { lineLimit?: number }).lineLimit, lineTimeout: streamEdge.lineTimeout ?? null },
          classic: true,
          serverAddress: this.serverAddress,
          reportMs: reportPeriodMs(heartbeatTimeout),
          owner: classNameOf(this), // the server's log name (BaseServer.logName)
          ...(edge ? { edge } : {}),
          ...(this.servesDatagrams ? { datagrams: true as const } : {}),
        },
        name,
        { heartbeatTimeout, log: (message) => loggerOf(this).warn(message), error: (message) => loggerOf(this).error(message), info: (message) => loggerOf(this).info(message), owner: this },
        this,
      );
      await strategy.start();
      this.strategy = strategy;
      this.poolStarted = true;
    }

    override close(): Promise<void> {
      this.closingAll = true;
      return super.close();
    }

    /**
     * Python's ThreadingMixIn/ForkingMixIn `server_close()` (3.7+): with `blockOnClose` (default true),
     * waits for the requests the workers are serving to finish, once new clients are refused; here bounded
     * by `shutdownTimeout` (seconds; null waits as long as they take), after which close() ends the
     * workers still serving (their requests end with a RequestTimeoutError). Python closes the socket
     * first; here a stream server stops listening first and closes the connections it relays after the
     * wait, and a datagram server keeps its socket for the replies until then. With `blockOnClose` false,
     * close() ends them at once (Python leaves them running; no worker outlives close() here). Called by
     * itself (Python's `server.server_close()`), it then ends the workers as close() does, which Python's
     * reaps (ForkingMixIn) or joins (ThreadingMixIn) there.
     */
    override async serverClose(): Promise<void> {
      const waits = this.blockOnClose && !(mode === 'threading' && this.daemonThreads);
      if (waits && this.strategy.active > 0) {
        const boundMs = this.shutdownTimeout === null ? Infinity : this.shutdownTimeout * 1000;
        const stopListening = (this as unknown as { stopListening?: () => Promise<void> }).stopListening;
        await (stopListening ? stopListening.call(this) : this.strategy.stopAccepting?.(false, true, boundMs));
        // Those still in their PROXY header or TLS handshake close, as the serial server's do (no request began).
        (this.strategy as { closePreambles?: () => void }).closePreambles?.();
        await settledWithin(this.strategy.drain(), boundMs);
      }
      await super.serverClose();
      if (!this.closingAll && this.poolStarted) await this.strategy.close();
    }
  }
  Object.defineProperty(Pooled, 'name', { value: `${mode === 'threading' ? 'Threading' : 'Forking'}${Base.name}` });
  Object.defineProperty(Pooled, MIXED, { value: mode === 'threading' ? 'ThreadingMixIn' : 'ForkingMixIn' });
  return Pooled as unknown as B;
}

// Python's combined classes: the mixin over the transport's server, with the mixin's default options.

/** Python's `ThreadingTCPServer`: `ThreadingMixIn(TCPServer)`, connections served by a pool of worker threads. */
export class ThreadingTCPServer extends ThreadingMixIn(TCPServer) {}
/** Python's `ThreadingUDPServer`: `ThreadingMixIn(UDPServer)`, datagrams handled by a pool of worker threads. */
export class ThreadingUDPServer extends ThreadingMixIn(UDPServer) {}
/** Python's `ThreadingUnixStreamServer`: `ThreadingMixIn(UnixStreamServer)`. */
export class ThreadingUnixStreamServer extends ThreadingMixIn(UnixStreamServer) {}
/** Python's `ThreadingUnixDatagramServer`: `ThreadingMixIn(UnixDatagramServer)`. */
export class ThreadingUnixDatagramServer extends ThreadingMixIn(UnixDatagramServer) {}
/** Python's `ForkingTCPServer`: `ForkingMixIn(TCPServer)`, connections served by a pool of child processes (at most 40). */
export class ForkingTCPServer extends ForkingMixIn(TCPServer) {}
/** Python's `ForkingUDPServer`: `ForkingMixIn(UDPServer)`, datagrams handled by a pool of child processes (at most 40). */
export class ForkingUDPServer extends ForkingMixIn(UDPServer) {}
/** Python's `ForkingUnixStreamServer`: `ForkingMixIn(UnixStreamServer)`. */
export class ForkingUnixStreamServer extends ForkingMixIn(UnixStreamServer) {}
/** Python's `ForkingUnixDatagramServer`: `ForkingMixIn(UnixDatagramServer)`. */
export class ForkingUnixDatagramServer extends ForkingMixIn(UnixDatagramServer) {}
