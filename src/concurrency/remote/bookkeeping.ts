import * as fs from 'node:fs';
import * as net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { FromWorker } from './protocol';

/**
 * The bookkeeping of the connections a child accepts itself, on a channel of its own that wakes nobody.
 *
 * A child that accepts from the shared listening socket tells the server's process of each connection
 * (`accepted`) and of its end (`done`): the server counts it, publishes its events, and reports it with a
 * WorkerCrashedError if the child dies first (API.md §3). Over the IPC channel each of those messages
 * woke the server's process: a context switch on a busy core, a read and a deserialization, which cost
 * more than the connection itself (`npm run bench` connection rate, @Forking, 0.30x raw `net`).
 *
 * So the child writes them to a socket pair (its stdio descriptor BOOKKEEPING_FD) that the server's
 * process does not poll, those of one turn of its event loop in one write, as a JSON text sequence (RFC
 * 7464: each record is RS, JSON, LF, so a reader finds the next record after anything else written there).
 * The server reads what is there, without waiting, before each IPC message from that child (so the order of the two channels is kept: a record was in the
 * kernel before any later message), every 20 ms while records come (child-slot.ts; less often when none do),
 * when asked (stats()), and once the child has exited: the kernel keeps what a dead child wrote, so a
 * child killed outright still leaves the news of the connections it held, except records it had queued
 * in its own memory because the pair was full (the server's main thread blocked for a long burst), and
 * the ends (`done`) of the turn it was killed in (a child that exits, even with process.exit(), writes those
 * first); an `accepted` goes out at once, before any handler code of its connection runs.
 * A child that reads datagrams from the server's UDP socket tells of each datagram the same way; the
 * server counts a datagram whose two records it reads together without adopting it (`served`).
 *
 * The descriptor is sockserve's, as the IPC channel is: what a handler writes there itself is skipped
 * unless it has the shape of a child's news of its own connection (`accepted`, `opened` or `done`, negative `id`);
 * a handler that forges one is believed, as one that forged a message with `process.send()` would be.
 */
export const BOOKKEEPING_FD = 4;

const EMPTY = Buffer.alloc(0);
/** RFC 7464's record separator, which starts every record. */
const RS = '\x1e';
/** A record longer than this (characters) is not one of ours: it is dropped, with what follows up to the next RS. */
const MAX_RECORD = 64 * 1024;

/** The child's side: news of its own connections, written where the server reads them unwoken. */
export class BookkeepingWriter {
  private readonly socket: net.Socket;
  /** Messages waiting for the records queued before them (after()). */
  private waiting = 0;

  constructor(fd: number) {
    // Node's socket makes the descriptor non-blocking, and queues what the kernel has no room for.
    this.socket = new net.Socket({ fd, readable: false, writable: true });
    this.socket.on('error', () => undefined); // the server gone: the IPC channel's disconnect ends this child
    // A child that exits (process.exit() in a handler, an uncaught error) before the next flush: the records
    // of its last turn still reach the server (a write to the pair now, not on a later tick).
    process.on('exit', () => {
      const held = this.take();
      try {
        if (held !== '') fs.writeSync(fd, held);
      } catch {
        // the pair is full or closed: those records are lost with the child, as records it queued are
      }
    });
  }

  /** Whether `msg` is bookkeeping this channel carries: a connection's news with no bytes to transfer and nothing JSON would lose. */
  static carries(msg: FromWorker): boolean {
    // A `done` with an error (a stack, causes: it may be long) or event data goes by IPC, after the records before it.
    // `opened` (its preamble passed) goes between the two, so it is carried the same way.
    return msg.t === 'accepted' || msg.t === 'replied' || (msg.t === 'opened' && msg.id < 0) || (msg.t === 'done' && msg.id < 0 && msg.reply === undefined && msg.end === undefined && msg.error === undefined);
  }

  write(msg: FromWorker): void {
    // Through the socket even when nothing is queued: measured, fs.writeSync cost more (its Buffer, its checks).
    // The records of one turn of the event loop go out together, in one write, from setImmediate: a datagram
    // read from a shared UDP socket makes two records, and a write each cost as much as serving it. An
    // `accepted` goes out at once, with what is held: its handler runs next, in this same turn, and a handler
    // that blocks this event loop until the child is killed must not take the news with it. For a connection
    // too: held for the turn's flush, the news of a connection accepted in the turn a handler blocked in was
    // lost with the child, and its client reset, reported nowhere, not counted in `accepted` (hostile run).
    const record = RS + JSON.stringify(msg) + '\n';
    if (msg.t === 'accepted') {
      const held = this.held + record;
      this.held = '';
      this.socket.write(held);
      return;
    }
    if (this.held === '') setImmediate(this.flush);
    this.held += record;
  }

  /** Records written since the last flush, not yet handed to the socket. */
  private held = '';

  /** Hands the records held to the socket (the kernel takes them at once while the pair has room). */
  readonly flush = (): void => {
    const held = this.take();
    if (held !== '') this.socket.write(held);
  };

  /** The records held, now handed over. */
  private take(): string {
    const held = this.held;
    this.held = '';
    return held;
  }

  /**
   * Calls `send` (an IPC message) now, or, while records wait in this process for room in the socket pair
   * (the server's process reads it late), once they have gone, so it does not overtake them.
   */
  after(send: () => void): void {
    this.flush();
    if (this.socket.writableLength === 0 && this.waiting === 0) return send();
    // An empty write's callback comes once every record queued before it has gone (callbacks keep order).
    this.waiting++;
    this.socket.write(EMPTY, () => {
      this.waiting--;
      send();
    });
  }
}

/**
 * The server's side: the records of one child, read without waiting (its end of the pair is non-blocking,
 * and nothing polls it). `deliver` gets each message, in order.
 */
export class BookkeepingReader {
  /** Text read and not yet delivered: from an RS, at most MAX_RECORD characters. */
  private pending = '';
  private readonly decoder = new StringDecoder('utf8'); // a character split between two reads stays whole
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);
  private closed = false;
  /**
   * A delivery under way, from any child's reader: a delivery that reads again (a `connection.open`
   * subscriber calling stats(), which catches up every child) delivers nothing, neither ahead of the
   * records in hand nor into a subscriber that is still running. The drain under way reads on.
   */
  private static draining = false;

  constructor(private readonly fd: number, private readonly deliver: (msg: FromWorker) => void) {}

  /** Reads no more: the descriptor is about to be closed (its number may be reused). */
  close(): void {
    this.closed = true;
  }

  /**
   * The `accepted` of datagrams read in this drain whose `done` has not come yet, by id: one whose `done`
   * comes in the same drain is delivered as one `served` message (the server counts it without adopting
   * it); the others are delivered at the end of the drain, as they came.
   */
  private readonly datagrams = new Map<number, FromWorker & { t: 'accepted' }>();

  /** Reads and delivers every whole record there is now; returns how many. */
  drain(): number {
    if (BookkeepingReader.draining) return 0;
    BookkeepingReader.draining = true;
    let count = 0;
    try {
      while (!this.closed) {
        let n: number;
        try {
          n = fs.readSync(this.fd, this.buffer, 0, this.buffer.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.closed = true;
          break;
        }
        if (n === 0) {
          this.closed = true; // the child's end is closed: it has exited
          break;
        }
        count += this.take(this.decoder.write(this.buffer.subarray(0, n)));
      }
      for (const accepted of this.datagrams.values()) this.deliver(accepted);
    } finally {
      this.datagrams.clear();
      BookkeepingReader.draining = false;
    }
    return count;
  }

  /** One record's message, a datagram's `accepted` and `done` of the same drain paired into one `served`. */
  private deliverPaired(msg: FromWorker): void {
    if (msg.t === 'accepted' && msg.datagram) return void this.datagrams.set(msg.id, msg);
    if (msg.t === 'replied') {
      // Its `accepted` first, unpaired: the server knows the datagram before its reply's news (its `done` then comes alone).
      const accepted = this.datagrams.get(msg.id);
      if (accepted) {
        this.datagrams.delete(msg.id);
        this.deliver(accepted);
      }
    }
    const accepted = msg.t === 'done' ? this.datagrams.get(msg.id) : undefined;
    if (accepted && msg.t === 'done' && msg.bytes && msg.error === undefined) {
      this.datagrams.delete(msg.id);
      return this.deliver({ t: 'served', id: msg.id, client: accepted.client, bytes: msg.bytes, ...(msg.dropped ? { dropped: msg.dropped } : {}), ...(msg.messages !== undefined ? { messages: msg.messages } : {}) });
    }
    this.deliver(msg);
  }

  /** Delivers the whole records in `pending` + `text`, keeps an unfinished one; skips whatever is not a record of ours. */
  private take(text: string): number {
    let count = 0;
    let rest = this.pending + text;
    for (;;) {
      const start = rest.indexOf(RS);
      if (start < 0) {
        rest = ''; // nothing here starts a record
        break;
      }
      const end = rest.indexOf('\n', start + 1);
      const next = rest.indexOf(RS, start + 1);
      if (end < 0 || (next >= 0 && next < end)) {
        if (next >= 0) {
          rest = rest.slice(next); // a record cut short by another: skip it
          continue;
        }
        rest = rest.length - start > MAX_RECORD ? '' : rest.slice(start); // unfinished: wait for its end
        break;
      }
      const msg = bookkeepingRecord(rest.slice(start + 1, end));
      rest = rest.slice(end + 1);
      if (msg) {
        count++;
        this.deliverPaired(msg);
      }
    }
    this.pending = rest;
    return count;
  }
}

/** The message in one record, when it has the shape of a child's news of its own connection; else undefined. */
function bookkeepingRecord(json: string): FromWorker | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null) return undefined;
  const { t, id } = msg as { t?: unknown; id?: unknown };
  if (!Number.isInteger(id) || (id as number) >= 0) return undefined;
  if (t === 'accepted' || t === 'opened') {
    const client = (msg as { client?: unknown }).client;
    return typeof client === 'object' && client !== null ? (msg as FromWorker) : undefined;
  }
  if (t === 'replied') return Number.isSafeInteger((msg as { bytes?: unknown }).bytes) ? (msg as FromWorker) : undefined;
  if (t !== 'done') return undefined;
  const { bytes, dropped } = msg as { bytes?: unknown; dropped?: unknown };
  if (bytes !== undefined && !(Array.isArray(bytes) && bytes.length === 2 && bytes.every(Number.isFinite))) return undefined;
  if (dropped !== undefined && dropped !== 'health-check' && dropped !== 'rejected') return undefined;
  return msg as FromWorker;
}
