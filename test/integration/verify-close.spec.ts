/**
 * `req.close()` from @Verify ends the connection after the replies owed, in every mode: with @Threading over
 * plain TCP the main thread asks @Verify and a thread runs the message loop, and the close was lost there
 * (the client's messages were answered: hostile run).
 */
import 'reflect-metadata';
import { bootstrap, HandlerClass, Server } from '../../src';
import { GreetChildren, GreetConcurrent, GreetSerial, GreetThreads } from '../fixtures/verify-close-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

describe('req.close() in @Verify', () => {
  const serve = servingInTests<Server>();
  test.each([
    ['serial', GreetSerial],
    ['@Concurrent', GreetConcurrent],
    ['@Threading', GreetThreads],
    ['@Forking', GreetChildren],
  ] as Array<[string, HandlerClass]>)('%s: the greeting, then the close; nothing the client sent is answered', async (_mode, Handler) => {
    const s = serve(await bootstrap(Handler));
    const { host, port } = s.serverAddress as { host: string; port: number };
    expect(String(await streamExchange({ host, port }, 'a\nb\n', { ms: 10000 }))).toBe('WELCOME\n');
  });
});
