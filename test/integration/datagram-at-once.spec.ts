/**
 * @Concurrent datagram servers serve a datagram from the socket's callback, not through a turn of the
 * serve loop (bootstrap/assemble.ts, serveAtOnce). What the loop guaranteed must still hold: every datagram
 * answered and counted, nothing taken after shutdown() (it waits for the next serveForever(), as in Python),
 * maxConnections holding back the rest, and a serverClass or hook of the loop's turn still called.
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { bootstrap, Concurrent, DatagramRequest, Handle, HandleError, Server, ServiceActions, UdpServer, UnixDatagramServer, Verify } from '../../src';
import { UDPServer } from '../../src/classic';
import { datagramExchange, datagramSilence, removeTempDir, tempDir, Target, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { startFixture } from '../helpers/fixture-process';
import type { ChildProcess } from 'node:child_process';

const serve = servingInTests<Server>();
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await within(5000, 'the fixture to exit', gone);
    }
  }
});

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}

/** Sends `count` datagrams from one client socket and collects the replies (bounded). */
async function burst(t: { host: string; port: number }, count: number, ms = 5000): Promise<string[]> {
  const client = dgram.createSocket('udp4');
  try {
    const replies: string[] = [];
    const all = new Promise<void>((resolve) => client.on('message', (m) => replies.push(m.toString()) === count && resolve()));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    for (let i = 0; i < count; i++) client.send(`d${i}`, t.port, t.host);
    await within(ms, `${count} replies`, all);
    return replies;
  } finally {
    client.close();
  }
}

let dir: string;
beforeEach(() => (dir = tempDir()));
afterEach(() => removeTempDir(dir));

describe('@Concurrent datagram servers serve each datagram at once', () => {
  for (const [name, decorate] of [
    ['@UdpServer', () => UdpServer(0)],
    ['@UnixDatagramServer', () => UnixDatagramServer(path.join(dir, 'd.sock'))],
  ] as Array<[string, () => ClassDecorator]>) {
    test(`${name}: every datagram answered and counted, rfile and data both readable`, async () => {
      @Concurrent()
      class Echo {
        @Handle() async handle(req: DatagramRequest) {
          const line = await req.rfile.readline();
          await req.wfile.write(Buffer.concat([Buffer.from(`${req.data.length}:`), line]));
        }
      }
      decorate()(Echo);
      const s = serve(await bootstrap(Echo));
      for (let i = 0; i < 20; i++) {
        expect((await datagramExchange(target(s), `x${i}\nrest`, dir)).data.toString()).toBe(`${`x${i}\nrest`.length}:x${i}\n`);
      }
      await until(() => s.stats().accepted === 20 && s.stats().bytesIn > 0);
      expect(s.stats().bytesOut).toBe([...Array(20).keys()].reduce((n, i) => n + `${`x${i}\nrest`.length}:x${i}\n`.length, 0));
    });
  }

  test('200 datagrams in flight from one client: 200 replies, none lost or doubled', async () => {
    @UdpServer(0) @Concurrent()
    class Echo {
      @Handle() async handle(req: DatagramRequest) {
        await new Promise((r) => setImmediate(r));
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(Echo));
    const replies = await burst(target(s) as { host: string; port: number }, 200);
    expect(new Set(replies).size).toBe(200);
    await until(() => s.stats().accepted === 200);
  });

  test('after shutdown() a datagram waits for the next serveForever(), as in Python', async () => {
    @UdpServer(0) @Concurrent()
    class Echo {
      @Handle() async handle(req: DatagramRequest) {
        await req.wfile.write(req.data);
      }
    }
    const s = await bootstrap(Echo);
    try {
      const first = s.serveForever(0.05);
      expect((await datagramExchange(target(s), 'before')).data.toString()).toBe('before');
      await within(5000, 'shutdown', s.shutdown());
      await within(5000, 'loop exit', first);
      // sent while nobody serves: not answered now, answered once the loop runs again
      const client = dgram.createSocket('udp4');
      try {
        const reply = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
        const t = target(s) as { host: string; port: number };
        await new Promise<void>((resolve, reject) => client.send('waited', t.port, t.host, (e) => (e ? reject(e) : resolve())));
        const early = await Promise.race([reply, new Promise((r) => setTimeout(() => r('none'), 200))]);
        expect(early).toBe('none');
        const second = s.serveForever(0.05);
        expect(await within(5000, 'the waiting datagram', reply)).toBe('waited');
        await within(5000, 'shutdown', s.shutdown());
        await within(5000, 'loop exit', second);
      } finally {
        client.close();
      }
    } finally {
      await s.close();
    }
  });

  test('@Concurrent({ maxConnections: 2 }): two datagrams run, the rest wait for one to finish, none is dropped', async () => {
    let running = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    @UdpServer(0) @Concurrent({ maxConnections: 2 })
    class Gated {
      @Handle() async handle(req: DatagramRequest) {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(Gated));
    const replies = burst(target(s) as { host: string; port: number }, 6);
    await until(() => gates.length === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(gates.length).toBe(2); // the other four wait, queued
    const opener = setInterval(() => gates.shift()?.(), 5);
    try {
      expect((await replies).sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5']);
    } finally {
      clearInterval(opener);
    }
    expect(most).toBe(2);
  });

  test('a serverClass that overrides a stage of the loop\'s turn still sees every datagram', async () => {
    const seen: string[] = [];
    class Counting extends UDPServer {
      override getRequest() {
        const got = super.getRequest();
        seen.push(got[0][0].toString());
        return got;
      }
    }
    @UdpServer(0) @Concurrent()
    class Echo {
      @Handle() async handle(req: DatagramRequest) {
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(Echo, { serverClass: Counting }));
    for (const word of ['a', 'b', 'c']) expect((await datagramExchange(target(s), word)).data.toString()).toBe(word);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  test('@Verify and @ServiceActions still run for every datagram', async () => {
    let actions = 0;
    @UdpServer(0) @Concurrent()
    class Guarded {
      @Verify() allow(_c: unknown, req: DatagramRequest) {
        return req.data.toString() !== 'deny';
      }
      @ServiceActions() tick() {
        actions++;
      }
      @Handle() async handle(req: DatagramRequest) {
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(Guarded), 10); // a poll interval of 10 s: only requests make the loop turn
    const before = actions;
    expect((await datagramExchange(target(s), 'ok')).data.toString()).toBe('ok');
    expect(await datagramSilence(target(s), 'deny')).toBe(true);
    expect(actions - before).toBeGreaterThanOrEqual(2);
    await until(() => s.stats().rejected === 1);
  });

  test('at maxConnections, a datagram the loop holds is not started after close() or once serveForever() has returned', async () => {
    const started: string[] = [];
    let closedAt = 0;
    @UdpServer(0) @Concurrent({ maxConnections: 1 })
    class Slow {
      @Handle() async handle(req: DatagramRequest) {
        started.push(`${req.data}${closedAt ? ' after close' : ''}`);
        if (req.data.toString() === 'C') await new Promise((r) => setTimeout(r, 150));
        await req.wfile.write(req.data);
      }
    }
    for (const ending of ['close', 'shutdown'] as const) {
      started.length = 0;
      closedAt = 0;
      const s = await bootstrap(Slow, { shutdownTimeout: 0.05 });
      try {
        const served = s.serveForever(0.05);
        const client = dgram.createSocket('udp4');
        try {
          const t = target(s) as { host: string; port: number };
          client.send('C', t.port, t.host);
          await until(() => started.length === 1);
          client.send('B', t.port, t.host); // the slot is taken: B waits for the loop
          await new Promise((r) => setTimeout(r, 30));
          closedAt = Date.now();
          if (ending === 'close') await within(5000, 'close', s.close());
          else await within(5000, 'shutdown', s.shutdown());
          await within(5000, 'the loop to exit', served);
          await new Promise((r) => setTimeout(r, 300)); // C has finished: B would start now if it were held
          expect(started).toEqual(['C']);
        } finally {
          client.close();
        }
      } finally {
        await s.close();
      }
    }
  });

  test('a serverClass stage set on the instance (a class field) keeps the loop: its verifyRequest runs', async () => {
    let calls = 0;
    class Guarded extends UDPServer {
      override verifyRequest = (request: [Buffer, unknown]) => {
        calls++;
        return request[0].toString() !== 'deny';
      };
    }
    @UdpServer(0) @Concurrent()
    class Echo {
      @Handle() async handle(req: DatagramRequest) {
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(Echo, { serverClass: Guarded as unknown as typeof UDPServer }));
    expect((await datagramExchange(target(s), 'allow')).data.toString()).toBe('allow');
    expect(await datagramSilence(target(s), 'deny')).toBe(true);
    expect(calls).toBe(2);
  });

  test('a request-scoped dispose() that fails while the reply is still being sent is reported, not an unhandled rejection', async () => {
    // In a process of its own: jest keeps unhandled rejections from the test's process, a user's process dies of them.
    const fixture = await startFixture('slow-send-dispose.ts', { children });
    const replies = await burst({ host: '127.0.0.1', port: fixture.port }, 50);
    expect(replies.length).toBe(50);
    await within(5000, '50 errors reported', fixture.seen('reported 50'));
    await new Promise((r) => setTimeout(r, 100));
    expect(fixture.child.exitCode).toBeNull();
    expect(fixture.out()).not.toMatch(/UnhandledPromiseRejection|unhandledRejection/);
  }, 120000); // a server process loading TypeScript (its start bounded at 60 s): jest's 20 s default would cut it first on a busy machine

  test('a reply the socket refuses (larger than a UDP datagram can be) is an error and counts no bytes out', async () => {
    const reported: string[] = [];
    @UdpServer(0) @Concurrent()
    class Huge {
      @Handle() async handle(req: DatagramRequest) {
        await req.wfile.write(req.data.toString() === 'big' ? Buffer.alloc(70000) : req.data);
      }
      @HandleError() failed(error: NodeJS.ErrnoException) {
        reported.push(error.code ?? error.message);
      }
    }
    const s = serve(await bootstrap(Huge));
    expect(await datagramSilence(target(s), 'big')).toBe(true);
    expect((await datagramExchange(target(s), 'ok')).data.toString()).toBe('ok');
    await until(() => reported.length === 1 && s.stats().accepted === 2);
    expect(reported).toEqual(['EMSGSIZE']);
    await until(() => s.stats().bytesOut === 2);
    expect(s.stats().bytesOut).toBe(2);
  });
});
