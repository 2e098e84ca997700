/**
 * Metadata keys the DI side reads and writes. Only `./reflection.ts` uses them; everything else asks it
 * through typed functions.
 */

/** Written by TypeScript (`emitDecoratorMetadata`) on every decorated class: the constructor's parameter types. */
export const DESIGN_PARAMTYPES = 'design:paramtypes';
/** Written by `@Injectable()`: `{ scope?: Scope }`. Read from the class itself only, never inherited. */
export const INJECTABLE = 'sockserve:di:injectable';
/** Written by `@Inject(token)`: a `Map<parameterIndex, InjectionToken>` for the constructor's parameters. */
export const INJECT_TOKENS = 'sockserve:di:inject-tokens';
