import { chmod } from 'node:fs/promises';
import { BaseServer } from '../classic/base-server';
import { UDPServer, UnixDatagramServer } from '../classic/datagram-servers';
import { StreamServerOptions, TCPServer, UnixStreamServer } from '../classic/stream-servers';
import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import type { ConcurrencyStrategy } from '../concurrency/strategy';
import type { Container } from '../container';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import type { HandlerDefinition, TransportDefinition } from '../metadata/definition';
import { isStreamTransport } from '../metadata/definition';
import { connectionClosed, connectionOpened, requestAbandoned, requestObserved, traceRequest } from '../observability/events';
import { resolveLogger, stderrLogger } from '../observability/logger';
import { streamBytes } from '../observability/connection-bytes';
import { endedHealthCheck, isHealthCheckOn } from '../observability/health-check';
import { isAbstract } from '../transports/unix-path';
import type { ClientAddress } from '../transports/address';
import type { DropKind } from '../transports/stream-listener';
import { preambleDeferred } from '../transports/connection-preamble';
import type { DatagramRequestTuple } from '../classic/request-handler';
import type { ReceivedDatagram } from '../transports/datagram-socket';
import { HandlerWiring } from './handler-wiring';
import type { BootstrapOptions } from './options';
import type { Server, ServerCounters } from './server';
import { handleErrorFailure, reportedInWorker } from '../concurrency/remote/protocol';
import { disposalFailureOf } from '../errors/thrown';

/** The listen backlog of decorated stream servers when none is given: Node's own default. */
export const DECORATOR_BACKLOG = 511;

type ClassicClass = abstract new (...args: any[]) => BaseServer<any, any>;

/** The classic server class for each transport: the decorator layer is built on these. */
function classicClassFor(t: TransportDefinition): { Base: ClassicClass; address: unknown } {
  switch (t.kind) {
    case 'tcp':
      return { Base: TCPServer, address: [t.options.host ?? '127.0.0.1', t.options.port] };
    case 'udp':
      return { Base: UDPServer, address: [t.options.host ?? '127.0.0.1', t.options.port] };
    case 'unix-stream':
      return { Base: UnixStreamServer, address: t.options.path };
    case 'unix-dgram':
      return { Base: UnixDatagramServer, address: t.options.path };
  }
}

/**
 * Builds the classic server for a handler definition: the transport's classic class (or the user's
 * `serverClass` subclass of it), its attributes from the decorators and options, the concurrency
 * strategy, and the decorated hooks wired into the classic stages. It also counts and publishes
 * (observability/): it is the outermost class, so a `serverClass` that overrides a stage is counted too.
 */
export function assembleServer(
  def: HandlerDefinition,
  container: Container,
  options: BootstrapOptions,
  face: Server,
  counters: ServerCounters,
  strategy: ConcurrencyStrategy<any> | undefined,
): BaseServer<any, any> {
  const { Base: Default, address } = classicClassFor(def.transport);
  const Base = options.serverClass ?? Default;
  if (Base !== Default && !(Base.prototype instanceof Default)) {
    throw new ConfigurationError(messages.badServerClass(def.handler.name, Base.name, Default.name));
  }
  const t = def.transport;
  const remote = def.concurrency.kind === 'threading' || def.concurrency.kind === 'forking';
  /** Connections run here that a reset ended before any byte: health checks, counted at their close. */
  const hungUp = new WeakSet<object>();
  const wiring = new HandlerWiring(def, container, face, remote, () => ({
    requestTimeout: server.requestTimeout,
    lineLimit: (server as unknown as TCPServer).lineLimit,
    lineTimeout: (server as unknown as TCPServer).lineTimeout,
  }), () => server.shutdownTimeout);

  // @Concurrent datagram servers serve a datagram from the socket's callback, when the loop's turn would only
  // add promises: no @Verify or @ServiceActions to call there, no serverClass stage of the turn overridden.
  const concurrent = strategy instanceof ConcurrentStrategy ? strategy : undefined;
  // (The instance is checked too, once built: a stage a serverClass sets as a field or in its constructor counts.)
  const atOnceByClass = concurrent !== undefined && (t.kind === 'udp' || t.kind === 'unix-dgram') && !wiring.hasHook('verify') &&
    !wiring.hasHook('serviceActions') && LOOP_TURN.every((stage) => Base.prototype[stage] === Default.prototype[stage]);

  /** Datagrams a pool dropped at maxQueuedDatagrams after the loop took them: counted in stats().dropped only. */
  const droppedAfterTaken = new WeakSet<object>();
  /** A request the loop took: a stream connection was counted when the listener accepted it (connectionAccepted); a datagram now. */
  const taken = (got: [unknown, ClientAddress]): [unknown, ClientAddress] => {
    if (Array.isArray(got[0])) counters.accepted++;
    // One whose PROXY header and TLS handshake run in its worker opens there, once they pass (workerOpened).
    else if (!preambleDeferred(got[0] as object)) connectionOpened(face, got[0] as object, got[1]);
    return got;
  };

  // The base is one of four concrete classic classes (or a subclass): typed loosely here, checked above.
  const Concrete = Base as unknown as new (...args: any[]) => any;
  class AssembledServer extends Concrete {
    /** Datagrams are served at once (see atOnceByClass): decided when the instance is built. */
    private readonly atOnce: boolean;

    constructor() {
      super(address, wiring.handlerClass(), edgeOptionsOf(def));
      const own = this as unknown as Record<string, unknown>;
      const proto = AssembledServer.prototype as unknown as Record<string, unknown>;
      this.atOnce = atOnceByClass && LOOP_TURN.every((stage) => own[stage] === proto[stage]);
      if (strategy) this.strategy = strategy;
      // The decorators' default is Node's 511, not Python's 5: a burst of clients must not stall in SYN retries.
      if (isStreamTransport(t)) this.requestQueueSize = t.options.backlog ?? DECORATOR_BACKLOG;
      if ('maxPacketSize' in t.options && t.options.maxPacketSize !== undefined) this.maxPacketSize = t.options.maxPacketSize;
      if (t.kind === 'tcp' && t.options.ipv6Only !== undefined) (this as unknown as TCPServer).ipv6Only = t.options.ipv6Only;
      if (options.timeout !== undefined) this.timeout = options.timeout;
      if (options.requestTimeout !== undefined) this.requestTimeout = options.requestTimeout;
      if (options.shutdownTimeout !== undefined) this.shutdownTimeout = options.shutdownTimeout;
      // The option wins; without it, a serverClass's own logger stays, and the default becomes the console's.
      if (options.logger || this.logger === stderrLogger) this.logger = resolveLogger(options.logger);
    }

    /** Binds; then a Unix socket file gets its `mode` (API.md §2) before the loop serves anyone. */
    async serverBind(): Promise<void> {
      const unixMode = (t.kind === 'unix-stream' || t.kind === 'unix-dgram') && t.options.mode !== undefined;
      // No file, no permission bits: an abstract name is open to every process of the network namespace.
      if (unixMode && isAbstract(t.options.path)) throw new ConfigurationError(messages.modeOnAbstract(def.handler.name, t.options.path));
      // Created no wider than those bits (unix-path.ts bindingWithMode), then chmod()ed to them: never wider in between.
      if (unixMode) (this as unknown as { socketMode?: number }).socketMode = t.options.mode;
      await super.serverBind();
      if (unixMode) await chmod(t.options.path, t.options.mode!);
    }

    protected get logName(): string {
      return def.handler.name;
    }

    protected get callerName(): string {
      return `${def.handler.name}'s server`;
    }

    protected get routineErrorsCountedIn(): string {
      return 'stats().clientErrors, tlsErrors and proxyErrors';
    }

    getRequest(): Promise<[unknown, ClientAddress]> | [unknown, ClientAddress] {
      // Not async: the classic servers take a request synchronously, and the loop's turn then costs no tick.
      const got: Promise<[unknown, ClientAddress]> | [unknown, ClientAddress] = super.getRequest();
      return Array.isArray(got) ? taken(got) : Promise.resolve(got).then(taken);
    }

    /**
     * A datagram dropped unserved (maxQueuedDatagrams) counts in stats().dropped only. One a pool dropped after
     * the loop took it had been counted accepted (taken()): a flood's drops counted there too, with @Threading
     * and @Forking only (hostile run: 19,410 accepted, 4,096 served or reported).
     */
    datagramDropped(taken?: object): void {
      if (taken) {
        if (counters.accepted > 0) counters.accepted--;
        droppedAfterTaken.add(taken); // nor in bytesIn, when the loop closes it (countClosed)
      }
      super.datagramDropped(taken);
    }

    connectionAccepted(): void {
      counters.accepted++;
    }

    /**
     * A datagram served at once (see atOnce above): what one loop turn does with it (count, dispatch), in the
     * socket's callback. False when the loop must take it: not serving, or @Concurrent at maxConnections.
     */
    protected serveAtOnce(d: ReceivedDatagram): boolean {
      if (!this.atOnce || !this.isServing) return false;
      const request = this.requestOf(d);
      if (!concurrent!.dispatchNow(this as unknown as BaseServer<unknown>, request, d.from)) return false;
      counters.accepted++;
      return true;
    }

    /** Serial and @Concurrent (pools run the lifecycle in their workers): request.start/end, the tracing channel. */
    finishRequest(request: unknown, clientAddress: ClientAddress): Promise<void> {
      if (!requestObserved()) return super.finishRequest(request, clientAddress);
      return traceRequest(face, clientAddress, () => super.finishRequest(request, clientAddress), () => bytesOf(request), undefined, request as object);
    }

    /**
     * A request the loop never took, closed unserved (close(), shutdownTimeout; serial, and @Concurrent past its
     * maxConnections): published as one that ended with its error, its connection.open and request.start first, as
     * @Concurrent, which takes every other one, publishes those. Its stats() counted the error, and no event said it
     * (hostile runs: 3,399 datagram errors and 2 request.end; a connection closed with no open nor close).
     */
    protected untakenEnded(request: unknown, clientAddress: ClientAddress, error: Error): void {
      if (!Array.isArray(request) && typeof request === 'object' && request !== null && !preambleDeferred(request)) connectionOpened(face, request, clientAddress);
      if (requestObserved()) void traceRequest(face, clientAddress, () => Promise.reject(error), () => bytesOf(request)).catch(() => undefined);
    }

    /** An abandoned request publishes its request.end (with the error) before its connection is released. */
    protected endAbandoned(request: unknown, error: Error): Promise<void> {
      if (typeof request === 'object' && request !== null) requestAbandoned(request, error);
      return super.endAbandoned(request, error).then(() => wiring.disposeAbandoned(request));
    }

    closeRequest(request: unknown): Promise<void> | void {
      // Not async: a datagram server calls this once per datagram, and the base's part is synchronous.
      const closed: Promise<void> | void = super.closeRequest(request);
      if (closed) return Promise.resolve(closed).then(() => this.countClosed(request));
      this.countClosed(request);
    }

    /** closeRequest's second half: the request's bytes and, for a connection, health check and close event. */
    private countClosed(request: unknown): void {
      if (droppedAfterTaken.has(request as object)) return;
      const [bytesIn, bytesOut] = bytesOf(request);
      counters.bytesIn += bytesIn;
      counters.bytesOut += bytesOut;
      // A plain TCP health check that reached the handler here (workers tell theirs as dropped 'health-check').
      // (A PROXY header and then the client's end is one too: HAProxy's checks with check-send-proxy, as in workers.)
      if (!remote && !Array.isArray(request) && (hungUp.has(request as object) || isHealthCheckOn(request as object, bytesIn, bytesOut, (request as { readableEnded?: boolean }).readableEnded === true))) {
        counters.healthChecks++;
      }
      if (!Array.isArray(request)) connectionClosed(face, request as object, bytesIn, bytesOut);
    }

    acceptError(error: NodeJS.ErrnoException, first: boolean): void {
      counters.acceptErrors++;
      super.acceptError(error, first);
    }

    verifyRequest(request: object, clientAddress: ClientAddress): Promise<boolean> | boolean {
      // Handed to its worker unread: @Verify runs there, after the PROXY header and the TLS handshake (API.md §3).
      if (preambleDeferred(request)) return true;
      const base: Promise<boolean> | boolean = super.verifyRequest(request, clientAddress);
      // Not async: with no @Verify and the base's answer at hand, the loop's turn costs no tick here.
      if (base === true && !wiring.hasHook('verify')) return true;
      return this.verifyHooked(request, clientAddress, base);
    }

    private async verifyHooked(request: object, clientAddress: ClientAddress, base: Promise<boolean> | boolean): Promise<boolean> {
      const ok = (await base) && (!wiring.hasHook('verify') || (await wiring.verify(request, clientAddress, (error) => this.handleError(undefined, clientAddress, error))));
      if (!ok) counters.rejected++;
      return ok;
    }

    /**
     * A connection a worker accepted itself (API.md §3): counted and published as one the loop took. `unopened`: its
     * client reset before the worker accepted it, which the server's process counts and publishes nothing of unless
     * bytes came (stream-listener.ts acceptReset): opened then (workerOpened). A child published connection.open and
     * .close for 384 of 1,000 such health checks, with no request.end (hostile run).
     */
    workerAccepted(connection: object, clientAddress: ClientAddress, unopened = false): void {
      counters.accepted++;
      // With a PROXY header or TLS to read first, it opens once they pass in the worker (workerOpened).
      if (!(connection as { datagram?: boolean }).datagram && !this.preambleConfigured && !unopened) connectionOpened(face, connection, clientAddress);
    }

    /** A connection's preamble passed in its worker: connection.open, with the client its PROXY header names. */
    workerOpened(connection: object, clientAddress: ClientAddress): void {
      connectionOpened(face, connection, clientAddress);
    }

    /** A datagram a child read and served itself (@Forking over UDP): counted as one the loop took and closed. */
    datagramServed(_client: ClientAddress, [bytesIn, bytesOut]: [number, number]): void {
      counters.accepted++;
      counters.bytesIn += bytesIn;
      counters.bytesOut += bytesOut;
    }

    /** That connection ended: its bytes (the worker's counts, recorded against it) as closeRequest counts a socket's. */
    connectionEnded(connection: object): void {
      const [bytesIn, bytesOut] = bytesOf(connection);
      counters.bytesIn += bytesIn;
      counters.bytesOut += bytesOut;
      if (!(connection as { datagram?: boolean }).datagram) connectionClosed(face, connection, bytesIn, bytesOut);
    }

    /** Limits, health checks, failed PROXY headers and TLS handshakes: counted apart, reported as routine. */
    async connectionDropped(kind: DropKind, clientAddress: ClientAddress, error?: unknown, counted = true): Promise<void> {
      if (!counted) counters.accepted++; // one this process accepted was counted then (connectionAccepted)
      if (kind === 'rejected') counters.rejected++;
      else if (kind === 'health-check') counters.healthChecks++;
      else await this.handleError(undefined, clientAddress, error);
    }

    async handleError(request: unknown, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> {
      // A client that reset before its first byte, sent none: a health check, quiet (counted in closeRequest).
      if (!remote && typeof request === 'object' && request !== null && !Array.isArray(request) && endedHealthCheck(request, error)) {
        hungUp.add(request);
        return;
      }
      counters.countError(error); // errors, clientErrors, tlsErrors or proxyErrors: observability/error-kind.ts
      if (reportedInWorker(error)) {
        // Its @HandleError ran in the worker where it arose; if that hook failed, its failure is reported
        // here the default way, once, as wiring.handleError reports a failing hook of this process.
        const failed = handleErrorFailure(error);
        if (failed) await super.handleError(request, clientAddress, failed.error);
        // The request scope's dispose() failed after that hook had the request's error: no hook saw that one.
        const disposal = disposalFailureOf(error);
        if (disposal) await super.handleError(request, clientAddress, disposal.error);
        return;
      }
      // @HandleError, or the logger (routine at warn, the rest at error); a failing @HandleError is
      // reported the default way, never lost. The same path as sockserve/testing's (HandlerWiring).
      await wiring.handleError(error, clientAddress, (unhandled) => super.handleError(request, clientAddress, unhandled), this.shutdownTimeout, request);
    }

    /** A pool's @HandleError failed after its request was abandoned (RemoteServer.reportHookFailure): reported, not counted. */
    reportHookFailure(error: unknown, clientAddress: ClientAddress): Promise<void> {
      return Promise.resolve()
        .then(() => super.handleError(undefined, clientAddress, error))
        .catch(() => undefined);
    }

    /** @Verify runs in the workers that own connections unread, unless a serverClass overrides verifyRequest. */
    protected verifiesHere(): boolean {
      return Base.prototype.verifyRequest !== BaseServer.prototype.verifyRequest;
    }

    handleTimeout(): unknown {
      return wiring.hasHook('handleTimeout') ? wiring.callServerHook('handleTimeout') : super.handleTimeout();
    }

    serviceActions(): Promise<void> | void {
      // Not async: without @ServiceActions (and a serverClass's own) the loop's turn costs no tick here.
      const base: Promise<void> | void = super.serviceActions();
      if (!wiring.hasHook('serviceActions')) return base;
      return Promise.resolve(base).then(() => wiring.callServerHook('serviceActions')).then(() => undefined);
    }
  }
  Object.defineProperty(AssembledServer, 'name', { value: Base.name });
  const server = new AssembledServer() as unknown as BaseServer<any, any>;
  return server;
}

/** The stages of the loop's turn that serving a datagram at once skips (BaseServer.serveForever). */
const LOOP_TURN = ['getRequest', 'verifyRequest', 'processRequest', 'serviceActions'] as const;

/** The stream transports' edge options (TLS, PROXY, limits), with @Concurrent({ maxConnections }) as limits.maxConnections. */
function edgeOptionsOf(def: HandlerDefinition): StreamServerOptions {
  const t = def.transport;
  if (t.kind !== 'tcp' && t.kind !== 'unix-stream') return {};
  const { tls, proxyProtocol } = t.options;
  let limits = t.options.limits;
  const c = def.concurrency;
  if (c.kind === 'concurrent' && c.options.maxConnections !== undefined) {
    // Two bounds that disagree: limits won, silently (hostile run); the same bound twice is fine.
    if (limits?.maxConnections !== undefined && limits.maxConnections !== c.options.maxConnections) {
      throw new ConfigurationError(messages.maxConnectionsTwice(def.handler.name, c.options.maxConnections, limits.maxConnections));
    }
    limits = { ...limits, maxConnections: c.options.maxConnections };
  }
  return { tls, proxyProtocol, limits };
}

/** A request's bytes in and out so far: the socket's counts, or a datagram and its reply. */
function bytesOf(request: unknown): [number, number] {
  if (Array.isArray(request)) return [(request as DatagramRequestTuple)[0].length, (request as DatagramRequestTuple).replyBytes ?? 0];
  return streamBytes(request as { bytesRead?: number; bytesWritten?: number });
}
