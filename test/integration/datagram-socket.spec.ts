import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { execFile, spawn } from 'child_process';
import { promisify } from 'util';
import { DgramSocket } from 'node-unix-socket';
import { AddressInUseError } from '../../src/errors/errors';
import { SockserveError, UnreachableClientError } from '../../src';
import { errorKind } from '../../src/observability/error-kind';
import { ClientAddress, IpAddress } from '../../src/transports/address';
import {
  createUdpSocket,
  createUnixDatagramSocket,
  DatagramSocket,
  ReceivedDatagram,
} from '../../src/transports/datagram-socket';

const WAIT_MS = 5000;

function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Queues what a socket receives, so a test can await the next datagram with a bound. */
function inbox(socket: DatagramSocket): { next(what: string): Promise<ReceivedDatagram> } {
  const queued: ReceivedDatagram[] = [];
  const waiting: Array<(d: ReceivedDatagram) => void> = [];
  socket.onMessage((d) => {
    const waiter = waiting.shift();
    if (waiter) waiter(d);
    else queued.push(d);
  });
  return {
    next: (what) => {
      const ready = queued.shift();
      if (ready) return Promise.resolve(ready);
      return within(new Promise<ReceivedDatagram>((resolve) => waiting.push(resolve)), what);
    },
  };
}

/** Every received datagram is sent back to its sender unchanged. */
function echoBack(socket: DatagramSocket): void {
  socket.onMessage((d) => void socket.send(d.data, d.from).catch(() => undefined));
}

describe('DatagramSocket', () => {
  let dir: string;
  const cleanups: Array<() => unknown> = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/sockserve-');
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function track<T extends DatagramSocket>(socket: T): T {
    cleanups.push(() => socket.close());
    return socket;
  }

  async function udp(host: string, opts: { port?: number; maxPacketSize?: number; reuseAddress?: boolean } = {}) {
    const socket = track(createUdpSocket({ port: opts.port ?? 0, host, maxPacketSize: opts.maxPacketSize, reuseAddress: opts.reuseAddress }));
    await within(socket.bind(), `a UDP bind on ${host}`);
    return socket;
  }

  /** A client process bound at `clientPath` that never reads (fixtures/unix-dgram-nonreader.js); killed after the test. */
  async function nonReader(clientPath: string, serverPath = '-', count = 0): Promise<{ path: string; kill: () => Promise<unknown> }> {
    const script = path.join(__dirname, '../fixtures/unix-dgram-nonreader.js');
    const child = spawn(process.execPath, [script, clientPath, serverPath, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      return within(gone, 'the non-reading client to exit');
    };
    cleanups.push(kill);
    let out = '';
    await within(new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => (out += chunk) && out.includes('\n') && resolve());
      child.once('exit', (code) => reject(new Error(`the non-reading client exited with ${code}: ${out}`)));
    }), 'the non-reading client to bind');
    return { path: clientPath, kill };
  }

  async function unix(name: string, maxPacketSize?: number) {
    const socket = track(createUnixDatagramSocket({ path: `${dir}/${name}`, maxPacketSize }));
    await within(socket.bind(), `a Unix datagram bind at ${name}`);
    return socket;
  }

  describe('over UDP', () => {
    it.each([
      ['127.0.0.1', 'IPv4'],
      ['::1', 'IPv6'],
    ])('binds %s on port 0 and reports the real port the OS chose', async (host, family) => {
      const socket = await udp(host);

      const address = socket.address() as IpAddress;

      expect(address).toEqual({ host, port: expect.any(Number), family });
      expect(address.port).toBeGreaterThan(0);
    });

    it.each(['127.0.0.1', '::1'])('echoes a datagram back to its sender on %s', async (host) => {
      const server = await udp(host);
      echoBack(server);
      const client = await udp(host);
      const replies = inbox(client);

      await client.send(Buffer.from('Hello, world'), server.address());
      const reply = await replies.next('the echo');

      expect(reply.data.toString()).toBe('Hello, world');
      expect(reply.truncated).toBe(false);
      expect(reply.from).toEqual(server.address());
    });

    it('cuts a 20000-byte datagram to maxPacketSize 8192 and says it was truncated', async () => {
      const server = await udp('127.0.0.1', { maxPacketSize: 8192 });
      const received = inbox(server);
      const client = await udp('127.0.0.1');
      const payload = Buffer.alloc(20000, 'x');
      payload.write('start', 0);

      await client.send(payload, server.address());
      const datagram = await received.next('the long datagram');

      expect(datagram.data.length).toBe(8192);
      expect(datagram.data.equals(payload.subarray(0, 8192))).toBe(true);
      expect(datagram.truncated).toBe(true);
      expect(datagram.from).toEqual(client.address());
    });

    it('delivers a datagram of exactly maxPacketSize bytes whole, not truncated', async () => {
      const server = await udp('127.0.0.1', { maxPacketSize: 8192 });
      const received = inbox(server);
      const client = await udp('127.0.0.1');

      await client.send(Buffer.alloc(8192, 'y'), server.address());
      const datagram = await received.next('the datagram of maxPacketSize bytes');

      expect(datagram.data.length).toBe(8192);
      expect(datagram.truncated).toBe(false);
    });

    it('rejects a second bind on the same port with AddressInUseError naming the address', async () => {
      const first = await udp('127.0.0.1', { reuseAddress: false });
      const { port } = first.address() as IpAddress;
      const second = track(createUdpSocket({ port, host: '127.0.0.1', reuseAddress: false }));

      const failure = within(second.bind(), 'the second bind to fail');

      await expect(failure).rejects.toBeInstanceOf(AddressInUseError);
      await expect(failure).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port}.*Fix:`));
      // its fix names only what exists: @UdpServer has no reuseAddress option (a new user followed that hint)
      await expect(failure).rejects.not.toThrow(/reuseAddress/);
    });

    it('rejects a datagram larger than UDP allows instead of dropping it silently', async () => {
      const socket = await udp('127.0.0.1');

      const failure = within(socket.send(Buffer.alloc(70000), socket.address()), 'the send to fail');
      await expect(failure).rejects.toMatchObject({ code: 'EMSGSIZE' });
      // Its size, the limit and the fix, not a bare "send EMSGSIZE host:port" (hostile run).
      await expect(failure).rejects.toThrow(/a reply of 70000 bytes is longer than one UDP datagram can carry \(65,507 bytes over IPv4.*\(EMSGSIZE\)\. Fix: send less per datagram/);
    });

    it('rejects a send to a Unix address with a clear error', async () => {
      const socket = await udp('127.0.0.1');

      await expect(socket.send(Buffer.from('x'), { path: '/tmp/x.sock' })).rejects.toThrow(/UdpServer\.send\(\).*Fix:/);
    });

    it('can be closed twice, and a send after close rejects', async () => {
      const socket = await udp('127.0.0.1');
      const target: ClientAddress = socket.address();

      await socket.close();
      await socket.close();

      await expect(socket.send(Buffer.from('x'), target)).rejects.toThrow(/closed/);
    });
  });

  describe('over Unix datagram sockets', () => {
    it('echoes a datagram between two bound sockets, and each sees the other’s path as the sender', async () => {
      const server = await unix('server.sock');
      const seen = inbox(server);
      echoBack(server);
      const client = await unix('client.sock');
      const replies = inbox(client);

      await client.send(Buffer.from('Hello, world'), server.address());
      const request = await seen.next('the request');
      const reply = await replies.next('the echo');

      expect(server.address()).toEqual({ path: `${dir}/server.sock` });
      expect(request.from).toEqual({ path: `${dir}/client.sock` });
      expect(reply.data.toString()).toBe('Hello, world');
      expect(reply.from).toEqual({ path: `${dir}/server.sock` });
      expect(reply.truncated).toBe(false);
    });

    it('delivers a datagram in the loop turn it arrives, not when a later timer wakes the loop (Node 26)', async () => {
      // In a plain process whose only timer is a 3 s bound (jest's own handles wake the loop and hide it):
      // before the fix, on Node 26 the addon's nextTick'd 'data' event ran only when that timer fired.
      const script = path.join(__dirname, '../fixtures/unix-dgram-wake.js');
      const { stdout } = await within(promisify(execFile)(process.execPath, [script], { timeout: 15000 }), 'the round-trip process', 20000);
      expect(stdout.trim()).toBe('delivered now');
    });

    it('cuts a datagram longer than maxPacketSize and says it was truncated', async () => {
      const server = await unix('server.sock', 8192);
      const seen = inbox(server);
      const client = await unix('client.sock');

      await client.send(Buffer.alloc(20000, 'z'), server.address());
      const datagram = await seen.next('the long datagram');

      expect(datagram.data.length).toBe(8192);
      expect(datagram.truncated).toBe(true);
    });

    it('receives from an unbound client with an empty path, and a reply to it rejects clearly', async () => {
      const server = await unix('server.sock');
      const seen = inbox(server);
      const unbound = new DgramSocket();
      cleanups.push(() => unbound.close());

      unbound.sendTo(Buffer.from('hi'), 0, 2, `${dir}/server.sock`);
      const request = await seen.next('the datagram from the unbound client');

      expect(request.from).toEqual({ path: '' });
      const error = await server.send(Buffer.from('reply'), request.from).catch((e) => e);
      expect(error.message).toMatch(/UnixDatagramServer\.send\(\).*unbound.*abstract.*Fix:/);
      expect(error).toMatchObject({ name: 'UnreachableClientError', code: 'EDESTADDRREQ' });
      // exported by the package, so a @HandleError can test for it (a new user could not import it)
      expect(error).toBeInstanceOf(UnreachableClientError);
      expect(error).toBeInstanceOf(SockserveError);
      expect(errorKind(error)).toBe('client');
    });

    it('rejects a send to a path where nobody is bound, as routine client behaviour (ENOENT, or ECONNREFUSED for a stale file)', async () => {
      const socket = await unix('server.sock');
      const gone = await unix('gone.sock');
      const stale = new DgramSocket(); // the addon's close() leaves the file behind: a client that crashed
      stale.bind(`${dir}/stale.sock`);
      stale.close();
      void gone;

      const missing = await within(socket.send(Buffer.from('x'), { path: `${dir}/nobody.sock` }).catch((e) => e), 'the send to fail');
      const refused = await within(socket.send(Buffer.from('x'), { path: `${dir}/stale.sock` }).catch((e) => e), 'the send to fail');

      expect(missing).toMatchObject({ name: 'UnreachableClientError', code: 'ENOENT' });
      expect(missing.message).toMatch(/nobody\.sock/);
      expect(refused).toMatchObject({ name: 'UnreachableClientError', code: 'ECONNREFUSED' });
      expect([errorKind(missing), errorKind(refused)]).toEqual(['client', 'client']);

      // A client whose path is now a stream socket's: its own doing, routine too.
      const stream = net.createServer();
      await new Promise<void>((resolve) => stream.listen(`${dir}/stream.sock`, resolve));
      cleanups.push(() => new Promise((resolve) => stream.close(resolve)));
      const wrongType = await within(socket.send(Buffer.from('x'), { path: `${dir}/stream.sock` }).catch((e) => e), 'the send to fail');
      expect(wrongType).toMatchObject({ name: 'UnreachableClientError', code: 'EPROTOTYPE' });
      expect(errorKind(wrongType)).toBe('client');
    });

    it('rejects a reply to a client connect()ed to another socket as routine client behaviour (EPERM), with a fix that says so', async () => {
      // What a client connected to the server's receiving socket meets once that socket was replaced (reopen(),
      // after a reply found its queue full): each reply was a plain Error, logged as a handler's traceback (hostile run).
      const server = await unix('server.sock');
      const seen = inbox(server);
      const other = await unix('other.sock');
      void other;
      const script = [
        'import socket, sys, time',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `s.bind(${JSON.stringify(`${dir}/connected.sock`)})`,
        `s.connect(${JSON.stringify(`${dir}/other.sock`)})`,
        `s.sendto(b'hi', ${JSON.stringify(`${dir}/server.sock`)})`,
        'print("sent", flush=True)',
        'time.sleep(10)',
      ].join('\n');
      const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      cleanups.push(() => {
        if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        return within(gone, 'the python client to exit');
      });
      const request = await seen.next('the datagram from the connected client');
      expect(request.from).toEqual({ path: `${dir}/connected.sock` });
      const error = await within(server.send(Buffer.from('reply'), request.from).catch((e) => e), 'the send to fail');
      expect(error).toMatchObject({ name: 'UnreachableClientError', code: 'EPERM' });
      expect(error.message).toMatch(/connected\.sock is connect\(\)ed to another socket.*EPERM.*Fix \(client side\)/);
      expect(errorKind(error)).toBe('client');
    });

    it('drops only the replies a client that never reads has no room for, and goes on reading and answering others', async () => {
      // node-unix-socket 0.2.7 polls for writability instead of readability after one EAGAIN, for good: the
      // socket read nothing more and spun the CPU, so one client that did not read stopped the whole server.
      const server = await unix('server.sock');
      fs.chmodSync(`${dir}/server.sock`, 0o620); // as @UnixDatagramServer({ mode }) does after binding
      const seen = inbox(server);
      echoBack(server);
      const { path: silent } = await nonReader(`${dir}/silent.sock`);

      const outcomes = await within(
        Promise.all([...Array(20).keys()].map((i) => server.send(Buffer.from(`r${i}`), { path: silent }).then(() => 'sent', (e) => e))),
        'twenty sends to settle',
      );
      const dropped = outcomes.filter((o) => o !== 'sent');

      expect(outcomes.filter((o) => o === 'sent').length).toBeGreaterThanOrEqual(1);
      expect(dropped.length).toBeGreaterThanOrEqual(1);
      for (const error of dropped) {
        expect(error).toMatchObject({ name: 'UnreachableClientError', code: 'EAGAIN' });
        expect(error.message).toMatch(/silent\.sock ha[sd] no room.*dropped.*Fix/);
        expect(errorKind(error)).toBe('client');
      }

      const client = await unix('client.sock');
      const replies = inbox(client);
      for (const word of ['after', 'still']) {
        await client.send(Buffer.from(word), server.address());
        expect((await seen.next(`the datagram "${word}"`)).data.toString()).toBe(word);
        const reply = await replies.next(`the echo of "${word}"`);
        expect(reply.data.toString()).toBe(word);
        expect(reply.from).toEqual({ path: `${dir}/server.sock` });
      }
      expect(server.address()).toEqual({ path: `${dir}/server.sock` });
      expect(fs.statSync(`${dir}/server.sock`).mode & 0o777).toBe(0o620); // the fresh socket's file keeps them

      await server.close();
      expect(fs.existsSync(`${dir}/server.sock`)).toBe(false);
    });

    it('says once, through onFailure, when it cannot bind a fresh socket at its path (another file took it) and receives nothing more', async () => {
      const failures: Error[] = [];
      // No spare senders: the replacement binds a fresh one at the path, as once the spares are used up.
      const server = createUnixDatagramSocket({ path: `${dir}/server.sock`, maxPacketSize: 8192, onFailure: (e) => failures.push(e), spareSenders: 0 });
      cleanups.push(() => server.close());
      await server.bind();
      const silent = await nonReader(`${dir}/silent.sock`);
      fs.rmSync(`${dir}/server.sock`);
      fs.writeFileSync(`${dir}/server.sock`, 'not a socket'); // someone took the path

      // The silent client's queue fills: the sender that met EAGAIN is put aside, and the next send needs a fresh one.
      await within(Promise.all([...Array(15).keys()].map((i) => server.send(Buffer.from(`r${i}`), { path: silent.path }).catch(() => undefined))), 'the sends');
      const next = await server.send(Buffer.from('x'), { path: `${dir}/other.sock` }).catch((e: Error) => e);

      expect(failures).toHaveLength(1);
      expect(failures[0].message).toMatch(/^UnixDatagramServer: the Unix datagram socket failed and receives nothing more: .*in use.*Fix:/i);
      expect(next).toBe(failures[0]);
      await expect(server.send(Buffer.from('x'), { path: silent.path })).rejects.toBe(failures[0]);
      await server.close();
      expect(fs.readFileSync(`${dir}/server.sock`, 'utf8')).toBe('not a socket'); // close() leaves the other file alone
    });

    it('holds back replies to a client whose queue was full, but not to a new client bound at its path since', async () => {
      const server = await unix('server.sock');
      const silent = await nonReader(`${dir}/silent.sock`);
      const outcomes = await within(
        Promise.all([...Array(15).keys()].map((i) => server.send(Buffer.from(`r${i}`), { path: silent.path }).then(() => 'sent', (e) => e.code))),
        'fifteen sends to settle',
      );
      expect(outcomes).toContain('EAGAIN');
      expect(await server.send(Buffer.from('held'), { path: silent.path }).catch((e) => e.code)).toBe('EAGAIN'); // held back, unsent

      await silent.kill();
      fs.rmSync(silent.path);
      const newcomer = await unix('silent.sock'); // another client, at the same path, within the hold
      const replies = inbox(newcomer);
      await server.send(Buffer.from('welcome'), { path: silent.path });
      expect((await replies.next('the reply to the new client')).data.toString()).toBe('welcome');
    });

    it('rejects a datagram too large for the kernel instead of dropping it silently', async () => {
      const server = await unix('server.sock');
      const client = await unix('client.sock');

      // Larger than any sender's send buffer (4 MiB asked for, cut to net.core.wmem_max, doubled by the kernel).
      await expect(within(client.send(Buffer.alloc(16 * 1024 * 1024), server.address()), 'the send to fail')).rejects.toThrow(
        /too long/,
      );
    });

    it('replaces a stale socket file at its path when binding', async () => {
      const path = `${dir}/server.sock`;
      const leftover = new DgramSocket();
      leftover.bind(path);
      leftover.close(); // node-unix-socket leaves the file behind

      const server = await unix('server.sock');

      expect(server.address()).toEqual({ path });
    });

    it('refuses to bind over a live socket with AddressInUseError, and the live socket keeps working', async () => {
      const live = await unix('server.sock');
      const seen = inbox(live);
      const intruder = track(createUnixDatagramSocket({ path: `${dir}/server.sock` }));

      await expect(within(intruder.bind(), 'the bind to fail')).rejects.toBeInstanceOf(AddressInUseError);
      await intruder.close(); // must not remove the live socket's file

      const client = await unix('client.sock');
      await client.send(Buffer.from('still there?'), live.address());
      expect((await seen.next('a datagram to the live socket')).data.toString()).toBe('still there?');
    });

    it('removes its socket file on close, and closing twice is fine', async () => {
      const path = `${dir}/server.sock`;
      const socket = await unix('server.sock');
      expect(fs.lstatSync(path).isSocket()).toBe(true);

      await socket.close();
      expect(fs.existsSync(path)).toBe(false);
      await expect(socket.close()).resolves.toBeUndefined();
      await expect(socket.send(Buffer.from('x'), { path })).rejects.toThrow(/closed/);
    });

    it('throws an error naming UnixDatagramServer, the platform and the fix when the addon cannot load', () => {
      jest.isolateModules(() => {
        jest.doMock('node-unix-socket', () => {
          throw new Error('simulated: the prebuilt binary is missing');
        });
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const isolated = require('../../src/transports/datagram-socket') as typeof import('../../src/transports/datagram-socket');

        expect(() => isolated.createUnixDatagramSocket({ path: `${dir}/never.sock` })).toThrow(
          new RegExp(`UnixDatagramServer.*${process.platform}-${process.arch}.*simulated.*Fix: run 'npm install node-unix-socket'`),
        );
      });
      jest.dontMock('node-unix-socket');
    });

    it('refuses to open a Unix datagram socket in a worker thread, where the addon would break the main thread’s sockets', () => {
      jest.isolateModules(() => {
        jest.doMock('worker_threads', () => ({ ...jest.requireActual<object>('worker_threads'), isMainThread: false }));
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const isolated = require('../../src/transports/datagram-socket') as typeof import('../../src/transports/datagram-socket');

        expect(() => isolated.createUnixDatagramSocket({ path: `${dir}/never.sock` })).toThrow(
          /UnixDatagramServer.*main thread.*Fix:/,
        );
      });
      jest.dontMock('worker_threads');
    });
  });
});
