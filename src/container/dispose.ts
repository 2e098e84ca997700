/** Disposing what the container built: `[Symbol.asyncDispose]`, else `[Symbol.dispose]`, else `dispose()`. */
import { injectionMessages as msg } from '../errors/injection.messages';
import { isThenable } from '../lifecycle/resolved';
import { settledWithin } from '../transports/event-loop';

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

/** Milliseconds one instance's dispose() is waited for before the next one's runs (it goes on running). */
export const DISPOSE_LIMIT_MS = 5000;

/**
 * Disposes `instances` one after the other, last created first, awaiting each for at most DISPOSE_LIMIT_MS
 * (5 s, as a worker's singletons get). An instance that throws, or whose dispose() has not settled by then,
 * does not stop the others: afterwards its error (for one that hung, an Error saying so) is rethrown
 * (several become one AggregateError). Without the bound one dispose() that never settled kept every
 * instance created before it undisposed, and close() pending for ever (hostile run, 2026-12-04).
 */
export async function disposeInReverse(instances: readonly unknown[], where: string, limitMs = DISPOSE_LIMIT_MS): Promise<void> {
  const errors: unknown[] = [];
  const seen = new Set<unknown>();
  for (let i = instances.length - 1; i >= 0; i--) {
    const instance = instances[i];
    if (seen.has(instance)) continue;
    seen.add(instance);
    const dispose = disposerOf(instance);
    if (!dispose) continue;
    try {
      const done = dispose();
      if (isThenable(done) && !(await settledWithin(Promise.resolve(done), limitMs))) {
        errors.push(new Error(msg.disposeHung(where, nameOf(instance), limitMs / 1000)));
      }
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, msg.disposeFailed(where, errors.length));
}

/** The class name of what the container built, for messages. */
function nameOf(instance: unknown): string {
  const ctor = (instance as { constructor?: { name?: string } } | null)?.constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : typeof instance;
}
