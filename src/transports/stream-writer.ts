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
    return new Promise((resolve, reject) => {
      const sink = this.sink;
      let settled = false;
      sink.write(bytes, (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(bytes.length);
      });
      // Usually libuv hands small writes to the kernel at once; then nothing is queued and the promise
      // need not wait for the write callback, which Node only calls on a later tick.
      if (!settled && sink.writableLength === 0 && !sink.destroyed) {
        settled = true;
        resolve(bytes.length);
      }
    });
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
