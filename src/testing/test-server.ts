import { isIPv6 } from 'node:net';
import * as timers from 'node:timers';
import { HandlerWiring } from '../bootstrap/handler-wiring';
import { Server, type ServerCounters } from '../bootstrap/server';
import { BaseServer } from '../classic/base-server';
import { stopReaderOf } from '../classic/reader-registry';
import { datagramRequest, DatagramRequestTuple } from '../classic/request-handler';
import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import { Container, Provider } from '../container';
import { show } from '../errors/configuration.messages';
import { ConfigurationError, RequestTimeoutError, ServerClosedError } from '../errors/errors';
import { messages } from '../errors/messages';
import { servedDefinition } from '../decorators/class-decorator.factory';
import { explore } from '../explorer/explorer';
import { type Logger, resolveLogger } from '../observability/logger';
import type { HandlerClass, HandlerDefinition, TransportDefinition } from '../metadata/definition';
import { isStreamTransport } from '../metadata/definition';
import { type ClientAddress, formatAddress } from '../transports/address';
import { carriedOverIpv6, sendError } from '../transports/udp.socket';
import { MAX_UDP4_PAYLOAD, MAX_UDP6_PAYLOAD } from '../decorators/udp-server.decorator';
import { unboundPeerError } from '../transports/unix-dgram.socket';
import type { DatagramSocket } from '../transports/datagram-socket';
import { microtask, settledWithin } from '../transports/event-loop';
import { stampAccepted } from '../transports/connection-stamps';
import { isDisposing } from '../lifecycle/dispose-after-end';
import { MemoryEnd, memoryPipe } from './memory-pipe';
import { elsewhere } from '../concurrency/remote/worker-face';
import { canChildrenShareDatagrams, canTransferTcpSockets, workerAcceptMechanism } from '../runtime';
import { TestConnection } from './test-connection';

type Request = MemoryEnd | DatagramRequestTuple;

/** The second argument of `TestServer.create()`: the `bootstrap()` options that make sense without sockets. */
export interface TestServerOptions {
  /** DI providers, as bootstrap's: they replace the handler's dependencies (a fake store, a fixed clock…). */
  providers?: Provider[];
  /** Overrides of the transport decorator's options (port, host, path…): what `req.server.serverAddress` says. */
  transport?: Record<string, unknown>;
  /**
   * Where the lines sockserve prints go, as bootstrap()'s `logger` option (`{ error, warn?, info?, debug? }`):
   * a handler error's traceback at `error`, a routine client error at `warn`. Default: the console. Every
   * error is in `errors` too, so a test that expects errors can pass a quiet logger (`{ error() {} }`).
   */
  logger?: Logger;
  /**
   * Seconds `close()` waits for requests still running after it has reset their connections (default 2,
   * below jest's 5 s test timeout). A request still running then (a handler awaiting something that never
   * settles) is abandoned, as a real server's `close()` abandons it: reported as a `RequestTimeoutError` (in
   * `errors`, through `@HandleError` or a `warn` line), its connection's `closed` resolves, and `close()`
   * resolves instead of hanging the test. `Infinity`: wait for ever.
   */
  shutdownTimeout?: number;
}

/** TestServerOptions.shutdownTimeout's default, in seconds. */
const CLOSE_WAIT_SECONDS = 2;

/** Where in-memory clients appear to come from when the test does not say, on TCP and UDP. */
const DEFAULT_IP_CLIENT: ClientAddress = { host: '127.0.0.1', port: 50000, family: 'IPv4' };
/**
 * ...and on Unix transports: an unbound Unix client, `{ path: '' }`, as the real servers report one
 * (stream-listener.ts, unix-dgram.socket.ts). Before, every transport got the IP default.
 */
const DEFAULT_UNIX_CLIENT: ClientAddress = { path: '' };

/** A client address as a test writes it: a `ClientAddress`, whose IP `family` may be left out. */
export type TestClientAddress =
  | ClientAddress
  | {
      /** The client's IP address, e.g. `'203.0.113.9'` or `'2001:db8::9'`. */
      host: string;
      /** The client's port. */
      port: number;
      /** Left out: `'IPv6'` when `host` is an IPv6 address, else `'IPv4'`. */
      family?: 'IPv4' | 'IPv6';
    };

/** The address with its IP family filled in from the host when the test left it out. */
function withFamily(address: TestClientAddress): ClientAddress {
  if ('path' in address && typeof address.path === 'string') return address as ClientAddress;
  const ip = address as { host: string; port: number; family?: 'IPv4' | 'IPv6' };
  return ip.family ? (ip as ClientAddress) : { host: ip.host, port: ip.port, family: isIPv6(ip.host) ? 'IPv6' : 'IPv4' };
}

/**
 * The classic server the decorated wiring runs on, with memory in place of sockets: `getRequest()`
 * takes the connections and datagrams the test made, and the real stages run on them (verifyRequest →
 * processRequest → finishRequest → shutdownRequest, handleError), on the concurrent strategy.
 */
class MemoryServer extends BaseServer<Request, unknown> {
  readonly queue: Array<[Request, ClientAddress]> = [];
  readonly open = new Set<MemoryEnd>();
  /** Called when a request has been closed: its connection's `closed`, its datagram's reply. */
  readonly whenClosed = new Map<Request, () => void>();

  constructor(
    address: unknown,
    private readonly wiring: HandlerWiring,
    private readonly errors: unknown[],
    /** The face's counters: what `stats()` says, counted as bootstrap()'s server counts them (API.md §14). */
    private readonly counters: ServerCounters,
  ) {
    super(address, wiring.handlerClass() as never, { bindAndActivate: false });
    this.strategy = new ConcurrentStrategy<Request>();
  }

  override getRequest(): [Request, ClientAddress] {
    const next = this.queue.shift();
    if (!next) throw Object.assign(new Error('no request is waiting'), { code: 'EAGAIN' });
    return next;
  }

  /**
   * A request the test made is there at once; otherwise the wait lasts `ms` (the loop's poll interval), on a
   * timer that keeps no process alive. It resolved false at once, and `t.server.serveForever()` spun in
   * microtasks for ever: timers never ran again (the test hung). `node:timers`'s setTimeout, which jest does not
   * fake: the poll is the server's own wait, and on the fake clock it never ended, so a `t.server.serveForever()`
   * loop never saw `t.server.shutdown()`, and neither resolved.
   */
  protected waitForRequest(ms: number): Promise<boolean> {
    if (this.queue.length > 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => timers.setTimeout(() => resolve(this.queue.length > 0), Math.min(Math.max(ms, 1), 2 ** 31 - 1)).unref());
  }

  /** Each connection is taken by a handleRequest() of its own, and the wait never blocks: they may overlap. */
  protected override readonly oneWaitAtATime = false;

  protected wakeLoop(): void {}

  override async verifyRequest(request: Request, clientAddress: ClientAddress): Promise<boolean> {
    const ok = !this.wiring.hasHook('verify') || (await this.wiring.verify(request as object, clientAddress, (error) => this.handleError(undefined, clientAddress, error)));
    if (!ok) this.counters.rejected++;
    return ok;
  }

  /**
   * shutdown() has been called (`req.server.shutdown()`, `t.server.shutdown()`): connections and datagrams
   * the test makes from then on stay unread, as those a real server's socket takes after shutdown() began
   * (API.md §6), until close() resets them. BaseServer.shutdown() itself has no loop to stop here.
   */
  stopped = false;

  override shutdown(): Promise<void> {
    this.stopped = true;
    this.stopReading(); // BaseServer.shutdown() does only while serveForever() runs
    return super.shutdown();
  }

  /**
   * As a real stream server's shutdown() (API.md §6): the reads of every open connection that would wait see
   * EOF, so a handler waiting for its client's next line ends as on a socket (it waited for ever in memory);
   * what the test wrote before is still read.
   */
  protected override stopReading(): void {
    for (const end of this.open) stopReaderOf(end);
  }

  override async shutdownRequest(request: Request): Promise<void> {
    if (request instanceof MemoryEnd) {
      this.ending.add(request);
      // As a socket's: the reply's FIN after everything written, then the close.
      if (!request.destroyed && !request.writableEnded) await new Promise<void>((resolve) => request.end(resolve));
      request.destroy();
      this.open.delete(request);
      this.showEof(request); // the request's errors were reported before this (processInBackground's order)
    }
    this.ended.add(request as object);
    const closed = this.whenClosed.get(request);
    this.whenClosed.delete(request);
    closed?.();
  }

  /**
   * Requests whose end the test may have seen (their `closed`, a datagram's reply): no longer running in
   * `stats().active`, though the strategy forgets them a few reactions later (after shutdownRequest's promise):
   * `await c.end()` then `active` said 1 (new-user run).
   */
  private readonly ended = new WeakSet<object>();

  override get activeRequests(): number {
    let running = 0;
    for (const [request] of this.strategy.inFlight?.() ?? []) if (!this.ended.has(request as object)) running++;
    return running;
  }

  /** Connections whose end this server began (shutdownRequest): their FIN waits for showEof(). */
  private readonly ending = new WeakSet<MemoryEnd>();
  /** Connections whose FIN is held back from the client until the request has been reported: show it then. */
  private readonly heldEof = new WeakMap<MemoryEnd, { finished: boolean; shown: boolean; mayShow: boolean }>();

  /**
   * The client's EOF on `end` (the server's side of a connection) comes once the request has ended and its
   * errors are in `errors` (showEof, from shutdownRequest), not when the FIN is made: with a request-scoped
   * provider the wiring ends the connection before the scope's dispose() and reports the request's error
   * after it, so a test that checked `errors` at EOF found nothing (with @HandleError too, whose hook had
   * run), and without one it found the error; racy either way. A half-close the handler makes itself in the
   * middle of its request (`wfile.end()`, then more reading) still reaches the client at once: the client
   * may have to see it before the handler can go on.
   */
  holdEof(end: MemoryEnd): void {
    const state = { finished: false, shown: false, mayShow: false };
    this.heldEof.set(end, state);
    end._final = (callback: (error?: Error | null) => void): void => {
      callback();
      // One microtask on: the wiring marks a connection it ends before disposing right after ending it.
      microtask(() => {
        state.finished = true;
        if (state.mayShow || !(this.ending.has(end) || isDisposing(end))) this.pushEof(end, state);
      });
    };
  }

  /** The request on `end` has been reported (or abandoned): the client may see its EOF. */
  showEof(end: MemoryEnd): void {
    const state = this.heldEof.get(end);
    if (!state) return;
    state.mayShow = true;
    if (state.finished) this.pushEof(end, state);
  }

  private pushEof(end: MemoryEnd, state: { shown: boolean }): void {
    if (state.shown) return;
    state.shown = true;
    if (!end.peer.destroyed) end.peer.push(null);
  }

  override async handleError(request: Request | undefined, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> {
    this.errors.push(error);
    this.counters.countError(error); // errors, clientErrors, tlsErrors or proxyErrors, as bootstrap()'s server counts

    // What the default report gets besides the request's own error (the hook's failure, a scope's dispose()
    // failing after the hook) is in `errors` too: a test saw only the request's error, the log both.
    const report = (unhandled: unknown) => {
      if (unhandled !== error) this.errors.push(unhandled);
      return super.handleError(request, clientAddress, unhandled);
    };
    await this.wiring.handleError(error, clientAddress, report, this.shutdownTimeout, request);
  }

  /**
   * Ends every connection still open (a reset) and waits `seconds` for their requests to finish; those still
   * running then are abandoned (TestServerOptions.shutdownTimeout): each reported once as a
   * RequestTimeoutError, its test side's `closed` resolved, and whatever it does later reported no more.
   * `taken`: every request the test started, settled; a request started just before close() is not in flight
   * yet (its handleRequest() has not run), so the wait is for those too (a pending @Verify hung close()).
   */
  async closeAll(seconds: number, owner: string, taken: () => Promise<unknown>): Promise<void> {
    for (const end of this.open) end.destroy();
    if (await settledWithin(Promise.all([this.strategy.drain(), taken()]), seconds * 1000)) return;
    for (const [request, clientAddress] of [...(this.strategy.inFlight?.() ?? [])]) {
      if (this.givenUp.has(request as object)) continue;
      // One whose own @HandleError is running has its report, as a real server leaves it to that hook: the hook ran
      // a second time with a RequestTimeoutError, counted besides the request's error (errors 1 and clientErrors 1).
      const owed = this.leaveReportToItsOwn(request);
      if (!owed) await this.handleError(request, clientAddress, new RequestTimeoutError(messages.testAbandoned(owner, seconds)));
      this.givenUp.add(request as object);
      await owed;
      // Given up: no longer running, as a real server's stats() says once it abandons a request (active stayed 1).
      this.strategy.forget?.(request);
      if (request instanceof MemoryEnd) {
        this.open.delete(request);
        this.showEof(request);
      }
      const closed = this.whenClosed.get(request);
      this.whenClosed.delete(request);
      closed?.();
    }
  }

  /** Requests close() gave up on (closeAll): a late failure of theirs is no news (handleErrorSafely asks). */
  private readonly givenUp = new WeakSet<object>();

  override wasAbandoned(request: Request): boolean {
    return this.givenUp.has(request as object) || super.wasAbandoned(request);
  }
}

/**
 * A handler class served in memory, for tests ([testing](../../docs/testing.md)): the same explorer checks, DI (with the test's
 * providers), `@Verify`, lifecycle, framers and errors as `bootstrap()`, with nothing bound and
 * everything in the test's own thread, whatever the class's concurrency decorator says. Twisted's
 * `StringTransport` and Netty's `EmbeddedChannel` are the models.
 *
 * ```ts
 * const t = await TestServer.create(KvHandler, { providers: [{ provide: Store, useValue: new Store() }] });
 * const c = t.connect();
 * c.write('SET a 1\n');
 * expect(await c.readline()).toBe('OK\n');
 * await c.end();
 * await t.close();
 * ```
 *
 * Throws (rejects) as bootstrap() does: ConfigurationError for bad decorators, InjectionError for a
 * dependency that cannot be built.
 */
export class TestServer {
  /** Every error the server reported (what reached `@HandleError`, or the default report), in order. */
  readonly errors: unknown[] = [];
  /** The server face handlers see as `req.server`. */
  readonly server: Server;
  private readonly classic: MemoryServer;
  private readonly pending = new Set<Promise<void>>();
  /** close() has been called: connect() and datagram() throw ServerClosedError. */
  private closing = false;
  /** Connections and datagrams made after shutdown(): left unread until close() (see take()). */
  private readonly unread: Request[] = [];

  private constructor(
    private readonly def: HandlerDefinition,
    container: Container,
    logger: Logger | undefined,
    /** TestServerOptions.shutdownTimeout, in seconds. */
    private readonly closeWait: number,
  ) {
    this.server = new Server(def.handler.name, () => container.dispose());
    // limits.maxLineLength caps rfile.readline() as on a socket (a size: no timer); requestTimeout and
    // lineTimeout are not applied in memory (no timer is started).
    const t = def.transport;
    const lineLimit = isStreamTransport(t) ? t.options.limits?.maxLineLength : undefined;
    // A @HandleError is waited for shutdownTimeout at most, as bootstrap()'s servers wait for it (a hung one held its
    // connection open and close() pending for ever; hostile re-check).
    const limit = Number.isFinite(closeWait) ? closeWait : null;
    // A @Threading/@Forking handler runs as in its worker on this Node (workerView): a handler that kept what @Verify
    // learnt on `this`, or used req.socket, passed here where it failed there (hostile run), and the reverse.
    const view = workerView(def);
    const face = view ? seenFromWorker(this.server) : this.server;
    const wiring = new HandlerWiring(def, container, face, false, () => ({ requestTimeout: null, lineLimit }), () => limit, false, view);
    this.classic = new MemoryServer(classicAddress(def.transport), wiring, this.errors, this.server.counters);
    this.classic.shutdownTimeout = limit;
    this.classic.logger = resolveLogger(logger);
    this.server.attach(this.classic);
  }

  /**
   * Serves `handler` in memory. Rejects as bootstrap() does, before any request: ConfigurationError for
   * bad decorators, InjectionError for a dependency that cannot be built. The handler's concurrency
   * decorator is ignored (everything runs in the test's thread); `providers` replace its dependencies, and
   * need not cross to workers (bootstrap() checks that for `@Threading`/`@Forking` handlers; this does not).
   */
  static async create(handler: HandlerClass, options: TestServerOptions = {}): Promise<TestServer> {
    // Validated by the decorator's own rules, as bootstrap()'s transport option is (API.md §2, §13).
    const def: HandlerDefinition = servedDefinition(explore(handler), options.transport, 'TestServer.create()');
    const container = new Container(options.providers ?? []);
    container.register({ provide: def.handler, useClass: def.handler as new (...args: any[]) => unknown, scope: 'transient' });
    container.validate(def.handler);
    const closeWait = options.shutdownTimeout ?? CLOSE_WAIT_SECONDS;
    if (typeof closeWait !== 'number' || Number.isNaN(closeWait) || closeWait < 0) {
      throw new ConfigurationError(`TestServer.create(): shutdownTimeout must be a number of seconds ≥ 0 (or Infinity), got ${String(closeWait)}. Fix: pass e.g. { shutdownTimeout: 2 }.`);
    }
    return new TestServer(def, container, options.logger, closeWait);
  }

  /**
   * A new in-memory connection from `clientAddress` (default 127.0.0.1:50000, or `{ path: '' }`, an unbound
   * client, on a Unix transport; `family` may be left out: it follows from `host`); `@Verify` runs first, as on
   * a socket. Throws ConfigurationError on a datagram transport, ServerClosedError after close().
   */
  connect(from: TestClientAddress = this.defaultClient): TestConnection {
    if (this.isDatagram) throw new ConfigurationError(notFor(this.def, 'connect()', 'a datagram transport', 'datagram(data, from)'));
    const clientAddress = withFamily(this.checkClient('connect()', from));
    this.assertOpen('connect()');
    const [server, client] = memoryPipe();
    server.on('error', () => undefined); // a reset surfaces through the request's reads, as on a socket
    // Accepted now, as a socket is when the listener takes it: shutdown()'s first-request grace counts from here,
    // not from the rfile made when a serial handler's turn comes (each queued idle connection waited 1 s more).
    stampAccepted(server);
    this.classic.holdEof(server);
    this.classic.open.add(server);
    const closed = this.take(server, clientAddress);
    return new TestConnection(client, closed);
  }

  /**
   * One datagram from `from` (default 127.0.0.1:50000, or `{ path: '' }`, an unbound client, on a Unix
   * transport); resolves to the reply datagram, or `undefined`
   * when the handler sent none (or `@Verify` refused it). Rejects with ConfigurationError on a stream
   * transport, ServerClosedError after close().
   */
  async datagram(data: string | Buffer, sender: TestClientAddress = this.defaultClient): Promise<Buffer | undefined> {
    if (!this.isDatagram) throw new ConfigurationError(notFor(this.def, 'datagram()', 'a stream transport', 'connect()'));
    const from = withFamily(this.checkClient('datagram()', sender));
    this.assertOpen('datagram()');
    let reply: Buffer | undefined;
    // A reply the real socket could not send fails here as there (a handler's test passed where production
    // failed: hostile run): one longer than a UDP datagram carries (EMSGSIZE), one to an unbound Unix client.
    const owner = this.def.handler.name;
    const unix = this.def.transport.kind === 'unix-dgram';
    const socket = {
      send: async (bytes: Buffer, to: ClientAddress) => {
        if (unix && (to as { path?: string }).path === '') throw unboundPeerError(owner);
        const ip = to as { host: string; family?: string };
        if (!unix && bytes.length > (carriedOverIpv6(ip) ? MAX_UDP6_PAYLOAD : MAX_UDP4_PAYLOAD)) {
          throw sendError(owner, bytes.length, ip, Object.assign(new Error(`send EMSGSIZE ${formatAddress(to)}`), { code: 'EMSGSIZE' }));
        }
        reply = Buffer.concat([reply ?? Buffer.alloc(0), bytes]);
      },
    };
    const whole = typeof data === 'string' ? Buffer.from(data) : data;
    // As the real server reads it: at most maxPacketSize bytes (the transport's, else the classic default), flagged truncated.
    const max = (this.def.transport.options as { maxPacketSize?: number }).maxPacketSize ?? this.classic.maxPacketSize;
    const bytes = whole.length > max ? whole.subarray(0, max) : whole;
    await this.take(datagramRequest(bytes, socket as unknown as DatagramSocket, whole.length > max), from);
    return reply;
  }

  /**
   * Resets the connections still open, waits for their requests (at most `shutdownTimeout` seconds, default
   * 2: then those still running are abandoned and reported as RequestTimeoutErrors), disposes the container's
   * singletons. Idempotent.
   */
  async close(): Promise<void> {
    this.closing = true;
    // Made after shutdown(), or waiting for a serial handler's turn, and never read: reset, as close() resets
    // what a real server's socket still holds.
    const waiting = this.waiting.splice(0);
    for (const request of [...waiting.map((w) => w.request), ...this.unread.splice(0)]) {
      if (request instanceof MemoryEnd) {
        request.destroy();
        this.classic.open.delete(request);
      }
      const closed = this.classic.whenClosed.get(request);
      this.classic.whenClosed.delete(request);
      closed?.();
    }
    for (const w of waiting) w.resolve();
    await this.classic.closeAll(this.closeWait, this.def.handler.name, () => Promise.allSettled(this.pending));
    await Promise.allSettled(this.pending); // each request's own promise carries its failure to whoever awaits it
    await this.server.close();
  }

  /** Throws ServerClosedError once close() has been called, as a closed socket server takes no client. */
  private assertOpen(member: string): void {
    if (this.closing) throw new ServerClosedError(`TestServer.${member}: ${this.def.handler.name}'s test server was closed. Fix: create a new one (TestServer.create()) for each test.`);
  }

  /** The client a test that names none connects or sends from: as the real transport would report one. */
  /**
   * `from` as the transport's clients are: `{ host, port }` over TCP and UDP, `{ path }` over Unix sockets; another
   * shape is a TypeError naming both (a `{ path }` given to a UDP server reached the handler with no host, and failed
   * there with "Cannot read properties of undefined": hostile run).
   */
  private checkClient(member: string, from: TestClientAddress): TestClientAddress {
    const unix = this.def.transport.kind === 'unix-stream' || this.def.transport.kind === 'unix-dgram';
    const a = from as { host?: unknown; port?: unknown; path?: unknown } | null | undefined;
    const fits = unix
      ? typeof a?.path === 'string' && a.host === undefined
      : typeof a?.host === 'string' && a.host !== '' && Number.isInteger(a.port) && (a.port as number) >= 0 && (a.port as number) <= 65535 && a.path === undefined;
    if (fits) return from;
    const kind = unix ? 'a Unix socket' : this.isDatagram ? 'UDP' : 'TCP';
    const want = unix ? "{ path } (a socket path, '' for an unbound client)" : '{ host, port } (an IP address and a port)';
    const example = unix ? "{ path: '/tmp/client.sock' }" : "{ host: '203.0.113.9', port: 5000 }";
    throw new TypeError(`TestServer.${member}: ${this.def.handler.name} is served on ${kind}, whose clients are ${want}; got ${show(from)}. Fix: pass ${example}, or leave it out for the default client.`);
  }

  private get defaultClient(): ClientAddress {
    const kind = this.def.transport.kind;
    return { ...(kind === 'unix-stream' || kind === 'unix-dgram' ? DEFAULT_UNIX_CLIENT : DEFAULT_IP_CLIENT) };
  }

  private get isDatagram(): boolean {
    return this.def.transport.kind === 'udp' || this.def.transport.kind === 'unix-dgram';
  }

  /**
   * Queues a request and has the classic loop take it; resolves once it has been closed. Counted in
   * `stats().accepted` as a real server counts each connection and datagram it takes. After shutdown() it
   * stays unread (MemoryServer.stopped) until close(). A handler without a concurrency decorator is served
   * as bootstrap() serves it (API.md §3): one request at a time, the next taken only once the current one
   * has closed; until then it waits in `waiting`, and close() resets it there. Before, every handler's
   * connections were served at once, so a test of two clients passed where the real server served the
   * second only after the first had gone (hostile run).
   */
  private take(request: Request, clientAddress: ClientAddress): Promise<void> {
    const closed = new Promise<void>((resolve) => this.classic.whenClosed.set(request, resolve));
    if (this.def.concurrency.kind !== 'serial') return this.start(request, clientAddress, closed);
    // Made before shutdown(): served in its turn after it too, as a real serial server serves the connections
    // it accepted before shutdown() began (API.md §6); it stayed unread until close() reset it.
    const beforeShutdown = !this.classic.stopped;
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ request, clientAddress, closed, resolve, reject, beforeShutdown });
      this.nextSerial();
    });
  }

  /** Requests of a serial handler waiting for the one before them to close (take()); close() resets them. */
  private readonly waiting: Array<{ request: Request; clientAddress: ClientAddress; closed: Promise<void>; resolve: () => void; reject: (error: unknown) => void; beforeShutdown: boolean }> = [];
  /** A serial handler's request has been started and has not closed yet. */
  private serialBusy = false;

  /** Starts a serial handler's next waiting request, at once, when none is running. */
  private nextSerial(): void {
    if (this.serialBusy) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.serialBusy = true;
    const done = this.start(next.request, next.clientAddress, next.closed, next.beforeShutdown);
    done.then(next.resolve, next.reject);
    const after = () => {
      this.serialBusy = false;
      this.nextSerial();
    };
    done.then(after, after);
  }

  private start(request: Request, clientAddress: ClientAddress, closed: Promise<void>, beforeShutdown = false): Promise<void> {
    if (this.classic.stopped && !beforeShutdown) {
      this.unread.push(request);
      return closed;
    }
    this.server.counters.accepted++;
    this.classic.queue.push([request, clientAddress]);
    const taken = this.classic.handleRequest().then(() => undefined);
    // `serveForever()` running may take it first; then this handleRequest() waits on, and its close says it is done.
    const done = Promise.all([Promise.race([taken, closed]), closed]).then(() => undefined);
    this.pending.add(done);
    // Handled here (a `finally` would make a second promise that nobody awaits, rejected with the first:
    // an unhandled rejection that ends the test's process); the caller gets `done` and its failure.
    const forget = () => void this.pending.delete(done);
    done.then(forget, forget);
    return done;
  }
}

function classicAddress(t: TransportDefinition): unknown {
  if (t.kind === 'tcp' || t.kind === 'udp') return [t.options.host ?? '127.0.0.1', t.options.port];
  return t.options.path;
}

function notFor(def: HandlerDefinition, member: string, what: string, instead: string): string {
  return `TestServer.${member}: ${def.handler.name} is served on ${what}. Fix: use ${instead} for it.`;
}

/**
 * `req.server` as a `@Threading`/`@Forking` handler sees it in its worker (WorkerServerFace): the address and
 * shutdown() work, the members of the server's own process (stats(), close(), serveForever(), handleRequest(),
 * setSecureContext()) do not. The full server let a handler's test pass that production failed (hostile run).
 */
function seenFromWorker(server: Server): Server {
  const rejecting = (member: string) => ({ value: () => Promise.reject(elsewhere(member)) });
  return Object.create(server, {
    stats: { value: () => { throw elsewhere('stats()'); } },
    close: rejecting('close()'),
    serveForever: rejecting('serveForever()'),
    handleRequest: rejecting('handleRequest()'),
    setSecureContext: { value: undefined },
  }) as Server;
}

/**
 * How a `@Threading`/`@Forking` handler's requests meet it in its worker with this configuration on this Node
 * (API.md §3, [concurrency](../../docs/concurrency.md)); undefined for the server's own modes. @Verify runs in
 * the worker, on the request's own instance, where the worker accepts the connection or takes it unread (its
 * PROXY header or TLS handshake to run there); else in the server's process, apart. A connection is the
 * worker's own socket where it accepted it or was handed its descriptor, and relayed (no `req.socket`) where
 * the server's process read from it first (a PROXY header or TLS of its own) or cannot hand it over (threads
 * before Node 24.21/26.6, Unix sockets to threads).
 */
function workerView(def: HandlerDefinition): { verifyApart: boolean; relayed: boolean } | undefined {
  const c = def.concurrency;
  if (c.kind !== 'threading' && c.kind !== 'forking') return undefined;
  const forking = c.kind === 'forking';
  const options = c.options as { connectionsPerThread?: number; connectionsPerChild?: number; perRequest?: boolean };
  const perWorker = (forking ? options.connectionsPerChild : options.connectionsPerThread) ?? Infinity;
  const pooled = options.perRequest !== true && perWorker > 1;
  const t = def.transport;
  if (!isStreamTransport(t)) {
    // Datagrams: children read the shared socket themselves; the server's process reads those of threads.
    return { verifyApart: !(forking && pooled && canChildrenShareDatagrams()), relayed: true };
  }
  const unix = t.kind === 'unix-stream';
  const { tls, proxyProtocol, limits } = t.options as { tls?: unknown; proxyProtocol?: unknown; limits?: { maxConnections?: number; maxConnectionsPerClient?: number } };
  const proxied = proxyProtocol !== undefined && proxyProtocol !== false;
  const preamble = tls !== undefined || proxied;
  const globalLimit = limits?.maxConnections !== undefined || limits?.maxConnectionsPerClient !== undefined;
  const mechanism = workerAcceptMechanism();
  // Threads that listen with reusePort (opt-in) share the port with the main thread, which verifies its share
  // itself: a mix, taken here as the main thread's, the stricter (hostile re-check).
  const workersAccept = forking && pooled && !globalLimit && mechanism.forkingTcp === 'worker-accepts';
  const handsOver = forking || (!unix && canTransferTcpSockets());
  // Its preamble and @Verify run in the worker, but where a PROXY header must name the client for a per-client
  // limit here (StreamServer.preambleInWorkers).
  const perClient = limits?.maxConnectionsPerClient !== undefined && proxied;
  const unread = pooled && preamble && !perClient;
  return {
    verifyApart: !(workersAccept || unread),
    relayed: !(workersAccept || (handsOver && (unread || !preamble))),
  };
}
