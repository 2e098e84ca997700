import 'reflect-metadata';
import type * as net from 'node:net';
import { StreamRequest, DatagramRequest } from '../../bootstrap/request-objects';
import type { Server } from '../../bootstrap/server';
import { Container } from '../../container';
import { ConfigurationError } from '../../errors/errors';
import { messages } from '../../errors/messages';
import { explore } from '../../explorer/explorer';
import { runDecorated } from '../../lifecycle/run-decorated';
import type { HandlerDefinition } from '../../metadata/definition';
import { StreamReader } from '../../transports/stream-reader';
import { BufferWriter, StreamWriter } from '../../transports/stream-writer';
import { endGracefully, lingeringClose } from '../../transports/lingering-close';
import { PortDuplex } from './port-duplex';
import { FromWorker, serializeError, ToWorker, WorkerSpec } from './protocol';

/** How a worker talks to the server: a worker thread's parentPort, or a child process's IPC channel. */
export interface Channel {
  post(msg: FromWorker, transfer?: ArrayBuffer[]): void;
  /** `handle`: a connection that came with the message (a child process's IPC handle). */
  onMessage(listener: (msg: ToWorker, handle?: unknown) => void): void;
}

/** How long an owned connection waits for its reply to drain, and for the client to close, at the end. */
const FLUSH_LIMIT_MS = 5000;
const LINGER_MS = 2000;

/** The handler class's definition and a container for it, built in this thread or process. */
function load(spec: WorkerSpec): { def: HandlerDefinition; container: Container } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(spec.source) as Record<string, unknown>;
  const handler = mod[spec.exportName];
  if (typeof handler !== 'function') throw new ConfigurationError(messages.handlerNotExported(spec.exportName, spec.source));
  const def = explore(handler);
  const container = new Container(
    spec.values.map(({ token, symbolKey, value }) => ({ provide: symbolKey ? Symbol.for(token) : token, useValue: value })),
  );
  container.register({ provide: def.handler, useClass: def.handler as new (...a: any[]) => unknown, scope: 'transient' });
  container.validate(def.handler);
  return { def, container };
}

/**
 * Runs in a worker thread or child process: loads the handler module by path, then serves the requests
 * the server sends, one at a time, with the same decorated lifecycle as the main thread. Each request
 * gets its own DI request scope here; singletons are per thread or process.
 */
export function startWorkerRuntime(spec: WorkerSpec, channel: Channel): void {
  let loaded: ReturnType<typeof load>;
  try {
    loaded = load(spec);
  } catch (err) {
    channel.post({ t: 'load-error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  const { def, container } = loaded;
  const face = {} as Server; // the server's face lives in the main thread; hooks here see an empty one
  let current: { id: number; duplex?: PortDuplex; reader?: StreamReader } | undefined;

  const run = async (id: number, req: StreamRequest | DatagramRequest, reply?: BufferWriter, owned?: net.Socket) => {
    const scope = container.createRequestScope();
    try {
      try {
        await runDecorated(def, scope.resolve(def.handler), req);
      } finally {
        // A connection this worker owns is closed here, as Python's child runs shutdown_request.
        if (owned) await endGracefully(owned, FLUSH_LIMIT_MS).then(() => lingeringClose(owned, LINGER_MS));
      }
      const bytes = reply && reply.length > 0 ? new Uint8Array(reply.getValue()) : undefined;
      await scope.dispose();
      channel.post({ t: 'done', id, reply: bytes }, bytes ? [bytes.buffer as ArrayBuffer] : undefined);
    } catch (err) {
      await scope.dispose().catch(() => undefined);
      channel.post({ t: 'done', id, error: serializeError(err) });
    } finally {
      if (current?.id === id) current = undefined;
    }
  };

  channel.onMessage((msg, handle) => {
    switch (msg.t) {
      case 'stream': {
        if (msg.owned) {
          const socket = (handle ?? msg.socket) as net.Socket;
          socket.on('error', () => undefined); // a reset surfaces through rfile/wfile
          const reader = new StreamReader(socket, spec.reader);
          current = { id: msg.id, reader };
          void run(msg.id, new StreamRequest(reader, new StreamWriter(socket), msg.client, face, socket), undefined, socket);
          return;
        }
        const duplex = new PortDuplex(msg.id, channel.post);
        current = { id: msg.id, duplex };
        void run(msg.id, new StreamRequest(new StreamReader(duplex, spec.reader), new StreamWriter(duplex), msg.client, face));
        return;
      }
      case 'dgram': {
        current = { id: msg.id };
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
        const wfile = new BufferWriter();
        void run(msg.id, new DatagramRequest(data, msg.truncated, StreamReader.fromBuffer(data), wfile, msg.client, face), wfile);
        return;
      }
      default:
        if (current?.id !== msg.id) return; // a late message for a finished request
        if (msg.t === 'eof') current.reader?.stopReading();
        if (!current.duplex) return;
        if (msg.t === 'data') current.duplex.feed(msg.chunk);
        else if (msg.t === 'eof') current.duplex.eof();
        else if (msg.t === 'written') current.duplex.written(msg.seq, msg.error);
    }
  });
  channel.post({ t: 'ready' });
}
