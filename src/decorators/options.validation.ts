/**
 * Argument checks shared by the class decorators. A decorator lists one rule per option; `checkOptions`
 * rejects unknown, missing and bad options with a ConfigurationError, and returns only what the user gave
 * (defaults are the transport's and the strategy's business, not the decorator's).
 */
import { configurationMessages as messages, OptionText } from '../errors/configuration.messages';
import { ConfigurationError } from '../errors/errors';
import { abstractDatagramText, fitsSunPath, isAbstract } from '../transports/unix-path';

/** Where a decorator is being applied, for messages: `@TcpServer` on `EchoHandler`. */
export interface DecorationSite {
  readonly decorator: string;
  readonly cls: string;
  /** A correct use at this site, when it is not the decorator's own (the classic layer's mixins: `ThreadingMixIn(TCPServer, { threads: 4 })`). */
  readonly example?: string;
}

export interface OptionRule {
  readonly name: string;
  readonly text: OptionText;
  readonly valid: (value: unknown) => boolean;
  readonly required?: boolean;
  /** A further check with its own message, run once `valid` has passed. */
  readonly more?: (site: DecorationSite, value: unknown) => void;
}

/** How a decorator says what it expected and shows a correct use, for a wrong argument. */
export interface ArgumentHelp {
  readonly expected: string;
  readonly example: string;
}

export function fail(message: string): never {
  throw new ConfigurationError(message);
}

/**
 * A ConfigurationError when a decorator's second argument is a TC39 decorator context (`{ kind, name,
 * addInitializer }`): TypeScript 5+ applies standard decorators unless `experimentalDecorators` is set, and
 * sockserve's would then fail with a message about something else.
 */
export function rejectStandardDecorators(decorator: string, second: unknown): void {
  if (typeof second !== 'object' || second === null) return;
  const context = second as { kind?: unknown; name?: unknown; addInitializer?: unknown };
  if (typeof context.kind === 'string' && typeof context.addInitializer === 'function') fail(messages.standardDecorators(decorator, context));
}

export const integerFrom =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: unknown): boolean =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
export const positiveInteger = integerFrom(1);
export const boolean = (value: unknown): boolean => typeof value === 'boolean';
export const positiveNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
const RESOURCE_LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'];
/**
 * The smallest maxOldGenerationSizeMb accepted: with 2 MB, Node 22, 24 and 26 abort the whole process (not only the
 * thread) when a worker thread's heap cannot hold its start-up snapshot ("GC during deserialization"); with 3 and 4
 * the thread fails cleanly (ERR_WORKER_OUT_OF_MEMORY). Measured 2026-12-07.
 */
const MIN_OLD_GENERATION_MB = 4;
/** Node's Worker resourceLimits: an object of positive numbers under its known keys, maxOldGenerationSizeMb at least MIN_OLD_GENERATION_MB. */
export const resourceLimits = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !Array.isArray(value) &&
  Object.entries(value).every(([k, v]) => RESOURCE_LIMITS.includes(k) && positiveNumber(v) && (k !== 'maxOldGenerationSizeMb' || (v as number) >= MIN_OLD_GENERATION_MB));
export const nonEmptyString = (value: unknown): boolean => typeof value === 'string' && value.length > 0;


export function checkPathLength(site: DecorationSite, value: unknown): void {
  const datagram = site.decorator === '@UnixDatagramServer';
  if (datagram && isAbstract(value as string)) fail(abstractDatagramText(`${site.decorator} on ${site.cls}`, value as string));
  if (!fitsSunPath(value as string)) fail(messages.pathTooLong(site.decorator, site.cls, value as string, Buffer.byteLength(value as string), datagram));
}

/** Checks `options` against `rules`; returns a copy with only the options the user gave. */
export function checkOptions<T>(
  site: DecorationSite,
  options: unknown,
  rules: readonly OptionRule[],
  help: ArgumentHelp,
): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail(messages.badArgument(site.decorator, site.cls, options, help.expected, site.example ?? help.example));
  }
  const given = options as Record<string, unknown>;
  const known = rules.map((rule) => rule.name);
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) fail(messages.unknownOption(site.decorator, site.cls, name, known));
  }
  const result: Record<string, unknown> = {};
  for (const rule of rules) {
    const value = given[rule.name];
    if (value === undefined) {
      if (rule.required) fail(messages.missingOption(site.decorator, site.cls, rule.name, rule.text));
      continue;
    }
    if (!rule.valid(value)) fail(messages.badOption(site.decorator, site.cls, rule.name, value, rule.text));
    rule.more?.(site, value);
    result[rule.name] = value;
  }
  return result as T;
}

/** Rejects `small` > `big` when the user gave both (a warm pool larger than its ceiling). */
export function checkOrder(site: DecorationSite, options: object, small: string, big: string): void {
  const values = options as Record<string, number | undefined>;
  const [low, high] = [values[small], values[big]];
  if (low !== undefined && high !== undefined && low > high) {
    fail(messages.optionOrder(site.decorator, site.cls, small, low, big, high));
  }
}
