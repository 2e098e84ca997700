/**
 * The only module of the container that touches `Reflect`. The decorators write through it and the
 * container reads through it, so the rest of the DI code never sees a metadata key.
 *
 * `design:paramtypes` is written by TypeScript itself (with `emitDecoratorMetadata`) on classes that
 * carry at least one decorator, and only when `reflect-metadata` was loaded before the class was.
 */
import { InjectionError } from '../errors/errors';
import { injectionMessages as msg } from '../errors/injection.messages';
import { DESIGN_PARAMTYPES, INJECTABLE, INJECT_TOKENS } from './keys';
import type { Scope } from './provider';
import type { InjectionToken } from './token';

type AnyClass = abstract new (...args: any[]) => unknown;

export interface InjectableMetadata {
  scope?: Scope;
  /** The module file that declared the class (where @Injectable() was applied): workers load it from there. */
  source?: string;
}

/** What the container needs to know about a constructor's parameters. */
export interface ConstructorParams {
  /** `design:paramtypes`, or undefined when TypeScript did not emit it for this constructor. */
  designTypes: readonly unknown[] | undefined;
  /** Tokens given with `@Inject(token)`, by parameter index. */
  injected: ReadonlyMap<number, InjectionToken>;
  /** How many parameters the constructor that runs declares (before the first with a default value). */
  arity: number;
  /** The base class whose constructor runs, when the class inherits its constructor; else undefined. */
  declaredBy?: string;
}

/** reflect-metadata's API, typed locally so that nothing depends on its global declarations being loaded. */
interface MetadataApi {
  getMetadata?(key: unknown, target: object): unknown;
  getOwnMetadata?(key: unknown, target: object): unknown;
  defineMetadata?(key: unknown, value: unknown, target: object): void;
}
const api = (): MetadataApi => Reflect as unknown as MetadataApi;

function reader(owner: string): Required<Pick<MetadataApi, 'getMetadata' | 'getOwnMetadata'>> {
  const r = api();
  if (typeof r.getMetadata !== 'function' || typeof r.getOwnMetadata !== 'function') {
    throw new InjectionError(msg.reflectMissing(owner));
  }
  return r as Required<MetadataApi>;
}

function writer(decorator: string, owner: string): Required<Pick<MetadataApi, 'defineMetadata' | 'getOwnMetadata'>> {
  const r = api();
  if (typeof r.defineMetadata !== 'function' || typeof r.getOwnMetadata !== 'function') {
    throw new InjectionError(msg.reflectMissingInDecorator(decorator, owner));
  }
  return r as Required<MetadataApi>;
}

export function writeInjectable(target: AnyClass, metadata: InjectableMetadata): void {
  writer('@Injectable()', target.name).defineMetadata(INJECTABLE, metadata, target);
}

export function writeInjectToken(target: AnyClass, index: number, token: InjectionToken): void {
  const w = writer('@Inject()', target.name);
  const own = w.getOwnMetadata(INJECT_TOKENS, target) as Map<number, InjectionToken> | undefined;
  const tokens = new Map(own ?? []);
  tokens.set(index, token);
  w.defineMetadata(INJECT_TOKENS, tokens, target);
}

/** `@Injectable()`'s options on this very class (a subclass does not inherit its parent's scope). */
export function readInjectable(target: AnyClass): InjectableMetadata | undefined {
  return reader(target.name).getOwnMetadata(INJECTABLE, target) as InjectableMetadata | undefined;
}

/**
 * The constructor's parameters. A class with its own decorated constructor has its own metadata. A class
 * that declares no constructor (length 0, no metadata of its own) runs its base's, so the base's metadata
 * and arity are the ones that count, found by walking up: a handler that inherits its constructor from an
 * undecorated base then has `designTypes` undefined and `arity` > 0, which the container reports instead
 * of passing `undefined` for every dependency.
 */
export function readConstructorParams(target: AnyClass): ConstructorParams {
  const r = reader(target.name);
  let c: AnyClass = target;
  for (;;) {
    const ownTypes = r.getOwnMetadata(DESIGN_PARAMTYPES, c) as unknown[] | undefined;
    const ownTokens = r.getOwnMetadata(INJECT_TOKENS, c) as Map<number, InjectionToken> | undefined;
    const parent = Object.getPrototypeOf(c) as unknown;
    const inherits = typeof parent === 'function' && parent !== Function.prototype;
    if (ownTypes !== undefined || ownTokens !== undefined || c.length > 0 || !inherits) {
      return { designTypes: ownTypes, injected: ownTokens ?? new Map(), arity: c.length, declaredBy: c === target ? undefined : c.name };
    }
    c = parent as AnyClass;
  }
}

