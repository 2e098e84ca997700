import * as net from 'node:net';

/** Peer hosts whose answer TrustedPeers remembers before it forgets them all. */
const CACHE_LIMIT = 1024;

/** The peers trusted to send a PROXY header when none are named: loopback. */
export const LOOPBACK = ['127.0.0.0/8', '::1'];

/**
 * A set of addresses and CIDR blocks (Node's `net.BlockList`), asked whether a peer may send a PROXY header.
 * An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, what a server on `'::'` sees) is checked as the IPv4 address.
 */
export class TrustedPeers {
  private readonly list = new net.BlockList();

  /** Throws a RangeError naming the entry that is not an address or a CIDR. */
  constructor(entries: readonly string[] = LOOPBACK) {
    for (const entry of entries) {
      const [address, bits, extra] = entry.split('/');
      const family = net.isIP(address);
      const prefix = bits === undefined ? undefined : Number(bits);
      const max = family === 4 ? 32 : 128;
      if (family === 0 || extra !== undefined || (prefix !== undefined && (!/^\d+$/.test(bits) || prefix > max))) {
        throw new RangeError(`${JSON.stringify(entry)} is not an IP address or a CIDR block`);
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, prefix, type);
    }
  }

  /**
   * Answers by peer host, remembered: `BlockList.check` builds a SocketAddress per call (the largest cost of
   * a PROXY header's checks in a --cpu-prof of the connection-rate bench), and the peers that send
   * headers are a handful of proxies. Bounded: forgotten wholesale past CACHE_LIMIT hosts.
   */
  private readonly answers = new Map<string, boolean>();

  has(host: string | undefined): boolean {
    if (!host) return false;
    let answer = this.answers.get(host);
    if (answer === undefined) {
      answer = this.check(host);
      if (this.answers.size >= CACHE_LIMIT) this.answers.clear();
      this.answers.set(host, answer);
    }
    return answer;
  }

  private check(host: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
    if (mapped) return this.list.check(mapped[1], 'ipv4');
    const family = net.isIP(host);
    return family !== 0 && this.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
  }
}
