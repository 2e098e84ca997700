/**
 * Message builders for the framers of `@Framing` (FramingError, FrameTooLongError) and for replies a
 * framer cannot encode. Each names the framer, what was wrong and one fix.
 */
import { isThenable } from '../lifecycle/resolved';

/** At most this many characters of a client's bad input are quoted in a message. */
const QUOTE = 60;

function quote(text: string): string {
  return printable(JSON.stringify(text.length > QUOTE ? `${text.slice(0, QUOTE)}…` : text));
}

/**
 * `text` with the control characters JSON.stringify leaves raw (DEL, C1) and any others escaped as `\uXXXX`:
 * client bytes reach log lines through these messages, and raw ESC sequences would drive the operator's
 * terminal.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export const framingMessages = {
  /**
   * `announced`: the size comes from the message's own length field (a prefix, a netstring's digits), not from bytes
   * that arrived. `lineLimit`: the bound is the transport's limits.maxLineLength, which a line framer given no maxLength takes.
   */
  frameTooLong: (framer: string, maxLength: number, seen: number | undefined, announced = false, lineLimit = false) =>
    `@Framing('${framer}'): a message of ${seen === undefined ? 'more than ' + maxLength : seen} bytes ` +
    `${announced ? 'was announced by its length' : 'arrived'}, longer than ${lineLimit ? 'limits.maxLineLength' : 'maxLength'} ${maxLength}; the connection is closed. ` +
    (lineLimit
      ? `Fix: raise limits.maxLineLength (the server's line limit, which @Framing('${framer}') takes when it gives no maxLength), or give @Framing('${framer}', { maxLength }) a limit of its own, if such messages are legitimate.`
      : `Fix: raise maxLength in @Framing('${framer}', { maxLength }) if such messages are legitimate.`),
  notJson: (line: string, reason: string) =>
    `@Framing('json-lines'): a line is not JSON (${printable(reason)}): ${quote(line)}; the connection is closed. ` +
    `Fix: make the client send one JSON value per line, or use @Framing('lines') and parse it yourself.`,
  badNetstring: (what: string) =>
    `@Framing('netstring'): ${what}; the connection is closed. ` +
    `Fix: make the client send <length>:<bytes>, (e.g. 5:hello,), or pick the framer that matches its protocol.`,
  messageTimeout: (framer: string, seconds: number) =>
    `@Framing('${framer}'): a message took more than ${seconds} s from its first byte (limits.lineTimeout); the ` +
    `connection is closed. Fix: raise limits.lineTimeout, or make the client send the whole of it sooner.`,
  idleTimeout: (framer: string, seconds: number) =>
    `@Framing('${framer}'): no data arrived for ${seconds} s (requestTimeout); the connection is closed. ` +
    `Fix: raise requestTimeout, or make the client send sooner.`,
  /** `unsent`: the bytes that never left, as unsentText() words them ("4096 bytes unsent", "at most 4096 bytes unsent"). */
  writeTimeout: (framer: string, seconds: number, unsent: string) =>
    `@Framing('${framer}'): the client took no byte of its replies for ${seconds} s (requestTimeout; ${unsent}): ` +
    `it is not reading, and the connection was closed. Fix: raise requestTimeout, or make the client read its replies.`,
  truncatedFrame: (framer: string, held: number) =>
    `@Framing('${framer}'): the connection ended inside a message (${held} bytes of it had arrived). ` +
    `Fix: make the client send whole messages before it closes.`,
  outputBufferFull: (framer: string, unsent: number, most: number) =>
    `@Framing('${framer}'): the client does not read: ${unsent} bytes of messages wait unsent, more than maxOutputBuffer ` +
    `${most}, when req.send() pushed another; the connection is closed and its unsent messages dropped. Fix: push ` +
    `only while req.send() returns true (else await req.drained()), or raise maxOutputBuffer in @Framing('${framer}', { maxOutputBuffer }).`,
  replyTooLong: (framer: string, bytes: number, most: number) =>
    `@Framing('${framer}'): a reply of ${bytes} bytes does not fit the length prefix (at most ${most}). ` +
    `Fix: send shorter replies, or use a larger lengthBytes.`,
  /** A framer's message about a datagram, which is its own input: nothing is closed, the rest of it is dropped. */
  inDatagram: (text: string) =>
    text.replace('; the connection is closed.', '; the rest of the datagram is dropped.').replace('the connection ended inside a message', 'the datagram ended inside a message'),
  /** A user framer's decode() or end() returned something other than an array of messages. */
  badDecode: (framer: string, method: string, value: unknown) =>
    `@Framing(${framer}): ${method} returned ${value === null ? 'null' : typeof value}, not an array of messages (a bug of the framer, not the client's). ` +
    `Fix: return an array from ${method} (empty when no message is complete).`,
  /** A user framer's `buffered` is not a count of bytes (NaN, negative, not a number). */
  badBuffered: (framer: string, value: unknown) =>
    `@Framing(${framer}): buffered is ${typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value}, not a number of bytes (a bug of the framer, not the client's). ` +
    `Fix: make buffered the bytes of the incomplete message the framer holds (0 when none), or leave it out.`,
  /** A user framer's encode() returned something other than bytes. */
  /** A user framer's `end` is there but is no method. */
  badEndMember: (framer: string, value: unknown) =>
    `@Framing(${framer}): end is ${value === null ? 'null' : typeof value}, not a method (a bug of the framer, not the client's). ` +
    `Fix: make end() a method that returns an array of the messages still held (empty when none), or leave it out.`,
  /** A user framer factory built no framer (null, a promise, an object without decode() and encode()). */
  badFactoryResult: (framer: string, value: unknown) =>
    `@Framing(${framer}): the factory returned ${value === null ? 'null' : isThenable(value) ? 'a Promise (an async factory?)' : typeof value === 'object' ? 'an object without decode() and encode() methods' : typeof value}, not a Framer (a bug of the factory, not the client's). ` +
    `Fix: return, synchronously, an object with decode(chunk) and encode(message) methods (a new one for each connection).`,
  badEncode: (framer: string, value: unknown) =>
    `@Framing(${framer}): encode() returned ${value === null ? 'null' : typeof value}, not a Buffer, Uint8Array or string (a bug of the framer). ` +
    `Fix: return the reply's bytes from encode().`,
  badRawReply: (reply: unknown) =>
    `@OnMessage without @Framing: cannot send a reply of type ${reply === null ? 'null' : typeof reply} as a datagram. ` +
    `Fix: return a string or a Buffer (or undefined for no reply), or give the class a @Framing that encodes it.`,
  /** json-lines: JSON.stringify gave nothing (a function, a symbol, undefined inside) or threw (`cause`: a BigInt, a cycle). */
  badJsonReply: (reply: unknown, cause?: string) =>
    `@Framing('json-lines'): cannot encode a reply of type ${reply === null ? 'null' : typeof reply} as JSON` + (cause ? ` (${cause})` : '') + '. ' +
    `Fix: return a value JSON.stringify can write (an object, array, string, number, boolean or null; a BigInt as a string, ` +
    `no cycles), or undefined for no reply.`,
  badReply: (framer: string, reply: unknown) =>
    `@Framing('${framer}'): cannot encode a reply of type ${reply === null ? 'null' : typeof reply}. ` +
    (framer === 'lines'
      ? `Fix: return a string, a Buffer, a number, a boolean or a bigint (sent as its text), or undefined for no reply; for objects, @Framing('json-lines').`
      : `Fix: return a string or a Buffer (or undefined for no reply).`),
};
