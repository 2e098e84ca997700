import { inspect } from 'node:util';
import type { ServerMetrics } from '../../observability/server-metrics';
import { describeServerAddress, type ServerAddress } from '../../transports/address';

/**
 * `req.server` in a worker thread or child process: the running server's face as far as it reaches
 * here. `serverAddress` is the server's. The rest belongs to the server's own process, except
 * `shutdown()`, which a request's own face (`forRequest`) carries: it asks the server's process to shut
 * down and resolves once every other request has finished, wherever it runs (API.md §6), never waiting
 * for the caller itself, as in the server's process.
 */
export class WorkerServerFace {
  serverAddress: ServerAddress = { path: '' };
  /** The handler class's name, as the server's own `handlerName`. */
  handlerName = '';
  /** @internal The worker's counters (its WorkerReporter's), where handlers' messages are counted. */
  counters: ServerMetrics | undefined;

  /** `ask(id)`: asks the server's process to shut down on behalf of request `id`; resolves when it has drained. */
  constructor(private readonly ask: (requestId: number) => Promise<void>) {}

  /** The request whose face this is (forRequest); undefined on the worker's own face. */
  private requestId: number | undefined;

  /**
   * The face of request `id`: this one, whose shutdown() says which request asked. One per request: an
   * object on this one with one field (a property descriptor per request cost microseconds a datagram).
   */
  forRequest(id: number): WorkerServerFace {
    const face = Object.create(this) as WorkerServerFace;
    face.requestId = id;
    return face;
  }

  /** Only through a request's face (forRequest): a shutdown must say which request not to wait for. */
  shutdown(): Promise<void> {
    if (this.requestId === undefined) return Promise.reject(elsewhere('shutdown() outside a request'));
    return this.ask(this.requestId);
  }

  serveForever(): Promise<void> {
    return Promise.reject(elsewhere('serveForever()'));
  }

  handleRequest(): Promise<unknown> {
    return Promise.reject(elsewhere('handleRequest()'));
  }

  close(): Promise<void> {
    return Promise.reject(elsewhere('close()'));
  }

  stats(): never {
    throw elsewhere('stats()');
  }

  /** As the server's: `host:port` or the Unix path, of `a` (by default the server's address). */
  describeAddress(a: ServerAddress = this.serverAddress): string {
    return describeServerAddress(a);
  }

  /** As the server's: `Echo on 127.0.0.1:9000` (it read `[object Object]` in a worker: new-user run). */
  toString(): string {
    return `${this.handlerName} on ${this.describeAddress()}`;
  }

  /** As the server's: `{ handler, address }`, not the worker's counters (all 0) and request id. */
  toJSON(): { handler: string; address: ServerAddress } {
    return { handler: this.handlerName, address: this.serverAddress };
  }

  [inspect.custom](): string {
    return `Server { handler: '${this.handlerName}', address: ${this.describeAddress()} }`;
  }
}

/** The error of a server member that `req.server` in a worker does not have (sockserve/testing says it too). */
export function elsewhere(member: string): Error {
  return new Error(`server.${member} is not available in a worker thread or child process: call it where bootstrap() ran. From a handler, server.shutdown() works everywhere.`);
}
