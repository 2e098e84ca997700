/**
 * The @Threading guard against node-unix-socket (addon-guard.ts) refuses that addon only. It matched
 * /node-unix-socket/ anywhere in the addon's path, so in a project whose directory has that name in it (a clone
 * of node-unix-socket-bridge, say) every native addon a handler module loads was refused in the worker threads,
 * and bootstrap() rejected, blaming node-unix-socket.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootstrap, Server } from '../../src';
import { servingInTests } from '../helpers/serving';
import { otherAddonFile, OtherAddonHandler } from '../fixtures/other-addon-handlers';
import { removeTempDir, streamExchange, tempDir, within } from '../helpers/clients';

/** A N-API addon other than node-unix-socket, installed beside it (a dependency of the tooling), if any. */
function anotherAddon(): string | undefined {
  for (const candidate of ['@parcel/watcher-linux-x64-glibc/watcher.node', '@parcel/watcher-darwin-arm64/watcher.node', '@parcel/watcher-darwin-x64/watcher.node']) {
    try {
      return require.resolve(candidate);
    } catch {
      // not on this platform
    }
  }
  return undefined;
}

const addon = anotherAddon();
(addon ? describe : describe.skip)('@Threading, a handler module that loads another native addon', () => {
  const serve = servingInTests<Server>();
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => {
    fs.rmSync(otherAddonFile, { force: true });
    removeTempDir(dir);
  });

  test('from a directory whose name contains node-unix-socket: it loads in the workers, and the server serves', async () => {
    const project = path.join(dir, 'node-unix-socket-bridge');
    fs.mkdirSync(project);
    const copy = path.join(project, path.basename(addon!));
    fs.copyFileSync(addon!, copy);
    fs.writeFileSync(otherAddonFile, copy);
    const server = serve(await within(20000, 'bootstrap', bootstrap(OtherAddonHandler, { logger: { error: () => undefined, warn: () => undefined, info: () => undefined } })));
    expect((await streamExchange(server.serverAddress as { host: string; port: number }, 'hello\n', { halfClose: true, ms: 15000 })).toString()).toBe('hello\n');
  }, 30000);
});
