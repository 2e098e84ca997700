/** The body of a sockserve child process (started by child-entry.js): the runtime over the IPC channel. */
import type { WorkerSpec } from './protocol';
import { startWorkerRuntime } from './worker-runtime';

// The parent gone (closed, crashed, or killed by SIGKILL) closes the channel: never outlive it.
process.on('disconnect', () => process.exit(0));

// The first message is the spec (structured clone, as for threads); requests follow once ready.
process.once('message', (init: { t: 'init'; spec: WorkerSpec }) => {
  startWorkerRuntime(init.spec, {
    post: (msg) => {
      if (process.connected) process.send!(msg, undefined, {}, () => undefined);
    },
    onMessage: (listener) => process.on('message', (msg, handle) => listener(msg as never, handle)),
  });
});
