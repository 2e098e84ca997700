import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { forkDir } from '../fixtures/forked-handlers';
import { fixtureDir } from '../fixtures/threaded-handlers';
import { removeTempDir, tempDir, within } from './clients';

/**
 * The set-up of the Unix datagram pool specs: the fixture directories the pools' sockets live in (made before,
 * removed after the file), a temporary directory per test for the clients' sockets (`dir()`), and the client
 * processes a test starts (`children`), each SIGKILLed and waited for after its test (`what` names it).
 */
export function unixDatagramSetup(what: string): { dir: () => string; children: ChildProcess[] } {
  let dir = '';
  const children: ChildProcess[] = [];
  beforeAll(() => {
    fs.mkdirSync(fixtureDir, { recursive: true });
    fs.mkdirSync(forkDir, { recursive: true });
  });
  afterAll(() => {
    fs.rmSync(fixtureDir, { recursive: true, force: true });
    fs.rmSync(forkDir, { recursive: true, force: true });
  });
  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await within(5000, `the ${what} to exit`, gone);
    }
    removeTempDir(dir);
  });
  return { dir: () => dir, children };
}

/**
 * Runs python3 with `args` to its end, within `ms` (`what` names it in the timeout's error), the process put in
 * `children` to be killed after the test; resolves with what it printed, stderr included, and its exit code.
 */
export async function runPython(children: ChildProcess[], args: string[], ms: number, what: string): Promise<{ out: string; code: number | null }> {
  const child = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (out += chunk));
  const code = await within(ms, what, new Promise<number | null>((r) => child.once('exit', r)));
  return { out, code };
}
