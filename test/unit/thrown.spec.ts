/**
 * Reading thrown values (errors/thrown.ts): the log line's fields and the fields sent across a worker
 * boundary (remote/protocol.ts serializeError) say the same of one value, whatever its fields hold.
 */
import * as vm from 'node:vm';
import { describeThrown, errorFields } from '../../src/errors/thrown';
import { deserializeError, serializeError } from '../../src/concurrency/remote/protocol';
import { errorKind } from '../../src/observability/error-kind';

function withFields(name: unknown, message: unknown): Error {
  const err = new Error('placeholder');
  Object.defineProperty(err, 'name', { value: name });
  Object.defineProperty(err, 'message', { value: message });
  return err;
}

describe('a thrown Error whose name or message is not a string', () => {
  test.each([
    ['undefined', undefined, 'Error', ''],
    ['null', null, 'Error', ''],
    ['a number', 7, '7', '7'],
    ['a Symbol', Symbol('odd'), 'Symbol(odd)', 'Symbol(odd)'],
    ['an object with no prototype', Object.create(null), '[Object: null prototype] {}', '[Object: null prototype] {}'],
  ])('%s: the log and the worker boundary read the same name and message', (_what, value, name, message) => {
    const err = withFields(value, value);
    expect(errorFields(err)).toEqual({ name, message });
    const sent = serializeError(err);
    expect({ name: sent.name, message: sent.message }).toEqual({ name, message });
    const rebuilt = deserializeError(sent);
    expect([rebuilt.name, rebuilt.message]).toEqual([name, message]);
  });

  test('a getter that throws reads as missing', () => {
    const err = new Error('x');
    Object.defineProperty(err, 'message', { get() { throw new Error('no'); } });
    expect(errorFields(err).message).toBe('');
    expect(serializeError(err).message).toBe('');
  });
});

describe('the class of an error across a worker boundary', () => {
  test.each([TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError])('%p arrives as itself', (Kind) => {
    const rebuilt = deserializeError(serializeError(new Kind('over there')));
    expect(rebuilt).toBeInstanceOf(Kind);
    expect([rebuilt.name, rebuilt.message]).toEqual([Kind.name, 'over there']);
  });

  test('an AggregateError arrives with its errors, so the server classifies it as the worker did (a reset, then a farewell on the closed connection: a client error)', () => {
    const both = new AggregateError([Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' }), Object.assign(new Error('closed'), { code: 'EPIPE' })], 'both');
    const rebuilt = deserializeError(serializeError(both)) as AggregateError;
    expect(rebuilt).toBeInstanceOf(AggregateError);
    expect(rebuilt.errors.map((e: NodeJS.ErrnoException) => [e.message, e.code])).toEqual([['write ECONNRESET', 'ECONNRESET'], ['closed', 'EPIPE']]);
    expect(errorKind(rebuilt)).toBe('client');
  });

  test("a class of the user's arrives as an Error with its name; names of Object's own members are no class", () => {
    class ValidationError extends Error { override name = 'ValidationError'; }
    const rebuilt = deserializeError(serializeError(new ValidationError('bad')));
    expect(rebuilt.constructor).toBe(Error);
    expect(rebuilt.name).toBe('ValidationError');
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const odd = deserializeError({ name, message: 'm', stack: 'm' });
      expect(Object.getPrototypeOf(odd)).toBe(Error.prototype);
    }
  });
});

describe('describeThrown: the text a log gives a thrown value', () => {
  test('an object that is no Error shows its fields, as Node prints one uncaught (it read [object Object])', () => {
    expect(describeThrown({ code: 'E_QUOTA', detail: 'user 7 over quota' })).toBe("{ code: 'E_QUOTA', detail: 'user 7 over quota' }");
    expect(describeThrown(Object.create(null))).toBe('[Object: null prototype] {}');
  });

  test('a huge thrown object is described in at most 4096 characters, and says how many more there were', () => {
    const huge = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`key${i}`, i]));
    const text = describeThrown(huge);
    expect(text).toMatch(/^\{ key0: 0, key1: 1, .* key49: 49 \} … \(99950 more properties\)$/);
    const nested = { code: 'E_BIG', detail: huge };
    // Printing all of it took 3 s: the whole print gives `detail: { key0: 0, …` (cut at 4096 characters), so this
    // text is the proof that the bounded path ran (a timed bound here failed under load: 516 ms for 500).
    expect(describeThrown(nested)).toBe("{ code: 'E_BIG', detail: [Object] }");
    const long = describeThrown(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'x'.repeat(1000)])));
    expect(long).toMatch(/^\{ k0: 'x{1000}', k1: [^]*… \(\d+ more characters\)$/);
    expect(long.length).toBeLessThan(4200);
  });

  test('an Error, of this realm or another, gives its stack; a primitive its text', () => {
    const err = new TypeError('bad');
    expect(describeThrown(err)).toBe(err.stack);
    const foreign = vm.runInNewContext('new RangeError("far")') as Error;
    expect(foreign instanceof Error).toBe(false);
    expect(describeThrown(foreign)).toMatch(/^RangeError: far\n/);
    expect([describeThrown(undefined), describeThrown('text'), describeThrown(7)]).toEqual(['undefined', 'text', '7']);
  });

  test("an error's cause and an AggregateError's errors are printed below its stack, indented, as util.inspect prints them ([cause], [errors])", () => {
    const inner = new RangeError('where the handler threw');
    const outer = new Error('the worker died', { cause: inner });
    expect(describeThrown(outer)).toBe(`${outer.stack}\n[cause]: ${inner.stack!.replace(/\n/g, '\n  ')}`);
    const a = new Error('handle failed');
    const b = new TypeError('finish failed');
    const both = new AggregateError([a, b], 'both');
    expect(describeThrown(both)).toBe(`${both.stack}\n[errors][0]: ${a.stack!.replace(/\n/g, '\n  ')}\n[errors][1]: ${b.stack!.replace(/\n/g, '\n  ')}`);
    // a cause that is no Error is described as a thrown object is
    expect(describeThrown(new Error('x', { cause: { code: 42 } }))).toMatch(/\n\[cause\]: \{ code: 42 \}$/);
  });

  test('the chain is bounded: an error that is its own cause is printed once, four levels at most, eight errors at most', () => {
    const self = new Error('self') as Error & { cause?: unknown };
    self.cause = self;
    expect(describeThrown(self)).toBe(self.stack);
    let deep: Error = new Error('level 9');
    for (let i = 8; i >= 0; i--) deep = new Error(`level ${i}`, { cause: deep });
    const text = describeThrown(deep);
    expect(text.match(/\[cause\]: Error: level \d/g)).toEqual(['[cause]: Error: level 1', '[cause]: Error: level 2', '[cause]: Error: level 3', '[cause]: Error: level 4']);
    const many = new AggregateError(Array.from({ length: 20 }, (_, i) => new Error(`e${i}`)), 'many');
    expect(describeThrown(many).match(/\[errors\]\[\d+\]/g)).toHaveLength(8);
    expect(describeThrown(many)).toMatch(/\n\[errors\]: … 12 more$/);
    const hostileCause = new Error('outer', { cause: new Proxy({}, { get() { throw new Error('no'); }, getPrototypeOf() { throw new Error('no'); }, ownKeys() { throw new Error('no'); } }) });
    expect(describeThrown(hostileCause)).toMatch(/^Error: outer\n/);
  });

  test('what is printed below the stack is bounded in size: a 5 MB cause, a cause whose stack is 5 MB, a tree of AggregateErrors', () => {
    // A response body given as the cause made a report of 5 MB; four levels of eight errors and a cause each, 4 MB and
    // 81,000 lines (hostile re-check).
    const body = describeThrown(new Error('upstream said no', { cause: 'B'.repeat(5_000_000) }));
    expect(body.length).toBeLessThan(6000);
    expect(body).toMatch(/\n\[cause\]: B{4096}… \(4995904 more characters\)$/);
    const huge = new Error('c');
    Object.defineProperty(huge, 'stack', { value: 'S'.repeat(5_000_000) });
    expect(describeThrown(new Error('outer', { cause: huge })).length).toBeLessThan(6000);
    const wide = (d: number): Error => (d === 0 ? new Error('leaf') : new AggregateError(Array.from({ length: 8 }, () => wide(d - 1)), 'agg', { cause: wide(d - 1) }));
    const tree = describeThrown(wide(4));
    const shown = (tree.match(/\[(cause|errors\]\[\d+)\]: /g) ?? []).length;
    expect(shown).toBeGreaterThanOrEqual(8); // 16 at most, fewer when 16 KiB run out first
    expect(shown).toBeLessThanOrEqual(16);
    expect(tree).toMatch(/causes and errors not shown \(a report shows 16, in 16 KiB, at most\)$/);
    expect(tree.length).toBeLessThan(32 * 1024); // 16 KiB of causes, give or take one cause and the indentation
  });

  test("a cause whose message is long keeps its frames (the handler's line), its message cut on its own", () => {
    function userCode(): Error {
      return new Error(`upstream said: ${JSON.stringify({ body: 'b'.repeat(5000) })}`);
    }
    const text = describeThrown(new Error('the worker died', { cause: userCode() }));
    expect(text).toMatch(/\[cause\]: Error: upstream said: \{"body":"b+… \(\d+ more characters\)\n {6}at userCode /);
    expect(text.length).toBeLessThan(6000);
  });

  test('the causes below the stack stay near their 16 KiB, and an errors property whose read throws keeps the cause read before it', () => {
    const big = (n: number, d: number): Error => (d === 0 ? new Error('L'.repeat(n)) : new AggregateError(Array.from({ length: 8 }, () => big(n, d - 1)), 'A'.repeat(n), { cause: new Error('C'.repeat(n)) }));
    const top = big(4000, 4);
    const below = describeThrown(top).length - top.stack!.length;
    expect(below).toBeLessThan(16 * 1024 + 5 * 1024); // 16 KiB, give or take the last cause and the indentation (29 KiB before)
    const cause = new RangeError('the real failure');
    const odd = new Error('outer', { cause });
    Object.defineProperty(odd, 'errors', { get: () => new Proxy([1, 2], { get() { throw new Error('no'); } }) });
    expect(describeThrown(odd)).toContain('[cause]: RangeError: the real failure');
  });

  test('a value whose every read throws is still described, without throwing', () => {
    const hostile = new Proxy({}, { get() { throw new Error('no'); }, getPrototypeOf() { throw new Error('no'); }, ownKeys() { throw new Error('no'); } });
    expect(typeof describeThrown(hostile)).toBe('string');
  });
});
