/**
 * Providers: how the container learns what to build for a token.
 *
 *   Greeter                                                   a class: the token is the class itself
 *   { provide: Greeter, useClass: LoudGreeter, scope? }       build another class for this token
 *   { provide: 'Config', useValue: config }                   hand out a value the caller owns (never disposed)
 *   { provide: DB, useFactory: (cfg) => open(cfg), inject: ['Config'], scope? }
 *
 * Resolution is synchronous: a factory that returns a Promise is an InjectionError telling the user to
 * await the value before bootstrap and register it with `useValue`. Keeping `resolve()` synchronous keeps
 * handler construction on the hot path free of extra awaits, and makes cycles and scopes checkable by
 * `validate()` without running anything.
 *
 * Default scope: `scope` on the provider, else the class's `@Injectable({ scope })`, else 'singleton'.
 * A class that is not registered at all is still resolvable: with `@Injectable()` it takes that scope
 * (default 'singleton'); without it, it is 'transient' (a handler class gets a new instance every time).
 */
import { InjectionError } from '../errors/errors';
import { injectionMessages as msg } from '../errors/injection.messages';
import { describeBriefly, describeThrown } from '../errors/thrown';
import { InjectionToken, isInjectionToken, tokenName } from './token';

/** How long an instance lives: one per container (`'singleton'`, the default), one per injection (`'transient'`), one per request (`'request'`, disposed after `@Finish`). */
export type Scope = 'singleton' | 'transient' | 'request';
export const SCOPES: readonly Scope[] = ['singleton', 'transient', 'request'];

/** A class the container can construct. */
export type ClassType<T = unknown> = new (...args: any[]) => T;

/** `{ provide, useClass }`: build `useClass` (its own dependencies injected) whenever `provide` is asked for. */
export interface ClassProvider<T = unknown> {
  /** The token this provider answers. */
  provide: InjectionToken<T>;
  /** The class to build. */
  useClass: ClassType<T>;
  /** Overrides the class's `@Injectable({ scope })`; default `'singleton'`. */
  scope?: Scope;
}
/** `{ provide, useValue }`: hand out this value, which the caller owns (never disposed). */
export interface ValueProvider<T = unknown> {
  /** The token this provider answers. */
  provide: InjectionToken<T>;
  /** The value; it must be structured-cloneable, with a string or `Symbol.for()` token, to reach workers. */
  useValue: T;
}
/** `{ provide, useFactory, inject? }`: call the factory with the `inject` tokens' values. Cannot reach workers. */
export interface FactoryProvider<T = unknown> {
  /** The token this provider answers. */
  provide: InjectionToken<T>;
  /** Receives the `inject` tokens' values, in order. Must not return a Promise (see above). */
  useFactory: (...deps: any[]) => T;
  /** Tokens whose values are passed to `useFactory`, in order; default none. */
  inject?: InjectionToken[];
  /** Default `'singleton'`. */
  scope?: Scope;
}

/** What `bootstrap(Handler, { providers })` and `new Container(providers)` take: a class (provided for itself) or a provider object. */
export type Provider<T = any> = ClassType<T> | ClassProvider<T> | ValueProvider<T> | FactoryProvider<T>;

/** A provider after validation: what the container keeps per token. */
export type Recipe =
  | { kind: 'value'; value: unknown }
  | { kind: 'class'; useClass: ClassType; scope?: Scope }
  | { kind: 'factory'; factory: (...deps: unknown[]) => unknown; inject: readonly InjectionToken[]; scope: Scope };

export function isScope(value: unknown): value is Scope {
  return SCOPES.includes(value as Scope);
}

/** Checks a provider's shape and turns it into a `[token, recipe]` pair. Throws InjectionError. */
export function toRecipe(provider: Provider): [InjectionToken, Recipe] {
  try {
    return readRecipe(provider);
  } catch (err) {
    if (err instanceof InjectionError) throw err;
    // Reading the provider is its code too (a getter, a Proxy): bootstrap() rejected with that bare error, naming
    // neither the provider nor its token (hostile run).
    throw invalid('', `reading it threw ${describeBriefly(err)}`, 'give a plain object { provide, useClass | useValue | useFactory } whose fields can be read');
  }
}

function readRecipe(provider: Provider): [InjectionToken, Recipe] {
  if (typeof provider === 'function') return [provider, { kind: 'class', useClass: provider }];
  if (typeof provider !== 'object' || provider === null) {
    throw invalid(describeThrown(provider), 'a provider is a class or { provide, useClass | useValue | useFactory }',
      'pass the class itself, or an object with provide and one of useClass, useValue, useFactory');
  }
  const p = provider as Partial<ClassProvider & ValueProvider & FactoryProvider>;
  if (!isInjectionToken(p.provide)) {
    throw invalid('', `provide is ${tokenName(p.provide)}, but a token is a class, a string, a symbol or a Token`,
      'set provide to the token that constructors ask for');
  }
  const name = `for ${tokenName(p.provide)}`;
  const uses = (['useClass', 'useValue', 'useFactory'] as const).filter((k) => k in p);
  if (uses.length !== 1) {
    throw invalid(name, uses.length ? `it has ${uses.join(' and ')}` : 'it has none of useClass, useValue, useFactory',
      'give exactly one of useClass, useValue or useFactory');
  }
  if (p.scope !== undefined && !isScope(p.scope)) {
    throw new InjectionError(msg.invalidScope(`Provider ${name}`, p.scope));
  }
  if ('inject' in p && !('useFactory' in p)) {
    throw invalid(name, 'inject is only read with useFactory', 'remove inject, or use useFactory');
  }
  if ('useValue' in p) return [p.provide, { kind: 'value', value: p.useValue }];
  if ('useClass' in p) {
    if (typeof p.useClass !== 'function') {
      throw invalid(name, `useClass is ${describeThrown(p.useClass)}, not a class`, 'pass the class itself, not an instance');
    }
    return [p.provide, { kind: 'class', useClass: p.useClass, scope: p.scope }];
  }
  return [p.provide, factoryRecipe(name, p as FactoryProvider)];
}

function factoryRecipe(name: string, p: FactoryProvider): Recipe {
  if (typeof p.useFactory !== 'function') {
    throw invalid(name, `useFactory is ${String(p.useFactory)}, not a function`, 'pass a function that returns the value');
  }
  // An async function always returns a Promise, which the container never awaits: said here, at bootstrap(), not
  // at the first request (NestJS users write async factories; new-user run).
  if ((p.useFactory as { constructor?: { name?: string } }).constructor?.name === 'AsyncFunction') {
    throw invalid(name, 'useFactory is an async function, and its Promise would be the value', 'await the value before bootstrap() and register it with useValue');
  }
  const inject = p.inject ?? [];
  if (!Array.isArray(inject)) throw invalid(name, 'inject is not an array', 'list the tokens: inject: [A, \'Config\']');
  inject.forEach((t, i) => {
    if (!isInjectionToken(t)) {
      throw invalid(name, `inject[${i}] is ${tokenName(t)}, not a token`, 'list classes, strings, symbols or Tokens');
    }
  });
  if (p.useFactory.length > inject.length) {
    throw invalid(name, `the factory takes ${p.useFactory.length} parameter(s) but inject lists ${inject.length} token(s)`,
      'list one token per factory parameter in inject');
  }
  return { kind: 'factory', factory: p.useFactory, inject, scope: p.scope ?? 'singleton' };
}

function invalid(name: string, problem: string, fix: string): InjectionError {
  return new InjectionError(msg.invalidProvider(name, problem, fix));
}
