/**
 * `req.close()` from @Verify ends the connection after the replies owed, in every mode: with @Threading over
 * plain TCP the main thread asks @Verify and a thread runs the message loop, and the close was lost there
 * (the client's messages were answered: hostile run).
 */
import 'reflect-metadata';
import { bootstrap, HandlerClass, Server } from '../../src';
import { GreetChildren, GreetConcurrent, GreetSerial, GreetThreads, Scoped } from '../fixtures/verify-close-handlers';
import { until } from '../fakes/fake-server';
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
    const [built, disposed] = [Scoped.built, Scoped.disposed];
    expect(String(await streamExchange({ host, port }, 'a\nb\n', { ms: 10000 }))).toBe('WELCOME\n');
    // Every request scope built in this process is disposed, @Verify's too where a worker runs the lifecycle
    // (one whose @Verify asked to close was left undisposed).
    await until(() => Scoped.disposed - disposed === Scoped.built - built, 5000);
  });
});
