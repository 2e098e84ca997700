import 'reflect-metadata';
import { Container, Inject, Injectable, Token } from '../../src/container';
import { InjectionError } from '../../src/errors/errors';

/** Stands in for @TcpServer and friends: any class decorator makes TypeScript emit design:paramtypes. */
const Server = (): ClassDecorator => () => undefined;

@Injectable()
class Clock {
  now() { return 42; }
}

@Injectable({ scope: 'transient' })
class Stopwatch {}

@Injectable({ scope: 'request' })
class RequestContext {
  static built = 0;
  readonly id = ++RequestContext.built;
}

@Injectable({ scope: 'request' })
class Repository {
  constructor(readonly ctx: RequestContext, readonly clock: Clock) {}
}

interface Config { greeting: string }
const CONFIG = new Token<Config>('Config');
const LOGGER = Symbol('Logger');

@Server()
class EchoHandler {
  constructor(
    readonly repo: Repository,
    readonly ctx: RequestContext,
    @Inject(CONFIG) readonly config: Config,
    @Inject(LOGGER) readonly log: string[],
    @Inject('Port') readonly port: number,
  ) {}
}

describe('Container scopes', () => {
  it('shares one singleton instance between resolves', () => {
    const c = new Container();
    expect(c.resolve(Clock)).toBeInstanceOf(Clock);
    expect(c.resolve(Clock)).toBe(c.resolve(Clock));
  });

  it('gives each container its own singletons', () => {
    expect(new Container().resolve(Clock)).not.toBe(new Container().resolve(Clock));
  });

  it('builds a transient class anew on every resolve', () => {
    const c = new Container();
    expect(c.resolve(Stopwatch)).not.toBe(c.resolve(Stopwatch));
  });

  it('treats an unregistered class without @Injectable as transient', () => {
    class Plain {}
    const c = new Container();
    expect(c.resolve(Plain)).not.toBe(c.resolve(Plain));
  });

  it('treats a registered class without @Injectable as a singleton unless the provider says otherwise', () => {
    class Plain {}
    class Other {}
    const c = new Container([Plain, { provide: Other, useClass: Other, scope: 'transient' }]);
    expect(c.resolve(Plain)).toBe(c.resolve(Plain));
    expect(c.resolve(Other)).not.toBe(c.resolve(Other));
  });

  it('accepts @Injectable bare as well as called', () => {
    @Injectable
    class Bare {}
    const c = new Container();
    expect(c.resolve(Bare)).toBe(c.resolve(Bare));
  });

  it('shares request-scoped instances within one scope and separates them across scopes', () => {
    const c = new Container([{ provide: CONFIG, useValue: { greeting: 'hi' } }, { provide: LOGGER, useValue: [] },
      { provide: 'Port', useValue: 9000 }]);
    const first = c.createRequestScope();
    const second = c.createRequestScope();
    const a = first.resolve(EchoHandler);
    const b = first.resolve(EchoHandler);
    const other = second.resolve(EchoHandler);
    expect(a).not.toBe(b);
    expect(a.ctx).toBe(a.repo.ctx);
    expect(b.ctx).toBe(a.ctx);
    expect(first.resolve(RequestContext)).toBe(a.ctx);
    expect(other.ctx).not.toBe(a.ctx);
    expect(other.repo.clock).toBe(a.repo.clock);
  });

  it('resolves an unregistered handler class with all its dependencies', () => {
    const log: string[] = [];
    const c = new Container([{ provide: CONFIG, useValue: { greeting: 'hi' } }, { provide: LOGGER, useValue: log },
      { provide: 'Port', useValue: 9000 }]);
    const handler = c.createRequestScope().resolve(EchoHandler);
    expect(handler).toBeInstanceOf(EchoHandler);
    expect(handler.repo.clock).toBe(c.resolve(Clock));
    expect(handler.config).toEqual({ greeting: 'hi' });
    expect(handler.log).toBe(log);
    expect(handler.port).toBe(9000);
  });

  it('resolves itself when asked for the Container', () => {
    const c = new Container();
    expect(c.resolve(Container)).toBe(c);
  });
});

describe('Container providers and tokens', () => {
  abstract class Greeter { abstract greet(name: string): string }
  @Injectable()
  class LoudGreeter extends Greeter {
    constructor(readonly clock: Clock) { super(); }
    greet(name: string) { return `HELLO ${name}`; }
  }
  @Injectable()
  class Greeting {
    constructor(readonly greeter: Greeter) {}
  }

  it('builds useClass in place of an abstract class token, with the useClass constructor dependencies', () => {
    const c = new Container([{ provide: Greeter, useClass: LoudGreeter }]);
    const g = c.resolve(Greeting);
    expect(g.greeter).toBeInstanceOf(LoudGreeter);
    expect(g.greeter.greet('bob')).toBe('HELLO bob');
    expect((g.greeter as LoudGreeter).clock).toBe(c.resolve(Clock));
  });

  it('hands out a useValue under a string, a symbol or a Token', () => {
    const config = { greeting: 'hi' };
    const c = new Container([{ provide: 'Config', useValue: config }, { provide: LOGGER, useValue: 'log' },
      { provide: CONFIG, useValue: config }]);
    expect(c.resolve('Config')).toBe(config);
    expect(c.resolve(LOGGER)).toBe('log');
    const typed: Config = c.resolve(CONFIG);
    expect(typed).toBe(config);
  });

  it('calls useFactory with its inject tokens, once for a singleton and on every resolve for a transient', () => {
    const once = jest.fn((config: Config, clock: Clock) => `${config.greeting} at ${clock.now()}`);
    const each = jest.fn(() => ({}));
    const c = new Container([
      { provide: CONFIG, useValue: { greeting: 'hi' } },
      { provide: 'Banner', useFactory: once, inject: [CONFIG, Clock] },
      { provide: 'Fresh', useFactory: each, scope: 'transient' },
    ]);
    expect(c.resolve('Banner')).toBe('hi at 42');
    expect(c.resolve('Banner')).toBe('hi at 42');
    expect(once).toHaveBeenCalledTimes(1);
    expect(c.resolve('Fresh')).not.toBe(c.resolve('Fresh'));
    expect(each).toHaveBeenCalledTimes(2);
  });

  it('a class resolved bare (transient, nothing to inject) follows a registration made after it', () => {
    class Plain {}
    const c = new Container();
    const scope = c.createRequestScope();
    expect(c.resolve(Plain)).toBeInstanceOf(Plain);
    expect(scope.resolve(Plain)).not.toBe(scope.resolve(Plain)); // still transient, in a scope too
    const fixed = new Plain();
    c.register({ provide: Plain, useValue: fixed });
    expect(c.resolve(Plain)).toBe(fixed);
    c.register({ provide: Plain, useClass: Plain, scope: 'singleton' });
    expect(c.resolve(Plain)).toBe(c.resolve(Plain));
    expect(c.resolve(Plain)).not.toBe(fixed);
  });

  it('a disposed or foreign scope is refused also for a class resolved bare before', async () => {
    class Plain {}
    const c = new Container();
    c.resolve(Plain);
    expect(() => c.resolve(Plain, new Container().createRequestScope())).toThrow(InjectionError);
    const scope = c.createRequestScope();
    await scope.dispose();
    expect(() => scope.resolve(Plain)).toThrow(InjectionError);
  });

  it('keeps the last registration of a token', () => {
    const c = new Container([{ provide: 'Port', useValue: 1 }]);
    c.register({ provide: 'Port', useValue: 2 });
    expect(c.resolve('Port')).toBe(2);
  });

  it('leaves a parameter with a default value to its default when its type names nothing', () => {
    @Injectable({ scope: 'transient' })
    class WithDefault {
      constructor(readonly clock: Clock, readonly retries: number = 3) {}
    }
    expect(new Container().resolve(WithDefault).retries).toBe(3);
  });

  it('builds a subclass without its own constructor from its parent constructor parameters', () => {
    class Child extends LoudGreeter {}
    expect(new Container().resolve(Child).clock).toBeInstanceOf(Clock);
  });

  it('builds a class without design:paramtypes when every parameter has @Inject', () => {
    class NoMetadata {
      constructor(readonly port: number) {}
    }
    Inject('Port')(NoMetadata, undefined, 0); // as a compiler without emitDecoratorMetadata leaves it
    expect(new Container([{ provide: 'Port', useValue: 7 }]).resolve(NoMetadata).port).toBe(7);
  });
});
