import { BaseServer } from '../classic/base-server';
import { UDPServer, UnixDatagramServer } from '../classic/datagram-servers';
import { isRoutineError } from '../classic/base-server';
import { StreamServerOptions, TCPServer, UnixStreamServer } from '../classic/stream-servers';
import { edgeMessages } from '../errors/edge.messages';
import { ProxyProtocolError, TlsHandshakeError } from '../errors/errors';
import type { ConcurrencyStrategy } from '../concurrency/strategy';
import type { Container } from '../container';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import type { HandlerDefinition, TransportDefinition } from '../metadata/definition';
import type { ClientAddress } from '../transports/address';
import type { DropKind } from '../transports/stream-listener';
import { HandlerWiring } from './handler-wiring';
import type { BootstrapOptions } from './options';
import type { Server, ServerCounters } from './server';
import { reportedInWorker } from '../concurrency/remote/protocol';

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
 * strategy, and the decorated hooks wired into the classic stages.
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
  const wiring = new HandlerWiring(def, container, face, remote, () => ({
    requestTimeout: server.requestTimeout,
    lineLimit: (server as unknown as TCPServer).lineLimit,
    lineTimeout: (server as unknown as TCPServer).lineTimeout,
  }));
  const routine = (error: unknown, clientAddress: ClientAddress | undefined) => edgeMessages.routine(error, clientAddress);

  // The base is one of four concrete classic classes (or a subclass): typed loosely here, checked above.
  const Concrete = Base as unknown as new (...args: any[]) => any;
  class AssembledServer extends Concrete {
    constructor() {
      super(address, wiring.handlerClass(), edgeOptionsOf(def));
      if (strategy) this.strategy = strategy;
      // The decorators' default is Node's 511, not Python's 5: a burst of clients must not stall in SYN retries.
      if (t.kind === 'tcp' || t.kind === 'unix-stream') this.requestQueueSize = t.options.backlog ?? DECORATOR_BACKLOG;
      if ('maxPacketSize' in t.options && t.options.maxPacketSize !== undefined) this.maxPacketSize = t.options.maxPacketSize;
      if (t.kind === 'tcp' && t.options.ipv6Only !== undefined) (this as unknown as TCPServer).ipv6Only = t.options.ipv6Only;
      if (options.timeout !== undefined) this.timeout = options.timeout;
      if (options.requestTimeout !== undefined) this.requestTimeout = options.requestTimeout;
      if (options.shutdownTimeout !== undefined) this.shutdownTimeout = options.shutdownTimeout;
    }

    async getRequest(): Promise<[unknown, ClientAddress]> {
      const got = await super.getRequest();
      counters.accepted++;
      return got;
    }

    async verifyRequest(request: object, clientAddress: ClientAddress): Promise<boolean> {
      const ok = (await super.verifyRequest(request, clientAddress)) && (!wiring.hasHook('verify') || (await wiring.verify(request, clientAddress)));
      if (!ok) counters.rejected++;
      return ok;
    }

    /** Limits, health checks, failed PROXY headers and TLS handshakes: counted apart, reported as routine. */
    async connectionDropped(kind: DropKind, clientAddress: ClientAddress, error?: unknown): Promise<void> {
      counters.accepted++;
      if (kind === 'rejected') counters.rejected++;
      else if (kind === 'health-check') counters.healthChecks++;
      else await this.handleError(undefined, clientAddress, error);
    }

    async handleError(request: unknown, clientAddress: ClientAddress | undefined, error: unknown): Promise<void> {
      if (reportedInWorker(error)) {
        counters.errors++;
        return; // its @HandleError ran in the worker where it arose
      }
      if (error instanceof TlsHandshakeError) counters.tlsErrors++;
      else if (error instanceof ProxyProtocolError) counters.proxyErrors++;
      else counters.errors++;
      if (wiring.hasHook('handleError')) {
        try {
          await wiring.callServerHook('handleError', error, clientAddress);
          return;
        } catch (hookError) {
          error = hookError; // a failing @HandleError is reported the default way, never lost
        }
      }
      if (isRoutineError(error) && options.logger) (options.logger.warn ?? options.logger.error).call(options.logger, routine(error, clientAddress));
      else if (options.logger) options.logger.error(messages.errorBlock(clientAddress, describe(error)));
      else await super.handleError(request, clientAddress, error);
    }

    handleTimeout(): unknown {
      return wiring.hasHook('handleTimeout') ? wiring.callServerHook('handleTimeout') : super.handleTimeout();
    }

    async serviceActions(): Promise<void> {
      await super.serviceActions();
      if (wiring.hasHook('serviceActions')) await wiring.callServerHook('serviceActions');
    }
  }
  Object.defineProperty(AssembledServer, 'name', { value: Base.name });
  const server = new AssembledServer() as unknown as BaseServer<any, any>;
  return server;
}

/** The stream transports' edge options (TLS, PROXY, limits), with @Concurrent({ maxConnections }) as limits.maxConnections. */
function edgeOptionsOf(def: HandlerDefinition): StreamServerOptions {
  const t = def.transport;
  if (t.kind !== 'tcp' && t.kind !== 'unix-stream') return {};
  const { tls, proxyProtocol } = t.options;
  let limits = t.options.limits;
  const c = def.concurrency;
  if (c.kind === 'concurrent' && c.options.maxConnections !== undefined && limits?.maxConnections === undefined) {
    limits = { ...limits, maxConnections: c.options.maxConnections };
  }
  return { tls, proxyProtocol, limits };
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? String(error)) : String(error);
}
