import { isMainThread } from 'node:worker_threads';

/** The environment variable sockserve sets in the child processes it starts. */
export const CHILD_ENV = 'SOCKSERVE_CHILD';

/**
 * True inside a sockserve worker thread or child process. A handler's module is loaded again there, so
 * top-level code that starts a server or a client should run only when `!isWorker()`.
 */
export function isWorker(): boolean {
  return !isMainThread || process.env[CHILD_ENV] === '1';
}
