import type { ServerAddress } from '../../transports/address';

/**
 * `req.server` in a worker thread or child process: the running server's face as far as it reaches
 * here. `serverAddress` is the server's; `shutdown()` asks the server's process to shut down and
 * resolves at once (the server then waits for requests in flight, this one included, so awaiting the
 * whole shutdown here could never end). The rest belongs to the server's own process.
 */
export class WorkerServerFace {
  serverAddress: ServerAddress = { path: '' };

  constructor(private readonly ask: (call: 'shutdown') => void) {}

  shutdown(): Promise<void> {
    this.ask('shutdown');
    return Promise.resolve();
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
