import type { MessageRequest } from '../framing/message-request';
import { type HandlerDefinition, type HookName, isStreamTransport } from '../metadata/definition';
import { LifecycleSteps, runLifecycle } from './run-lifecycle';
import { messages } from '../errors/messages';
import { describeThrown } from '../errors/thrown';
import { settledWithin } from '../transports/event-loop';
import { BufferWriter } from '../transports/stream-writer';

type Hooked = Record<string | symbol, (...args: unknown[]) => unknown>;

/**
 * `hook`, a @HandleError's result, waited for at most `limitSeconds` (the server's shutdownTimeout; null or
 * undefined: as long as it takes). Rejects with the hook's own failure, or, when it has not settled by then,
 * with an Error saying so that names `error`, the one it was given; the hook goes on running. One that
 * never settled kept its connection open and its request in flight until shutdown (hostile-client run,
 * 2026-12-03). Used where the hook runs: the server's process (HandlerWiring) and a worker (executors.ts).
 */
export function handleErrorWithin(hook: unknown, owner: string, limitSeconds: number | null | undefined, error: unknown): Promise<unknown> {
  const settling = Promise.resolve(hook);
  if (limitSeconds == null) return settling;
  return settledWithin(settling, limitSeconds * 1000).then((settled) => {
    if (!settled) throw new Error(messages.handleErrorUnsettled(owner, limitSeconds, describeThrown(error)));
  });
}

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
  const ran = decoratedLifecycle(def, instance, req);
  return def.hooks.message === undefined ? ran.then(() => finishWritesOf(req)) : ran;
}

/** A @Handle class's steps, made once per definition (the lifecycle runs once per request or datagram). */
const stepsOf = new WeakMap<HandlerDefinition, LifecycleSteps>();

/** runDecorated without its last step (finishWritesOf): for a caller that chains that step itself. */
export function decoratedLifecycle(def: HandlerDefinition, instance: unknown, req: unknown): Promise<void> {
  const { setup, handle, finish, message } = def.hooks;
  if (message === undefined) {
    let steps = stepsOf.get(def);
    if (!steps) stepsOf.set(def, (steps = { setup, handle: handle!, finish, setupFailed: setupFailedOf(def) }));
    return runLifecycle(instance as object, steps, req);
  }
  const method = (instance as Hooked)[message];
  const call = (m: unknown) => method.call(instance, m, req);
  return runLifecycle(instance as object, { setup, finish, handle: () => (req as MessageRequest).serve(call), setupFailed: setupFailedOf(def) }, req);
}

/** Datagrams only: a stream's requests owe no reply to drop, and each step costs a closure per request (runLifecycle). */
function setupFailedOf(def: HandlerDefinition): ((req: unknown) => void) | undefined {
  return isStreamTransport(def.transport) ? undefined : discardDatagramReply;
}

/**
 * @Setup threw: a datagram's reply is not sent, as Python's DatagramRequestHandler sends it from finish(), which
 * does not run when setup() raised (and as the classic layer does). What @Setup wrote is dropped.
 */
function discardDatagramReply(req: unknown): void {
  const writer = (req as { wfile?: unknown }).wfile ?? (req as { reply?: unknown }).reply;
  if (writer instanceof BufferWriter) writer.discard();
}

/** After a lifecycle that did not throw: the writes the handler did not await, delivered or failed (stream requests). */
export function finishWritesOf(req: unknown): void | Promise<void> {
  return (req as { wfile?: { finishWrites?: () => void | Promise<void> } }).wfile?.finishWrites?.();
}
