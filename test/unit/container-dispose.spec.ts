import 'reflect-metadata';
import { Container, Injectable } from '../../src/container';
import { InjectionError } from '../../src/errors/errors';
import { disposeInReverse } from '../../src/container/dispose';

@Injectable({ scope: 'request' })
class RequestContext {}

describe('Container disposal', () => {
  function disposables(events: string[]) {
    @Injectable({ scope: 'request' })
    class AsyncOne {
      async [Symbol.asyncDispose]() {
        await new Promise((r) => setTimeout(r, 20));
        events.push('AsyncOne');
      }
    }
    @Injectable({ scope: 'request' })
    class SyncOne {
      constructor(readonly first: AsyncOne) {}
      [Symbol.dispose]() { events.push('SyncOne'); }
    }
    @Injectable({ scope: 'request' })
    class Plain {
      constructor(readonly second: SyncOne) {}
      dispose() { events.push('Plain'); }
    }
    return { AsyncOne, SyncOne, Plain };
  }

  it('awaits every request-scoped instance\'s dispose, last created first', async () => {
    const events: string[] = [];
    const { Plain } = disposables(events);
    const scope = new Container().createRequestScope();
    scope.resolve(Plain);
    await scope.dispose();
    expect(events).toEqual(['Plain', 'SyncOne', 'AsyncOne']);
    await scope.dispose();
    expect(events).toHaveLength(3);
  });

  it('disposes all instances before rethrowing the one error that occurred', async () => {
    const events: string[] = [];
    @Injectable({ scope: 'request' })
    class Broken {
      dispose() { throw new Error('broken'); }
    }
    @Injectable({ scope: 'request' })
    class Fine {
      constructor(readonly broken: Broken) {}
      dispose() { events.push('Fine'); }
    }
    const scope = new Container().createRequestScope();
    scope.resolve(Fine);
    scope.resolve(Fine);
    await expect(scope.dispose()).rejects.toThrow('broken');
    expect(events).toEqual(['Fine']);
  });

  it('collects several dispose errors into one AggregateError', async () => {
    @Injectable({ scope: 'request' })
    class BadA { async [Symbol.asyncDispose]() { throw new Error('a'); } }
    @Injectable({ scope: 'request' })
    class BadB {
      constructor(readonly a: BadA) {}
      [Symbol.dispose]() { throw new Error('b'); }
    }
    const scope = new Container().createRequestScope();
    scope.resolve(BadB);
    const error = await scope.dispose().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AggregateError);
    expect((error as AggregateError).errors.map((e: Error) => e.message)).toEqual(['b', 'a']);
    expect((error as AggregateError).message).toBe(
      'RequestScope.dispose(): 2 instances threw while being disposed; every instance was still disposed, and the errors are in .errors.');
  });

  it('disposes the singletons it built on container.dispose(), but neither useValue values nor transients', async () => {
    const events: string[] = [];
    @Injectable()
    class Pool { dispose() { events.push('Pool'); } }
    @Injectable()
    class Cache {
      constructor(readonly pool: Pool) {}
      async [Symbol.asyncDispose]() { await Promise.resolve(); events.push('Cache'); }
    }
    @Injectable({ scope: 'transient' })
    class Temp { dispose() { events.push('Temp'); } }
    const owned = { dispose: () => events.push('owned') };
    const c = new Container([
      { provide: 'Owned', useValue: owned },
      { provide: 'Made', useFactory: () => ({ dispose: () => events.push('Made') }) },
    ]);
    c.resolve('Owned');
    c.resolve(Cache);
    c.resolve(Temp);
    c.resolve('Made');
    await c.dispose();
    expect(events).toEqual(['Made', 'Cache', 'Pool']);
    expect(c.resolve(Cache)).toBeInstanceOf(Cache);
  });

  it('refuses to resolve through a request scope that was disposed', async () => {
    const scope = new Container().createRequestScope();
    await scope.dispose();
    expect(() => scope.resolve(RequestContext)).toThrow(new InjectionError(
      'Cannot resolve RequestContext: its request scope has been disposed. Fix: create a new scope with ' +
      'container.createRequestScope() for each request.'));
  });
});

describe('a dispose() that never settles', () => {
  class Db { dispose() { events.push('Db'); } }
  class Stuck { dispose() { events.push('Stuck began'); return new Promise<void>(() => undefined); } }
  class Cache { dispose() { events.push('Cache'); } }
  const events: string[] = [];

  it('is waited for at most the limit: the instances created before it are disposed, and its error says so (it stopped them all)', async () => {
    events.length = 0;
    const instances = [new Db(), new Stuck(), new Cache()];
    const t0 = performance.now();
    const disposed = disposeInReverse(instances, 'Container.dispose()', 100);
    await expect(disposed).rejects.toThrow("Container.dispose(): Stuck's dispose() did not settle within 0.1 s; the instances created before it were disposed meanwhile (it still runs).");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect(events).toEqual(['Cache', 'Stuck began', 'Db']);
  });

  it('within a total (a worker\'s 5 s), takes only its share of the time left, so the ones after it are disposed in time (the first hang took it all)', async () => {
    events.length = 0;
    const instances = [new Db(), new Stuck(), new Cache()];
    await expect(disposeInReverse(instances, 'Container.dispose()', { totalMs: 400 })).rejects.toThrow(/Stuck's dispose\(\) did not settle within 0\.2 s/);
    expect(events).toEqual(['Cache', 'Stuck began', 'Db']);
  });

  test("an instance whose disposer's lookup throws (a getter, a Proxy) fails in its turn, and the others are still disposed", async () => {
    // The lookup ran before any disposal, outside the try: its throw left every other instance undisposed (hostile run).
    const events: string[] = [];
    class A { dispose() { events.push('A'); } }
    class B { get dispose(): () => void { throw new Error('the dispose getter threw'); } }
    const proxy = new Proxy({}, { get() { throw new Error('the proxy threw'); } });
    class C { [Symbol.dispose]() { events.push('C'); } }
    const failure = disposeInReverse([new A(), new B(), proxy, new C()], 'Container.dispose()').then(() => undefined, (e: unknown) => e);
    const error = (await failure) as AggregateError;
    expect(events).toEqual(['C', 'A']);
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.errors.map((e: Error) => e.message)).toEqual(['the proxy threw', 'the dispose getter threw']);
  });
});
