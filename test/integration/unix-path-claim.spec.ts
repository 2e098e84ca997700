/**
 * A socket bound now and listening only later (a @Forking server's shared socket listens once a child has called
 * listen() on it) refuses a connect as a stale file does: another server checking the path in between must not
 * take it for stale, remove it and bind its own (hostile run: three @Forking servers started at once on one stale
 * path all resolved, two of them serving a removed file).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInUseError, bootstrap, Handle, Server, StreamRequest, UnixStreamServer } from '../../src';
import { StreamListener } from '../../src/transports/stream-listener';
import { within } from '../helpers/clients';

@UnixStreamServer('/unused')
class Late {
  @Handle() async handle(req: StreamRequest) {
    await req.wfile.write('late\n');
  }
}

interface RawHandle {
  listen(backlog: number): number;
  onconnection: (err: number, client?: { close(): void }) => void;
}

describe('a shared Unix socket bound and not yet listening', () => {
  let dir: string;
  let listener: StreamListener | undefined;
  const servers: Server[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-claim-'));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await listener?.close();
    listener = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('another server started on its path meanwhile fails with AddressInUseError once it listens, and its file stays', async () => {
    const p = path.join(dir, 's.sock');
    listener = new StreamListener({ kind: 'unix', path: p, backlog: 5 }, 'First');
    await listener.bindShared();
    const bound = fs.statSync(p).ino;
    const second = bootstrap(Late, { transport: { path: p }, logger: { info: () => undefined, error: console.error } });
    second.then((s) => servers.push(s), () => undefined);
    await new Promise((r) => setTimeout(r, 300)); // the second server checks the path while the first is not listening
    // What a child's listen() does to the shared socket (the pool primes it so), here in this process.
    const handle = listener.sharedHandle as RawHandle;
    handle.onconnection = (_err, client) => client?.close();
    expect(handle.listen(5)).toBe(0);
    await listener.sharedListens();
    // Before: the second server found the socket refusing connections, took it for stale, removed it and started.
    await expect(within(10000, 'the second bootstrap', second)).rejects.toThrow(AddressInUseError);
    expect(fs.statSync(p).ino).toBe(bound);
  });
});
