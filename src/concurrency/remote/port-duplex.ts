import { Duplex } from 'node:stream';
import type { FromWorker } from './protocol';
import { deserializeError, SerializedError } from './protocol';

/**
 * The worker's side of a connection the main thread owns: a Duplex whose reads are the bytes the main
 * thread forwards and whose writes complete only once the main thread has handed them to the kernel.
 * Flow control both ways: when the worker's read buffer is full it asks the main thread to pause the
 * socket, and resumes it when the handler reads again.
 */
export class PortDuplex extends Duplex {
  private seq = 0;
  private readonly pending = new Map<number, (err?: Error | null) => void>();
  private remotePaused = false;

  constructor(
    private readonly id: number,
    private readonly post: (msg: FromWorker, transfer?: ArrayBuffer[]) => void,
  ) {
    super({ allowHalfOpen: true });
  }

  /** Bytes from the client. */
  feed(chunk: Uint8Array): void {
    const more = this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (!more && !this.remotePaused) {
      this.remotePaused = true;
      this.post({ t: 'pause', id: this.id });
    }
  }

  /** The client closed its side. */
  eof(): void {
    this.push(null);
  }

  /** The main thread's answer to a write or to the end. */
  written(seq: number, error?: SerializedError): void {
    const done = this.pending.get(seq);
    this.pending.delete(seq);
    done?.(error ? deserializeError(error) : null);
  }

  override _read(): void {
    if (this.remotePaused) {
      this.remotePaused = false;
      this.post({ t: 'resume', id: this.id });
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const seq = ++this.seq;
    this.pending.set(seq, callback);
    const bytes = new Uint8Array(chunk); // a copy: the caller may keep using its buffer
    this.post({ t: 'write', id: this.id, seq, chunk: bytes }, [bytes.buffer as ArrayBuffer]);
  }

  override _final(callback: (err?: Error | null) => void): void {
    const seq = ++this.seq;
    this.pending.set(seq, callback);
    this.post({ t: 'end', id: this.id, seq });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const gone = new Error('the connection closed');
    for (const done of this.pending.values()) done(gone);
    this.pending.clear();
    callback(err);
  }
}
