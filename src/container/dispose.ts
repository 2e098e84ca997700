/** Disposing what the container built: `[Symbol.asyncDispose]`, else `[Symbol.dispose]`, else `dispose()`. */
import { injectionMessages as msg } from '../errors/injection.messages';
import { isThenable } from '../lifecycle/resolved';
import { settledWithin } from '../transports/event-loop';

type Disposer = () => unknown;

/**
 * The instance's disposer, if it has one. Looking it up is the instance's code too (a getter, a Proxy): a lookup
 * that throws is a disposer that throws, in turn with the others; it stopped every other instance's disposal
 * before any ran (hostile run).
 */
function disposerOf(instance: unknown): Disposer | undefined {
  if ((typeof instance !== 'object' && typeof instance !== 'function') || instance === null) return undefined;
  const o = instance as Record<PropertyKey, unknown>;
  for (const key of [Symbol.asyncDispose, Symbol.dispose, 'dispose']) {
    let fn: unknown;
    try {
      fn = o[key];
    } catch (error) {
      return () => {
        throw error;
      };
    }
    if (typeof fn === 'function') return () => (fn as Function).call(instance);
  }
  return undefined;
}

/** Milliseconds one instance's dispose() is waited for before the next one's runs (it goes on running). */
export const DISPOSE_LIMIT_MS = 5000;

/**
 * How long each dispose() is waited for: milliseconds each, or `{ totalMs }` for all of them (a worker the
 * pool gives 5 s in all), each then getting an even share of the time left.
 */
export type DisposeLimit = number | { totalMs: number };

/**
 * Disposes `instances` one after the other, last created first, awaiting each for at most DISPOSE_LIMIT_MS
 * (5 s, as a worker's singletons get). An instance that throws, or whose dispose() has not settled by then,
 * does not stop the others: afterwards its error (for one that hung, an Error saying so) is rethrown
 * (several become one AggregateError). Without the bound one dispose() that never settled kept every
 * instance created before it undisposed, and close() pending for ever (hostile run, 2026-12-04). `hold` false:
 * that bound does not keep the process alive (settledWithin).
 */
export async function disposeInReverse(instances: readonly unknown[], where: string, limit: DisposeLimit = DISPOSE_LIMIT_MS, hold = true): Promise<void> {
  const errors: unknown[] = [];
  const seen = new Set<unknown>();
  const pending: Array<[unknown, Disposer]> = [];
  for (let i = instances.length - 1; i >= 0; i--) {
    const instance = instances[i];
    if (seen.has(instance)) continue;
    seen.add(instance);
    const dispose = disposerOf(instance);
    if (dispose) pending.push([instance, dispose]);
  }
  const deadline = typeof limit === 'number' ? undefined : performance.now() + limit.totalMs;
  for (let i = 0; i < pending.length; i++) {
    const [instance, dispose] = pending[i];
    // With a total, each gets an even share of what is left: one that hangs cannot take the others' time.
    const ms = deadline === undefined ? (limit as number) : Math.max(0, (deadline - performance.now()) / (pending.length - i));
    try {
      const done = dispose();
      if (isThenable(done) && !(await settledWithin(Promise.resolve(done), ms, hold))) {
        errors.push(new Error(msg.disposeHung(where, nameOf(instance), Math.round(ms / 100) / 10)));
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
