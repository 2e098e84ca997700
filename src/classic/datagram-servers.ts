import type { ClientAddress } from '../transports/address';
import { createUdpSocket, createUnixDatagramSocket, DatagramSocket, ReceivedDatagram } from '../transports/datagram-socket';
import { RequestQueue } from '../transports/request-queue';
import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import { SerialStrategy } from '../concurrency/serial.strategy';
import { boundPath } from '../transports/unix-path';
import { LineBudget } from '../observability/line-budget';
import { messages } from '../errors/messages';
import { alreadyBound, BaseServer, RequestHandlerClass, ServerConstructorOptions } from './base-server';
import { classNameOf } from './class-name';
import { datagramRequest, DatagramRequestTuple } from './request-handler';
import { IpAddressInput, normaliseIp, normaliseUnix, reusePortAllowed, UnixAddressInput } from './stream-servers';
import { loggerOf } from '../observability/logger';

/**
 * The datagram half of the classic layer: UDPServer and UnixDatagramServer differ only in their socket.
 * The request is Python's `(data, socket)` pair; replies go to the sender with `socket.send(data, addr)`.
 * Datagrams that arrive while the loop is busy wait in a queue of at most `maxQueuedDatagrams`; past
 * that they are dropped, as a full kernel buffer drops them.
 */
abstract class DatagramServer<Addr> extends BaseServer<DatagramRequestTuple, Addr> {
  /** Datagrams held while the loop is busy; more are dropped (and counted in `dropped`), as a full kernel buffer drops them. Default 4096. */
  maxQueuedDatagrams = 4096;
  /** Datagrams dropped because the queue (or the pool's workers) already held `maxQueuedDatagrams`; `stats().dropped`. */
  dropped = 0;
  private dropLines: LineBudget | undefined;
  /** The bound socket (Python's `server.socket`), once serverBind() has run; undefined before; closed (not unset) by close(). */
  socket: DatagramSocket | undefined;
  private readonly queue = new RequestQueue<ReceivedDatagram>();

  protected override get servesDatagrams(): boolean {
    return true;
  }

  protected abstract createSocket(): DatagramSocket;
  protected abstract boundAddress(address: ClientAddress): Addr;

  protected override get bound(): boolean {
    return this.socket !== undefined;
  }

  override async serverBind(): Promise<void> {
    if (this.socket !== undefined) throw alreadyBound(classNameOf(this), JSON.stringify(this.serverAddress));
    this.socket = this.createSocket();
    this.socket.onMessage((d) => {
      // Those being served here count too where many run at once (@Concurrent): served at once from this
      // callback, they were bounded by nothing (hostile run: 7,000 slow 64 KiB datagrams, 1.1 GB, growing).
      // The pools bound their own (serveDatagram); serial serves one.
      const held = this.queue.length + (this.strategy instanceof ConcurrentStrategy ? this.strategy.active : 0);
      if (held >= this.maxQueuedDatagrams) return this.datagramDropped();
      // Nothing queued before it (the loop takes those in order): a subclass may serve it at once.
      if (this.queue.length === 0 && this.serveAtOnce(d)) return;
      this.queue.push(d);
    });
    await this.socket.bind();
    this.serverAddress = this.boundAddress(this.socket.address());
    await this.shareWithWorkers(this.socket);
  }

  /**
   * Where the pool's children can read this socket themselves (@Forking over UDP, many requests per child:
   * acceptsItself), it stops reading here and goes to each child, which serves its datagrams there, @Verify
   * included, and replies from there: no datagram crosses between processes. Not where verifyRequest is
   * overridden (it runs in this process). Datagrams read before this point are served as before.
   */
  private async shareWithWorkers(socket: DatagramSocket): Promise<void> {
    if (this.strategy.acceptsItself?.('udp') !== 'shared-socket' || !this.strategy.shareListener || this.verifiesHere()) return;
    const handle = socket.shareWithChildren?.();
    if (handle === undefined) return;
    this.workersTake = true;
    await this.strategy.shareListener({ handle, datagrams: { maxPacketSize: this.maxPacketSize, maxHeld: this.maxQueuedDatagrams } }, this as never);
  }

  /**
   * Python's handle_request: exactly one datagram. Where the children read the socket while the loop serves
   * (shareWithWorkers), this process reads it for this call, as it does without them, and hands it over:
   * children reading would take every datagram that came meanwhile.
   */
  protected override async handleOneRequest(): Promise<unknown> {
    // Here, not in handleRequest(): its check for another wait must come before this await (a serveForever()
    // called in the same tick passed it, and the handleRequest() was the one refused).
    await this.ready;
    const socket = this.socket;
    if (!this.workersTake || this.isServing || !socket?.readHere) return super.handleOneRequest();
    this.workersTake = false;
    socket.readHere(true);
    try {
      return await super.handleOneRequest();
    } finally {
      socket.readHere(false);
      this.workersTake = true;
    }
  }

  /**
   * A datagram was dropped unserved (the queue, or the pool, already held maxQueuedDatagrams): counted, and
   * said at `warn`, at most one line a second (then one line with how many more), since a flood drops thousands.
   * `taken`: the request, where the loop had taken it already (a pool dropped it), so a subclass that counted it
   * un-counts it.
   */
  datagramDropped(_taken?: object): void {
    this.dropped++;
    this.dropLines ??= new LineBudget(1, (n) => loggerOf(this).warn(messages.datagramsDroppedHeldBack(this.logName, n)));
    // Its fix depends on the mode: "serve them concurrently" told a @Concurrent server what it already does (hostile run).
    if (this.dropLines.take()) loggerOf(this).warn(messages.datagramDropped(this.logName, this.maxQueuedDatagrams, this.strategy instanceof SerialStrategy));
  }

  override async serverClose(): Promise<void> {
    if (this.socket) this.socketReleased = true;
    this.dropLines?.flush();
    this.queue.drain();
    this.queue.wake();
    await this.socket?.close();
  }

  override get queuedRequests(): number {
    return this.queue.length;
  }

  override getRequest(): [DatagramRequestTuple, ClientAddress] {
    const d = this.queue.shift();
    if (!d || !this.socket) throw Object.assign(new Error('no datagram is waiting'), { code: 'EAGAIN' });
    if (this.queuedAtShutdown > 0) this.queuedAtShutdown--;
    return [this.requestOf(d), d.from];
  }

  /**
   * Datagrams queued when shutdown() was called, still to serve: the first ones in the queue (it is FIFO).
   * A serial server dropped them unanswered and uncounted (hostile run); API.md §6 serves what was received.
   */
  private queuedAtShutdown = 0;

  protected override markAcceptedBeforeShutdown(): void {
    this.queuedAtShutdown = this.queue.length;
  }

  protected override waitForAcceptedBeforeShutdown(): Promise<boolean> {
    return Promise.resolve(this.queuedAtShutdown > 0 && this.queue.length > 0 && this.socket !== undefined);
  }

  protected override forgetShutdownMark(): void {
    this.queuedAtShutdown = 0;
  }

  protected override takeAllQueued(): Array<[DatagramRequestTuple, ClientAddress]> {
    const left: Array<[DatagramRequestTuple, ClientAddress]> = [];
    while (this.queue.length > 0 && this.socket) left.push(this.getRequest());
    return left;
  }

  /** shutdownTimeout passed with datagrams received before shutdown() still queued: each is reported (unanswered), as a stream server's. */
  protected override takeUnservedBeforeShutdown(): Array<[DatagramRequestTuple, ClientAddress]> {
    const left: Array<[DatagramRequestTuple, ClientAddress]> = [];
    while (this.queuedAtShutdown > 0 && this.queue.length > 0 && this.socket) left.push(this.getRequest());
    return left;
  }

  /**
   * @internal A datagram just received, with none queued before it: true when the subclass served it at
   * once, from the socket's callback, instead of leaving it to the loop (the decorator layer does so for
   * @Concurrent, where one loop turn per datagram costs more than the request). Default: false, queue it.
   */
  protected serveAtOnce(_d: ReceivedDatagram): boolean {
    return false;
  }

  /** @internal The request a datagram makes: Python's `(data, socket)` pair. */
  protected requestOf(d: ReceivedDatagram): DatagramRequestTuple {
    return datagramRequest(d.data, this.socket!, d.truncated);
  }

  protected waitForRequest(ms: number): Promise<boolean> {
    return this.queue.wait(ms);
  }

  protected wakeLoop(): void {
    this.queue.wake();
  }
}

/** Python's UDPServer: `serverAddress` is `[host, port]`; `host: '::1'` gives IPv6. `maxPacketSize` 8192. */
export class UDPServer extends DatagramServer<[string, number]> {
  /**
   * Python's `allow_reuse_address` for UDP: true sets `SO_REUSEADDR` before binding, so another socket with
   * it set may bind the same address (on Linux the last one bound then receives unicast datagrams); default
   * false, as Python's UDPServer, so a taken port is an AddressInUseError.
   */
  override allowReuseAddress = false;

  constructor(address: IpAddressInput, Handler: RequestHandlerClass<DatagramRequestTuple, any>, options?: ServerConstructorOptions | boolean) {
    super(normaliseIp(address, 'UDPServer'), Handler, options);
  }

  protected createSocket(): DatagramSocket {
    const [host, port] = this.serverAddress;
    const reusePort = reusePortAllowed(this.allowReusePort, this.logName);
    return createUdpSocket({ host, port, maxPacketSize: this.maxPacketSize, reuseAddress: this.allowReuseAddress, reusePort, owner: this.logName });
  }

  protected boundAddress(a: ClientAddress): [string, number] {
    const ip = a as { host: string; port: number };
    return [ip.host, ip.port];
  }
}

/** Python's UnixDatagramServer over a native AF_UNIX datagram socket; `serverAddress` is the path. */
export class UnixDatagramServer extends DatagramServer<string> {
  constructor(address: UnixAddressInput, Handler: RequestHandlerClass<DatagramRequestTuple, any>, options?: ServerConstructorOptions | boolean) {
    super(normaliseUnix(address, 'UnixDatagramServer'), Handler, options);
  }

  /** @internal The socket file's permission bits (the decorators' `mode`): the file is created with them, not chmod()ed to them after. */
  socketMode: number | undefined;

  protected createSocket(): DatagramSocket {
    return createUnixDatagramSocket({
      path: boundPath(this.serverAddress),
      maxPacketSize: this.maxPacketSize,
      owner: this.logName,
      mode: this.socketMode,
      onFailure: (error) => loggerOf(this).error(error.message), // it receives nothing more: say so once
    });
  }

  protected boundAddress(): string {
    return this.serverAddress;
  }
}
