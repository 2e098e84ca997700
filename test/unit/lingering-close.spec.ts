import * as net from 'node:net';
import { LINGER_BYTES, lingeringClose } from '../../src/transports/lingering-close';

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

  test('a client that never stops sending: at most LINGER_BYTES are read and discarded, then reading stops until lingerMs', async () => {
    const { port, accepted } = await lingering(1500);
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }); // ignores the server's FIN
    clients.push(client);
    client.on('error', () => undefined);
    client.resume();
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let writing = true;
    const pump = () => {
      while (writing && !client.destroyed && client.write(chunk));
    };
    client.on('drain', pump);
    client.on('connect', pump);
    const { socket, readAtLinger } = await accepted;
    await new Promise((r) => setTimeout(r, 500));
    // Read since the linger began: the budget, plus what one read and the stream's buffer take past it.
    // Without the bound the server read on at loopback speed (tens of MB in this time).
    expect(socket.bytesRead - readAtLinger).toBeLessThanOrEqual(LINGER_BYTES + 256 * 1024);
    expect(socket.destroyed).toBe(false); // still lingering: the client's sends wait in the kernel
    expect(await closedWithin(socket, 3000)).toBe(true); // lingerMs ends it
    writing = false;
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
