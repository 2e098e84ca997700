/**
 * What the real-load-balancer tests (haproxy.spec.ts, nginx.spec.ts) share: fixed free ports, backends
 * (test/fixtures/drain-server.ts in a child process, PROXY protocol required), a request through the
 * balancer from a chosen source address, and the loud notice when the balancer is not installed.
 */
import { ChildProcess, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { within } from './clients';
import { FixtureProcess, startFixture } from './fixture-process';

/** The binary: `$env` if set, else the first of `paths` that exists, else `command -v name`. */
export function findBinary(name: string, env: string, paths: string[]): string | undefined {
  for (const c of [process.env[env], ...paths]) if (c && fs.existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** When the balancer is missing: a banner, and the test FAILS under CI=true (skipped elsewhere). Never a silent pass. */
export function announceMissing(what: string, spec: string, install: string, env: string): void {
  const banner = '!'.repeat(100);
  console.warn(`${banner}\n${what} IS NOT INSTALLED: the real-load-balancer test (${spec}) ${process.env.CI === 'true' ? 'FAILS' : 'is SKIPPED'}.\n` +
    `Install it (${install}) or point ${env} at the binary.\n${banner}`);
}

export { freePort } from './ports';

export type Backend = FixtureProcess;

/** test/fixtures/drain-server.ts on `port`, PROXY protocol required, with a drainDelay of `delay` seconds (and TLS with `tls`); added to `children`. */
export function startBackend(port: number, delay: number, children: ChildProcess[], opts: { tls?: boolean } = {}): Promise<Backend> {
  return startFixture('drain-server.ts', { env: { DRAIN_PORT: String(port), DRAIN_PROXY: '1', DRAIN_DELAY: String(delay), ...(opts.tls ? { DRAIN_TLS: '1' } : {}) }, children });
}

/**
 * Kills (SIGKILL) and reaps every child still running, and closes our ends of its pipes: a grandchild
 * that still holds them (nginx's worker) must not keep the test process alive.
 */
export async function killAll(children: ChildProcess[]): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
    c.stdout?.destroy();
    c.stderr?.destroy();
  }
}

/**
 * One request through the balancer: connect from `from`, send `who`, read `<client host> <backend pid>`.
 * `halfClose`: the request goes with the client's FIN (`end('who\n')`), as the README's client sends it.
 */
export function who(port: number, from: string, opts: { halfClose?: boolean } = {}): Promise<{ host: string; pid: number }> {
  return within(10000, 'a request through the balancer', new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let got = '';
    s.once('error', reject);
    s.once('connect', () => (opts.halfClose ? s.end('who\n') : s.write('who\n')));
    s.on('data', (d) => {
      got += d.toString();
      if (!got.endsWith('\n')) return;
      s.destroy();
      const [host, pid] = got.trim().split(' ');
      resolve({ host, pid: Number(pid) });
    });
    s.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
  }));
}

/** The loopback source addresses the balancer tests connect from. */
export const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

/** `n` requests through the balancer on `port`, 25 at a time, from SOURCES in turn: each with the address it came from. */
export async function fromSources(port: number, n: number): Promise<Array<{ from: string; host: string; pid: number }>> {
  const replies = [];
  for (let i = 0; i < n; i += 25) {
    replies.push(...(await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, j) => {
      const from = SOURCES[(i + j) % SOURCES.length];
      return who(port, from).then((r) => ({ from, ...r }));
    }))));
  }
  return replies;
}
