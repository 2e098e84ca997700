import { ChunkQueue } from '../../src/transports/chunk-queue';

describe('ChunkQueue', () => {
  const queueOf = (...parts: string[]) => {
    const q = new ChunkQueue();
    for (const p of parts) q.push(Buffer.from(p));
    return q;
  };

  test('finds a byte across chunks, from any offset', () => {
    const q = queueOf('ab', '', 'c\nd', 'e\n');
    expect(q.length).toBe(7);
    expect(q.indexOf(0x0a)).toBe(3);
    expect(q.indexOf(0x0a, 4)).toBe(6);
    expect(q.indexOf(0x0a, 7)).toBe(-1);
    expect(q.indexOf('d'.charCodeAt(0), 2)).toBe(4);
  });

  test('takes within a chunk as a view of it, and across chunks as one copy', () => {
    const first = Buffer.alloc(4096, 'a');
    const second = Buffer.alloc(4096, 'b');
    const q = new ChunkQueue();
    q.push(first);
    q.push(second);
    const head = q.take(100);
    expect(head.buffer).toBe(first.buffer); // a view, no copy
    const across = q.take(4096);
    expect(across.toString()).toBe('a'.repeat(3996) + 'b'.repeat(100));
    expect(q.length).toBe(3996);
    expect(q.take(3996).every((x) => x === 'b'.charCodeAt(0))).toBe(true);
    expect(q.length).toBe(0);
    expect(q.take(1)).toHaveLength(0);
  });

  test('a whole big chunk is handed out as it came', () => {
    const chunk = Buffer.alloc(2048, 'l');
    const q = new ChunkQueue();
    q.push(chunk);
    expect(q.take(2048)).toBe(chunk);
    expect(q.length).toBe(0);
  });
});

describe('ChunkQueue with a byte per packet', () => {
  test('gathers small chunks, so a 64 KiB line sent a byte at a time stays a few chunks and reads back whole', () => {
    const q = new ChunkQueue();
    const line = Buffer.alloc(64 * 1024, 'x');
    line[line.length - 1] = 0x0a;
    for (let i = 0; i < line.length; i++) q.push(line.subarray(i, i + 1));
    expect((q as unknown as { chunks: Buffer[] }).chunks.length).toBeLessThanOrEqual(8);
    expect(q.indexOf(0x0a)).toBe(line.length - 1);
    expect(q.take(line.length).equals(line)).toBe(true);
  });

  test('bytes handed out are never overwritten by later small chunks', () => {
    const q = new ChunkQueue();
    q.push(Buffer.from('ab'));
    const ab = q.take(2);
    q.push(Buffer.from('cd'));
    q.push(Buffer.from('e'));
    expect(ab.toString()).toBe('ab');
    const c = q.take(1);
    q.push(Buffer.from('f'));
    expect(c.toString()).toBe('c');
    expect(q.length).toBe(3);
    expect(q.take(3).toString()).toBe('def');
    expect([ab.toString(), c.toString()]).toEqual(['ab', 'c']);
  });
});
