import {
  FrameTooLongError, FramingError, JsonLinesFramer, LengthPrefixedFramer, LinesFramer, NetstringFramer,
} from '../../src';
import type { Framer } from '../../src';
import { FILL_START } from '../../src/framing/filling';
import { DECODED_BEFORE } from '../../src/framing/framer';

/** The sizes of the Buffer.allocUnsafe() calls made while `run` runs, in bytes, in order. */
function allocations(run: () => void): number[] {
  const spy = jest.spyOn(Buffer, 'allocUnsafe'); // calls through
  try {
    run();
    return spy.mock.calls.map(([size]) => size);
  } finally {
    spy.mockRestore();
  }
}

/** The largest Buffer.allocUnsafe() call made while `run` runs, in bytes. */
function largestAllocation(run: () => void): number {
  return Math.max(0, ...allocations(run));
}

/** `body` fed to `framer` in `piece`-byte chunks after `head`: the messages, in order. */
function feedInPieces(framer: Framer<Buffer, unknown>, head: Buffer, body: Buffer, tail: Buffer, piece: number): Buffer[] {
  const input = Buffer.concat([head, body, tail]);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) out.push(...framer.decode(input.subarray(i, i + piece)));
  return out;
}

/** Feeds `chunks` to a fresh framer, then its end(); all the messages in order. */
function decodeAll<T>(make: () => Framer<T, unknown>, chunks: Buffer[]): T[] {
  const framer = make();
  const out: T[] = [];
  for (const chunk of chunks) out.push(...framer.decode(chunk));
  out.push(...(framer.end?.() ?? []));
  return out;
}

/** Every way of cutting `bytes` the tests try: whole, at every single point, one byte at a time, and in seeded random pieces. */
function chunkings(bytes: Buffer): Array<[string, Buffer[]]> {
  const ways: Array<[string, Buffer[]]> = [['whole', [bytes]]];
  for (let at = 1; at < bytes.length; at++) ways.push([`split at ${at}`, [bytes.subarray(0, at), bytes.subarray(at)]]);
  ways.push(['one byte at a time', [...bytes].map((b) => Buffer.from([b]))]);
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 20; round++) {
    const pieces: Buffer[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(random() * 7);
      pieces.push(bytes.subarray(i, i + n));
      i += n;
    }
    ways.push([`random pieces #${round}`, pieces]);
  }
  return ways;
}

/** Asserts that every chunking of `bytes` decodes to `expected`. */
function expectEveryChunking<T>(make: () => Framer<T, unknown>, bytes: Buffer, expected: T[]): void {
  for (const [how, chunks] of chunkings(bytes)) {
    try {
      expect(decodeAll(make, chunks)).toEqual(expected);
    } catch (err) {
      throw new Error(`${how}: ${(err as Error).message}`);
    }
  }
}

describe('the lines framer', () => {
  const lines = () => new LinesFramer(64 * 1024);

  test('splits on \\n and drops a trailing \\r, however the input is cut', () => {
    expectEveryChunking(lines, Buffer.from('GET a\r\nSET b 2\n\nlast\r\n'), ['GET a', 'SET b 2', '', 'last']);
  });

  test('decodes multi-byte UTF-8 split across chunks', () => {
    // é (2 bytes), € (3 bytes), 😀 (4 bytes): every cut, including inside a character.
    expectEveryChunking(lines, Buffer.from('café €5\n😀 ok\n'), ['café €5', '😀 ok']);
  });

  test('gives many messages from one chunk, in order', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
    expect(lines().decode(Buffer.from(many.join('\n') + '\n'))).toEqual(many);
  });

  test('many lines in one chunk decode exactly as one line per chunk: \\r, multi-byte and invalid UTF-8 alike', () => {
    // A chunk holding several lines is decoded as one string and split (the pipelining fast path): it
    // must give what decoding each line on its own gives, for any bytes.
    const alphabet = [[0x61], [0x0d], [0x0a], [0x0a], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98, 0x80]];
    let seed = 777;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 200; round++) {
      const bytes: number[] = [];
      for (let i = 0; i < 40; i++) bytes.push(...alphabet[Math.floor(random() * alphabet.length)]);
      const input = Buffer.from([...bytes, 0x0a]);
      // The reference: each line's bytes cut out of the input, a trailing \r dropped, decoded on their own.
      const perLine: string[] = [];
      for (let start = 0; start < input.length; ) {
        const nl = input.indexOf(0x0a, start);
        const end = nl > start && input[nl - 1] === 0x0d ? nl - 1 : nl;
        perLine.push(input.toString('utf8', start, end));
        start = nl + 1;
      }
      expect([round, lines().decode(input)]).toEqual([round, perLine]);
      // Line by line (a chunk per line, each whole), and byte by byte (held across chunks): the same.
      const byLine: string[] = [];
      const framer = lines();
      for (let start = 0; start < input.length; ) {
        const end = input.indexOf(0x0a, start) + 1;
        byLine.push(...framer.decode(input.subarray(start, end)));
        start = end;
      }
      expect([round, byLine]).toEqual([round, perLine]);
      expect([round, decodeAll(lines, [...input].map((b) => Buffer.from([b])))]).toEqual([round, perLine]);
    }
  });

  test('in a chunk of many lines, maxLength counts bytes: multi-byte lines at the limit pass, one byte over fails after the lines before it', () => {
    // é is 2 bytes: 'ééééé' is 10 bytes (the limit), 'éééééa' 11.
    expect(new LinesFramer(10).decode(Buffer.from('ééééé\r\nabc\nééééé\n'))).toEqual(['ééééé', 'abc', 'ééééé']);
    // One line in its own chunk: the same count, bytes on the wire (four invalid bytes are 4, though
    // their four U+FFFD would be 12 as UTF-8).
    expect(new LinesFramer(10).decode(Buffer.from('ééééé\r\n'))).toEqual(['ééééé']);
    expect(new LinesFramer(4).decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0a]))).toEqual(['\ufffd'.repeat(4)]);
    expect(() => new LinesFramer(10).decode(Buffer.from('éééééa\n'))).toThrow('a message of 11 bytes');
    let error: unknown;
    try {
      new LinesFramer(10).decode(Buffer.from('abc\néééééa\nnever\n'));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FrameTooLongError);
    expect((error as Error).message).toContain('a message of 11 bytes');
    expect((error as { [DECODED_BEFORE]?: unknown })[DECODED_BEFORE]).toEqual(['abc']);
  });

  test('a chunk of whole lines is its messages, whether they fit in maxLength all together or only each alone, a \\r inside a line kept', () => {
    // All together within maxLength and no \r: the split itself is returned (a fresh array each time).
    const framer = new LinesFramer(10);
    const first = framer.decode(Buffer.from('ab\ncd\n'));
    expect(framer.decode(Buffer.from('ef\ngh\n'))).toEqual(['ef', 'gh']);
    expect(first).toEqual(['ab', 'cd']);
    // Past maxLength together, each within it: every line checked, none refused.
    expect(new LinesFramer(10).decode(Buffer.from('aaaaaaaaaa\nbbbbbbbbbb\r\ncccccccccc\n'))).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc']);
    // Only the \r before the \n is dropped.
    expect(new LinesFramer(10).decode(Buffer.from('a\rb\nc\r\n\r\n'))).toEqual(['a\rb', 'c', '']);
  });

  test('the lines before an unfinished line already past maxLength, in the same chunk, are still messages', () => {
    let error: unknown;
    try {
      new LinesFramer(10).decode(Buffer.from(`abc\ndef\n${'x'.repeat(20)}`));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FrameTooLongError);
    expect((error as { [DECODED_BEFORE]?: unknown })[DECODED_BEFORE]).toEqual(['abc', 'def']);
    try {
      new JsonLinesFramer(10).decode(Buffer.from(`1\n[2]\n${'x'.repeat(20)}`));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FrameTooLongError);
    expect((error as { [DECODED_BEFORE]?: unknown })[DECODED_BEFORE]).toEqual([1, [2]]);
    expect(new JsonLinesFramer(10).decode(Buffer.from('1\n[2]\n'))).toEqual([1, [2]]);
  });

  test('one line far longer than maxLength, whole in one chunk, fails before any of it is decoded', () => {
    const slice = jest.spyOn(Buffer.prototype as unknown as { utf8Slice(start: number, end: number): string }, 'utf8Slice');
    const toString = jest.spyOn(Buffer.prototype, 'toString');
    try {
      const huge = Buffer.alloc(8 * 1024 * 1024 + 1, 0x61);
      huge[huge.length - 1] = 0x0a;
      expect(() => new LinesFramer(1024).decode(huge)).toThrow(FrameTooLongError);
      expect(slice).not.toHaveBeenCalled();
      expect(toString).not.toHaveBeenCalled();
    } finally {
      slice.mockRestore();
      toString.mockRestore();
    }
  });

  test('a last line without its newline is a message at the end of input', () => {
    expect(decodeAll(lines, [Buffer.from('a\nb')])).toEqual(['a', 'b']);
  });

  test('a line of exactly maxLength bytes passes, its \\r\\n not counted', () => {
    const framer = new LinesFramer(5);
    expect(framer.decode(Buffer.from('12345\r\n'))).toEqual(['12345']);
    expect(framer.decode(Buffer.from('abcd'))).toEqual([]);
    expect(framer.decode(Buffer.from('e\n'))).toEqual(['abcde']);
  });

  test('a line longer than maxLength is a FrameTooLongError, however it arrives', () => {
    for (const [how, chunks] of chunkings(Buffer.from('ok\n123456\n'))) {
      const framer = new LinesFramer(5);
      const got: string[] = [];
      let error: unknown;
      try {
        for (const chunk of chunks) got.push(...framer.decode(chunk));
      } catch (err) {
        error = err;
      }
      expect([how, error]).toEqual([how, expect.any(FrameTooLongError)]);
    }
  });

  test('a stream without a newline fails once maxLength is passed, holding no more than that', () => {
    const framer = new LinesFramer(1000);
    let fed = 0;
    expect(() => {
      for (;;) {
        framer.decode(Buffer.alloc(100, 0x61));
        fed += 100;
        expect(framer.buffered).toBeLessThanOrEqual(1001);
      }
    }).toThrow(FrameTooLongError);
    expect(fed).toBeLessThanOrEqual(1100);
  });

  test('the FrameTooLongError names the framer, the limit and the fix', () => {
    expect(() => new LinesFramer(4).decode(Buffer.from('toolong\n'))).toThrow(
      "@Framing('lines'): a message of 7 bytes arrived, longer than maxLength 4; the connection is closed. Fix: raise maxLength in @Framing('lines', { maxLength }) if such messages are legitimate.",
    );
  });

  test('replies get \\n: strings, Buffers and numbers', () => {
    const framer = lines();
    expect(framer.encode('OK')).toBe('OK\n');
    expect(framer.encode(Buffer.from('raw'))).toEqual(Buffer.from('raw\n'));
    expect(framer.encode(42)).toBe('42\n');
    expect(() => framer.encode({})).toThrow(TypeError);
    // Its Fix names every type it sends, not only strings and Buffers (a number is sent: hostile run), and the framer for objects.
    expect(() => framer.encode({})).toThrow(
      "@Framing('lines'): cannot encode a reply of type object. Fix: return a string, a Buffer, a number, a boolean or a bigint (sent as its text), or undefined for no reply; for objects, @Framing('json-lines').",
    );
  });
});

describe('the json-lines framer', () => {
  const json = () => new JsonLinesFramer(64 * 1024);

  test('parses each line as JSON, however the input is cut, skipping empty lines', () => {
    expectEveryChunking(json, Buffer.from('{"op":"get","key":"é"}\n\n[1,2]\r\n"s"\n'), [{ op: 'get', key: 'é' }, [1, 2], 's']);
  });

  test('a line that is not JSON is a FramingError quoting it, after the good lines of the same chunk', () => {
    const framer = json();
    let error: unknown;
    try {
      framer.decode(Buffer.from('{"a":1}\nnot json\n{"b":2}\n'));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FramingError);
    expect((error as Error).message).toMatch(/^@Framing\('json-lines'\): a line is not JSON \(.*\): "not json"; the connection is closed\. Fix: /);
    expect((error as Record<symbol, unknown>)[Symbol.for('sockserve.framing.decodedBefore')]).toEqual([{ a: 1 }]);
  });

  test('the message carries no raw control character of the client\'s (ESC sequences would reach the log and the terminal)', () => {
    let error: unknown;
    try {
      json().decode(Buffer.from('\x1b[2J\x1b[31mred\x7f\u0085\n'));
    } catch (err) {
      error = err;
    }
    const message = (error as Error).message;
    expect(message).toMatch(/^@Framing\('json-lines'\): a line is not JSON/);
    expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(message).toContain('\\u001b[2J');
  });

  test('replies are JSON.stringify\'d with \\n', () => {
    expect(json().encode({ ok: true, n: [1] })).toBe('{"ok":true,"n":[1]}\n');
    expect(() => json().encode(undefined)).toThrow(TypeError);
  });

  // A BigInt or a cycle gave JSON.stringify's bare words, naming no framer; a function's Fix said "return a string
  // or a Buffer", though a Buffer goes out as its JSON (hostile run).
  test('a reply JSON cannot write is a TypeError naming the framer, with JSON\'s reason and a JSON Fix', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const [reply, type] of [[{ n: 1n }, 'object'], [cycle, 'object'], [() => 1, 'function'], [Symbol('s'), 'symbol']] as const) {
      let error: unknown;
      try {
        json().encode(reply);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(new RegExp(`^@Framing\\('json-lines'\\): cannot encode a reply of type ${type} as JSON`));
      expect((error as Error).message).toContain('Fix: return a value JSON.stringify can write');
    }
  });
});

describe('the length-prefixed framer', () => {
  /** Whether `part`'s bytes are memory of `whole` (small Buffers share a pool: the ArrayBuffer alone says nothing). */
  const isViewOf = (part: Buffer, whole: Buffer) =>
    part.buffer === whole.buffer && part.byteOffset >= whole.byteOffset && part.byteOffset + part.length <= whole.byteOffset + whole.length;
  const frame = (body: string, bytes: 1 | 2 | 4 = 4, little = false) => new LengthPrefixedFramer(1 << 20, bytes, little).encode(body);

  test.each([1, 2, 4] as const)('decodes %i-byte big-endian prefixes, however the input is cut', (bytes) => {
    const input = Buffer.concat([frame('hello', bytes), frame('', bytes), frame('wörld', bytes)]);
    expectEveryChunking(() => new LengthPrefixedFramer(1 << 20, bytes), input, [Buffer.from('hello'), Buffer.alloc(0), Buffer.from('wörld')]);
  });

  test('decodes little-endian prefixes', () => {
    const input = Buffer.from([5, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    expect(new LengthPrefixedFramer(100, 2, true).decode(input)).toEqual([Buffer.from('hello')]);
    expect(new LengthPrefixedFramer(100, 2, true).encode('hello')).toEqual(input);
  });

  test('a 64 KiB message in 1000-byte pieces arrives whole', () => {
    const body = Buffer.alloc(64 * 1024, 7);
    const input = Buffer.concat([frame(body.toString('latin1')).subarray(0, 4), body]);
    const framer = new LengthPrefixedFramer(1 << 20);
    const out: Buffer[] = [];
    for (let i = 0; i < input.length; i += 1000) out.push(...framer.decode(input.subarray(i, i + 1000)));
    expect(out).toEqual([body]);
  });

  test('a prefix announcing more than maxLength fails before any of the body is held', () => {
    const framer = new LengthPrefixedFramer(10);
    expect(() => framer.decode(Buffer.from([0, 0, 0, 11]))).toThrow(FrameTooLongError);
    // Its message says the size was announced: none of those bytes arrived.
    expect(() => new LengthPrefixedFramer(10).decode(Buffer.from([0, 0, 0, 11]))).toThrow(
      "@Framing('length-prefixed'): a message of 11 bytes was announced by its length, longer than maxLength 10; the connection is closed.",
    );
  });

  test('a message of FILL_START bytes (the default maxLength) is allocated once, its prefix in front', () => {
    const framer = new LengthPrefixedFramer(1 << 20);
    const input = framer.encode(Buffer.alloc(FILL_START, 1));
    const out: Buffer[] = [];
    const sizes = allocations(() => {
      for (let i = 0; i < input.length; i += 65536) out.push(...framer.decode(input.subarray(i, i + 65536)));
    });
    expect(out).toHaveLength(1);
    expect(sizes).toEqual([FILL_START + 4]);
  });

  test('a prefix announcing a large message holds memory for the bytes that came, not for the length announced', () => {
    // maxLength 4 GiB - 1: a prefix of 0xffffffff was a 4 GiB allocation at once on Node 24 (hostile run), for a body that never came.
    const framer = new LengthPrefixedFramer(0xffffffff);
    expect(largestAllocation(() => expect(framer.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toEqual([]))).toBe(FILL_START + 4);
    expect(framer.buffered).toBe(7);
    // Its buffer grows as bytes arrive, at most four times what has come.
    expect(largestAllocation(() => framer.decode(Buffer.alloc(FILL_START + 1)))).toBeLessThanOrEqual(4 * (FILL_START + 8));
    expect(framer.buffered).toBe(FILL_START + 8);
  });

  test.each([FILL_START, FILL_START + 1, FILL_START * 5 + 1])('a message of %i bytes in 1000-byte pieces arrives whole, and echoed goes out as the buffer it was filled into', (size) => {
    const framer = new LengthPrefixedFramer(1 << 24);
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = i % 251;
    const head = framer.encode(Buffer.alloc(size)).subarray(0, 4);
    const messages = feedInPieces(framer, head, body, framer.encode('after'), 1000);
    expect(messages.map((m) => m.length)).toEqual([size, 5]);
    expect(messages[0].equals(body) && messages[1].toString() === 'after').toBe(true);
    const echoed = framer.encodeInPlace(messages[0]);
    expect(echoed.equals(Buffer.concat([head, body]))).toBe(true);
    expect(echoed.buffer === messages[0].buffer && echoed.byteOffset + 4 === messages[0].byteOffset).toBe(true);
  });

  test('a message cut short by the end of input is a FramingError', () => {
    const framer = new LengthPrefixedFramer(100);
    expect(framer.decode(Buffer.from([0, 0, 0, 5, 0x61]))).toEqual([]);
    expect(() => framer.end()).toThrow(FramingError);
  });

  test('a reply longer than the prefix can express is refused', () => {
    expect(() => new LengthPrefixedFramer(255, 1).encode(Buffer.alloc(256))).toThrow(RangeError);
  });

  test.each([[1, false], [2, false], [4, false], [2, true], [4, true]] as const)(
    'encodeInPlace(): an echoed message goes out as its own bytes, prefix and all, a view of the chunk; encode() copies (%i-byte prefix, little-endian %s)',
    (bytes, little) => {
      const make = () => new LengthPrefixedFramer(1 << 20, bytes, little);
      const input = Buffer.concat([make().encode('one'), make().encode(''), make().encode('three')]);
      const framer = make();
      const messages = framer.decode(input);
      const replies = messages.map((m) => framer.encodeInPlace(m));
      expect(Buffer.concat(replies)).toEqual(input);
      for (const reply of replies) expect(isViewOf(reply, input)).toBe(true); // not copied
      const copies = make();
      const copied = copies.decode(input).map((m) => copies.encode(m));
      expect(Buffer.concat(copied)).toEqual(input);
      for (const reply of copied) expect(isViewOf(reply, input)).toBe(false);
      // Whatever the handler did to the message before returning it is what goes out.
      const again = make();
      const [first] = again.decode(input);
      first[0] = 0x4f; // 'O'
      expect(again.encodeInPlace(first)).toEqual(make().encode('One'));
    },
  );

  test('a message put together from several chunks, echoed, goes out as the buffer it was filled into, then the whole messages after it as views', () => {
    const framer = new LengthPrefixedFramer(1 << 20);
    const big = Buffer.alloc(20000, 7);
    const input = Buffer.concat([framer.encode(big), framer.encode('after')]);
    expect(framer.decode(input.subarray(0, 5000))).toEqual([]);
    const messages = framer.decode(input.subarray(5000));
    expect(messages).toEqual([big, Buffer.from('after')]);
    const [first, second] = messages.map((m) => framer.encodeInPlace(m));
    expect(Buffer.concat([first, second])).toEqual(input);
    // The buffer it was filled into: its prefix was written there, just before the message's bytes.
    expect(first.buffer === messages[0].buffer && first.byteOffset + 4 === messages[0].byteOffset).toBe(true);
    expect(isViewOf(second, input)).toBe(true);
    // Not echoed: a fresh prefix, and the assembled buffer is let go.
    framer.decode(input.subarray(0, 5000));
    const [again] = framer.decode(input.subarray(5000, 4 + big.length));
    expect(framer.encodeInPlace(Buffer.from('other'))).toEqual(new LengthPrefixedFramer(1 << 20).encode('other'));
    const copy = framer.encodeInPlace(again);
    expect(copy.equals(Buffer.concat([Buffer.from([0, 0, 0x4e, 0x20]), again]))).toBe(true);
    expect(copy.buffer === again.buffer && copy.byteOffset + 4 === again.byteOffset).toBe(false); // a fresh prefix and copy
  });

  test('a reply that is not a whole message of the last chunk is copied behind a fresh prefix, whatever bytes precede it', () => {
    const framer = new LengthPrefixedFramer(1 << 20);
    const input = Buffer.concat([framer.encode('abcdefgh'), framer.encode('xyz')]);
    const [first] = framer.decode(input);
    // A part of a message: the bytes before it are the message's own, not a prefix of its length.
    const part = first.subarray(4);
    const copied = framer.encodeInPlace(part);
    expect(copied).toEqual(Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('efgh')]));
    expect(isViewOf(copied, input)).toBe(false);
    // A part whose preceding four bytes do read as its length is the same bytes either way.
    const tricky = Buffer.from([9, 0, 0, 0, 2, 0x61, 0x62]);
    const trickyFramer = new LengthPrefixedFramer(1 << 20);
    expect(trickyFramer.decode(Buffer.concat([Buffer.from([0, 0, 0, 7]), tricky]))).toEqual([tricky]);
    const [message] = new LengthPrefixedFramer(1 << 20).decode(Buffer.concat([Buffer.from([0, 0, 0, 7]), tricky]));
    expect(trickyFramer.encodeInPlace(message.subarray(5))).toEqual(Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
    // A message of an earlier chunk, or a buffer of the handler's own: a fresh prefix.
    const earlier = framer.decode(framer.encode('old'))[0];
    framer.decode(framer.encode('new'));
    expect(framer.encodeInPlace(earlier)).toEqual(new LengthPrefixedFramer(1 << 20).encode('old'));
    expect(framer.encodeInPlace(Buffer.from('own'))).toEqual(new LengthPrefixedFramer(1 << 20).encode('own'));
  });
});

describe('the netstring framer', () => {
  const netstrings = () => new NetstringFramer(1 << 20);

  test('decodes netstrings, however the input is cut', () => {
    expectEveryChunking(netstrings, Buffer.from('5:hello,0:,12:hello world!,'), [Buffer.from('hello'), Buffer.alloc(0), Buffer.from('hello world!')]);
  });

  test('encodes replies as netstrings', () => {
    expect(netstrings().encode('hello')).toEqual(Buffer.from('5:hello,'));
    expect(netstrings().encode(Buffer.alloc(0))).toEqual(Buffer.from('0:,'));
  });

  test.each([
    ['a non-digit in the length', 'x:abc,'],
    ['a leading zero', '05:hello,'],
    ['no length before the colon', ':,'],
    ['a missing comma', '5:hello;'],
  ])('%s is a FramingError', (_what, input) => {
    expect(() => decodeAll(netstrings, [Buffer.from(input)])).toThrow(FramingError);
  });

  test('a length above maxLength fails as soon as its digits say so', () => {
    const framer = new NetstringFramer(99);
    expect(framer.decode(Buffer.from('9'))).toEqual([]);
    expect(() => framer.decode(Buffer.from('99'))).toThrow(FrameTooLongError);
  });

  test('a length announcing a large body holds memory for the bytes that came, not for the length announced', () => {
    const framer = new NetstringFramer(2 ** 31);
    expect(largestAllocation(() => expect(framer.decode(Buffer.from('2147483648:abc'))).toEqual([]))).toBeLessThanOrEqual(FILL_START);
    expect(framer.buffered).toBe(14);
  });

  test.each([FILL_START, FILL_START * 5 + 1])('a body of %i bytes in 1000-byte pieces arrives whole', (size) => {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = i % 251;
    const messages = feedInPieces(new NetstringFramer(1 << 24), Buffer.from(`${size}:`), body, Buffer.from(',0:,'), 1000);
    expect(messages.map((m) => m.length)).toEqual([size, 0]);
    expect(messages[0].equals(body)).toBe(true);
  });

  test('a netstring cut short by the end of input is a FramingError', () => {
    expect(() => decodeAll(netstrings, [Buffer.from('5:hel')])).toThrow(FramingError);
  });
});
