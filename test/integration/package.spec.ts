import { execFile } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const run = (cmd: string, args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(cmd, args, { cwd: root, timeout: 120000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })));

describe('the published package', () => {
  // dist/ is built by jest's globalSetup (scripts/build-if-stale.js), never here: other spec files load it meanwhile.
  test('sockserve and sockserve/classic resolve to the built JavaScript through exports', async () => {
    const probe = await run(process.execPath, ['-e', `
      require('reflect-metadata');
      const main = require('sockserve'); const classic = require('sockserve/classic');
      console.log(require.resolve('sockserve'), require.resolve('sockserve/classic'));
      console.log(typeof main.bootstrap, typeof main.TcpServer, typeof main.Injectable, typeof classic.TCPServer, typeof classic.DatagramRequestHandler);`]);
    expect(probe.stderr).toBe('');
    const [paths, types] = probe.stdout.trim().split('\n');
    expect(paths).toBe(`${path.join(root, 'dist/index.js')} ${path.join(root, 'dist/classic.js')}`);
    expect(types).toBe('function function function function function');
  });

  test('a plain-JavaScript program on the compiled package runs a threaded handler without any TypeScript loader', async () => {
    const out = await run(process.execPath, [path.join(root, 'test/fixtures/compiled-threaded.js')]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^js-thread-[1-9]\d*: hi\n$/);
  });

  test('sockserve/testing resolves through exports to the compiled TestServer, with its type declarations', async () => {
    // dist/ is built by jest's globalSetup, as for the tests above
    const probe = await run(process.execPath, ['-e', `
      require('reflect-metadata');
      const testing = require('sockserve/testing');
      console.log(require.resolve('sockserve/testing'), typeof testing.TestServer.create);`]);
    expect(probe.stderr).toBe('');
    expect(probe.stdout.trim()).toBe(`${path.join(root, 'dist/testing.js')} function`);
    const pkg = require(path.join(root, 'package.json'));
    expect(pkg.exports['./testing']).toEqual({ types: './dist/testing.d.ts', default: './dist/testing.js' });
    expect(require('node:fs').existsSync(path.join(root, 'dist/testing.d.ts'))).toBe(true);
  });
});
