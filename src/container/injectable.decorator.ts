/**
 * `@Injectable()` / `@Injectable` / `@Injectable({ scope })`: marks a class as built by the container and
 * gives its lifetime (default 'singleton'). It only records metadata; a class is also resolvable without
 * it (then it is 'transient'), but TypeScript emits `design:paramtypes` only for a decorated class.
 */
import { InjectionError } from '../errors/errors';
import { injectionMessages as msg } from '../errors/injection.messages';
import { isScope, Scope } from './provider';
import { callerFile } from '../metadata/source-location';
import { writeInjectable } from './reflection';

/** Options of `@Injectable({ scope })`. */
export interface InjectableOptions {
  /** Default `'singleton'`. */
  scope?: Scope;
}

/** Any class, abstract ones included: what `@Injectable` may decorate. */
export type AnyClass = abstract new (...args: any[]) => unknown;

/**
 * `@Injectable` (bare): marks a class as built by the container, a singleton; TypeScript then records its
 * constructor parameter types. Throws InjectionError when put on something that is not a class.
 */
export function Injectable(target: AnyClass): void;
/** `@Injectable()` / `@Injectable({ scope })`: as bare, with a lifetime: `'singleton'` (default), `'transient'` or `'request'`. */
export function Injectable(options?: InjectableOptions): (target: AnyClass) => void;
export function Injectable(arg?: AnyClass | InjectableOptions): void | ((target: AnyClass) => void) {
  if (typeof arg === 'function') return decorate(arg, {});
  const options = arg ?? {};
  return (target: AnyClass) => decorate(target, options);
}

function decorate(target: unknown, options: InjectableOptions): void {
  if (typeof target !== 'function') throw new InjectionError(msg.injectableNotOnClass(target));
  const cls = target as AnyClass;
  if (typeof options !== 'object' || options === null) {
    throw new InjectionError(msg.invalidScope(`@Injectable() on ${cls.name}`, options));
  }
  if (options.scope !== undefined && !isScope(options.scope)) {
    throw new InjectionError(msg.invalidScope(`@Injectable() on ${cls.name}`, options.scope));
  }
  const source = callerFile();
  writeInjectable(cls, { ...(options.scope === undefined ? {} : { scope: options.scope }), ...(source ? { source } : {}) });
}
