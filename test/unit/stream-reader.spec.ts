import * as net from 'node:net';
import { StreamReader } from '../../src/classic';
import { connect, within } from '../helpers/clients';

describe("StreamReader's first-request grace at shutdown", () => {
  let server: net.Server;
  let client: net.Socket | undefined;
  let accepted: Promise<net.Socket>;

  beforeEach(async () => {
    server = net.createServer();
    accepted = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    client?.destroy();
    client = undefined;
    await new Promise((resolve) => server.close(resolve));
  });

  test('a connection that closes during the grace leaves no timer behind (it held the process open for up to 1 s after close)', async () => {
    const { port } = server.address() as net.AddressInfo;
    client = await connect({ host: '127.0.0.1', port });
    const socket = await accepted;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const reader = new StreamReader(socket);
    reader.stopReading(); // shutdown: a fresh connection that has sent nothing yet gets the grace

    const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
    const clearTimeoutSpy = jest.spyOn(global, 'clearTimeout');
    try {
      const line = reader.readline();
      // The grace's timer, waiting (up to 1 s from the rfile's creation) for a first request.
      const graces = setTimeoutSpy.mock.results.map((r) => r.value as NodeJS.Timeout);
      expect(graces).toHaveLength(1);

      client.destroy(); // the client goes away during the grace
      await within(5000, 'the server side to close', closed);
      expect((await within(5000, 'the read to end', line)).length).toBe(0);

      expect(clearTimeoutSpy.mock.calls.some(([timer]) => timer === graces[0])).toBe(true); // cleared, not left to fire
    } finally {
      setTimeoutSpy.mockRestore();
      clearTimeoutSpy.mockRestore();
    }
  });

  test('a client silent through the grace still ends at shutdown once the grace is over', async () => {
    const { port } = server.address() as net.AddressInfo;
    client = await connect({ host: '127.0.0.1', port });
    const socket = await accepted;
    const reader = new StreamReader(socket);
    reader.stopReading();
    const started = Date.now();
    expect((await within(5000, 'the read to end', reader.readline())).length).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    socket.destroy();
  });
});
