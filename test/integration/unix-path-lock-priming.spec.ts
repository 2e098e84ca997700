/**
 * A @Forking server on a Unix path holds the path's lock until its shared socket listens (unix-path-claim.spec.ts).
 * When no child can prime the socket (each dies at once: the pool's backoff case), bootstrap() still resolves, and
 * the socket is bound and not listening, which looks stale: the lock must stay until a child listens on it, or
 * another server started on the path meanwhile removes its file and binds its own (hostile run: both started, the
 * first serving, once its children recover, a removed file).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInUseError, bootstrap, Server } from '../../src';
import { DyingPrimer, PlainOnPath } from '../fixtures/priming-death-handlers';
import { within } from '../helpers/clients';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('a @Forking Unix server whose children die before priming its socket', () => {
  let dir: string;
  const servers: Server[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-priming-'));
    fs.writeFileSync(path.join(dir, 'die'), '');
    process.env.SOCKSERVE_DIE_ON_HANDLE = path.join(dir, 'die');
  });
  afterEach(async () => {
    delete process.env.SOCKSERVE_DIE_ON_HANDLE;
    for (const s of servers.splice(0)) await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('keeps the path: a server started on it meanwhile fails with AddressInUseError, and close() lets the lock go', async () => {
    const p = path.join(dir, 's.sock');
    const forked = await bootstrap(DyingPrimer, { transport: { path: p }, logger: quiet as never });
    servers.push(forked);
    const bound = fs.statSync(p).ino;
    const second = bootstrap(PlainOnPath, { transport: { path: p }, logger: quiet as never });
    second.then((s) => servers.push(s), () => undefined);
    await expect(second).rejects.toBeInstanceOf(AddressInUseError);
    expect(fs.statSync(p).ino).toBe(bound); // the first server's file, not removed
    await forked.close();
    expect(fs.existsSync(`${p}.sockserve-lock`)).toBe(false);
  }, 30000);

  test('lets the lock go once a child listens on the socket (its children recovered, serveForever() began)', async () => {
    const p = path.join(dir, 's.sock');
    const forked = await bootstrap(DyingPrimer, { transport: { path: p }, logger: quiet as never });
    servers.push(forked);
    expect(fs.existsSync(`${p}.sockserve-lock`)).toBe(true);
    fs.rmSync(path.join(dir, 'die')); // the children that start from now listen
    const loop = forked.serveForever(0.05);
    const reply = await within(20000, 'a reply from a child', (async () => {
      for (;;) {
        const got = await new Promise<string>((resolve) => {
          const c = net.connect(p);
          let text = '';
          c.on('data', (d) => (text += d));
          c.on('close', () => resolve(text));
          c.on('error', () => resolve(''));
        });
        if (got !== '') return got;
        await new Promise((r) => setTimeout(r, 100));
      }
    })());
    expect(reply).toMatch(/^forked \d+\n$/);
    await within(5000, 'the lock to go', (async () => {
      while (fs.existsSync(`${p}.sockserve-lock`)) await new Promise((r) => setTimeout(r, 20));
    })());
    await forked.shutdown();
    await loop;
  }, 40000);
});
