import { FramingError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import { failAfter } from './framer';
import { LinesFramer } from './lines.framer';

/**
 * `@Framing('json-lines')` (JSON Lines, ndjson): each line is parsed as one JSON value; replies are
 * `JSON.stringify`'d and get `\n`. Empty lines are skipped. A line that is not JSON is a FramingError
 * that ends the connection; the lines before it in the same chunk are still handled.
 */
export class JsonLinesFramer extends LinesFramer {
  constructor(maxLength: number, lineLimit = false) {
    super(maxLength, 'json-lines', lineLimit);
  }

  /**
   * The JSON values of the lines `chunk` completes (empty lines skipped). Throws FramingError for a line that
   * is not JSON, FrameTooLongError for one longer than `maxLength` bytes.
   */
  override decode(chunk: Buffer): any[] {
    const lines: string[] = [];
    let whole: string[];
    try {
      whole = this.split(chunk, lines) as string[];
    } catch (err) {
      failAfter(err as Error, parseAll(lines));
    }
    return parseAll(whole);
  }

  /** At the end of input: the value of a last line without its `\n`, if any. */
  override end(): any[] {
    return parseAll(super.end());
  }

  /** `JSON.stringify(reply)` plus `\n`. Throws TypeError for a reply JSON cannot express (undefined, a function). */
  /** `JSON.stringify(reply)` and a newline (a Buffer goes as Buffer's JSON); throws a TypeError naming the framer for what JSON cannot write. */
  override encode(reply: unknown): string {
    let text: string | undefined;
    try {
      text = JSON.stringify(reply);
    } catch (err) {
      // A BigInt, a cycle: JSON.stringify's own words alone named no framer (hostile run).
      throw new TypeError(messages.badJsonReply(reply, (err as Error).message), { cause: err });
    }
    if (text === undefined) throw new TypeError(messages.badJsonReply(reply));
    return text + '\n';
  }
}

function parseAll(lines: string[]): unknown[] {
  const values: unknown[] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    try {
      values.push(JSON.parse(line));
    } catch (err) {
      failAfter(new FramingError(messages.notJson(line, (err as Error).message)), values);
    }
  }
  return values;
}
