/**
 * The Unix path lock (`<path>.sockserve-lock`) when something other than sockserve's own lock file is at its name: a
 * directory. A lock that names no process is taken over once it is a second old; that takeover unlinked whatever was
 * there, and a directory made bootstrap() reject with a bare EISDIR instead of the AddressInUseError that names the
 * lock and the fix (hostile run).
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInUseError, bootstrap, Handle, StreamRequest, UnixStreamServer } from '../../src';

@UnixStreamServer('/unused')
class OnLockedPath {
  @Handle() async handle(req: StreamRequest) {
    await req.wfile.write('x\n');
  }
}

describe('a directory where the Unix path lock goes', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-oddlock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('is reported as a held lock (AddressInUseError naming it), not a bare EISDIR, and is left alone', async () => {
    const p = path.join(dir, 's.sock');
    // A stale socket file: its server killed while it listened.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
    expect(fs.lstatSync(p).isSocket()).toBe(true);
    const lock = `${p}.sockserve-lock`;
    fs.mkdirSync(lock);
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(lock, old, old);
    const started = bootstrap(OnLockedPath, { transport: { path: p }, logger: { info: () => undefined, error: () => undefined } });
    const err = await started.then(async (s) => (await s.close(), undefined), (e: unknown) => e);
    expect(err).toBeInstanceOf(AddressInUseError);
    expect((err as Error).message).toContain(lock);
    expect(fs.statSync(lock).isDirectory()).toBe(true);
  }, 20000);
});
