import 'reflect-metadata';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { TestServer } from 'sockserve/testing';
import { KvHandler, Store } from '../../samples/kv-server';

describe('the key-value sample, tested through sockserve/testing', () => {
  let store: Store;
  let t: TestServer;

  beforeEach(async () => {
    store = new Store();
    t = await TestServer.create(KvHandler, { providers: [{ provide: Store, useValue: store }] });
  });
  afterEach(() => t.close());

  test('SET then GET answers OK and the value, and DEL removes it', async () => {
    const c = t.connect({ host: '203.0.113.9', port: 50000, family: 'IPv4' });
    c.write('SET a 1\n');
    expect(await c.readline()).toBe('OK\n');
    c.write('GET a\n');
    expect(await c.readline()).toBe('1\n');
    c.write('DEL a\r\n');
    expect(await c.readline()).toBe('1\n');
    c.write('GET a\n');
    expect(await c.readline()).toBe('(nil)\n');
    await c.end();
  });

  test('the injected store is the one the test provided', async () => {
    store.set('seeded', 'yes');
    const c = t.connect();
    c.write('GET seeded\nSET made here\n');
    expect(await c.readline()).toBe('yes\n');
    expect(await c.readline()).toBe('OK\n');
    await c.end();
    expect(store.get('made')).toBe('here');
  });

  test('commands split anywhere, even one byte at a time, are answered whole', async () => {
    const c = t.connect();
    for (const byte of Buffer.from('SET k v w\nGET k\n')) c.write(Buffer.from([byte]));
    expect(await c.readline()).toBe('OK\n');
    expect(await c.readline()).toBe('v w\n');
    await c.end();
  });

  test('QUIT answers BYE and the server closes the connection', async () => {
    const c = t.connect();
    c.write('QUIT\nGET never-answered\n');
    expect(await c.readAll()).toEqual(Buffer.from('BYE\n'));
    await c.closed;
  });

  test('an unknown command is an error reply, and the connection goes on', async () => {
    const c = t.connect();
    c.write('FLY away\nSET x 1\n');
    expect(await c.readline()).toBe("-ERR unknown command 'FLY'\n");
    expect(await c.readline()).toBe('OK\n');
    await c.end();
  });

  test('it works under fake timers', async () => {
    jest.useFakeTimers();
    try {
      const c = t.connect();
      c.write('SET t 1\nGET t\n');
      expect(await c.readline()).toBe('OK\n');
      expect(await c.readline()).toBe('1\n');
      await c.end();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('the key-value sample as a program', () => {
  test('npm run sample:kv runs a session against a real server and prints each command with its reply', async () => {
    const root = path.join(__dirname, '..', '..');
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(root, 'samples', 'kv-server.ts')],
        { cwd: root, timeout: 30000, env: { ...process.env, KV_PORT: '0' } },
        (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut })));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe('SET greeting hello world → OK\nGET greeting → hello world\nDEL greeting → 1\nGET greeting → (nil)\nQUIT → BYE\n');
  });
});
