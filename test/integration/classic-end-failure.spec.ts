/**
 * A closeRequest or shutdownRequest override that throws, on the servers that run requests in the server's own
 * thread (serial and ConcurrentMixIn): each request is still ended exactly once (API.md §4), the failure is
 * logged, and the loop serves on, as the pools already did (classic-pool-end-failure.spec.ts).
 */
import * as net from 'node:net';
import { BaseServer, ConcurrentMixIn, StreamRequestHandler, TCPServer } from '../../src/classic';
import type { ClientAddress } from '../../src/classic';
import { streamExchange, within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

class Echo extends StreamRequestHandler {
  override async handle() { await this.wfile.write(await this.rfile.readline()); }
}

const servers = [
  ['TCPServer', TCPServer],
  ['ConcurrentMixIn(TCPServer)', ConcurrentMixIn(TCPServer)],
] as const;
const failures = [
  ['closeRequest', 'throws'],
  ['closeRequest', 'rejects'],
  ['shutdownRequest', 'throws'],
] as const;
const cases = servers.flatMap(([name, Base]) => failures.map(([hook, how]) => ({ name, Base, hook, how })));

describe.each(cases)('$name whose $hook $how', ({ Base, hook, how }) => {
  const serve = servingInTests();

  function failing(refuse: boolean) {
    const calls: string[] = [];
    const reported: unknown[] = [];
    class Failing extends Base {
      override verifyRequest() { return !refuse; }
      override shutdownRequest(request: net.Socket): Promise<void> {
        calls.push('shutdownRequest');
        const ended = super.shutdownRequest(request);
        if (hook === 'shutdownRequest') throw new Error('shutdownRequest failed');
        return ended;
      }
      override closeRequest(request: net.Socket): Promise<void> | void {
        calls.push('closeRequest');
        super.closeRequest(request);
        if (hook !== 'closeRequest') return;
        if (how === 'throws') throw new Error('closeRequest failed');
        return Promise.reject(new Error('closeRequest failed'));
      }
      override handleError(_r: unknown, _a: ClientAddress | undefined, error: unknown) { reported.push(error); }
    }
    const server = new Failing(['127.0.0.1', 0], Echo) as BaseServer<net.Socket, [string, number]>;
    const logger = memoryLogger();
    server.logger = logger as never;
    return { server, logger, calls, reported };
  }

  test.each([false, true])('ends each request once, logs the failure and serves on (verifyRequest refusing: %s)', async (refuse) => {
    const { server, logger, calls, reported } = failing(refuse);
    await server.ready;
    serve(server);
    let stopped: unknown;
    (serve.loopOf(server) as Promise<void>).catch((e: unknown) => { stopped = e; });
    const [host, port] = server.serverAddress;
    for (const line of ['one\n', 'two\n']) {
      const reply = String(await within(10000, 'the reply', streamExchange({ host, port }, line, { halfClose: true })));
      expect(reply).toBe(refuse ? '' : line);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Before: the serial server called the hook again after handleError (twice per request) and serveForever()
    // rejected with its error; with verifyRequest refusing, both servers' loops stopped at the first client.
    expect(stopped).toBeUndefined();
    expect(calls).toEqual(['shutdownRequest', 'closeRequest', 'shutdownRequest', 'closeRequest']);
    expect(reported).toEqual([]);
    expect(logger.lines.error).toEqual([
      expect.stringMatching(new RegExp(`error while ending a request: Error: ${hook} failed`)),
      expect.stringMatching(new RegExp(`error while ending a request: Error: ${hook} failed`)),
    ]);
  }, 30000);
});
