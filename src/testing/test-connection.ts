import { StreamReader } from '../transports/stream-reader';
import type { Duplex } from 'node:stream';

/**
 * The test's end of an in-memory connection to a `TestServer` (Twisted's `StringTransport`, Netty's
 * `EmbeddedChannel`): write bytes in whatever chunks the test picks, read the replies.
 *
 * - `write(data)`: one chunk (string or Buffer), delivered at once; returns at once.
 * - `readline()`: the next line as a string, `'\n'` kept; the rest at EOF; `''` at EOF.
 * - `read(n?)`: a Buffer of `n` bytes (fewer only at EOF), or everything until EOF.
 * - `readAll()`: everything until EOF, as a Buffer.
 * - `end()`: half-closes (the server reads EOF); resolves when the server side has finished the
 *   request (`@Finish` has run) and closed the connection.
 * - `destroy()`: a reset (the server's reads fail with ECONNRESET); resolves as `end()` does.
 * - `closed`: resolves when the server side has finished and closed the connection.
 */
export class TestConnection {
  private readonly reader: StreamReader;

  /**
   * Built by `TestServer.connect()`; tests do not call it.
   * @param end_ The test's side of the in-memory pipe whose other side the server reads.
   */
  constructor(
    private readonly end_: Duplex,
    /** Resolves once the server has run the request to its end and closed its side. */
    readonly closed: Promise<void>,
  ) {
    this.reader = new StreamReader(end_, { lineLimit: Number.MAX_SAFE_INTEGER });
  }

  /**
   * Sends `data` to the server as one chunk (strings as UTF-8); returns at once. The bytes are copied, as a
   * socket's kernel copies them: the test may reuse or change its buffer afterwards, and what the server
   * received (or echoed back) stays as sent. Throws an Error (`code` ERR_STREAM_WRITE_AFTER_END, as a socket's
   * write after its end fails) once the test called `end()` or `destroy()`: it was ignored, and a test that wrote
   * after ending passed though its bytes never arrived (new-user run). Ignored once the server closed its side.
   */
  write(data: string | Buffer | Uint8Array): void {
    if (this.closedByTest !== undefined) {
      throw Object.assign(new Error(`TestConnection.write() after ${this.closedByTest}: the connection is closed for writing, and these bytes would never reach the server. Fix: write before end().`), { code: 'ERR_STREAM_WRITE_AFTER_END' });
    }
    if (!this.end_.writableEnded && !this.end_.destroyed) this.end_.write(typeof data === 'string' ? data : Buffer.from(data));
  }

  /** The test ended or reset its side (end(), destroy()): write() throws. */
  private closedByTest: 'end()' | 'destroy()' | undefined;

  /** The next line the server wrote, as a string with its `'\n'`; at EOF what is left (no `'\n'`), then `''`. */
  async readline(): Promise<string> {
    return (await this.reader.readline()).toString();
  }

  /** `n` bytes the server wrote (fewer only at EOF); without `n`, everything until the server closes. */
  read(n?: number): Promise<Buffer> {
    return this.reader.read(n);
  }

  /** Everything the server writes until it closes the connection. */
  readAll(): Promise<Buffer> {
    return this.reader.readAll();
  }

  /** Half-closes: the server reads EOF. Resolves as `closed` does, once `@Finish` has run and the server closed. */
  end(): Promise<void> {
    this.closedByTest ??= 'end()';
    if (!this.end_.writableEnded && !this.end_.destroyed) this.end_.end();
    return this.closed;
  }

  /** A reset: the server's pending reads fail with ECONNRESET. Resolves as `closed` does. */
  destroy(): Promise<void> {
    this.closedByTest ??= 'destroy()';
    this.end_.destroy();
    return this.closed;
  }
}
