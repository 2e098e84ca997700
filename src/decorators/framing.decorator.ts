/**
 * `@Framing(kind, options)`: the class's connections are sequences of messages, cut by a framer, and
 * its `@OnMessage()` method is called once per message ([messages and framing](../../docs/messages-and-framing.md)). Validates and records; nothing else.
 */
import { className, configurationMessages as messages, optionTexts } from '../errors/configuration.messages';
import type { FramerFactory, FramerKind, FramingOptions, LengthPrefixedOptions } from '../framing/framer';
import { builtInFraming, FRAMER_OPTIONS, isFramerKind, userFraming } from '../framing/framers';
import { addFraming } from '../metadata/reflection';
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

/** A user framer factory rather than the handler class of a bare `@Framing`: an arrow function, or a class with `decode`. */
function isFactory(value: Function): boolean {
  const proto = value.prototype as { decode?: unknown } | undefined;
  return proto === undefined || typeof proto.decode === 'function';
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
 * or `@Framing(factory, options)` with a class or function that builds a `Framer` per connection.
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
  if (typeof kind === 'function' && args.length === 1 && !isFactory(kind)) {
    record('lines', undefined)(kind); // bare: `@Framing` received the handler class itself
    return undefined;
  }
  return record(kind ?? 'lines', options) as ClassDecorator;
}
