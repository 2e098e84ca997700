/**
 * The per-request lifecycle hooks ([handlers and the lifecycle](../../docs/handlers-and-lifecycle.md)). Each marks one method of the handler
 * class; the explorer checks the combination (exactly one @Handle, at most one method per hook on a class). All work bare
 * (`@Handle`) and called (`@Handle()`), and only on instance methods.
 */
import {
  className,
  configurationMessages as messages,
  hookDecoratorNames,
  memberName,
} from '../errors/configuration.messages';
import type { HookName } from '../metadata/definition';
import { addHook } from '../metadata/reflection';
import { fail, rejectStandardDecorators } from './options.validation';

/** A lifecycle decorator: `@Handle` (TypeScript calls it with the method) or `@Handle()`. */
export interface HookDecorator {
  (): MethodDecorator;
  (target: object, key: string | symbol, descriptor: PropertyDescriptor): void;
}

function isKey(key: unknown): key is string | symbol {
  return typeof key === 'string' || typeof key === 'symbol';
}

function hookDecorator(hook: HookName): HookDecorator {
  const decorator = hookDecoratorNames[hook];
  const record = (target: unknown, key?: unknown, descriptor?: unknown): void => {
    rejectStandardDecorators(decorator, key);
    if (!isKey(key)) {
      if (typeof target === 'function' && key === undefined) {
        fail(messages.notAMethod(decorator, className(target), 'a class'));
      }
      fail(messages.hookTakesNoArguments(decorator, target));
    }
    const where = memberName(className(target), key);
    const found = descriptor as PropertyDescriptor | undefined;
    if (found === undefined) fail(messages.notAMethod(decorator, where, 'a property'));
    if (found.get || found.set) fail(messages.notAMethod(decorator, where, 'an accessor'));
    if (typeof found.value !== 'function') fail(messages.notAMethod(decorator, where, 'a property'));
    if (typeof target === 'function') fail(messages.staticMethod(decorator, where));
    addHook(target as object, hook, key);
  };
  return ((...args: unknown[]) => (args.length === 0 ? record : record(args[0], args[1], args[2]))) as HookDecorator;
}

/** `(client: ClientAddress, req)` → boolean or Promise of it; `false` drops the request. Runs in the main thread first. */
export const Verify = hookDecorator('verify');
/** Once per request, after the handler instance is built: prepare per-request state. */
export const Setup = hookDecorator('setup');
/** Serves one request; sync or async. Required, exactly one per handler class. */
export const Handle = hookDecorator('handle');
/**
 * `(message, req: MessageRequest)` → the reply (or a Promise of it; `undefined`: no reply), once per message
 * that the class's `@Framing` cuts ([messages and framing](../../docs/messages-and-framing.md)). In place of `@Handle`: exactly one of the
 * two per handler class.
 */
export const OnMessage = hookDecorator('message');
/** Always after @Handle, also when it threw: clean up. */
export const Finish = hookDecorator('finish');
/** `(error, client)` when a hook throws or a worker dies; the default prints a traceback block. */
export const HandleError = hookDecorator('handleError');
/** When `handleRequest()` waited `timeout` seconds with no request. */
export const HandleTimeout = hookDecorator('handleTimeout');
/** Once per `serveForever()` loop turn: periodic housekeeping. */
export const ServiceActions = hookDecorator('serviceActions');
