import { Duplex } from 'node:stream';

/**
 * One end of an in-memory connection: what one end writes, the other reads, synchronously and in the
 * chunks written (no timers, so jest's fake timers do not hold it up). Flow control as a socket's:
 * a write completes once the other end's reader has room (its readable high-water mark), so a side
 * that does not read holds the writer back. `end()` is a half-close (the other end reads EOF),
 * `destroy()` before `end()` a reset (the other end fails with ECONNRESET).
 */
export class MemoryEnd extends Duplex {
  peer!: MemoryEnd;
  /**
   * Bytes this end has been sent and has sent, as a socket's counters: the server tells a health check (a
   * reset with no byte either way: no @HandleError on the request's instance) by them. Without them every
   * in-memory connection looked like one, and a client's reset after an exchange reached @HandleError on a
   * fresh handler instance in a second request scope, not on the request's own (hostile run).
   */
  bytesRead = 0;
  bytesWritten = 0;
  /** The callback of a write waiting for the peer's reader to take what it holds. */
  private blocked: ((error?: Error | null) => void) | undefined;

  constructor() {
    super({ allowHalfOpen: true });
  }

  /**
   * A socket's options, accepted and without effect in memory (no packets, no timers): a handler that sets
   * them on `req.socket` (`setKeepAlive(true, 60_000)`) threw a TypeError in its test, where a socket takes them.
   */
  setKeepAlive(_enable?: boolean, _initialDelayMs?: number): this {
    return this;
  }

  /** As setKeepAlive(): without effect in memory, where nothing is held back. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** A socket's ref()/unref(): nothing in memory keeps the process alive, so without effect. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** A socket's reset: destroy() before the end is one already (the other side fails with ECONNRESET). */
  resetAndDestroy(): this {
    return this.destroy();
  }

  override _read(): void {
    const resume = this.peer.blocked;
    this.peer.blocked = undefined;
    resume?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer.destroyed || peer.readableEnded) return callback(); // gone: a real socket's bytes would be lost too
    this.bytesWritten += chunk.length;
    peer.bytesRead += chunk.length;
    // A copy, as a socket's kernel takes one: neither side can change what the other has read.
    if (peer.push(Buffer.from(chunk))) callback();
    else this.blocked = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    // A write waiting for the peer fails, as a socket's does when the connection goes (a reset: EPIPE);
    // left uncalled, a handler blocked in `await wfile.write()` never heard of the reset.
    const blocked = this.blocked;
    this.blocked = undefined;
    blocked?.(error ?? Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }));
    // After a half-close the peer has its EOF already; a close before it is a reset for the peer.
    if (!peer.destroyed && !this.writableFinished) {
      peer.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }));
    }
    callback(error);
  }
}

/** Two connected ends: `[server, client]`. */
export function memoryPipe(): [MemoryEnd, MemoryEnd] {
  const server = new MemoryEnd();
  const client = new MemoryEnd();
  server.peer = client;
  client.peer = server;
  return [server, client];
}
