import { FrameTooLongError, FramingError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import { Filling } from './filling';
import { failAfter, Framer } from './framer';

const COLON = 0x3a;
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * `@Framing('netstring')`: D. J. Bernstein's netstrings, `<decimal length>:<bytes>,` (`5:hello,`),
 * messages as Buffers; replies (Buffer or string) are framed the same way. A length with a leading
 * zero, a non-digit before `:`, or a missing `,` is a FramingError; a length above `maxLength` is a
 * FrameTooLongError as soon as its digits say so, before any of the body is held; a body's buffer
 * grows with its bytes (Filling), not with the length its digits announce.
 */
export class NetstringFramer implements Framer<Buffer, Buffer | string> {
  /** The length read so far, and how many of its digits have arrived (0: a new netstring). */
  private length = 0;
  private digits = 0;
  /** The body being filled once ':' has arrived; `comma` once it is full and only ',' is missing. */
  private body: Filling | undefined;
  private comma = false;

  constructor(private readonly maxLength: number) {}

  /** Bytes of the incomplete netstring held now (digits, `:`, body so far; 0 between netstrings). */
  get buffered(): number {
    return this.digits + (this.body ? 1 + this.body.filled : 0) + (this.comma ? 1 : 0);
  }

  /** The netstrings `chunk` completes, each a Buffer of its body. Throws FramingError for malformed input, FrameTooLongError for a length above `maxLength`. */
  decode(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    try {
      while (i < chunk.length) {
        if (this.comma) {
          if (chunk[i] !== COMMA) throw this.malformed(`a netstring's body is not followed by ','`);
          i++;
          out.push(this.body!.whole);
          this.reset();
          continue;
        }
        if (this.body === undefined) {
          const c = chunk[i++];
          if (c === COLON) {
            if (this.digits === 0) throw this.malformed(`a netstring has no length before ':'`);
            i = this.startBody(chunk, i, out);
            continue;
          }
          if (c < ZERO || c > NINE) throw this.malformed(`a netstring's length contains ${JSON.stringify(String.fromCharCode(c))}`);
          if (this.digits === 1 && this.length === 0) throw this.malformed(`a netstring's length has a leading zero`);
          this.length = this.length * 10 + (c - ZERO);
          this.digits++;
          if (this.length > this.maxLength) {
            throw new FrameTooLongError(messages.frameTooLong('netstring', this.maxLength, undefined, true));
          }
          continue;
        }
        i += this.body.add(chunk, i);
        if (this.body.full) this.comma = true;
      }
    } catch (err) {
      this.reset();
      failAfter(err as Error, out);
    }
    return out;
  }

  /** `<length>:<bytes>,` for the reply's bytes (a string as UTF-8). Throws TypeError for another type. */
  encode(reply: Buffer | string): Buffer {
    const bytes = typeof reply === 'string' ? Buffer.from(reply) : reply;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(messages.badReply('netstring', reply));
    const head = `${bytes.length}:`;
    const out = Buffer.allocUnsafe(head.length + bytes.length + 1);
    out.write(head, 0, 'latin1');
    out.set(bytes, head.length);
    out[out.length - 1] = COMMA;
    return out;
  }

  /** A netstring cut short by the end of input is a FramingError. */
  end(): Buffer[] {
    const held = this.buffered;
    if (held > 0) throw new FramingError(messages.truncatedFrame('netstring', held));
    return [];
  }

  /**
   * After ':' at `i - 1`: the whole netstring when it lies in this chunk (a view), or a body to fill.
   * Returns where decoding goes on.
   */
  private startBody(chunk: Buffer, i: number, out: Buffer[]): number {
    const length = this.length;
    if (chunk.length - i > length) {
      if (chunk[i + length] !== COMMA) throw this.malformed(`a netstring's body is not followed by ','`);
      out.push(chunk.subarray(i, i + length));
      this.reset();
      return i + length + 1;
    }
    this.body = new Filling(length);
    this.comma = length === 0;
    return i;
  }

  private reset(): void {
    this.length = 0;
    this.digits = 0;
    this.body = undefined;
    this.comma = false;
  }

  private malformed(what: string): FramingError {
    return new FramingError(messages.badNetstring(what));
  }
}
