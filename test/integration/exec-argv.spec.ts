/**
 * A server started with V8 flags (`node --max-old-space-size=4096 app.js`, the usual production line):
 * worker threads refuse V8 flags in their execArgv (ERR_WORKER_INVALID_EXEC_ARGV, Node 20-26), so a
 * @Threading pool leaves them out (they hold for every thread of the process anyway), and a @Forking pool's
 * children, new V8 instances, get them. `process.execArgv` is what workerLaunch reads: the tests set it.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { bootstrap, Server } from '../../src';
import { startThread } from '../../src/concurrency/remote/thread-slot';
import * as fixtures from '../fixtures/exec-argv-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const V8_FLAGS = ['--max-old-space-size=512', '--stack-trace-limit=30', '--expose-gc'];
const saved = process.execArgv;
afterEach(() => {
  process.execArgv = saved;
});

describe('a server whose process runs with V8 flags', () => {
  const serve = servingInTests<Server>();

  async function ask(Handler: new (...args: never[]) => unknown): Promise<{ flags: string[]; gc: string }> {
    process.execArgv = [...saved, ...V8_FLAGS];
    const server = serve(await bootstrap(Handler));
    process.execArgv = saved;
    const { port } = server.serverAddress as { port: number };
    return JSON.parse((await streamExchange({ host: '127.0.0.1', port }, '?\n', { halfClose: true })).toString());
  }

  test('@Threading starts its threads without them, and serves', async () => {
    expect(await ask(fixtures.InThread)).toEqual({ flags: [], gc: typeof (globalThis as { gc?: unknown }).gc });
  });

  test('@Forking passes them to its children', async () => {
    expect(await ask(fixtures.InChild)).toEqual({ flags: V8_FLAGS, gc: 'function' });
  });
});

describe('startThread', () => {
  let dir: string;
  let worker: Worker | undefined;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-argv-'))));
  afterEach(async () => {
    await worker?.terminate();
    worker = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a flag the thread refuses (named by Node) is left out, and the others kept', async () => {
    const file = path.join(dir, 'argv.js');
    fs.writeFileSync(file, "require('node:worker_threads').parentPort.postMessage(process.execArgv);");
    // --max-semi-space-size is a V8 flag outside worker-launch's list: Node names it, startThread drops it.
    worker = startThread(file, ['--max-semi-space-size=16', '--no-warnings'], {});
    const argv = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message from the thread in 5 s')), 5000);
      worker!.once('message', (m) => (clearTimeout(timer), resolve(m)));
      worker!.once('error', reject);
    });
    expect(argv).toEqual(['--no-warnings']);
  });

  test('any other error of new Worker() is thrown as it came, not retried', () => {
    expect(() => startThread('relative/entry.js', ['--no-warnings'], {})).toThrow(expect.objectContaining({ code: 'ERR_WORKER_PATH' }));
  });
});
