/**
 * From `@Framing(kind, options)` to a `FramingDefinition`: each built-in framer by name, with its
 * defaults, or a user factory. Kept apart from the decorator so that the decorator only validates and
 * records.
 */
import { constants as bufferConstants } from 'node:buffer';
import { FrameTooLongError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import type { FramingDefinition, TransportDefinition } from '../metadata/definition';
import {
  FRAME_MAX_LENGTH,
  Framer,
  FramerFactory,
  FramerKind,
  FramerOptions,
  LengthPrefixedOptions,
  LINE_MAX_LENGTH,
  OUTPUT_BUFFER_MAX,
} from './framer';
import { JsonLinesFramer } from './json-lines.framer';
import { LengthPrefixedFramer, PREFIX_MAX } from './length-prefixed.framer';
import { LinesFramer } from './lines.framer';
import { NetstringFramer } from './netstring.framer';

export const FRAMER_KINDS: readonly FramerKind[] = ['lines', 'length-prefixed', 'netstring', 'json-lines'];

export function isFramerKind(kind: unknown): kind is FramerKind {
  return typeof kind === 'string' && (FRAMER_KINDS as readonly string[]).includes(kind);
}

/** The options each built-in framer takes, beyond `maxLength`, `concurrency` and `maxOutputBuffer`. */
export const FRAMER_OPTIONS: Readonly<Record<FramerKind, readonly string[]>> = {
  lines: [],
  'json-lines': [],
  netstring: [],
  'length-prefixed': ['lengthBytes', 'byteOrder'],
};

/** The definition of a built-in framer, defaults applied. */
export function builtInFraming(kind: FramerKind, options: LengthPrefixedOptions): FramingDefinition {
  const concurrency = options.concurrency ?? 1;
  const maxOutputBuffer = options.maxOutputBuffer ?? OUTPUT_BUFFER_MAX;
  switch (kind) {
    case 'lines':
    case 'json-lines': {
      const lines = (maxLength: number, fromLineLimit = false): FramingDefinition => ({
        name: kind,
        maxLength,
        concurrency,
        maxOutputBuffer,
        create: kind === 'lines' ? () => new LinesFramer(maxLength, 'lines', fromLineLimit) : () => new JsonLinesFramer(maxLength, fromLineLimit),
        ...(fromLineLimit ? { fromLineLimit } : {}),
      });
      if (options.maxLength !== undefined) return lines(options.maxLength);
      return { ...lines(LINE_MAX_LENGTH), lineLimited: (maxLineLength) => lines(maxLineLength, true) };
    }
    case 'netstring': {
      // Its body is one Buffer once whole: no longer than a Buffer can be (below).
      const maxLength = Math.min(options.maxLength ?? FRAME_MAX_LENGTH, bufferConstants.MAX_LENGTH);
      return { name: kind, maxLength, concurrency, maxOutputBuffer, create: () => new NetstringFramer(maxLength) };
    }
    case 'length-prefixed': {
      const lengthBytes = options.lengthBytes ?? 4;
      const little = options.byteOrder === 'little';
      // The message is filled into one buffer, its prefix in front: with a maxLength past what a Buffer can hold
      // (4 GiB on Node 20), a client announcing 0xffffffff made that buffer throw a RangeError, a handler error
      // with its traceback, not a FrameTooLongError (hostile run).
      const maxLength = Math.min(options.maxLength ?? FRAME_MAX_LENGTH, PREFIX_MAX[lengthBytes], bufferConstants.MAX_LENGTH - lengthBytes);
      return { name: kind, maxLength, concurrency, maxOutputBuffer, create: () => new LengthPrefixedFramer(maxLength, lengthBytes, little) };
    }
  }
}

/**
 * `framing` as a stream server with `limits.maxLineLength` (bytes) runs it: a line framer given no `maxLength`
 * of its own takes the server's line limit (a user set `maxLineLength: 10` and `@Framing('lines')` took 23-byte
 * lines: new-user run); `@Framing`'s own `maxLength` wins, and other framers' messages are no lines.
 */
export function withLineLimit(framing: FramingDefinition, maxLineLength: number | undefined): FramingDefinition;
export function withLineLimit(framing: FramingDefinition | undefined, maxLineLength: number | undefined): FramingDefinition | undefined;
export function withLineLimit(framing: FramingDefinition | undefined, maxLineLength: number | undefined): FramingDefinition | undefined {
  return maxLineLength === undefined || framing?.lineLimited === undefined ? framing : framing.lineLimited(maxLineLength);
}

/** A transport's `limits.maxLineLength` (stream transports have `limits`; datagram ones none). */
export function maxLineLengthOf(transport: TransportDefinition): number | undefined {
  return (transport.options as { limits?: { maxLineLength?: number } }).limits?.maxLineLength;
}

/**
 * The definition of a user framer: `factory` is a class (`new F(options)`) or a function
 * (`f(options)`), called once per connection with the `@Framing` options and `maxLength` settled
 * (default 1 MiB). The runner checks `maxLength` for it through `buffered`, or, when the framer has no
 * `buffered`, through the bytes it took in since it last gave a message.
 */
export function userFraming(
  factory: FramerFactory,
  options: Record<string, unknown> & { maxLength?: number; concurrency?: number; maxOutputBuffer?: number },
): FramingDefinition {
  const maxLength = options.maxLength ?? FRAME_MAX_LENGTH;
  const framerOptions: FramerOptions = { ...options, maxLength };
  delete framerOptions.concurrency;
  delete framerOptions.maxOutputBuffer;
  const isClass = typeof factory.prototype === 'object' && factory.prototype !== null;
  const name = factory.name || 'custom framer';
  const build = isClass
    ? () => new (factory as new (o: FramerOptions) => Framer)(framerOptions)
    : () => (factory as (o: FramerOptions) => Framer)(framerOptions);
  // What it built is checked once per connection: null, a promise or an object without the methods failed later as
  // `this.codec(...).decode is not a function`, naming no framer (hostile run).
  const create = (): Framer => {
    const framer: unknown = build();
    const f = framer as Partial<Framer> | null;
    if (typeof f !== 'object' || f === null || typeof f.decode !== 'function' || typeof f.encode !== 'function') throw new TypeError(messages.badFactoryResult(name, framer));
    return framer as Framer;
  };
  const maxOutputBuffer = options.maxOutputBuffer ?? OUTPUT_BUFFER_MAX;
  return { name, maxLength, concurrency: options.concurrency ?? 1, maxOutputBuffer, create, checkMessages: true };
}

/**
 * A user framer's messages checked against maxLength (API.md §12: every framer takes it): the index of the
 * first string or bytes (Buffer, Uint8Array) longer than `maxLength` bytes, and the FrameTooLongError it is;
 * undefined when every one is within. `buffered` (or the bytes fed since the last message) bounds what the
 * framer holds; this catches a message that arrived whole in one chunk. Parsed values (objects) have no
 * length to check. A string's UTF-8 bytes are counted only when its length alone does not decide.
 */
export function tooLongMessage(decoded: readonly unknown[], framing: FramingDefinition): { at: number; error: FrameTooLongError } | undefined {
  const max = framing.maxLength;
  for (let i = 0; i < decoded.length; i++) {
    const m = decoded[i];
    let bytes: number | undefined;
    if (typeof m === 'string') bytes = m.length > max || m.length * 3 > max ? Buffer.byteLength(m) : undefined;
    else if (m instanceof Uint8Array) bytes = m.byteLength;
    if (bytes !== undefined && bytes > max) return { at: i, error: new FrameTooLongError(messages.frameTooLong(framing.name, max, bytes)) };
  }
  return undefined;
}
