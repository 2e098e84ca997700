/**
 * `req.server` in a worker thread or child process says of itself what the server does (its name, address,
 * `${server}`, JSON), as sockserve/testing's worker face does: a handler that logged `req.server.describeAddress()`
 * passed its TestServer test and threw in production (new-user run on Node 22).
 */
import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import { TestServer } from '../../src/testing';
import * as net from 'node:net';
import { ChildSlowToEnd, ChildTellsServer, ThreadTellsServer } from '../fixtures/face-handlers';
import type { ChildProcess } from 'node:child_process';
import { streamExchange, within } from '../helpers/clients';
import { startFixture } from '../helpers/fixture-process';
import { servingInTests } from '../helpers/serving';

describe.each([
  ['@Threading', ThreadTellsServer],
  ['@Forking', ChildTellsServer],
])('req.server in a %s worker', (_mode, Handler) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));

  test('has the server\'s handlerName, describeAddress(), toString() and toJSON()', async () => {
    const s = serve(await bootstrap(Handler));
    const { host, port } = s.serverAddress as { host: string; port: number };
    const told = JSON.parse((await streamExchange({ host, port }, 'tell\n', { halfClose: true, ms: 15000 })).toString());
    // Before: describeAddress was no function (a TypeError ending the request), handlerName undefined,
    // `${server}` '[object Object]', and JSON the worker's own counters, all 0.
    expect(told).toEqual({
      text: `${Handler.name} on 127.0.0.1:${port}`,
      name: Handler.name,
      address: `127.0.0.1:${port}`,
      json: { handler: Handler.name, address: { host: '127.0.0.1', port } },
    });
    expect(told.text).toBe(String(s));
  });

  test('says the same of itself under sockserve/testing', async () => {
    const t = await TestServer.create(Handler);
    try {
      const c = t.connect();
      c.write('tell\n');
      const told = JSON.parse((await c.readAll()).toString());
      expect(told.name).toBe(Handler.name);
      expect(told.text).toBe(String(t.server));
      expect(told.json).toEqual({ handler: Handler.name, address: t.server.serverAddress });
    } finally {
      await t.close();
    }
  });
});

describe('a worker thread ended by close()', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('writes all its console output first: a singleton\'s dispose() logging three lines shows three (terminate() cut them off: hostile run)', async () => {
    const server = await startFixture('loud-dispose-server.ts', { children: started, env: { SOCKSERVE_LOUD_TAG: 'fixture' } });
    const reply = await streamExchange({ host: '127.0.0.1', port: server.port }, 'hi\n', { halfClose: true, ms: 15000 });
    expect(reply.toString()).toBe('hi\n'); // the singleton exists now
    server.child.kill('SIGTERM');
    expect(await within(15000, 'exit', server.exited)).toBe(0);
    const lines = server.out().split('\n').filter((l) => l.startsWith('loud dispose'));
    expect(lines).toEqual([1, 2, 3].map((i) => `loud dispose line ${i} of 3 (fixture)`));
  }, 60000);
});

describe('close() of a @Forking server whose children accept themselves', () => {
  test('refuses new clients at once, while its children still end (a child went on accepting and serving them: hostile run)', async () => {
    const s = await bootstrap(ChildSlowToEnd);
    const loop = s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    expect((await streamExchange({ host, port }, 'hi\n', { halfClose: true, ms: 15000 })).toString()).toBe('hi\n'); // its singleton exists now
    const closing = s.close();
    await new Promise((r) => setTimeout(r, 300)); // the child's singleton takes 1.5 s to dispose
    const late = await new Promise<string>((resolve) => {
      const c = net.connect(port, host);
      let got = '';
      c.on('connect', () => c.end('late\n'));
      c.on('data', (d) => (got += d));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      c.on('close', () => resolve(got === '' ? 'closed' : `served ${JSON.stringify(got)}`));
    });
    await within(15000, 'close()', closing);
    await within(5000, 'the loop', loop);
    expect(['ECONNREFUSED', 'ECONNRESET', 'closed']).toContain(late);
  }, 60000);
});
