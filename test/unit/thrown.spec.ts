/**
 * Reading thrown values (errors/thrown.ts): the log line's fields and the fields sent across a worker
 * boundary (remote/protocol.ts serializeError) say the same of one value, whatever its fields hold.
 */
import { errorFields } from '../../src/errors/thrown';
import { deserializeError, serializeError } from '../../src/concurrency/remote/protocol';

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
