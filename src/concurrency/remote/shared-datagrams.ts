import type * as dgram from 'node:dgram';
import type { ClientAddress } from '../../transports/address';
import { receivedDatagram, sendError, startReading, stopReading } from '../../transports/udp.socket';

/**
 * A child's copy of the server's UDP socket (API.md §3: workers own what Node lets them): the child reads
 * datagrams from it, serves each one itself and sends the reply from it, so no datagram crosses between
 * processes. The kernel gives each datagram to one of the children reading.
 *
 * `stop()` stops the reads at once (the datagrams still queued go to the other children) and closes this
 * copy once the replies of the datagrams in hand have been sent; the server's own copy keeps the port bound.
 */
export class SharedDatagrams {
  private inHand = 0;
  private stopped = false;
  /** Reads paused because `maxHeld` datagrams are in hand (see the constructor). */
  private paused = false;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly maxPacketSize: number,
    /** Who a send's error says it is from: the server's log name (WorkerSpec.owner). */
    private readonly owner: string,
    /** One datagram read here: its bytes (cut to maxPacketSize), whether they were cut, its sender, and how to reply. */
    serve: (data: Buffer, truncated: boolean, client: ClientAddress, reply: (bytes: Buffer) => Promise<void>) => void,
    /**
     * At most this many datagrams in hand (the server's maxQueuedDatagrams): then reads pause until one is done,
     * and the rest wait in the kernel's queue (for the other children), dropped by it when full, as datagrams
     * past the bound are in the server's own process. A child read on for ever (hostile run: a flood to slow
     * handlers, 9,500 in hand and 670 MB per child after 8 s, growing). Those libuv read in the same batch are
     * still served.
     */
    private readonly maxHeld = 4096,
  ) {
    socket.on('error', () => undefined); // a send's error reaches its reply's promise
    socket.on('message', (msg, rinfo) => {
      if (this.stopped) return;
      const { data, from, truncated } = receivedDatagram(msg, rinfo, this.maxPacketSize);
      if (++this.inHand >= this.maxHeld && !this.paused) this.paused = stopReading(this.socket);
      serve(data, truncated, from, (bytes) => this.send(bytes, from));
    });
  }

  /** The datagram served is over (replied or not): once stopped, the last one closes this copy. */
  done(): void {
    if (--this.inHand === 0 && this.stopped) return this.close();
    if (this.paused && !this.stopped && this.inHand < this.maxHeld) this.paused = !startReading(this.socket);
  }

  /** Reads no more datagrams; closes this copy once those in hand are done. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!stopReading(this.socket) || this.inHand === 0) this.close();
  }

  private send(bytes: Buffer, to: ClientAddress): Promise<void> {
    const { host, port } = to as { host: string; port: number };
    return new Promise<void>((resolve, reject) => {
      try {
        // EMSGSIZE said as the server's own socket says it (a reply too long for one datagram), not as Node's raw error.
        this.socket.send(bytes, port, host, (err) => (err ? reject(sendError(this.owner, bytes.length, to as { host: string; family?: string }, err)) : resolve()));
      } catch (err) {
        reject(err); // closed under it (ERR_SOCKET_DGRAM_NOT_RUNNING)
      }
    });
  }

  private close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
