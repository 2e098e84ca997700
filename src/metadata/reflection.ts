/**
 * The one module of the decorator side that touches `Reflect` metadata. Decorators write through the
 * `add*` functions, the explorer reads through the `get*` functions; nothing else calls `Reflect.*Metadata`.
 *
 * Class metadata (transport, concurrency) is inherited as a whole: a class that declares none of a kind
 * uses its nearest base class's. Hooks are inherited per hook name: a subclass that declares a hook
 * replaces the base's method for that hook and keeps the base's other hooks.
 */
import {
  configurationMessages as messages,
  className,
  hookDecoratorNames,
  memberName,
} from '../errors/configuration.messages';
import { ConfigurationError } from '../errors/errors';
import type { ConcurrencyDefinition, FramingDefinition, HookName, TransportDefinition } from './definition';
import { CONCURRENCY_METADATA, FRAMING_METADATA, HOOKS_METADATA, TRANSPORT_METADATA } from './keys';

/** A class decorator's record, as the explorer sees it. */
export interface Declared<T> {
  /** The decorator as users wrote it, for messages: `@TcpServer`. */
  readonly decorator: string;
  readonly definition: T;
  /** The class that carries the decorator: the handler itself or one of its base classes. */
  readonly owner: Function;
  /** The file whose code applied the decorator, when the stack names one: workers load the class from it. */
  readonly source?: string;
}

/** One lifecycle hook declared on a method. */
export interface HookRecord {
  readonly hook: HookName;
  readonly key: string | symbol;
  /** The class whose body declares the method: the handler itself or one of its base classes. */
  readonly owner: Function;
}

type Stored<T> = Pick<Declared<T>, 'decorator' | 'definition' | 'source'>;
type StoredHook = Pick<HookRecord, 'hook' | 'key'>;

interface MetadataApi {
  defineMetadata(key: string, value: unknown, target: object): void;
  getOwnMetadata(key: string, target: object): unknown;
}

/** `Reflect`, once `reflect-metadata` has been imported; a ConfigurationError naming `where` otherwise. */
function metadata(where: string): MetadataApi {
  const api = Reflect as unknown as Partial<MetadataApi>;
  if (typeof api.defineMetadata !== 'function' || typeof api.getOwnMetadata !== 'function') {
    throw new ConfigurationError(messages.reflectMetadataMissing(where));
  }
  return api as MetadataApi;
}

function own<T>(api: MetadataApi, key: string, target: object): readonly T[] {
  return (api.getOwnMetadata(key, target) as T[] | undefined) ?? [];
}

/** The classes from `ctor` up to the last base class, most derived first. */
function* lineage(ctor: Function): Generator<Function> {
  for (let c: unknown = ctor; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    yield c;
  }
}

/** Class decorators run bottom-up; prepend so that the list reads in source order, top to bottom. */
function prepend<T>(key: string, target: Function, record: Stored<T>): void {
  const api = metadata(`${record.decorator} on ${className(target)}`);
  api.defineMetadata(key, [record, ...own<Stored<T>>(api, key, target)], target);
}

/** The records of the nearest class in `ctor`'s lineage that declares any. */
function nearest<T>(key: string, ctor: Function): Declared<T>[] {
  const api = metadata(className(ctor));
  for (const c of lineage(ctor)) {
    const records = own<Stored<T>>(api, key, c);
    if (records.length > 0) return records.map((r) => ({ ...r, owner: c }));
  }
  return [];
}

/** Records a transport decorator on `target`. Several may be recorded; the explorer rejects more than one. */
export function addTransport(target: Function, decorator: string, definition: TransportDefinition, source?: string): void {
  prepend<TransportDefinition>(TRANSPORT_METADATA, target, { decorator, definition, source });
}

/** The transport decorators of `ctor`, or of its nearest base class that has any; in source order. */
export function getTransports(ctor: Function): Declared<TransportDefinition>[] {
  return nearest<TransportDefinition>(TRANSPORT_METADATA, ctor);
}

/** Records a concurrency decorator on `target`. Several may be recorded; the explorer rejects more than one. */
export function addConcurrency(target: Function, decorator: string, definition: ConcurrencyDefinition, source?: string): void {
  prepend<ConcurrencyDefinition>(CONCURRENCY_METADATA, target, { decorator, definition, source });
}

/** The concurrency decorators of `ctor`, or of its nearest base class that has any; in source order. */
export function getConcurrencies(ctor: Function): Declared<ConcurrencyDefinition>[] {
  return nearest<ConcurrencyDefinition>(CONCURRENCY_METADATA, ctor);
}

/** Records a `@Framing` decorator on `target`. Several may be recorded; the explorer rejects more than one. */
export function addFraming(target: Function, decorator: string, definition: FramingDefinition): void {
  prepend<FramingDefinition>(FRAMING_METADATA, target, { decorator, definition });
}

/** The `@Framing` decorators of `ctor`, or of its nearest base class that has any; in source order. */
export function getFramings(ctor: Function): Declared<FramingDefinition>[] {
  return nearest<FramingDefinition>(FRAMING_METADATA, ctor);
}

/** Records that the method `key` of the class whose prototype is `proto` serves `hook`. Idempotent. */
export function addHook(proto: object, hook: HookName, key: string | symbol): void {
  const api = metadata(`${hookDecoratorNames[hook]} on ${memberName(className(proto), key)}`);
  const hooks = own<StoredHook>(api, HOOKS_METADATA, proto);
  if (hooks.some((h) => h.hook === hook && h.key === key)) return;
  api.defineMetadata(HOOKS_METADATA, [...hooks, { hook, key }], proto);
}

/**
 * The hooks `ctor` serves, own and inherited. For each hook name, the records come from the nearest class
 * that declares that hook (so a subclass overrides its base per hook); more than one record for a name
 * means that class declared the hook on several methods. Most derived class first, then source order.
 */
export function getHooks(ctor: Function): HookRecord[] {
  const api = metadata(className(ctor));
  const claimed = new Set<HookName>();
  const result: HookRecord[] = [];
  for (const c of lineage(ctor)) {
    if (typeof c.prototype !== 'object' || c.prototype === null) continue;
    const declaredHere = new Set<HookName>();
    for (const { hook, key } of own<StoredHook>(api, HOOKS_METADATA, c.prototype)) {
      if (claimed.has(hook)) continue;
      declaredHere.add(hook);
      result.push({ hook, key, owner: c });
    }
    declaredHere.forEach((hook) => claimed.add(hook));
  }
  return result;
}
