import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { bootstrap, Handle, Server, StreamRequest, UnixStreamServer } from '../../src';
import { removeTempDir, tempDir } from '../helpers/clients';

/**
 * `mode` is given to the socket file by binding it under a matching umask (unix-path.ts bindingWithMode). The
 * umask is the whole process's: a file another thread creates while the bind runs (a worker thread, libuv's pool
 * running an fs call) is created under it too. With `mode: 0o666` the umask was 0o111 for that moment, so such a
 * file came out world-writable (0o666 under the process's 0o022). Here a file is created inside the bind, as
 * another thread's would be at that moment: it must be no wider than the process's own umask allows.
 */
describe('@UnixStreamServer({ mode }) and the process-wide umask', () => {
  let dir: string;
  let server: Server | undefined;
  let umask: number;
  let listen: jest.SpyInstance | undefined;
  beforeEach(() => {
    dir = tempDir();
    umask = process.umask(0o022);
  });
  afterEach(async () => {
    listen?.mockRestore();
    listen = undefined;
    process.umask(umask);
    await server?.close();
    server = undefined;
    removeTempDir(dir);
  });

  test('a file created while the socket is bound gets no bit the process umask removes; the socket gets its mode', async () => {
    @UnixStreamServer({ path: '/unused', mode: 0o666 })
    class Open { @Handle() async h(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); } }
    const probe = path.join(dir, 'other-thread.log');
    const original = net.Server.prototype.listen;
    listen = jest.spyOn(net.Server.prototype, 'listen').mockImplementation(function (this: net.Server, ...args: unknown[]) {
      if (!fs.existsSync(probe)) fs.writeFileSync(probe, '', { mode: 0o666 }); // another thread, at this moment
      return (original as (...a: unknown[]) => net.Server).apply(this, args);
    });
    const file = path.join(dir, 'o.sock');
    server = await bootstrap(Open, { transport: { path: file } });
    expect((fs.statSync(probe).mode & 0o777).toString(8)).toBe('644');
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('666');
  });
});
