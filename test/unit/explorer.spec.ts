import 'reflect-metadata';
import { StreamRequestHandler } from '../../src/classic';
import {
  Concurrent,
  Finish,
  Forking,
  Handle,
  HandleError,
  HandleTimeout,
  ServiceActions,
  Setup,
  TcpServer,
  Threading,
  UdpServer,
  UnixDatagramServer,
  UnixStreamServer,
  Verify,
} from '../../src/decorators';
import { ConfigurationError } from '../../src/errors/errors';
import { explore } from '../../src/explorer/explorer';

function expectConfigurationError(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigurationError);
  expect((thrown as Error).message).toBe(message);
}

describe('explore() builds a definition', () => {
  it('for a TCP handler with no concurrency decorator, serving serially', () => {
    @TcpServer({ port: 9000, host: '127.0.0.1' })
    class EchoHandler {
      @Handle() handle() {}
    }
    expect(explore(EchoHandler)).toEqual({
      handler: EchoHandler,
      transport: { kind: 'tcp', options: { port: 9000, host: '127.0.0.1' } },
      concurrency: { kind: 'serial' },
      hooks: { handle: 'handle' },
      source: __filename,
    });
  });

  it('for a UDP handler with @Threading', () => {
    @UdpServer(0)
    @Threading({ threads: 2 })
    class EchoHandler {
      @Handle handle() {}
    }
    const definition = explore(EchoHandler);
    expect(definition.transport).toEqual({ kind: 'udp', options: { port: 0 } });
    expect(definition.concurrency).toEqual({ kind: 'threading', options: { threads: 2 } });
  });

  it('for a Unix stream handler with @Forking', () => {
    @Forking
    @UnixStreamServer('/tmp/echo.sock')
    class EchoHandler {
      @Handle() handle() {}
    }
    const definition = explore(EchoHandler);
    expect(definition.transport).toEqual({ kind: 'unix-stream', options: { path: '/tmp/echo.sock' } });
    expect(definition.concurrency).toEqual({ kind: 'forking', options: {} });
  });

  it('for a Unix datagram handler with @Concurrent', () => {
    @UnixDatagramServer({ path: '/tmp/echo.dgram', maxPacketSize: 1024 })
    @Concurrent({ maxConnections: 10 })
    class EchoHandler {
      @Handle() handle() {}
    }
    const definition = explore(EchoHandler);
    expect(definition.transport).toEqual({ kind: 'unix-dgram', options: { path: '/tmp/echo.dgram', maxPacketSize: 1024 } });
    expect(definition.concurrency).toEqual({ kind: 'concurrent', options: { maxConnections: 10 } });
  });

  it('with every lifecycle hook mapped to its method', () => {
    @TcpServer(0)
    class EchoHandler {
      @Verify() allow() {}
      @Setup() open() {}
      @Handle() serve() {}
      @Finish() close() {}
      @HandleError() oops() {}
      @HandleTimeout() idle() {}
      @ServiceActions() tick() {}
    }
    expect(explore(EchoHandler).hooks).toEqual({
      verify: 'allow',
      setup: 'open',
      handle: 'serve',
      finish: 'close',
      handleError: 'oops',
      handleTimeout: 'idle',
      serviceActions: 'tick',
    });
  });

  it('with a symbol-keyed @Handle method', () => {
    const serve = Symbol('serve');
    @TcpServer(0)
    class EchoHandler {
      @Handle() [serve]() {}
    }
    expect(explore(EchoHandler).hooks).toEqual({ handle: serve });
  });

  it('with one method serving two hooks', () => {
    @TcpServer(0)
    class EchoHandler {
      @Handle() handle() {}
      @Setup() @Finish() reset() {}
    }
    expect(explore(EchoHandler).hooks).toEqual({ handle: 'handle', setup: 'reset', finish: 'reset' });
  });
});

describe('explore() and inheritance', () => {
  class BaseHandler {
    @Setup() open() {}
    @Handle() handle() {}
    @Finish() close() {}
  }

  it('a subclass inherits the hooks of its base handler class', () => {
    @TcpServer(0)
    class EchoHandler extends BaseHandler {}
    expect(explore(EchoHandler).hooks).toEqual({ setup: 'open', handle: 'handle', finish: 'close' });
  });

  it("a subclass's own hook for the same name overrides the base's and keeps the others", () => {
    @TcpServer(0)
    class EchoHandler extends BaseHandler {
      @Handle() serveEcho() {}
      @Verify() allow() {}
    }
    expect(explore(EchoHandler).hooks).toEqual({
      handle: 'serveEcho',
      verify: 'allow',
      setup: 'open',
      finish: 'close',
    });
  });

  it('overriding a hook in a subclass leaves the base class definition unchanged', () => {
    @TcpServer(0)
    class Base {
      @Handle() handle() {}
    }
    @UdpServer(0)
    class Sub extends Base {
      @Handle() other() {}
    }
    expect(explore(Base).hooks).toEqual({ handle: 'handle' });
    expect(explore(Sub).hooks).toEqual({ handle: 'other' });
    expect(explore(Base).transport.kind).toBe('tcp');
    expect(explore(Sub).transport.kind).toBe('udp');
  });

  it('a subclass without class decorators uses its base class transport and concurrency', () => {
    @TcpServer(9000)
    @Threading
    class Base {
      @Handle() handle() {}
    }
    class Sub extends Base {}
    const definition = explore(Sub);
    expect(definition.handler).toBe(Sub);
    expect(definition.transport).toEqual({ kind: 'tcp', options: { port: 9000 } });
    expect(definition.concurrency).toEqual({ kind: 'threading', options: {} });
  });

  it('a subclass may fix a base class with two @Handle() methods by declaring its own', () => {
    class Broken {
      @Handle() a() {}
      @Handle() b() {}
    }
    @TcpServer(0)
    class Fixed extends Broken {
      @Handle() c() {}
    }
    expect(explore(Fixed).hooks).toEqual({ handle: 'c' });
  });
});

describe('explore() rejects', () => {
  it('a value that is not a class', () => {
    expectConfigurationError(
      () => explore(42),
      'The handler given, 42, is not a class. Fix: pass the decorated handler class itself, e.g. bootstrap(EchoHandler).',
    );
    expectConfigurationError(
      () => explore(() => undefined),
      'The handler given, function <anonymous>, is not a class. Fix: pass the decorated handler class itself, e.g. bootstrap(EchoHandler).',
    );
    expectConfigurationError(
      () => explore('EchoHandler'),
      'The handler given, "EchoHandler", is not a class. Fix: pass the decorated handler class itself, e.g. bootstrap(EchoHandler).',
    );
  });

  it('an instance instead of its class', () => {
    @TcpServer(0)
    class EchoHandler {
      @Handle() handle() {}
    }
    expectConfigurationError(
      () => explore(new EchoHandler()),
      'The handler given is an instance of EchoHandler, not a class. Fix: pass the class itself: bootstrap(EchoHandler), TestServer.create(EchoHandler).',
    );
  });

  it('a class with no transport decorator', () => {
    class EchoHandler {
      @Handle() handle() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has no transport decorator. Fix: add one of @TcpServer(port), @UdpServer(port), @UnixStreamServer(path) or @UnixDatagramServer(path).',
    );
  });

  it("a sockserve/classic request handler, bare, under a transport decorator or with @Handle(): a classic server serves it (the errors named a decorator, then @Handle(), then BaseRequestHandler's constructor)", () => {
    class LineHandler extends StreamRequestHandler {
      async handle() { await this.wfile.write(await this.rfile.readline()); }
    }
    @TcpServer(0) class Decorated extends LineHandler {}
    @TcpServer(0) class WithHandle extends LineHandler { @Handle() override async handle() {} }
    for (const handler of [LineHandler, Decorated, WithHandle]) {
      expectConfigurationError(
        () => explore(handler),
        `${handler.name} is a sockserve/classic request handler (it extends BaseRequestHandler): a classic server serves it (new ThreadingTCPServer(address, ${handler.name})), not bootstrap() or TestServer, which take decorated classes. Fix: test it against a classic server on port 0 (docs/classic.md), or port it to a decorated class with @Handle().`,
      );
    }
  });

  it('a class with two transport decorators', () => {
    @TcpServer(9000)
    @UdpServer(9000)
    class EchoHandler {
      @Handle() handle() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two transport decorators (@TcpServer and @UdpServer). Fix: keep exactly one.',
    );
  });

  it('a class with the same transport decorator twice', () => {
    @UnixStreamServer('/tmp/a.sock')
    @UnixStreamServer('/tmp/b.sock')
    @UnixStreamServer('/tmp/c.sock')
    class EchoHandler {
      @Handle() handle() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has three transport decorators (@UnixStreamServer, @UnixStreamServer and @UnixStreamServer). Fix: keep exactly one.',
    );
  });

  it('a class with two concurrency decorators', () => {
    @TcpServer(0)
    @Threading()
    @Forking
    class EchoHandler {
      @Handle() handle() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two concurrency decorators (@Threading and @Forking). Fix: keep at most one; with none, requests are served one at a time.',
    );
  });

  it('a class with neither @Handle() nor @OnMessage()', () => {
    @TcpServer(0)
    class EchoHandler {
      @Setup() open() {}
      handle() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has no @Handle() or @OnMessage() method. Fix: decorate the method that serves a request with @Handle(), ' +
        'or the one that answers each message with @OnMessage() (with @Framing).',
    );
  });

  it('a class with @Handle() on two methods', () => {
    @TcpServer(0)
    class EchoHandler {
      @Handle() handle() {}
      @Handle() serve() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two @Handle() methods (handle and serve). Fix: keep @Handle() on exactly one method of EchoHandler.',
    );
  });

  it('a class with two methods for the same other hook', () => {
    @TcpServer(0)
    class EchoHandler {
      @Handle() handle() {}
      @Setup() open() {}
      @Setup() prepare() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two @Setup() methods (open and prepare). Fix: keep @Setup() on exactly one method of EchoHandler.',
    );
  });

  it('two @Handle() methods before two methods of another hook, whatever the source order', () => {
    @TcpServer(0)
    class EchoHandler {
      @Finish() a() {}
      @Finish() b() {}
      @Handle() c() {}
      @Handle() d() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two @Handle() methods (c and d). Fix: keep @Handle() on exactly one method of EchoHandler.',
    );
  });

  it('a duplicate hook inherited from a base class, naming both classes', () => {
    class BaseHandler {
      @Handle() handle() {}
      @HandleError() log() {}
      @HandleError() count() {}
    }
    @TcpServer(0)
    class EchoHandler extends BaseHandler {}
    expectConfigurationError(
      () => explore(EchoHandler),
      'BaseHandler (inherited by EchoHandler) has two @HandleError() methods (log and count). Fix: keep @HandleError() on exactly one method of BaseHandler, or put @HandleError() on one method of EchoHandler to override it.',
    );
  });

  it('two symbol-keyed @Handle() methods, naming the symbols', () => {
    const a = Symbol('a');
    const b = Symbol('b');
    @TcpServer(0)
    class EchoHandler {
      @Handle() [a]() {}
      @Handle() [b]() {}
    }
    expectConfigurationError(
      () => explore(EchoHandler),
      'EchoHandler has two @Handle() methods ([Symbol(a)] and [Symbol(b)]). Fix: keep @Handle() on exactly one method of EchoHandler.',
    );
  });
});

describe('explore() without reflect-metadata', () => {
  it('says to import reflect-metadata at the entry point', () => {
    class EchoHandler {}
    const reflect = Reflect as unknown as Record<string, unknown>;
    const saved = reflect.getOwnMetadata;
    delete reflect.getOwnMetadata;
    try {
      expectConfigurationError(
        () => explore(EchoHandler),
        `EchoHandler: Reflect.defineMetadata is missing, so decorators cannot record anything. Fix: import 'reflect-metadata' once at the program's entry point, before any handler class is loaded.`,
      );
    } finally {
      reflect.getOwnMetadata = saved;
    }
  });
});
