import { optionTexts } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, ThreadingOptions } from '../metadata/definition';
import { ClassDecoratorSpec, concurrencyDecorator } from './class-decorator.factory';
import { boolean, checkOptions, checkOrder, DecorationSite, OptionRule, positiveInteger, positiveNumber, resourceLimits } from './options.validation';

const spec: ClassDecoratorSpec<ThreadingOptions, ConcurrencyDefinition> = {
  decorator: '@Threading',
  expected: 'an options object',
  example: '@Threading, @Threading() or @Threading({ threads: 4 })',
  rules: [
    { name: 'threads', text: optionTexts.threads, valid: positiveInteger },
    { name: 'connectionsPerThread', text: optionTexts.connectionsPerThread, valid: positiveInteger },
    { name: 'maxThreads', text: optionTexts.maxThreads, valid: positiveInteger },
    { name: 'perRequest', text: optionTexts.perRequest, valid: boolean },
    { name: 'workerIdleTimeout', text: optionTexts.workerIdleTimeout, valid: positiveNumber },
    { name: 'maxConnectionsPerThread', text: optionTexts.maxConnectionsPerThread, valid: positiveInteger },
    { name: 'resourceLimits', text: optionTexts.resourceLimits, valid: resourceLimits },
  ],
  check: (site, options) => checkOrder(site, options, 'threads', 'maxThreads'),
  define: (options) => ({ kind: 'threading', options }),
};


/** The names of @Threading's options (the classic servers name them when one is given to a constructor instead of the mixin). */
export const THREADING_OPTION_NAMES: readonly string[] = spec.rules.map((rule) => rule.name);
/**
 * The pool options of @Threading, checked by its rules for another site (the classic layer's ThreadingMixIn, whose own
 * options `extra` adds): a bad one is the ConfigurationError the decorator gives.
 */
export function checkThreadingOptions(site: DecorationSite, options: unknown, extra: readonly OptionRule[] = []): void {
  const checked = checkOptions<ThreadingOptions>(site, options, [...spec.rules, ...extra], spec);
  spec.check?.(site, checked);
}

/**
 * Serves connections on a pool of `worker_threads`, each thread an event loop serving many connections
 * ([concurrency](../../docs/concurrency.md)): `@Threading`, `@Threading()` or `@Threading({ threads?, connectionsPerThread?, maxThreads?,
 * perRequest?, workerIdleTimeout? (seconds), maxConnectionsPerThread?, resourceLimits? })`.
 * `connectionsPerThread: 1` is Python's ThreadingMixIn. At most one concurrency decorator; a bad option
 * is a ConfigurationError naming it.
 */
export function Threading(options?: ThreadingOptions): ClassDecorator;
export function Threading(target: Function): void;
export function Threading(...args: unknown[]): ClassDecorator | void {
  return concurrencyDecorator(spec, args);
}
