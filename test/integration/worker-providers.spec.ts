import 'reflect-metadata';
import { bootstrap, ConfigurationError, Injectable, Server } from '../../src';
import { Loud, MemoryStore, ProvidedChild, ProvidedThread, Store } from '../fixtures/provided-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

/** Declared here and exported from nowhere: a worker could not load it. */
@Injectable()
class Unreachable extends Store {
  where() { return 'nowhere'; }
}

describe.each([
  { mode: 'thread', Handler: ProvidedThread, where: /^memory in thread [1-9]\d* HI$/ },
  { mode: 'child process', Handler: ProvidedChild, where: new RegExp(`^memory in process (?!${process.pid} )\\d+ HI$`) },
])('useClass providers in a $mode', ({ Handler, where }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test('are rebuilt in the worker from the modules that export them, class and string tokens alike', async () => {
    const s = serve(await bootstrap(Handler, { providers: [{ provide: Store, useClass: MemoryStore }, { provide: 'loud', useClass: Loud }] }));
    const a = s.serverAddress as { host: string; port: number };
    expect((await streamExchange(a, 'hi\n', { halfClose: true, ms: 10000 })).toString()).toMatch(where);
  });

  test('a class provided for itself needs no export: the worker builds it from its own decorators', async () => {
    @Injectable()
    class Clock {}
    const s = serve(await bootstrap(Handler, { providers: [Clock, { provide: Clock, useClass: Clock }, { provide: Store, useClass: MemoryStore }, { provide: 'loud', useClass: Loud }] }));
    expect(s.stats().workers.length).toBe(1);
  });

  test('a class no module exports, or a factory, is a ConfigurationError at bootstrap that says which and why', async () => {
    const unreachable = bootstrap(Handler, { providers: [{ provide: Store, useClass: Unreachable }, { provide: 'loud', useClass: Loud }] });
    await expect(unreachable).rejects.toBeInstanceOf(ConfigurationError);
    await expect(unreachable).rejects.toThrow(/provider for Store cannot be used in worker threads or child processes: Unreachable is not exported/);
    const factory = bootstrap(Handler, { providers: [{ provide: Store, useFactory: () => new MemoryStore() }, { provide: 'loud', useClass: Loud }] });
    await expect(factory).rejects.toThrow(/provider for Store cannot be used .*: a factory is a function of this process/);
  });
});
