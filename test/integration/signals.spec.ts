import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { connect, readToEnd, within } from '../helpers/clients';

const root = path.join(__dirname, '..', '..');

describe('bootstrap({ handleSignals: true })', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) {
      // a detached server leads its own process group: end the group, its children too
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
    child = undefined;
  });

  test('SIGTERM drains the request in flight, closes, and the process exits 0', async () => {
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'test/fixtures/signal-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await within(45000, 'server start', new Promise<void>((resolve) => child!.stdout!.on('data', () => out.includes('listening') && resolve())));
    const port = Number(/listening (\d+)/.exec(out)![1]);
    const socket = await connect({ host: '127.0.0.1', port });
    const reply = readToEnd(socket);
    socket.write('in flight\n');
    await new Promise((r) => setTimeout(r, 100)); // the handler is now sleeping
    child.kill('SIGTERM');
    expect((await within(5000, 'reply', reply)).toString()).toBe('in flight\n');
    expect(await within(5000, 'exit', exited)).toBe(0);
    expect(out).toContain('drained');
    socket.destroy();
  }, 60000); // a server process started through ts-node: slow on a busy machine

  test.each(['SIGTERM', 'SIGINT'])('%s to the whole process group (Ctrl-C, systemd, timeout) lets @Forking children finish their requests: every reply, exit 0', async (signal) => {
    // detached: the server leads a process group of its own, with its children in it
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'test/fixtures/group-signal-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const seen = (text: string) => new Promise<void>((resolve) => {
      const check = () => out.includes(text) && resolve();
      child!.stdout!.on('data', check);
      check();
    });
    await within(60000, 'server start', seen('listening'));
    const port = Number(/listening (\d+)/.exec(out)![1]);
    const sockets = await Promise.all([1, 2, 3].map(() => connect({ host: '127.0.0.1', port })));
    const replies = sockets.map((socket) => readToEnd(socket));
    sockets.forEach((socket, i) => socket.write(`request ${i}\n`));
    await within(20000, 'three requests in their handlers', Promise.all([0, 1, 2].map((i) => seen(`busy request ${i}`))));
    process.kill(-child.pid!, signal as NodeJS.Signals);
    const got = await within(10000, 'replies', Promise.all(replies));
    expect(got.map((b) => b.toString())).toEqual(['request 0\n', 'request 1\n', 'request 2\n']);
    expect(await within(10000, 'exit', exited)).toBe(0);
    expect(out).toContain('drained');
    sockets.forEach((socket) => socket.destroy());
  }, 90000); // a server and its children started through ts-node: slow on a busy machine
});
