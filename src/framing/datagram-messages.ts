import { FramingError } from '../errors/errors';
import { framingMessages as messages } from '../errors/framing.messages';
import type { FramingDefinition } from '../metadata/definition';
import type { BufferWriter } from '../transports/stream-writer';
import { DECODED_BEFORE, Framer } from './framer';
import { tooLongMessage } from './framers';
import type { MessageChannel } from './message-request';
import { isThenable } from '../lifecycle/resolved';

/**
 * One datagram as messages ([messages and framing](../../docs/messages-and-framing.md)): with `@Framing`, a fresh framer decodes the datagram whole
 * (its `end()` included, so a last line needs no newline) and encodes the replies; without, the
 * datagram is one message, a raw Buffer, and replies are sent as they are (Buffer or string). All the
 * replies of one datagram go back to the sender as one datagram. Messages are handled one at a time.
 * Bad input or a handler that throws ends the datagram's messages; the replies to the messages before
 * it are still sent (the lifecycle sends what was written, as Python's DatagramRequestHandler.finish()).
 */
export class DatagramMessages implements MessageChannel {
  private closed = false;
  private framer: Framer | undefined;
  /** A push (send() outside a message's call: a timer, @Setup) that could not be encoded: the datagram's error. */
  private pushFailure: { error: unknown } | undefined;

  constructor(
    private readonly data: Buffer,
    private readonly framing: FramingDefinition | undefined,
    private readonly reply: BufferWriter,
    /** Called once per message handed to the handler (observability's seam). */
    private readonly observe?: () => void,
  ) {}

  send(message: unknown): boolean {
    // Once the reply datagram has gone (a push from a timer after the handler returned), nothing more is sent:
    // false, as a stream's send() says once its connection has ended (it said true, and the push was lost).
    if (this.reply.isSealed || this.pushFailure) return false;
    if (message === undefined) return true;
    let bytes: Buffer | string | Uint8Array;
    try {
      bytes = this.encode(message);
    } catch (err) {
      // Thrown at the caller, a push from a timer was an uncaught exception that stopped the process (or the
      // worker): as a stream's push, it ends the datagram's messages and reaches @HandleError instead.
      this.pushFailure = { error: err };
      this.closed = true;
      return false;
    }
    void this.reply.write(bytes);
    return true; // one reply datagram gathers it: nothing waits on the client
  }

  drained(): Promise<boolean> {
    return Promise.resolve(!this.reply.isSealed);
  }

  close(): void {
    this.closed = true;
  }

  async serve(call: (message: unknown) => unknown): Promise<void> {
    let incoming: unknown[] = [this.data];
    let bad: { error: unknown } | undefined;
    if (this.framing) {
      const framer = (this.framer ??= this.framing.create());
      incoming = [];
      try {
        // Not kept until it is an array: a string's characters were handed on as messages, and answered, before
        // the TypeError, and null failed as "incoming is not iterable" (hostile run; a stream hands on none).
        const decoded: unknown = framer.decode(this.data);
        if (!Array.isArray(decoded)) throw new TypeError(messages.badDecode(this.framing.name, 'decode()', decoded));
        incoming = decoded;
        // An end() that returns no array is the framer's bug here too, as on a stream (undefined passed silently).
        const last: unknown = framer.end ? framer.end() : [];
        if (!Array.isArray(last)) throw new TypeError(messages.badDecode(this.framing.name, 'end()', last));
        if (last.length > 0) incoming = [...incoming, ...last];
        const over = this.framing.checkMessages ? tooLongMessage(incoming, this.framing) : undefined;
        if (over) {
          incoming = incoming.slice(0, over.at);
          throw over.error;
        }
      } catch (err) {
        // Bad input ends the datagram's messages, after those before it: their replies are still sent (as on a
        // stream). A message cut short by the datagram's end comes from end(), after the whole ones decode() gave.
        bad = { error: inDatagramWords(err) };
        const before = (err as { [DECODED_BEFORE]?: unknown[] } | null)?.[DECODED_BEFORE] ?? [];
        incoming = before.length > 0 ? [...incoming, ...before] : incoming;
      }
    }
    for (const message of incoming) {
      if (this.closed) break;
      this.observe?.();
      let result = call(message);
      if (isThenable(result)) result = await result;
      if (result !== undefined && !this.reply.isSealed) void this.reply.write(this.encode(result)); // a reply it cannot encode: the handler's error
    }
    if (this.pushFailure) throw this.pushFailure.error;
    if (bad) throw bad.error;
  }

  private encode(message: unknown): Buffer | string | Uint8Array {
    // A reply sent from @Setup comes before serve(): the framer is made on first use.
    if (this.framing) {
      const bytes: unknown = (this.framer ??= this.framing.create()).encode(message);
      // As on a stream: the framer's bug, said so (null reached dgram, whose own TypeError named no framer: hostile run).
      if (typeof bytes !== 'string' && !(bytes instanceof Uint8Array)) throw new TypeError(messages.badEncode(this.framing.name, bytes));
      return bytes;
    }
    if (typeof message === 'string' || message instanceof Uint8Array) return message;
    throw new TypeError(messages.badRawReply(message));
  }
}

/** A framer's error says "connection"; of a datagram it is reworded (its message and stack's first line). */
function inDatagramWords(err: unknown): unknown {
  if (!(err instanceof FramingError)) return err;
  const said = err.message;
  err.message = messages.inDatagram(said);
  if (err.stack) err.stack = err.stack.replace(said, err.message);
  return err;
}
