/**
 * A client that resets during the reply of a handler whose @Finish writes a farewell: the reply's write fails
 * with the reset, then the farewell with the closed connection, and the request ends with an AggregateError of
 * the two. Both are the client's doing: one `clientErrors`, one `warn` line, no traceback and no `errors`
 * (API.md §14), in the server's process and where a worker reports it. It counted in `errors` with a traceback
 * (hostile re-check).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import { SerialFarewell, ThreadFarewell } from '../fixtures/farewell-handlers';
import { servingInTests } from '../helpers/serving';
import { eventually } from '../helpers/eventually';
import { within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';

describe.each([
  { mode: 'serial', handler: SerialFarewell },
  { mode: '@Threading', handler: ThreadFarewell },
])('$mode: a reset during the reply, with a farewell in @Finish', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('is one client error, logged in one warn line, not a handler error', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(handler, { logger }));
    const { port } = server.serverAddress as { port: number };
    await within(5000, 'the first bytes of the reply', new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('go\n'));
      c.on('error', () => undefined);
      c.once('data', () => {
        c.resetAndDestroy();
        resolve();
      });
    }));
    await eventually('the request to end', () => server.stats().clientErrors + server.stats().errors > 0 && server.stats().active === 0, 10000);
    expect(server.stats()).toMatchObject({ clientErrors: 1, errors: 0 });
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toHaveLength(1);
    expect(logger.lines.warn[0]).toMatch(/ECONNRESET|EPIPE/);
  }, 20000);
});
