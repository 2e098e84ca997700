import type { Duplex } from 'node:stream';
import { ReaderOptions, StreamReader } from '../transports/stream-reader';

// Kept on the socket itself (symbol-keyed properties, as Node keeps its own), not in WeakMaps or WeakSets:
// every connection would add an entry there, and weak tables cost the garbage collector per entry. A
// finished connection's reader goes with its socket all the same.
/** The connection's rfile. */
const READER = Symbol('sockserve.reader');
/** The connection's reader that is not an rfile (an `@OnMessage` connection's message loop). */
const OTHER = Symbol('sockserve.otherReader');
/** Shutdown told the connection's reads to stop. */
const STOPPED = Symbol('sockserve.readsStopped');
/** A connection's reader that is not an rfile: told to stop at shutdown, and asked to end its first-request grace at shutdownTimeout. */
export interface OtherReader {
  stopReading(): void;
  endShutdownGrace?(): boolean;
  /** Bytes of a message the client has begun and not finished (0 when none). */
  heldPartial?(): number;
}
type Registered = Duplex & { [READER]?: StreamReader; [OTHER]?: OtherReader; [STOPPED]?: true };

/**
 * A connection handed to a handler that reads it itself (a classic BaseRequestHandler's `this.request`): the
 * listener accepted it paused (`pauseOnConnect`), which Node counts as an explicit pause, so a `'data'` listener
 * of the handler's never started it and the handler (and a serial server) waited for ever (a Python porter's run).
 * Made as a socket Node's own 'connection' event hands over: a `'data'` listener or `resume()` starts it, nothing
 * is read before. Not once an rfile reads it (that one paces the socket itself).
 */
export function releaseAcceptPause(socket: unknown): void {
  const stream = socket as Registered & { readableFlowing: boolean | null };
  // Not [OTHER]: a PROXY header's intake stays registered there once it has read the header (hostile re-check).
  if (typeof stream !== 'object' || stream === null || stream.readableFlowing !== false || stream[READER] !== undefined) return;
  stream.readableFlowing = null;
}

/** One rfile per connection, whoever asks first: the handler's setup, or the server's shutdown() telling readers to stop waiting. */
export function readerFor(socket: Duplex, options: ReaderOptions = {}): StreamReader {
  const marked = socket as Registered;
  let reader = marked[READER];
  if (!reader) {
    reader = new StreamReader(socket, options);
    marked[READER] = reader;
    if (marked[STOPPED]) reader.stopReading();
  }
  return reader;
}

/** Registers a connection's message loop for stopReaderOf(); told at once when shutdown already began. */
export function registerReader(socket: Duplex, reader: OtherReader): void {
  const marked = socket as Registered;
  marked[OTHER] = reader;
  if (marked[STOPPED]) reader.stopReading();
}

/** Shutdown: the connection's reads that would wait see EOF, now or as soon as its rfile exists. */
export function stopReaderOf(socket: Duplex): void {
  const marked = socket as Registered;
  marked[STOPPED] = true;
  marked[READER]?.stopReading();
  marked[OTHER]?.stopReading();
}

/**
 * shutdownTimeout has passed while the connection's reads wait out shutdown's first-request grace (it was accepted
 * less than a second before shutdown and has sent nothing): the grace ends, and they see EOF as they would after
 * it. Returns true when such a wait was running: that connection is an idle one, not a request still running.
 */
export function endShutdownGraceOf(socket: Duplex): boolean {
  const marked = socket as Registered;
  const rfile = marked[READER]?.endShutdownGrace() ?? false;
  const other = marked[OTHER]?.endShutdownGrace?.() ?? false;
  return rfile || other;
}

/**
 * Bytes of a line, `read(n)` body or message the client had begun sending on `socket` and not finished, that a
 * read is waiting for the rest of (0 when none): such a request held shutdown, read whole within lineTimeout, and
 * its error at shutdownTimeout blamed the handler (new user: a synchronous @OnMessage, and a client mid-line).
 */
export function partialHeldOn(socket: object): number {
  const marked = socket as Registered;
  return Math.max(marked[READER]?.heldPartial() ?? 0, marked[OTHER]?.heldPartial?.() ?? 0);
}
