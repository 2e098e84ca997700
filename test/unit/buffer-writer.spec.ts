import { BufferWriter } from '../../src/transports/stream-writer';
import { DatagramRequest } from '../../src/bootstrap/request-objects';
import type { Server } from '../../src';

describe('BufferWriter (a datagram reply, Python\'s BytesIO)', () => {
  test("has Python's writelines() (no separators) and flush() (nothing to push)", async () => {
    const w = new BufferWriter();
    expect(await w.writelines(['a\n', Buffer.from('b'), new Uint8Array([0x63])])).toBe(4);
    await expect(w.flush()).resolves.toBeUndefined();
    expect(w.getValue().toString()).toBe('a\nbc');
  });

  test('keeps a copy of each write: the caller may reuse its buffer, with one write as with several', async () => {
    const one = new BufferWriter();
    const reused = Buffer.from('abc');
    expect(await one.write(reused)).toBe(3);
    reused.fill(0x78);
    expect(one.getValue().toString()).toBe('abc');
    expect(one.length).toBe(3);

    const many = new BufferWriter();
    await many.write(reused);
    await many.write('é!');
    await many.write(new Uint8Array([0x7a]));
    reused.fill(0x79);
    expect(many.getValue().toString()).toBe('xxxé!z');
    expect(many.length).toBe(Buffer.byteLength('xxxé!z'));
  });

  test('nothing written: an empty value and length 0', () => {
    const w = new BufferWriter();
    expect(w.length).toBe(0);
    expect(w.getValue().length).toBe(0);
  });
});

describe('DatagramRequest', () => {
  test('rfile reads the datagram, made on first use, the same reader every time', async () => {
    const req = new DatagramRequest(Buffer.from('one\ntwo'), false, undefined, new BufferWriter(), { host: '127.0.0.1', port: 1, family: 'IPv4' }, {} as Server);
    expect(req.rfile).toBe(req.rfile);
    expect((await req.rfile.readline()).toString()).toBe('one\n');
    expect((await req.rfile.readAll()).toString()).toBe('two');
    expect(req.data.toString()).toBe('one\ntwo');
  });
});
