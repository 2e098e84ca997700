/**
 * One request's lifetime. Request-scoped instances are built once per scope and shared by everything
 * resolved through it; `dispose()` disposes them, last created first, when the request has finished.
 */
import { RESOLVED } from '../lifecycle/resolved';
import { disposeInReverse, DISPOSE_LIMIT_MS } from './dispose';
import type { InjectionToken } from './token';

/**
 * One request's DI scope, as `Container.createRequestScope()` gives it: `'request'`-scoped instances are built
 * once per scope and shared by everything resolved through it, then disposed when the request has
 * finished (after `@Finish`). sockserve makes one per request (and one for `@Verify`, one for
 * `@HandleError`); user code needs one only to drive a `Container` by hand.
 */
export interface RequestScope {
  /** Resolves `token` with this scope's request-scoped instances (see Container.resolve). */
  resolve<T>(token: InjectionToken<T>): T;
  /**
   * Awaits `[Symbol.asyncDispose]`, `[Symbol.dispose]` or `dispose()` of every request-scoped instance, in
   * reverse creation order. Errors are collected and rethrown after all were disposed. Idempotent.
   */
  dispose(): Promise<void>;
}

interface Resolver {
  resolve<T>(token: InjectionToken<T>, scope?: RequestScope): T;
}

/** What dispose() returns when there was nothing to dispose (no request-scoped instance built). */
const DONE = RESOLVED;

/** The container's implementation; only the container reads its fields. */
export class ContainerRequestScope implements RequestScope {
  private map: Map<InjectionToken, unknown> | undefined;
  private list: unknown[] | undefined;
  private closed = false;

  /** Request-scoped instances by token (made on first use: most requests have none). */
  get instances(): Map<InjectionToken, unknown> {
    return (this.map ??= new Map());
  }

  /** The same instances in creation order, for dispose(). */
  get created(): unknown[] {
    return (this.list ??= []);
  }

  constructor(readonly container: Resolver) {}

  get disposed(): boolean {
    return this.closed;
  }

  /** @internal Whether dispose() has request-scoped instances to dispose (most requests build none). */
  get holdsInstances(): boolean {
    return !this.closed && this.list !== undefined && this.list.length > 0;
  }

  resolve<T>(token: InjectionToken<T>): T {
    return this.container.resolve(token, this);
  }

  dispose(): Promise<void> {
    if (this.closed) return DONE;
    this.closed = true;
    const created = this.list;
    if (!created || created.length === 0) return DONE; // the usual request: nothing request-scoped was built
    this.list = undefined;
    this.map = undefined;
    // Its 5 s bound does not hold the process: a request-scoped dispose() that never settles kept a program whose
    // server had closed alive 5 s more (10 s with @Verify's scope too), with nothing left to do but report it.
    return disposeInReverse(created, 'RequestScope.dispose()', DISPOSE_LIMIT_MS, false);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
