/**
 * node-unix-socket in a worker thread aborts the process once that thread exits (hostile run: exit 134 when the
 * server closed). A handler module that requires it at its top loaded it in every @Threading worker: now the
 * worker refuses the native load, and bootstrap() rejects with the fix, the process unharmed.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { bootstrap, Server } from '../../src';
import { AddonLoadingHandler, DgramSocket } from '../fixtures/addon-loading-handlers';
import { removeTempDir, tempDir, within } from '../helpers/clients';

describe('a handler module that loads node-unix-socket, with @Threading', () => {
  let dir: string;
  let server: Server | undefined;
  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    await server?.close();
    server = undefined;
    removeTempDir(dir);
  });

  test('bootstrap() rejects with the fix (the addon is refused in the worker, where it aborted the process later)', async () => {
    const started = bootstrap(AddonLoadingHandler, { transport: { path: path.join(dir, 's.sock') }, logger: { error: () => undefined, warn: () => undefined, info: () => undefined } });
    await expect(within(20000, 'bootstrap', started.then((s) => (server = s)))).rejects.toThrow(/node-unix-socket was loaded in a worker thread.*Fix: require it only in the main thread/s);
    // The main thread's own use of the addon goes on: a socket opens and closes, and the process is still here.
    const socket = new DgramSocket();
    socket.bind(path.join(dir, 'client.sock'));
    socket.close();
  });
});
