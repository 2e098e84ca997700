/**
 * The metadata keys sockserve's decorators write. Only `reflection.ts` reads or writes them.
 *
 * They are namespaced strings rather than symbols so that two copies of the package (compiled and
 * from sources, or a worker that loads the handler module again) still agree on them.
 */

/** On a handler class: the transport decorators declared on it, in source order. */
export const TRANSPORT_METADATA = 'sockserve:transport';
/** On a handler class: the concurrency decorators declared on it, in source order. */
export const CONCURRENCY_METADATA = 'sockserve:concurrency';
/** On a handler class's prototype: the lifecycle hooks its own methods declare, in source order. */
export const HOOKS_METADATA = 'sockserve:hooks';
/** On a handler class: the `@Framing` decorators declared on it, in source order. */
export const FRAMING_METADATA = 'sockserve:framing';
