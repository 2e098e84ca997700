import { optionTexts } from '../errors/configuration.messages';
import type { ConcurrencyDefinition, ForkingOptions } from '../metadata/definition';
import { ClassDecoratorSpec, concurrencyDecorator } from './class-decorator.factory';
import { boolean, checkOptions, checkOrder, DecorationSite, OptionRule, positiveInteger, positiveNumber, resourceLimits } from './options.validation';

const spec: ClassDecoratorSpec<ForkingOptions, ConcurrencyDefinition> = {
  decorator: '@Forking',
  expected: 'an options object',
  example: '@Forking, @Forking() or @Forking({ children: 4 })',
  rules: [
    { name: 'children', text: optionTexts.children, valid: positiveInteger },
    { name: 'connectionsPerChild', text: optionTexts.connectionsPerChild, valid: positiveInteger },
    { name: 'maxChildren', text: optionTexts.maxChildren, valid: positiveInteger },
    { name: 'perRequest', text: optionTexts.perRequest, valid: boolean },
    { name: 'workerIdleTimeout', text: optionTexts.workerIdleTimeout, valid: positiveNumber },
    { name: 'maxConnectionsPerChild', text: optionTexts.maxConnectionsPerChild, valid: positiveInteger },
    { name: 'resourceLimits', text: optionTexts.resourceLimits, valid: resourceLimits },
  ],
  check: (site, options) => checkOrder(site, options, 'children', 'maxChildren'),
  define: (options) => ({ kind: 'forking', options }),
};


/** The names of @Forking's options (the classic servers name them when one is given to a constructor instead of the mixin). */
export const FORKING_OPTION_NAMES: readonly string[] = spec.rules.map((rule) => rule.name);
/**
 * The pool options of @Forking, checked by its rules for another site (the classic layer's ForkingMixIn, whose own
 * options `extra` adds): a bad one is the ConfigurationError the decorator gives.
 */
export function checkForkingOptions(site: DecorationSite, options: unknown, extra: readonly OptionRule[] = []): void {
  const checked = checkOptions<ForkingOptions>(site, options, [...spec.rules, ...extra], spec);
  spec.check?.(site, checked);
}

/**
 * Serves connections on a pool of child processes, each an event loop serving many connections (API.md
 * §3): `@Forking`, `@Forking()` or `@Forking({ children?, connectionsPerChild?, maxChildren?, perRequest?,
 * workerIdleTimeout? (seconds), maxConnectionsPerChild?, resourceLimits? })`. `connectionsPerChild: 1`
 * is Python's ForkingMixIn. At most one concurrency decorator; a bad option is a ConfigurationError.
 */
export function Forking(options?: ForkingOptions): ClassDecorator;
export function Forking(target: Function): void;
export function Forking(...args: unknown[]): ClassDecorator | void {
  return concurrencyDecorator(spec, args);
}
