import 'reflect-metadata';
import { Container, Inject, Injectable, Token } from '../../src/container';
import { InjectionError } from '../../src/errors/errors';

/** Stands in for @TcpServer and friends: any class decorator makes TypeScript emit design:paramtypes. */
const Server = (): ClassDecorator => () => undefined;

/** The InjectionError thrown by `fn`, as lines. */
function errorLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InjectionError);
    return (error as Error).message.split('\n');
  }
  throw new Error('expected an InjectionError, but nothing was thrown');
}

interface Config { greeting: string }
const CONFIG = new Token<Config>('Config');
const LOGGER = Symbol('Logger');

@Injectable()
class Greeter {}

@Server()
class EchoHandler {
  constructor(readonly greeter: Greeter, @Inject('Config') readonly config: Config) {}
}

describe('Container error messages', () => {
  it('names the class, the parameter and the provider to add for an unknown string token', () => {
    expect(errorLines(() => new Container().resolve(EchoHandler))).toEqual([
      `Cannot resolve parameter #1 of EchoHandler's constructor: no provider for token "Config". ` +
        `Fix: add { provide: 'Config', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`,
    ]);
  });

  it('explains that a symbol or a Token must be the same object in both places', () => {
    @Server()
    class Tokens {
      constructor(@Inject(LOGGER) readonly log: unknown, @Inject(CONFIG) readonly config: Config) {}
    }
    expect(errorLines(() => new Container().resolve(Tokens))).toEqual([
      `Cannot resolve parameter #0 of Tokens's constructor: no provider for token Symbol(Logger). ` +
        `Fix: add { provide: <that same symbol>, useValue: ... } to bootstrap's providers; each Symbol('Logger') ` +
        `call makes a new symbol, so export one constant and use it in both places.`,
    ]);
    expect(errorLines(() => new Container([{ provide: LOGGER, useValue: 1 }]).resolve(Tokens))).toEqual([
      `Cannot resolve parameter #1 of Tokens's constructor: no provider for token Token(Config). ` +
        `Fix: add { provide: <that same Token>, useValue: ... } to bootstrap's providers; each Token('Config') ` +
        `call makes a new Token, so export one constant and use it in both places.`,
    ]);
  });

  it('reports an unknown token asked for directly', () => {
    expect(errorLines(() => new Container().resolve('Port'))).toEqual([
      `Cannot resolve "Port": no provider is registered for this token. ` +
        `Fix: add { provide: 'Port', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`,
    ]);
    expect(errorLines(() => new Container().resolve(undefined as unknown as string))).toEqual([
      `container.resolve(): undefined is not a token; a token is a class, a string, a symbol or a Token ` +
        `(undefined here usually means a circular import). Fix: pass the class or the token its provider was registered with.`,
    ]);
  });

  it('asks for @Inject(token) on a parameter typed with an interface or a primitive', () => {
    @Server()
    class Typed {
      constructor(readonly greeter: Greeter, readonly config: Config, readonly port: number) {}
    }
    expect(errorLines(() => new Container().resolve(Typed))).toEqual([
      `Cannot resolve parameter #1 of Typed's constructor: its type is an interface, a union or another type that ` +
        `does not exist at runtime (design type Object). Fix: name the dependency with @Inject(token) on that ` +
        `parameter and register the token in bootstrap's providers.`,
    ]);
    @Server()
    class Port {
      constructor(readonly port: number) {}
    }
    expect(errorLines(() => new Container().resolve(Port))).toEqual([
      `Cannot resolve parameter #0 of Port's constructor: its type is Number, which the container does not build. ` +
        `Fix: name the dependency with @Inject(token) on that parameter and register the token in bootstrap's providers.`,
    ]);
  });

  it('asks for @Inject(token) on a parameter whose design type is undefined', () => {
    class Circular {
      constructor(readonly other: unknown) {}
    }
    // What TypeScript emits when the parameter's class is still undefined because of a circular import.
    Reflect.defineMetadata('design:paramtypes', [undefined], Circular);
    expect(errorLines(() => new Container().resolve(Circular))).toEqual([
      `Cannot resolve parameter #0 of Circular's constructor: its type does not exist at runtime (design type ` +
        `undefined: a type-only import, or a class not yet defined because of a circular import). Fix: name the ` +
        `dependency with @Inject(token) on that parameter and register the token in bootstrap's providers.`,
    ]);
  });

  it('says to enable emitDecoratorMetadata for a class without design:paramtypes', () => {
    class Undecorated {
      constructor(readonly greeter: Greeter) {}
    }
    expect(errorLines(() => new Container().resolve(Undecorated))).toEqual([
      `Cannot resolve parameter #0 of Undecorated's constructor: Undecorated has no design:paramtypes metadata, ` +
        `so its parameter types are unknown (TypeScript records them only for a decorated class compiled with ` +
        `emitDecoratorMetadata, after reflect-metadata is loaded). Fix: enable "emitDecoratorMetadata" in tsconfig.json ` +
        `(a handler class needs nothing more: its own decorators make TypeScript record the types; another class also needs ` +
        `@Injectable()), or name every parameter of Undecorated with @Inject(token).`,
    ]);
  });

  it('says to put @Injectable() on an undecorated dependency when the class that needs it has its types (emitDecoratorMetadata is on)', () => {
    class Plain {
      constructor(readonly greeter: Greeter) {}
    }
    @Injectable()
    class Needs {
      constructor(readonly plain: Plain) {}
    }
    const message = errorLines(() => new Container().resolve(Needs)).join('\n');
    expect(message).toContain('Plain has no design:paramtypes metadata. Other classes have theirs, so emitDecoratorMetadata is on');
    expect(message).toContain('Fix: put @Injectable() on Plain');
    expect(message).not.toContain('Fix: enable "emitDecoratorMetadata"'); // it was on: the new user was sent the wrong way
  });

  it('says to import reflect-metadata when Reflect.getMetadata is missing, and works again once restored', () => {
    const saved = Reflect.getMetadata;
    (Reflect as { getMetadata?: unknown }).getMetadata = undefined;
    try {
      expect(errorLines(() => new Container().resolve(EchoHandler))).toEqual([
        `Cannot resolve EchoHandler: Reflect.getMetadata is not a function, so the types of EchoHandler's ` +
          `constructor parameters cannot be read. Fix: add import 'reflect-metadata' once at the program's ` +
          `entry point, before any decorated class is loaded.`,
      ]);
    } finally {
      Reflect.getMetadata = saved;
    }
    expect(new Container([{ provide: 'Config', useValue: {} }]).resolve(EchoHandler)).toBeInstanceOf(EchoHandler);
  });

  it('says to import reflect-metadata when a decorator runs without it', () => {
    const saved = Reflect.defineMetadata;
    (Reflect as { defineMetadata?: unknown }).defineMetadata = undefined;
    try {
      class Early {}
      expect(errorLines(() => Injectable()(Early))).toEqual([
        `@Injectable() on Early: Reflect.defineMetadata is missing, so decorators cannot record anything. ` +
          `Fix: add import 'reflect-metadata' once at the program's entry point, before any decorated class is loaded.`,
      ]);
    } finally {
      Reflect.defineMetadata = saved;
    }
  });

  it('chains a failure deep in the graph, one indented level per constructor', () => {
    @Injectable()
    class Service {
      constructor(readonly greeter: Greeter, @Inject('Db') readonly db: unknown) {}
    }
    @Server()
    class Handler {
      constructor(readonly service: Service) {}
    }
    expect(errorLines(() => new Container().resolve(Handler))).toEqual([
      `Cannot resolve parameter #0 of Handler's constructor. Reason:`,
      `  Cannot resolve parameter #1 of Service's constructor: no provider for token "Db". ` +
        `Fix: add { provide: 'Db', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`,
    ]);
  });

  it('chains an error thrown by a dependency constructor and keeps it as the cause', () => {
    const boom = new TypeError('boom');
    @Injectable()
    class Exploding {
      constructor() { throw boom; }
    }
    @Server()
    class Handler {
      constructor(readonly exploding: Exploding) {}
    }
    let caught: unknown;
    try { new Container().resolve(Handler); } catch (e) { caught = e; }
    expect((caught as Error).message.split('\n')).toEqual([
      `Cannot resolve parameter #0 of Handler's constructor. Reason:`,
      `  TypeError: boom`,
    ]);
    expect((caught as Error).cause).toBe(boom);
  });

  it('shows a dependency cycle once, as the path from where it starts', () => {
    @Injectable()
    class Left {
      constructor(@Inject('Right') readonly right: unknown) {}
    }
    @Injectable()
    class Right {
      constructor(@Inject('Left') readonly left: Left) {}
    }
    @Server()
    class Handler {
      constructor(@Inject('Left') readonly left: Left) {}
    }
    const c = new Container([{ provide: 'Left', useClass: Left }, { provide: 'Right', useClass: Right }]);
    // The classes named too: the Fix named the tokens, not the constructors to change (hostile run).
    const cycle = `Cannot resolve "Left": dependency cycle "Left" (Left) -> "Right" (Right) -> "Left". Fix: break the cycle, ` +
      `for example by moving what Left and Right share into a third class that both inject.`;
    expect(errorLines(() => c.resolve('Left'))).toEqual([cycle]);
    expect(errorLines(() => c.resolve(Handler))).toEqual([
      `Cannot resolve parameter #0 of Handler's constructor. Reason:`,
      `  ${cycle}`,
    ]);
  });

  it('names the class of a token that asks for itself, in the Fix too', () => {
    @Injectable()
    class Cyc1 {
      constructor(@Inject('cyc2') readonly other: unknown) {}
    }
    expect(errorLines(() => new Container([{ provide: 'cyc2', useClass: Cyc1 }]).resolve('cyc2'))).toEqual([
      `Cannot resolve "cyc2": dependency cycle "cyc2" (Cyc1) -> "cyc2". Fix: remove the "cyc2" parameter ` +
        `from Cyc1's constructor; nothing can be built from itself.`,
    ]);
  });

  it('reports a class that asks for itself', () => {
    @Injectable()
    class Recursive {
      constructor(readonly self: Recursive) {}
    }
    expect(errorLines(() => new Container().resolve(Recursive))).toEqual([
      `Cannot resolve Recursive: dependency cycle Recursive -> Recursive. Fix: remove the Recursive parameter ` +
        `from Recursive's constructor; nothing can be built from itself.`,
    ]);
  });

  it('refuses a singleton that depends on a request-scoped class, even through a transient', () => {
    @Injectable({ scope: 'request' })
    class Session {}
    @Injectable({ scope: 'transient' })
    class Middle {
      constructor(readonly session: Session) {}
    }
    @Injectable()
    class Cache {
      constructor(readonly middle: Middle) {}
    }
    const c = new Container();
    expect(errorLines(() => c.createRequestScope().resolve(Cache))).toEqual([
      `Cannot resolve parameter #0 of Cache's constructor. Reason:`,
      `  Cannot resolve parameter #0 of Middle's constructor. Reason:`,
      `    Cannot resolve Cache: it is a singleton but depends on Session, which is request-scoped, so one ` +
        `request's Session would be kept for every request. Fix: give Cache scope 'request' ` +
        `(@Injectable({ scope: 'request' }) or the provider's scope), or make Session a singleton.`,
    ]);
  });

  it('refuses a request-scoped class resolved without a request scope', () => {
    @Injectable({ scope: 'request' })
    class Session {}
    expect(errorLines(() => new Container().resolve(Session))).toEqual([
      `Cannot resolve Session: it is request-scoped and no request scope was given. Fix: resolve it through ` +
        `container.createRequestScope().resolve(Session); bootstrap does this for every request.`,
    ]);
  });

  it('refuses a request scope from another container', () => {
    const scope = new Container().createRequestScope();
    expect(errorLines(() => new Container().resolve(Greeter, scope))).toEqual([
      `Cannot resolve Greeter: the request scope was created by another container. Fix: call ` +
        `createRequestScope() on the container you resolve from.`,
    ]);
  });

  it('refuses an async factory when it is registered, before any request (it failed at the first)', () => {
    expect(() => new Container([{ provide: 'Db', useFactory: async () => ({}) }])).toThrow(
      /useFactory is an async function, and its Promise would be the value.*Fix: await the value before bootstrap\(\) and register it with useValue/s,
    );
  });

  it('refuses a factory that returns a Promise and says to await it before bootstrap', () => {
    const c = new Container([{ provide: 'Db', useFactory: () => Promise.resolve({}) }]);
    expect(errorLines(() => c.resolve('Db'))).toEqual([
      `Cannot resolve "Db": its factory returned a Promise (or a value await takes for one: with a then method, or a then that throws when read), and the container resolves synchronously. ` +
        `Fix: await the value before bootstrap and register the result, { provide: "Db", useValue: await load() }.`,
    ]);
  });

  it('refuses what `await` would wait for: a function with a then method, an object whose then getter throws', () => {
    const callable = Object.assign(() => 1, { then: (ok: (v: number) => void) => ok(1) });
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    for (const value of [callable, revoked.proxy]) {
      const c = new Container([{ provide: 'Db', useFactory: () => value }]);
      expect(() => c.resolve('Db')).toThrow(InjectionError);
      expect(() => c.resolve('Db')).toThrow(/its factory returned a Promise \(or a value await takes for one: with a then method, or a then that throws when read\)/);
    }
  });

  it('names the factory and the inject position of a missing factory dependency', () => {
    const c = new Container([{ provide: 'Db', useFactory: (url: string) => url, inject: ['Url'] }]);
    expect(errorLines(() => c.resolve('Db'))).toEqual([
      `Cannot resolve inject[0] of the factory for "Db": no provider for token "Url". ` +
        `Fix: add { provide: 'Url', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`,
    ]);
  });
});
