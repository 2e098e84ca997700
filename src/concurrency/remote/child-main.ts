/** The body of a sockserve child process (started by child-entry.js): the runtime over the IPC channel. */
import { inspect } from 'util';
import { serializeError, type WorkerSpec } from './protocol';
import { loadWorkerModules } from './class-ref';
import { startWorkerRuntime } from './worker-runtime';
import { BookkeepingWriter } from './bookkeeping';
import { takenRecorder } from './datagrams-taken';

/** How long a child that met an uncaught exception waits for the server to be told, at most (ms). */
const FATAL_SEND_MS = 1000;

// The parent gone (closed, crashed, or killed by SIGKILL) closes the channel: never outlive it.
process.on('disconnect', () => process.exit(0));

// Ctrl-C in a terminal (SIGINT), systemd's default KillMode and `timeout` (SIGTERM) signal the whole process
// group, children included: a child that died of it would cut its connections short while the server drains.
// The server's process owns the shutdown (it ends its children over this channel when they are done), so a
// child ignores these signals while the channel is open, and exits on them once its parent is gone.
const parentOwnsShutdown = (): void => {
  if (!process.connected) process.exit(0);
};
process.on('SIGINT', parentOwnsShutdown);
process.on('SIGTERM', parentOwnsShutdown);

// An uncaught exception (or unhandled rejection) ends the child, as it ends any Node process; the server
// learns what it was first, as it does from a thread's 'error' event, so that the WorkerCrashedError of the
// child's connections names it instead of "exited with code 1", and prints it through its logger (API.md
// §14: every line goes there). The child prints it to its own stderr, as Node would, only when the server
// cannot be told: the channel is closed, the send fails or takes too long, or it is a second exception.
let dying = false;
// Before its sockets close (see protocol.ts): written to the channel now, as the pipe has room for it.
process.on('exit', () => attempt(() => process.connected && process.send!({ t: 'leaving' }, undefined, {}, ignoreSendError), () => false));
process.on('uncaughtException', (err) => {
  // Whatever was thrown (null, an object whose getters throw…), describing it must not throw in turn.
  const described = attempt(() => inspect(err), () => 'a value that cannot be described');
  const printHere = () => process.stderr.write(`Uncaught ${described}\n`);
  if (dying) return void printHere(); // the first one is on its way to the server: this child exits with it
  dying = true;
  process.exitCode = 1;
  const leave = () => process.exit(1);
  // a server too busy to read it in time: said here, and the exit code says the rest
  setTimeout(() => {
    printHere();
    leave();
  }, FATAL_SEND_MS);
  const error = attempt(() => serializeError(err), () => ({ name: 'Error', message: `uncaught: ${described}` }));
  if (!process.connected) {
    printHere();
    return leave();
  }
  process.send!({ t: 'fatal', error }, undefined, {}, (sendError: Error | null) => {
    if (sendError) printHere();
    leave();
  });
});

/** A message the server can no longer read (it has closed its side): nothing to do. */
function ignoreSendError(): void {}

function attempt<T>(get: () => T, otherwise: () => T): T {
  try {
    return get();
  } catch {
    return otherwise();
  }
}

// The first message is the spec (structured clone, as for threads); requests follow once ready.
process.once('message', async (init: { t: 'init'; spec: WorkerSpec; bookkeepingFd?: number; takenFd?: number }) => {
  try {
    // ES modules are imported, asynchronously, before the runtime starts. A module that starts a server
    // unguarded and handles the error itself (exiting, say) is told of at once.
    await loadWorkerModules(init.spec, (err) => process.connected && process.send!({ t: 'load-error', message: err.message }, undefined, {}, ignoreSendError));
  } catch (err) {
    // A module that fails to load (it threw, or started a server unguarded) is a load error with its reason.
    process.send!({ t: 'load-error', message: err instanceof Error ? err.message : String(err) }, undefined, {}, () => process.exit(1));
    return;
  }
  // Messages still being written, and the exit code to leave with once they are.
  let sending = 0;
  let exitCode: number | undefined;
  const send = (msg: unknown) => {
    if (!process.connected) return;
    sending++;
    process.send!(msg, undefined, {}, () => {
      if (--sending === 0 && exitCode !== undefined) process.exit(exitCode);
    });
  };
  // The news of the connections this child accepts itself goes where it wakes nobody (bookkeeping.ts).
  const bookkeeping = init.bookkeepingFd === undefined ? undefined : new BookkeepingWriter(init.bookkeepingFd);
  startWorkerRuntime(init.spec, {
    ...(init.takenFd !== undefined ? { tookDatagram: takenRecorder(init.takenFd) } : {}),
    post: (msg) => {
      if (!bookkeeping) send(msg);
      else if (BookkeepingWriter.carries(msg)) bookkeeping.write(msg);
      else bookkeeping.after(() => send(msg));
    },
    onMessage: (listener) => process.on('message', (msg, handle) => listener(msg as never, handle)),
    exit: (code) => {
      const leave = () => {
        exitCode = code;
        if (sending === 0) process.exit(code);
      };
      if (bookkeeping) bookkeeping.after(leave); // records still queued here go first
      else leave();
    },
  });
});
