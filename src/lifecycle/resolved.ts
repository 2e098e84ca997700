/**
 * One promise, resolved with undefined, shared by the steps that run once per request and are usually done
 * at once (a scope with nothing to dispose, a datagram's shutdownRequest): a caller that meets it knows,
 * by identity, that nothing is pending, and skips the reaction it would otherwise chain.
 */
export const RESOLVED: Promise<void> = Promise.resolve();
