import type { ServerAddress } from '../../transports/address';

/**
 * `req.server` in a worker thread or child process: the running server's face as far as it reaches
 * here. `serverAddress` is the server's. The rest belongs to the server's own process, except
 * `shutdown()`, which a request's own face (`forRequest`) carries: it asks the server's process to shut
 * down and resolves once every other request has finished, wherever it runs (API.md §6), never waiting
 * for the caller itself, as in the server's process.
 */
export class WorkerServerFace {
  serverAddress: ServerAddress = { path: '' };

  /** `ask(id)`: asks the server's process to shut down on behalf of request `id`; resolves when it has drained. */
  constructor(private readonly ask: (requestId: number) => Promise<void>) {}

  /** The face of request `id`: this one, whose shutdown() says which request asked. */
  forRequest(id: number): WorkerServerFace {
    return Object.create(this, { shutdown: { value: () => this.ask(id) } }) as WorkerServerFace;
  }

  /** Only through a request's face (forRequest): a shutdown must say which request not to wait for. */
  shutdown(): Promise<void> {
    return Promise.reject(elsewhere('shutdown() outside a request'));
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
}

function elsewhere(member: string): Error {
  return new Error(`server.${member} is not available in a worker thread or child process: call it where bootstrap() ran. From a handler, server.shutdown() works everywhere.`);
}
