import type { HandlerDefinition, HookName } from '../metadata/definition';

type Hooked = Record<string | symbol, (...args: unknown[]) => unknown>;

/** Calls a decorated hook method of `instance`, if the class has one. */
export function callHook(def: HandlerDefinition, instance: unknown, hook: HookName, ...args: unknown[]): unknown {
  const key = def.hooks[hook];
  return key === undefined ? undefined : (instance as Hooked)[key](...args);
}

/**
 * The lifecycle of a decorated handler instance: @Setup → @Handle → @Finish, each given the request
 * object, with runLifecycle's rules (finish also after handle threw, not after setup threw). Written
 * out rather than through runLifecycle because it runs once per request or datagram: absent hooks cost
 * nothing and a hook that returns no promise is not awaited. `then` runs after a lifecycle that did not
 * throw, in the same frame (the server sends a datagram's reply there).
 */
export async function runDecorated(def: HandlerDefinition, instance: unknown, req: unknown, then?: () => unknown): Promise<void> {
  const { setup, handle, finish } = def.hooks;
  const self = instance as Hooked;
  if (setup !== undefined) await self[setup](req);
  try {
    const handled = self[handle](req);
    if (isThenable(handled)) await handled;
  } finally {
    if (finish !== undefined) await self[finish](req);
  }
  if (then) await then();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
