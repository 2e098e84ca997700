import { FrameTooLongError, FramingError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import { Filling } from './filling';
import { failAfter, Framer } from './framer';

/** The largest length each prefix size can express. */
export const PREFIX_MAX: Readonly<Record<1 | 2 | 4, number>> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };

/**
 * `@Framing('length-prefixed', { lengthBytes, byteOrder })`: each message is an unsigned length of
 * 1, 2 or 4 bytes (big-endian by default) followed by that many bytes, given to the handler as a
 * Buffer. Replies (Buffer or string) get the same prefix. A prefix announcing more than `maxLength`
 * is a FrameTooLongError before any of the body is held, and a message's buffer grows with its bytes
 * (Filling), so memory per connection stays within `maxLength` and what the client sent. A message that
 * lies whole in one chunk is a view of it, not a copy. Netty's
 * `LengthFieldBasedFrameDecoder` / `LengthFieldPrepender`.
 */
export class LengthPrefixedFramer implements Framer<Buffer, Buffer | string> {
  private readonly header: Buffer;
  private headerFill = 0;
  /** The message being filled, its prefix written in front, once its prefix has arrived whole and its body has not. */
  private filling: Filling | undefined;
  /**
   * The last chunk whole messages were cut from (as views): encodeInPlace() may send a reply that is one of
   * them with its own prefix. Let go at the next chunk, at an in-place reply that is not such a view, and at
   * the reply that ends the chunk, so an idle connection does not keep it.
   */
  private viewed: Buffer | undefined;
  /**
   * A message put together from several chunks is filled into a buffer that begins with its prefix (the message
   * is a view of it past the prefix): echoed in place, it goes out as that buffer, not copied again. Let go as `viewed`.
   */
  private assembled: Buffer | undefined;

  constructor(
    private readonly maxLength: number,
    private readonly lengthBytes: 1 | 2 | 4 = 4,
    private readonly littleEndian = false,
  ) {
    this.header = Buffer.alloc(lengthBytes);
  }

  /** Bytes of the incomplete message held now, its prefix included (0 between messages). */
  get buffered(): number {
    return this.headerFill + (this.filling?.filled ?? 0);
  }

  /** The messages `chunk` completes, each a Buffer of its body. Throws FrameTooLongError when a prefix announces more than `maxLength` bytes. */
  decode(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const size = this.lengthBytes;
    let i = 0;
    this.viewed = undefined;
    this.assembled = undefined;
    try {
      while (i < chunk.length) {
        if (this.filling === undefined) {
          let length: number;
          if (this.headerFill === 0 && chunk.length - i >= size) {
            length = this.readLength(chunk, i);
            i += size;
          } else {
            const n = Math.min(size - this.headerFill, chunk.length - i);
            chunk.copy(this.header, this.headerFill, i, i + n);
            this.headerFill += n;
            i += n;
            if (this.headerFill < size) break;
            this.headerFill = 0;
            length = this.readLength(this.header, 0);
          }
          if (length > this.maxLength) {
            throw new FrameTooLongError(messages.frameTooLong('length-prefixed', this.maxLength, length, true));
          }
          if (chunk.length - i >= length) {
            this.viewed = chunk;
            out.push(chunk.subarray(i, i + length));
            i += length;
            continue;
          }
          this.writeLength(this.header, length);
          this.filling = new Filling(size + length, this.header);
        }
        i += this.filling.add(chunk, i);
        if (this.filling.full) {
          const whole = this.filling.whole;
          this.assembled = whole;
          out.push(whole.subarray(size));
          this.filling = undefined;
        }
      }
    } catch (err) {
      failAfter(err as Error, out);
    }
    return out;
  }

  /** The prefix (`lengthBytes`, `byteOrder`) and a copy of the reply's bytes (a string as UTF-8). Throws TypeError for another type, RangeError when the prefix cannot express its length. */
  encode(reply: Buffer | string): Buffer {
    return this.prefixed(this.checked(reply));
  }

  /** A fresh buffer: the prefix, then a copy of `bytes`. */
  private prefixed(bytes: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(this.lengthBytes + bytes.length);
    this.writeLength(out, bytes.length);
    out.set(bytes, this.lengthBytes);
    return out;
  }

  /**
   * @internal encode(), except that a reply that is a message received whole (an echo, a relay), still
   * preceded by its own prefix in the chunk, goes out as a view of the chunk, prefix included; a message
   * assembled from several chunks goes out as the buffer it was filled into. The same bytes, not copied
   * (FramerInPlace: the message loop calls this only where nothing can change them before the write).
   */
  encodeInPlace(reply: Buffer | string): Buffer {
    const bytes = this.checked(reply);
    // The message that began in earlier chunks comes first in its chunk, so its reply does too.
    const assembled = this.assembled;
    if (assembled !== undefined) {
      this.assembled = undefined;
      if (bytes.buffer === assembled.buffer && bytes.byteOffset === assembled.byteOffset + this.lengthBytes && bytes.length === assembled.length - this.lengthBytes) {
        return assembled;
      }
    }
    const viewed = this.viewed;
    if (viewed !== undefined) {
      const at = bytes.byteOffset - viewed.byteOffset - this.lengthBytes;
      const end = at + this.lengthBytes + bytes.length;
      if (bytes.buffer === viewed.buffer && at >= 0 && end <= viewed.length && this.readLength(viewed, at) === bytes.length) {
        if (end !== viewed.length) return viewed.subarray(at, end);
        this.viewed = undefined;
        return at === 0 ? viewed : viewed.subarray(at, end); // a chunk of one message (ping-pong): the chunk itself
      }
      this.viewed = undefined;
    }
    return this.prefixed(bytes);
  }

  /** The reply as bytes, its type and length checked. */
  private checked(reply: Buffer | string): Uint8Array {
    const bytes = typeof reply === 'string' ? Buffer.from(reply) : reply;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(messages.badReply('length-prefixed', reply));
    const most = PREFIX_MAX[this.lengthBytes];
    if (bytes.length > most) throw new RangeError(messages.replyTooLong('length-prefixed', bytes.length, most));
    return bytes;
  }

  /** A message cut short by the end of input is a FramingError: the client broke off mid-message. */
  end(): Buffer[] {
    const held = this.buffered;
    if (held > 0) throw new FramingError(messages.truncatedFrame('length-prefixed', held));
    return [];
  }

  private readLength(buf: Buffer, at: number): number {
    switch (this.lengthBytes) {
      case 1:
        return buf[at];
      case 2:
        return this.littleEndian ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
      case 4:
        return this.littleEndian ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
    }
  }

  /** Writes `length` as the prefix at the start of `out`. */
  private writeLength(out: Buffer, length: number): void {
    if (this.lengthBytes === 1) out[0] = length;
    else if (this.lengthBytes === 2) this.littleEndian ? out.writeUInt16LE(length, 0) : out.writeUInt16BE(length, 0);
    else this.littleEndian ? out.writeUInt32LE(length, 0) : out.writeUInt32BE(length, 0);
  }
}
