import { execFile } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');

/** Runs a sample from its TypeScript source, as `npm start` does; bounded. */
function runSample(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'samples', file)],
      { cwd: root, timeout: 30000 }, (err, stdout, stderr) => {
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
    expectInOrder(stdout.trim().split('\n'), [
      /^EchoServer: __init__$/, /^EchoServer: server_activate$/, /^EchoServer: waiting for request$/,
      /^EchoServer: handle_request$/, /^client: connecting to server$/,
      /^EchoServer: verify_request\(<socket fd=\d+>, \('127\.0\.0\.1', \d+\)\)$/,
      /^EchoServer: process_request\(/, /^EchoServer: finish_request\(/,
      /^EchoRequestHandler: __init__$/, /^EchoRequestHandler: setup$/, /^EchoRequestHandler: handle$/,
      /^EchoRequestHandler: recv\(\)->"Hello, world"$/, /^EchoRequestHandler: finish$/,
      /^EchoServer: close_request\(<socket fd=\d+>\)$/, /^client: response from server: "Hello, world"$/, /^client: done$/,
    ]);
  });

  test('echo-simple sends and receives Hello, world', async () => {
    const { code, stdout, stderr } = await runSample('echo-simple.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe('Sending : "Hello, world"\nReceived: "Hello, world"\n');
  });

  test('threaded prints the server loop thread and a reply from a worker thread', async () => {
    const { code, stdout, stderr } = await runSample('threaded.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Server loop running in thread: 0\nReceived: "Thread-[1-9]\d*: Hello, world"\n$/);
  });

  test('forking prints the server process and a reply from a child process', async () => {
    const { code, stdout, stderr } = await runSample('forking.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const m = /^Server loop running in process: (\d+)\nReceived: "(\d+): Hello, world"\n$/.exec(stdout);
    expect(m).not.toBeNull();
    expect(m![2]).not.toBe(m![1]);
  });
});
