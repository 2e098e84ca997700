import { AsyncResource } from 'node:async_hooks';
import type { Duplex } from 'node:stream';
import { requestFace } from '../bootstrap/request-objects';
import { isTracing } from '../observability/channels';
import { messageReceived } from '../observability/events';
import type { Server } from '../bootstrap/server';
import type { FramingDefinition } from '../metadata/definition';
import type { ClientAddress } from '../transports/address';
import type { ProxyInfo, TlsInfo } from '../transports/edge-options';
import type { BufferWriter } from '../transports/stream-writer';
import { DatagramMessages } from './datagram-messages';
import { MessageConnection, MessageTimeouts } from './message-connection';

/** What carries a MessageRequest's messages: a stream connection, or one datagram. */
export interface MessageChannel {
  /** Frames `message` and writes it now (on a datagram: adds it to the one reply); whether more may be sent now. */
  send(message: unknown): boolean;
  /** Resolves true once more may be sent (at once if it may now), false once the channel has ended. */
  drained(): Promise<boolean>;
  /** Stops taking messages; the channel ends once the replies already owed are written. */
  close(): void;
  /** Calls `call` once per message until the channel ends; resolves once every call has returned. */
  serve(call: (message: unknown) => unknown): Promise<void>;
}

/**
 * What an `@OnMessage()` handler's hooks receive ([messages and framing](../../docs/messages-and-framing.md)), on stream and datagram transports alike.
 * With `@OnMessage` a request is the whole connection (or one datagram): `@Setup` and `@Finish` see
 * this object once, `@OnMessage` once per message.
 *
 * - `send(message)`: writes a message now, framed like a reply (unsolicited: a push, a greeting). On a
 *   datagram it is added to the one reply datagram. Returns false when the client is behind (wait for
 *   `drained()`); pushing on past `@Framing`'s `maxOutputBuffer` ends the connection.
 * - `close()`: stop taking messages; the connection ends once the replies of the messages already
 *   taken have been written.
 */
export class MessageRequest<Out = unknown> {
  /** TLS details where the connection is TLS ([production](../../docs/production.md)); undefined otherwise. */
  readonly tls?: TlsInfo;
  /** The PROXY protocol header where one was received ([production](../../docs/production.md)); undefined otherwise. */
  readonly proxy?: ProxyInfo;
  /**
   * On a datagram transport: the datagram was longer than `maxPacketSize` and was cut there, as Python's
   * `recvfrom` cuts it (its last message is what was left of it); false otherwise, and on streams.
   */
  readonly truncated: boolean;
  private face: Server | undefined;

  /** Built by sockserve for every connection (or datagram) of an `@OnMessage` handler; handlers do not construct it. */
  constructor(
    /** The client: `{ host, port, family }` over IP (the original client behind a PROXY header), `{ path }` over Unix. */
    readonly clientAddress: ClientAddress,
    private readonly origin: Server,
    private readonly channel: MessageChannel,
    private readonly reply?: BufferWriter,
    /** The classic request this object stands for, so that `server.shutdown()` knows who calls it. */
    private readonly raw?: object,
    edge?: { tls?: TlsInfo; proxy?: ProxyInfo },
    truncated = false,
  ) {
    this.tls = edge?.tls;
    this.proxy = edge?.proxy;
    this.truncated = truncated;
  }

  /** The running server; its `shutdown()`, called from this request's handler, does not wait for this request. */
  get server(): Server {
    return (this.face ??= requestFace(this.origin, this.raw));
  }

  /**
   * Writes `message` now, framed as a reply (a push, a greeting), without waiting for a message; on a datagram
   * it joins the one reply datagram. `undefined` sends nothing; so does a connection reset or already closed.
   * From `@Finish` (the messages are over, the connection not closed yet) it goes out before the close: a
   * farewell. A message the framer cannot encode (its `encode` threw) is never thrown at the caller: it ends the
   * connection through `@HandleError` and `send()` returns false; from `@Finish` it is dropped, false.
   *
   * Returns, as Node's `socket.write()` does, whether more may be sent now: false once the bytes the client has
   * not taken reach the socket's high-water mark (16 KiB by default), or the connection has ended; then
   * `await req.drained()` before pushing more. A push while more than `@Framing`'s `maxOutputBuffer` bytes
   * (default 16 MiB) of pushes wait unsent (replies ahead of them are not counted) is not sent: the connection ends with an OutputBufferFullError (a client
   * error, through `@HandleError`), as Redis closes a client past its output buffer limit. On a datagram: true
   * while its handler runs (the pushes join its one reply), false once the reply has gone (nothing is sent).
   */
  send(message: Out): boolean {
    return this.channel.send(message);
  }

  /**
   * Resolves once the client has taken enough for `send()` to return true again (at once when it would now):
   * to true, or to false when the connection has ended (a push would be dropped). Node's `'drain'`, Netty's
   * `channelWritabilityChanged`. Never rejects.
   */
  drained(): Promise<boolean> {
    return this.channel.drained();
  }

  /** Stops taking messages: the connection ends once the replies to the messages already taken are written. */
  close(): void {
    this.channel.close();
  }

  /** @internal Whether close() was called on a stream connection (from @Verify, before the loop runs elsewhere). */
  get closeRequested(): boolean {
    return (this.channel as { closing?: boolean }).closing === true;
  }

  /**
   * @internal The message loop: runs in place of @Handle. Messages are handed over from the socket's data
   * callback, outside the request's async context; with a tracer subscribed, each call runs in the context
   * serve() was called in (the request's span, what `tracingChannel('sockserve:request').start.bindStore()`
   * set), as the code of a `@Handle` method does. Nobody subscribed: no wrapper, nothing per message.
   */
  serve(call: (message: unknown) => unknown): Promise<void> {
    return this.channel.serve(isTracing() ? AsyncResource.bind(call) : call);
  }

  /** @internal On a datagram transport: the reply, sent to the client once the lifecycle has finished. */
  get datagramReply(): BufferWriter | undefined {
    return this.reply;
  }
}

/**
 * Called once per message, where the message is handed to `@OnMessage`, with the request's server face
 * and client: counts `stats().messages` and publishes `sockserve:message` (only when subscribed). In a
 * worker the face's counters are the worker's (WorkerReporter), which its reports carry to the server.
 */
function messageObserver(server: Server, client: ClientAddress): () => void {
  const counters = (server as { counters?: { messages: number } }).counters;
  return () => {
    if (counters) counters.messages++;
    messageReceived(server, client);
  };
}

/** The MessageRequest of a stream connection; nothing is read until the lifecycle serves it. */
export function streamMessageRequest(
  framing: FramingDefinition,
  conn: Duplex,
  client: ClientAddress,
  server: Server,
  raw?: object,
  edge?: { tls?: TlsInfo; proxy?: ProxyInfo },
  /** The server's requestTimeout and limits.lineTimeout (seconds), as its rfile reads honour them. */
  timeouts?: MessageTimeouts,
): MessageRequest {
  return new MessageRequest(client, server, new MessageConnection(conn, framing, messageObserver(server, client), timeouts), undefined, raw, edge);
}

/** The MessageRequest of one datagram: its replies are gathered in `reply`. */
export function datagramMessageRequest(
  framing: FramingDefinition | undefined,
  data: Buffer,
  client: ClientAddress,
  server: Server,
  reply: BufferWriter,
  raw?: object,
  /** The datagram was cut at maxPacketSize. */
  truncated = false,
): MessageRequest {
  return new MessageRequest(client, server, new DatagramMessages(data, framing, reply, messageObserver(server, client)), reply, raw, undefined, truncated);
}
