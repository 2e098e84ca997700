import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { BaseServer } from '../../src/classic';
import { classicServers } from '../fixtures/classic-handlers';
import { datagramExchange, datagramSilence, removeTempDir, streamExchange, tempDir, Target, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';

const cases = Object.entries(classicServers).map(([name, make]) => ({ name, make, stream: name.includes('Stream') || name.includes('TCP') }));

describe.each(cases)('classic $name', ({ name, make, stream }) => {
  let dir: string;
  let server: BaseServer<any, any> | undefined;
  const serve = servingInTests<BaseServer<any, any>>((s) => expect(s.workerCount).toBe(0));
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => removeTempDir(dir));
  const target = (s: BaseServer<any, any>): Target => (typeof s.serverAddress === 'string' ? { path: s.serverAddress } : { host: s.serverAddress[0], port: s.serverAddress[1] });
  const exchange = async (line: string) =>
    stream ? (await streamExchange(target(server!), line, { halfClose: true, ms: 10000 })).toString()
      : (await datagramExchange(target(server!), line, dir, 10000)).data.toString();

  test('runs the classic handler class in a worker, and an error there reaches handleError in the server, its class kept', async () => {
    server = make(dir);
    const errors: Error[] = [];
    server.handleError = (_r, _a, e) => { errors.push(e as Error); };
    await server.ready;
    serve(server);
    const [pid, tid, word] = (await exchange('hello\n')).split(/[/ ]/);
    if (name.startsWith('Threading')) expect(Number(tid)).toBeGreaterThan(0);
    else expect(Number(pid)).not.toBe(process.pid);
    expect(word).toBe('hello');
    if (stream) expect(await exchange('throw\n')).toBe('');
    else expect(await datagramSilence(target(server), 'throw\n', dir)).toBe(true);
    await until(() => errors.length === 1);
    expect(errors[0].message).toMatch(/^classic handler failed in \d+\/\d+$/);
    expect(errors[0]).toBeInstanceOf(RangeError); // JavaScript's own classes cross the worker boundary (it was a plain Error)
    expect((await exchange('again\n')).endsWith(' again')).toBe(true);
  });

  test('this.server.shutdown() in a worker resolves once the other request is done, and serveForever returns', async () => {
    server = make(dir);
    await server.ready;
    serve(server);
    const started = path.join(dir, 'slow-started');
    const slow = exchange(`slow 600 ${started}\n`);
    await until(() => fs.existsSync(started), 10000); // the slow request runs in a worker
    // The order is checked in the server (the handler says whether the slow request had finished when its
    // shutdown() resolved): two replies to two client sockets may be seen in either order by the client.
    const [slowReply, stopReply] = await Promise.all([slow, exchange(`shutdown ${started}\n`)]);
    expect(slowReply.endsWith(` slow 600 ${started}`)).toBe(true);
    expect(stopReply.endsWith(' shutdown after slow')).toBe(true);
    await within(10000, 'serveForever to return', serve.loopOf(server));
  });

  test("close() waits for the requests in progress to finish (Python's block_on_close, default true), and with blockOnClose false ends them", async () => {
    const s = make(dir);
    await s.ready;
    const loop = s.serveForever(0.05);
    server = s; // exchange() talks to `server`
    const started = path.join(dir, 'slow-started');
    const slow = exchange(`slow 500 ${started}\n`).catch(() => '');
    await until(() => fs.existsSync(started), 10000); // the slow request runs in a worker
    await within(10000, 'close()', s.close());
    expect(fs.existsSync(`${started}.done`)).toBe(true); // it finished before close() resolved
    expect((await slow).endsWith(` slow 500 ${started}`)).toBe(true); // and its reply reached the client
    await within(10000, 'serveForever to return', loop);
    expect(s.workerCount).toBe(0);

    const quick = make(dir);
    quick.blockOnClose = false;
    quick.handleError = () => undefined; // the request close() ends is reported: not this test's subject
    await quick.ready;
    const quickLoop = quick.serveForever(0.05);
    server = quick;
    const other = path.join(dir, 'slow-ended');
    void exchange(`slow 5000 ${other}\n`).catch(() => '');
    await until(() => fs.existsSync(other), 10000);
    const t0 = Date.now();
    await within(10000, 'close()', quick.close());
    expect(Date.now() - t0).toBeLessThan(4000); // did not wait for the 5 s request
    expect(fs.existsSync(`${other}.done`)).toBe(false);
    await within(10000, 'serveForever to return', quickLoop);
    expect(quick.workerCount).toBe(0);
  });
});

describe.each(cases.filter((c) => c.stream))('classic $name with unawaited writes', ({ make }) => {
  let dir: string;
  const serve = servingInTests<BaseServer<any, any>>((s) => expect(s.workerCount).toBe(0));
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => removeTempDir(dir));
  const target = (s: BaseServer<any, any>): Target => (typeof s.serverAddress === 'string' ? { path: s.serverAddress } : { host: s.serverAddress[0], port: s.serverAddress[1] });

  test('ten writes the handler did not await all reach the client, in order, before the connection closes', async () => {
    const server = make(dir);
    await server.ready;
    serve(server);
    const reply = (await streamExchange(target(server), 'burst\n', { halfClose: true, ms: 10000 })).toString();
    expect(reply).toBe(Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join(''));
  });
});

/** Where a client reaches `s`: its path, or its host and port. */
const addressOf = (s: BaseServer<any, any>): Target => (typeof s.serverAddress === 'string' ? { path: s.serverAddress } : { host: s.serverAddress[0], port: s.serverAddress[1] });

/** Each test's temp dir (`t.dir`, removed after it), and `serve`, which checks that no worker outlives close(). */
function perTest(): { readonly dir: string; serve: ReturnType<typeof servingInTests<BaseServer<any, any>>> } {
  let dir = '';
  const serve = servingInTests<BaseServer<any, any>>((s) => expect(s.workerCount).toBe(0));
  beforeEach(() => { dir = tempDir(); });
  afterEach(() => removeTempDir(dir));
  return { get dir() { return dir; }, serve };
}

describe.each(cases.filter((c) => c.name.includes('UDP')))('classic $name over UDP', ({ make }) => {
  const t = perTest();
  let server: BaseServer<any, any> | undefined;
  const serve = t.serve;

  test('a datagram handler\'s socket.send(): to its sender it is the reply; to another client a clear error, never a merged reply to the sender', async () => {
    server = make(t.dir);
    const errors: Error[] = [];
    server.handleError = (_r, _a, e) => { errors.push(e as Error); };
    await server.ready;
    serve(server);
    expect((await datagramExchange(addressOf(server), 'direct\n', t.dir, 10000)).data.toString()).toBe('direct reply');
    const other = dgram.createSocket('udp4');
    try {
      const heard: string[] = [];
      other.on('message', (m) => heard.push(m.toString()));
      await new Promise<void>((resolve) => other.bind(0, '127.0.0.1', resolve));
      // Before: the other client got nothing and the sender got "relayed" as (part of) its own reply.
      expect(await datagramSilence(addressOf(server), `elsewhere ${other.address().port}\n`, t.dir)).toBe(true);
      await until(() => errors.length === 1);
      // Two sends to the sender: the first is the reply, the second an error (it was merged: "firstsecond").
      expect((await datagramExchange(addressOf(server), 'twice\n', t.dir, 10000)).data.toString()).toBe('first');
      await until(() => errors.length === 2);
      expect(errors[1].message).toMatch(/answers 127\.0\.0\.1:\d+ with one datagram, and this is a second send\(\)/);
      expect(errors[0].message).toMatch(/can only answer its own sender \(127\.0\.0\.1:\d+\), not 127\.0\.0\.1:\d+/);
      expect(heard).toEqual([]);
    } finally {
      other.close();
    }
  });

});

describe.each(cases.filter((c) => c.stream))('classic $name: the reader bounds reach the workers', ({ make }) => {
  const t = perTest();
  let server: BaseServer<any, any> | undefined;
  const serve = t.serve;

  test('lineTimeout: a client that trickles a line without its newline is cut off after it, as by TCPServer', async () => {
    server = make(t.dir);
    // It only has to fire (nothing here times it, and the client sends no whole line): 0.3 s rather than
    // 1 s, which saved ~0.7 s per server.
    (server as unknown as { lineTimeout: number }).lineTimeout = 0.3;
    const errors: Error[] = [];
    server.handleError = (_r, _a, e) => { errors.push(e as Error); };
    await server.ready;
    serve(server);
    const at = addressOf(server);
    const c = 'path' in at ? net.connect(at.path) : net.connect(at.port, at.host);
    c.on('error', () => undefined);
    const trickle = setInterval(() => c.write('x'), 200);
    try {
      // Before: the pools' workers read with no lineTimeout, and the client was held for as long as it trickled.
      await within(8000, 'the trickling client to be cut off', new Promise((resolve) => c.once('close', resolve)));
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
    await until(() => errors.length === 1);
    expect(errors[0]).toMatchObject({ name: 'RequestTimeoutError' });
  });
});

describe.each(cases.filter((c) => c.stream))('classic $name: request-ending hooks that never settle', ({ make }) => {
  const t = perTest();
  let server: BaseServer<any, any> | undefined;

  test.each(['handleError', 'closeRequest'] as const)('a %s that never settles is waited for shutdownTimeout at most: shutdown() returns, and it is logged', async (hook) => {
    server = make(t.dir);
    server.shutdownTimeout = 1;
    const errors: string[] = [];
    server.logger = { error: (m: string) => errors.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
    (server as unknown as Record<string, unknown>)[hook] = () => new Promise(() => undefined);
    await server.ready;
    const loop = server.serveForever(0.05);
    // handleError hears of a handler that throws; closeRequest ends every request.
    await streamExchange(addressOf(server), hook === 'handleError' ? 'throw\n' : 'hello\n', { halfClose: true, ms: 10000 }).catch(() => undefined);
    const t0 = Date.now();
    // Before: shutdown() was still pending after 20 s (the pools waited on the hook without a bound).
    await within(8000, 'shutdown() past the hung hook', server.shutdown());
    expect(Date.now() - t0).toBeLessThan(8000);
    await within(8000, 'the serve loop to end', loop);
    await until(() => errors.some((m) => m.includes('did not settle within 1 s (shutdownTimeout)')), 5000);
    await within(10000, 'close()', server.close());
  });
});
