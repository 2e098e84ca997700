/**
 * The bytes a reader has received and not handed out yet, kept as the chunks they came in: appending
 * never copies a big chunk (one growing buffer would copy everything held on every chunk, quadratic in
 * a stream of long lines), and taking copies only what spans chunks. Small chunks (a client sending a
 * byte per packet) are copied into a shared spare buffer instead, so the number of chunks, and the
 * cost of a scan over them, stays bounded by the bytes held, not by the packets that brought them.
 */
export class ChunkQueue {
  private chunks: Buffer[] = [];
  private held = 0;
  /** Where small chunks are gathered; the last chunk is a view of it while `spareEnd` is its end. */
  private spare: Buffer | undefined;
  private spareEnd = 0;

  get length(): number {
    return this.held;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.held += chunk.length;
    const at = this.chunks.length - 1;
    const last = this.chunks[at];
    // The usual case, one request per packet, never copies: only a small chunk after a small chunk does.
    if (chunk.length > SMALL || !last) {
      this.chunks.push(chunk);
      return;
    }
    const spare = this.spare;
    if (spare && last.buffer === spare.buffer && last.byteOffset + last.length === spare.byteOffset + this.spareEnd && this.spareEnd + chunk.length <= spare.length) {
      chunk.copy(spare, this.spareEnd);
      this.spareEnd += chunk.length;
      this.chunks[at] = Buffer.from(spare.buffer, last.byteOffset, last.length + chunk.length);
      return;
    }
    if (last.length > SMALL) {
      this.chunks.push(chunk);
      return;
    }
    // A small chunk after a small chunk: start a spare with both.
    this.spare = Buffer.allocUnsafeSlow(SPARE);
    last.copy(this.spare, 0);
    chunk.copy(this.spare, last.length);
    this.spareEnd = last.length + chunk.length;
    this.chunks[at] = this.spare.subarray(0, this.spareEnd);
  }

  /** Where `byte` first occurs at or after `from`, counted from the front; -1 if nowhere. */
  indexOf(byte: number, from = 0): number {
    let base = 0;
    for (const chunk of this.chunks) {
      if (from < base + chunk.length) {
        const at = chunk.indexOf(byte, Math.max(0, from - base));
        if (at >= 0) return base + at;
      }
      base += chunk.length;
    }
    return -1;
  }

  /** The byte at `index` from the front (index < length). */
  at(index: number): number {
    let base = 0;
    for (const chunk of this.chunks) {
      if (index < base + chunk.length) return chunk[index - base];
      base += chunk.length;
    }
    return -1;
  }

  /** Removes and returns the first `n` bytes (n ≤ length): a view when they lie in one chunk, else one copy. */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (n <= 0 || !first) return EMPTY;
    this.held -= n;
    if (n < first.length) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (n === first.length) {
      this.chunks.shift();
      if (this.chunks.length === 0) this.spare = undefined; // an idle connection holds no spare
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    if (this.chunks.length === 0) this.spare = undefined;
    return out;
  }
}

/** Chunks up to this size are gathered into the spare buffer. */
const SMALL = 1024;
const SPARE = 16 * 1024;
const EMPTY = Buffer.alloc(0);
