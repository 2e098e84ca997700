/**
 * Checks of bootstrap()'s own options (its second argument), made before anything is assembled or bound, as
 * the decorators check theirs: an unknown option (a misspelt `handleSignal`) or a bad value (a negative
 * timeout, a string) is a ConfigurationError, never silently ignored or read as something else. The
 * transport overrides under `transport` are checked by the transport decorator's own rules.
 */
import { configurationMessages as messages, OptionText } from '../errors/configuration.messages';
import { ConfigurationError } from '../errors/errors';
import { positiveNumber } from '../decorators/options.validation';
import type { HandlerDefinition } from '../metadata/definition';
import type { BootstrapOptions } from './options';

/** A finite number of seconds, 0 included. */
const seconds = (value: unknown): boolean => value === 0 || positiveNumber(value);
const orNull = (valid: (value: unknown) => boolean) => (value: unknown) => value === null || valid(value);
const LEVELS = ['error', 'warn', 'info', 'debug'];

const RULES: Record<string, { valid: (value: unknown) => boolean; text: OptionText }> = {
  transport: {
    valid: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    text: { requirement: "an object of the transport decorator's options", fix: 'pass for example { transport: { port: 0 } }, or leave transport out.' },
  },
  providers: { valid: Array.isArray, text: { requirement: 'an array of providers', fix: 'pass [{ provide, useValue | useClass | useFactory }, …], or leave providers out.' } },
  timeout: {
    valid: orNull(seconds),
    text: { requirement: 'a number of seconds (0 or more) or null', fix: 'pass how long handleRequest() waits for a request, or null (the default) to wait forever.' },
  },
  requestTimeout: {
    valid: orNull(positiveNumber),
    text: { requirement: 'a positive number of seconds or null', fix: 'pass how long a read may wait with no byte arriving, or null (the default) for no limit.' },
  },
  heartbeatTimeout: {
    valid: positiveNumber,
    text: { requirement: 'a positive number of seconds', fix: "pass how long a worker's event loop may stay blocked, or leave heartbeatTimeout out for 30." },
  },
  shutdownTimeout: {
    valid: orNull(seconds),
    text: { requirement: 'a number of seconds (0 or more) or null', fix: 'pass how long shutdown() waits for requests in flight, null to wait forever, or leave it out for 30.' },
  },
  serverClass: { valid: (v) => typeof v === 'function', text: { requirement: 'a class', fix: 'pass a subclass of the transport\'s classic server (TCPServer, UDPServer…), or leave serverClass out.' } },
  logger: {
    // Its methods read as bootstrap() will call them; a read that throws (a getter, a Proxy) is no method: without the
    // try, bootstrap() rejected with the getter's own error, no word of the logger (hostile re-check).
    valid: (v) => {
      try {
        return typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'function' &&
          LEVELS.every((level) => (v as Record<string, unknown>)[level] === undefined || typeof (v as Record<string, unknown>)[level] === 'function');
      } catch {
        return false;
      }
    },
    text: { requirement: 'an object with an error() method (and optionally warn, info, debug)', fix: 'pass console, a pino or winston logger, or { error: (m) => … }.' },
  },
  handleSignals: { valid: (v) => typeof v === 'boolean', text: { requirement: 'true or false', fix: 'pass true to drain and exit on SIGINT/SIGTERM, or leave it out (false).' } },
  drainDelay: {
    valid: seconds,
    text: { requirement: 'a number of seconds (0 or more)', fix: 'pass how long to keep accepting after SIGTERM, or leave drainDelay out for 0.' },
  },
};
const KNOWN = Object.keys(RULES);

/** Throws ConfigurationError for an unknown option of bootstrap() or a value its rule refuses; `handlers` names the classes, for messages. */
export function checkBootstrapOptions(handlers: string, options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new ConfigurationError(messages.bootstrapBadArgument(handlers, options));
  for (const [name, value] of Object.entries(options)) {
    const rule = RULES[name];
    if (rule === undefined) throw new ConfigurationError(messages.bootstrapUnknownOption(handlers, name, KNOWN));
    if (value !== undefined && !rule.valid(value)) throw new ConfigurationError(messages.bootstrapBadOption(handlers, name, value, rule.text));
  }
}

/**
 * The timeouts of `def` and `options` that read as milliseconds written where seconds are meant: 1000 or more and
 * a whole number of thousands (`lineTimeout: 30000`, 8.3 hours, for 30 s). Valid, so no error: bootstrap() logs a
 * warning for each (two new users set one so; it held clients for hours, unsaid). `[option, value]` pairs.
 */
export function secondsLikeMilliseconds(def: HandlerDefinition, options: BootstrapOptions): Array<[string, number]> {
  const edge = def.transport.options as { limits?: { lineTimeout?: unknown } };
  const pool = 'options' in def.concurrency ? (def.concurrency.options as { workerIdleTimeout?: unknown }) : {};
  const candidates: Array<[string, unknown]> = [
    ['timeout', options.timeout], ['requestTimeout', options.requestTimeout], ['shutdownTimeout', options.shutdownTimeout],
    ['heartbeatTimeout', options.heartbeatTimeout], ['drainDelay', options.drainDelay],
    ['limits.lineTimeout', edge.limits?.lineTimeout], ['workerIdleTimeout', pool.workerIdleTimeout],
  ];
  return candidates.filter((c): c is [string, number] => typeof c[1] === 'number' && c[1] >= 1000 && c[1] % 1000 === 0); // Infinity % 1000 is NaN
}
