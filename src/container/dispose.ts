/** Disposing what the container built: `[Symbol.asyncDispose]`, else `[Symbol.dispose]`, else `dispose()`. */
import { injectionMessages as msg } from '../errors/injection.messages';

type Disposer = () => unknown;

function disposerOf(instance: unknown): Disposer | undefined {
  if ((typeof instance !== 'object' && typeof instance !== 'function') || instance === null) return undefined;
  const o = instance as Record<PropertyKey, unknown>;
  for (const key of [Symbol.asyncDispose, Symbol.dispose, 'dispose']) {
    const fn = o[key];
    if (typeof fn === 'function') return () => fn.call(instance);
  }
  return undefined;
}

/**
 * Disposes `instances` one after the other, last created first, awaiting each. An instance that throws
 * does not stop the others; afterwards its error is rethrown (several become one AggregateError).
 */
export async function disposeInReverse(instances: readonly unknown[], where: string): Promise<void> {
  const errors: unknown[] = [];
  const seen = new Set<unknown>();
  for (let i = instances.length - 1; i >= 0; i--) {
    const instance = instances[i];
    if (seen.has(instance)) continue;
    seen.add(instance);
    const dispose = disposerOf(instance);
    if (!dispose) continue;
    try {
      await dispose();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, msg.disposeFailed(where, errors.length));
}
