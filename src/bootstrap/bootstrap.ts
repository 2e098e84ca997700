import { constants as osConstants } from 'node:os';
import { Container } from '../container';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import { refuseStartInWorker, startedWhileWorkerLoads } from '../runtime';
import { servedDefinition } from '../decorators/class-decorator.factory';
import { explore } from '../explorer/explorer';
import type { HandlerClass, HandlerDefinition } from '../metadata/definition';
import { assembleServer } from './assemble';
import { startStrategy } from './strategies';
import type { BootstrapOptions } from './options';
import { checkBootstrapOptions, secondsLikeMilliseconds } from './options.validation';
import { Server } from './server';

/**
 * Reads the decorators of one handler class (or several, sharing one container), checks everything
 * that can be checked before a socket is bound (decorators, dependency graph), then assembles and
 * binds the servers. Resolves when every server is listening (workers of `@Threading`/`@Forking`
 * started); call `serveForever()` on it next.
 *
 * Rejects with ConfigurationError (bad decorators or options, an unknown option of bootstrap() or a bad
 * value of one, a handler a worker cannot load, a server
 * started from a worker), InjectionError (an unknown token, a cycle, missing `reflect-metadata` or
 * design-type metadata), AddressInUseError (the port or path is taken), or Node's bind error. With an
 * array, resolves to the servers in the same order; they share one DI container (singletons included).
 */
export async function bootstrap(handler: HandlerClass, options?: BootstrapOptions): Promise<Server>;
export async function bootstrap(handlers: HandlerClass[], options?: BootstrapOptions): Promise<Server[]>;
export async function bootstrap(handlers: HandlerClass | HandlerClass[], options: BootstrapOptions = {}): Promise<Server | Server[]> {
  const list = Array.isArray(handlers) ? handlers : [handlers];
  if (startedWhileWorkerLoads()) throw refuseStartInWorker(new ConfigurationError(messages.serverInWorker(list.map((h) => h.name).join(', '))));
  checkBootstrapOptions(list.map((h) => h?.name ?? String(h)).join(', '), options);
  const definitions: HandlerDefinition[] = list.map((h) => servedDefinition(explore(h), options.transport));
  const container = new Container(options.providers ?? []);
  for (const def of definitions) {
    // A handler is built anew for every request, even when it is marked @Injectable() (a singleton by default).
    container.register({ provide: def.handler, useClass: def.handler as new (...args: any[]) => unknown, scope: 'transient' });
    container.validate(def.handler);
  }

  const servers: Server[] = [];
  let open = list.length;
  // The container is shared: the last server to close disposes its singletons.
  const release = async () => {
    if (--open === 0) await container.dispose();
  };
  try {
    for (const def of definitions) {
      const face = new Server(def.handler.name, release);
      const strategy = await startStrategy(def, options, face);
      try {
        face.attach(assembleServer(def, container, options, face, face.counters, strategy));
      } catch (err) {
        await strategy?.close();
        throw err;
      }
      servers.push(face);
    }
    await Promise.all(servers.map((s) => s.classicServer.ready));
    servers.forEach((s, i) => {
      s.announced = true;
      s.logger.info(messages.listening(s.handlerName, s.describeAddress(), definitions[i].concurrency.kind));
      for (const [option, value] of secondsLikeMilliseconds(definitions[i], options)) s.logger.warn(messages.secondsLikeMilliseconds(s.handlerName, option, value));
    });
  } catch (err) {
    open = servers.length;
    await Promise.all(servers.map((s) => s.close()));
    if (servers.length === 0) await container.dispose();
    throw err;
  }
  if (options.handleSignals) installSignalHandlers(servers, options.drainDelay ?? 0);
  return Array.isArray(handlers) ? servers : servers[0];
}

/**
 * SIGINT/SIGTERM ([production](../../docs/production.md)): keep accepting for `drainDelay` seconds, so a load balancer's health
 * check marks this server down first (checks that come with a PROXY v2 LOCAL header go unanswered now); then close every listening socket, so new clients are refused
 * (ECONNREFUSED: the balancer retries them elsewhere), never accepted and then reset; then drain the
 * requests in flight, close every server, and let the process exit 0 (1, with the error logged, when closing
 * failed: a singleton's dispose() that threw). Each later signal goes one step further, as a second Ctrl-C
 * does in most servers: during `drainDelay` it skips the rest of the delay; during the drain it closes now
 * (the requests still in flight are ended and reported, as at `shutdownTimeout`) and the process exits with
 * 128 + the signal's number (130 for SIGINT, 143 for SIGTERM) once they are closed, within 2 s whatever a handler,
 * a @HandleError or a dispose() still awaits. A serveForever() called after the signal closed the server resolves at once.
 */
/** Milliseconds within which a repeat of the same signal is its copy to the process group, not a second signal. */
const SAME_SIGNAL_MS = 500;
/**
 * Milliseconds a signal during the drain gives close() (connections closed, the requests still in flight reported)
 * before the process exits anyway: a @HandleError or a singleton's dispose() that never settles must not hold it.
 */
const FORCED_CLOSE_MS = 2000;

function installSignalHandlers(all: Server[], drainDelay: number): void {
  // The servers the program has not closed itself: a signal drains these, and the listeners stay until the last is
  // closed. Closing one server of bootstrap([A, B]) removed them for both, so SIGTERM then killed the process by
  // Node's default with B's requests in flight (hostile run).
  const open = new Set(all);
  let servers = all;
  let draining: Promise<void> | undefined;
  let skipDelay: (() => void) | undefined;
  let forced = false;
  let lastAt = 0;
  let last: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      // The same signal again within a moment is one signal sent twice: GNU timeout and systemd signal the
      // process and then its group, and that second copy cut drainDelay short, silently (new-user run).
      // Another signal (SIGINT after SIGTERM) is a second one however soon it comes (hostile run).
      // Said, at info: a second Ctrl-C pressed at once looked ignored (new-user run).
      // At warn while requests are in flight: the drain's warn line promised that another signal ends them, and a
      // second Ctrl-C pressed within the half-second changed nothing, silently (hostile re-check).
      if (signal === last && performance.now() - lastAt < SAME_SIGNAL_MS) {
        for (const s of servers) {
          const line = messages.signalCopyIgnored(s.handlerName, signal, SAME_SIGNAL_MS);
          if (s.drainWaits) s.logger.warn(line);
          else s.logger.info(line);
        }
        return;
      }
      // A third signal: the process ends now (as Node's default would), not when the forced close's 2 s are up. It
      // was ignored (hostile run). exit() still runs the 'exit' listeners: a Unix socket file is removed.
      if (forced) return process.exit(128 + (osConstants.signals[signal] ?? 15));
      const before = last; // what the warning names: 'SIGINT after SIGTERM', not 'SIGINT again' (new-user run)
      lastAt = performance.now();
      last = signal;
      if (skipDelay) {
        // Not of a server the program stopped itself meanwhile (its listener closed then: hostile re-check).
        for (const s of servers) if (s.endDrainDelay) s.logger.info(messages.drainDelaySkipped(s.handlerName, signal, before));
        const skip = skipDelay;
        skipDelay = undefined;
        return skip();
      }
      // A signal during the drain: the user asked twice (a second Ctrl-C) and expects the process to end now,
      // not after shutdownTimeout or a handler's own timer (new-user run).
      forced = true;
      for (const s of servers) s.logger.warn(messages.signalledDuringDrain(s.handlerName, signal, before, s.stats().active));
      const code = 128 + (osConstants.signals[signal] ?? 15);
      // Exits after the reports of the requests ended (each server's close() awaits them), bounded: a hook or a
      // dispose() that never settles does not hold the process (hostile run: 30 s, shutdownTimeout's). The code goes
      // to exit() itself, as the drain's own failure (a dispose() given up) sets exitCode 1 meanwhile; and to exitCode
      // now, with the bound's timer left ref()ed, should the loop run dry first (a promise nobody settles).
      process.exitCode = code;
      const closed = Promise.allSettled(servers.map((s) => s.closeForSignal(signal)));
      const bound = new Promise<void>((resolve) => setTimeout(resolve, FORCED_CLOSE_MS));
      void Promise.race([closed, bound]).then(() => setImmediate(() => process.exit(code)));
      return;
    }
    lastAt = performance.now();
    last = signal;
    servers = all.filter((s) => open.has(s));
    draining = (async () => {
      for (const s of servers) s.logger.info(messages.signalled(s.handlerName, signal, drainDelay));
      servers.forEach((s) => {
        s.endedBySignal = true;
        s.beginDrain();
      });
      if (drainDelay > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainDelay * 1000);
          skipDelay = () => {
            clearTimeout(timer);
            resolve();
          };
          // The program's own shutdown() or close() of a server ends the delay for that one (Server.shutdown());
          // once it has for every server nothing is left to accept for, and the drain goes on at once.
          let waiting = servers.length;
          for (const s of servers) {
            s.endDrainDelay = () => {
              if (--waiting === 0) skipDelay?.();
            };
          }
        });
      }
      skipDelay = undefined;
      for (const s of servers) s.endDrainDelay = undefined;
      // Said now: closing the listeners may wait for a worker that does not answer until shutdownTimeout ends it.
      for (const s of servers) s.announceShutdown(signal);
      await Promise.all(servers.map((s) => s.stopListening()));
      await Promise.all(servers.map((s) => s.shutdownAnnounced()));
      // Every server is closed even when one fails (a singleton's dispose() that throws): the failure is
      // logged and the exit code says so, never an unhandled rejection that kills the process mid-close.
      const closed = await Promise.allSettled(servers.map((s) => s.close()));
      const failed = closed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })().catch((err: unknown) => {
      servers[0].logger.error(messages.signalCloseFailed(servers.map((s) => s.handlerName).join(', '), signal, err));
      process.exitCode = 1;
    });
    // serveForever() resolves once this has closed the server (its loop ends before the close begins).
    for (const s of servers) s.signalDrain = draining;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, onSignal);
  for (const s of all) {
    s.onClose(() => {
      // A close of the program's own: the process goes on, without these once its last server is closed. Once a
      // signal began the drain they stay: a signal while close() still waits (a singleton's dispose()) is one during
      // the drain, not Node's default death by signal (hostile re-check).
      if (draining) return;
      open.delete(s);
      if (open.size > 0) return;
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.off(signal, onSignal);
    });
  }
}
