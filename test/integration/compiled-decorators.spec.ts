/**
 * Handlers whose decorators were applied by a helper library, as TypeScript's `importHelpers` compiles
 * them (tslib's `__decorate`): workers still find the module that declares the class.
 */
import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import { TslibForked, TslibThreaded } from '../fixtures/tslib-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

describe('decorators applied through tslib (importHelpers)', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test.each([
    ['@Threading', TslibThreaded, 'thread'],
    ['@Forking', TslibForked, 'child'],
  ] as const)('%s loads the handler from its own module, not from tslib', async (_mode, handler, who) => {
    const s = serve(await bootstrap(handler));
    const { host, port } = s.serverAddress as { host: string; port: number };
    expect((await streamExchange({ host, port }, 'hi\n', { halfClose: true, ms: 15000 })).toString()).toBe(`${who} hi\n`);
  });
});
