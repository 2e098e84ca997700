import { nonEmptyString, OptionRule, positiveNumber } from '../decorators/options.validation';
import { optionTexts } from '../errors/configuration.messages';

/**
 * The pool mixins' own options, checked with the pool's (a bad one is a ConfigurationError naming it). A module
 * of its own: base-server.ts names them too (an option given to a constructor instead of the mixin), and
 * mixins.ts imports the servers.
 */
export const MIXIN_RULES: readonly OptionRule[] = [
  { name: 'handlerModule', text: optionTexts.handlerModule, valid: nonEmptyString },
  { name: 'heartbeatTimeout', text: optionTexts.heartbeatTimeout, valid: positiveNumber },
];
