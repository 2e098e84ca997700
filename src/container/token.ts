/**
 * What the container can be asked for: a class, a string, a symbol, or a typed `Token<T>`.
 * A `Token` is compared by identity, like a symbol, and carries the type of what it provides:
 *
 *   export const CONFIG = new Token<Config>('Config');
 *   constructor(@Inject(CONFIG) config: Config) {}
 */
export class Token<T = unknown> {
  /** Never set: it only ties `T` to the token, so that `Token<A>` and `Token<B>` are different types. */
  declare readonly __type?: T;

  /** @param name Shown in error messages; two tokens with the same name are still different tokens. */
  constructor(
    /** Shown in error messages, as `Token(name)`. */
    readonly name: string,
  ) {}

  /** `Token(name)`, as error messages show it. */
  toString(): string {
    return `Token(${this.name})`;
  }
}

/** What the container can be asked for: a class, a string, a symbol, or a typed {@link Token}. */
export type InjectionToken<T = unknown> = (abstract new (...args: any[]) => T) | string | symbol | Token<T>;

/** True for anything that may be used as a token. */
export function isInjectionToken(value: unknown): value is InjectionToken {
  if (typeof value === 'function' || typeof value === 'string' || typeof value === 'symbol') return true;
  try {
    return value instanceof Token;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws is no Token: said so, not its trap's error (hostile re-check)
  }
}

/** How a token reads in an error message: `Greeter`, `"Config"`, `Symbol(Config)`, `Token(Config)`. */
export function tokenName(token: unknown): string {
  if (typeof token === 'function') return token.name || 'an anonymous class';
  if (typeof token === 'string') return JSON.stringify(token);
  if (typeof token === 'symbol' || token instanceof Token) return token.toString();
  return String(token);
}
