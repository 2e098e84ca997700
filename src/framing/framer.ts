/**
 * The `Framer` interface of `@Framing` ([messages and framing](../../docs/messages-and-framing.md)): one small object per connection that turns the bytes
 * of a stream into messages and replies into bytes, keeping its own partial input between chunks.
 * Netty's codecs (`ByteToMessageDecoder` subclasses such as `LineBasedFrameDecoder`) are the model.
 */

/**
 * Bytes in → messages out, reply → bytes. Built fresh for every connection (and every datagram) by the
 * factory given to `@Framing`, so it may keep state.
 *
 * - `decode(chunk)`: the messages this chunk completes, in order (often none, or many); partial input
 *   is kept for the next call. May throw (a `FramingError`, or a `FrameTooLongError` once a message
 *   passes `maxLength`): the connection then ends through `@HandleError`.
 * - `encode(reply)`: the bytes of one reply, its delimiter or length prefix included.
 * - `end()` (optional): the client closed its side; returns what the held input still makes (a last
 *   line without its newline), or throws when it is a message cut short.
 * - `buffered` (optional): bytes of an incomplete message held now. Shutdown waits for such a message to
 *   complete, and the runner's `maxLength` check uses it for framers that do not check it themselves.
 */
export interface Framer<In = unknown, Out = unknown> {
  /**
   * The messages `chunk` completes, in order (none, one or many); partial input is kept for the next call.
   * Throws FramingError for malformed input, FrameTooLongError past `maxLength`: the connection then ends
   * through `@HandleError` (the messages decoded before the bad input are handled first).
   */
  decode(chunk: Buffer): In[];
  /** The bytes of one reply, its delimiter or length prefix included (a string is sent as UTF-8). Throws TypeError for a reply it cannot frame. */
  encode(reply: Out): Buffer | string;
  /** Optional. The client closed its side: the messages the held input still makes, or throws FramingError for a message cut short. */
  end?(): In[];
  /** Optional. Bytes of an incomplete message held now: shutdown waits for it, and the runner checks `maxLength` against it. */
  readonly buffered?: number;
}

/**
 * Internal to the built-in framers: `encodeInPlace(reply)` is `encode(reply)`, except that a reply that is
 * a message received (an echo, a relay) may go out as those very bytes, not a copy. The message loop calls
 * it only where the bytes are written before any handler code runs again, so another message's call cannot
 * change what was sent; a write the kernel takes only in part is finished from those bytes later (Node keeps
 * them, as for any socket.write()): a handler must not change a Buffer after returning it (docs/messages-and-framing.md).
 */
export interface FramerInPlace {
  encodeInPlace(reply: unknown): Buffer | string;
}

/** What a framer factory receives: the `@Framing` options, with `maxLength` settled to its default. */
export interface FramerOptions {
  /** Bytes of one message, its delimiter or length prefix not counted. */
  maxLength: number;
  [option: string]: unknown;
}

/** A user framer: a class (`new F(options)`) or a function (`f(options)`) that builds one per connection. */
export type FramerFactory<In = unknown, Out = unknown> =
  | (new (options: FramerOptions) => Framer<In, Out>)
  | ((options: FramerOptions) => Framer<In, Out>);

/** The built-in framers, by the name `@Framing` takes. */
export type FramerKind = 'lines' | 'length-prefixed' | 'netstring' | 'json-lines';

/** `@Framing(kind, options)`: the options every framer takes. */
export interface FramingOptions {
  /**
   * Bytes of one message, delimiter or length prefix not counted; a longer message is a
   * FrameTooLongError and ends its connection. Defaults: 64 KiB for 'lines' and 'json-lines', 1 MiB
   * for 'netstring', 'length-prefixed' and user framers (at most what the prefix can express).
   */
  maxLength?: number;
  /** How many `@OnMessage` calls of one connection may overlap; replies keep message order. Default 1. */
  concurrency?: number;
  /**
   * Bytes (default 16 MiB) that may wait unsent on a connection, not yet taken by the kernel, when `req.send()`
   * pushes another message: past it the client is not reading, and the connection ends with an
   * OutputBufferFullError (a client error, its unsent messages dropped), as Redis closes a client past its
   * client-output-buffer-limit. Replies are bounded without it (reading pauses above the high-water mark).
   */
  maxOutputBuffer?: number;
}

/** `@Framing('length-prefixed', options)`. */
export interface LengthPrefixedOptions extends FramingOptions {
  /** Size of the length prefix: 1, 2 or 4 bytes (default 4). */
  lengthBytes?: 1 | 2 | 4;
  /** Byte order of the prefix (default 'big', network order). */
  byteOrder?: 'big' | 'little';
}

/** 64 KiB: the default for line-based framers, as `rfile.readline()` (asyncio's StreamReader). */
export const LINE_MAX_LENGTH = 64 * 1024;
/** 16 MiB: the default `maxOutputBuffer` (bytes waiting unsent when `req.send()` pushes more). */
export const OUTPUT_BUFFER_MAX = 16 * 1024 * 1024;
/** 1 MiB: the default for 'length-prefixed', 'netstring' and user framers. */
export const FRAME_MAX_LENGTH = 1024 * 1024;

/**
 * On an error a framer's `decode()` throws: the messages of the same chunk that came before the bad
 * input. The runner handles them first, then ends the connection with the error.
 */
export const DECODED_BEFORE = Symbol.for('sockserve.framing.decodedBefore');

/** Throws `error` carrying `decoded`, the good messages before it. */
export function failAfter(error: Error, decoded: readonly unknown[]): never {
  if (decoded.length > 0) (error as Error & { [DECODED_BEFORE]?: readonly unknown[] })[DECODED_BEFORE] = decoded;
  throw error;
}
