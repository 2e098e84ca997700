import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootstrap, DatagramRequest, Handle, Server, StreamRequest, UnixDatagramServer, UnixStreamServer } from '../../src';
import { PrivateForked } from '../fixtures/private-socket-handlers';
import { removeTempDir, tempDir } from '../helpers/clients';

/**
 * `@UnixStreamServer({ mode })` is the access control of a Unix socket (docs/production.md: its peers are
 * always trusted, the mode decides who may connect). The kernel checks the file's bits at connect() only, so
 * a file that exists for a moment with wider bits lets a peer the mode excludes connect, and that connection
 * is served later. Before: the socket was bound under the process's umask and chmod()ed after, several turns
 * of the event loop later; under umask 0 an unprivileged process polling connect() got in (5 runs of 6).
 */
describe('@UnixStreamServer({ mode }): the socket file never has wider permission bits than `mode`', () => {
  let dir: string;
  let server: Server | undefined;
  let umask: number;
  beforeEach(() => {
    dir = tempDir();
    umask = process.umask(0); // the widest: a file made under it is 0o777 until chmod()
  });
  afterEach(async () => {
    process.umask(umask);
    await server?.close();
    server = undefined;
    removeTempDir(dir);
  });

  /** Starts `Handler` at `file` while polling the path's permission bits every turn of the loop; returns every value seen. */
  async function bitsSeenWhileStarting(Handler: new (...args: never[]) => unknown, file: string): Promise<Set<number>> {
    const seen = new Set<number>();
    let polling = true;
    const poll = () => {
      try {
        seen.add(fs.statSync(file).mode & 0o777);
      } catch {
        // not there yet
      }
      if (polling) setImmediate(poll);
    };
    poll();
    try {
      server = await bootstrap(Handler, { transport: { path: file } });
    } finally {
      polling = false;
    }
    seen.add(fs.statSync(file).mode & 0o777);
    return seen;
  }

  test('serial: only 0o600 is ever seen at the path', async () => {
    @UnixStreamServer({ path: '/unused', mode: 0o600 })
    class Private { @Handle() async h(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); } }
    expect([...(await bitsSeenWhileStarting(Private, path.join(dir, 'p.sock')))]).toEqual([0o600]);
  });

  test('@UnixDatagramServer: only 0o600 is ever seen at the path (a datagram sent to a wider file was queued, and served)', async () => {
    @UnixDatagramServer({ path: '/unused', mode: 0o600 })
    class PrivateDatagrams { @Handle() async h(req: DatagramRequest) { await req.wfile.write(req.data); } }
    expect([...(await bitsSeenWhileStarting(PrivateDatagrams, path.join(dir, 'd.sock')))]).toEqual([0o600]);
  });

  test('@Forking (the children accept from a socket bound by the server): only 0o600 is ever seen at the path', async () => {
    expect([...(await bitsSeenWhileStarting(PrivateForked, path.join(dir, 'f.sock')))]).toEqual([0o600]);
  }, 30000);
});
