import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { within } from '../helpers/clients';
import { lingeringClose } from '../../src/transports/lingering-close';

const certs = path.join(__dirname, '../fixtures/certs');

/**
 * lingeringClose() on real loopback sockets: the server has written its reply and its FIN, and then
 * lingers on the client's unread input instead of resetting the connection.
 */
describe('lingeringClose (after the reply and its FIN)', () => {
  let server: net.Server | tls.Server | undefined;
  const clients: net.Socket[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A server that answers each connection with 'reply\n', half-closes, and lingers `lingerMs`; resolves with its side of the first connection. */
  async function lingering(lingerMs: number): Promise<{ port: number; accepted: Promise<{ socket: net.Socket; readAtLinger: number }> }> {
    let accept!: (v: { socket: net.Socket; readAtLinger: number }) => void;
    const accepted = new Promise<{ socket: net.Socket; readAtLinger: number }>((r) => (accept = r));
    server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end('reply\n', () => {
        const readAtLinger = socket.bytesRead;
        lingeringClose(socket, lingerMs);
        accept({ socket, readAtLinger });
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { port: (server!.address() as net.AddressInfo).port, accepted };
  }

  const closedWithin = (socket: net.Socket, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (socket.destroyed) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  test('a client that sends a little more and then closes gets the reply, and no reset', async () => {
    const { port, accepted } = await lingering(5000);
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    clients.push(client);
    let got = '';
    let error: string | undefined;
    client.on('data', (d) => (got += d));
    client.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    client.write(Buffer.alloc(100 * 1024, 0x61));
    client.on('end', () => client.end(Buffer.alloc(50 * 1024, 0x62)));
    const { socket } = await accepted;
    expect(await closedWithin(socket, 3000)).toBe(true); // at the client's FIN, long before lingerMs
    expect(await closedWithin(client, 3000)).toBe(true);
    expect(got).toBe('reply\n');
    expect(error).toBeUndefined();
  });

  test('a client that pipelined 1 MiB past the end and reads its reply slowly gets all of it, and no reset', async () => {
    // The server's reply is 4 MiB, written before its FIN; the client's 1 MiB of input must be read and
    // discarded, so that the close at lingerMs finds none unread (unread input turns the close into a reset,
    // which destroys the reply still on its way: a linger that stopped reading after 256 KiB did that).
    const reply = Buffer.alloc(4 * 1024 * 1024, 0x72);
    let accept!: (s: net.Socket) => void;
    const accepted = new Promise<net.Socket>((r) => (accept = r));
    server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(reply);
      lingeringClose(socket, 1000);
      accept(socket);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    clients.push(client);
    let got = 0;
    let error: string | undefined;
    client.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    client.pause();
    client.write(Buffer.alloc(1024 * 1024, 0x61));
    await accepted;
    const ended = new Promise<void>((r) => client.once('end', r));
    // read slowly: 64 KiB every 20 ms (the 4 MiB take ~1.3 s, past lingerMs)
    const reader = setInterval(() => {
      let chunk: Buffer | null;
      let n = 0;
      while (n < 64 * 1024 && (chunk = client.read()) !== null) n += chunk.length;
      got += n;
    }, 20);
    try {
      await within(10000, 'the whole reply', Promise.race([ended, new Promise((r) => client.once('close', r))]));
    } finally {
      clearInterval(reader);
    }
    expect(error).toBeUndefined();
    expect(got).toBe(reply.length);
  });

  /**
   * One connection through `listen`'s server: the server replies 'reply\n' with its FIN and lingers; the client
   * then writes 8 MiB and closes. Resolves with what the client got, the server's bytesRead at its close and the
   * number of 'data' events a listener added after lingeringClose saw (each one a chunk allocated to be dropped).
   */
  async function floodAfterFin(secure: boolean): Promise<{ got: string; bytesRead: number; dataEvents: number; error?: string }> {
    const total = 8 * 1024 * 1024;
    let result!: (v: { bytesRead: number; dataEvents: number }) => void;
    const serverSide = new Promise<{ bytesRead: number; dataEvents: number }>((r) => (result = r));
    const onSocket = (socket: net.Socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.end('reply\n', () => {
          lingeringClose(socket, 10000);
          let dataEvents = 0;
          socket.on('data', () => dataEvents++);
          const start = socket.bytesRead;
          socket.once('close', () => result({ bytesRead: socket.bytesRead - start, dataEvents }));
        });
      });
    };
    server = secure
      ? tls.createServer({ key: fs.readFileSync(path.join(certs, 'server.key')), cert: fs.readFileSync(path.join(certs, 'server.crt')), allowHalfOpen: true }, onSocket)
      : net.createServer({ allowHalfOpen: true }, onSocket);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const client = secure
      ? tls.connect({ port, host: '127.0.0.1', ca: fs.readFileSync(path.join(certs, 'ca.crt')), servername: 'localhost', allowHalfOpen: true } as tls.ConnectionOptions)
      : net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    clients.push(client);
    let got = '';
    let error: string | undefined;
    client.on('data', (d) => (got += d));
    client.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    client.write('go\n');
    await within(10000, 'the reply and its FIN', new Promise((r) => client.once('end', r)));
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!client.write(chunk)) await within(10000, 'drain', new Promise((r) => client.once('drain', r)));
    }
    client.end();
    const { bytesRead, dataEvents } = await within(15000, 'the server side closed', serverSide);
    return { got, bytesRead, dataEvents, error };
  }

  test('what a client sends after the FIN is read into one shared buffer: no chunk is allocated, no data event, every byte read', async () => {
    // Before, each discarded chunk was a fresh buffer (garbage until collected): 100 MB sent at loopback speed
    // grew the server's RSS by ~34 MB (npm run bench -- --only nodelim), against issue 14's maxLength + 1 MB.
    const r = await floodAfterFin(false);
    expect(r.error).toBeUndefined();
    expect(r.got).toBe('reply\n');
    expect(r.dataEvents).toBe(0);
    expect(r.bytesRead).toBe(8 * 1024 * 1024);
  }, 30000);

  test('over TLS too the linger reads to the client\'s close without a reset', async () => {
    const r = await floodAfterFin(true);
    expect(r.error).toBeUndefined();
    expect(r.got).toBe('reply\n');
    expect(r.dataEvents).toBe(0);
    expect(r.bytesRead).toBeGreaterThanOrEqual(8 * 1024 * 1024); // TLS records: a little more than the plain text
  }, 30000);

  test('a client that sends nothing and never closes is closed after lingerMs', async () => {
    const { port, accepted } = await lingering(300);
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    clients.push(client);
    client.on('error', () => undefined);
    client.resume();
    const { socket } = await accepted;
    const t0 = Date.now();
    expect(await closedWithin(socket, 3000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});
