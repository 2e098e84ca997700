import type * as net from 'node:net';
import { Worker } from 'node:worker_threads';
import type { DatagramRequestTuple } from '../../classic/request-handler';
import { RequestTimeoutError, WorkerCrashedError } from '../../errors/errors';
import { messages } from '../../errors/messages';
import type { ClientAddress } from '../../transports/address';
import { deserializeError, FromWorker, ownBytes, serializeError, ToWorker, WorkerSpec } from './protocol';
import type { WorkerLaunch } from './worker-launch';

interface Running {
  id: number;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Stream requests: the connection, and a function that detaches it from the worker. */
  socket?: net.Socket;
  detach?: () => void;
  /** Datagram requests: sends the reply to the client. */
  reply?: (bytes: Uint8Array) => Promise<void>;
  /** Ends reads for shutdown: the handler sees EOF. */
  stopReading?: () => void;
  watchdog?: NodeJS.Timeout;
}

/**
 * One worker thread and the request it is running. The main thread keeps the socket: it forwards the
 * client's bytes to the worker (transferred, not copied) and writes the worker's bytes to the kernel,
 * with flow control both ways. A worker that dies mid-request fails that request only.
 */
export class ThreadSlot {
  readonly ready: Promise<void>;
  dead = false;
  private nextId = 0;
  private running: Running | undefined;
  private lastError: Error | undefined;
  private readonly worker: Worker;

  constructor(
    spec: WorkerSpec,
    launch: WorkerLaunch,
    private readonly onDeath: (slot: ThreadSlot) => void,
  ) {
    this.worker = new Worker(launch.file, { workerData: spec, execArgv: launch.execArgv, stdout: false, stderr: false });
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.t === 'ready') resolve();
        else if (msg.t === 'load-error') reject(new Error(msg.message));
        else return;
        this.worker.off('message', onMessage);
      };
      this.worker.on('message', onMessage);
      this.worker.once('exit', (code) => reject(this.lastError ?? new Error(`the worker exited with code ${code} before it was ready`)));
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (err) => (this.lastError = err));
    this.worker.once('exit', (code) => this.onExit(code));
  }

  get threadId(): number {
    return this.worker.threadId;
  }

  /** Runs one request in the worker; resolves when the handler's lifecycle has finished there. */
  run(request: net.Socket | DatagramRequestTuple, client: ClientAddress, requestTimeout: number | null): Promise<void> {
    const id = ++this.nextId;
    return new Promise<void>((resolve, reject) => {
      const running: Running = { id, resolve, reject };
      this.running = running;
      if (requestTimeout !== null) this.armWatchdog(running, requestTimeout);
      if (Array.isArray(request)) this.startDatagram(running, request as DatagramRequestTuple, client);
      else this.startStream(running, request as net.Socket, client);
    });
  }

  /** Shutdown: the request's reads see EOF now. */
  stopReading(): void {
    this.running?.stopReading?.();
  }

  terminate(): Promise<number> {
    this.dead = true;
    return this.worker.terminate();
  }

  private post(msg: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.dead) this.worker.postMessage(msg, transfer ?? []);
  }

  private startStream(running: Running, socket: net.Socket, client: ClientAddress): void {
    const { id } = running;
    this.post({ t: 'stream', id, client });
    let ended = false;
    const eof = () => {
      if (ended) return;
      ended = true;
      this.post({ t: 'eof', id });
    };
    const onData = (chunk: Buffer) => {
      const bytes = ownBytes(chunk);
      this.post({ t: 'data', id, chunk: bytes }, [bytes.buffer as ArrayBuffer]);
    };
    socket.on('data', onData);
    socket.on('end', eof);
    socket.on('close', eof);
    running.stopReading = () => {
      socket.pause();
      eof();
    };
    running.detach = () => {
      socket.off('data', onData);
      socket.off('end', eof);
      socket.off('close', eof);
      socket.pause();
    };
    running.socket = socket;
    socket.resume();
  }

  private startDatagram(running: Running, request: DatagramRequestTuple, client: ClientAddress): void {
    const [data, dgramSocket] = request;
    const bytes = new Uint8Array(data);
    running.reply = (reply) => dgramSocket.send(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), client);
    this.post({ t: 'dgram', id: running.id, client, data: bytes, truncated: request.truncated }, [bytes.buffer as ArrayBuffer]);
  }

  private onMessage(msg: FromWorker): void {
    const running = this.running;
    if (!running || !('id' in msg) || msg.id !== running.id) return;
    if (running.watchdog) running.watchdog.refresh();
    const socket = running.socket;
    switch (msg.t) {
      case 'write':
        if (!socket || socket.destroyed) {
          this.post({ t: 'written', id: msg.id, seq: msg.seq, error: serializeError(new Error('the connection is closed')) });
          return;
        }
        socket.write(msg.chunk, (err) => this.post({ t: 'written', id: msg.id, seq: msg.seq, error: err ? serializeError(err) : undefined }));
        return;
      case 'end':
        if (socket && !socket.destroyed) socket.end(() => this.post({ t: 'written', id: msg.id, seq: msg.seq }));
        else this.post({ t: 'written', id: msg.id, seq: msg.seq });
        return;
      case 'pause':
        socket?.pause();
        return;
      case 'resume':
        socket?.resume();
        return;
      case 'done':
        void this.finish(running, msg.error ? deserializeError(msg.error) : undefined, msg.reply);
        return;
    }
  }

  private async finish(running: Running, error?: Error, reply?: Uint8Array): Promise<void> {
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
      void this.terminate();
    }, seconds * 1000);
  }

  private onExit(code: number): void {
    this.dead = true;
    const running = this.running;
    if (running) {
      const cause = this.lastError;
      const detail = cause ? `${cause.name}: ${cause.message}` : `it exited with code ${code}`;
      const err = cause instanceof RequestTimeoutError ? cause : new WorkerCrashedError(messages.workerCrashed('threading', detail), { cause });
      void this.finish(running, err);
    }
    this.onDeath(this);
  }
}
