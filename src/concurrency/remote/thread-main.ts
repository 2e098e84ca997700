/** The body of a sockserve worker thread (started by thread-entry.js): it connects the runtime to parentPort. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadWorkerModules } from './class-ref';
import { startWorkerRuntime } from './worker-runtime';
import type { WorkerSpec } from './protocol';

const port = parentPort!;
const spec = workerData as WorkerSpec;
// ES modules can only be imported, asynchronously: load the handler's modules before the runtime starts.
void loadWorkerModules(spec).then(() => startWorkerRuntime(spec, {
  post: (msg, transfer) => port.postMessage(msg, transfer ?? []),
  onMessage: (listener) => port.on('message', listener),
  exit: (code) => process.exit(code), // ends this thread; the server drains its port before 'exit'
}));
