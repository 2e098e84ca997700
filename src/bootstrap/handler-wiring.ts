import type * as net from 'node:net';
import { BaseRequestHandler, DatagramRequestTuple } from '../classic/request-handler';
import { readerFor } from '../classic/reader-registry';
import type { Container, RequestScope } from '../container';
import { callHook, runDecorated } from '../lifecycle/run-decorated';
import type { HandlerDefinition, HookName } from '../metadata/definition';
import type { ClientAddress } from '../transports/address';
import { StreamReader } from '../transports/stream-reader';
import { BufferWriter, StreamWriter } from '../transports/stream-writer';
import { AnyRequest, DatagramRequest, StreamRequest } from './request-objects';
import type { Server } from './server';

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
  private readonly contexts = new WeakMap<object, RequestContext>();
  private serverLevel: Hooked | undefined;

  constructor(
    private readonly def: HandlerDefinition,
    private readonly container: Container,
    private readonly face: Server,
    /** The lifecycle runs in a worker: the main thread's instance serves @Verify only. */
    private readonly remote: boolean,
    private readonly readerOptions: () => { requestTimeout: number | null; lineLimit?: number },
  ) {}

  hasHook(name: HookName): boolean {
    return this.def.hooks[name] !== undefined;
  }

  /** @Verify, in the main thread, before anything else; builds the request's handler on the way. */
  async verify(request: object, clientAddress: ClientAddress): Promise<boolean> {
    const ctx = this.begin(request, clientAddress);
    try {
      const ok = Boolean(await this.call(ctx.instance, 'verify', clientAddress, ctx.req));
      if (!ok || this.remote) await this.end(request);
      return ok;
    } catch (err) {
      await this.end(request);
      throw err;
    }
  }

  /** A server-level hook (@HandleError, @HandleTimeout, @ServiceActions) on one lazily built instance. */
  callServerHook(name: 'handleError' | 'handleTimeout' | 'serviceActions', ...args: unknown[]): unknown {
    // Its own long-lived scope, so a handler with request-scoped dependencies can still have server-level hooks.
    this.serverLevel ??= this.container.createRequestScope().resolve(this.def.handler) as Hooked;
    return this.call(this.serverLevel, name, ...args);
  }

  /** The classic handler class the server builds per request: it runs the decorated lifecycle. */
  handlerClass(): new (request: any, clientAddress: ClientAddress, server: unknown) => BaseRequestHandler {
    const wiring = this;
    return class DecoratedRequestHandler extends BaseRequestHandler {
      override async run(): Promise<void> {
        await wiring.runRequest(this.request as object, this.clientAddress);
      }
    };
  }

  private async runRequest(request: object, clientAddress: ClientAddress): Promise<void> {
    const ctx = this.contexts.get(request) ?? this.begin(request, clientAddress);
    try {
      const { instance, req } = ctx;
      await runDecorated(this.def, instance, req);
      if (req instanceof DatagramRequest && req.wfile.length > 0) {
        await (request as DatagramRequestTuple)[1].send(req.wfile.getValue(), clientAddress);
      }
    } finally {
      await this.end(request);
    }
  }

  private begin(request: object, clientAddress: ClientAddress): RequestContext {
    const scope = this.container.createRequestScope();
    try {
      const instance = scope.resolve(this.def.handler) as Hooked;
      const ctx = { scope, instance, req: this.requestObject(request, clientAddress) };
      this.contexts.set(request, ctx);
      return ctx;
    } catch (err) {
      void scope.dispose();
      throw err;
    }
  }

  private async end(request: object): Promise<void> {
    const ctx = this.contexts.get(request);
    this.contexts.delete(request);
    await ctx?.scope.dispose();
  }

  private requestObject(request: object, clientAddress: ClientAddress): AnyRequest {
    if (Array.isArray(request)) {
      const [data] = request as DatagramRequestTuple;
      const truncated = (request as DatagramRequestTuple).truncated;
      return new DatagramRequest(data, truncated, StreamReader.fromBuffer(data), new BufferWriter(), clientAddress, this.face);
    }
    const socket = request as net.Socket;
    // Remote: the worker reads the connection; @Verify in the main thread gets an empty rfile.
    const rfile = this.remote ? StreamReader.fromBuffer(Buffer.alloc(0)) : readerFor(socket, this.readerOptions());
    return new StreamRequest(rfile, new StreamWriter(socket), clientAddress, this.face, socket);
  }

  private call(instance: Hooked, hook: HookName, ...args: unknown[]): unknown {
    return callHook(this.def, instance, hook, ...args);
  }
}
