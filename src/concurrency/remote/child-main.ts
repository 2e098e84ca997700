/** The body of a sockserve child process (started by child-entry.js): the runtime over the IPC channel. */
import type { WorkerSpec } from './protocol';
import { loadWorkerModules } from './class-ref';
import { startWorkerRuntime } from './worker-runtime';

// The parent gone (closed, crashed, or killed by SIGKILL) closes the channel: never outlive it.
process.on('disconnect', () => process.exit(0));

// The first message is the spec (structured clone, as for threads); requests follow once ready.
process.once('message', async (init: { t: 'init'; spec: WorkerSpec }) => {
  await loadWorkerModules(init.spec); // ES modules are imported, asynchronously, before the runtime starts
  // Messages still being written, and the exit code to leave with once they are.
  let sending = 0;
  let exitCode: number | undefined;
  startWorkerRuntime(init.spec, {
    post: (msg) => {
      if (!process.connected) return;
      sending++;
      process.send!(msg, undefined, {}, () => {
        if (--sending === 0 && exitCode !== undefined) process.exit(exitCode);
      });
    },
    onMessage: (listener) => process.on('message', (msg, handle) => listener(msg as never, handle)),
    exit: (code) => {
      exitCode = code;
      if (sending === 0) process.exit(code);
    },
  });
});
