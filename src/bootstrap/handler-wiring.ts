import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { BaseRequestHandler, DatagramRequestTuple } from '../classic/request-handler';
import { readerFor } from '../classic/reader-registry';
import type { Container, RequestScope } from '../container';
import { RESOLVED } from '../lifecycle/resolved';
import { datagramMessageRequest, MessageRequest, streamMessageRequest } from '../framing/message-request';
import { stampCloseAsked } from '../transports/connection-stamps';
import { callHook, decoratedLifecycle, finishWritesOf, handleErrorWithin } from '../lifecycle/run-decorated';
import { disposeAfterEnd, disposeThenFail, holdsInstances, whileDisposing } from '../lifecycle/dispose-after-end';
import type { HandlerDefinition, HookName } from '../metadata/definition';
import type { ClientAddress } from '../transports/address';
import { preambleFacts } from '../transports/connection-preamble';
import { StreamReader } from '../transports/stream-reader';
import { BufferWriter, StreamWriter } from '../transports/stream-writer';
import { AnyRequest, DatagramRequest, StreamRequest } from './request-objects';
import type { Server } from './server';
import { injectionMessages } from '../errors/injection.messages';
import { disposalFailureOf, isSystemExit, readThrown } from '../errors/thrown';
import { endedHealthCheck } from '../observability/health-check';

const HOOK_NAMES = { handleError: '@HandleError', handleTimeout: '@HandleTimeout', serviceActions: '@ServiceActions' } as const;

type Hooked = Record<string | symbol, (...args: unknown[]) => unknown>;

/** One request's state between verify (main thread) and the lifecycle: its DI scope, handler and request object. */
interface RequestContext {
  scope: RequestScope;
  instance: Hooked;
  req: AnyRequest;
}

/**
 * Joins a decorated handler class to a classic server: builds each request's handler from the container
 * (one request scope per request, disposed after @Finish), hands the hooks the request object, and
 * serves the server-level hooks (@HandleError, @HandleTimeout, @ServiceActions) from one instance.
 */
export class HandlerWiring {
  /** Requests that passed @Verify, with the handler it was called on; most handlers have no @Verify. */
  private readonly verified = new WeakMap<object, RequestContext>();
  /**
   * Requests whose @HandleError already ran on their own handler instance (reportOn), with the hook's
   * own error when it threw: the server's handleError(request, …) then runs no hook again.
   */
  private readonly reported = new WeakMap<object, { hookError?: unknown }>();

  constructor(
    private readonly def: HandlerDefinition,
    private readonly container: Container,
    private readonly face: Server,
    /** The lifecycle runs in a worker: the main thread's instance serves @Verify only. */
    private readonly remote: boolean,
    private readonly readerOptions: () => { requestTimeout: number | null; lineLimit?: number; lineTimeout?: number | null },
    /** Seconds a @HandleError is waited for (the server's shutdownTimeout); null or undefined: no bound. */
    private readonly handleErrorLimit: () => number | null | undefined = () => undefined,
    /**
     * Whether a reset with no byte either way is a health check, whose error reaches no hook (bootstrap()'s
     * servers). sockserve/testing's server tells none (`healthChecks` stays 0) and reports every reset: false
     * there, so that its @HandleError runs on the request's own instance, not on a fresh one in a second scope.
     */
    private readonly healthChecks = true,
    /**
     * The lifecycle as a worker runs it, in this thread (sockserve/testing's server for a `@Threading`/`@Forking`
     * handler), so that a handler fails its test where it fails in its worker: `verifyApart`, @Verify on an
     * instance and request scope of its own, which serve it only, as where the server's process verifies for a
     * worker (API.md §3); `relayed`, no `req.socket`, as a worker has none for a connection relayed to it.
     */
    private readonly asInWorker?: { verifyApart: boolean; relayed: boolean },
  ) {}

  hasHook(name: HookName): boolean {
    return this.def.hooks[name] !== undefined;
  }

  /**
   * @Verify, in the main thread, before anything else; builds the request's handler on the way, and
   * keeps it for the lifecycle when the request is accepted and runs here. A scope @Verify alone used (the
   * client refused, or its lifecycle runs in a worker) is disposed aside: a dispose() that throws goes to
   * `disposeFailed` (the server reports it, as any error), one that never settles holds nothing up; awaited
   * here, they dropped or froze the connection the worker was to serve (hostile run, 2026-12-04).
   */
  async verify(request: object, clientAddress: ClientAddress, disposeFailed: (error: unknown) => unknown): Promise<boolean> {
    const ctx = this.begin(request, clientAddress);
    let ok = false;
    try {
      ok = Boolean(await this.call(ctx.instance, 'verify', clientAddress, ctx.req));
    } catch (err) {
      await this.reportOn(ctx.instance, err, clientAddress, request);
    } finally {
      if (ok && !this.remote && !this.asInWorker?.verifyApart) this.verified.set(request, ctx);
      else {
        // Its lifecycle runs on a request of its own (in a worker, or apart): a req.close() of @Verify's goes with it.
        // Its scope is disposed all the same (one whose @Verify asked to close was left undisposed).
        if (ok && ctx.req instanceof MessageRequest && ctx.req.closeRequested) stampCloseAsked(request);
        ctx.scope.dispose().then(undefined, (error: unknown) => disposeFailed(error)).then(undefined, () => undefined);
      }
    }
    return ok;
  }

  /**
   * A request's error for @HandleError `(error, client)`. When the class has none, or the hook itself
   * threw, `report` gets the error to report the default way (the hook's own, so that it is never lost).
   * The one path for both bootstrap()'s assembled server and sockserve/testing's server.
   *
   * `limitSeconds` (the server's shutdownTimeout; null or undefined: none): a hook that has not settled by
   * then is waited for no longer (it goes on running), and `report` gets an Error saying so, with the error
   * it was given. A hook that never settles would otherwise keep its connection open and its request in
   * flight for ever, and shutdown() and close() waiting on it (hostile-client run, 2026-12-03).
   */
  async handleError(error: unknown, clientAddress: ClientAddress | undefined, report: (error: unknown) => unknown, limitSeconds?: number | null, request?: unknown): Promise<void> {
    const ran = typeof request === 'object' && request !== null ? this.reported.get(request) : undefined;
    if (ran) {
      // @HandleError ran on the request's own instance (reportOn); a hook that threw is reported here.
      this.reported.delete(request as object);
      if ('hookError' in ran) await report(ran.hookError);
      // The request scope's dispose() failed after the hook had the request's error: no hook saw that one.
      const disposal = disposalFailureOf(error);
      if (disposal) await report(disposal.error);
      return;
    }
    // The handler could not be built (a constructor of its graph threw, a factory gave a Promise): @HandleError
    // is one of its methods, so it does not run (docs/dependency-injection.md). Building a fresh instance for it
    // ran every constructor again (twice per failing request; in the server's process for a worker's request),
    // and when that second build succeeded the hook saw the error after all (hostile run).
    if (this.hasHook('handleError') && readThrown(error, 'name') !== 'InjectionError') {
      try {
        await handleErrorWithin(this.callServerHook('handleError', error, clientAddress), this.def.handler.name, limitSeconds, error);
        return;
      } catch (hookError) {
        error = hookError;
      }
    }
    await report(error);
  }

  /**
   * @HandleError for an error of a request's own hooks, on that request's handler instance, before its scope
   * is disposed and its connection ends: what setup() stored is there, as in a worker (API.md §3), and the
   * connection closes once the hook has returned (Python's handle_error, then shutdown_request). Rejects
   * with `err`; the server's handleError(request, …) then counts it and runs no hook again. A health check's
   * reset and SystemExit reach no hook here, as before. Before 2026-12-04 serial and @Concurrent servers
   * ran @HandleError on a fresh instance, where a worker ran it on the request's.
   */
  private reportOn(instance: Hooked, err: unknown, clientAddress: ClientAddress, request: object): Promise<never> {
    if (!this.hasHook('handleError') || isSystemExit(err)) return Promise.reject(err);
    // A request the server gave up on at shutdownTimeout was reported then; what it meets later is no news
    // (handleErrorSafely says the same; before this check the hook ran a second time; hostile re-check).
    if (this.face.classicServer.wasAbandoned(request as never)) return Promise.reject(err);
    if (this.healthChecks && !Array.isArray(request) && endedHealthCheck(request, err)) return Promise.reject(err);
    let hook: Promise<unknown>;
    const server = this.face.classicServer;
    server.reporting(request as never, true); // shutdownTimeout's abandoning does not report it again meanwhile
    try {
      hook = handleErrorWithin(this.call(instance, 'handleError', err, clientAddress), this.def.handler.name, this.handleErrorLimit(), err);
    } catch (hookError) {
      hook = Promise.reject(hookError);
    }
    return hook.then(
      () => {
        server.reporting(request as never, false);
        this.reported.set(request, {});
        throw err;
      },
      (hookError: unknown) => {
        server.reporting(request as never, false);
        this.reported.set(request, { hookError });
        throw err;
      },
    );
  }

  /**
   * A server-level hook (@HandleError, @HandleTimeout, @ServiceActions) on a fresh instance built in a
   * request scope of its own, which is disposed once the hook has returned (or thrown): a handler with
   * request-scoped dependencies can have server-level hooks, and nothing they resolve outlives the call.
   * The disposal is not awaited, and its failure is logged at `error`: awaited, a dispose() that never
   * settled held a serial server up (5 s per call), and one that threw failed the hook, and with
   * @ServiceActions the serve loop (hostile re-check, 2026-12-04).
   */
  async callServerHook(name: 'handleError' | 'handleTimeout' | 'serviceActions', ...args: unknown[]): Promise<unknown> {
    const scope = this.container.createRequestScope();
    try {
      return await this.call(scope.resolve(this.def.handler) as Hooked, name, ...args);
    } finally {
      scope.dispose().then(undefined, (error: unknown) => this.face.logger.error(injectionMessages.hookScopeDisposeFailed(this.def.handler.name, HOOK_NAMES[name], error)));
    }
  }

  /** The classic handler class the server builds per request: it runs the decorated lifecycle. */
  handlerClass(): new (request: any, clientAddress: ClientAddress, server: unknown) => BaseRequestHandler {
    const wiring = this;
    return class DecoratedRequestHandler extends BaseRequestHandler {
      override run(): Promise<void> {
        return wiring.runRequest(this.request as object, this.clientAddress);
      }
    };
  }

  /** Not async, so an idle connection holds one suspended frame (the lifecycle's) for its request, not two. */
  private runRequest(request: object, clientAddress: ClientAddress): Promise<void> {
    let ctx = this.hasHook('verify') ? this.verified.get(request) : undefined;
    if (ctx) this.verified.delete(request);
    else {
      try {
        ctx = this.begin(request, clientAddress);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const { instance, req, scope } = ctx;
    this.scopes.set(request, scope); // for disposeAbandoned: a handler that never returns never disposes it
    const reply = req instanceof DatagramRequest ? req.wfile : req instanceof MessageRequest ? req.datagramReply : undefined;
    const hooked = this.hasHook('handleError');
    if (reply) {
      const lifecycle = decoratedLifecycle(this.def, instance, req);
      // Abandoned at shutdownTimeout or close() meanwhile (reported, its request.end published): its late reply is not sent.
      const server = this.face.classicServer;
      const ran = runDatagram(hooked ? lifecycle.then(undefined, (err: unknown) => this.reportOn(instance, err, clientAddress, request)) : lifecycle, request as DatagramRequestTuple, reply, clientAddress, scope, server);
      // What fails after a lifecycle that went well (the reply's send, a request-scoped dispose()) reaches @HandleError
      // on the request's handler instance too, not on a fresh one the server's handleError built, with request-scoped
      // providers of its own (hostile run); a lifecycle error was reported above.
      return hooked ? ran.then(undefined, (err: unknown) => (this.reported.has(request) ? Promise.reject(err) : this.reportOn(instance, err, clientAddress, request))) : ran;
    }
    // One reaction waits for the lifecycle (an idle keep-alive connection holds it for as long as it lives):
    // then the handler's unawaited writes, and the scope's disposal, whatever happened, after the
    // connection's end has gone out (a slow dispose() does not hold the client's connection open).
    const connection = request as Duplex;
    const ended = (err: unknown) => disposeThenFail(disposeAfterEnd(connection, scope), err);
    const failed = hooked ? (err: unknown) => this.reportOn(instance, err, clientAddress, request).then(undefined, ended) : ended;
    // A dispose() that throws after a request that went well reaches @HandleError on the request's handler instance,
    // not on a fresh one the server's handleError built, with request-scoped providers of its own (hostile run).
    const disposed = hooked
      ? () => disposeAfterEnd(connection, scope).then(undefined, (err: unknown) => this.reportOn(instance, err, clientAddress, request))
      : () => disposeAfterEnd(connection, scope);
    return decoratedLifecycle(this.def, instance, req).then(() => {
      let done: void | Promise<void>;
      try {
        done = finishWritesOf(req);
      } catch (err) {
        return failed(err);
      }
      return done ? done.then(disposed, failed) : disposed();
    }, failed);
  }

  /** Each running request's scope (runRequest), for disposeAbandoned. */
  private readonly scopes = new WeakMap<object, RequestScope>();

  /**
   * `request` was abandoned (shutdownTimeout, close(), a second signal): its handler may never return to dispose
   * its request scope, so it is disposed now, as a worker disposes its abandoned requests' (every request-scoped
   * instance is disposed: new-user run, a second signal under @Concurrent left one undisposed). A dispose() that
   * throws is logged at `error`, as a server-level hook's scope's is (the request was reported already). Idempotent.
   */
  disposeAbandoned(request: unknown): Promise<void> {
    const scope = typeof request === 'object' && request !== null ? this.scopes.get(request) : undefined;
    if (scope === undefined || !holdsInstances(scope)) return Promise.resolve();
    return scope.dispose().catch((error: unknown) => this.face.logger.error(injectionMessages.abandonedScopeDisposeFailed(this.def.handler.name, error)));
  }

  private begin(request: object, clientAddress: ClientAddress): RequestContext {
    const scope = this.container.createRequestScope();
    try {
      return { scope, instance: scope.resolve(this.def.handler) as Hooked, req: this.requestObject(request, clientAddress) };
    } catch (err) {
      scope.dispose().catch(() => undefined); // the construction error is the one to report
      throw err;
    }
  }

  private requestObject(request: object, clientAddress: ClientAddress): AnyRequest {
    if (Array.isArray(request)) {
      const [data] = request as DatagramRequestTuple;
      const truncated = (request as DatagramRequestTuple).truncated;
      if (this.def.hooks.message !== undefined) return datagramMessageRequest(this.def.framing, data, clientAddress, this.face, new BufferWriter(), request, truncated === true);
      return new DatagramRequest(data, truncated, undefined, new BufferWriter(), clientAddress, this.face, request);
    }
    const socket = request as net.Socket;
    const { tls, proxy } = preambleFacts(socket);
    // An @OnMessage handler's loop reads the connection itself, once its lifecycle runs (not for a remote @Verify).
    if (this.def.hooks.message !== undefined) return streamMessageRequest(this.def.framing!, socket, clientAddress, this.face, request, { tls, proxy }, this.readerOptions());
    // Remote: the worker reads the connection; @Verify in the main thread gets an empty rfile.
    const reader = this.remote ? undefined : this.readerOptions();
    const rfile = reader === undefined ? StreamReader.fromBuffer(Buffer.alloc(0)) : readerFor(socket, reader);
    // Replies go out at once, without Nagle's algorithm holding a write's tail for the client's delayed ACK
    // (a 64 KiB reply waited up to 40 ms so): TCP_NODELAY, as @OnMessage's loop, Netty and Go set it. A relayed
    // connection's side here passes it to the main thread's socket; a Unix socket has no such option.
    if (!this.remote) (socket as Partial<net.Socket>).setNoDelay?.(true);
    const own = this.asInWorker?.relayed ? undefined : socket;
    return new StreamRequest(rfile, new StreamWriter(socket, reader?.requestTimeout), clientAddress, this.face, own, request, tls, proxy);
  }

  private call(instance: Hooked, hook: HookName, ...args: unknown[]): unknown {
    return callHook(this.def, instance, hook, ...args);
  }
}

/**
 * A datagram's lifecycle, then its reply: what the handler wrote, sent also when the handler threw, as
 * Python's DatagramRequestHandler.finish() (and the classic layer's) sends it: replies already made are
 * owed. The scope is disposed once the reply is made, without waiting for the kernel to take it; the
 * outcome is the handler's error (with the disposal's, when that failed too: disposeThenFail), else the
 * send's, else the disposal's. Runs once per datagram: one reaction, and the send's own promise.
 */
/** What a datagram's reply asks of the server: whether it gave the datagram up (sendReply). */
type AbandoningServer = { wasAbandoned(request: never): boolean };

function runDatagram(lifecycle: Promise<void>, request: DatagramRequestTuple, reply: BufferWriter, clientAddress: ClientAddress, scope: RequestScope, server: AbandoningServer): Promise<void> {
  // `server`, not a closure: this runs once per datagram.
  return lifecycle.then(
    () => replyAndDispose(request, reply, clientAddress, scope, server),
    (err: unknown) => {
      // The handler's error is the one reported; a disposal that fails too is reported with it (disposeThenFail:
      // an AggregateError, the disposal's alone when a @HandleError had the handler's), never dropped (hostile re-check).
      const sent = sendReply(request, reply, clientAddress, server)?.then(undefined, () => undefined);
      const disposed = scope.dispose();
      return disposeThenFail(sent ? Promise.all([sent, disposed]).then(() => undefined) : disposed, err);
    },
  );
}

/**
 * Sends what the handler wrote, if it wrote anything; rejects with the send's error (its bytes then not counted).
 * Nothing for a datagram the server abandoned (shutdownTimeout, close()): it reported it and published its
 * request.end then (bytesOut 0, as counted), as the pools end theirs; its handler returning later sent the reply
 * after all, uncounted (hostile re-check).
 */
function sendReply(request: DatagramRequestTuple, reply: BufferWriter, clientAddress: ClientAddress, server: AbandoningServer): Promise<void> | undefined {
  reply.seal();
  try {
    if (!reply.written || server.wasAbandoned(request as never)) return undefined;
    const bytes = reply.getValue();
    request.replyBytes = bytes.length;
    // stats count the bytes that left: a reply the socket refused (EMSGSIZE, a Unix client gone) counts none
    return request[1].send(bytes, clientAddress).then(undefined, (err: unknown) => {
      request.replyBytes = undefined;
      return Promise.reject(err);
    });
  } catch (err) {
    request.replyBytes = undefined;
    return Promise.reject(err);
  }
}

function replyAndDispose(request: DatagramRequestTuple, reply: BufferWriter, clientAddress: ClientAddress, scope: RequestScope, server: AbandoningServer): Promise<void> {
  const sent = sendReply(request, reply, clientAddress, server);
  const scoped = scope.dispose();
  if (scoped === RESOLVED) return sent ?? scoped;
  const disposed = whileDisposing(request, scoped);
  if (sent === undefined) return disposed;
  // Both are watched from now on: a disposal that fails while the reply is still on its way is not unhandled.
  // Both failing are reported together (disposeThenFail's AggregateError): the disposal's failure was dropped.
  return Promise.allSettled([sent, disposed]).then(([send, disposal]) => {
    if (send.status === 'rejected') return disposeThenFail(disposal.status === 'rejected' ? Promise.reject(disposal.reason) : Promise.resolve(), send.reason);
    if (disposal.status === 'rejected') throw disposal.reason;
  });
}
