import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { within } from '../helpers/clients';
import { rawConnect, readLine } from '../helpers/edge-clients';

const root = path.join(__dirname, '..', '..');

/** Starts test/fixtures/drain-server.ts with `env`; resolves with the child, its port and its output so far. */
async function startDrainServer(env: Record<string, string>): Promise<{ child: ChildProcess; port: number; out: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'test/fixtures/drain-server.ts')], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await within(20000, 'server start', new Promise<void>((resolve) => child.stdout!.on('data', () => out.includes('listening') && resolve())));
  return { child, port: Number(/listening (\d+)/.exec(out)![1]), out: () => out, exited };
}

/**
 * One client: 'refused' (ECONNREFUSED), 'served' (its line echoed), or 'reset' (accepted, then closed or
 * reset without a reply: what a load balancer cannot retry elsewhere).
 */
function probe(port: number): Promise<'refused' | 'served' | 'reset'> {
  return within(10000, 'a probe', new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.once('connect', () => s.write('probe\n'));
    s.on('data', (d) => {
      got += d.toString();
      if (got === 'probe\n') {
        s.destroy();
        resolve('served');
      }
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'reset'));
    s.once('close', () => resolve('reset'));
  }));
}

/**
 * Clients are served, then refused. The one exception API.md §6 names: a client that completes its
 * handshake in the kernel's accept queue at the instant the listening socket closes is reset by the
 * kernel; that can only be the last probe before the refusals.
 */
function expectServedThenRefused(outcomes: string[]): void {
  expect(outcomes.join(' ')).toMatch(/^(served )*(reset )?refused$/);
}

/** Probes every 50 ms until one is refused; returns every outcome. */
async function probeUntilRefused(port: number): Promise<string[]> {
  const seen: string[] = [];
  while (seen[seen.length - 1] !== 'refused') {
    seen.push(await probe(port));
    if (seen.length > 400) throw new Error(`never refused: ${seen.join(' ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

describe('SIGTERM with handleSignals and drainDelay', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  test('keeps accepting for drainDelay, then refuses new clients (ECONNREFUSED) while the requests in flight drain, and exits 0', async () => {
    const server = await startDrainServer({ DRAIN_DELAY: '1', DRAIN_SLOW_MS: '3000' });
    child = server.child;
    const inFlight = await rawConnect({ host: '127.0.0.1', port: server.port }, 'slow in flight\n');
    const reply = readLine(inFlight, 15000);
    await new Promise((r) => setTimeout(r, 100)); // the handler is now sleeping
    child.kill('SIGTERM');
    // During the delay every client is served; then they are refused; none is accepted and then reset.
    const outcomes = await probeUntilRefused(server.port);
    expect(outcomes[0]).toBe('served');
    expectServedThenRefused(outcomes);
    expect(await reply).toBe('slow in flight\n');
    inFlight.end();
    expect(await within(15000, 'exit', server.exited)).toBe(0);
    expect(server.out()).toContain('drained');
  }, 40000);

  test('without drainDelay new clients are refused at once after SIGTERM', async () => {
    const server = await startDrainServer({ DRAIN_SLOW_MS: '3000' });
    child = server.child;
    const inFlight = await rawConnect({ host: '127.0.0.1', port: server.port }, 'slow in flight\n');
    const reply = readLine(inFlight, 15000);
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    expectServedThenRefused(await probeUntilRefused(server.port));
    expect(await reply).toBe('slow in flight\n');
    inFlight.end();
    expect(await within(15000, 'exit', server.exited)).toBe(0);
  }, 40000);
});
