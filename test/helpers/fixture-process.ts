import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { within } from './clients';

const root = path.join(__dirname, '..', '..');

/**
 * Node's arguments that load TypeScript in a fixture's process: sockserve's own loader (ts-register.js, the one
 * its workers get), which transpiles each file once and keeps it in a disk cache. ts-node (transpile-only) loaded
 * the TypeScript compiler and transpiled every file again in each process: 4-6 s of CPU per process, a tenth of
 * the suite's CPU on two cores. The user's way (ts-node, `npm start`) is tested by the samples and the packed
 * tarball's tests, which keep it.
 */
export const TS_LOADER = ['-r', path.join(root, 'src/concurrency/remote/ts-register.js')];

/** A fixture server running in a process of its own (see startFixture). */
export interface FixtureProcess {
  child: ChildProcess;
  /** The port it printed (`listening <port>`). */
  port: number;
  /** Everything it printed so far, stdout and stderr. */
  out: () => string;
  /** Resolves with its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Resolves once its output contains `text` (at once if it already does); unbounded: wrap it in within(). */
  seen: (text: string) => Promise<void>;
}

export interface FixtureOptions {
  /** Added to the test process's environment. */
  env?: Record<string, string>;
  /** Lead a process group of its own (its children in it), so that a signal can reach the whole group. */
  detached?: boolean;
  /** Every child started is pushed here, before it is known to have started: the caller's afterEach kills them all. */
  children?: ChildProcess[];
  /** How long start-up may take, in milliseconds (default 60 s: a busy machine). */
  startMs?: number;
}

/**
 * Starts `test/fixtures/<file>` with `TS_LOADER` and resolves once it has printed
 * `listening <port>`; rejects when it exits first or after `startMs`. The caller kills it (`children`).
 */
export async function startFixture(file: string, options: FixtureOptions = {}): Promise<FixtureProcess> {
  const child = spawn(process.execPath, [...TS_LOADER, path.join(root, 'test/fixtures', file)], {
    cwd: root,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  options.children?.push(child);
  let out = '';
  const watchers = new Set<() => void>();
  const heard = (d: Buffer) => {
    out += d;
    for (const check of [...watchers]) check();
  };
  child.stdout!.on('data', heard);
  child.stderr!.on('data', heard);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const seen = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!out.includes(text)) return;
        watchers.delete(check);
        resolve();
      };
      watchers.add(check);
      check();
    });
  const listening = /listening (\d+)/;
  await within(options.startMs ?? 60000, `${file} to start`, new Promise<void>((resolve, reject) => {
    const check = () => {
      if (!listening.test(out)) return;
      watchers.delete(check);
      resolve();
    };
    watchers.add(check);
    void exited.then((code) => reject(new Error(`${file} exited with ${code} before listening: ${out}`)));
  }));
  return { child, port: Number(listening.exec(out)![1]), out: () => out, exited, seen };
}

/**
 * Runs Node on `args` (a script and its arguments) to its end, at most `ms` milliseconds: its exit code (null when
 * a signal or the bound ended it), stdout and stderr.
 */
export function runNode(args: string[], ms = 60000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, args, { timeout: ms }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })),
  );
}
