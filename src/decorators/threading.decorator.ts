import { optionTexts } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, ThreadingOptions } from '../metadata/definition';
import { ClassDecoratorSpec, concurrencyDecorator } from './class-decorator.factory';
import { boolean, checkOrder, positiveInteger } from './options.validation';

const spec: ClassDecoratorSpec<ThreadingOptions, ConcurrencyDefinition> = {
  decorator: '@Threading',
  expected: 'an options object',
  example: '@Threading, @Threading() or @Threading({ threads: 4 })',
  rules: [
    { name: 'threads', text: optionTexts.threads, valid: positiveInteger },
    { name: 'maxThreads', text: optionTexts.maxThreads, valid: positiveInteger },
    { name: 'perRequest', text: optionTexts.perRequest, valid: boolean },
    { name: 'idleTimeoutMs', text: optionTexts.idleTimeoutMs, valid: positiveInteger },
  ],
  check: (site, options) => checkOrder(site, options, 'threads', 'maxThreads'),
  define: (options) => ({ kind: 'threading', options }),
};

/**
 * Runs each request in a `worker_threads` thread, as Python's ThreadingMixIn: `@Threading`, `@Threading()`
 * or `@Threading({ threads?, maxThreads?, perRequest?, idleTimeoutMs? })`. At most one concurrency decorator.
 */
export function Threading(target: Function): void;
export function Threading(options?: ThreadingOptions): ClassDecorator;
export function Threading(...args: unknown[]): ClassDecorator | void {
  return concurrencyDecorator(spec, args);
}
