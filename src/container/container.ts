/**
 * The dependency-injection container: one flat registry of providers with three lifetimes.
 *
 * Methods for the caller:
 *   register(provider)      add or replace a provider (the last registration of a token wins)
 *   resolve(token, scope?)  build or look up what `token` stands for; synchronous
 *   createRequestScope()    a scope for one request; `scope.resolve(token)`, then `await scope.dispose()`
 *   validate(token)         walk the whole graph below `token` without constructing anything, and throw
 *                           the InjectionError that resolve() would throw; bootstrap calls it before binding
 *   dispose()               dispose the singletons this container built, last built first
 *
 * Lifetimes: 'singleton' (one per container), 'transient' (new on every resolve), 'request' (one per
 * RequestScope). A class that is not registered is resolvable: with @Injectable() it has that scope
 * (default 'singleton'), without it it is 'transient', which is what a handler class needs. A singleton
 * may not depend, directly or through transients, on a request-scoped token. `Container` resolves to the
 * container itself. Values given with `useValue` belong to the caller and are never disposed; instances
 * built by a class or a factory are. Transient instances are not tracked, so nothing disposes them.
 */
import { InjectionError } from '../errors/errors';
import { injectionMessages as msg } from '../errors/injection.messages';
import { isThenable } from '../lifecycle/resolved';
import { disposeInReverse } from './dispose';
import { ClassType, Provider, Recipe, Scope, toRecipe } from './provider';
import { readConstructorParams, readInjectable } from './reflection';
import { ContainerRequestScope, RequestScope } from './request-scope';
import { InjectionToken, isInjectionToken, tokenName } from './token';

/** One resolve() or validate() walk. */
interface Walk {
  /** Tokens being built, outermost first: a token met again is a cycle. */
  path: InjectionToken[];
  /** validate(): check everything, construct nothing. */
  dryRun: boolean;
  scope?: ContainerRequestScope;
  /** The nearest singleton being built above: it must not capture a request-scoped instance. */
  singleton?: string;
  /** validate(): tokens already checked, outside and inside a singleton. */
  checked?: { free: Set<InjectionToken>; inSingleton: Set<InjectionToken> };
}

/** Design types that name nothing the container can build: an @Inject(token) is needed. */
const NOT_BUILDABLE = new Set<unknown>([Object, Function, String, Number, Boolean, Symbol, BigInt, Array, Promise]);

/** A cycle error still unwinding inside its cycle, and the token where the cycle starts. */
const unwindingCycle = new WeakMap<object, InjectionToken>();
const isUnwindingCycle = (e: unknown) => typeof e === 'object' && e !== null && unwindingCycle.has(e);

/**
 * The dependency-injection container `bootstrap()` builds from its `providers`; usable on its own. Lifetimes:
 * `'singleton'` (one per container), `'transient'`, `'request'` (one per {@link RequestScope}). Resolution is
 * synchronous; every failure is an InjectionError naming the class, the parameter and a fix.
 */
export class Container {
  private readonly recipes = new Map<InjectionToken, Recipe>();
  private readonly singletons = new Map<InjectionToken, unknown>();
  /** Singletons in creation order, for dispose(). */
  private readonly created: unknown[] = [];
  /** Per class: the token for each constructor parameter (undefined: leave it to its default value). */
  private readonly plans = new WeakMap<ClassType, (InjectionToken | undefined)[]>();
  /**
   * Transient classes with no constructor parameter to inject (a handler without dependencies): resolve()
   * builds them with `new` alone, without the walk, once one resolve() has found them so.
   */
  private readonly bare = new WeakSet<object>();

  constructor(providers: readonly Provider[] = []) {
    this.recipes.set(Container, { kind: 'value', value: this });
    for (const provider of providers) this.register(provider);
  }

  /** Adds or replaces the provider of a token (the last registration wins). Throws InjectionError for an invalid provider. */
  register(provider: Provider): this {
    const [token, recipe] = toRecipe(provider);
    this.recipes.set(token, recipe);
    this.singletons.delete(token);
    if (typeof token === 'function') this.bare.delete(token);
    return this;
  }

  /** Builds or looks up what `token` stands for; request-scoped tokens need `scope`. Throws InjectionError. */
  resolve<T>(token: InjectionToken<T>, scope?: RequestScope): T {
    if (scope !== undefined && !(scope instanceof ContainerRequestScope && scope.container === this)) {
      throw new InjectionError(msg.foreignScope(tokenName(token)));
    }
    if (scope?.disposed) throw new InjectionError(msg.disposedScope(tokenName(token)));
    if (typeof token === 'function' && this.bare.has(token)) return new (token as ClassType<T>)();
    return this.root('container.resolve()', token, { path: [], dryRun: false, scope }) as T;
  }

  /** A scope for one request: `scope.resolve(token)`, then `await scope.dispose()`. */
  createRequestScope(): RequestScope {
    return new ContainerRequestScope(this);
  }

  /** Walks the whole graph below `token` without constructing anything; throws the InjectionError resolve() would. */
  validate(token: InjectionToken): void {
    const checked = { free: new Set<InjectionToken>(), inSingleton: new Set<InjectionToken>() };
    this.root('container.validate()', token, { path: [], dryRun: true, checked });
  }

  /**
   * Disposes the singletons this container built (`[Symbol.asyncDispose]`, `[Symbol.dispose]` or `dispose()`),
   * last built first, each waited for at most 5 s, or, with `limit.totalMs` (milliseconds for all of them, as a
   * worker gets), an even share of the time left. One that throws or has not settled by then does not stop the
   * others; afterwards its error is thrown (several: an AggregateError).
   */
  async dispose(limit?: { totalMs: number }): Promise<void> {
    const created = this.created.splice(0);
    this.singletons.clear();
    await disposeInReverse(created, 'Container.dispose()', limit);
  }

  /** `await using container = …`: calls dispose(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private root(where: string, token: InjectionToken, walk: Walk): unknown {
    if (!isInjectionToken(token)) throw new InjectionError(msg.notAToken(where, token));
    if (!this.canProvide(token)) throw new InjectionError(msg.unknownToken(undefined, token, tokenName(token)));
    return this.get(token, walk);
  }

  private canProvide(token: InjectionToken): boolean {
    return this.recipes.has(token) || typeof token === 'function';
  }

  /** Resolves a dependency for `site` ("parameter #1 of A's constructor"), chaining any failure below it. */
  private dependency(token: InjectionToken, site: string, walk: Walk): unknown {
    if (!this.canProvide(token)) throw new InjectionError(msg.unknownToken(site, token, tokenName(token)));
    try {
      return this.get(token, walk);
    } catch (error) {
      if (isUnwindingCycle(error)) throw error; // the cycle message already shows the whole path
      const reason = error instanceof InjectionError ? error.message : describe(error);
      throw new InjectionError(msg.chain(site, reason), { cause: error });
    }
  }

  /** The class `token` builds, for a cycle's message, where it is not the token itself (a useClass provider's). */
  private builtBy(token: InjectionToken): string | undefined {
    const recipe = this.recipes.get(token);
    return recipe?.kind === 'class' && recipe.useClass !== token ? tokenName(recipe.useClass) : undefined;
  }

  private get(token: InjectionToken, walk: Walk): unknown {
    const recipe = this.recipes.get(token) ?? { kind: 'class', useClass: token as ClassType };
    if (recipe.kind === 'value') return recipe.value;
    const scope = this.scopeOf(token, recipe);
    const name = tokenName(token);
    if (scope === 'singleton' && this.singletons.has(token)) return this.singletons.get(token);
    if (scope === 'request') {
      if (walk.singleton !== undefined) throw new InjectionError(msg.scopeWidening(walk.singleton, name));
      if (!walk.dryRun) {
        if (!walk.scope) throw new InjectionError(msg.noRequestScope(name));
        if (walk.scope.instances.has(token)) return walk.scope.instances.get(token);
      }
    }
    const start = walk.path.indexOf(token);
    if (start >= 0) {
      const cycle = [...walk.path.slice(start), token];
      const error = new InjectionError(msg.cycle(cycle.map(tokenName), cycle.map((t) => this.builtBy(t))));
      unwindingCycle.set(error, token);
      throw error;
    }
    const checked = walk.checked && (walk.singleton === undefined ? walk.checked.free : walk.checked.inSingleton);
    if (checked?.has(token)) return undefined;

    walk.path.push(token);
    let value: unknown;
    try {
      value = this.build(token, recipe, scope === 'singleton' ? { ...walk, singleton: name } : walk);
    } catch (error) {
      if (isUnwindingCycle(error) && unwindingCycle.get(error as object) === token) unwindingCycle.delete(error as object);
      throw error;
    } finally {
      walk.path.pop();
    }
    if (checked) checked.add(token);
    else if (scope === 'transient' && recipe.kind === 'class' && recipe.useClass === token && this.plans.get(recipe.useClass)?.length === 0) this.bare.add(recipe.useClass);
    else if (scope === 'singleton') this.keep(this.singletons, this.created, token, value);
    else if (scope === 'request') this.keep(walk.scope!.instances, walk.scope!.created, token, value);
    return value;
  }

  private keep(cache: Map<InjectionToken, unknown>, created: unknown[], token: InjectionToken, value: unknown): void {
    cache.set(token, value);
    created.push(value);
  }

  private scopeOf(token: InjectionToken, recipe: Exclude<Recipe, { kind: 'value' }>): Scope {
    if (recipe.scope !== undefined) return recipe.scope;
    const injectable = readInjectable((recipe as { useClass: ClassType }).useClass);
    if (injectable) return injectable.scope ?? 'singleton';
    return this.recipes.has(token) ? 'singleton' : 'transient';
  }

  private build(token: InjectionToken, recipe: Exclude<Recipe, { kind: 'value' }>, walk: Walk): unknown {
    if (recipe.kind === 'class') return this.construct(recipe.useClass, walk);
    const display = tokenName(token);
    const args = recipe.inject.map((dep, i) => this.dependency(dep, msg.factorySite(display, i), walk));
    if (walk.dryRun) return undefined;
    const value = recipe.factory(...args);
    if (isThenable(value)) {
      Promise.resolve(value).then(undefined, () => {}); // nobody can await it any more: keep its rejection from crashing the process
      throw new InjectionError(msg.asyncFactory(display));
    }
    return value;
  }

  private construct(ctor: ClassType, walk: Walk): unknown {
    const owner = ctor.name || 'an anonymous class';
    const args = this.planFor(ctor, owner, walk).map((dep, i) =>
      dep === undefined ? undefined : this.dependency(dep, msg.paramSite(owner, i), walk),
    );
    return walk.dryRun ? undefined : new ctor(...args);
  }

  /** Which token each constructor parameter asks for; throws for a parameter nobody can name. */
  private planFor(ctor: ClassType, owner: string, walk?: Walk): (InjectionToken | undefined)[] {
    const cached = this.plans.get(ctor);
    if (cached) return cached;
    const { designTypes, injected, arity, declaredBy } = readConstructorParams(ctor);
    const count = Math.max(designTypes?.length ?? arity, ...[...injected.keys()].map((i) => i + 1));
    const plan: (InjectionToken | undefined)[] = [];
    for (let i = 0; i < count; i++) {
      const token = injected.get(i) ?? designTypes?.[i];
      if (injected.has(i) || (typeof token === 'function' && !NOT_BUILDABLE.has(token))) {
        plan.push(token as InjectionToken);
      } else if (designTypes === undefined) {
        throw new InjectionError(declaredBy ? msg.inheritedNoParamTypes(owner, declaredBy, i) : msg.noParamTypes(owner, i, dependentHasParamTypes(ctor, walk)));
      } else if (i >= arity) {
        plan.push(undefined); // a parameter with a default value (or after one): let the default apply
      } else {
        throw new InjectionError(msg.untypedParam(owner, i, token));
      }
    }
    this.plans.set(ctor, plan);
    return plan;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Whether the class that asked for `ctor` has design:paramtypes: then the program was compiled with
 * emitDecoratorMetadata, and `ctor` lacks them because no decorator marks it (it needs @Injectable()), not
 * because the compiler records none (tsx, esbuild): the error gives the fix that applies.
 */
function dependentHasParamTypes(ctor: ClassType, walk: Walk | undefined): boolean {
  const dependent = walk?.path.filter((t) => typeof t === 'function' && t !== ctor).pop();
  return typeof dependent === 'function' && readConstructorParams(dependent as ClassType).designTypes !== undefined;
}
