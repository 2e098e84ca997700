import type { Duplex } from 'node:stream';
import { ReaderOptions, StreamReader } from '../transports/stream-reader';

/**
 * One rfile per connection, whoever asks first: the handler's setup, or the server's shutdown() telling
 * readers to stop waiting. A WeakMap, so a finished connection's reader goes with it.
 */
const readers = new WeakMap<Duplex, StreamReader>();
const stopped = new WeakSet<Duplex>();

export function readerFor(socket: Duplex, options: ReaderOptions = {}): StreamReader {
  let reader = readers.get(socket);
  if (!reader) {
    reader = new StreamReader(socket, options);
    readers.set(socket, reader);
    if (stopped.has(socket)) reader.stopReading();
  }
  return reader;
}

/** Readers that are not an rfile (an `@OnMessage` connection's message loop), told to stop the same way. */
const others = new WeakMap<Duplex, { stopReading(): void }>();

/** Registers a connection's message loop for stopReaderOf(); told at once when shutdown already began. */
export function registerReader(socket: Duplex, reader: { stopReading(): void }): void {
  others.set(socket, reader);
  if (stopped.has(socket)) reader.stopReading();
}

/** Shutdown: the connection's reads that would wait see EOF, now or as soon as its rfile exists. */
export function stopReaderOf(socket: Duplex): void {
  stopped.add(socket);
  readers.get(socket)?.stopReading();
  others.get(socket)?.stopReading();
}
