import type { EdgeFacts } from './executors';
import 'reflect-metadata';
import type * as net from 'node:net';
import { stopReaderOf } from '../../classic/reader-registry';
import { ClientAddress, toServerAddress } from '../../transports/address';
import { endGracefully, lingeringClose } from '../../transports/lingering-close';
import { BufferWriter } from '../../transports/stream-writer';
import { Executor, loadExecutor } from './executors';
import { PortDuplex } from './port-duplex';
import { FromWorker, serializeError, ToWorker, WorkerSpec } from './protocol';
import { WorkerServerFace } from './worker-face';

/** How a worker talks to the server: a worker thread's parentPort, or a child process's IPC channel. */
export interface Channel {
  post(msg: FromWorker, transfer?: ArrayBuffer[]): void;
  /** `handle`: a connection that came with the message (a child process's IPC handle). */
  onMessage(listener: (msg: ToWorker, handle?: unknown) => void): void;
  /** Ends the worker once the messages posted so far have gone. */
  exit(code: number): void;
}

/** How long an owned connection waits for its reply to drain, and for the client to close, at the end. */
const FLUSH_LIMIT_MS = 5000;
const LINGER_MS = 2000;

/**
 * Runs in a worker thread or child process: loads the handler module by path, then serves the requests
 * the server sends, one at a time, with the same lifecycle as the main thread. A connection handed over
 * whole is closed here at the end, as Python's child runs shutdown_request; a bridged one is the main
 * thread's to close.
 */
export function startWorkerRuntime(spec: WorkerSpec, channel: Channel): void {
  let executor: Executor;
  let current: { id: number; duplex?: PortDuplex; socket?: net.Socket } | undefined;
  const face = new WorkerServerFace(() => {
    if (current) channel.post({ t: 'shutdown', id: current.id });
  });
  try {
    executor = loadExecutor(spec, face);
  } catch (err) {
    channel.post({ t: 'load-error', message: err instanceof Error ? err.message : String(err) });
    channel.exit(1); // a child's IPC channel would keep it alive, counted in the pool, for nothing
    return;
  }

  const run = async (id: number, heartbeatMs: number | undefined, work: () => Promise<void>, reply?: BufferWriter, owned?: net.Socket) => {
    // Proof for the server's watchdog that this event loop still turns; a blocked loop sends nothing.
    const heartbeat = heartbeatMs === undefined ? undefined : setInterval(() => channel.post({ t: 'alive', id }), heartbeatMs).unref();
    try {
      try {
        await work();
      } finally {
        if (owned) await endGracefully(owned, FLUSH_LIMIT_MS).then(() => lingeringClose(owned, LINGER_MS));
      }
      const bytes = reply && reply.length > 0 ? new Uint8Array(reply.getValue()) : undefined;
      channel.post({ t: 'done', id, reply: bytes }, bytes ? [bytes.buffer as ArrayBuffer] : undefined);
    } catch (err) {
      channel.post({ t: 'done', id, error: serializeError(err) });
    } finally {
      clearInterval(heartbeat);
      if (current?.id === id) current = undefined;
    }
  };

  const startStream = (id: number, client: ClientAddress, socket: net.Socket | undefined, heartbeatMs?: number, edge?: EdgeFacts) => {
    if (socket) {
      socket.on('error', () => undefined); // a reset surfaces through rfile/wfile
      // Half-open, as the server's own sockets: a client that shuts its side down still gets its reply.
      socket.allowHalfOpen = true;
      current = { id, socket };
      void run(id, heartbeatMs, () => executor.stream(socket, client, edge), undefined, socket);
      return;
    }
    const duplex = new PortDuplex(id, channel.post);
    current = { id, duplex };
    void run(id, heartbeatMs, () => executor.stream(duplex, client, edge));
  };

  channel.onMessage((msg, handle) => {
    switch (msg.t) {
      case 'stream': {
        if (msg.server !== undefined) face.serverAddress = toServerAddress(msg.server);
        const socket = (handle ?? msg.socket) as net.Socket | undefined;
        if (msg.owned && !socket) {
          // The descriptor did not come along (the connection was closed on its way): nothing to serve.
          channel.post({ t: 'done', id: msg.id, error: serializeError(new Error('the connection reached the worker without its descriptor')) });
          return;
        }
        return startStream(msg.id, msg.client, msg.owned ? socket : undefined, msg.heartbeatMs, { tls: msg.tls, proxy: msg.proxy });
      }
      case 'dgram': {
        if (msg.server !== undefined) face.serverAddress = toServerAddress(msg.server);
        current = { id: msg.id };
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
        const reply = new BufferWriter();
        void run(msg.id, msg.heartbeatMs, () => executor.datagram(data, msg.truncated, msg.client, reply), reply);
        return;
      }
      default:
        if (current?.id !== msg.id) return; // a late message for a finished request
        if (msg.t === 'stop') {
          const conn = current.socket ?? current.duplex;
          if (conn) stopReaderOf(conn);
        } else if (msg.t === 'eof') current.duplex?.eof();
        else if (msg.t === 'data') current.duplex?.feed(msg.chunk);
        else if (msg.t === 'written') current.duplex?.written(msg.seq, msg.error);
    }
  });
  channel.post({ t: 'ready' });
}
