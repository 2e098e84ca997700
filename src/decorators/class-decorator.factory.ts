/**
 * The two shapes of class decorator: transports (an address or an options object, required) and
 * concurrency strategies (bare, called, or called with options). Both check where they were put and
 * what they were given, then record one definition through `metadata/reflection`; nothing else.
 */
import { className, configurationMessages as messages, memberName } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, HandlerDefinition, TransportDefinition } from '../metadata/definition';
import { maxLineLengthOf, withLineLimit } from '../framing/framers';
import { addConcurrency, addTransport } from '../metadata/reflection';
import { callerFile } from '../metadata/source-location';
import { ArgumentHelp, checkOptions, DecorationSite, fail, OptionRule, rejectStandardDecorators } from './options.validation';

export interface ClassDecoratorSpec<O, D> extends ArgumentHelp {
  /** As users write it: `@TcpServer`. */
  readonly decorator: string;
  readonly rules: readonly OptionRule[];
  /** Further checks across options, after each option passed its rule. */
  readonly check?: (site: DecorationSite, options: O) => void;
  readonly define: (options: O) => D;
}

export interface TransportSpec<O> extends ClassDecoratorSpec<O, TransportDefinition> {
  /** The transport this decorator defines. */
  readonly kind: TransportDefinition['kind'];
  /** The option a bare number (`port`) or string (`path`) stands for. */
  readonly address: { readonly name: 'port'; readonly type: 'number' } | { readonly name: 'path'; readonly type: 'string' };
}

/** `EchoHandler.port` for a member, `EchoHandler` otherwise. */
function where(target: unknown, key: unknown): string {
  return typeof key === 'string' || typeof key === 'symbol' ? memberName(className(target), key) : className(target);
}

/** The class a class decorator was put on; a ConfigurationError if it was put on a member. */
function decoratedClass(decorator: string, target: unknown, key: unknown): Function {
  rejectStandardDecorators(decorator, key);
  if (typeof target === 'function' && key === undefined) return target;
  return fail(messages.notAClass(decorator, where(target, key)));
}

function definitionFor<O, D>(spec: ClassDecoratorSpec<O, D>, cls: Function, given: unknown): D {
  const site: DecorationSite = { decorator: spec.decorator, cls: className(cls) };
  const options = checkOptions<O>(site, given, spec.rules, spec);
  spec.check?.(site, options);
  return spec.define(options);
}

/** Each transport decorator's spec by the kind it defines, so run-time overrides are checked by the same rules. */
const transportSpecs = new Map<TransportDefinition['kind'], TransportSpec<unknown>>();

/**
 * `def` as a server runs it: its transport with `overrides` (overrideTransport()), and a line framer without a
 * maxLength of its own bounded by that transport's `limits.maxLineLength` (withLineLimit()). What bootstrap() and
 * TestServer.create() serve; a worker applies the line limit to its own copy from the reader settings it is sent.
 */
export function servedDefinition(def: HandlerDefinition, overrides: object | undefined, from = 'bootstrap()'): HandlerDefinition {
  const transport = overrideTransport(def.handler, def.transport, overrides, from);
  const framing = withLineLimit(def.framing, maxLineLengthOf(transport));
  return { ...def, transport, ...(framing ? { framing } : {}) };
}

/**
 * The transport of `def` with `overrides` (bootstrap's `transport` option) laid over the decorator's options,
 * (`from` names who passed them: bootstrap() or TestServer.create()) validated by the decorator's own rules: a port or a path from configuration fails as it would in the
 * decorator, with a ConfigurationError naming the class and the option.
 */
export function overrideTransport(cls: Function, transport: TransportDefinition, overrides: object | undefined, from = 'bootstrap()'): TransportDefinition {
  if (overrides === undefined) return transport;
  const spec = transportSpecs.get(transport.kind);
  if (!spec) return transport;
  const given = typeof overrides === 'object' && overrides !== null ? { ...transport.options, ...overrides } : overrides;
  return definitionFor({ ...spec, decorator: `${from}'s transport option for ${spec.decorator}` }, cls, given);
}

/** `args` is what the user's `@TcpServer(...)` received. */
export function transportDecorator<O>(spec: TransportSpec<O>, args: readonly unknown[]): ClassDecorator {
  transportSpecs.set(spec.kind, spec as TransportSpec<unknown>);
  const [arg, key] = args;
  if (args.length > 1) fail(messages.notAClass(spec.decorator, where(arg, key)));
  if (typeof arg === 'function') fail(messages.noAddress(spec.decorator, className(arg), spec.example));
  const given = typeof arg === spec.address.type ? { [spec.address.name]: arg } : arg;
  return (target: unknown, member?: unknown): void => {
    const cls = decoratedClass(spec.decorator, target, member);
    addTransport(cls, spec.decorator, definitionFor(spec, cls, given), callerFile());
  };
}

/** `args` is what the user's `@Threading` (bare: the class) or `@Threading(...)` received. */
export function concurrencyDecorator<O>(
  spec: ClassDecoratorSpec<O, ConcurrencyDefinition>,
  args: readonly unknown[],
): ClassDecorator | undefined {
  const apply = (given: unknown) => (target: unknown, member?: unknown): void => {
    const cls = decoratedClass(spec.decorator, target, member);
    addConcurrency(cls, spec.decorator, definitionFor(spec, cls, given), callerFile());
  };
  const [arg, key] = args;
  rejectStandardDecorators(spec.decorator, key);
  if (args.length > 1) fail(messages.notAClass(spec.decorator, where(arg, key)));
  if (typeof arg === 'function') {
    apply({})(arg); // bare: `@Threading` received the class itself
    return undefined;
  }
  return apply(arg ?? {});
}
