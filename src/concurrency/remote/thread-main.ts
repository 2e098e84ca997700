/** The body of a sockserve worker thread (started by thread-entry.js): it connects the runtime to parentPort. */
import { parentPort, workerData } from 'node:worker_threads';
import { refuseUnixDgramAddonInThread } from './addon-guard';
import { loadWorkerModules } from './class-ref';
import { startWorkerRuntime } from './worker-runtime';
import { takenRecorder } from './datagrams-taken';
import type { WorkerSpec } from './protocol';

const port = parentPort!;
const spec = workerData as WorkerSpec;
// Before its sockets close (see protocol.ts); a port already closed has no one to tell.
process.on('exit', () => {
  try {
    port.postMessage({ t: 'leaving' });
  } catch {
    // the server's side is gone
  }
});
refuseUnixDgramAddonInThread(); // before the handler's modules load: one that requires the addon must fail, not abort the process later
// ES modules can only be imported, asynchronously: load the handler's modules before the runtime starts.
// A module that fails to load (it threw, or started a server unguarded) is a load error with its reason.
// A module that starts a server unguarded and handles the error itself (exiting, say) is told of at once.
const refused = (err: Error) => port.postMessage({ t: 'load-error', message: err.message });
void loadWorkerModules(spec, refused).then(
  () =>
    startWorkerRuntime(spec, {
      post: (msg, transfer) => port.postMessage(msg, transfer ?? []),
      ...(spec.datagramsTaken ? { tookDatagram: takenRecorder(spec.datagramsTaken) } : {}),
      onMessage: (listener) => port.on('message', listener),
      exit: (code) => process.exit(code), // ends this thread; the server drains its port before 'exit'
    }),
  (err: unknown) => {
    port.postMessage({ t: 'load-error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
