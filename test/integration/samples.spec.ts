import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');

/** A sample's bound: ts-node plus worker start-up, on a shared two-core machine that may be very busy. */
const SAMPLE_MS = 60000;

/** Runs a sample from its TypeScript source, as `npm start` does; bounded by SAMPLE_MS. */
function runSample(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'samples', file)],
      { cwd: root, timeout: SAMPLE_MS }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
  });
}

/** Asserts that `expected` lines appear in `lines` in this order (other lines may interleave). */
function expectInOrder(lines: string[], expected: RegExp[]): void {
  let at = 0;
  for (const want of expected) {
    const found = lines.findIndex((l, i) => i >= at && want.test(l));
    if (found < 0) throw new Error(`expected a line matching ${want} after line ${at}:\n${lines.join('\n')}`);
    at = found + 1;
  }
}

jest.setTimeout(60000); // each test starts ts-node in a child process: seconds of start-up on a busy machine

describe('samples', () => {
  test('logging-echo prints the Python page call order and exits 0', async () => {
    const { code, stdout, stderr } = await runSample('logging-echo.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expectInOrder(lines, [
      /^EchoServer: __init__$/, /^EchoServer: server_activate$/, /^EchoServer: waiting for request$/,
      /^EchoServer: Handling requests, press <Ctrl-C> to quit$/,
      /^EchoServer: handle_request$/, /^client: connecting to server$/,
      /^EchoServer: verify_request\(<socket fd=\d+>, \('127\.0\.0\.1', \d+\)\)$/,
      /^EchoServer: process_request\(/, /^EchoServer: finish_request\(/,
      /^EchoRequestHandler: __init__$/, /^EchoRequestHandler: setup$/, /^EchoRequestHandler: handle$/,
      /^EchoRequestHandler: recv\(\)->"Hello, world"$/, /^EchoRequestHandler: finish$/,
      /^EchoServer: close_request\(<socket fd=\d+>\)$/, /^EchoServer: handle_request$/, // the next loop turn
    ]);
    expectInOrder(lines, [/^client: Server on 127\.0\.0\.1:\d+$/, /^client: creating socket$/, /^client: connecting to server$/,
      /^client: sending data: "Hello, world"$/, /^client: waiting for response$/, /^client: response from server: "Hello, world"$/,
      /^client: closing socket$/, /^client: done$/]);
    // Every line of the Python page's program, each once, except handle_request: once per loop turn.
    expect(lines.filter((l) => l === 'EchoServer: handle_request')).toHaveLength(2);
    expect(lines).toHaveLength(23);
  }, SAMPLE_MS + 10000);

  test('every sample imports sockserve by its package name, as an application does', () => {
    for (const file of fs.readdirSync(path.join(root, 'samples')).filter((f) => f.endsWith('.ts'))) {
      const source = fs.readFileSync(path.join(root, 'samples', file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]).filter((m) => !m.startsWith('node:') && m !== 'reflect-metadata');
      expect({ file, imports: imports.filter((m) => m !== 'sockserve' && m !== 'sockserve/classic') }).toEqual({ file, imports: [] });
      expect(imports.length).toBeGreaterThan(0);
    }
  });

  test('echo-simple sends and receives Hello, world', async () => {
    const { code, stdout, stderr } = await runSample('echo-simple.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe('Sending : "Hello, world"\nReceived: "Hello, world"\n');
  }, SAMPLE_MS + 10000);

  test('threaded prints the server loop thread and a reply from a worker thread', async () => {
    const { code, stdout, stderr } = await runSample('threaded.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Server loop running in thread: 0\nReceived: "Thread-[1-9]\d*: Hello, world"\n$/);
  }, SAMPLE_MS + 10000);

  test('forking prints the server process and a reply from a child process', async () => {
    const { code, stdout, stderr } = await runSample('forking.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const m = /^Server loop running in process: (\d+)\nReceived: "(\d+): Hello, world"\n$/.exec(stdout);
    expect(m).not.toBeNull();
    expect(m![2]).not.toBe(m![1]);
  }, SAMPLE_MS + 10000);
});
