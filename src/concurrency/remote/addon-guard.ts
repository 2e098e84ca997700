/**
 * The native addon `node-unix-socket` (Unix datagram sockets) must not load in a worker thread: when such a
 * thread exits, the addon closes the sockets the process made with it, and the process aborts (libuv's
 * `uv_close` assertion; hostile run: exit 134 once the server closed). sockserve never opens it in a thread,
 * but a thread loads the handler's module again, and a module that requires the addon at its top (a client
 * helper beside the handler, a test file) loaded it there. Refused at the native load, with the fix: the
 * module then fails to load in the worker, and `bootstrap()` rejects with this message.
 */
import { basename } from 'node:path';

export function refuseUnixDgramAddonInThread(): void {
  const dlopen = process.dlopen;
  process.dlopen = function guardedDlopen(this: unknown, ...args: Parameters<typeof process.dlopen>) {
    // The addon's own file (node-unix-socket.<platform>.node, wherever installed): not every addon whose path
    // merely contains the name (a project in a directory so named had all its native addons refused).
    if (/^node-unix-socket\.[^\\/]*\.node$/i.test(basename(String(args[1])))) throw new Error(addonInThread());
    return dlopen.apply(process, args);
  } as typeof process.dlopen;
}

const addonInThread = () =>
  `node-unix-socket was loaded in a worker thread (the handler's module, loaded again by each @Threading worker, ` +
  `requires it): the addon aborts the whole process when a thread that loaded it exits. Fix: require it only ` +
  `in the main thread (\`if (!isWorker()) …\`, isWorker from 'sockserve'), or move the code that uses it (a client) ` +
  `to a module the handler's module does not import. The server's own Unix datagram socket lives in the main thread.`;
