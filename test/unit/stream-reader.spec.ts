import * as net from 'node:net';
import { StreamReader } from '../../src/classic';
import { connect, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';

/** node:timers itself (not an import's namespace, whose bindings cannot be spied on): what StreamReader's grace calls. */
const timers = jest.requireActual<typeof import('node:timers')>('node:timers');

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

    // node:timers' own (the grace is the server's wait: jest.useFakeTimers() must not hold it), not the globals
    const setTimeoutSpy = jest.spyOn(timers, 'setTimeout');
    const clearTimeoutSpy = jest.spyOn(timers, 'clearTimeout');
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

  test('a clock set back since the accept (a test\'s faked Date) arms the grace for at most its own length (it asked setTimeout for ~10^10 ms: an overflow warning, and a timer at once)', async () => {
    const { port } = server.address() as net.AddressInfo;
    client = await connect({ host: '127.0.0.1', port });
    const socket = await accepted;
    const reader = new StreamReader(socket);
    const setTimeoutSpy = jest.spyOn(timers, 'setTimeout');
    const now = Date.now();
    const nowSpy = jest.spyOn(Date, 'now').mockReturnValue(now - 1e10);
    try {
      reader.stopReading();
      const line = reader.readline();
      const delays = setTimeoutSpy.mock.calls.map(([, ms]) => ms as number);
      expect(delays).toHaveLength(1);
      expect(delays[0]).toBeGreaterThan(0);
      expect(delays[0]).toBeLessThanOrEqual(1000);
      nowSpy.mockRestore();
      expect((await within(5000, 'the read to end', line)).length).toBe(0);
    } finally {
      nowSpy.mockRestore();
      setTimeoutSpy.mockRestore();
      socket.destroy();
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

// A reset is never a clean end of input, whether a read was waiting when it came or not (Python's recv()
// raises ConnectionResetError): a reset that came while nothing read (an async @Verify pending) read as EOF.
describe('StreamReader after a reset that came while nothing read', () => {
  let server: net.Server;
  let accepted: Promise<net.Socket>;
  const sockets: net.Socket[] = [];

  beforeEach(async () => {
    server = net.createServer();
    accepted = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await new Promise((resolve) => server.close(resolve));
  });

  /** The server's socket and its rfile once the client sent `sent` and reset, the reset taken with no read waiting. */
  async function resetBeforeReading(sent: string): Promise<StreamReader> {
    const { port } = server.address() as net.AddressInfo;
    const client = await connect({ host: '127.0.0.1', port });
    sockets.push(client);
    const socket = await accepted;
    sockets.push(socket);
    const reader = new StreamReader(socket);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    client.write(sent);
    await until(() => socket.bytesRead === sent.length, 5000); // read into the socket, not by the rfile (paused)
    client.resetAndDestroy();
    await within(5000, 'the reset to close the server side', closed);
    return reader;
  }

  test.each([
    ['readline()', (r: StreamReader) => r.readline()],
    ['read(10)', (r: StreamReader) => r.read(10)],
    ['readAll()', (r: StreamReader) => r.readAll()],
  ])('%s rejects with ECONNRESET, not an empty read', async (_name, read) => {
    const reader = await resetBeforeReading('partial');
    await expect(within(5000, 'the read', read(reader))).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  test('read1() gives the bytes that came before the reset, then rejects with ECONNRESET (the reset took what Node had read: in workers a whole line was lost)', async () => {
    const reader = await resetBeforeReading('partial');
    expect((await within(5000, 'the first read', reader.read1())).toString()).toBe('partial');
    await expect(within(5000, 'the next read', reader.read1())).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  test('readline() gives a whole line that came before the reset, then rejects', async () => {
    const reader = await resetBeforeReading('line\npart');
    expect((await within(5000, 'the line', reader.readline())).toString()).toBe('line\n');
    await expect(within(5000, 'the rest', reader.readline())).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});

describe('StreamReader byte counts, as Python takes them', () => {
  test("readlines(hint) on a datagram's rfile stops once the lines reach the hint, as Python's BytesIO (a socket's passes it: classic-stream.spec)", async () => {
    const lines = await StreamReader.fromBuffer(Buffer.from('cc\ndd\nee\n')).readlines(6);
    expect(lines.map(String)).toEqual(['cc\n', 'dd\n']);
  });

  test('null is no limit (Python\'s None); a count that is not an integer is a TypeError and consumes nothing', async () => {
    // Before: read(1.5) took one byte and then lost the next, and readline(null) read an empty line (an EOF look-alike).
    const r = StreamReader.fromBuffer(Buffer.from('0123456789\nrest'));
    await expect(r.read(1.5)).rejects.toThrow(TypeError);
    await expect(r.readline(Number.NaN)).rejects.toThrow(/rfile\.readline\(NaN\): the byte count must be an integer/);
    await expect(r.read1(0.5)).rejects.toThrow(TypeError);
    expect((await r.readline(null)).toString()).toBe('0123456789\n');
    expect((await r.read(null)).toString()).toBe('rest');
  });

  test('read1(0), read(0) and readline(0) return an empty buffer at once on an idle connection, as Python\'s, and consume nothing', async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    const socket = await accepted;
    try {
      const r = new StreamReader(socket);
      // Before: read1(0) waited for the client's next bytes (for ever from a client that waits for a reply).
      for (const read of [() => r.read1(0), () => r.read(0), () => r.readline(0)]) {
        expect((await within(1000, 'the zero-byte read', read())).length).toBe(0);
      }
      client.write('late\n');
      expect((await within(5000, 'the line', r.readline())).toString()).toBe('late\n');
    } finally {
      client.destroy();
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
