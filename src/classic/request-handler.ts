import type * as net from 'node:net';
import { runLifecycle } from '../lifecycle/run-lifecycle';
import type { ClientAddress } from '../transports/address';
import type { DatagramSocket } from '../transports/datagram-socket';
import { StreamReader } from '../transports/stream-reader';
import { BufferWriter, StreamWriter, WritePromise } from '../transports/stream-writer';
import { readerFor, releaseAcceptPause } from './reader-registry';
import { classNameOf } from './class-name';

/** A classic handler's lifecycle methods, overridable by subclasses. */
const CLASSIC_STEPS = { setup: 'setup', handle: 'handle', finish: 'finish' } as const;

/**
 * Python's BaseRequestHandler: one instance per request. The server builds it with the request, the
 * client's address and itself, then calls `run()`, which calls setup → handle → finish.
 *
 * Methods that may be overridden (sync or async): setup(), handle(), finish().
 */
export class BaseRequestHandler<Req = unknown, S = any> {
  #face: S | undefined;
  readonly #origin: S;

  /** Built by the server's finishRequest for every request, as Python's. */
  constructor(
    /** The request: the connected socket for streams, the `[data, socket]` pair for datagrams (Python's `self.request`). */
    readonly request: Req,
    /** Where the request came from (Python's `self.client_address`, as `{ host, port, family }` or `{ path }`). */
    readonly clientAddress: ClientAddress,
    server: S,
  ) {
    this.#origin = server;
  }

  /**
   * The server that built this handler (Python's `self.server`): its attributes and methods, with one
   * difference that never deadlocks: `this.server.shutdown()` resolves once every other request has
   * finished, without waiting for this one.
   */
  get server(): S {
    return (this.#face ??= handlerFace(this.#origin, this.request));
  }

  /** Called first; prepare per-request state. May be async. A setup that throws skips handle and finish, as Python. */
  setup(): unknown {
    return undefined;
  }
  /** Serves the request: read and write. May be async. */
  handle(): unknown {
    return undefined;
  }
  /** Called after handle returns or throws (not when setup threw); clean up. May be async. */
  finish(): unknown {
    return undefined;
  }

  /** Runs the lifecycle; called by the server's finishRequest. Not meant to be overridden. */
  run(): Promise<void> {
    // The socket as Node's 'connection' event gives one: a 'data' listener of the handler's starts it (releaseAcceptPause).
    if (!(this instanceof StreamRequestHandler)) releaseAcceptPause(this.request);
    const sends = TrackedSends.on(this.request, (error) => reportLateSend(this, error));
    const ran = runLifecycle(this, CLASSIC_STEPS);
    return sends === undefined ? ran : ran.then(() => sends.finish(), (err: unknown) => sends.finish(err));
  }
}

/**
 * A send made through a request's socket after its handler was done (a timer's) failed, and nothing looked at its
 * promise: the server's handleError reports it (Python's handle_error prints the traceback), or, in a pool's worker,
 * where the server is not, stderr does (as Python's thread prints an exception nobody caught).
 */
function reportLateSend(handler: BaseRequestHandler<unknown, unknown>, error: unknown): void {
  const server = handler.server as { handleError?: (request: unknown, client: ClientAddress, error: unknown) => unknown } | undefined;
  if (typeof server?.handleError === 'function') {
    void Promise.resolve()
      .then(() => server.handleError!(handler.request, handler.clientAddress, error))
      .catch(() => undefined);
    return;
  }
  console.error(`${handler.constructor.name}: a send made after the handler was done failed, and nothing awaited it: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

/**
 * The server seen through one handler: reads, writes and method calls reach the server itself (methods
 * are bound to it, so its private fields work); shutdown() goes through shutdownFromRequest. A view, so
 * `this.server !== server` (use `instanceof`, or a key of the server's own, to recognise it).
 */
function handlerFace<S>(server: S, request: unknown): S {
  const s = server as { shutdownFromRequest?: (r: unknown) => Promise<void> };
  if (typeof s?.shutdownFromRequest !== 'function') return server;
  return new Proxy(server as object, {
    get(target, key) {
      if (key === 'shutdown') return () => s.shutdownFromRequest!(request);
      const value = Reflect.get(target, key, target) as unknown;
      // its class as it is (`this.server.constructor.name`, static members), not a bound copy
      return typeof value === 'function' && key !== 'constructor' ? value.bind(target) : value;
    },
  }) as S;
}

/**
 * Python's StreamRequestHandler: `rfile` and `wfile` over the connection. The request is the socket.
 * `rfile` honours the server's `requestTimeout` and line limit; `wfile.write()` resolves once the kernel
 * has the data. finish() does not close the connection: the server's shutdownRequest does.
 */
export class StreamRequestHandler<S = any> extends BaseRequestHandler<net.Socket, S> {
  /** Reads the connection: `readline(limit?)`, `read(n?)`, `read1(n?)`, `readAll()`, `for await`; set by setup(). */
  rfile!: StreamReader;
  /** Writes to the connection; `write()` resolves once the kernel has the data (Python's `sendall`); set by setup(). */
  wfile!: StreamWriter;

  /**
   * Seconds a read of this handler's `rfile` may wait with no byte arriving, or a `wfile.write()` with no
   * byte taken by the client, before it rejects with RequestTimeoutError (which reaches handleError; a
   * stalled write also closes the connection), as Python's `StreamRequestHandler.timeout` sets the socket's
   * timeout for `recv` and `sendall`. null (the default, as Python's None): the server's `requestTimeout` applies.
   */
  timeout: number | null = null;
  /**
   * Sets TCP_NODELAY in setup() when true, so that small writes go out at once instead of waiting for the
   * client's ACK of the previous one (Nagle's algorithm). Default false, as Python's
   * `disable_nagle_algorithm`. Ignored on Unix sockets, where Python's setup raises OSError (EOPNOTSUPP).
   */
  disableNagleAlgorithm = false;

  /** The connected socket (Python's `self.connection`), the same as `request`. */
  get connection(): net.Socket {
    return this.request;
  }

  /** The lifecycle, then the failure of a write the handler did not await, if any (it reaches handleError). */
  override run(): Promise<void> {
    return super.run().then(() => this.wfile?.finishWrites());
  }

  override setup(): unknown {
    const server = this.server as { requestTimeout?: number | null; lineLimit?: number; lineTimeout?: number | null } | undefined;
    const requestTimeout = this.timeout ?? server?.requestTimeout ?? null;
    // Its own timeout is what a timed-out read or write names (it said: raise the server's requestTimeout, which this one overrides).
    const timeoutSetting = this.timeout == null ? undefined : `${classNameOf(this)}.timeout`;
    if (this.disableNagleAlgorithm) this.request.setNoDelay?.(true);
    this.rfile = readerFor(this.request, { requestTimeout, timeoutSetting, lineLimit: server?.lineLimit, lineTimeout: server?.lineTimeout });
    this.wfile = new StreamWriter(this.request, requestTimeout, timeoutSetting);
    return undefined;
  }
}

/**
 * A datagram request's socket as its classic handler sees it (`this.request[1]`, DatagramRequestHandler's
 * `this.socket`) while the handler runs: its `send()` is tracked, so that one the handler did not await and that
 * failed (EMSGSIZE, a Unix client gone) ends the request through handleError once the handler is done, as Python's
 * `sendto` raising in handle() reaches handle_error. Untracked, its rejection was unhandled and ended the server's
 * process (serial), or the worker (a Python porter's run).
 */
class TrackedSends {
  private pending = 0;
  /** The sends that failed, judged when the handler is done: a handler may await one long after it failed. */
  private failures: Array<{ send: WritePromise<void>; error: unknown }> | undefined;
  private idle: (() => void) | undefined;

  /** The handler is done (finish()): a send from now on has no end to be judged at. */
  private finished = false;

  private constructor(
    private readonly request: DatagramRequestTuple,
    private readonly socket: DatagramSocket,
    private readonly late: (error: unknown) => void,
  ) {}

  /**
   * For a datagram request: its socket replaced by one whose sends are tracked, until finish(). `late`: reports a
   * send through it after finish() (a timer's) that failed and that nothing looked at within a turn of the loop.
   */
  static on(request: unknown, late: (error: unknown) => void): TrackedSends | undefined {
    if (!Array.isArray(request) || request.length !== 2 || typeof (request[1] as Partial<DatagramSocket> | undefined)?.send !== 'function') return undefined;
    const tuple = request as DatagramRequestTuple;
    const sends = new TrackedSends(tuple, tuple[1], late);
    const send = (data: Buffer, to: ClientAddress) => sends.send(data, to);
    // Every other member is the socket's own, called on it (a method that sets its state sets the socket's).
    tuple[1] = new Proxy(tuple[1], {
      get(target, key) {
        if (key === 'send') return send;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return sends;
  }

  private send(data: Buffer, to: ClientAddress): Promise<void> {
    const sent = new WritePromise<void>((resolve, reject) => {
      try {
        this.socket.send(data, to).then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
    if (this.finished) {
      // A handler kept this socket (`this.socket`) and sent after it was done: its failure was recorded for an end that
      // had passed, and went nowhere (hostile run). Judged a turn later: a caller that awaits it has looked by then.
      Promise.prototype.then.call(sent, undefined, (error: unknown) => setImmediate(() => !sent.observed && this.late(error)));
      return sent;
    }
    this.pending++;
    Promise.prototype.then.call(sent, () => this.settled(), (error: unknown) => {
      (this.failures ??= []).push({ send: sent, error });
      this.settled();
    });
    return sent;
  }

  private settled(): void {
    if (--this.pending === 0) this.idle?.();
  }

  /**
   * The handler is done (`failed`: with that error): the socket is its own again, once the sends still on their
   * way have settled; then a send that failed unobserved fails the request, unless the handler's own error does.
   */
  async finish(failed?: unknown): Promise<void> {
    this.request[1] = this.socket;
    this.finished = true;
    if (this.pending > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    if (failed !== undefined) throw failed;
    // A send the handler awaited, caught or chained (then() was called on it) is the handler's to handle.
    const unobserved = this.failures?.find((failure) => !failure.send.observed);
    if (unobserved !== undefined) throw unobserved.error;
  }
}

/**
 * A datagram request, as Python's `(data, socket)` pair, plus whether the datagram was cut to
 * maxPacketSize, and the size of the reply sent (bytes; for stats, set by whoever sends it).
 */
export type DatagramRequestTuple = [data: Buffer, socket: DatagramSocket] & {
  /** True when the datagram was longer than the server's `maxPacketSize` and `data` holds only its beginning. */
  truncated: boolean;
  /** Bytes of the reply datagram sent, once one was; undefined before or when none was sent. */
  replyBytes?: number;
};

export function datagramRequest(data: Buffer, socket: DatagramSocket, truncated: boolean): DatagramRequestTuple {
  // both properties set at once, in one order: every request has the same shape, and replyBytes needs no new storage later
  const request = [data, socket] as DatagramRequestTuple;
  request.truncated = truncated;
  request.replyBytes = undefined;
  return request;
}

/**
 * Python's DatagramRequestHandler: `rfile` over the datagram, `wfile` collecting the reply, which
 * finish() sends back to the sender as one datagram. Unlike Python, nothing is sent when nothing was
 * written (Python sends an empty datagram), so servers that never answer stay silent.
 */
export class DatagramRequestHandler<S = any> extends BaseRequestHandler<DatagramRequestTuple, S> {
  /** The datagram's bytes (Python's `self.packet`), at most the server's `maxPacketSize`. */
  packet!: Buffer;
  /** The server's socket, through which finish() replies (Python's `self.socket`): `send(data, to)` answers any client. */
  socket!: DatagramSocket;
  /** Reads the datagram's bytes, as a stream's rfile reads a connection. */
  rfile!: StreamReader;
  /** Collects the reply, sent to the sender as one datagram by finish(); nothing written, nothing sent (an empty write sends an empty datagram). */
  wfile!: BufferWriter;

  /** True when the datagram was longer than the server's `maxPacketSize` and was cut to it. */
  get truncated(): boolean {
    return this.request.truncated;
  }

  override setup(): unknown {
    [this.packet, this.socket] = this.request;
    this.rfile = StreamReader.fromBuffer(this.packet);
    this.wfile = new BufferWriter();
    return undefined;
  }

  override async finish(): Promise<void> {
    this.wfile.seal();
    if (!this.wfile.written) return;
    const reply = this.wfile.getValue();
    await this.socket.send(reply, this.clientAddress);
    this.request.replyBytes = reply.length;
  }
}

// Marks classic handlers (and, through the constructors' prototype chain, their subclasses) for bootstrap() and
// TestServer, which take decorated classes (isClassicHandler); not part of the class's type.
const CLASSIC_HANDLER = Symbol.for('sockserve.classicHandler');
Object.defineProperty(BaseRequestHandler, CLASSIC_HANDLER, { value: true });

/**
 * Whether `handler` is a sockserve/classic request handler (BaseRequestHandler or a subclass): a classic server serves
 * it, not bootstrap() or TestServer, where its errors named a decorator to add, then a @Handle() method, then
 * BaseRequestHandler's constructor, none of which serves it (new user porting a ThreadingTCPServer; hostile re-check).
 */
export function isClassicHandler(handler: unknown): boolean {
  return (handler as Record<symbol, unknown>)[CLASSIC_HANDLER] === true;
}
