import { StreamReader } from '../transports/stream-reader';
import type { MemoryEnd } from './memory-pipe';

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

  constructor(
    private readonly end_: MemoryEnd,
    /** Resolves once the server has run the request to its end and closed its side. */
    readonly closed: Promise<void>,
  ) {
    this.reader = new StreamReader(end_, { lineLimit: Number.MAX_SAFE_INTEGER });
  }

  write(data: string | Buffer | Uint8Array): void {
    if (!this.end_.writableEnded && !this.end_.destroyed) this.end_.write(data);
  }

  async readline(): Promise<string> {
    return (await this.reader.readline()).toString();
  }

  read(n?: number): Promise<Buffer> {
    return this.reader.read(n);
  }

  readAll(): Promise<Buffer> {
    return this.reader.readAll();
  }

  end(): Promise<void> {
    if (!this.end_.writableEnded && !this.end_.destroyed) this.end_.end();
    return this.closed;
  }

  destroy(): Promise<void> {
    this.end_.destroy();
    return this.closed;
  }
}
