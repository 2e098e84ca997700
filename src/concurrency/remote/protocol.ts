/**
 * The messages between the server (main thread) and a worker thread or child process that runs
 * handlers. A worker is an event loop serving many connections (and datagrams) at once; `id` names
 * each, so messages of different connections interleave and a late one for a finished connection is
 * recognised and dropped.
 */
import { describeThrown, disposalFailureOf, fieldText, markDisposalFailure, readThrown } from '../../errors/thrown';
import * as errors from '../../errors/errors';
import type { ClientAddress } from '../../transports/address';
import type { SecureContextOptions } from 'node:tls';
import type { EdgeOptions, ProxyInfo, TlsInfo } from '../../transports/edge-options';
import type { WorkerReport } from '../../observability/worker-report';
import type { RequestEndData } from '../../observability/events';

/** An error as it crosses threads and processes: its class name, text, stack, Node's `code`/`errno`/`syscall`, and its cause. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string | number;
  errno?: number;
  syscall?: string;
  cause?: SerializedError;
  /** An AggregateError's errors (its first 8): the server classifies it by them, as the worker did. */
  errors?: SerializedError[];
  /** The handler's @HandleError already ran for it in the worker: the server counts it and calls no hook again. */
  reported?: true;
  /** That @HandleError threw or rejected with this: the server reports it the default way (its logger), as its own would be. */
  hookError?: SerializedError;
  /** The request scope's dispose() failed after the request's error (markDisposalFailure): reported on its own when a hook had the request's. */
  disposal?: SerializedError;
}

export type ToWorker =
  /**
   * A stream request starts. `owned`: the connection itself comes along (a child process gets it as
   * the message's handle, a Node 24+ thread in `socket`) and the worker reads and writes it directly;
   * otherwise the main thread keeps it and its bytes follow as `data`, then `eof`.
   */
  | { t: 'stream'; id: number; client: ClientAddress; owned: boolean; socket?: unknown; server?: unknown; tls?: TlsInfo; proxy?: ProxyInfo; unread?: UnreadConnection; heldSince?: number; /** @Verify in the server's process called req.close(). */ closeAsked?: true; /** The server's limits count the connection until its socket closes: a `done` says whether the worker's socket still lingers (`lingers`), and a `closed` follows. */ counted?: true }
  | { t: 'data'; id: number; chunk: Uint8Array }
  /**
   * The client closed its side; `error`: the connection failed (a reset), which the worker's reads then see.
   * `closing`: the server closed it instead (close(), a second signal): one part-way through a message ends with
   * messages.closedMidMessage.
   */
  | { t: 'eof'; id: number; error?: SerializedError; closing?: ClosingAs }
  /**
   * Shutdown: the request's reads stop waiting once nothing is buffered (StreamReader.stopReading). `preamble`:
   * a classic pool's serverClose() instead: the connection is closed if it is still in its PROXY header or TLS
   * handshake (as the server's own process closes those), and left alone once it is a request.
   */
  | { t: 'stop'; id: number; preamble?: true }
  /** The main thread handed write `seq`, and every write before it, to the kernel (or failed to write `seq`). */
  | { t: 'written'; id: number; seq: number; error?: SerializedError }
  /** A datagram request: the reply comes back in `done`. */
  | { t: 'dgram'; id: number; client: ClientAddress; data: Uint8Array; truncated: boolean; server?: unknown }
  /** server.setSecureContext(): new connections whose TLS this worker terminates get these (API.md §11). */
  | { t: 'secure-context'; options: SecureContextOptions }
  /** The shutdown a request asked for (`shutdown` below, same `ask`) has finished: every other request is done. */
  | { t: 'shutdown-done'; ask: number }
  /** Whether the server's process has subscribers for workers' events (worker-report.ts): record them or not. */
  | { t: 'events'; wanted: boolean }
  /** Send a report now (the pool is about to retire this worker: its last counts must not be lost). */
  | { t: 'report-now' }
  /**
   * The pool is about to end this worker on purpose: dispose the singletons its container built, then say
   * `disposed`; `withinMs`: what the pool waits, shared among them (one that hangs takes only its share).
   */
  | { t: 'dispose'; withinMs: number }
  /**
   * The pool ends this worker on purpose while connections run (shutdown's timeout, close(), a recycled
   * worker's last connections): end each now with `error` and send its `done`, with the bytes it counted.
   * `closeFirst` (close()): close the connections first, as the server's close() does in its own process, and
   * end with `error` only those still running CLOSE_GRACE_MS later (a handler whose reads end at the close is
   * not an error: an idle keep-alive connection ends quietly, as in serial and `@Concurrent` mode).
   */
  | {
      t: 'abandon';
      error: SerializedError;
      closeFirst?: boolean;
      /** For a datagram whose reply went ahead ('reply'), its scope being disposed. */
      replied?: SerializedError;
      /**
       * Why the connections are given up, for one still in its PROXY header or TLS handshake
       * (edgeMessages.preambleAbandoned's `when`) or awaiting its @Verify (messages.verifyAbandoned's): what no hook
       * of the handler's ran on is not told to make the handler return. Not for a recycled worker's.
       */
      why?: 'shutdownTimeout' | 'closed';
      /** close()'s (`closeFirst`): who closes, for a connection part-way through a message (messages.closedMidMessage). */
      closing?: ClosingAs;
    }
  /**
   * Accept connections yourself (API.md §3): from the listening socket that came with the message (a child
   * process's IPC handle), or by listening on `address` with `reusePort` (a thread, Node 22.12+). `prime`:
   * listen once and close at once (the kernel then queues connections on the shared socket until workers
   * accept). Answered by `listening`. Each connection accepted is announced (`accepted`) and then served as
   * one handed over unread: its PROXY header, TLS handshake and @Verify run here (past
   * maxConnectionsPerThread/Child the server says `unlisten`). `datagrams`: the handle is the server's bound UDP socket; read datagrams
   * from it (cut to `maxPacketSize`), serve each here (@Verify included) and send its reply from here.
   * `limit` (maxConnectionsPerChild): from a shared socket (the handle), the worker stops reading it itself
   * at the connection or datagram that makes `limit` in its life, and says `full` (`nearly-full` some time before).
   */
  | { t: 'listen'; address?: { host: string; port: number; backlog: number }; prime?: boolean; draining: boolean; server?: unknown; datagrams?: { maxPacketSize: number; /** Datagrams a child holds at most (the server's maxQueuedDatagrams). */ maxHeld?: number }; limit?: number }
  /** Stop accepting (close this worker's listener after a poll phase); `stop`: shutdown, stop reading every connection too. Answered by `unlistened`. */
  | { t: 'unlisten'; stop: boolean }
  /** SIGTERM's drainDelay began: connections accepted here close PROXY LOCAL health checks unanswered. */
  | { t: 'draining' }
  /** The pool ends this worker: it exits by itself now (a thread: its console output still on its way goes out first). */
  | { t: 'exit' };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'load-error'; message: string }
  /** A child's uncaught exception, sent just before it exits (a thread's 'error' event says the same). */
  | { t: 'fatal'; error: SerializedError }
  /**
   * The worker is exiting (its process 'exit' event): no new connection is placed on it. Its 'exit' reaches the
   * server later, after its own sockets closed: a client that saw its connection close and came back was handed
   * to the dead worker meanwhile, and reset (hostile run, Node 24 threads: 5 of 5).
   */
  | { t: 'leaving' }
  /** A child has the descriptor of connection `id`, handed over to it: the server's process closes its own copy. */
  | { t: 'took'; id: number }
  /**
   * Write `chunk`; `answer`: the worker waits for this write (else 'written' may come later, for several at
   * once); `noDelay`: setNoDelay() on the worker's side since the last write: the main thread sets TCP_NODELAY
   * on the socket it owns first.
   */
  | { t: 'write'; id: number; seq: number; chunk: Uint8Array; answer?: true; noDelay?: boolean }
  /** Half-close the connection after everything written (wfile.end()). */
  | { t: 'end'; id: number; seq: number }
  /**
   * Sent every `reportMs` (WorkerSpec) whatever the worker does: proof that its event loop turns (the
   * server's heartbeat watchdog), and the figures of stats().workers. One message per period, never per request.
   */
  | { t: 'report'; report: WorkerReport }
  /** The singletons of this worker's container are disposed (`dispose` above); `error`: what their dispose() threw. */
  | { t: 'disposed'; error?: SerializedError }
  /** The handler's side consumed `bytes` more of the connection's input: the main thread may send as much again. */
  | { t: 'ack'; id: number; bytes: number }
  /**
   * A datagram's reply, complete (its lifecycle has ended), sent before `done`: the server sends it now, while the
   * worker disposes the request's scope (a slow dispose() held the reply up). `done` then carries no `reply`.
   */
  | { t: 'reply'; id: number; reply: Uint8Array }
  /**
   * A datagram this child read itself: its reply, sent from here ahead of its request scope's disposal, has left
   * (`bytes`): should the child die before its `done`, the server counts it, and does not say it was lost.
   */
  | { t: 'replied'; id: number; bytes: number }
  /**
   * The request ended. `dropped`: a connection handed over unread (UnreadConnection) never reached its
   * lifecycle: @Verify refused it ('rejected'), or it closed before its first byte ('health-check'). A
   * failed PROXY header or TLS handshake is an `error` (ProxyProtocolError, TlsHandshakeError) that no hook
   * here has seen: the server reports it (API.md §3). `bytes`: [in, out] of a connection the worker owned
   * (its bytes never passed the server's process). `end`: the request's `request.end` as plain data, when
   * the server's process wants workers' events: it is republished there when `done` arrives, so it is
   * never lost with a worker that dies before its next report, and a request ended by its worker's death
   * (no `done`) gets its `request.end` from the server instead (RemoteSlot), exactly once either way.
   */
  | { t: 'done'; id: number; reply?: Uint8Array; error?: SerializedError; dropped?: DroppedInWorker; bytes?: [number, number]; end?: RequestEndData; /** A connection the worker accepted itself: how long it held it (milliseconds), for connection.close. */ ms?: number; /** The worker's stats().messages total so far, when it moved since its last `done` (its reports carry it too, up to a second later). */ messages?: number; /** The client its PROXY header named (the preamble ran in the worker). */ client?: ClientAddress; /** Its socket here (counted: the `stream` message said so) still lingers for the client's FIN: a `closed` follows when it closes. */ lingers?: true }
  /**
   * The socket of connection `id`, which lingered after its `done` (`lingers`), has closed here: the server's limits
   * stop counting it (its descriptor was held here until now: a client that never closes its side held it LINGER_MS).
   */
  | { t: 'closed'; id: number }
  /**
   * The @HandleError that was reporting a request's own error when the pool abandoned it (its `done` went then,
   * marked reported) failed afterwards, with `error`: the server reports that the default way, as it reports a
   * failing hook of its own process, counted nowhere (the request was counted with its `done`).
   */
  | { t: 'hook-failed'; error: SerializedError; client: ClientAddress }
  /**
   * Never sent: a datagram a child read from the server's UDP socket whose `accepted` and `done` the server
   * read together (bookkeeping.ts BookkeepingReader), counted without adopting it.
   */
  | { t: 'served'; id: number; client: ClientAddress; bytes: [number, number]; dropped?: DroppedInWorker; /** The worker's stats().messages total, as its `done` said (a `done`'s `messages`). */ messages?: number }
  /**
   * The handler of request `id` called `server.shutdown()`: the server shuts down, and answers
   * `shutdown-done` with the same `ask` once every other request has finished (API.md §6, as in the
   * server's own process); request `id` goes on until it ends.
   */
  | { t: 'shutdown'; id: number; ask: number }
  /** This worker accepted a connection itself (`id` negative, the worker's own numbering), or read a datagram (`datagram`); its `done` follows. */
  | {
      t: 'accepted'; id: number; client: ClientAddress; datagram?: boolean; /** A datagram's length as its handler got it: counted in bytesIn should the worker die before its `done`. */ bytes?: number;
      /** Its client reset before the worker accepted it: not open yet (no connection.open), as in the server's process, until bytes come (`opened`). */
      unopened?: boolean;
    }
  /**
   * A connection whose PROXY header and TLS handshake ran here passed them (sent only while the server's
   * process wants events): its `connection.open` is published now, with the client the header names, as the
   * server's own process publishes it after its preamble. A health check or a failed preamble opens nothing.
   */
  | { t: 'opened'; id: number; client: ClientAddress }
  /** The worker listens (or primed the shared socket); `error`: it could not. */
  | { t: 'listening'; error?: SerializedError }
  /** The worker's listener is closed. */
  | { t: 'unlistened' }
  /**
   * The worker took the connection (or datagram) that makes the `limit` of its last `listen` and closed its
   * listener itself, then and there: it accepts nothing more (sent by IPC after its bookkeeping records, so
   * the server has heard of every connection it took when this comes).
   */
  | { t: 'full' }
  /** The worker has taken most of the `limit` of its last `listen` (nearly() in worker-runtime.ts): its successor may start now. */
  | { t: 'nearly-full' }
  /** The certificate of a 'secure-context' message is in use: connections this worker takes from now on get it. */
  | { t: 'secure-context-set' }
  /** A child that accepts could not, for lack of descriptors (EMFILE): `first` of a burst (AcceptWatch). */
  | { t: 'accept-error'; error: SerializedError; first: boolean };

/**
 * A connection handed to the worker before anything was read from it: the worker runs the preamble (PROXY
 * header, TLS handshake) and @Verify itself, where the socket is owned (API.md §3). `draining`: the server
 * is in SIGTERM's drainDelay (a PROXY v2 LOCAL health check is closed unanswered).
 */
export interface UnreadConnection {
  draining: boolean;
}

/** How a connection handed over unread ended before its lifecycle, quietly (see `done`). */
export type DroppedInWorker = 'rejected' | 'health-check';

/** Bytes of a bridged connection's input in flight to the worker, unacknowledged, before the main thread pauses the socket. */
export const BRIDGE_WINDOW = 256 * 1024;

/** A class a worker can load again: the module file that exports it, and the name it is exported under. */
export interface ClassRef {
  source: string;
  exportName: string;
}

/** A provider's token as a worker can rebuild it. */
export type PortableToken = { kind: 'string'; key: string } | { kind: 'symbol'; key: string } | { kind: 'class'; ref: ClassRef };

/** Who closes the server (BaseServer.closingAs): its name, and the signal whose repeat did it, else close() was called. */
export interface ClosingAs {
  owner: string;
  signal?: string;
}

/** What a worker needs to load and run the handler. Everything here crosses by structured clone. */
export interface WorkerSpec {
  /** The module file that declares the handler class, and the name it is exported under. */
  source: string;
  exportName: string;
  /** useValue providers whose token is a string or a Symbol.for() symbol: rebuilt in the worker. */
  /** `buffer`: the value is a Buffer, which crosses as a plain Uint8Array: the worker makes it a Buffer again. */
  values: Array<{ token: string; symbolKey?: boolean; value: unknown; buffer?: true }>;
  /** useClass providers: the class (and a class token) found again by module path and export name. */
  classes: Array<{ token: PortableToken; useClass: ClassRef; scope?: 'singleton' | 'transient' | 'request' }>;
  reader: { requestTimeout: number | null; lineLimit?: number; lineTimeout?: number | null };
  /** A classic handler class (sockserve/classic's ThreadingMixIn, ForkingMixIn), not a decorated one. */
  classic?: boolean;
  /** The handler has `@OnMessage` (its writes are replies and pushes, not wfile's). */
  messages?: true;
  /** What classic handlers read as `this.server.serverAddress`. */
  serverAddress?: unknown;
  /**
   * The stream transport's TLS, PROXY and lineTimeout options, for connections handed over unread (the
   * worker terminates TLS and reads the PROXY header itself). `tls` must be structured-cloneable.
   */
  edge?: EdgeOptions;
  /** Milliseconds between the worker's `report` messages (its heartbeat); at most 1000. */
  reportMs: number;
  /** Who errors made in the worker say they are from, as the server's own (its log name: the handler's class, or the classic server's); default `exportName`. */
  owner?: string;
  /**
   * The server's shutdownTimeout (seconds; null: none): how long the worker waits for a @HandleError
   * before it reports the error without it, as the server's process does (HandlerWiring.handleError).
   */
  shutdownTimeout?: number | null;
  /**
   * A thread's: Float64Array cell 0 holds the id of the last datagram it took from its port (stored before its
   * handler runs, read by the server once the thread has exited), so the datagrams still queued on the port when the thread dies are placed on another
   * worker (RemoteSlot.onExit), not lost with it (hostile run: 6 of 100 behind a handler that blocked its loop).
   */
  datagramsTaken?: SharedArrayBuffer;
  /** The transport is a datagram one: only then does a child get the record above (a file of its own). */
  datagrams?: true;
}

export function serializeError(err: unknown, depth = 0): SerializedError {
  // Every read of `err` may throw (a getter, a Proxy) and every field may be of any type (a Symbol message
  // cannot even be cloned): read through readThrown, keep strings only, and describe the rest.
  const name = readThrown(err, 'name');
  const message = readThrown(err, 'message');
  // Duck-typed, not instanceof only: an error made in another realm (a vm context, jest's) is still an error.
  // A thrown primitive: its stack is the value, so the server's report shows what was thrown (`undefined`,
  // `a string`), as the server's own report of it does, and no stack of the code that carried it.
  let out: SerializedError;
  if (!isErrorInstance(err) && !(typeof name === 'string' && typeof message === 'string')) {
    const text = describeThrown(err);
    out = { name: 'Error', message: text, stack: text };
    // A thrown object (`throw { code: 42 }`): its code still travels, as an Error's does.
    const code = readThrown(err, 'code');
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
  } else {
    out = { name: fieldText(name, 'Error'), message: fieldText(message, '') };
    const stack = readThrown(err, 'stack');
    out.stack = typeof stack === 'string' ? stack : `${out.name}: ${out.message}`;
    const [code, errno, syscall, cause] = [readThrown(err, 'code'), readThrown(err, 'errno'), readThrown(err, 'syscall'), readThrown(err, 'cause')];
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    if (typeof errno === 'number') out.errno = errno;
    if (typeof syscall === 'string') out.syscall = syscall;
    if (cause !== undefined && depth < 4) out.cause = serializeError(cause, depth + 1);
    // A reset and then a @Finish farewell that met the closed connection: a client error in the worker, which counted
    // it so, but a handler error in the server's process, which counts what workers report (hostile re-check).
    const many = readThrown(err, 'errors');
    if (Array.isArray(many) && many.length > 0 && depth < 4) out.errors = many.slice(0, 8).map((e: unknown) => serializeError(e, depth + 1));
  }
  // Marked for a thrown object too: else the server's process ran @HandleError for it a second time (hostile run).
  if (depth === 0 && reportedInWorker(err)) {
    out.reported = true;
    const hook = handleErrorFailure(err);
    if (hook) out.hookError = serializeError(hook.error, 1);
    const disposal = disposalFailureOf(err);
    if (disposal) out.disposal = serializeError(disposal.error, 1);
  }
  return out;
}

function isErrorInstance(value: unknown): boolean {
  try {
    return value instanceof Error;
  } catch {
    return false; // a Proxy's getPrototypeOf trap
  }
}

/** JavaScript's own error classes, found again by name as sockserve's are. */
const BUILT_IN_ERRORS: Record<string, unknown> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError };

/**
 * An Error in this thread standing for one raised over there: same class when it is one of sockserve's
 * (so `instanceof RequestTimeoutError` holds in the server's process) or one of JavaScript's own
 * (`instanceof TypeError`), same name, message, stack, `code`, `errno`, `syscall` and cause (a client's
 * ECONNRESET stays ECONNRESET). Other classes arrive as an Error with their `name`.
 */
export function deserializeError(e: SerializedError): Error {
  const known = Object.hasOwn(errors, e.name) ? (errors as Record<string, unknown>)[e.name] : Object.hasOwn(BUILT_IN_ERRORS, e.name) ? BUILT_IN_ERRORS[e.name] : undefined;
  const err = new Error(e.message, e.cause ? { cause: deserializeError(e.cause) } : undefined);
  if (typeof known === 'function' && known.prototype instanceof Error) Object.setPrototypeOf(err, known.prototype);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  if (e.code !== undefined) (err as NodeJS.ErrnoException).code = e.code as string;
  if (e.errno !== undefined) (err as NodeJS.ErrnoException).errno = e.errno;
  if (e.syscall !== undefined) (err as NodeJS.ErrnoException).syscall = e.syscall;
  if (e.errors !== undefined) Object.defineProperty(err, 'errors', { value: e.errors.map(deserializeError), writable: true, configurable: true });
  if (e.reported) markReported(err, e.hookError ? { error: deserializeError(e.hookError) } : undefined);
  if (e.disposal) markDisposalFailure(err, deserializeError(e.disposal));
  return err;
}

const REPORTED = Symbol.for('sockserve.reportedInWorker');
const HOOK_FAILED = Symbol.for('sockserve.handleErrorFailed');

/**
 * A thrown value as the worker runtime carries it to the server: an object as it is; anything else
 * (`throw undefined`, `throw 'text'`) as an error-like `{ name: 'Error', message, stack }` (both String(value)), which is
 * what serializeError sends for it, so that it can be told from success and marked (markReported).
 */
export function thrownValue(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? value : serializeError(value);
}

/**
 * Marks an error whose @HandleError has run where it arose (in a worker), so the server does not run it
 * again; `hookFailed`: that @HandleError threw or rejected (with `hookFailed.error`), which the server
 * reports the default way, as HandlerWiring.handleError does with its own. A primitive is carried as
 * thrownValue() makes it. Returns what it marked.
 */
export function markReported(err: unknown, hookFailed?: { error: unknown }): unknown {
  const mark = (target: object): object => {
    Object.defineProperty(target, REPORTED, { value: true, configurable: true });
    if (hookFailed) Object.defineProperty(target, HOOK_FAILED, { value: hookFailed, configurable: true });
    return target;
  };
  try {
    return mark(thrownValue(err) as object);
  } catch {
    // Frozen, sealed, or a Proxy that refuses: marked on what serializeError would send for it.
    return mark(serializeError(err));
  }
}

/** What the @HandleError that ran in the worker for `err` threw or rejected with, if it did (markReported). */
export function handleErrorFailure(err: unknown): { error: unknown } | undefined {
  return readThrown(err, HOOK_FAILED) as { error: unknown } | undefined;
}

/** Whether @HandleError already ran for `err` in the worker where it arose (API.md §3). */
export function reportedInWorker(err: unknown): boolean {
  return readThrown(err, REPORTED) === true;
}

/** A copy of `chunk` in an ArrayBuffer of its own, so it can be transferred without touching a shared pool. */
export function ownBytes(chunk: Uint8Array): Uint8Array {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer)) {
    return chunk;
  }
  return new Uint8Array(chunk);
}

/**
 * A datagram's reply sent with `send` (a worker's own socket, or the server's for a thread's reply): resolves with
 * `{ error }` if the send failed, or threw at once, and with undefined once the reply has left. Never rejects.
 */
export function replySent<B extends Uint8Array>(send: (bytes: B) => Promise<void>, reply: B): Promise<{ error: unknown } | undefined> {
  try {
    return send(reply).then(() => undefined, (error: unknown) => ({ error }));
  } catch (error) {
    return Promise.resolve({ error });
  }
}
