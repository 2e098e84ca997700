import 'reflect-metadata';
import { Container, Inject, Injectable } from '../../src/container';
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

@Injectable()
class Greeter {}

describe('Container provider and decorator validation', () => {
  const register = (provider: unknown) => () => new Container().register(provider as never);

  it('rejects a provider with none or several of useClass, useValue and useFactory', () => {
    expect(errorLines(register({ provide: 'A' }))).toEqual([
      `Invalid provider for "A": it has none of useClass, useValue, useFactory. ` +
        `Fix: give exactly one of useClass, useValue or useFactory.`,
    ]);
    expect(errorLines(register({ provide: 'A', useValue: 1, useFactory: () => 1 }))).toEqual([
      `Invalid provider for "A": it has useValue and useFactory. Fix: give exactly one of useClass, useValue or useFactory.`,
    ]);
  });

  it('rejects a provider whose token, scope, class or inject list is wrong', () => {
    expect(errorLines(register({ provide: 42, useValue: 1 }))).toEqual([
      `Invalid provider: provide is 42, but a token is a class, a string, a symbol or a Token. ` +
        `Fix: set provide to the token that constructors ask for.`,
    ]);
    expect(errorLines(register({ provide: 'A', useClass: Greeter, scope: 'global' }))).toEqual([
      `Provider for "A": scope "global" is not a scope. Fix: use 'singleton', 'transient' or 'request'.`,
    ]);
    expect(errorLines(register({ provide: 'A', useClass: new Greeter() }))).toEqual([
      `Invalid provider for "A": useClass is Greeter {}, not a class. Fix: pass the class itself, not an instance.`,
    ]);
    expect(errorLines(register({ provide: 'A', useValue: 1, inject: [] }))).toEqual([
      `Invalid provider for "A": inject is only read with useFactory. Fix: remove inject, or use useFactory.`,
    ]);
  });

  it('rejects a factory that takes more parameters than inject lists', () => {
    expect(errorLines(register({ provide: 'A', useFactory: (c: Container) => c }))).toEqual([
      `Invalid provider for "A": the factory takes 1 parameter(s) but inject lists 0 token(s). ` +
        `Fix: list one token per factory parameter in inject.`,
    ]);
  });

  it('rejects @Injectable with an unknown scope', () => {
    class Odd {}
    expect(errorLines(() => Injectable({ scope: 'global' as never })(Odd))).toEqual([
      `@Injectable() on Odd: scope "global" is not a scope. Fix: use 'singleton', 'transient' or 'request'.`,
    ]);
  });

  it('rejects @Inject with an undefined token, or on a method parameter', () => {
    class Target {
      method(_x: unknown) {}
    }
    expect(errorLines(() => Inject(undefined as never)(Target, undefined, 2))).toEqual([
      `@Inject(undefined) on parameter #2 of Target's constructor: a token is a class, a string, a symbol or a ` +
        `Token (undefined here usually means a circular import). Fix: pass a token that is defined when Target ` +
        `is declared, e.g. a Token constant exported from a module that does not import Target's module.`,
    ]);
    // A module namespace object (no prototype) and a Proxy whose traps throw: InjectionErrors that say what a token is,
    // not a TypeError from printing it or the trap's own error (hostile re-check).
    const trapped = new Proxy({}, { get() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } });
    for (const odd of [Object.create(null), trapped]) {
      expect(() => Inject(odd as never)(Target, undefined, 0)).toThrow(InjectionError);
      expect(() => Inject(odd as never)(Target, undefined, 0)).toThrow(/^@Inject\(.*\) on parameter #0 of Target's constructor: a token is a class, a string, a symbol or a Token\./);
    }
    // Providers whose reading throws, or whose fields cannot be printed: InjectionErrors that say so.
    const throwing = { provide: 'Config', get useValue(): unknown { throw new Error('the getter threw'); } };
    expect(() => new Container([throwing as never])).toThrow(InjectionError);
    expect(() => new Container([throwing as never])).toThrow(/^Invalid provider: reading it threw Error: the getter threw\. Fix: /);
    expect(() => new Container([{ provide: 'X', useClass: Object.create(null) } as never])).toThrow(/useClass is \[Object: null prototype\] \{\}, not a class/);
    expect(() => new Container([{ provide: 'X', useValue: 1, scope: 1n } as never])).toThrow(/scope 1 is not a scope/);
    expect(() => new Container([Object.create(null) as never])).toThrow(InjectionError);
    expect(errorLines(() => Inject('X')(Target.prototype, 'method', 0))).toEqual([
      `@Inject() on parameter #0 of Target.method: only constructor parameters are injected. ` +
        `Fix: take the dependency in Target's constructor.`,
    ]);
  });
});

describe('Container.validate', () => {
  let built: string[];
  beforeEach(() => { built = []; });

  @Injectable()
  class Db {
    constructor() { built.push('Db'); }
  }
  @Injectable({ scope: 'request' })
  class Session {
    constructor(readonly db: Db) { built.push('Session'); }
  }
  @Server()
  class Handler {
    constructor(readonly session: Session, @Inject('Config') readonly config: unknown) { built.push('Handler'); }
  }

  it('accepts a valid graph, request scope included, without constructing anything', () => {
    const c = new Container([{ provide: 'Config', useFactory: () => { built.push('Config'); return {}; } }]);
    expect(() => c.validate(Handler)).not.toThrow();
    expect(built).toEqual([]);
    c.createRequestScope().resolve(Handler);
    expect(built).toEqual(['Db', 'Session', 'Config', 'Handler']);
  });

  it('throws the error resolve would throw, without running any constructor', () => {
    const c = new Container();
    const fromValidate = errorLines(() => c.validate(Handler));
    expect(built).toEqual([]);
    expect(fromValidate).toEqual(errorLines(() => c.createRequestScope().resolve(Handler)));
    expect(fromValidate[0]).toBe(`Cannot resolve parameter #1 of Handler's constructor: no provider for token "Config". ` +
      `Fix: add { provide: 'Config', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`);
  });

  it('catches a cycle and a scope widening without building the classes involved', () => {
    @Injectable()
    class Ping {
      constructor(@Inject('Pong') readonly pong: unknown) { built.push('Ping'); }
    }
    @Injectable()
    class Holder {
      constructor(readonly session: Session) { built.push('Holder'); }
    }
    const c = new Container([{ provide: 'Pong', useFactory: (p: Ping) => p, inject: [Ping] }]);
    expect(errorLines(() => c.validate(Ping))[0]).toBe(
      `Cannot resolve Ping: dependency cycle Ping -> "Pong" -> Ping. Fix: break the cycle, for example by ` +
        `moving what Ping and "Pong" share into a third class that both inject.`);
    expect(errorLines(() => c.validate(Holder))[1]).toBe(
      `  Cannot resolve Holder: it is a singleton but depends on Session, which is request-scoped, so one ` +
        `request's Session would be kept for every request. Fix: give Holder scope 'request' ` +
        `(@Injectable({ scope: 'request' }) or the provider's scope), or make Session a singleton.`);
    expect(built).toEqual([]);
  });

  it('reports a missing reflect-metadata before binding', () => {
    const saved = Reflect.getMetadata;
    (Reflect as { getMetadata?: unknown }).getMetadata = undefined;
    try {
      expect(errorLines(() => new Container().validate(Handler))[0]).toMatch(
        /^Cannot resolve Handler: Reflect.getMetadata is not a function/);
    } finally {
      Reflect.getMetadata = saved;
    }
  });
});
