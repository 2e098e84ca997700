/**
 * Fixed free ports for tests that must know a port before anything listens on it (a balancer's config, a
 * backend restarted on the same port, a sample compiled with its port). Port 0 cannot serve them, and a port
 * the kernel handed out for port 0 and that was released is in the ephemeral range: until it is bound again
 * the kernel may give it to any outgoing connection (nginx's to the other backend) or to another test's
 * port 0, and the bind fails with EADDRINUSE (seen in CI: a restarted nginx backend, Node 22). So the ports
 * come from below the ephemeral range (Linux's `ip_local_port_range`), where the kernel never picks one.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

/** The lowest port the kernel hands out by itself (32768 when the range cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

const FIRST = 10000;
const handedOut = new Set<number>();

/** Resolves true when `port` can be listened on at `host` now (bound and released at once). */
function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A loopback port, free now, below the ephemeral range and not handed out before by this process: random,
 * so that parallel jest workers seldom try the same one, and checked by binding it. Throws after 100 tries.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const low = Math.max(FIRST + 1000, ephemeralLow());
  for (let tries = 0; tries < 100; tries++) {
    const port = FIRST + Math.floor(Math.random() * (low - FIRST));
    if (handedOut.has(port) || !(await bindable(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${FIRST}-${low - 1} after 100 tries`);
}
