import { optionTexts } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, ConcurrentOptions } from '../metadata/definition';
import { ClassDecoratorSpec, concurrencyDecorator } from './class-decorator.factory';
import { checkOptions, DecorationSite, positiveInteger } from './options.validation';

const spec: ClassDecoratorSpec<ConcurrentOptions, ConcurrencyDefinition> = {
  decorator: '@Concurrent',
  expected: 'an options object',
  example: '@Concurrent, @Concurrent() or @Concurrent({ maxConnections: 100 })',
  rules: [{ name: 'maxConnections', text: optionTexts.maxConnections, valid: positiveInteger }],
  define: (options) => ({ kind: 'concurrent', options }),
};

/**
 * Interleaves many requests on the main thread's event loop: `@Concurrent`, `@Concurrent()` or
 * `@Concurrent({ maxConnections? })`. At most one concurrency decorator.
 */
export function Concurrent(options?: ConcurrentOptions): ClassDecorator;
export function Concurrent(target: Function): void;
export function Concurrent(...args: unknown[]): ClassDecorator | void {
  return concurrencyDecorator(spec, args);
}

/** The options of @Concurrent, checked by its rules for another site (the classic layer's ConcurrentMixIn): a bad one is the ConfigurationError the decorator gives. */
export function checkConcurrentOptions(site: DecorationSite, options: unknown): void {
  checkOptions<ConcurrentOptions>(site, options, spec.rules, spec);
}
