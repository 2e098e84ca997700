/**
 * One request's lifetime. Request-scoped instances are built once per scope and shared by everything
 * resolved through it; `dispose()` disposes them, last created first, when the request has finished.
 */
import { disposeInReverse } from './dispose';
import type { InjectionToken } from './token';

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

const DONE = Promise.resolve();

/** The container's implementation; only the container reads its fields. */
export class ContainerRequestScope implements RequestScope {
  /** Request-scoped instances by token. */
  readonly instances = new Map<InjectionToken, unknown>();
  /** The same instances in creation order, for dispose(). */
  readonly created: unknown[] = [];
  private closed = false;

  constructor(readonly container: Resolver) {}

  get disposed(): boolean {
    return this.closed;
  }

  resolve<T>(token: InjectionToken<T>): T {
    return this.container.resolve(token, this);
  }

  dispose(): Promise<void> {
    if (this.closed) return DONE;
    this.closed = true;
    if (this.created.length === 0) return DONE; // the usual request: nothing request-scoped was built
    const created = this.created.splice(0);
    this.instances.clear();
    return disposeInReverse(created, 'RequestScope.dispose()');
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
