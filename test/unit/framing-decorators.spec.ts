import 'reflect-metadata';
import { Framing, Handle, OnMessage, TcpServer, UdpServer, UnixStreamServer } from '../../src/decorators';
import { ConfigurationError } from '../../src/errors/errors';
import { explore } from '../../src/explorer/explorer';
import { LinesFramer } from '../../src/framing/lines.framer';
import type { Framer, FramerOptions } from '../../src/framing/framer';

function configurationError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigurationError');
}

class Upper implements Framer<string, string> {
  constructor(readonly options: FramerOptions) {}
  decode(chunk: Buffer): string[] {
    return [chunk.toString().toUpperCase()];
  }
  encode(reply: string): string {
    return reply;
  }
}

describe('@Framing and @OnMessage in a definition', () => {
  test('@Framing bare, called with nothing, and called with lines all mean the lines framer with 64 KiB messages', () => {
    @TcpServer(0) @Framing class Bare { @OnMessage on() {} }
    @TcpServer(0) @Framing() class Called { @OnMessage() on() {} }
    @TcpServer(0) @Framing('lines') class Lines { @OnMessage() on() {} }
    for (const cls of [Bare, Called, Lines]) {
      const def = explore(cls);
      expect(def.hooks).toEqual({ message: 'on' });
      expect(def.framing).toMatchObject({ name: 'lines', maxLength: 65536, concurrency: 1 });
      expect(def.framing!.create()).toBeInstanceOf(LinesFramer);
    }
  });

  test('options are kept: maxLength, concurrency, and the length prefix of length-prefixed', () => {
    @TcpServer(0) @Framing('length-prefixed', { lengthBytes: 2, byteOrder: 'little', maxLength: 100, concurrency: 8 })
    class Frames { @OnMessage() on() {} }
    expect(explore(Frames).framing).toMatchObject({ name: 'length-prefixed', maxLength: 100, concurrency: 8, maxOutputBuffer: 16 * 1024 * 1024 });
  });

  test('maxOutputBuffer is kept, for built-in and user framers, and a user framer does not receive it', () => {
    @TcpServer(0) @Framing('netstring', { maxOutputBuffer: 4096 }) class Small { @OnMessage() on() {} }
    @TcpServer(0) @Framing(Upper, { maxOutputBuffer: 8192, flavour: 'y' }) class Custom { @OnMessage() on() {} }
    expect(explore(Small).framing!.maxOutputBuffer).toBe(4096);
    expect(explore(Custom).framing!.maxOutputBuffer).toBe(8192);
    expect((explore(Custom).framing!.create() as Upper).options).toEqual({ maxLength: 1024 * 1024, flavour: 'y' });
  });

  test('the default maxLength of length-prefixed is 1 MiB, or what its prefix can express', () => {
    @TcpServer(0) @Framing('length-prefixed') class Four { @OnMessage() on() {} }
    @TcpServer(0) @Framing('length-prefixed', { lengthBytes: 1 }) class One { @OnMessage() on() {} }
    @TcpServer(0) @Framing('netstring') class Net { @OnMessage() on() {} }
    expect(explore(Four).framing!.maxLength).toBe(1024 * 1024);
    expect(explore(One).framing!.maxLength).toBe(255);
    expect(explore(Net).framing!.maxLength).toBe(1024 * 1024);
  });

  test('a user framer class is built per connection with the options, maxLength settled', () => {
    @TcpServer(0) @Framing(Upper, { maxLength: 10, flavour: 'x' }) class Custom { @OnMessage() on() {} }
    const def = explore(Custom);
    const a = def.framing!.create() as Upper;
    const b = def.framing!.create() as Upper;
    expect(a).not.toBe(b);
    expect(a.options).toEqual({ maxLength: 10, flavour: 'x' });
    expect(a.decode(Buffer.from('hi'))).toEqual(['HI']);
  });

  test('a user framer function is called per connection', () => {
    const make = (o: FramerOptions) => new Upper(o);
    @TcpServer(0) @Framing(make) class Custom { @OnMessage() on() {} }
    expect((explore(Custom).framing!.create() as Upper).options).toEqual({ maxLength: 1024 * 1024 });
  });

  test('a function declaration is a factory without options too (the docs allow "a function (f(options))"; it failed with "decorator is not a function")', () => {
    function upperFramer(o: FramerOptions) {
      return new Upper(o);
    }
    @TcpServer(0) @Framing(upperFramer) class Custom { @OnMessage() on() {} }
    const framer = explore(Custom).framing!.create() as Upper;
    expect(framer).toBeInstanceOf(Upper);
    expect(framer.options).toEqual({ maxLength: 1024 * 1024 });
    expect(explore(Custom).framing!.name).toBe('upperFramer');
    expect(Reflect.getOwnMetadataKeys(upperFramer)).toEqual([]); // nothing recorded on the factory itself
  });

  test('a framer class whose decode is an instance field cannot be told from a bare @Framing\'s handler: a ConfigurationError that says what to write', () => {
    class FieldFramer implements Framer<string, string> {
      decode = (chunk: Buffer) => [chunk.toString()];
      encode = (reply: string) => reply;
    }
    const message = configurationError(() => {
      @TcpServer(0) @Framing(FieldFramer) class Custom { @OnMessage() on() {} }
      return Custom;
    });
    expect(message).toBe(
      '@Framing(FieldFramer): cannot tell whether FieldFramer is a framer factory or the handler class of a bare @Framing: it has no ' +
        'decode() method on its prototype and no @OnMessage() (or other hook) method. Fix: for a framer (its decode an instance ' +
        'field), pass options, even none: @Framing(FieldFramer, {}), or a function: @Framing((o) => new FieldFramer(o)); on a handler, ' +
        "write @Framing() or @Framing('lines') (with parentheses), and give it an @OnMessage() method.",
    );
    // What the message says works:
    @TcpServer(0) @Framing(FieldFramer, {}) class WithOptions { @OnMessage() on() {} }
    @TcpServer(0) @Framing((o) => new FieldFramer()) class WithArrow { @OnMessage() on() {} }
    for (const cls of [WithOptions, WithArrow]) expect(explore(cls).framing!.create().decode(Buffer.from('x'))).toEqual(['x']);
  });

  test('bare @Framing still means lines on a handler whose @OnMessage (or another hook) is inherited or is its only method', () => {
    class Base { @OnMessage() on() {} }
    @TcpServer(0) @Framing class Derived extends Base {}
    expect(explore(Derived).framing).toMatchObject({ name: 'lines' });
    @TcpServer(0) @Framing class WithHandle { @Handle() handle() {} }
    expect(configurationError(() => explore(WithHandle))).toMatch(/^WithHandle has @Framing\('lines'\) but no @OnMessage\(\) method/);
  });

  test('bare @Framing on a class with no hook at all is the same ConfigurationError (it could be a framer class)', () => {
    expect(configurationError(() => {
      @TcpServer(0) @Framing class Empty {}
      return Empty;
    })).toMatch(/^@Framing\(Empty\): cannot tell whether Empty is a framer factory or the handler class of a bare @Framing/);
  });

  test('@OnMessage on a datagram transport needs no @Framing: each datagram is one raw message', () => {
    @UdpServer(0) class Raw { @OnMessage() on() {} }
    const def = explore(Raw);
    expect(def.hooks).toEqual({ message: 'on' });
    expect(def.framing).toBeUndefined();
  });
});

describe('@Framing and @OnMessage mistakes are ConfigurationErrors', () => {
  test('@Handle and @OnMessage on one class', () => {
    @TcpServer(0) @Framing('lines') class Both { @Handle() handle() {} @OnMessage() on() {} }
    expect(configurationError(() => explore(Both))).toBe(
      'Both has both @Handle() (handle) and @OnMessage() (on). Fix: keep one: @Handle() reads and writes the ' +
        "connection's bytes itself, @OnMessage() is called once per message that @Framing cuts.",
    );
  });

  test('@Framing without @OnMessage', () => {
    @TcpServer(0) @Framing('json-lines') class NoMessage { @Handle() handle() {} }
    expect(configurationError(() => explore(NoMessage))).toBe(
      "NoMessage has @Framing('json-lines') but no @OnMessage() method, and @Framing only cuts messages for @OnMessage(). " +
        'Fix: put @OnMessage() on the method that answers one message (in place of @Handle()), or remove @Framing.',
    );
  });

  test('@OnMessage on a stream transport without @Framing', () => {
    @UnixStreamServer('/tmp/x.sock') class NoFraming { @OnMessage() answer() {} }
    expect(configurationError(() => explore(NoFraming))).toBe(
      'NoFraming.answer has @OnMessage(), but the class has no @Framing, so its Unix stream byte stream has no message ' +
        "boundaries. Fix: add @Framing('lines') to the class (or 'length-prefixed', 'netstring', 'json-lines', or a Framer factory).",
    );
  });

  test('two @Framing decorators', () => {
    @TcpServer(0) @Framing('lines') @Framing('netstring') class Twice { @OnMessage() on() {} }
    expect(configurationError(() => explore(Twice))).toBe('Twice has two @Framing decorators. Fix: keep exactly one.');
  });

  test('two @OnMessage methods', () => {
    @TcpServer(0) @Framing class Twice { @OnMessage() a() {} @OnMessage() b() {} }
    expect(configurationError(() => explore(Twice))).toMatch(/^Twice has two @OnMessage\(\) methods \(a and b\)\. Fix: keep @OnMessage\(\) on exactly one method of Twice\.$/);
  });

  // null was taken for a kind left out ('lines'); a framer instance was "{} is not a framer" (hostile run).
  test('null is no framer kind, and a framer instance is refused saying to pass its class', () => {
    expect(configurationError(() => Framing(null as never, {})(class N {}))).toMatch(/^@Framing on N: null is not a framer\. Fix: pass 'lines', /);
    expect(configurationError(() => Framing(new Upper({ maxLength: 1 }) as never, {})(class I {}))).toMatch(
      /^@Framing on I: .* is a framer instance, but each connection needs a framer of its own\. Fix: pass its class \(@Framing\(Upper, options\)\)/,
    );
  });

  test('a factory that builds no framer is a TypeError naming it, per connection', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => null, /the factory returned null, not a Framer/],
      [async () => new Upper({ maxLength: 1 }), /the factory returned a Promise \(an async factory\?\), not a Framer/],
      [() => ({}), /the factory returned an object without decode\(\) and encode\(\) methods, not a Framer/],
    ];
    for (const [factory, said] of cases) {
      Object.defineProperty(factory, 'name', { value: 'makeFramer' });
      @TcpServer(0) @Framing(factory as never, {}) class Custom { @OnMessage() on() {} }
      const create = explore(Custom).framing!.create;
      expect(create).toThrow(TypeError);
      expect(create).toThrow(/^@Framing\(makeFramer\): /);
      expect(create).toThrow(said);
    }
  });

  test('an unknown framer name', () => {
    expect(configurationError(() => Framing('xml' as never)(class Xml {}))).toMatch(/^@Framing on Xml: "xml" is not a framer\. Fix: pass 'lines', /);
  });

  test('a bad or unknown option', () => {
    expect(configurationError(() => Framing('lines', { maxLength: 0 })(class A {}))).toBe(
      "@Framing('lines') on A: maxLength 0 is not a positive integer (bytes). Fix: pass the most bytes one message may have, or leave maxLength out for the framer's default.",
    );
    expect(configurationError(() => Framing('length-prefixed', { lengthBytes: 3 as never })(class B {}))).toMatch(/lengthBytes 3 is not 1, 2 or 4/);
    expect(configurationError(() => Framing('lines', { lengthBytes: 2 } as never)(class C {}))).toBe(
      "@Framing('lines') on C: unknown option \"lengthBytes\". Fix: use only maxLength, concurrency and maxOutputBuffer.",
    );
    expect(configurationError(() => Framing('lines', { maxOutputBuffer: -1 })(class D {}))).toBe(
      "@Framing('lines') on D: maxOutputBuffer -1 is not a positive integer (bytes). Fix: pass the most bytes of pushed messages a connection may hold unsent, or leave maxOutputBuffer out for 16 MiB.",
    );
    expect(configurationError(() => Framing(Upper, { maxOutputBuffer: 'big' } as never)(class E {}))).toMatch(/maxOutputBuffer "big" is not a positive integer/);
  });

  test('@OnMessage with arguments, or on a property', () => {
    expect(configurationError(() => (OnMessage as (x: unknown) => unknown)('x'))).toBe(
      '@OnMessage() takes no arguments, got "x". Fix: write @OnMessage or @OnMessage().',
    );
  });
});
