import { cutText, describeBriefly } from '../errors/thrown';
import { isThenable } from '../lifecycle/resolved';

/**
 * Where sockserve writes what it has to say. One call is one message, without a trailing newline.
 *
 * Levels (as pino, winston and the console use them):
 * - `error`: errors of the handler (a hook threw, a worker died), with Python's traceback block;
 *   operational trouble (out of file descriptors).
 * - `warn`: routine client behaviour (a reset, a timeout, a TLS handshake that failed, malformed
 *   framing): one line, no traceback.
 * - `info`: lifecycle (listening, draining, worker restarts).
 * - `debug`: detail nobody needs in production.
 *
 * `console`, a pino or winston logger, or any object with some of these methods fits: a missing `warn`
 * falls back to `error`, a missing `info` or `debug` drops those lines. Methods are called with the
 * logger as `this` (pino needs it).
 */
export interface Logger {
  /** Errors of the handler (a hook threw, a worker died), with Python's traceback block; operational trouble. Required. */
  error(message: string): void;
  /** Routine client behaviour, one line each (a reset, a timeout, a failed TLS handshake); falls back to `error` when absent. */
  warn?(message: string): void;
  /** Lifecycle: listening, draining, worker restarts; dropped when absent. */
  info?(message: string): void;
  /** Detail nobody needs in production; dropped when absent. */
  debug?(message: string): void;
}

/**
 * A logger with every level present: what sockserve's own code calls, and what the classic servers'
 * `logger` attribute holds (a {@link Logger} given to bootstrap() is wrapped into one).
 */
export interface LevelledLogger {
  /** Errors of the handler, with Python's traceback block; operational trouble. */
  error(message: string): void;
  /** Routine client behaviour, one line each. */
  warn(message: string): void;
  /** Lifecycle: listening, draining, worker restarts. */
  info(message: string): void;
  /** Detail nobody needs in production. */
  debug(message: string): void;
}

const noop = (): void => undefined;

/**
 * Wraps a user's logger so that every level can be called; the same logger gives the same wrapper. A method that
 * throws, or returns a promise that rejects, does not reach the server: the message goes to stderr instead, the
 * first time with a line saying why (a logger whose `error()` threw took the server down at the first handler
 * error, its failure reported through the same `error()`; one whose `info()` threw failed bootstrap(): hostile run).
 */
export function levelled(logger: Logger): LevelledLogger {
  if (guarded.has(logger as LevelledLogger)) return logger as LevelledLogger;
  const known = wrapped.get(logger);
  if (known) return known;
  let told = false;
  /** Calls under way: a logger that calls itself (through server.logger) is cut off, not left to overflow the stack. */
  let depth = 0;
  const fallBack = (level: string, message: string, err: unknown) => {
    try {
      if (!told) process.stderr.write(`sockserve: the logger's ${level}() failed (${cutText(describeBriefly(err), NOTE_CHARS)}); its messages go to stderr instead.\n`);
      told = true;
      process.stderr.write(`${message}\n`);
    } catch {
      // stderr itself is gone: nothing is left to say it with
    }
  };
  // Reading a method is the logger's code too (a getter, a Proxy): one whose read throws fails as a call would.
  const read = (level: 'error' | 'warn' | 'info' | 'debug'): unknown => {
    try {
      return (logger as unknown as Record<string, unknown>)[level];
    } catch (err) {
      return (message: string) => fallBack(level, message, err);
    }
  };
  const call = (level: 'error' | 'warn' | 'info' | 'debug') => {
    const method = read(level);
    if (typeof method !== 'function') return undefined;
    return (message: string) => {
      if (depth >= MAX_DEPTH) return fallBack(level, message, new Error(`the logger called itself ${MAX_DEPTH} times over`));
      depth++;
      try {
        const result: unknown = method.call(logger, message);
        if (isThenable(result)) Promise.resolve(result).then(undefined, (err: unknown) => fallBack(level, message, err));
      } catch (err) {
        fallBack(level, message, err);
      } finally {
        depth--;
      }
    };
  };
  const error = call('error') ?? noop;
  const result: LevelledLogger = {
    error,
    warn: call('warn') ?? error,
    info: call('info') ?? noop,
    debug: call('debug') ?? noop,
  };
  wrapped.set(logger, result);
  guarded.add(result);
  return result;
}
const wrapped = new WeakMap<Logger, LevelledLogger>();
/** Loggers that need no guard: levelled()'s own, and sockserve's defaults. */
const guarded = new WeakSet<LevelledLogger>();
/** Nested calls of one logger before the message goes to stderr instead (a logger that forwards to server.logger). */
const MAX_DEPTH = 8;
/** Characters of a failing logger's error in the note that says so. */
const NOTE_CHARS = 500;


/**
 * The decorator layer's default (`bootstrap()` without `logger`): the console for `error` and `warn`
 * (both on stderr); `info` and `debug` stay quiet, so a server prints nothing while all is well, as
 * Python's socketserver and Node's net print nothing. Pass `logger: console` to see lifecycle lines.
 */
export const defaultLogger: LevelledLogger = {
  error: (message) => console.error(message),
  warn: (message) => console.warn(message),
  info: noop,
  debug: noop,
};

/** The classic layer's default: stderr, as Python's `handle_error` prints; lifecycle stays quiet. */
export const stderrLogger: LevelledLogger = {
  error: (message) => void process.stderr.write(`${message}\n`),
  warn: (message) => void process.stderr.write(`${message}\n`),
  info: noop,
  debug: noop,
};
guarded.add(defaultLogger);
guarded.add(stderrLogger);

/**
 * A server's `logger` attribute, guarded (levelled()): a classic server's may be set to anything after it is built
 * (Python's ports set attributes), and one whose method threw took the process down at the first handler error
 * (hostile re-check). The wrapper is made once per logger.
 */
export function loggerOf(server: { logger?: LevelledLogger }): LevelledLogger {
  return levelled(server.logger ?? stderrLogger);
}

/** The logger sockserve uses for `bootstrap()`'s `logger` option. */
export function resolveLogger(logger: Logger | undefined): LevelledLogger {
  return logger ? levelled(logger) : defaultLogger;
}
