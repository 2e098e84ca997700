/**
 * `@Inject(token)` on a constructor parameter: resolve this parameter by `token` instead of by its
 * TypeScript type. Needed for interfaces, unions and primitives (their design type is `Object`,
 * `String`…), for string, symbol and `Token` tokens, and for classes that a circular import leaves
 * undefined at decoration time. It only records metadata.
 *
 *   constructor(@Inject('Config') config: Config, @Inject(LOGGER) log: Logger) {}
 */
import { InjectionError } from '../errors/errors';
import { injectionMessages as msg } from '../errors/injection.messages';
import { writeInjectToken } from './reflection';
import { InjectionToken, isInjectionToken } from './token';

type AnyClass = abstract new (...args: any[]) => unknown;

/**
 * Resolves this constructor parameter by `token` instead of by its TypeScript type: needed for interfaces,
 * unions, primitives, string/symbol/{@link Token} tokens, and under compilers without decorator metadata
 * (tsx, esbuild). Throws InjectionError when put on a method parameter or given something that is not a token.
 *
 * @example constructor(@Inject('Config') config: Config, @Inject(LOGGER) log: Logger) {}
 */
export function Inject<T>(
  token: InjectionToken<T>,
): (target: object, propertyKey: string | symbol | undefined, parameterIndex: number) => void {
  return (target, propertyKey, parameterIndex) => {
    if (propertyKey !== undefined || typeof target !== 'function') {
      const owner = typeof target === 'function' ? target.name : target.constructor.name;
      throw new InjectionError(msg.injectNotOnConstructor(owner, String(propertyKey), parameterIndex));
    }
    const cls = target as AnyClass;
    if (!isInjectionToken(token)) throw new InjectionError(msg.injectBadToken(cls.name, parameterIndex, token));
    writeInjectToken(cls, parameterIndex, token);
  };
}
