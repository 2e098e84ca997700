import * as fs from 'node:fs';
import type { BaseServer } from '../../src/classic';
import { Body, transports } from '../contracts/transports';
import { connect, datagramSilence, removeTempDir, tempDir, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';

const echoLine: Body = async (h) => { await h.wfile.write(await h.rfile.readline()); };

describe.each(transports)('classic server contract over $name', (t) => {
  let dir: string;
  const serve = servingInTests();
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => removeTempDir(dir));

  async function start(body: Body, tweak?: (s: BaseServer<any, any>) => void) {
    const server = t.make(body, dir);
    tweak?.(server);
    await server.ready;
    return serve(server);
  }

  test('echoes a line to three clients in turn, as CPython run_server does', async () => {
    const s = await start(echoLine);
    for (let i = 0; i < 3; i++) {
      expect((await t.exchange(t.target(s), 'hello world\n', dir)).toString()).toBe('hello world\n');
    }
  });

  test('serverAddress names the bound address: the real port after port 0, or the path', async () => {
    const s = await start(echoLine);
    if (Array.isArray(s.serverAddress)) expect(s.serverAddress[1]).toBeGreaterThan(0);
    else expect(fs.statSync(s.serverAddress).isSocket()).toBe(true);
  });

  test('garbage bytes come back exactly as sent', async () => {
    const s = await start(async (h) => { await h.wfile.write(await h.rfile.readAll()); });
    const junk = Buffer.from([0, 255, 254, 10, 13, 0, 128, 7, 10, 1]);
    expect(await t.exchange(t.target(s), junk, dir)).toEqual(junk);
  });

  test('an error in the handler reaches handleError and the next request is served', async () => {
    const errors: unknown[] = [];
    let first = true;
    const s = await start(
      async (h) => {
        if (first) { first = false; throw new Error('handler failed'); }
        await h.wfile.write(await h.rfile.readline());
      },
      (srv) => { srv.handleError = (_r, _a, e) => { errors.push(e); }; },
    );
    if (t.stream) expect((await t.exchange(t.target(s), 'x\n', dir)).length).toBe(0);
    else expect(await datagramSilence(t.target(s), 'x\n', dir)).toBe(true);
    expect((errors[0] as Error).message).toBe('handler failed');
    expect((await t.exchange(t.target(s), 'again\n', dir)).toString()).toBe('again\n');
  });

  test('a request refused by verifyRequest gets no reply and runs no handler', async () => {
    let handled = 0;
    const s = await start(
      async (h) => { handled++; await h.wfile.write('should not be sent'); },
      (srv) => { srv.verifyRequest = () => false; },
    );
    if (t.stream) expect((await t.exchange(t.target(s), 'x\n', dir)).length).toBe(0);
    else expect(await datagramSilence(t.target(s), 'x\n', dir)).toBe(true);
    expect(handled).toBe(0);
  });

  test('the handler sees the client address', async () => {
    let seen: unknown;
    const s = await start(async (h) => { seen = h.clientAddress; await h.wfile.write('ok'); });
    await t.exchange(t.target(s), 'hi\n', dir);
    if (t.name.startsWith('Unix stream')) expect(seen).toEqual({ path: '' });
    else if (t.name.startsWith('Unix')) expect((seen as { path: string }).path.startsWith(dir)).toBe(true);
    else expect(seen).toMatchObject({ host: t.name.includes('::1') ? '::1' : '127.0.0.1', family: t.name.includes('::1') ? 'IPv6' : 'IPv4' });
  });

  test('close releases the address: the port refuses, the socket file is gone', async () => {
    const s = await start(echoLine);
    const target = t.target(s);
    await s.shutdown();
    await s.close();
    if ('path' in target) expect(fs.existsSync(target.path)).toBe(false);
    else if (t.stream) await expect(connect(target)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  // Node 26 once lost this reply: node-unix-socket's events waited for a timer to wake the loop (see unix-dgram.socket.ts).
  test('handleRequest() while serveForever() runs, or while another handleRequest() waits, is refused; the event loop and the waits go on', async () => {
    const alive = () => new Promise<string>((resolve) => setTimeout(() => resolve('a timer fired'), 50));
    const s = await start(echoLine);
    // They woke each other, turn after turn, and no timer fired again (hostile-client run).
    const beside = s.handleRequest();
    await expect(within(2000, 'the refusal', beside)).rejects.toThrow(/handleRequest\(\): serveForever\(\) is already waiting for requests.*Fix:/);
    expect(await within(2000, 'a timer', alive())).toBe('a timer fired');
    expect((await t.exchange(t.target(s), 'served\n', dir)).toString()).toBe('served\n');

    const dir2 = tempDir();
    const idle = t.make(echoLine, dir2);
    try {
      await idle.ready;
      idle.timeout = 5;
      // Called in the same tick, as a second call after an await: the later one is refused, the first serves.
      const first = idle.handleRequest();
      const loop = idle.serveForever(0.05);
      const second = idle.handleRequest();
      await expect(loop).rejects.toThrow(/serveForever\(\): handleRequest\(\) is already waiting/);
      await expect(second).rejects.toThrow(/handleRequest\(\): handleRequest\(\) is already waiting.*Fix: await the handleRequest\(\) in progress first/);
      await expect(idle.serveForever(0.05)).rejects.toThrow(/serveForever\(\): handleRequest\(\) is already waiting/);
      expect(await within(2000, 'a timer', alive())).toBe('a timer fired');
      expect((await t.exchange(t.target(idle), 'one\n', dir)).toString()).toBe('one\n');
      await within(5000, 'the first handleRequest()', first);
    } finally {
      await idle.close();
      removeTempDir(dir2);
    }
  });

  test('requests received before shutdown() and still queued behind a slow one are all served (hostile run: a serial datagram server dropped them)', async () => {
    let started = 0;
    const s = await start(async (h) => {
      const line = await h.rfile.readline();
      started++;
      await new Promise((r) => setTimeout(r, 50));
      await h.wfile.write(line);
    });
    const replies = ['a\n', 'b\n', 'c\n', 'd\n'].map((line) => t.exchange(t.target(s), line, dir));
    await until(() => started === 1);
    await new Promise((r) => setTimeout(r, 20)); // the other three reach the server while the first is served
    await s.shutdown();
    expect((await Promise.all(replies)).map(String).sort()).toEqual(['a\n', 'b\n', 'c\n', 'd\n']);
    expect(started).toBe(4);
  });

  test('shutdown during a request lets it finish and deliver its reply', async () => {
    let started = false;
    const s = await start(async (h) => {
      const line = await h.rfile.readline();
      started = true;
      await new Promise((r) => setTimeout(r, 100));
      await h.wfile.write(line);
    });
    const reply = t.exchange(t.target(s), 'late\n', dir);
    await until(() => started);
    await s.shutdown();
    expect((await reply).toString()).toBe('late\n');
  });
});
