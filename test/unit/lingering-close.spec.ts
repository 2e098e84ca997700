import * as net from 'node:net';
import { within } from '../helpers/clients';
import { lingeringClose } from '../../src/transports/lingering-close';

/**
 * lingeringClose() on real loopback sockets: the server has written its reply and its FIN, and then
 * lingers on the client's unread input instead of resetting the connection.
 */
describe('lingeringClose (after the reply and its FIN)', () => {
  let server: net.Server | undefined;
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
