import type * as net from 'node:net';
import type { DatagramRequestTuple } from '../../classic/request-handler';
import { RequestTimeoutError, WorkerCrashedError } from '../../errors/errors';
import { messages } from '../../errors/messages';
import type { ClientAddress } from '../../transports/address';
import { afterPollPhase } from '../../transports/event-loop';
import { canHandOver, preambleFacts } from '../../transports/connection-preamble';
import { writeThrough } from '../../transports/stream-writer';
import { BRIDGE_WINDOW, deserializeError, FromWorker, ownBytes, serializeError, ToWorker } from './protocol';

interface Running {
  id: number;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Bridged stream requests: the connection, a function that detaches it from the worker, and the worker's acks. */
  socket?: net.Socket;
  detach?: () => void;
  ack?: (bytes: number) => void;
  /** Datagram requests: sends the reply to the client. */
  reply?: (bytes: Uint8Array) => Promise<void>;
  /** With a requestTimeout: how often the worker says it is alive; each message refreshes the watchdog. */
  heartbeatMs?: number;
  watchdog?: NodeJS.Timeout;
  /** The server the request came to: its address goes to the worker, and the worker may ask it to shut down. */
  server?: RemoteServer;
}

/** What a worker's request sees of the server: its (classic) address, and shutdown(). */
export interface RemoteServer {
  serverAddress: unknown;
  shutdown(): unknown;
}

export type RemoteRequest = net.Socket | DatagramRequestTuple;

/**
 * One worker (a thread or a child process) and the request it runs, seen from the server. Subclasses
 * say how messages travel and whether a connection can be handed over whole; this class keeps the
 * request's bookkeeping, the byte bridge for connections that stay in the main thread, the datagram
 * reply, the requestTimeout watchdog and the crash path (a worker that dies fails its request only).
 * The watchdog is fed by the worker's heartbeat, sent from its event loop every requestTimeout / 2: it
 * ends a worker whose loop is blocked (a handler spinning), not one that waits on its client.
 */
export abstract class RemoteSlot {
  readonly ready: Promise<void>;
  /** The worker loaded the handler and said it is ready. */
  started = false;
  dead = false;
  protected lastError: Error | undefined;
  private nextId = 0;
  private running: Running | undefined;
  private settleReady!: { resolve: () => void; reject: (e: Error) => void };

  constructor(
    private readonly mode: 'threading' | 'forking',
    private readonly onDeath: (slot: RemoteSlot) => void,
  ) {
    this.ready = new Promise<void>((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => undefined);
  }

  /** The worker's id for people: a threadId or a pid. */
  abstract get id(): number;
  protected abstract post(msg: ToWorker, transfer?: ArrayBuffer[]): void;
  /** Hands the whole connection to the worker, if this worker and this Node can take it. */
  protected abstract handOver(msg: ToWorker & { t: 'stream' }, socket: net.Socket): boolean;
  abstract kill(): Promise<void>;

  /**
   * Runs one request in the worker; resolves when its lifecycle has finished there. A connection closed
   * while it waited for a worker (by the client, or by shutdown's timeout) fails at once: a bridge would
   * wait for a 'close' already emitted, and a child would get the message without the descriptor.
   */
  run(request: RemoteRequest, client: ClientAddress, requestTimeout: number | null, server?: RemoteServer): Promise<void> {
    if (!Array.isArray(request) && (request as net.Socket).destroyed) {
      return Promise.reject(new Error('the connection closed before a worker could take it'));
    }
    const id = ++this.nextId;
    const heartbeatMs = requestTimeout === null ? undefined : (requestTimeout * 1000) / 2;
    return new Promise<void>((resolve, reject) => {
      const running: Running = { id, resolve, reject, heartbeatMs, server };
      this.running = running;
      if (requestTimeout !== null) this.armWatchdog(running, requestTimeout);
      const address = server?.serverAddress;
      if (Array.isArray(request)) this.startDatagram(running, request as DatagramRequestTuple, client);
      else if (!canHandOver(request as net.Socket) || !this.handOver({ t: 'stream', id, client, owned: true, heartbeatMs, server: address, ...preambleFacts(request) }, request as net.Socket)) {
        this.bridge(running, request as net.Socket, client);
      }
    });
  }

  /**
   * Shutdown: the running request's reads stop waiting at the next boundary. A bridged connection keeps
   * relaying, so the rest of a request already on its way still arrives.
   */
  stopReading(): void {
    const running = this.running;
    if (!running) return;
    // A bridged connection first relays what the kernel already holds, so bytes that arrived before
    // shutdown reach the worker before 'stop' does.
    const stop = () => this.running === running && this.post({ t: 'stop', id: running.id });
    if (running.socket) afterPollPhase(stop);
    else stop();
  }

  // ---- for subclasses: what the worker said, and how it ended ----

  protected onMessage(msg: FromWorker): void {
    if (msg.t === 'ready') {
      this.started = true;
      return this.settleReady.resolve();
    }
    if (msg.t === 'load-error') return this.settleReady.reject(new Error(msg.message));
    const running = this.running;
    if (!running || msg.id !== running.id) return; // late news from a finished request
    running.watchdog?.refresh();
    const socket = running.socket;
    switch (msg.t) {
      case 'write':
        if (!socket || socket.destroyed) {
          this.post({ t: 'written', id: msg.id, seq: msg.seq, error: serializeError(new Error('the connection is closed')) });
          return;
        }
        // As wfile.write does: when the kernel took the bytes at once, say so now, not on a later tick.
        writeThrough(socket, msg.chunk, (err) => this.post({ t: 'written', id: msg.id, seq: msg.seq, error: err ? serializeError(err) : undefined }));
        return;
      case 'end':
        if (socket && !socket.destroyed) socket.end(() => this.post({ t: 'written', id: msg.id, seq: msg.seq }));
        else this.post({ t: 'written', id: msg.id, seq: msg.seq });
        return;
      case 'alive':
        return; // the watchdog was refreshed above
      case 'ack':
        running.ack?.(msg.bytes);
        return;
      case 'done':
        void this.finish(running, msg.error ? deserializeError(msg.error) : undefined, msg.reply);
        return;
      case 'shutdown':
        void Promise.resolve(running.server?.shutdown()).catch(() => undefined);
        return;
    }
  }

  /** The worker could not even be started: no message and no exit will follow. */
  protected startFailed(err: Error): void {
    this.dead = true;
    this.settleReady.reject(err);
  }

  protected onExit(detail: string): void {
    this.dead = true;
    this.settleReady.reject(this.lastError ?? new Error(`the worker ${detail} before it was ready`));
    const running = this.running;
    if (running) {
      const cause = this.lastError;
      const why = cause ? `${cause.name}: ${cause.message}` : `it ${detail}`;
      void this.finish(running, cause instanceof RequestTimeoutError ? cause : new WorkerCrashedError(messages.workerCrashed(this.mode, why), { cause }));
    }
    this.onDeath(this);
  }

  // ---- the request's paths ----

  /**
   * The main thread keeps the connection and relays its bytes both ways, with flow control: reading
   * pauses while BRIDGE_WINDOW bytes sent to the worker are unacknowledged (see PortDuplex).
   */
  private bridge(running: Running, socket: net.Socket, client: ClientAddress): void {
    const { id, heartbeatMs } = running;
    this.post({ t: 'stream', id, client, owned: false, heartbeatMs, server: running.server?.serverAddress, ...preambleFacts(socket) });
    let ended = false;
    const eof = () => {
      if (ended) return;
      ended = true;
      this.post({ t: 'eof', id });
    };
    let unacked = 0;
    const onData = (chunk: Buffer) => {
      const bytes = ownBytes(chunk);
      unacked += bytes.byteLength;
      this.post({ t: 'data', id, chunk: bytes }, [bytes.buffer as ArrayBuffer]);
      if (unacked >= BRIDGE_WINDOW) socket.pause();
    };
    socket.on('data', onData);
    socket.on('end', eof);
    socket.on('close', eof);
    running.socket = socket;
    running.ack = (bytes) => {
      unacked -= bytes;
      if (unacked < BRIDGE_WINDOW && socket.isPaused()) socket.resume();
    };
    running.detach = () => {
      socket.off('data', onData);
      socket.off('end', eof);
      socket.off('close', eof);
      socket.pause();
    };
    socket.resume();
  }

  private startDatagram(running: Running, request: DatagramRequestTuple, client: ClientAddress): void {
    const [data, dgramSocket] = request;
    const bytes = new Uint8Array(data);
    running.reply = (reply) => dgramSocket.send(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), client);
    const { id, heartbeatMs } = running;
    this.post({ t: 'dgram', id, client, data: bytes, truncated: request.truncated, heartbeatMs, server: running.server?.serverAddress }, [bytes.buffer as ArrayBuffer]);
  }

  private async finish(running: Running, error?: Error, reply?: Uint8Array): Promise<void> {
    if (this.running !== running) return;
    this.running = undefined;
    if (running.watchdog) clearTimeout(running.watchdog);
    running.detach?.();
    if (error) return running.reject(error);
    try {
      if (reply && running.reply) await running.reply(reply);
      running.resolve();
    } catch (err) {
      running.reject(err as Error);
    }
  }

  private armWatchdog(running: Running, seconds: number): void {
    running.watchdog = setTimeout(() => {
      this.lastError = new RequestTimeoutError(messages.workerSilent(seconds));
      void this.kill();
    }, seconds * 1000);
  }
}
