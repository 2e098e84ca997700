/**
 * The reader of a child's bookkeeping (src/concurrency/remote/bookkeeping.ts): records are RS, JSON, LF
 * (RFC 7464). Whole records only, in order, whatever the reads cut; a character split between two reads
 * stays whole; anything else written on the descriptor (a handler's own bytes) is skipped without losing
 * the records after it, without unbounded memory, and without crashing; end of file closes it. A file
 * stands in for the socket pair (readSync reads both alike).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BookkeepingReader, BookkeepingWriter } from '../../src/concurrency/remote/bookkeeping';
import type { FromWorker } from '../../src/concurrency/remote/protocol';
import { until } from '../fakes/fake-server';

const RS = '\x1e';
const record = (msg: object) => `${RS}${JSON.stringify(msg)}\n`;
const accepted = (id: number) => ({ t: 'accepted', id, client: { host: '127.0.0.1', port: 1000 - id, family: 'IPv4' } });
const done = (id: number) => ({ t: 'done', id, bytes: [3, 4] });

describe('BookkeepingReader', () => {
  let dir: string;
  let fds: number[] = [];
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-bookkeeping-'))));
  afterEach(() => {
    fds.splice(0).forEach((fd) => fs.closeSync(fd));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function readerOver(text: string | Buffer, deliver?: (msg: FromWorker, reader: BookkeepingReader) => void): { reader: BookkeepingReader; got: FromWorker[] } {
    const file = path.join(dir, `records-${fds.length}`);
    fs.writeFileSync(file, text);
    const fd = fs.openSync(file, 'r');
    fds.push(fd);
    const got: FromWorker[] = [];
    const reader: BookkeepingReader = new BookkeepingReader(fd, (msg) => {
      got.push(msg);
      deliver?.(msg, reader);
    });
    return { reader, got };
  }

  test('delivers every record in order across its 64 KiB reads, a multi-byte character on the boundary included', () => {
    const second = { t: 'accepted', id: -2, client: { path: 'café' } };
    const unpadded = record(accepted(-1)) + record(second).split('é')[0];
    // Lengthen the first record's host so that the "é" of the second starts at byte 65535: the first read ends inside it.
    const first = { ...accepted(-1), client: { ...accepted(-1).client, host: 'x'.repeat(65535 - Buffer.byteLength(unpadded) + '127.0.0.1'.length) } };
    const text = record(first) + record(second);
    expect(Buffer.from(text).indexOf(Buffer.from('é'))).toBe(65535);
    const { reader, got } = readerOver(text);
    expect(reader.drain()).toBe(2);
    expect(got).toEqual([first, second]);
  });

  test('keeps a record cut short until its end comes, and stops at end of file', () => {
    const { reader, got } = readerOver(record(accepted(-1)) + record(done(-1)) + `${RS}{"t":"acc`);
    expect(reader.drain()).toBe(2);
    expect(got).toEqual([accepted(-1), done(-1)]);
    expect(reader.drain()).toBe(0); // closed at end of file: no further read of the descriptor
  });

  test("a handler's own bytes on the descriptor are skipped, and the records after them still arrive", () => {
    const junk = [
      'null\n', `${RS}null\n`, `${RS}42\n`, 'xx', // not an object; bytes with no newline before a record
      `${RS}{"t":"accepted","id":-7`, // a record cut short by the next one
      record({ t: 'accepted', id: 5, client: {} }), // not a child's own connection (ids are negative)
      record({ t: 'accepted', id: -8 }), // no client
      record({ t: 'done', id: -9, bytes: 'many' }), record({ t: 'done', id: -9, dropped: 'lost' }), record({ t: 'ready' }),
    ];
    const text = junk[0] + record(accepted(-1)) + junk.slice(1, 4).join('') + record(done(-1)) + junk.slice(4).join('') + record(accepted(-2));
    const { reader, got } = readerOver(text);
    expect(reader.drain()).toBe(3);
    expect(got).toEqual([accepted(-1), done(-1), accepted(-2)]);
  });

  test('megabytes without a record separator, or a record that never ends, keep no more than one record in memory, and what follows is read', () => {
    const text = 'a'.repeat(4 * 1024 * 1024) + `${RS}{"t":"done","id":-1,"x":"${'b'.repeat(1024 * 1024)}` + record(accepted(-3));
    const { reader, got } = readerOver(text);
    expect(reader.drain()).toBe(1);
    expect(got).toEqual([accepted(-3)]);
    expect((reader as unknown as { pending: string }).pending).toBe('');
  });

  test('a delivery that drains again (a subscriber calling stats()) delivers nothing ahead of the records in hand', () => {
    const { reader, got } = readerOver(record(accepted(-1)) + record(done(-1)) + record(accepted(-2)), (_msg, again) => expect(again.drain()).toBe(0));
    expect(reader.drain()).toBe(3);
    expect(got).toEqual([accepted(-1), done(-1), accepted(-2)]);
  });

  test("a delivery that drains another child's reader (stats() catches up every child) delivers nothing into the subscriber still running", () => {
    const other = readerOver(record(accepted(-5)));
    const { reader, got } = readerOver(record(accepted(-1)) + record(done(-1)), () => expect(other.reader.drain()).toBe(0));
    expect(reader.drain()).toBe(2);
    expect(got).toEqual([accepted(-1), done(-1)]);
    expect(other.reader.drain()).toBe(1); // afterwards, in its turn
    expect(other.got).toEqual([accepted(-5)]);
  });

  test('reads nothing once closed (its descriptor may be reused)', () => {
    const { reader, got } = readerOver(record(accepted(-1)));
    reader.close();
    expect(reader.drain()).toBe(0);
    expect(got).toEqual([]);
  });
});

describe('BookkeepingWriter.carries', () => {
  test('the news of connections the child accepted, but nothing long, nothing JSON would lose, nothing a transfer would move', () => {
    expect(BookkeepingWriter.carries({ t: 'accepted', id: -1, client: { host: '127.0.0.1', port: 1, family: 'IPv4' } })).toBe(true);
    expect(BookkeepingWriter.carries({ t: 'done', id: -1, bytes: [1, 2] })).toBe(true);
    expect(BookkeepingWriter.carries({ t: 'done', id: 3 })).toBe(false); // handed over by the server: it waits for this one
    expect(BookkeepingWriter.carries({ t: 'done', id: -1, end: { durationMs: 1 } })).toBe(false); // an event's data
    expect(BookkeepingWriter.carries({ t: 'done', id: -1, error: { name: 'Error', message: 'x' } })).toBe(false); // a stack may be long
    expect(BookkeepingWriter.carries({ t: 'ready' })).toBe(false);
  });
});

describe('BookkeepingWriter', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-bookkeeping-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a datagram's `accepted` reaches the kernel at once (its handler may block the child until it is killed); a `done` waits for the turn's end; the reader pairs the two of one datagram into `served`", async () => {
    // A FIFO stands in for the socket pair: both ends non-blocking, as the child's and the server's are.
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const writer = new BookkeepingWriter(wfd);
    const got: FromWorker[] = [];
    const reader = new BookkeepingReader(rfd, (msg) => got.push(msg));
    try {
      const first = { ...accepted(-1), datagram: true } as FromWorker & { t: 'accepted' };
      const second = { ...accepted(-2), datagram: true } as FromWorker & { t: 'accepted' };
      writer.write(first);
      writer.write(done(-1) as FromWorker); // held: the turn has not ended
      writer.write(second); // goes at once, with the held `done` of the first
      reader.drain();
      expect(got).toEqual([{ t: 'served', id: -1, client: first.client, bytes: [3, 4] }, second]);
      writer.write(done(-2) as FromWorker);
      reader.drain();
      expect(got).toHaveLength(2); // held until the turn ends
      await new Promise((r) => setImmediate(r));
      await until(() => (reader.drain(), got.length === 3));
      expect(got[2]).toEqual(done(-2)); // its `accepted` came in an earlier drain: delivered as it came
    } finally {
      (writer as unknown as { socket: { destroy(): void } }).socket.destroy();
      fs.closeSync(rfd);
    }
  });
});
