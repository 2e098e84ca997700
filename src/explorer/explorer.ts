/**
 * The explorer turns a decorated handler class into a typed `HandlerDefinition` and rejects bad
 * combinations before anything is built or bound. Everything after it (bootstrap, strategies, workers)
 * reads the definition, never the decorator metadata.
 *
 * Inheritance: a class without a transport (or concurrency) decorator uses its nearest base class's;
 * hooks are inherited per hook name, and a subclass that declares a hook overrides the base's for that hook.
 */
import { className, configurationMessages as messages, memberName } from '../errors/configuration.messages';
import { ConfigurationError } from '../errors/errors';
import { isClassicHandler } from '../classic/request-handler';
import type { ConcurrencyDefinition, FramingDefinition, HandlerDefinition, HookDefinition, HookName, TransportDefinition } from '../metadata/definition';
import { getConcurrencies, getFramings, getHooks, getTransports } from '../metadata/reflection';

type HandlerClass = HandlerDefinition['handler'];

/** A function with a prototype object: a class (arrow functions, methods and bound functions have none). */
function isClass(value: unknown): value is HandlerClass {
  return typeof value === 'function' && typeof value.prototype === 'object' && value.prototype !== null;
}

function reject(message: string): never {
  throw new ConfigurationError(message);
}

/** `handle` first: when several hooks are duplicated, its message is the one a user most needs. */
const HOOK_ORDER: readonly HookName[] = [
  'handle',
  'message',
  'verify',
  'setup',
  'finish',
  'handleError',
  'handleTimeout',
  'serviceActions',
];

/** The hook methods of `handler`: exactly one of `handle` and `message`, at most one method per hook. */
function hooksOf(handler: HandlerClass, name: string): HookDefinition {
  const records = getHooks(handler);
  const hooks: Partial<Record<HookName, string | symbol>> = {};
  for (const hook of HOOK_ORDER) {
    const declared = records.filter((r) => r.hook === hook);
    if (declared.length === 0) continue;
    if (declared.length > 1) {
      const keys = declared.map((r) => r.key);
      reject(messages.duplicateHook(className(declared[0].owner), name, hook, keys));
    }
    hooks[hook] = declared[0].key;
  }
  if (hooks.handle === undefined && hooks.message === undefined) reject(messages.noHandle(name));
  if (hooks.handle !== undefined && hooks.message !== undefined) {
    reject(messages.handleAndOnMessage(name, String(hooks.handle), String(hooks.message)));
  }
  return hooks;
}

const STREAM_NAMES: Partial<Record<TransportDefinition['kind'], string>> = { tcp: 'TCP', 'unix-stream': 'Unix stream' };

/**
 * The class's `@Framing`, checked against its hooks: `@Framing` needs `@OnMessage` (it cuts messages
 * for nothing else); `@OnMessage` on a stream transport needs `@Framing` (a byte stream has no message
 * boundaries), while on a datagram transport each datagram is a message already (a raw Buffer).
 */
function framingOf(handler: HandlerClass, name: string, hooks: HookDefinition, transport: TransportDefinition): FramingDefinition | undefined {
  const framings = getFramings(handler);
  if (framings.length > 1) reject(messages.tooManyFramings(className(framings[0].owner), framings.length));
  const framing = framings[0];
  if (framing && hooks.message === undefined) reject(messages.framingWithoutOnMessage(name, framing.decorator.replace(/^@Framing\(|\)$/g, '')));
  const stream = STREAM_NAMES[transport.kind];
  if (!framing && hooks.message !== undefined && stream) reject(messages.onMessageWithoutFraming(memberName(name, hooks.message), stream));
  return framing?.definition;
}

/**
 * The validated definition of a handler class: its transport, its concurrency (`serial` when it has no
 * concurrency decorator) and its hook methods. Throws a ConfigurationError naming the class, the member
 * and a fix for: not a class; a sockserve/classic handler; no or several transport decorators; several concurrency decorators;
 * neither or both of `@Handle()` and `@OnMessage()`; several methods for one hook on one class; `@Framing`
 * without `@OnMessage()`, or `@OnMessage()` on a stream transport without `@Framing`.
 */
export function explore(handler: unknown): HandlerDefinition {
  if (!isClass(handler)) return reject(messages.notAHandlerClass(handler));
  const name = className(handler);
  if (isClassicHandler(handler)) reject(messages.classicHandler(name)); // decorated or not

  const transports = getTransports(handler);
  if (transports.length === 0) reject(messages.noTransport(name));
  if (transports.length > 1) {
    reject(messages.tooManyTransports(className(transports[0].owner), transports.map((t) => t.decorator)));
  }

  const concurrencies = getConcurrencies(handler);
  if (concurrencies.length > 1) {
    reject(messages.tooManyConcurrency(className(concurrencies[0].owner), concurrencies.map((c) => c.decorator)));
  }
  const concurrency: ConcurrencyDefinition = concurrencies[0]?.definition ?? { kind: 'serial' };

  const source = concurrencies[0]?.source ?? transports[0].source;
  const transport = transports[0].definition;
  const hooks = hooksOf(handler, name);
  const framing = framingOf(handler, name, hooks, transport);
  return { handler, transport, concurrency, hooks, ...(framing ? { framing } : {}), source };
}
