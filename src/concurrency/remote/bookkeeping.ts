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
 * So the child writes them as JSON lines to a socket pair (its stdio descriptor BOOKKEEPING_FD) that the
 * server's process does not poll: it reads what is there, without waiting, before each IPC message from
 * that child (so the order of the two channels is kept: a line was in the kernel before any later
 * message), every BOOKKEEPING_MS while lines come (less often when none do), when asked (stats()), and
 * once the child has exited (the kernel keeps the lines a dead child wrote, so a child killed outright
 * still leaves the news of every connection it held).
 */
export const BOOKKEEPING_FD = 4;

const EMPTY = Buffer.alloc(0);

/** The child's side: news of its own connections, written where the server reads them unwoken. */
export class BookkeepingWriter {
  private readonly socket: net.Socket;
  /** Messages waiting for the lines queued before them (after()). */
  private waiting = 0;

  constructor(fd: number) {
    this.socket = new net.Socket({ fd, readable: false, writable: true });
    this.socket.on('error', () => undefined); // the server gone: the IPC channel's disconnect ends this child
  }

  /** Whether `msg` is bookkeeping this channel carries: a connection's news with no bytes to transfer and nothing JSON would lose. */
  static carries(msg: FromWorker): boolean {
    return msg.t === 'accepted' || (msg.t === 'done' && msg.id < 0 && msg.reply === undefined && msg.end === undefined);
  }

  write(msg: FromWorker): void {
    this.socket.write(JSON.stringify(msg) + '\n');
  }

  /**
   * Calls `send` (an IPC message) now, or, while lines wait in this process for room in the socket pair
   * (the server's process reads it late), once they have gone, so it does not overtake them.
   */
  after(send: () => void): void {
    if (this.socket.writableLength === 0 && this.waiting === 0) return send();
    // An empty write's callback comes once every line queued before it has gone (callbacks keep order).
    this.waiting++;
    this.socket.write(EMPTY, () => {
      this.waiting--;
      send();
    });
  }
}

/**
 * The server's side: the lines of one child, read without waiting (its end of the pair is non-blocking,
 * and nothing polls it). `deliver` gets each message, in order.
 */
export class BookkeepingReader {
  private tail = '';
  private readonly decoder = new StringDecoder('utf8'); // a character split between two reads stays whole
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);
  private closed = false;

  constructor(private readonly fd: number, private readonly deliver: (msg: FromWorker) => void) {}

  /** Reads no more: the descriptor is about to be closed (its number may be reused). */
  close(): void {
    this.closed = true;
  }

  /** Reads and delivers every whole line there is now; returns how many. */
  drain(): number {
    let count = 0;
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
      const text = this.tail + this.decoder.write(this.buffer.subarray(0, n));
      const lines = text.split('\n');
      this.tail = lines.pop()!;
      for (const line of lines) {
        let msg: FromWorker;
        try {
          msg = JSON.parse(line) as FromWorker;
        } catch {
          continue; // not ours (the descriptor is the child's to misuse): nothing to deliver
        }
        count++;
        this.deliver(msg);
      }
    }
    return count;
  }
}
