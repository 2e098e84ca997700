import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The id of the last datagram a worker took from its channel, written before that datagram's handler runs, so that
 * when the worker dies the server knows which of the datagrams it had handed over were still on their way (queued
 * behind a handler that blocked the worker's event loop, say): those go to another worker (RemoteSlot.onExit),
 * not lost with it (hostile run: 6 of 100). One float64 (ids pass 2^31 on a long-lived worker: an Int32 wrapped).
 *
 * A thread's is a SharedArrayBuffer; a child's, a file of 8 bytes, unlinked once opened, whose descriptor the child
 * inherits (TAKEN_FD): a write at offset 0 per datagram, and the server reads it once the child has exited.
 */
export const TAKEN_FD = 5;

/** A child's record, this process's side: open (unlinked) before the spawn; undefined when no file can be made. */
export class TakenFile {
  private constructor(readonly fd: number) {}

  static open(): TakenFile | undefined {
    const file = path.join(os.tmpdir(), `sockserve-taken-${process.pid}-${Math.random().toString(36).slice(2)}`);
    try {
      const fd = fs.openSync(file, 'w+', 0o600);
      fs.unlinkSync(file);
      return new TakenFile(fd);
    } catch {
      return undefined; // no writable tmpdir: datagrams on a dying child are lost with it, as before
    }
  }

  /** The last id the child wrote; 0 before its first; Infinity when the record cannot be read. */
  read(): number {
    const buffer = Buffer.alloc(8);
    try {
      return fs.readSync(this.fd, buffer, 0, 8, 0) === 8 ? buffer.readDoubleLE(0) : 0;
    } catch {
      return Infinity;
    }
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // closed already
    }
  }
}

/** The worker's side: a function that records `id` as taken. */
export function takenRecorder(where: SharedArrayBuffer | number): (id: number) => void {
  if (typeof where !== 'number') {
    const cell = new Float64Array(where);
    return (id) => {
      cell[0] = id;
    };
  }
  const buffer = Buffer.alloc(8);
  return (id) => {
    buffer.writeDoubleLE(id, 0);
    try {
      fs.writeSync(where, buffer, 0, 8, 0);
    } catch {
      // the record is gone: nothing to say it with
    }
  };
}
