import { within } from './clients';

export interface Serving {
  serveForever(pollInterval?: number): Promise<void>;
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Registers an afterEach that shuts down, closes and awaits (bounded) every server the test started
 * through the returned `serve()`, then runs `after` on it (e.g. to check that no worker is left).
 * `serve.loopOf(server)` is that server's serveForever() promise.
 */
export function servingInTests<S extends Serving = Serving>(after?: (server: S) => void) {
  const running: Array<[S, Promise<void>]> = [];
  afterEach(async () => {
    for (const [server, loop] of running.splice(0)) {
      await within(10000, 'shutdown', server.shutdown());
      await server.close();
      await within(10000, 'the serve loop to exit', loop);
      after?.(server);
    }
  });
  const serve = <T extends S>(server: T, pollInterval = 0.05): T => {
    running.push([server, server.serveForever(pollInterval)]);
    return server;
  };
  /** The promise serveForever() returned for a server this test serves: for tests about the loop itself. */
  const loopOf = (server: S): Promise<void> => running.find(([s]) => s === server)![1];
  return Object.assign(serve, { loopOf });
}
