import 'reflect-metadata';
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
import type { ThreadingOptions, TcpServerOptions } from '../../src/metadata/definition';
import { getConcurrencies, getHooks, getTransports } from '../../src/metadata/reflection';

/** Runs `fn` and checks that it throws a ConfigurationError with exactly `message`. */
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

/** Applies a class decorator to a fresh class named `name`, as `@decorator class name {}` would. */
function decorate(decorator: ClassDecorator, name = 'EchoHandler'): Function {
  const cls = { [name]: class {} }[name];
  decorator(cls);
  return cls;
}

/** Misuse that TypeScript rejects, to check what plain-JavaScript users get at run time. */
const anyDecorator = (d: unknown) => d as (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => void;

describe('transport decorators', () => {
  it('@TcpServer(port) records a tcp transport with only the port', () => {
    const cls = decorate(TcpServer(9000));
    expect(getTransports(cls)).toEqual([
      { decorator: '@TcpServer', definition: { kind: 'tcp', options: { port: 9000 } }, owner: cls, source: __filename },
    ]);
  });

  it('@TcpServer(options) records every option given and fills in no defaults', () => {
    const options: TcpServerOptions = { port: 0, host: '::1', backlog: 128, reuseAddress: false, ipv6Only: true };
    const cls = decorate(TcpServer(options));
    expect(getTransports(cls)[0].definition).toEqual({ kind: 'tcp', options });
    expect(getTransports(decorate(TcpServer({ port: 1, host: undefined })))[0].definition).toEqual({
      kind: 'tcp',
      options: { port: 1 },
    });
  });

  it('@TcpServer keeps a copy, so later changes to the options object do not leak in', () => {
    const options = { port: 9000 };
    const cls = decorate(TcpServer(options));
    options.port = 1;
    expect(getTransports(cls)[0].definition.options).toEqual({ port: 9000 });
  });

  it('@UdpServer records a udp transport from a port or an options object', () => {
    expect(getTransports(decorate(UdpServer(53)))[0].definition).toEqual({ kind: 'udp', options: { port: 53 } });
    const options = { port: 0, host: '::1', maxPacketSize: 65507 };
    expect(getTransports(decorate(UdpServer(options)))[0].definition).toEqual({ kind: 'udp', options });
  });

  it('@UdpServer accepts IPv6\'s largest payload, 65527 bytes, on an IPv6 host', () => {
    const options = { port: 0, host: '::', maxPacketSize: 65527 };
    expect(getTransports(decorate(UdpServer(options)))[0].definition).toEqual({ kind: 'udp', options });
  });

  it('@UnixStreamServer records a unix-stream transport from a path or an options object', () => {
    expect(getTransports(decorate(UnixStreamServer('/tmp/a.sock')))[0].definition).toEqual({
      kind: 'unix-stream',
      options: { path: '/tmp/a.sock' },
    });
    const options = { path: 'rel.sock', backlog: 10 };
    expect(getTransports(decorate(UnixStreamServer(options)))[0].definition).toEqual({ kind: 'unix-stream', options });
  });

  it('@UnixDatagramServer records a unix-dgram transport from a path or an options object', () => {
    expect(getTransports(decorate(UnixDatagramServer('/tmp/d.sock')))[0].definition).toEqual({
      kind: 'unix-dgram',
      options: { path: '/tmp/d.sock' },
    });
    const options = { path: '/tmp/d.sock', maxPacketSize: 60000 };
    expect(getTransports(decorate(UnixDatagramServer(options)))[0].definition).toEqual({ kind: 'unix-dgram', options });
  });

  it('a path of 107 bytes is accepted, the longest sun_path allows', () => {
    const path = '/tmp/' + 'x'.repeat(102);
    expect(getTransports(decorate(UnixStreamServer(path)))[0].definition.options).toEqual({ path });
  });

  it('an abstract name of 108 bytes, its leading NUL included, is accepted for a stream socket: it needs no terminating NUL (Linux)', () => {
    const path = '\0' + 'a'.repeat(107);
    expect(getTransports(decorate(UnixStreamServer(path)))[0].definition.options).toEqual({ path });
  });

  it('a datagram socket takes no abstract name: node-unix-socket binds it padded with NULs to 108 bytes, which no other client reaches (hostile run)', () => {
    for (const path of ['\0echo', '\0' + 'a'.repeat(106)]) {
      expect(() => decorate(UnixDatagramServer(path))).toThrow(ConfigurationError);
      expect(() => decorate(UnixDatagramServer(path))).toThrow(/^@UnixDatagramServer on EchoHandler: path ".*" is a name in Linux's abstract namespace, which a Unix datagram server cannot take: .* Fix: give a Unix datagram server a filesystem path/);
    }
  });

  it('two transport decorators on one class are both recorded, in source order, for the explorer to reject', () => {
    @TcpServer(1)
    @UdpServer(2)
    class EchoHandler {}
    expect(getTransports(EchoHandler).map((t) => t.decorator)).toEqual(['@TcpServer', '@UdpServer']);
  });

  describe('reject bad arguments at decoration time', () => {
    const cases: Array<[string, () => unknown, string]> = [
      [
        'a port above 65535',
        () => decorate(TcpServer(70000)),
        '@TcpServer on EchoHandler: port 70000 is not an integer from 0 to 65535. Fix: pass a port in that range, or 0 to let the OS pick.',
      ],
      [
        'a negative port',
        () => decorate(UdpServer({ port: -1 })),
        '@UdpServer on EchoHandler: port -1 is not an integer from 0 to 65535. Fix: pass a port in that range, or 0 to let the OS pick.',
      ],
      [
        'a fractional port',
        () => decorate(TcpServer(80.5)),
        '@TcpServer on EchoHandler: port 80.5 is not an integer from 0 to 65535. Fix: pass a port in that range, or 0 to let the OS pick.',
      ],
      [
        'a port given as a string inside the options (read from process.env): the message says it is one',
        () => decorate(TcpServer({ port: '9000' as unknown as number })),
        '@TcpServer on EchoHandler: port "9000" is not an integer from 0 to 65535 (a string: pass the number, Number("9000"), as values read from process.env must be). Fix: pass a port in that range, or 0 to let the OS pick.',
      ],
      [
        'options without a port',
        () => decorate(TcpServer({ host: 'localhost' } as TcpServerOptions)),
        '@TcpServer on EchoHandler: the port option is missing; it must be an integer from 0 to 65535. Fix: pass a port in that range, or 0 to let the OS pick.',
      ],
      [
        'an argument that is neither a port nor an options object',
        () => decorate(TcpServer('9000' as unknown as number)),
        '@TcpServer on EchoHandler: expected a port number or an options object, got "9000". Fix: write @TcpServer(9000) or @TcpServer({ port: 9000 }).',
      ],
      [
        'an empty host',
        () => decorate(TcpServer({ port: 1, host: '' })),
        `@TcpServer on EchoHandler: host "" is not a non-empty string. Fix: pass a host name or address such as '127.0.0.1' or '::1', or leave host out for the default '127.0.0.1'.`,
      ],
      [
        'a zero backlog',
        () => decorate(TcpServer({ port: 1, backlog: 0 })),
        '@TcpServer on EchoHandler: backlog 0 is not a positive integer. Fix: pass how many pending connections the kernel may queue, such as 128, or leave backlog out for the default 511.',
      ],
      [
        'a reuseAddress that is not a boolean',
        () => decorate(TcpServer({ port: 1, reuseAddress: 'yes' as unknown as boolean })),
        '@TcpServer on EchoHandler: reuseAddress "yes" is not a boolean. Fix: pass true or false, or leave reuseAddress out for the default true.',
      ],
      [
        'an ipv6Only that is not a boolean',
        () => decorate(TcpServer({ port: 1, ipv6Only: 1 as unknown as boolean })),
        '@TcpServer on EchoHandler: ipv6Only 1 is not a boolean. Fix: pass true or false, or leave ipv6Only out.',
      ],
      [
        'an unknown option',
        () => decorate(TcpServer({ port: 1, hostname: 'x' } as TcpServerOptions)),
        '@TcpServer on EchoHandler: unknown option "hostname". Fix: use only port, host, backlog, reuseAddress, ipv6Only, tls, proxyProtocol and limits.',
      ],
      [
        'a UDP maxPacketSize above the largest UDP payload',
        () => decorate(UdpServer({ port: 1, maxPacketSize: 65508 })),
        '@UdpServer on EchoHandler: maxPacketSize 65508 is not an integer from 1 to 65507 over IPv4, or to 65527 over IPv6 (the largest UDP payloads). Fix: pass a size in that range, or leave maxPacketSize out for the default 8192.',
      ],
      [
        'a UDP maxPacketSize above the IPv4 payload limit on an IPv4 host',
        () => decorate(UdpServer({ port: 1, host: '0.0.0.0', maxPacketSize: 65527 })),
        '@UdpServer on EchoHandler: maxPacketSize 65527 is not an integer from 1 to 65507 over IPv4, or to 65527 over IPv6 (the largest UDP payloads). Fix: pass a size in that range, or leave maxPacketSize out for the default 8192.',
      ],
      [
        'a UDP maxPacketSize above the IPv6 payload limit',
        () => decorate(UdpServer({ port: 1, host: '::1', maxPacketSize: 65528 })),
        '@UdpServer on EchoHandler: maxPacketSize 65528 is not an integer from 1 to 65507 over IPv4, or to 65527 over IPv6 (the largest UDP payloads). Fix: pass a size in that range, or leave maxPacketSize out for the default 8192.',
      ],
      [
        'an empty Unix socket path',
        () => decorate(UnixStreamServer('')),
        `@UnixStreamServer on EchoHandler: path "" is not a non-empty string. Fix: pass a filesystem path for the socket, such as '/tmp/echo.sock'.`,
      ],
      [
        'a Unix socket path of 108 bytes',
        () => decorate(UnixDatagramServer('/tmp/' + 'x'.repeat(103))),
        `@UnixDatagramServer on EchoHandler: path "/tmp/${'x'.repeat(103)}" is 108 bytes long, and a Unix socket path must be shorter than 108 bytes (sun_path). Fix: use a shorter path, for example in os.tmpdir() or relative to the working directory.`,
      ],
      [
        'an abstract Unix socket name of 109 bytes',
        () => decorate(UnixStreamServer('\0' + 'a'.repeat(108))),
        `@UnixStreamServer on EchoHandler: path "\\u0000${'a'.repeat(108)}" is 109 bytes long, and a Unix socket path must be shorter than 108 bytes, an abstract name ('\\0name') at most 108 (sun_path). Fix: use a shorter path, for example in os.tmpdir() or relative to the working directory.`,
      ],
      [
        'a Unix socket path given as a number',
        () => decorate(UnixStreamServer(42 as unknown as string)),
        `@UnixStreamServer on EchoHandler: expected a socket path or an options object, got 42. Fix: write @UnixStreamServer('/tmp/echo.sock') or @UnixStreamServer({ path: '/tmp/echo.sock' }).`,
      ],
      [
        'a zero Unix backlog',
        () => decorate(UnixStreamServer({ path: '/tmp/s', backlog: 0 })),
        '@UnixStreamServer on EchoHandler: backlog 0 is not a positive integer. Fix: pass how many pending connections the kernel may queue, such as 128, or leave backlog out for the default 511.',
      ],
      [
        'a zero Unix datagram maxPacketSize',
        () => decorate(UnixDatagramServer({ path: '/tmp/d', maxPacketSize: 0 })),
        '@UnixDatagramServer on EchoHandler: maxPacketSize 0 is not an integer from 1 to 65534. Fix: pass a size in bytes in that range (node-unix-socket reads at most 65535 bytes of a datagram, so a longer one could not be told truncated), or leave maxPacketSize out for the default 8192.',
      ],
    ];
    it.each(cases)('rejects %s', (_name, fn, message) => expectConfigurationError(fn, message));
  });

  it('a bare @TcpServer is rejected, since a TCP server needs a port', () => {
    expectConfigurationError(
      () => anyDecorator(TcpServer)(class EchoHandler {}),
      '@TcpServer on EchoHandler: no address given. Fix: write @TcpServer(9000) or @TcpServer({ port: 9000 }).',
    );
  });

  it('a transport decorator on a method is rejected, naming the member', () => {
    expectConfigurationError(
      () => {
        class EchoHandler {
          @(anyDecorator(UdpServer(9000)))
          handle() {}
        }
        return EchoHandler;
      },
      '@UdpServer on EchoHandler.handle: not a class. Fix: put @UdpServer on the handler class.',
    );
  });
});

describe('concurrency decorators', () => {
  it('@Threading works bare, called, and called with options', () => {
    @Threading
    class Bare {}
    @Threading()
    class Called {}
    @Threading({ threads: 2, connectionsPerThread: 1, maxThreads: 4, perRequest: true, workerIdleTimeout: 1.5, maxConnectionsPerThread: 100, resourceLimits: { maxOldGenerationSizeMb: 64 } })
    class WithOptions {}
    expect(getConcurrencies(Bare)).toEqual([
      { decorator: '@Threading', definition: { kind: 'threading', options: {} }, owner: Bare, source: __filename },
    ]);
    expect(getConcurrencies(Called)[0].definition).toEqual({ kind: 'threading', options: {} });
    expect(getConcurrencies(WithOptions)[0].definition).toEqual({
      kind: 'threading',
      options: { threads: 2, connectionsPerThread: 1, maxThreads: 4, perRequest: true, workerIdleTimeout: 1.5, maxConnectionsPerThread: 100, resourceLimits: { maxOldGenerationSizeMb: 64 } },
    });
  });

  it('@Forking works bare, called, and called with options', () => {
    @Forking
    class Bare {}
    @Forking()
    class Called {}
    @Forking({ children: 2, maxChildren: 2, perRequest: false })
    class WithOptions {}
    expect(getConcurrencies(Bare)[0].definition).toEqual({ kind: 'forking', options: {} });
    expect(getConcurrencies(Called)[0].definition).toEqual({ kind: 'forking', options: {} });
    expect(getConcurrencies(WithOptions)[0].definition).toEqual({
      kind: 'forking',
      options: { children: 2, maxChildren: 2, perRequest: false },
    });
  });

  it('@Concurrent works bare, called, and called with options', () => {
    @Concurrent
    class Bare {}
    @Concurrent()
    class Called {}
    @Concurrent({ maxConnections: 100 })
    class WithOptions {}
    expect(getConcurrencies(Bare)[0].definition).toEqual({ kind: 'concurrent', options: {} });
    expect(getConcurrencies(Called)[0].definition).toEqual({ kind: 'concurrent', options: {} });
    expect(getConcurrencies(WithOptions)[0].definition).toEqual({ kind: 'concurrent', options: { maxConnections: 100 } });
  });

  describe('reject bad options at decoration time', () => {
    const cases: Array<[string, () => unknown, string]> = [
      [
        'zero threads',
        () => decorate(Threading({ threads: 0 })),
        '@Threading on EchoHandler: threads 0 is not a positive integer. Fix: pass how many threads to keep warm, or leave threads out for one per core.',
      ],
      [
        'a fractional maxThreads',
        () => decorate(Threading({ maxThreads: 2.5 })),
        '@Threading on EchoHandler: maxThreads 2.5 is not a positive integer. Fix: pass the most threads to run at once, or leave maxThreads out for 64.',
      ],
      [
        'more threads than maxThreads',
        () => decorate(Threading({ threads: 8, maxThreads: 4 })),
        '@Threading on EchoHandler: threads 8 is more than maxThreads 4. Fix: raise maxThreads or lower threads.',
      ],
      [
        'a perRequest that is not a boolean',
        () => decorate(Threading({ perRequest: 'yes' as unknown as boolean })),
        '@Threading on EchoHandler: perRequest "yes" is not a boolean. Fix: pass true for a fresh worker per request, false to reuse a pool, or leave perRequest out.',
      ],
      [
        'a negative workerIdleTimeout',
        () => decorate(Threading({ workerIdleTimeout: -5 })),
        '@Threading on EchoHandler: workerIdleTimeout -5 is not a positive number (seconds). Fix: pass how many seconds a worker above the kept pool may stay without a connection, or leave workerIdleTimeout out for 30.',
      ],
      [
        'a connectionsPerThread of zero',
        () => decorate(Threading({ connectionsPerThread: 0 })),
        "@Threading on EchoHandler: connectionsPerThread 0 is not a positive integer. Fix: pass how many connections a thread serves before the pool grows (1 is Python's one connection per thread), or leave connectionsPerThread out for no limit.",
      ],
      [
        'resourceLimits with an unknown key',
        () => decorate(Threading({ resourceLimits: { heapMb: 5 } as never })),
        "@Threading on EchoHandler: resourceLimits {\"heapMb\":5} is not an object of positive numbers (maxOldGenerationSizeMb, maxYoungGenerationSizeMb, codeRangeSizeMb, stackSizeMb), maxOldGenerationSizeMb at least 4 (below that Node 22+ aborts the whole process as a thread starts). Fix: pass Node's Worker resource limits in megabytes, such as { maxOldGenerationSizeMb: 256 }, or leave resourceLimits out.",
      ],
      [
        // Node 22, 24 and 26 aborted the whole server (SIGTRAP) as such a thread started (hostile run)
        'a maxOldGenerationSizeMb too small for a thread to start',
        () => decorate(Threading({ resourceLimits: { maxOldGenerationSizeMb: 2 } })),
        "@Threading on EchoHandler: resourceLimits {\"maxOldGenerationSizeMb\":2} is not an object of positive numbers (maxOldGenerationSizeMb, maxYoungGenerationSizeMb, codeRangeSizeMb, stackSizeMb), maxOldGenerationSizeMb at least 4 (below that Node 22+ aborts the whole process as a thread starts). Fix: pass Node's Worker resource limits in megabytes, such as { maxOldGenerationSizeMb: 256 }, or leave resourceLimits out.",
      ],
      [
        'a fractional maxConnectionsPerChild',
        () => decorate(Forking({ maxConnectionsPerChild: 1.5 })),
        '@Forking on EchoHandler: maxConnectionsPerChild 1.5 is not a positive integer. Fix: pass after how many connections a child is replaced by a fresh one, or leave maxConnectionsPerChild out for never.',
      ],
      [
        'an unknown threading option',
        () => decorate(Threading({ workers: 2 } as ThreadingOptions)),
        '@Threading on EchoHandler: unknown option "workers". Fix: use only threads, connectionsPerThread, maxThreads, perRequest, workerIdleTimeout, maxConnectionsPerThread and resourceLimits.',
      ],
      [
        'a number instead of an options object',
        () => decorate(Threading(4 as unknown as ThreadingOptions)),
        '@Threading on EchoHandler: expected an options object, got 4. Fix: write @Threading, @Threading() or @Threading({ threads: 4 }).',
      ],
      [
        'zero children',
        () => decorate(Forking({ children: 0 })),
        '@Forking on EchoHandler: children 0 is not a positive integer. Fix: pass how many child processes to keep warm, or leave children out.',
      ],
      [
        'more children than maxChildren',
        () => decorate(Forking({ children: 50, maxChildren: 40 })),
        '@Forking on EchoHandler: children 50 is more than maxChildren 40. Fix: raise maxChildren or lower children.',
      ],
      [
        'a negative maxChildren',
        () => decorate(Forking({ maxChildren: -1 })),
        '@Forking on EchoHandler: maxChildren -1 is not a positive integer. Fix: pass the most child processes to run at once, or leave maxChildren out for 40.',
      ],
      [
        'a zero maxConnections',
        () => decorate(Concurrent({ maxConnections: 0 })),
        '@Concurrent on EchoHandler: maxConnections 0 is not a positive integer. Fix: pass the most requests to serve at once, or leave maxConnections out for no limit.',
      ],
    ];
    it.each(cases)('rejects %s', (_name, fn, message) => expectConfigurationError(fn, message));
  });

  it('a bare concurrency decorator on a method is rejected, naming the member', () => {
    expectConfigurationError(
      () => {
        class EchoHandler {
          @(anyDecorator(Threading))
          handle() {}
        }
        return EchoHandler;
      },
      '@Threading on EchoHandler.handle: not a class. Fix: put @Threading on the handler class.',
    );
  });

  it('a called concurrency decorator on a property is rejected, naming the member', () => {
    expectConfigurationError(
      () => {
        class EchoHandler {
          @(anyDecorator(Forking()))
          pool = 1;
        }
        return EchoHandler;
      },
      '@Forking on EchoHandler.pool: not a class. Fix: put @Forking on the handler class.',
    );
  });
});

describe('lifecycle decorators', () => {
  it('each hook decorator works bare and records its method', () => {
    class EchoHandler {
      @Verify allow() {}
      @Setup open() {}
      @Handle handle() {}
      @Finish close() {}
      @HandleError oops() {}
      @HandleTimeout idle() {}
      @ServiceActions tick() {}
    }
    expect(getHooks(EchoHandler).map(({ hook, key }) => [hook, key])).toEqual([
      ['verify', 'allow'],
      ['setup', 'open'],
      ['handle', 'handle'],
      ['finish', 'close'],
      ['handleError', 'oops'],
      ['handleTimeout', 'idle'],
      ['serviceActions', 'tick'],
    ]);
  });

  it('each hook decorator works called and records its method', () => {
    class EchoHandler {
      @Verify() allow() {}
      @Setup() open() {}
      @Handle() async handle() {}
      @Finish() close() {}
      @HandleError() oops() {}
      @HandleTimeout() idle() {}
      @ServiceActions() tick() {}
    }
    expect(getHooks(EchoHandler)).toEqual([
      { hook: 'verify', key: 'allow', owner: EchoHandler },
      { hook: 'setup', key: 'open', owner: EchoHandler },
      { hook: 'handle', key: 'handle', owner: EchoHandler },
      { hook: 'finish', key: 'close', owner: EchoHandler },
      { hook: 'handleError', key: 'oops', owner: EchoHandler },
      { hook: 'handleTimeout', key: 'idle', owner: EchoHandler },
      { hook: 'serviceActions', key: 'tick', owner: EchoHandler },
    ]);
  });

  it('a hook on a symbol-keyed method is recorded under the symbol', () => {
    const serve = Symbol('serve');
    class EchoHandler {
      @Handle() [serve]() {}
    }
    expect(getHooks(EchoHandler)).toEqual([{ hook: 'handle', key: serve, owner: EchoHandler }]);
  });

  it('the same hook twice on one method is recorded once', () => {
    class EchoHandler {
      @Handle @Handle() handle() {}
    }
    expect(getHooks(EchoHandler)).toHaveLength(1);
  });

  it('a hook decorator leaves the method itself untouched', () => {
    class EchoHandler {
      @Handle() handle() {
        return 'served';
      }
    }
    expect(new EchoHandler().handle()).toBe('served');
  });

  describe('reject a hook decorator on anything but an instance method', () => {
    const cases: Array<[string, () => unknown, string]> = [
      [
        'a property',
        () => {
          class EchoHandler {
            @(anyDecorator(Handle()))
            port = 1;
          }
          return EchoHandler;
        },
        '@Handle() on EchoHandler.port: not a method (a property). Fix: put @Handle() on a method.',
      ],
      [
        'a property, bare',
        () => {
          class EchoHandler {
            @(anyDecorator(Setup))
            port = 1;
          }
          return EchoHandler;
        },
        '@Setup() on EchoHandler.port: not a method (a property). Fix: put @Setup() on a method.',
      ],
      [
        'an accessor',
        () => {
          class EchoHandler {
            @Finish()
            get done() {
              return true;
            }
          }
          return EchoHandler;
        },
        '@Finish() on EchoHandler.done: not a method (an accessor). Fix: put @Finish() on a method.',
      ],
      [
        'a class',
        () => {
          @(anyDecorator(Handle()))
          class EchoHandler {}
          return EchoHandler;
        },
        '@Handle() on EchoHandler: not a method (a class). Fix: put @Handle() on a method.',
      ],
      [
        'a class, bare',
        () => {
          @(anyDecorator(Verify))
          class EchoHandler {}
          return EchoHandler;
        },
        '@Verify() on EchoHandler: not a method (a class). Fix: put @Verify() on a method.',
      ],
      [
        'a static method',
        () => {
          class EchoHandler {
            @Handle() static handle() {}
          }
          return EchoHandler;
        },
        '@Handle() on EchoHandler.handle: a static method, but hooks run on the handler instance built for each request. Fix: make it an instance method.',
      ],
    ];
    it.each(cases)('rejects %s', (_name, fn, message) => expectConfigurationError(fn, message));
  });

  it('a hook decorator called with an argument is rejected', () => {
    expectConfigurationError(
      () => anyDecorator(HandleTimeout)({ seconds: 5 }),
      '@HandleTimeout() takes no arguments, got {"seconds":5}. Fix: write @HandleTimeout or @HandleTimeout().',
    );
  });
});

describe('compiled with standard (TC39) decorators, as TypeScript 5+ does without experimentalDecorators', () => {
  /** Compiles `source` as a project without experimentalDecorators would, and runs it against sockserve's sources. */
  function runStandard(source: string): unknown {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require('typescript') as typeof import('typescript');
    const { outputText } = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS } });
    const sockserve = require('../../src');
    const module = { exports: {} as Record<string, unknown> };
    try {
      new Function('require', 'module', 'exports', outputText)((name: string) => (name === 'sockserve' ? sockserve : require(name)), module, module.exports);
    } catch (err) {
      return err;
    }
    return undefined;
  }

  it.each([
    ['a hook', `import { Handle, TcpServer } from 'sockserve';\n@TcpServer(0) export class Echo { @Handle() handle() {} }`, /^@Handle\(\) on handle \(a method\) was applied as a standard/],
    ['a bare hook', `import { Handle, TcpServer } from 'sockserve';\n@TcpServer(0) export class Echo { @Handle handle() {} }`, /^@Handle\(\) on handle \(a method\)/],
    ['a transport', `import { TcpServer } from 'sockserve';\n@TcpServer(0) export class Echo {}`, /^@TcpServer on Echo \(a class\) was applied as a standard/],
    ['a bare concurrency decorator', `import { Threading } from 'sockserve';\n@Threading export class Echo {}`, /^@Threading on Echo \(a class\)/],
    ['a called concurrency decorator', `import { Concurrent } from 'sockserve';\n@Concurrent() export class Echo {}`, /^@Concurrent on Echo \(a class\)/],
    ['@Framing', `import { Framing } from 'sockserve';\n@Framing('lines') export class Echo {}`, /^@Framing on Echo \(a class\)/],
    ['a bare @Framing', `import { Framing } from 'sockserve';\n@Framing export class Echo {}`, /^@Framing on Echo \(a class\)/],
  ])('%s says to set experimentalDecorators (it said "@Verify() takes no arguments, got function", new-user run)', (_name, source, start) => {
    const error = runStandard(source);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(start);
    expect((error as Error).message).toContain('Fix: set "experimentalDecorators": true and "emitDecoratorMetadata": true');
  });
});

describe('without reflect-metadata', () => {
  it('a decorator says to import reflect-metadata at the entry point', () => {
    const reflect = Reflect as unknown as Record<string, unknown>;
    const saved = reflect.defineMetadata;
    delete reflect.defineMetadata;
    try {
      expectConfigurationError(
        () => decorate(TcpServer(9000)),
        `@TcpServer on EchoHandler: Reflect.defineMetadata is missing, so decorators cannot record anything. Fix: import 'reflect-metadata' once at the program's entry point, before any handler class is loaded.`,
      );
      expectConfigurationError(
        () => {
          class EchoHandler {
            @Handle() handle() {}
          }
          return EchoHandler;
        },
        `@Handle() on EchoHandler.handle: Reflect.defineMetadata is missing, so decorators cannot record anything. Fix: import 'reflect-metadata' once at the program's entry point, before any handler class is loaded.`,
      );
    } finally {
      reflect.defineMetadata = saved;
    }
  });
});

describe('concurrency decorators typed for options of type any', () => {
  test('@Threading/@Forking/@Concurrent(options) compile with options parsed from JSON (type any), and read them', () => {
    // Before: an `any` argument picked the bare overload (target: Function): void, and the decorator did not
    // compile (TS1238): the options overload comes first now.
    const threads: any = JSON.parse('{ "threads": 3 }');
    const children: any = JSON.parse('{ "children": 3 }');
    const loose: any = JSON.parse('{}');
    @TcpServer(0) @Threading(threads) class FromJsonThreads { @Handle() h() {} }
    @TcpServer(0) @Forking(children) class FromJsonChildren { @Handle() h() {} }
    @TcpServer(0) @Concurrent(loose) class FromJsonConcurrent { @Handle() h() {} }
    expect(getConcurrencies(FromJsonThreads)[0].definition).toEqual({ kind: 'threading', options: { threads: 3 } });
    expect(getConcurrencies(FromJsonChildren)[0].definition).toEqual({ kind: 'forking', options: { children: 3 } });
    expect(getConcurrencies(FromJsonConcurrent)[0].definition).toMatchObject({ kind: 'concurrent' });
  });
});
