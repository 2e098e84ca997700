/**
 * The reader of a child's bookkeeping lines (src/concurrency/remote/bookkeeping.ts): whole lines only,
 * in order, whatever the reads cut; a character split between two reads stays whole; a line that is not
 * JSON is skipped; end of file closes it. A file stands in for the socket pair (readSync reads both alike).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BookkeepingReader, BookkeepingWriter } from '../../src/concurrency/remote/bookkeeping';
import type { FromWorker } from '../../src/concurrency/remote/protocol';

describe('BookkeepingReader', () => {
  let dir: string;
  let fd: number | undefined;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-bookkeeping-'))));
  afterEach(() => {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function readerOver(text: string | Buffer): { reader: BookkeepingReader; got: FromWorker[] } {
    const file = path.join(dir, 'lines');
    fs.writeFileSync(file, text);
    fd = fs.openSync(file, 'r');
    const got: FromWorker[] = [];
    return { reader: new BookkeepingReader(fd, (msg) => got.push(msg)), got };
  }

  test('delivers every line in order across its 64 KiB reads, a multi-byte character on the boundary included', () => {
    // Pad the first line so that the "é" of the second straddles byte 65536, where the first read ends.
    const second = { t: 'done', id: -2, error: { name: 'Error', message: 'café' } };
    const head = JSON.stringify({ t: 'accepted', id: -1, client: { host: 'x'.repeat(65536 - 60), port: 1, family: 'IPv4' } });
    const prefix = `${head}\n${JSON.stringify(second).split('é')[0]}`;
    const pad = 65535 - Buffer.byteLength(prefix); // "é" (2 bytes) starts at byte 65535
    const first = { t: 'accepted', id: -1, client: { host: 'x'.repeat(65536 - 60 + pad), port: 1, family: 'IPv4' } };
    const text = `${JSON.stringify(first)}\n${JSON.stringify(second)}\n`;
    expect(Buffer.from(text).indexOf(Buffer.from('é'))).toBe(65535);
    const { reader, got } = readerOver(text);
    expect(reader.drain()).toBe(2);
    expect(got).toEqual([first, second]);
  });

  test('keeps a line cut short until its end comes, skips a line that is not JSON, and stops at end of file', () => {
    const { reader, got } = readerOver(`{"t":"accepted","id":-1}\nnot json\n{"t":"done","id":-1}\n{"t":"acc`);
    expect(reader.drain()).toBe(2);
    expect(got).toEqual([{ t: 'accepted', id: -1 }, { t: 'done', id: -1 }]);
    expect(reader.drain()).toBe(0); // closed at end of file: no further read of the descriptor
  });

  test('reads nothing once closed (its descriptor may be reused)', () => {
    const { reader, got } = readerOver('{"t":"accepted","id":-1}\n');
    reader.close();
    expect(reader.drain()).toBe(0);
    expect(got).toEqual([]);
  });
});

describe('BookkeepingWriter.carries', () => {
  test('the news of connections the child accepted, but nothing JSON would lose or a transfer would move', () => {
    expect(BookkeepingWriter.carries({ t: 'accepted', id: -1, client: { host: '127.0.0.1', port: 1, family: 'IPv4' } })).toBe(true);
    expect(BookkeepingWriter.carries({ t: 'done', id: -1, bytes: [1, 2] })).toBe(true);
    expect(BookkeepingWriter.carries({ t: 'done', id: 3 })).toBe(false); // handed over by the server: it waits for this one
    expect(BookkeepingWriter.carries({ t: 'done', id: -1, end: { durationMs: 1 } })).toBe(false); // an event's data
    expect(BookkeepingWriter.carries({ t: 'ready' })).toBe(false);
  });
});
