import 'reflect-metadata';
import { runNode } from '../helpers/fixture-process';
import * as path from 'node:path';
import { bootstrap, ConfigurationError, Injectable, Server } from '../../src';
import { Loud, MemoryStore, ProvidedChild, ProvidedThread, Store, ValueChild, ValueThread } from '../fixtures/provided-handlers';
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

class DbPool {
  size = 4;
  constructor(readonly url: string) {}
  query() { return this.url; }
}

describe.each([
  { mode: 'thread', Handler: ValueThread },
  { mode: 'child process', Handler: ValueChild },
])('useValue providers in a $mode', ({ Handler }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test('a class instance, anywhere in the value, is a ConfigurationError naming where: a copy would lose its class (new-user run: bootstrap passed, the handler got a plain object without query())', async () => {
    for (const [value, where] of [
      [new DbPool('pg://x'), 'the value is a DbPool instance'],
      [{ pools: [1, { db: new DbPool('pg://y') }] }, 'the value.pools[1].db is a DbPool instance'],
      [new Map([['main', new DbPool('pg://z')]]), 'the value.get("main") is a DbPool instance'],
      [{ fallback: new Error('x', { cause: new DbPool('pg://c') }) }, 'the value.fallback.cause is a DbPool instance'],
    ] as const) {
      const started = bootstrap(Handler, { providers: [{ provide: 'value', useValue: value }] });
      await expect(started).rejects.toBeInstanceOf(ConfigurationError);
      await expect(started).rejects.toThrow(`the provider for "value" cannot be used in worker threads or child processes: ${where}, which a worker would get as a copy of its fields without its class`);
    }
    // A Buffer inside the value arrives as a Uint8Array: said as such.
    await expect(bootstrap(Handler, { providers: [{ provide: 'value', useValue: { key: Buffer.from('k') } }] })).rejects.toThrow(
      'the value.key is a Buffer, which a worker would get as a plain Uint8Array (only a Buffer given as the whole value is made a Buffer again)',
    );
  });

  test('a Buffer value arrives as a Buffer; plain data (objects, arrays, Maps, Dates) as it is', async () => {
    const s = serve(await bootstrap(Handler, { providers: [{ provide: 'value', useValue: Buffer.from('secret') }] }));
    const a = s.serverAddress as { host: string; port: number };
    // A structured clone gave a Uint8Array, whose String() is '115,101,…'.
    expect((await streamExchange(a, 'hi\n', { halfClose: true, ms: 10000 })).toString()).toBe('true secret');
    const plain = { n: 1, at: new Date(), m: new Map([[1, [2]]]), s: new Set(['x']), big: Object(1n), none: Object.create(null) };
    await expect(bootstrap(Handler, { providers: [{ provide: 'value', useValue: plain }] }).then((t) => t.close())).resolves.toBeUndefined();
    // A SharedArrayBuffer is shared with threads; a child process cannot get one: refused at bootstrap(), saying so.
    const shared = bootstrap(Handler, { providers: [{ provide: 'value', useValue: { shared: new SharedArrayBuffer(8) } }] });
    if (Handler === ValueThread) await expect(shared.then((t) => t.close())).resolves.toBeUndefined();
    else await expect(shared).rejects.toThrow(/the provider for "value" cannot be used in worker threads or child processes: its value cannot be copied to a child process/);
  });
});

describe('an ES module whose worker handler gets a provider class it does not export', () => {
  test('the error names the provider class and says to export it, not the handler\'s Fix (new-user run)', async () => {
    const fixture = path.join(__dirname, '..', 'fixtures', 'esm', 'unexported-provider.mjs');
    const { code, stdout, stderr } = await runNode([fixture]);
    expect(stdout).not.toContain('started');
    expect(code).toBe(1);
    // Before: "Hidden is no longer exported from …", then the handler's Fix (declare it in a module that loads alone).
    expect(stderr).toContain('ConfigurationError: UsesHidden: the threading worker could not load the handler and its providers. Reason:');
    expect(stderr).toContain(`the useClass of the provider for "db", Hidden, is not exported from ${fixture}, and a worker loads it from there by name. Fix: export it from that module (export class Hidden …).`);
    expect(stderr).not.toContain('no longer exported');
  }, 70000);
});

describe('an ES module whose worker handler gets a provider class exported under another name', () => {
  test('the worker finds it by its class name (it said the class was not exported: hostile re-check)', async () => {
    const { code, stdout, stderr } = await runNode([path.join(__dirname, '..', 'fixtures', 'esm', 'aliased-provider.mjs')]);
    expect(stderr).toBe('');
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'reply impl\n' });
  }, 70000);
});
