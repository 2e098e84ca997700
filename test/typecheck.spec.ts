/**
 * The project's types, checked once: jest compiles each test file on its own, without checking types
 * (tsconfig.jest.json), so a type error in src/, test/, samples/ or bench/ fails here, as `tsc` reports it.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { testOnce } from './helpers/node-lines';

const root = path.join(__dirname, '..');

// Once per CI run: the types do not depend on the Node line (helpers/node-lines.ts).
testOnce('src, test, samples and bench type-check (tsc --noEmit -p tsconfig.json)', async () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.json'], { cwd: root, timeout: 150000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, output: `${stdout}${stderr}${err?.killed ? '\n(killed after 150 s)' : ''}` });
    });
  });
  expect(result.output).toBe('');
  expect(result.code).toBe(0);
}, 160000);
