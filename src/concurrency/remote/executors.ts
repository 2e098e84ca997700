import type * as net from 'node:net';
import { isIPv6 } from 'node:net';
import type { Duplex } from 'node:stream';
import { DatagramRequest, StreamRequest } from '../../bootstrap/request-objects';
import type { Server } from '../../bootstrap/server';
import { readerFor } from '../../classic/reader-registry';
import { datagramRequest } from '../../classic/request-handler';
import { Container, type RequestScope } from '../../container';
import { ConfigurationError } from '../../errors/errors';
import { isSystemExit } from '../../errors/thrown';
import { messages } from '../../errors/messages';
import { explore } from '../../explorer/explorer';
import { datagramMessageRequest, MessageRequest, streamMessageRequest } from '../../framing/message-request';
import { withLineLimit } from '../../framing/framers';
import { recordFacts } from '../../transports/connection-preamble';
import { callHook, handleErrorWithin, runDecorated } from '../../lifecycle/run-decorated';
import { disposeAfterEnd, disposeThenFail, holdsInstances } from '../../lifecycle/dispose-after-end';
import type { ClientAddress, ServerAddress } from '../../transports/address';
import type { ProxyInfo, TlsInfo } from '../../transports/edge-options';
import type { DatagramSocket } from '../../transports/datagram-socket';
import { settledWithin } from '../../transports/event-loop';
import { BufferWriter, StreamWriter } from '../../transports/stream-writer';
import { exportedClass, loadClass, moduleExports, WHOLE_MODULE } from './class-ref';
import { DroppedInWorker, handleErrorFailure, markReported, PortableToken, reportedInWorker, WorkerSpec } from './protocol';
import { endedHealthCheck } from '../../observability/health-check';
import type { WorkerServerFace } from './worker-face';

/** What the server's preamble learnt of a connection (API.md §11): `req.tls` and `req.proxy`. */
export interface EdgeFacts {
  tls?: TlsInfo;
  proxy?: ProxyInfo;
}

/**
 * Runs one request's lifecycle in a worker: over a connection (owned or bridged), or over a datagram.
 * `face` is the request's own `server` (WorkerServerFace.forRequest).
 */
export interface Executor {
  /**
   * `verify`: @Verify runs here first (a connection handed over unread, API.md §3), on the request's own
   * handler instance and request scope; resolves 'rejected' when it refused the client (no other hook ran).
   * `trace`: wraps the request itself (after @Verify), as the server's process wraps only the requests it
   * lets through (request.start/end and the tracing channel, API.md §14); a refused client starts none.
   */
  stream(conn: Duplex, client: ClientAddress, face: WorkerServerFace, edge?: EdgeFacts, verify?: boolean, trace?: Trace): Promise<void | 'rejected'>;
  /**
   * Writes the reply into `reply`, which the server sends, or this worker when it read the datagram itself;
   * then (`verify`) @Verify runs here first, and it resolves 'rejected' when @Verify says no. `replyMade` is
   * called once the reply is complete (the lifecycle and any @HandleError have ended), before the request
   * scope is disposed, when it has anything to dispose: the reply goes then, as the server's own process sends
   * it (a slow dispose() held a worker's replies up by its whole duration).
   */
  datagram(data: Buffer, truncated: boolean, client: ClientAddress, reply: BufferWriter, face: WorkerServerFace, verify?: boolean, trace?: Trace, replyMade?: ReplyMade): Promise<void | DroppedInWorker>;
  /**
   * Disposes the singletons this worker's container built (the worker is about to end), within `withinMs`
   * milliseconds shared among them; rejects with what their dispose() threw (or that one did not settle).
   */
  dispose(withinMs: number): Promise<void>;
}

/** Says that a datagram's reply is complete and can be sent, its request scope not yet disposed (Executor.datagram). */
export type ReplyMade = () => void;

/** Runs a request's lifecycle inside whatever observes it (observability/events.ts traceRequest). */
export type Trace = (lifecycle: () => Promise<void>) => Promise<void>;

/** `lifecycle` run inside `trace`, or as it is without one. */
function traced(trace: Trace | undefined, lifecycle: () => Promise<void>): Promise<void> {
  return trace ? trace(lifecycle) : lifecycle();
}

/** Loads the handler module by path and builds the executor for its kind of handler class. */
export function loadExecutor(spec: WorkerSpec): Executor {
  const mod = moduleExports(spec.source);
  const handler = spec.exportName === WHOLE_MODULE ? (typeof mod === 'function' ? mod : mod.default) : exportedClass(mod, spec.exportName);
  if (typeof handler !== 'function') throw new ConfigurationError(messages.handlerNotExported(spec.exportName, spec.source));
  return spec.classic ? classicExecutor(handler as ClassicHandler, spec) : decoratedExecutor(handler, spec);
}

/** A decorated handler: DI in this thread or process (singletons are per worker), one request scope per request. */
function decoratedExecutor(handler: Function, spec: WorkerSpec): Executor {
  const explored = explore(handler);
  // The server's line limit, as bootstrap() applied it to the server's own copy (withLineLimit()).
  const framing = withLineLimit(explored.framing, spec.reader.lineLimit);
  const def = framing ? { ...explored, framing } : explored;
  const container = new Container([
    ...spec.values.map(({ token, symbolKey, value, buffer }) => ({
      provide: symbolKey ? Symbol.for(token) : token,
      useValue: buffer ? Buffer.from((value as Uint8Array).buffer, (value as Uint8Array).byteOffset, (value as Uint8Array).byteLength) : value,
    })),
    ...spec.classes.map(({ token, useClass, scope }) => ({ provide: tokenOf(token), useClass: loadClass(useClass, `the useClass of the provider for ${tokenText(token)}`), ...(scope ? { scope } : {}) })),
  ]);
  container.register({ provide: def.handler, useClass: def.handler as new (...a: any[]) => unknown, scope: 'transient' });
  container.validate(def.handler);
  // @HandleError runs where the error arose (API.md §3): here, on the request's own handler instance. The
  // error still goes to the server, marked, so it is counted there once and no hook runs again; a failing
  // @HandleError goes along with it, and the server reports that the default way (its logger), as it does
  // with its own @HandleError (HandlerWiring.handleError).
  // A chain, not an async function: an idle keep-alive connection waits in its lifecycle for as long as it
  // lives, and a suspended frame per connection is memory that the reactions below do not cost.
  // One reaction per stage that an idle connection waits behind (the lifecycle's end, then the scope's
  // disposal): each promise and closure it keeps is kept 10,000 times over by 10,000 idle connections.
  // A @HandleError is waited for the server's shutdownTimeout at most, as in the server's process: past it,
  // the error is reported as one whose hook failed, saying so, and the request goes on closing.
  const limit = spec.shutdownTimeout;
  // `err` of the request on `carrier`, reported here by its handler's own @HandleError; rejects with it, marked
  // reported. Not when there is no hook, for a SystemExit, nor for a request the pool gave up on (reported then:
  // what its handler meets later, the connection closed under it, is no news, as in the server's own process).
  const reportHere = (instance: unknown, req: StreamRequest | DatagramRequest | MessageRequest, carrier: object | undefined, err: unknown): Promise<never> =>
    def.hooks.handleError === undefined || isSystemExit(err) || wasAbandoned(carrier)
      ? Promise.reject(err)
      : reportOn(carrier, err, attempt(() => handleErrorWithin(callHook(def, instance, 'handleError', err, req.clientAddress), def.handler.name, limit, err)));
  // `carrier`: what the request's scope, its report and its abandoning are kept on (its connection, or a
  // datagram's reply writer), for the pool's abandoning (worker-runtime's abandon: disposeAbandoned, reportedOn).
  const run = (req: StreamRequest | DatagramRequest | MessageRequest, verify = false, conn?: Duplex, trace?: Trace, carrier: object | undefined = conn, replyMade?: ReplyMade): Promise<void | 'rejected'> => {
    const scope = container.createRequestScope();
    if (carrier !== undefined) (carrier as Carrier)[SCOPE] = scope;
    let instance: unknown;
    try {
      instance = scope.resolve(def.handler);
    } catch (err) {
      return scope.dispose().then(() => Promise.reject(err));
    }
    // @Verify where the connection is owned: false closes it, and no other hook runs (API.md §4).
    const ran: Promise<void | 'rejected'> = verify && def.hooks.verify !== undefined
      ? verifying(carrier, attempt<unknown>(() => callHook(def, instance, 'verify', req.clientAddress, req))).then<void | 'rejected'>(
        (ok) => (ok ? traced(trace, () => runDecorated(def, instance, req)) : 'rejected'),
        (err: unknown) => {
          if (conn) unverified(conn);
          throw err;
        },
      )
      : attempt(() => traced(trace, () => runDecorated(def, instance, req)));
    // The scope is disposed after the connection's end has gone out (docs/handlers-and-lifecycle.md), as in the server's process.
    // A datagram's reply goes before a disposal that has anything to dispose (else it goes with `done`, one
    // message, not two); none to a client @Verify refused (finishRun's rule).
    return ran.then(
      (value) => {
        if (value !== 'rejected') replyAhead(replyMade, scope);
        const disposed = disposeAfterEnd(conn, scope).then(() => value);
        // A dispose() that throws after a request that went well is reported here, where it arose, on the request's
        // handler instance (API.md §3): the server's process ran @HandleError on a fresh instance, building
        // request-scoped providers and singletons there for it (hostile run).
        return def.hooks.handleError === undefined ? disposed : disposed.then(undefined, (err: unknown) => reportHere(instance, req, carrier, err));
      },
      (err: unknown) => {
        // A health check that ended (a connection closed before its first byte) is no error of the handler's.
        const reported = conn !== undefined && endedHealthCheck(conn, err) ? Promise.reject(err) : reportHere(instance, req, carrier, err);
        return reported.then(undefined, (final: unknown) => {
          replyAhead(replyMade, scope); // what the handler wrote before it threw is owed (finishRun)
          return disposeThenFail(disposeAfterEnd(conn, scope), final, carryReported);
        });
      },
    );
  };
  return {
    // With @OnMessage the framer and the message loop run here, where the connection is read.
    stream: (conn, client, worker, edge, verify, trace) => {
      const face = worker as unknown as Server;
      // TCP_NODELAY, as in the server's process (handler-wiring.ts): on a socket of the worker's own, or,
      // through a relayed connection's PortDuplex, on the main thread's. @OnMessage's loop sets it itself.
      if (def.hooks.message === undefined) (conn as Partial<net.Socket>).setNoDelay?.(true);
      return run(def.hooks.message !== undefined
        ? streamMessageRequest(def.framing!, conn, client, face, undefined, edge, spec.reader)
        : new StreamRequest(readerFor(conn, spec.reader), new StreamWriter(conn, spec.reader.requestTimeout), client, face, 'remoteAddress' in conn ? (conn as never) : undefined, undefined, edge?.tls, edge?.proxy), verify, conn, trace);
    },
    datagram: (data, truncated, client, reply, worker, verify, trace, replyMade) => {
      const face = worker as unknown as Server;
      return run(def.hooks.message !== undefined ? datagramMessageRequest(def.framing, data, client, face, reply, undefined, truncated) : new DatagramRequest(data, truncated, undefined, reply, client, face), verify, undefined, trace, reply, replyMade);
    },
    // Singletons are per worker (docs/dependency-injection.md): disposed when the pool ends it on purpose,
    // after the request scopes of the connections it abandoned (their handlers never finished to dispose them).
    // The abandoned scopes take at most half of withinMs; the singletons get what is left (all of it when nothing
    // was abandoned: docs/dependency-injection.md's 5 s, where they had half whatever happened: hostile run).
    dispose: (withinMs) => {
      const started = performance.now();
      const abandoned = abandonedDisposals.size === 0 ? Promise.resolve() : settledWithin(Promise.allSettled([...abandonedDisposals]), withinMs / 2);
      return abandoned.then(() => container.dispose({ totalMs: Math.max(0, withinMs - (performance.now() - started)) }));
    },
  };
}

// Kept on a request's carrier (its connection, or a datagram's reply writer: decoratedExecutor's run), symbol-keyed.
/** The request scope of the request running on it. */
const SCOPE = Symbol('sockserve.requestScope');
/** The pool abandoned its request (disposeAbandoned), which was reported then. */
const ABANDONED = Symbol('sockserve.abandoned');
/**
 * Set only once its request has failed and its @HandleError runs here (no cost to a request that does not fail):
 * the error the hook (`hook`, its run) is reporting, marked reported once it has settled.
 */
const REPORT = Symbol('sockserve.report');
/** Its @Verify is running (verifying). */
const VERIFYING = Symbol('sockserve.verifying');
type Carrier = { [SCOPE]?: RequestScope; [ABANDONED]?: true; [REPORT]?: { error: unknown; hook: Promise<unknown>; settled?: true }; [VERIFYING]?: true };

/** `carrier`'s @Verify is running (`verdict`): verifyingOn() says so until it settles. */
function verifying<T>(carrier: object | undefined, verdict: Promise<T>): Promise<T> {
  if (carrier === undefined) return verdict;
  (carrier as Carrier)[VERIFYING] = true;
  return verdict.finally(() => ((carrier as Carrier)[VERIFYING] = undefined));
}

/**
 * Whether the request on `carrier` is awaiting its @Verify here (a connection whose preamble ran in this worker):
 * what the pool gives up then is reported as a @Verify that had not settled, not as a handler still running.
 */
export function verifyingOn(carrier: object | undefined): boolean {
  return (carrier as Carrier | undefined)?.[VERIFYING] === true;
}

/** A datagram's reply goes ahead of a disposal that has anything to dispose (`replyMade`); else it goes with `done`. */
function replyAhead(replyMade: (() => void) | undefined, scope: RequestScope): void {
  if (replyMade !== undefined && holdsInstances(scope)) replyMade();
}

function wasAbandoned(carrier: object | undefined): boolean {
  return (carrier as Carrier | undefined)?.[ABANDONED] === true;
}

/**
 * @HandleError's run (`hook`) for `err`, the error of the request on `carrier`: rejects with `err` marked reported,
 * with the hook's own failure if it failed. Meanwhile `carrier` holds the error (reportedOn): the pool abandoning
 * the request then sends that error, as the serial and @Concurrent servers leave the report to a hook already
 * running (BaseServer.leaveReportToItsOwn); with its own error instead, the server's process ran @HandleError a
 * second time.
 */
function reportOn(carrier: object | undefined, err: unknown, hook: Promise<unknown>): Promise<never> {
  const report: Carrier[typeof REPORT] = carrier === undefined ? undefined : ((carrier as Carrier)[REPORT] = { error: err, hook });
  const reject = (marked: unknown): Promise<never> => {
    if (report) {
      report.error = marked;
      report.settled = true;
    }
    return Promise.reject(marked);
  };
  return hook.then(
    () => reject(markReported(err)),
    (hookError: unknown) => reject(markReported(err, { error: hookError })),
  );
}

/**
 * The error of the request on `carrier` that its @HandleError is reporting here, or has reported, marked so
 * (markReported: the server's process counts it and runs no hook again); undefined when it reached no hook here.
 */
export function reportedOn(carrier: object | undefined): unknown {
  const report = (carrier as Carrier | undefined)?.[REPORT];
  if (report === undefined) return undefined;
  return reportedInWorker(report.error) ? report.error : markReported(report.error);
}

/** Disposals of abandoned requests' scopes still running: the worker's last dispose() waits for them. */
const abandonedDisposals = new Set<Promise<void>>();

/**
 * The pool abandoned the request running on `carrier` (shutdownTimeout, close(), a recycled worker's bound): its
 * handler may never return, and the worker ends soon, so its request-scoped instances are disposed now (API.md
 * §7: every request-scoped instance is disposed); they were never. Idempotent, as a scope's dispose() is; what
 * it throws is the abandoned request's, already reported. A @HandleError still running on the request's instance
 * (reportOn) is its report: the scope is disposed once it has settled (bounded as the hook is), and the worker's
 * last dispose() waits for that too, as the server's process waits for such a hook before shutdown() resolves.
 * `failedLate` gets what that hook throws or rejects with, once the pool has had the request's error without it
 * (reportedOn, before the hook settled): the server's process reports it then, as it reports its own hook's.
 */
export function disposeAbandoned(carrier: object | undefined, failedLate?: (hookError: unknown) => void): void {
  if (carrier === undefined) return;
  const marked = carrier as Carrier;
  marked[ABANDONED] = true;
  const scope = marked[SCOPE];
  if (scope === undefined) return;
  const report = marked[REPORT];
  const late = report?.settled ? undefined : failedLate;
  const disposal = (report
    ? report.hook.then(() => scope.dispose(), (hookError: unknown) => {
      late?.(hookError);
      return scope.dispose();
    })
    : scope.dispose()).catch(() => undefined);
  abandonedDisposals.add(disposal);
  void disposal.then(() => abandonedDisposals.delete(disposal));
}

/** On the connection itself (symbol-keyed, as reader-registry.ts keeps its rfile): its @Verify threw or rejected. */
const UNVERIFIED = Symbol('sockserve.verifyFailed');

function unverified(conn: Duplex): void {
  (conn as Duplex & { [UNVERIFIED]?: true })[UNVERIFIED] = true;
}

/**
 * Whether @Verify failed (threw or rejected) on `conn` here: like a client it refused, such a client made no
 * request and counts no byte, though this worker's reader may have read what it sent meanwhile.
 */
export function verifyFailedOn(conn: Duplex): boolean {
  return (conn as Duplex & { [UNVERIFIED]?: true })[UNVERIFIED] === true;
}

type ClassicHandler = new (request: unknown, client: ClientAddress, server: unknown) => { run(): Promise<void> };

/**
 * A classic handler class (StreamRequestHandler, DatagramRequestHandler…): built per request with the
 * connection (or Python's `(data, socket)` pair, whose socket's send() fills the reply) and a server face
 * carrying what handlers read from the server: requestTimeout, lineLimit, lineTimeout and serverAddress.
 */
function classicExecutor(Handler: ClassicHandler, spec: WorkerSpec): Executor {
  const faceOf = (worker: WorkerServerFace) => ({
    requestTimeout: spec.reader.requestTimeout,
    lineLimit: spec.reader.lineLimit,
    lineTimeout: spec.reader.lineTimeout ?? null,
    serverAddress: spec.serverAddress,
    shutdown: () => worker.shutdown(),
  });
  return {
    stream: (conn, client, worker, edge, _verify, trace) => {
      // preambleFacts(this.request) as in the server's process, where the preamble marks the socket it ran on.
      if (edge) recordFacts(conn, edge);
      return traced(trace, () => new Handler(conn, client, faceOf(worker)).run());
    },
    datagram: (data, truncated, client, reply, worker, _verify, trace) => {
      // The reply goes back to the sender with the datagram's end; a pool's worker has no way to another client.
      // One reply datagram per request: a second send() would have been merged into the first (its boundary lost).
      let sent = false;
      const replies: Pick<DatagramSocket, 'send' | 'address'> = {
        // Python's self.socket.getsockname(): the server's address (it was a TypeError here, in the serial server not).
        address: () => socketAddress(worker.serverAddress),
        send: async (bytes, to) => {
          if (to !== undefined && !sameAddress(to, client)) throw new Error(messages.datagramSendElsewhere(Handler.name, describeAddress(to), describeAddress(client)));
          if (sent) throw new Error(messages.datagramSendTwice(Handler.name, describeAddress(client)));
          sent = true;
          // After the handler returned, the reply had gone with the datagram's end: said as the send it was, not as a
          // wfile.write() the handler never called (hostile re-check: a timer's send).
          await reply.write(bytes).catch((err: NodeJS.ErrnoException) => {
            throw err.code === 'ERR_STREAM_WRITE_AFTER_END' ? Object.assign(new Error(messages.classicSendAfterReply(Handler.name), { cause: err }), { code: err.code }) : err;
          });
        },
      };
      return traced(trace, () => new Handler(datagramRequest(data, replies as DatagramSocket, truncated), client, faceOf(worker)).run());
    },
    dispose: () => Promise.resolve(), // no container: a classic handler builds what it uses
  };
}

/** The server's socket address as its own `address()` gives it: `{ host, port, family }`, or `{ path }`. */
function socketAddress(server: ServerAddress): ClientAddress {
  return 'path' in server ? { path: server.path } : { host: server.host, port: server.port, family: isIPv6(server.host) ? 'IPv6' : 'IPv4' };
}

/** `to` as host, port and path, whether given as a ClientAddress or as Python's `[host, port]` pair. */
function addressParts(to: unknown): [unknown, unknown, unknown] {
  if (Array.isArray(to)) return [to[0], to[1], undefined];
  const a = (to ?? {}) as { host?: unknown; port?: unknown; path?: unknown };
  return [a.host, a.port, a.path];
}

function sameAddress(to: unknown, client: ClientAddress): boolean {
  const [host, port, path] = addressParts(to);
  return 'path' in client && client.path !== undefined ? path === client.path : host === client.host && Number(port) === client.port;
}

function describeAddress(to: unknown): string {
  const [host, port, path] = addressParts(to);
  return path !== undefined ? String(path) : `${String(host)}:${String(port)}`;
}

/** A provider's token, rebuilt in this worker. */
function tokenOf(token: PortableToken): string | symbol | Function {
  if (token.kind === 'string') return token.key;
  if (token.kind === 'symbol') return Symbol.for(token.key);
  return loadClass(token.ref, 'a provider\'s token class');
}

/** A provider's token as messages name it: "'db'", Symbol.for('db'), or the class's name. */
function tokenText(token: PortableToken): string {
  return token.kind === 'string' ? JSON.stringify(token.key) : token.kind === 'symbol' ? `Symbol.for(${JSON.stringify(token.key)})` : token.ref.exportName;
}

/** `step()` as a promise: its value, or its synchronous throw as a rejection. */
function attempt<T>(step: () => T | PromiseLike<T>): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The request's error was reported here (@HandleError ran): the aggregate with its disposal's error is too. */
function carryReported(from: unknown, to: Error): void {
  if (reportedInWorker(from)) markReported(to, handleErrorFailure(from));
}
