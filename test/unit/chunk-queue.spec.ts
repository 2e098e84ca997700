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
    const first = Buffer.from('hello ');
    const q = new ChunkQueue();
    q.push(first);
    q.push(Buffer.from('world\n'));
    const he = q.take(2);
    expect(he.toString()).toBe('he');
    expect(he.buffer).toBe(first.buffer); // no copy
    expect(q.take(7).toString()).toBe('llo wor');
    expect(q.length).toBe(3);
    expect(q.take(3).toString()).toBe('ld\n');
    expect(q.length).toBe(0);
    expect(q.take(1)).toHaveLength(0);
  });

  test('a whole chunk is handed out as it came', () => {
    const chunk = Buffer.from('line\n');
    const q = new ChunkQueue();
    q.push(chunk);
    expect(q.take(5)).toBe(chunk);
    expect(q.length).toBe(0);
  });
});
