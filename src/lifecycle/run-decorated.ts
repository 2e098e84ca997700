import type { HandlerDefinition, HookName } from '../metadata/definition';
import { runLifecycle } from './run-lifecycle';

type Hooked = Record<string | symbol, (...args: unknown[]) => unknown>;

/** Calls a decorated hook method of `instance`, if the class has one. */
export function callHook(def: HandlerDefinition, instance: unknown, hook: HookName, ...args: unknown[]): unknown {
  const key = def.hooks[hook];
  return key === undefined ? undefined : (instance as Hooked)[key](...args);
}

/** The lifecycle of a decorated handler instance: @Setup → @Handle → @Finish, each given the request object. */
export function runDecorated(def: HandlerDefinition, instance: unknown, req: unknown): Promise<void> {
  const ran = runLifecycle(instance as object, def.hooks, req);
  const wfile = (req as { wfile?: { finishWrites?: () => void | Promise<void> } }).wfile;
  return wfile?.finishWrites ? ran.then(() => wfile.finishWrites!()) : ran;
}
