import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import { ResetAfterLineConcurrent, ResetAfterLineForking, ResetAfterLineThreading } from '../fixtures/reset-after-line-handlers';
import { connect, within } from '../helpers/clients';
import { endpoint } from '../helpers/edge-clients';
import { eventually } from '../helpers/eventually';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

/**
 * A client that sends a whole line and resets while the handler is not reading yet (a slow @Setup): the line is
 * read first, then the reset, as Node's socket had read it. In workers the line was lost (the reset's error,
 * 3 of 3 on Node 20, 22 and 26: hostile run), where serial and @Concurrent read it.
 */
describe.each([
  { mode: '@Concurrent', handler: ResetAfterLineConcurrent },
  { mode: '@Threading', handler: ResetAfterLineThreading },
  { mode: '@Forking', handler: ResetAfterLineForking },
])('a line, then a reset, before the handler reads, in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('the handler reads the line', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(handler, { logger }));
    for (let i = 1; i <= 3; i++) {
      const client = await within(5000, 'connect', connect(endpoint(server)));
      client.on('error', () => undefined);
      client.write('hello\n');
      await new Promise((resolve) => setTimeout(resolve, 50)); // the line is in; the handler is still in @Setup
      client.resetAndDestroy();
      await eventually(`request ${i} to end`, () => server.stats().accepted === i && server.stats().active === 0, 5000);
    }
    expect([...logger.lines.error, ...logger.lines.warn]).toEqual([]);
    expect(server.stats()).toMatchObject({ errors: 0, clientErrors: 0 });
  });
});
