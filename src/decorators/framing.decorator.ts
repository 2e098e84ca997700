/**
 * `@Framing(kind, options)`: the class's connections are sequences of messages, cut by a framer, and
 * its `@OnMessage()` method is called once per message ([messages and framing](../../docs/messages-and-framing.md)). Validates and records; nothing else.
 */
import { className, configurationMessages as messages, optionTexts } from '../errors/configuration.messages';
import type { FramerFactory, FramerKind, FramingOptions, LengthPrefixedOptions } from '../framing/framer';
import { builtInFraming, FRAMER_OPTIONS, isFramerKind, userFraming } from '../framing/framers';
import { addFraming, getHooks } from '../metadata/reflection';
import { checkOptions, DecorationSite, fail, OptionRule, positiveInteger, rejectStandardDecorators } from './options.validation';

const DECORATOR = '@Framing';
const HELP = {
  expected: 'an options object',
  example: "@Framing('lines', { maxLength: 65536 }) or @Framing('length-prefixed', { lengthBytes: 2 })",
};

const RULES: Readonly<Record<string, OptionRule>> = {
  maxLength: { name: 'maxLength', text: optionTexts.maxLength, valid: positiveInteger },
  concurrency: { name: 'concurrency', text: optionTexts.concurrency, valid: positiveInteger },
  maxOutputBuffer: { name: 'maxOutputBuffer', text: optionTexts.maxOutputBuffer, valid: positiveInteger },
  lengthBytes: { name: 'lengthBytes', text: optionTexts.lengthBytes, valid: (v) => v === 1 || v === 2 || v === 4 },
  byteOrder: { name: 'byteOrder', text: optionTexts.byteOrder, valid: (v) => v === 'big' || v === 'little' },
};

/**
 * What `Framing(f)`, called with one function and nothing else, was given: a user framer factory
 * (`@Framing(factory)`), the handler class itself (bare `@Framing`, which receives the class), or a function
 * that could be either. Legacy decorators call a bare `@Framing` with the class and use what it returns as
 * the class (a function returned there would silently replace the handler), so only what cannot be a
 * handler is taken for a factory:
 * - no `prototype`: an arrow function (or a method, a bound function): no class has none;
 * - `decode` on its prototype: a framer class (or an old-style constructor function);
 * - a hook (`@OnMessage()`, `@Setup()`…) on it or its bases: a handler. Method decorators run before class
 *   decorators, so a bare `@Framing` on a handler sees them;
 * - a function that is not a class (`function nulFramer(o) {…}`) and has nothing on its prototype: a
 *   factory. A handler written in TypeScript is a class; one compiled down to ES5 has its methods there.
 * What is left, a class with no hook and no `decode` on its prototype (a framer whose `decode` is an instance
 * field, or a base handler class whose subclasses add `@OnMessage()`), is ambiguous: a ConfigurationError
 * that says how to write either unambiguously.
 */
function whatWasGiven(value: Function): 'factory' | 'handler' | 'ambiguous' {
  const proto = value.prototype as { decode?: unknown } | undefined;
  if (proto === undefined || proto === null) return 'factory';
  if (typeof proto.decode === 'function') return 'factory';
  if (getHooks(value).length > 0) return 'handler';
  const isClassSyntax = /^class\b/.test(Function.prototype.toString.call(value));
  const methods = typeof proto === 'object' ? Object.getOwnPropertyNames(proto).filter((name) => name !== 'constructor') : [];
  if (!isClassSyntax && methods.length === 0) return 'factory';
  return 'ambiguous';
}

/** A bare `@Framing` or `@Framing(factory)` on a function that could be either: what to write instead. */
function ambiguous(value: Function): never {
  const name = className(value);
  return fail(
    `@Framing(${name}): cannot tell whether ${name} is a framer factory or the handler class of a bare @Framing: it has no ` +
      `decode() method on its prototype and no @OnMessage() (or other hook) method. Fix: for a framer (its decode an instance ` +
      `field), pass options, even none: @Framing(${name}, {}), or a function: @Framing((o) => new ${name}(o)); on a handler, ` +
      `write @Framing() or @Framing('lines') (with parentheses), and give it an @OnMessage() method.`,
  );
}

function record(kind: unknown, given: unknown) {
  return (target: unknown, member?: unknown): void => {
    rejectStandardDecorators(DECORATOR, member);
    if (typeof target !== 'function' || member !== undefined) {
      fail(messages.notAClass(DECORATOR, className(target)));
    }
    const site: DecorationSite = { decorator: `${DECORATOR}(${typeof kind === 'string' ? `'${kind}'` : className(kind)})`, cls: className(target) };
    if (isFramerKind(kind)) {
      const names = ['maxLength', 'concurrency', 'maxOutputBuffer', ...FRAMER_OPTIONS[kind]];
      const options = checkOptions<LengthPrefixedOptions>(site, given ?? {}, names.map((n) => RULES[n]), HELP);
      addFraming(target, site.decorator, builtInFraming(kind, options));
      return;
    }
    if (typeof kind !== 'function') fail(messages.badFramingKind(className(target), kind));
    // A user framer: maxLength, concurrency and maxOutputBuffer are checked; its own options pass through to its factory.
    const all = (given ?? {}) as Record<string, unknown>;
    if (typeof all !== 'object' || all === null || Array.isArray(all)) {
      fail(messages.badArgument(site.decorator, site.cls, given, HELP.expected, HELP.example));
    }
    const { maxLength, concurrency, maxOutputBuffer } = all;
    checkOptions(site, { maxLength, concurrency, maxOutputBuffer }, [RULES.maxLength, RULES.concurrency, RULES.maxOutputBuffer], HELP);
    addFraming(target, site.decorator, userFraming(kind as FramerFactory, all));
  };
}

/**
 * Cuts each connection into messages for `@OnMessage()`:
 * `@Framing('lines' | 'json-lines' | 'netstring', { maxLength?, concurrency?, maxOutputBuffer? })`,
 * `@Framing('length-prefixed', { lengthBytes?: 1 | 2 | 4, byteOrder?: 'big' | 'little', maxLength?, concurrency?, maxOutputBuffer? })`,
 * or `@Framing(factory, options?)` with a class or function that builds a `Framer` per connection. Without
 * options the factory must be told from the handler class a bare `@Framing` receives: an arrow function, a
 * `function` declaration and a class with `decode` on its prototype are; a class whose `decode` is an instance
 * field is not (a ConfigurationError: write `@Framing(F, {})`).
 * Bare `@Framing` and `@Framing()` mean `'lines'`. `maxLength` defaults: 64 KiB for the line framers,
 * 1 MiB for the others; `maxOutputBuffer` (bytes waiting unsent when `req.send()` pushes more) 16 MiB. Throws a ConfigurationError for an unknown kind or a bad option.
 */
export function Framing<F extends FramerFactory>(factory: F, options?: FramingOptions & Record<string, unknown>): ClassDecorator;
export function Framing(target: Function): void;
export function Framing(kind?: FramerKind, options?: FramingOptions): ClassDecorator;
export function Framing(kind: 'length-prefixed', options?: LengthPrefixedOptions): ClassDecorator;
export function Framing(...args: unknown[]): ClassDecorator | void {
  const [kind, options] = args;
  rejectStandardDecorators(DECORATOR, options);
  if (typeof kind === 'function' && args.length === 1) {
    const given = whatWasGiven(kind);
    if (given === 'ambiguous') ambiguous(kind);
    if (given === 'handler') {
      record('lines', undefined)(kind); // bare: `@Framing` received the handler class itself
      return undefined;
    }
  }
  // Only a kind left out means 'lines': null is no kind (it was taken for 'lines': hostile run).
  return record(kind === undefined ? 'lines' : kind, options) as ClassDecorator;
}
