/**
 * Real HAProxy (Debian's `haproxy` package) in front of two real sockserve processes with the PROXY
 * protocol (API.md §15). HAProxy is found as $SOCKSERVE_HAPROXY or on the PATH; when it is missing the test
 * FAILS under CI=true and is skipped with a loud warning elsewhere: never a silent pass.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { announceMissing, findBinary, freePort, fromSources, killAll, SOURCES, startBackend as startDrainBackend, who } from '../helpers/balancer';
import { removeTempDir, tempDir, within } from '../helpers/clients';
import { closed, rawConnect, replyOf, tlsConnect } from '../helpers/edge-clients';
import { eventually } from '../helpers/eventually';

const haproxy = findBinary('haproxy', 'SOCKSERVE_HAPROXY', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']);
const inCi = process.env.CI === 'true';
if (!haproxy) announceMissing('HAProxy', 'test/integration/haproxy.spec.ts', 'apt-get install -y haproxy', 'SOCKSERVE_HAPROXY');

/** Every process this file starts, killed in afterEach even when its start timed out. */
const children: ChildProcess[] = [];
/** The clients' load loop runs while this is true; afterEach ends it even when the test failed midway. */
let running = false;
const startBackend = (port: number, delay: number, opts: { tls?: boolean } = {}) => startDrainBackend(port, delay, children, opts);

/** HAProxy's view of its servers: `{ s1: 'UP', s2: 'DOWN' … }`, from `show stat` on its admin socket. */
function serverStates(socketPath: string): Promise<Record<string, string>> {
  return within(5000, 'haproxy stats', new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let text = '';
    s.on('data', (d) => (text += d));
    s.once('error', reject);
    s.once('connect', () => s.write('show stat\n'));
    s.once('end', () => {
      const states: Record<string, string> = {};
      for (const line of text.split('\n')) {
        const f = line.split(',');
        if (f[0] === 'be' && f[1] !== 'BACKEND') states[f[1]] = f[17];
      }
      resolve(states);
    });
  }));
}

/** Polls HAProxy's view every 100 ms until it is `want`; rejects after `ms`, and the polling stops then too (jest can exit). */
async function untilStates(socketPath: string, want: Record<string, string>, ms = 20000): Promise<void> {
  const deadline = Date.now() + ms;
  let states: Record<string, string> = {};
  for (;;) {
    // HAProxy creates the socket file when it binds and listens a moment later (ECONNREFUSED in between).
    states = await serverStates(socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return {} as Record<string, string>;
      throw err;
    });
    if (Object.entries(want).every(([k, v]) => states[k]?.startsWith(v))) return;
    if (Date.now() >= deadline) throw new Error(`haproxy to see ${JSON.stringify(want)}: not within ${ms} ms (it sees ${JSON.stringify(states)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const maybe = haproxy || inCi ? test : test.skip;

/**
 * HAProxy run with the configuration `config(adminSocket)` written in `dir`, once both servers are UP; `out()` is
 * all it printed (its log: how each session ended). Added to `children`.
 */
async function startHaproxy(dir: string, config: (admin: string) => string): Promise<{ admin: string; out: () => string }> {
  const admin = path.join(dir, 'haproxy.sock');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config(admin));
  const lb = spawn(haproxy!, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(lb);
  let out = '';
  lb.stdout!.on('data', (d) => (out += d));
  lb.stderr!.on('data', (d) => (out += d));
  await eventually("haproxy's admin socket", () => fs.existsSync(admin), 10000, 50).catch((err: Error) => {
    throw new Error(`${err.message}: ${out}`);
  });
  await untilStates(admin, { s1: 'UP', s2: 'UP' });
  return { admin, out: () => out };
}

describe('behind real HAProxy (send-proxy-v2, health checks, retries and redispatch)', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    running = false;
    await killAll(children);
    removeTempDir(dir);
  });

  maybe('clients keep their address, a backend drains on SIGTERM with zero failed requests, restarts and takes traffic again', async () => {
    if (!haproxy) throw new Error('HAProxy is not installed, and CI=true: install it (apt-get install -y haproxy) or set SOCKSERVE_HAPROXY');
    const [front, p1, p2] = [await freePort(), await freePort(), await freePort()];
    const drainDelay = 2; // longer than HAProxy needs to mark a server down: inter 200ms × fall 2
    const [a, b] = await Promise.all([startBackend(p1, drainDelay), startBackend(p2, drainDelay)]);

    const { admin, out: lbOut } = await startHaproxy(dir, (admin) => haproxyConfig(front, p1, p2, admin));

    // 200 clients from four source addresses, each echoed with its own address; both backends serve.
    const sources = SOURCES;
    const replies = await fromSources(front, 200);
    expect(replies.filter((r) => r.host !== r.from)).toEqual([]);
    expect(new Set(replies.map((r) => r.pid))).toEqual(new Set([a.child.pid, b.child.pid]));

    // 50 clients keep sending requests (one connection each) while backend 1 is told to stop.
    let failures: string[] = [];
    const pidsSeen = new Set<number>();
    running = true;
    let phase = 'before';
    const t0 = Date.now();
    const load = Array.from({ length: 50 }, async (_, k) => {
      while (running) {
        try {
          const r = await who(front, sources[k % sources.length]);
          pidsSeen.add(r.pid);
          if (r.host !== sources[k % sources.length]) failures.push(`wrong address ${r.host}`);
        } catch (err) {
          failures.push(`${phase} ${Date.now() - t0} ${(err as Error).message}`);
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    a.child.kill('SIGTERM');
    phase = `sigterm@${Date.now() - t0}`;
    await untilStates(admin, { s1: 'DOWN', s2: 'UP' });
    phase = `down@${Date.now() - t0}`;
    expect(await within(20000, 'backend 1 to drain and exit', a.exited)).toBe(0);
    expect(a.out()).toContain('drained');
    pidsSeen.clear();
    await new Promise((r) => setTimeout(r, 300));
    expect([...pidsSeen]).toEqual([b.child.pid]);

    // It starts again on the same port; HAProxy's checks bring it back, and it takes traffic again.
    phase = `exited@${Date.now() - t0}`;
    const a2 = await startBackend(p1, drainDelay);
    phase = `restarted@${Date.now() - t0}`;
    await untilStates(admin, { s1: 'UP', s2: 'UP' });
    await eventually('traffic to reach the restarted backend', () => pidsSeen.has(a2.child.pid!), 10000, 50);
    running = false;
    await Promise.all(load);
    // On failure, HAProxy's log says how each failed session ended (tcplog termination flags).
    if (failures.length > 0) throw new Error(`${failures.length} failed requests:\n${failures.join('\n')}\nHAProxy:\n${lbOut()}\nbackend 1:\n${a.out()}`);
    failures = [];

    // A client that skips the balancer and sends no header is refused with a ProxyProtocolError.
    const direct = await rawConnect({ host: '127.0.0.1', port: p2 }, 'who\n');
    expect((await closed(direct)).data).toBe('');
    await eventually('the ProxyProtocolError line', () => b.out().includes('ProxyProtocolError'), 5000, 20);
    expect(b.out()).toMatch(/^ProxyProtocolError from 127\.0\.0\.1:\d+: PROXY protocol: .* sent no PROXY header/m);
    // HAProxy's health checks (a LOCAL header, a ping, its echo) were quiet: that line is the only one.
    expect(b.out().trim().split('\n').filter((l) => !l.startsWith('listening'))).toHaveLength(1);
    expect(a.out()).toMatch(/drained .*"errors":0,.*"proxyErrors":0/);
  }, 240000);

  maybe("TLS backends, checked with check-ssl as docs/production.md says: the checks pass quietly, and TLS clients through HAProxy keep their address", async () => {
    if (!haproxy) throw new Error('HAProxy is not installed, and CI=true: install it (apt-get install -y haproxy) or set SOCKSERVE_HAPROXY');
    const [front, p1, p2] = [await freePort(), await freePort(), await freePort()];
    const [a, b] = await Promise.all([startBackend(p1, 0, { tls: true }), startBackend(p2, 0, { tls: true })]);
    const { admin } = await startHaproxy(dir, (admin) => haproxyConfig(front, p1, p2, admin, { checkSsl: true }));
    // HAProxy passes the clients' TLS through (mode tcp): each handshake is the backend's, after the PROXY header.
    const replies = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const from = SOURCES[i % SOURCES.length];
      const raw = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ port: front, host: '127.0.0.1', localAddress: from }, () => resolve(s));
        s.once('error', reject);
      });
      const secure = await tlsConnect({ host: '127.0.0.1', port: front }, { raw, anonymous: true });
      const reply = replyOf(secure);
      secure.end('who\n');
      const [host, pid] = (await reply).trim().split(' ');
      return { from, host, pid: Number(pid) };
    }));
    expect(replies.filter((r) => r.host !== r.from)).toEqual([]);
    expect(new Set(replies.map((r) => r.pid))).toEqual(new Set([a.child.pid, b.child.pid]));
    // The checks (a LOCAL header, a TLS handshake, a ping, its echo) left no line: no TlsHandshakeError, nothing.
    await new Promise((r) => setTimeout(r, 500)); // a few more checks (every 200 ms), each passed: both servers fully UP
    expect(await serverStates(admin)).toEqual({ s1: 'UP', s2: 'UP' });
    expect([a.out(), b.out()].map((out) => out.trim().split('\n').filter((l) => !l.startsWith('listening')))).toEqual([[], []]);
  }, 60000);
});

/**
 * The configuration docs/production.md shows, on test ports: send-proxy-v2 (checks too, as LOCAL), a check
 * that expects the echo of a ping (sockserve leaves LOCAL checks unanswered while it drains, so HAProxy
 * marks it down before it stops accepting), retries and redispatch.
 */
function haproxyConfig(front: number, p1: number, p2: number, admin: string, opts: { checkSsl?: boolean } = {}): string {
  return `global
    maxconn 2000
    log stdout format raw local0
    stats socket ${admin} mode 600 level admin

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch

frontend sockserve_in
    bind 127.0.0.1:${front}
    default_backend be

backend be
    balance roundrobin
    option tcp-check
    tcp-check connect default
    tcp-check send "ping\\n"
    tcp-check expect string ping
    timeout check 5s               # generous: a draining server fails the check at once, not by timeout
    default-server send-proxy-v2 check inter 200ms fall 2 rise 2${opts.checkSsl ? ' check-ssl verify none' : ''}
    server s1 127.0.0.1:${p1}
    server s2 127.0.0.1:${p2}
`;
}
