import { describeThrown } from './thrown';

/**
 * Message builders for `InjectionError`. Every message is a full sentence that names the class, the
 * parameter position where there is one, and one fix. Nested failures chain, one indented level per
 * constructor: `Cannot resolve parameter #0 of A's constructor. Reason:\n  <the cause>`.
 */

const SCOPES = `'singleton', 'transient' or 'request'`;
const IMPORT_FIX =
  `Fix: add import 'reflect-metadata' once at the program's entry point, before any decorated class is loaded.`;

const indent = (text: string) => text.replace(/^/gm, '  ');

/** How a token is written inside `{ provide: ..., useValue: ... }` in a fix. */
function provideFix(token: unknown, display: string): string {
  if (typeof token === 'string') {
    return `Fix: add { provide: '${token.replace(/'/g, "\\'")}', useValue: ... } (or useClass, or, outside @Threading and @Forking, useFactory) to bootstrap's providers.`;
  }
  const what = typeof token === 'symbol' ? 'symbol' : 'Token';
  return (
    `Fix: add { provide: <that same ${what}>, useValue: ... } to bootstrap's providers; ` +
    `each ${display.replace(/\((.*)\)$/, "('$1')")} call makes a new ${what}, so export one constant and use it in both places.`
  );
}

/** Why a parameter's design type names nothing the container can build. */
function designTypeReason(designType: unknown): string {
  if (designType === undefined) {
    return `its type does not exist at runtime (design type undefined: a type-only import, or a class not yet defined because of a circular import)`;
  }
  if (designType === Object) {
    return `its type is an interface, a union or another type that does not exist at runtime (design type Object)`;
  }
  return `its type is ${(designType as { name?: string }).name ?? String(designType)}, which the container does not build`;
}

export const injectionMessages = {
  paramSite: (owner: string, index: number) => `parameter #${index} of ${owner}'s constructor`,
  factorySite: (token: string, index: number) => `inject[${index}] of the factory for ${token}`,

  chain: (site: string, cause: string) => `Cannot resolve ${site}. Reason:\n${indent(cause)}`,

  notAToken: (where: string, value: unknown) =>
    `${where}: ${typeof value === 'symbol' ? value.toString() : String(value)} is not a token; a token is a class, ` +
    `a string, a symbol or a Token (undefined here usually means a circular import). Fix: pass the class or ` +
    `the token its provider was registered with.`,

  unknownToken: (site: string | undefined, token: unknown, display: string) =>
    site
      ? `Cannot resolve ${site}: no provider for token ${display}. ${provideFix(token, display)}`
      : `Cannot resolve ${display}: no provider is registered for this token. ${provideFix(token, display)}`,

  untypedParam: (owner: string, index: number, designType: unknown) =>
    `Cannot resolve parameter #${index} of ${owner}'s constructor: ${designTypeReason(designType)}. ` +
    `Fix: name the dependency with @Inject(token) on that parameter and register the token in bootstrap's providers.`,

  noParamTypes: (owner: string, index: number, metadataOn = false) =>
    metadataOn
      ? `Cannot resolve parameter #${index} of ${owner}'s constructor: ${owner} has no design:paramtypes metadata. ` +
        `Other classes have theirs, so emitDecoratorMetadata is on: TypeScript records the types only for a decorated ` +
        `class, and no decorator marks ${owner}. Fix: put @Injectable() on ${owner}, or name every parameter of ${owner} ` +
        `with @Inject(token).`
      : `Cannot resolve parameter #${index} of ${owner}'s constructor: ${owner} has no design:paramtypes metadata, ` +
    `so its parameter types are unknown (TypeScript records them only for a decorated class compiled with ` +
    `emitDecoratorMetadata, after reflect-metadata is loaded). Fix: enable "emitDecoratorMetadata" in tsconfig.json ` +
    `(a handler class needs nothing more: its own decorators make TypeScript record the types; another class also needs ` +
    `@Injectable()), or name every parameter of ${owner} with @Inject(token).`,

  inheritedNoParamTypes: (owner: string, base: string, index: number) =>
    `Cannot resolve parameter #${index} of ${owner}'s constructor: ${owner} inherits its constructor from ${base}, ` +
    `which has no design:paramtypes metadata (TypeScript records it only for a decorated class compiled with ` +
    `emitDecoratorMetadata), so the dependencies would all arrive as undefined. Fix: decorate ${base} with ` +
    `@Injectable(), declare a constructor in ${owner} that takes the dependencies and passes them to super(), ` +
    `or name every parameter of ${base}'s constructor with @Inject(token).`,

  reflectMissing: (owner: string) =>
    `Cannot resolve ${owner}: Reflect.getMetadata is not a function, so the types of ${owner}'s constructor ` +
    `parameters cannot be read. ${IMPORT_FIX}`,

  reflectMissingInDecorator: (decorator: string, owner: string) =>
    `${decorator} on ${owner}: Reflect.defineMetadata is missing, so decorators cannot record anything. ${IMPORT_FIX}`,

  /** `path`: the tokens of the cycle, its first again at the end; `built[i]`: what path[i] builds, where not itself ("cyc" → Cyc1). */
  cycle: (path: string[], built: Array<string | undefined> = []) =>
    `Cannot resolve ${path[0]}: dependency cycle ${path.map((token, i) => (built[i] !== undefined && i < path.length - 1 ? `${token} (${built[i]})` : token)).join(' -> ')}. ` +
    (path.length === 2
      ? `Fix: remove the ${path[0]} parameter from ${built[0] ?? path[0]}'s constructor; nothing can be built from itself.`
      : `Fix: break the cycle, for example by moving what ${built[0] ?? path[0]} and ${built[path.length - 2] ?? path[path.length - 2]} share into ` +
        `a third class that both inject.`),

  scopeWidening: (singleton: string, request: string) =>
    `Cannot resolve ${singleton}: it is a singleton but depends on ${request}, which is request-scoped, so one ` +
    `request's ${request} would be kept for every request. Fix: give ${singleton} scope 'request' ` +
    `(@Injectable({ scope: 'request' }) or the provider's scope), or make ${request} a singleton.`,

  noRequestScope: (name: string) =>
    `Cannot resolve ${name}: it is request-scoped and no request scope was given. Fix: resolve it through ` +
    `container.createRequestScope().resolve(${name}); bootstrap does this for every request.`,

  disposedScope: (name: string) =>
    `Cannot resolve ${name}: its request scope has been disposed. Fix: create a new scope with ` +
    `container.createRequestScope() for each request.`,

  foreignScope: (name: string) =>
    `Cannot resolve ${name}: the request scope was created by another container. Fix: call ` +
    `createRequestScope() on the container you resolve from.`,

  asyncFactory: (display: string) =>
    `Cannot resolve ${display}: its factory returned a Promise (or a value await takes for one: with a then method, or a then that throws when read), and the container resolves synchronously. ` +
    `Fix: await the value before bootstrap and register the result, { provide: ${display}, useValue: await load() }.`,

  hookScopeDisposeFailed: (handler: string, hook: string, error: unknown) =>
    `${handler}: disposing the request scope of a ${hook} call failed (the server went on): ` +
    `${(error as Error)?.stack ?? String(error)}`,
  abandonedScopeDisposeFailed: (handler: string, error: unknown) =>
    `${handler}: disposing the request scope of a request the server gave up (shutdownTimeout, close(), a second ` +
    `signal) failed (the request was reported already): ${(error as Error)?.stack ?? String(error)}`,
  disposeHung: (where: string, name: string, seconds: number) =>
    `${where}: ${name}'s dispose() did not settle within ${seconds} s; the instances created before it were disposed ` +
    `meanwhile (it still runs). Fix: make its dispose() end, bounding what it waits for (a connection's close, a flush).`,
  disposeFailed: (where: string, count: number) =>
    `${where}: ${count} instances threw while being disposed; every instance was still disposed, and the errors are in .errors.`,

  invalidProvider: (which: string, problem: string, fix: string) =>
    `Invalid provider${which ? ` ${which}` : ''}: ${problem}. Fix: ${fix}.`,

  invalidScope: (where: string, scope: unknown) =>
    `${where}: scope ${typeof scope === 'string' ? JSON.stringify(scope) : describeThrown(scope)} is not a scope. Fix: use ${SCOPES}.`,

  injectNotOnConstructor: (owner: string, member: string, index: number) =>
    `@Inject() on parameter #${index} of ${owner}.${member}: only constructor parameters are injected. ` +
    `Fix: take the dependency in ${owner}'s constructor.`,

  injectBadToken: (owner: string, index: number, token: unknown) =>
    `@Inject(${typeof token === 'symbol' ? token.toString() : describeThrown(token)}) on parameter #${index} of ${owner}'s constructor: ` +
    `a token is a class, a string, a symbol or a Token${token === undefined ? ' (undefined here usually means a circular import)' : ''}. ` +
    `Fix: pass a token that is defined when ${owner} is declared, e.g. a Token constant exported from a module that does not import ${owner}'s module.`,

  injectableNotOnClass: (target: unknown) =>
    `@Injectable() was applied to ${String(target)}, not to a class. Fix: put @Injectable() on the class declaration.`,
};
