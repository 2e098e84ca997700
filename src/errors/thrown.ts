import { inspect } from 'node:util';
import { SystemExit } from './errors';

/**
 * Reading a thrown value without throwing again. A handler may throw anything: `Object.create(null)`
 * (no toString), an Error whose `message` is a Symbol, an object whose `stack` or `message` getter throws,
 * a Proxy whose every trap throws. The server reports such a value like any other, and neither it nor a
 * worker may die of printing or inspecting it (@Concurrent's process exited, a worker died with all its
 * connections: hostile-client run, 2026-12-03).
 */

/**
 * The value's text for a log, never throwing: an Error's stack (of another realm's too); a thrown object that is
 * no Error (`throw { code: 'E_QUOTA', detail }`) as Node prints an uncaught one (util.inspect: its fields, not
 * `[object Object]`, hostile run on the classic layer); else String(value).
 */
export function describeThrown(value: unknown): string {
  return describeWithin(value, 0, new Set(), { nodes: CHAINED_NODES, chars: CHAINED_CHARS });
}

/** What is left of the report's allowance for causes and errors below the stack (chained()). */
interface Allowance {
  nodes: number;
  chars: number;
}

/**
 * describeThrown() of a value `depth` causes down, `seen` the errors already printed above it. Below the top
 * (depth > 0) each one's own text is bounded as a thrown object's is (DESCRIPTION_CHARS): a response body given
 * as a `cause` made a report of 5 MB (hostile re-check).
 */
function describeWithin(value: unknown, depth: number, seen: Set<unknown>, left: Allowance): string {
  // Charged before the ones below it are described, so that they see what is left (the bound held only roughly).
  const own = (text: string) => {
    if (depth === 0) return text;
    const cut = boundedStack(text);
    left.chars -= cut.length;
    return cut;
  };
  try {
    if (value instanceof Error) {
      const stack = value.stack;
      if (typeof stack === 'string') return `${own(stack)}${chained(value, depth, seen, left)}`;
    }
    if (typeof value === 'object' && value !== null) {
      const stack = readThrown(value, 'stack');
      if (typeof stack === 'string' && typeof readThrown(value, 'message') === 'string') return `${own(stack)}${chained(value, depth, seen, left)}`;
      return describeObject(value);
    }
    return own(String(value));
  } catch {
    try {
      return inspect(value); // `[Object: null prototype] {}`, as Node prints an uncaught one
    } catch {
      try {
        return `${Object.prototype.toString.call(value)} (a thrown value that cannot be printed)`;
      } catch {
        return '(a thrown value that cannot be printed)';
      }
    }
  }
}

/** Causes (and errors of an AggregateError) printed below an error, each level deeper indented: at most this many levels. */
const CHAINED_DEPTH = 4;
/** An AggregateError's errors printed, at most, at each level. */
const CHAINED_ERRORS = 8;
/** Causes and errors printed below one report's stack, at most, all levels together. */
const CHAINED_NODES = 16;
/** Characters of causes and errors below one report's stack, at most (each one's own text is cut at DESCRIPTION_CHARS). */
const CHAINED_CHARS = 16 * 1024;

/**
 * What an error's stack leaves out, printed below it as Node's util.inspect prints it: its `cause` (`[cause]:`) and
 * an AggregateError's `errors` (`[errors][i]:`), each described as the error itself is, indented. A worker that
 * died of a throw in a timer was reported as a WorkerCrashedError whose stack is sockserve's own, the handler's
 * line being in its `cause` only; a handler error with a `cause`, and the two failures of a request that failed
 * then failed in @Finish (an AggregateError), lost theirs the same way (new-user run). Bounded in work and size:
 * CHAINED_DEPTH levels, CHAINED_ERRORS errors a level, each error once, and CHAINED_NODES descriptions of
 * CHAINED_CHARS characters in all (`left`), past which one line says what was left out: a tree of
 * AggregateErrors four levels deep made a report of 4 MB and 81,000 lines (hostile re-check). '' when there is
 * nothing; what was read before a read that threw.
 */
function chained(error: object, depth: number, seen: Set<unknown>, left: Allowance): string {
  if (depth >= CHAINED_DEPTH) return '';
  seen.add(error);
  let out = '';
  try {
    let omitted = 0;
    const add = (label: string, related: unknown) => {
      if (seen.has(related)) return;
      if (left.nodes <= 0 || left.chars <= 0) return void omitted++;
      left.nodes--;
      out += `\n${label}: ${indentBelow(describeWithin(related, depth + 1, seen, left))}`; // charged in describeWithin()
    };
    const cause = readThrown(error, 'cause');
    if (cause !== undefined) add('[cause]', cause);
    const errors = readThrown(error, 'errors');
    if (Array.isArray(errors)) {
      errors.slice(0, CHAINED_ERRORS).forEach((each: unknown, i) => add(`[errors][${i}]`, each));
      if (errors.length > CHAINED_ERRORS) out += `\n[errors]: … ${errors.length - CHAINED_ERRORS} more`;
    }
    if (omitted > 0) out += `\n… ${omitted} more ${omitted === 1 ? 'cause or error' : 'causes and errors'} not shown (a report shows ${CHAINED_NODES}, in ${CHAINED_CHARS / 1024} KiB, at most)`;
    return out;
  } catch {
    return out; // what was read before the read that threw (an `errors` Proxy): the cause stays
  }
}

/** Characters of a cause's message kept, and of its stack's frames: each cut apart, so a long message keeps the frames. */
const CAUSE_HEAD_CHARS = 1024;
const CAUSE_FRAMES_CHARS = 3072;

/**
 * A cause's text within DESCRIPTION_CHARS: its first line(s) (name and message) and its frames (`    at …`) each cut
 * on its own. Cut as one text, a cause whose message held a 5 KB response body lost every frame, the handler's
 * line among them (hostile re-check).
 */
function boundedStack(text: string): string {
  if (text.length <= DESCRIPTION_CHARS) return text;
  const frames = text.indexOf('\n    at ');
  if (frames < 0) return bounded(text);
  return `${cutText(text.slice(0, frames), CAUSE_HEAD_CHARS)}${cutText(text.slice(frames), CAUSE_FRAMES_CHARS)}`;
}

/** `text` within `n` characters, saying how many more there were. */
export function cutText(text: string, n: number): string {
  return text.length <= n ? text : `${text.slice(0, n)}… (${text.length - n} more characters)`;
}

/** Every line after the first indented two spaces, under the `[cause]:` that names it. */
function indentBelow(text: string): string {
  return text.replace(/\n/g, '\n  ');
}

/** Characters of a thrown object's description kept for a log line (an object of 100,000 keys made a line of megabytes). */
const DESCRIPTION_CHARS = 4096;
/** Properties a thrown object's description shows, at each level (util.inspect limits arrays, not objects). */
const DESCRIBED_KEYS = 50;

/**
 * util.inspect's text of a thrown object, its work bounded as its length is: an object of 100,000 keys took 3 s
 * of the event loop to print in full (hostile re-check). Where the object or a value in it (two levels down) has
 * more than DESCRIBED_KEYS properties, only the first ones of the object are shown, each value at depth 0.
 */
function describeObject(value: object): string {
  const options = { breakLength: Infinity, maxArrayLength: 20, maxStringLength: 1000 };
  if (!hasManyKeys(value, 2)) return bounded(inspect(value, options));
  const keys = Reflect.ownKeys(value);
  const head = Object.create(Object.getPrototypeOf(value) as object | null) as Record<PropertyKey, unknown>;
  for (const key of keys.slice(0, DESCRIBED_KEYS)) Object.defineProperty(head, key, { value: readThrown(value, key), enumerable: true });
  const more = keys.length > DESCRIBED_KEYS ? ` … (${keys.length - DESCRIBED_KEYS} more properties)` : '';
  return bounded(`${inspect(head, { ...options, depth: 0 })}${more}`);
}

/** Whether `value`, or an object within `depth` levels of it, has more than DESCRIBED_KEYS own properties (counted once each, at most that many objects looked at). */
function hasManyKeys(value: unknown, depth: number, seen = new Set<unknown>()): boolean {
  if (typeof value !== 'object' || value === null || seen.has(value) || seen.size > DESCRIBED_KEYS) return false;
  seen.add(value);
  const keys = Reflect.ownKeys(value);
  if (keys.length > DESCRIBED_KEYS) return true;
  return depth > 0 && keys.some((key) => hasManyKeys(readThrown(value, key), depth - 1, seen));
}

function bounded(text: string): string {
  return cutText(text, DESCRIPTION_CHARS);
}

/** `value[key]`, or undefined when the read throws (a getter, a Proxy) or `value` is not an object. */
export function readThrown(value: unknown, key: PropertyKey): unknown {
  if ((typeof value !== 'object' || value === null) && typeof value !== 'function') return undefined;
  try {
    return (value as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** `value instanceof SystemExit`, false when asking throws (a Proxy's getPrototypeOf trap). */
export function isSystemExit(value: unknown): boolean {
  try {
    return value instanceof SystemExit;
  } catch {
    return false;
  }
}

/**
 * What every report of an error says of it, read without throwing: its `name` and `message` as text (an Error's,
 * or `Error` and the value printed for anything else), and its `code` when that is a string.
 */
export function errorFields(error: unknown): { name: string; message: string; code?: string } {
  if (typeof error !== 'object' || error === null) return { name: 'Error', message: describeThrown(error) };
  const [name, message, code] = [readThrown(error, 'name'), readThrown(error, 'message'), readThrown(error, 'code')];
  const out: { name: string; message: string; code?: string } = { name: fieldText(name, 'Error'), message: fieldText(message, '') };
  if (typeof code === 'string') out.code = code;
  return out;
}

/** `Name: message` (or the name alone), read without throwing: how an AggregateError of a request's two failures names each. */
export function describeBriefly(error: unknown): string {
  const { name, message } = errorFields(error);
  return message ? `${name}: ${message}` : name;
}

/** A field of a thrown value as text: `fallback` when it is missing (undefined or null), else the value printed. */
export function fieldText(value: unknown, fallback: string): string {
  return value === undefined || value === null ? fallback : typeof value === 'string' ? value : describeThrown(value);
}

const DISPOSAL_FAILED = Symbol.for('sockserve.disposalFailed');

/**
 * Marks `error` (the AggregateError of a request that failed and whose request scope then failed to dispose) with
 * the disposal's own error: when a @HandleError already had the request's error, the disposal's is reported on
 * its own (disposalFailureOf), never lost. Returns `error`.
 */
export function markDisposalFailure<T extends object>(error: T, disposeError: unknown): T {
  Object.defineProperty(error, DISPOSAL_FAILED, { value: { error: disposeError }, configurable: true });
  return error;
}

/** The request scope's disposal error carried by `error` (markDisposalFailure), as `{ error }`; undefined when none. */
export function disposalFailureOf(error: unknown): { error: unknown } | undefined {
  return readThrown(error, DISPOSAL_FAILED) as { error: unknown } | undefined;
}
