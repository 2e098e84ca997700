import { FrameTooLongError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import { failAfter, Framer } from './framer';

const NL = 0x0a;
const CR = 0x0d;
const NEWLINE = Buffer.from('\n');

/**
 * `buf.toString('utf8', start, end)` without toString()'s argument handling: Buffer's own `utf8Slice`
 * (what toString calls; present on Node 20 to 26), or toString where a runtime lacks it.
 */
const utf8: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === 'function'
    ? (buf, start, end) => (buf as unknown as { utf8Slice(start: number, end: number): string }).utf8Slice(start, end)
    : (buf, start, end) => buf.toString('utf8', start, end);

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

  /** Whether message() is this class's (a line is its string): then many lines decode at once (splitText). */
  private readonly decodesText: boolean;

  constructor(
    private readonly maxLength: number,
    protected readonly name = 'lines',
    /** maxLength is the transport's limits.maxLineLength (withLineLimit()): the error names that setting. */
    private readonly lineLimit = false,
  ) {
    this.decodesText = this.message === LinesFramer.prototype.message;
  }

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
      return this.split(chunk, out) as string[];
    } catch (err) {
      failAfter(err as Error, out); // the lines before the long one are still messages
    }
  }

  /**
   * Appends the lines `chunk` completes to `out` (as strings, or as whatever `message()` makes of them) and
   * returns `out`; or, when `out` is empty and the chunk is whole lines, returns a new array of them instead.
   * On a throw, `out` holds the lines before the bad one.
   */
  protected split(chunk: Buffer, out: unknown[]): unknown[] {
    // Whole lines only, the common case of a client that waits for its replies: one string for all of
    // them, no search of the bytes (each indexOf on a Buffer is a call into C++). A chunk longer than a
    // line may be is searched first: one line that long fails below before any of it is decoded.
    if (this.held === 0 && this.decodesText && chunk[chunk.length - 1] === NL && (chunk.length <= this.maxLength + 2 || chunk.indexOf(NL) < chunk.length - 1)) {
      return this.splitText(chunk, 0, chunk.length - 1, out, true);
    }
    let start = 0;
    let nl = chunk.indexOf(NL);
    if (this.held > 0) {
      if (nl < 0) {
        this.hold(chunk);
        return out;
      }
      const line = Buffer.concat([...this.parts, chunk.subarray(0, nl)], this.held + nl);
      this.parts = [];
      this.held = 0;
      out.push(this.message(line, 0, line.length));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    if (nl >= 0 && this.decodesText) {
      const last = chunk.lastIndexOf(NL);
      if (last > nl) {
        this.splitText(chunk, start, last, out, false);
        start = last + 1;
        nl = -1;
      }
    }
    while (nl >= 0) {
      out.push(this.message(chunk, start, nl));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    if (start < chunk.length) this.hold(start === 0 ? chunk : chunk.subarray(start));
    return out;
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

  /**
   * Whole lines, `chunk[start..last)` (`last` is the last `\n`): decoded as one string and split there,
   * which costs far less than a string per line (pipelined clients send many lines per chunk).
   * Same result as message() per line: `\n` never occurs inside a UTF-8 sequence, so an invalid sequence
   * decodes alike either way. A line's length in bytes is at least its length in UTF-16 units and at most
   * three times it, so most lines need no byte count for the maxLength check. The count is of the line's
   * bytes on the wire, as message() counts them: a decoded string may be longer (an invalid byte becomes
   * U+FFFD, three bytes), so a line that looks too long is measured in the chunk itself.
   * Lines that fit in `maxLength` all together, without a `\r`, need nothing done per line: with `whole` (they
   * are all the chunk gives, nothing can fail after them) the array the split made is returned as it is,
   * else they are appended to `out`, which is returned.
   */
  private splitText(chunk: Buffer, start: number, last: number, out: unknown[], whole: boolean): unknown[] {
    const text = utf8(chunk, start, last);
    const max = this.maxLength;
    if (text.indexOf('\n') < 0) {
      // One line (a client that waits for each reply): no array.
      const line = text.charCodeAt(text.length - 1) === CR ? text.slice(0, -1) : text;
      if (line.length * 3 > max && Buffer.byteLength(line) > max) {
        const end = chunk[last - 1] === CR && last > start ? last - 1 : last;
        if (end - start > max) throw new FrameTooLongError(messages.frameTooLong(this.name, max, end - start, false, this.lineLimit));
      }
      out.push(line);
      return out;
    }
    const lines = text.split('\n');
    if (last - start <= max && text.indexOf('\r') < 0) {
      // Not a line too long nor a '\r' to drop: the split is the messages.
      if (whole && out.length === 0) return lines;
      for (let i = 0; i < lines.length; i++) out.push(lines[i]);
      return out;
    }
    // Where line `index` starts in the chunk: moved forward only for lines that need their bytes counted.
    let at = start;
    let index = 0;
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i];
      if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
      if (line.length * 3 > max && Buffer.byteLength(line) > max) {
        for (; index < i; index++) at = chunk.indexOf(NL, at) + 1;
        let end = chunk.indexOf(NL, at);
        if (end > at && chunk[end - 1] === CR) end--;
        if (end - at > max) throw new FrameTooLongError(messages.frameTooLong(this.name, max, end - at, false, this.lineLimit));
      }
      out.push(line);
    }
    return out;
  }

  /** One line, `start` to `end` (the `\n` excluded): its `\r` dropped, its length checked. */
  protected message(buf: Buffer, start: number, end: number): unknown {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLength) throw new FrameTooLongError(messages.frameTooLong(this.name, this.maxLength, end - start, false, this.lineLimit));
    return utf8(buf, start, end);
  }

  private hold(piece: Buffer): void {
    this.held += piece.length;
    // One byte more than maxLength may be the line's '\r'; past that the line is too long, whatever follows.
    if (this.held > this.maxLength + 1) {
      this.parts = [];
      this.held = 0;
      throw new FrameTooLongError(messages.frameTooLong(this.name, this.maxLength, undefined, false, this.lineLimit));
    }
    this.parts.push(piece);
  }
}
