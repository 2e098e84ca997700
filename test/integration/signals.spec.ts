import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { connect, readToEnd, within } from '../helpers/clients';

const root = path.join(__dirname, '..', '..');

describe('bootstrap({ handleSignals: true })', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  test('SIGTERM drains the request in flight, closes, and the process exits 0', async () => {
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'test/fixtures/signal-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await within(20000, 'server start', new Promise<void>((resolve) => child!.stdout!.on('data', () => out.includes('listening') && resolve())));
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
  });
});
