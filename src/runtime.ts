import * as net from 'node:net';
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

/** This Node's major and minor version, read once (the pool asks per connection). */
const [major, minor] = process.versions.node.split('.').map(Number);
/** 24.21+ on the 24 line, 26.6+: a TCP socket can be transferred to a worker thread. */
const TRANSFERS_TCP_SOCKETS = major > 26 || (major === 26 && minor >= 6) || (major === 24 && minor >= 21);

/**
 * Whether this Node can move an accepted TCP socket into a worker thread (`postMessage(msg, [socket])`):
 * from 24.21 on the 24 line and 26.6 on. `SOCKSERVE_SOCKET_TRANSFER=0` turns it off (the byte bridge is used).
 */
export function canTransferTcpSockets(): boolean {
  return TRANSFERS_TCP_SOCKETS && process.env.SOCKSERVE_SOCKET_TRANSFER !== '0';
}

/** Whether `listen({ reusePort: true })` works (SO_REUSEPORT): Node 22.12 on; Node 20 silently ignores it. */
export function supportsReusePort(): boolean {
  return major > 22 || (major === 22 && minor >= 12);
}

/**
 * Whether children read datagrams from the server's UDP socket themselves (udp.socket.ts shareWithChildren
 * says, at binding, whether this Node can stop the server's own reads): unless `SOCKSERVE_WORKER_ACCEPT=0`,
 * which keeps the main thread reading and handing each datagram over.
 */
export function canChildrenShareDatagrams(): boolean {
  return process.env.SOCKSERVE_WORKER_ACCEPT !== '0';
}

/**
 * Whether child processes can accept connections themselves from the server's listening socket (API.md §3):
 * the server binds it without accepting on it (net's `_createServerHandle`, what Node's cluster uses for
 * SCHED_NONE) and sends it to each child. `SOCKSERVE_WORKER_ACCEPT=0` turns it off (the main thread accepts).
 */
export function canChildrenShareListener(): boolean {
  if (process.env.SOCKSERVE_WORKER_ACCEPT === '0') return false;
  return typeof (net as unknown as { _createServerHandle?: unknown })._createServerHandle === 'function';
}

/**
 * Whether worker threads accept TCP connections themselves, each listening with `reusePort` (Node 22.12+):
 * only with `SOCKSERVE_THREADS_REUSEPORT=1`. Off by default because each thread then has its own accept
 * queue, and the kernel resets the connections queued on a thread that is recycled
 * (`maxConnectionsPerThread`) or dies, which the pool's recycling must not do (seen in CI on Node 22);
 * by default the main thread accepts and hands each connection over (24.21+/26.6+) or relays it.
 * `SOCKSERVE_WORKER_ACCEPT=0` turns every worker accept off.
 */
export function canThreadsListenReusePort(): boolean {
  return process.env.SOCKSERVE_WORKER_ACCEPT !== '0' && process.env.SOCKSERVE_THREADS_REUSEPORT === '1' && supportsReusePort();
}

/** How a pooled worker's connections reach it: see workerAcceptMechanism(). */
export type AcceptMechanism = 'worker-accepts' | 'handed-over' | 'relayed';

/**
 * Where `@Threading`/`@Forking` workers' stream connections are accepted on this Node, per mode and transport,
 * picked by feature detection ([concurrency](../docs/concurrency.md); CI prints it per Node line):
 * `worker-accepts` (children from the shared listening socket; threads with reusePort, the main thread
 * keeping its own listener and handing over its share), `handed-over` (the main thread accepts and moves
 * the socket to the worker, which then owns it), `relayed` (the main thread accepts and relays the bytes to
 * the thread, with flow control). Environment variables read at each call: `SOCKSERVE_WORKER_ACCEPT=0`,
 * `SOCKSERVE_SOCKET_TRANSFER=0`, `SOCKSERVE_THREADS_REUSEPORT=1`.
 */
export function workerAcceptMechanism(): { forkingTcp: AcceptMechanism; forkingUnix: AcceptMechanism; threadingTcp: AcceptMechanism; threadingUnix: AcceptMechanism } {
  const thread = (unix: boolean) => (!unix && canThreadsListenReusePort() ? 'worker-accepts' : !unix && canTransferTcpSockets() ? 'handed-over' : 'relayed');
  const child = canChildrenShareListener() ? 'worker-accepts' : 'handed-over';
  return { forkingTcp: child, forkingUnix: child, threadingTcp: thread(false), threadingUnix: thread(true) };
}

/** True while a sockserve worker loads the handler's module (its top-level code runs again there). */
let loadingHandlerModule = false;

/** Where the loading worker tells its server that the module started a server (startRefusedInWorker). */
let tellServer: ((error: Error) => void) | undefined;

/**
 * @internal Runs `load` (the worker's import of the handler's modules) with the flag above set. `refused`
 * hears of a server the module starts meanwhile, at once: the module may catch the error and exit before
 * the worker could report it, and the server's start-up error would say only "exited with code 1".
 */
export function loadingInWorker<T>(load: () => Promise<T>, refused?: (error: Error) => void): Promise<T> {
  loadingHandlerModule = true;
  tellServer = refused;
  let loading: Promise<T>;
  try {
    loading = load();
  } catch (err) {
    loadingHandlerModule = false;
    return Promise.reject(err);
  }
  return loading.finally(() => (loadingHandlerModule = false));
}

/**
 * @internal A server is being started by the top-level code of a handler module that a worker is
 * loading: an unguarded start-up, which would start servers (and pools of workers) in every worker.
 */
export function startedWhileWorkerLoads(): boolean {
  return loadingHandlerModule;
}

/** @internal `error` (a server started while a worker loads its module) goes to the worker's server first, once. */
export function refuseStartInWorker(error: Error): Error {
  const tell = tellServer;
  tellServer = undefined;
  tell?.(error);
  return error;
}
