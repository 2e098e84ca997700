import { optionTexts } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, ForkingOptions } from '../metadata/definition';
import { ClassDecoratorSpec, concurrencyDecorator } from './class-decorator.factory';
import { boolean, checkOrder, positiveInteger } from './options.validation';

const spec: ClassDecoratorSpec<ForkingOptions, ConcurrencyDefinition> = {
  decorator: '@Forking',
  expected: 'an options object',
  example: '@Forking, @Forking() or @Forking({ children: 4 })',
  rules: [
    { name: 'children', text: optionTexts.children, valid: positiveInteger },
    { name: 'maxChildren', text: optionTexts.maxChildren, valid: positiveInteger },
    { name: 'perRequest', text: optionTexts.perRequest, valid: boolean },
  ],
  check: (site, options) => checkOrder(site, options, 'children', 'maxChildren'),
  define: (options) => ({ kind: 'forking', options }),
};

/**
 * Runs each request in a child process, as Python's ForkingMixIn: `@Forking`, `@Forking()` or
 * `@Forking({ children?, maxChildren?, perRequest? })`. At most one concurrency decorator.
 */
export function Forking(target: Function): void;
export function Forking(options?: ForkingOptions): ClassDecorator;
export function Forking(...args: unknown[]): ClassDecorator | void {
  return concurrencyDecorator(spec, args);
}
