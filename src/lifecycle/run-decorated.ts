import type { MessageRequest } from '../framing/message-request';
import type { HandlerDefinition, HookName } from '../metadata/definition';
import { runLifecycle } from './run-lifecycle';

type Hooked = Record<string | symbol, (...args: unknown[]) => unknown>;

/** Calls a decorated hook method of `instance`, if the class has one. */
export function callHook(def: HandlerDefinition, instance: unknown, hook: HookName, ...args: unknown[]): unknown {
  const key = def.hooks[hook];
  return key === undefined ? undefined : (instance as Hooked)[key](...args);
}

/**
 * The lifecycle of a decorated handler instance: @Setup → @Handle → @Finish, each given the request
 * object. With @OnMessage, the step between @Setup and @Finish is the request's message loop, which
 * calls the @OnMessage method once per message with `(message, req)`.
 */
export function runDecorated(def: HandlerDefinition, instance: unknown, req: unknown): Promise<void> {
  const { setup, handle, finish, message } = def.hooks;
  if (message === undefined) {
    const ran = runLifecycle(instance as object, { setup, handle: handle!, finish }, req);
    const wfile = (req as { wfile?: { finishWrites?: () => void | Promise<void> } }).wfile;
    return wfile?.finishWrites ? ran.then(() => wfile.finishWrites!()) : ran;
  }
  const method = (instance as Hooked)[message];
  const call = (m: unknown) => method.call(instance, m, req);
  return runLifecycle(instance as object, { setup, finish, handle: () => (req as MessageRequest).serve(call) }, req);
}
