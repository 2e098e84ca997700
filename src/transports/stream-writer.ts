import type { Duplex } from 'node:stream';

/**
 * The request's `wfile`: writes to a stream socket. Each `write()` resolves once the data has been handed
 * to the kernel (Python's `sendall`), so awaiting it is backpressure; it never writes partially.
 */
export class StreamWriter {
  private ended = false;

  constructor(private readonly sink: Duplex) {}

  /** Writes all of `data`; resolves to its length in bytes once the kernel has it. */
  write(data: Buffer | Uint8Array | string): Promise<number> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.ended || this.sink.destroyed || this.sink.writableEnded) {
      return Promise.reject(Object.assign(new Error('wfile.write(): the connection is closed for writing.'), { code: 'EPIPE' }));
    }
    return new Promise((resolve, reject) => writeThrough(this.sink, bytes, (err) => (err ? reject(err) : resolve(bytes.length))));
  }

  /** Half-closes the connection (FIN) after everything written; the client reads EOF. Idempotent. */
  end(): Promise<void> {
    if (this.ended || this.sink.writableEnded || this.sink.destroyed) {
      this.ended = true;
      return Promise.resolve();
    }
    this.ended = true;
    return new Promise((resolve) => this.sink.end(() => resolve()));
  }

  get closed(): boolean {
    return this.ended || this.sink.destroyed;
  }
}

/**
 * Writes `bytes` to `sink` and calls `done` once: at once when the kernel took them all (usually, for a
 * small write, libuv hands it over on the spot and nothing stays queued, while Node would call back only
 * on a later tick), otherwise from the write callback, with its error if any.
 */
export function writeThrough(sink: Duplex, bytes: Uint8Array, done: (err?: Error | null) => void): void {
  let settled = false;
  sink.write(bytes, (err) => {
    if (settled) return;
    settled = true;
    done(err);
  });
  if (!settled && sink.writableLength === 0 && !sink.destroyed) {
    settled = true;
    done();
  }
}

/** A datagram request's `wfile`: collects writes; the server sends them as one datagram at finish. */
export class BufferWriter {
  private readonly chunks: Buffer[] = [];

  write(data: Buffer | Uint8Array | string): Promise<number> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    this.chunks.push(bytes);
    return Promise.resolve(bytes.length);
  }

  end(): Promise<void> {
    return Promise.resolve();
  }

  /** Everything written so far (Python's `BytesIO.getvalue()`). */
  getValue(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get length(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
}
