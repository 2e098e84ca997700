/**
 * A worker whose event loop a handler blocks gets no new connection once it has been quiet for half its
 * heartbeatTimeout while the other worker speaks: the pool gave every new connection to the blocked thread (the least loaded, its
 * other connections gone) until the heartbeat ended it and them, 0 of 99 answered over 5 s with heartbeatTimeout
 * 6 (hostile run on datagrams, measured on streams). Unix stream sockets: the pool picks each connection's thread
 * on every Node line (relayed).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import * as path from 'node:path';
import { bootstrap, Server } from '../../src';
import { SpinningUnixThreads } from '../fixtures/spinning-handlers';
import { connect, removeTempDir, tempDir, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
let dir: string;
beforeEach(() => (dir = tempDir()));
afterEach(() => removeTempDir(dir));

/** Sends `line` on a new connection; its reply, or '' when the connection ended without one (bounded). */
async function ask(file: string, line: string): Promise<string> {
  const c = await connect({ path: file });
  return within(15000, 'the reply or the close', new Promise<string>((resolve) => {
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
      c.end();
    });
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
    c.write(line);
  }));
}

test('connections made while a thread is blocked go to the other thread once it has been quiet for half the heartbeatTimeout, not until the heartbeat ends it', async () => {
  const file = path.join(dir, 's.sock');
  const s = serve(await bootstrap(SpinningUnixThreads, { transport: { path: file }, heartbeatTimeout: 10, shutdownTimeout: 2 }));
  // 120 idle connections over both threads, then those of one thread closed: the other holds ~60, the one
  // that will spin none, so without the quiet check every new connection went to the blocked one.
  const idle: { c: net.Socket; tid: number }[] = [];
  try {
    for (let i = 0; i < 120; i++) {
      const c = await connect({ path: file });
      c.on('error', () => undefined);
      const tid = await within(10000, 'tid', new Promise<number>((resolve) => {
        c.once('data', (d: Buffer) => resolve(Number(d.toString())));
        c.write('tid\n');
      }));
      idle.push({ c, tid });
    }
    const spinner = Math.min(...idle.map((i) => i.tid));
    for (const i of idle) if (i.tid === spinner) i.c.destroy();
    const others = idle.filter((i) => i.tid !== spinner).length;
    expect(others).toBeGreaterThan(40);
    await new Promise((r) => setTimeout(r, 300)); // the closes reach the pool
    void ask(file, 'spin\n');
    const t0 = Date.now();
    // Asked from 6.5 s on (half the heartbeatTimeout, plus one report period for the other thread's next report,
    // plus margin), before the heartbeat (10 s) ends the blocked thread: 20 connections, every one answered.
    await new Promise((r) => setTimeout(r, 6500));
    const late: Promise<string>[] = [];
    for (let i = 0; i < 20; i++) {
      late.push(ask(file, `late ${i}\n`));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Date.now() - t0).toBeLessThan(9500);
    expect(await Promise.all(late)).toEqual(Array.from({ length: 20 }, (_, i) => `late ${i}\n`));
  } finally {
    idle.forEach((i) => i.c.destroy());
  }
  expect(s.stats().workers.length).toBeLessThanOrEqual(2);
}, 30000);
