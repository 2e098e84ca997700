import { FrameTooLongError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import { failAfter, Framer } from './framer';

const NL = 0x0a;
const CR = 0x0d;
const NEWLINE = Buffer.from('\n');

/**
 * `@Framing('lines')`: messages are lines split on `\n`, a trailing `\r` dropped, decoded as UTF-8
 * strings (a character split across chunks decodes whole, since `\n` never occurs inside one). Replies
 * get `\n`. A line longer than `maxLength` bytes is a FrameTooLongError as soon as that many bytes are
 * held, so a stream without a newline holds at most `maxLength + 1` bytes. At the end of input, a last
 * line without its newline is still a message (as Python's `readline()`). Netty's `LineBasedFrameDecoder`.
 */
export class LinesFramer implements Framer<string, unknown> {
  /** Pieces of the line not complete yet, and their length. */
  private parts: Buffer[] = [];
  private held = 0;

  constructor(
    private readonly maxLength: number,
    protected readonly name = 'lines',
  ) {}

  /** Bytes of the incomplete line held now (0 between lines). */
  get buffered(): number {
    return this.held;
  }

  /**
   * The lines `chunk` completes, as UTF-8 strings without `\n` or a trailing `\r`. Throws FrameTooLongError
   * for a line longer than `maxLength` bytes (the lines before it in the chunk are still handled).
   */
  decode(chunk: Buffer): string[] {
    const out: string[] = [];
    try {
      this.split(chunk, out);
    } catch (err) {
      failAfter(err as Error, out); // the lines before the long one are still messages
    }
    return out;
  }

  /** Appends the lines `chunk` completes to `out` (as strings, or as whatever `message()` makes of them). */
  protected split(chunk: Buffer, out: unknown[]): void {
    let start = 0;
    let nl = chunk.indexOf(NL);
    if (this.held > 0) {
      if (nl < 0) return this.hold(chunk);
      const line = Buffer.concat([...this.parts, chunk.subarray(0, nl)], this.held + nl);
      this.parts = [];
      this.held = 0;
      out.push(this.message(line, 0, line.length));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    while (nl >= 0) {
      out.push(this.message(chunk, start, nl));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    if (start < chunk.length) this.hold(start === 0 ? chunk : chunk.subarray(start));
  }

  /** A string, Buffer, number, boolean or bigint reply, plus `\n`. Throws TypeError for anything else (an object: use 'json-lines'). */
  encode(reply: unknown): Buffer | string {
    if (typeof reply === 'string') return reply + '\n';
    if (Buffer.isBuffer(reply) || reply instanceof Uint8Array) return Buffer.concat([reply, NEWLINE]);
    if (typeof reply === 'number' || typeof reply === 'boolean' || typeof reply === 'bigint') return `${reply}\n`;
    throw new TypeError(messages.badReply(this.name, reply));
  }

  /** At the end of input: a last line without its `\n`, if any, as Python's `readline()` gives it. */
  end(): string[] {
    if (this.held === 0) return [];
    const line = Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    const out: string[] = [];
    out.push(this.message(line, 0, line.length) as string);
    return out;
  }

  /** One line, `start` to `end` (the `\n` excluded): its `\r` dropped, its length checked. */
  protected message(buf: Buffer, start: number, end: number): unknown {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLength) throw new FrameTooLongError(messages.frameTooLong(this.name, this.maxLength, end - start));
    return buf.toString('utf8', start, end);
  }

  private hold(piece: Buffer): void {
    this.held += piece.length;
    // One byte more than maxLength may be the line's '\r'; past that the line is too long, whatever follows.
    if (this.held > this.maxLength + 1) {
      this.parts = [];
      this.held = 0;
      throw new FrameTooLongError(messages.frameTooLong(this.name, this.maxLength, undefined));
    }
    this.parts.push(piece);
  }
}
