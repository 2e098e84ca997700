import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { readToEnd, within } from '../helpers/clients';
import { TS_LOADER } from '../helpers/fixture-process';

const root = path.join(__dirname, '..', '..');

describe('accepting without file descriptors (EMFILE)', () => {
  test.each([
    { mode: '@Concurrent', arg: 'concurrent', name: 'EmfileEcho', workers: 0 },
    { mode: '@Threading', arg: 'threading', name: 'EmfileThreads', workers: 1 },
    { mode: '@Forking', arg: 'forking', name: 'EmfileChildren', workers: 1 },
  ])('in $mode mode, dropped connections are counted in acceptErrors and logged once per burst, and serving resumes', async ({ arg, name, workers }) => {
    const script = `ulimit -n 64 && exec "$0" ${TS_LOADER.join(' ')} test/fixtures/emfile-accept.ts ${arg}`;
    // The server's own accept (its AcceptWatch counts and logs): workers that accept themselves
    // (docs/concurrency.md) are turned off here; a child's own shortage is the test below.
    const env = { ...process.env, SOCKSERVE_WORKER_ACCEPT: '0' };
    const child = spawn('sh', ['-c', script, process.execPath], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      // the fixture and sockserve load from TypeScript first: slow on a busy machine, hence the generous bound
      const ready = (async () => {
        while (!/^ready \d+$/m.test(out)) await new Promise((r) => setTimeout(r, 20));
      })();
      const early = exited.then((code) => { throw new Error(`the server exited (${code}) before it was ready:\n${out}`); });
      await within(60000, 'the server to hold every descriptor', Promise.race([ready, early]));
      const port = Number(/^ready (\d+)$/m.exec(out)![1]);
      const dropped = await Promise.all([1, 2, 3].map(async () => {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        try {
          return (await within(10000, 'a dropped connection to close', readToEnd(socket).catch(() => Buffer.alloc(0)))).toString();
        } finally {
          socket.destroy();
        }
      }));
      expect(dropped).toEqual(['', '', '']); // accepted by libuv and closed at once: nothing served
      child.stdin!.write('go\n');
      const code = await within(30000, 'the server to finish', exited);
      // A server that failed (a bound of its own passed) printed why but none of its log lines: say what it printed.
      if (code !== 0) throw new Error(`the server exited with ${code}:\n${out}`);
      const lines = out.split('\n');
      expect(lines.filter((l) => l.startsWith('log error'))).toEqual([
        expect.stringMatching(new RegExp(`^log error ${name}: accepting on 127\\.0\\.0\\.1:\\d+ fails \\(EMFILE: out of file descriptors\\)`)),
      ]);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^log info ${name}: accepting on 127\\.0\\.0\\.1:\\d+ again after \\d+\\.\\d s out of file descriptors \\(\\d+ accept failures counted\\)\\.$`)));
      expect(out).toMatch(/^served again$/m);
      const stats = JSON.parse(/^stats (.*)$/m.exec(out)![1]) as { acceptErrors: number; accepted: number; errors: number; workers: number };
      expect(stats.acceptErrors).toBeGreaterThanOrEqual(2);
      expect(stats.accepted).toBe(1); // the dropped connections never reached the server
      expect(stats).toMatchObject({ errors: 0, workers }); // the server's process accepts: workers are untouched
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 150000); // a child loading TypeScript on a busy machine: each of its steps is bounded above
});

describe('a child that accepts connections itself runs out of file descriptors (EMFILE)', () => {
  test('its dropped connections are counted in the server\'s acceptErrors and logged once, the child lives on, and it serves again once descriptors are free', async () => {
    const script = `ulimit -n 128 && exec "$0" ${TS_LOADER.join(' ')} test/fixtures/emfile-child-accept.ts`;
    const child = spawn('sh', ['-c', script, process.execPath], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const code = await within(90000, 'the server to finish', new Promise((r) => child.once('exit', r)));
      expect(out).toMatch(/^dropped \["","",""\]$/m); // accepted by libuv in the child and closed at once
      const lines = out.split('\n');
      expect(lines.filter((l) => l.startsWith('log error'))).toEqual([
        expect.stringMatching(/^log error EmfileAcceptingChild: accepting on 127\.0\.0\.1:\d+ fails \(EMFILE: out of file descriptors\)/),
      ]);
      expect(out).toMatch(/^served again$/m);
      const stats = JSON.parse(/^stats (.*)$/m.exec(out)![1]) as { acceptErrors: number; accepted: number; restarts: number };
      expect(stats.acceptErrors).toBeGreaterThanOrEqual(1);
      expect(stats).toMatchObject({ accepted: 3, restarts: 0 }); // warm, hog, again: the dropped ones never reached the server
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 150000); // a child loading TypeScript on a busy machine
});
