import * as net from 'node:net';
import { ProxyProtocolError } from '../../src';
import { Preamble, PreambleResult } from '../../src/classic';
import { v1Header } from '../helpers/edge-clients';

/**
 * Preamble.start(), the callback form the listener uses: the connection is handed on from the event that
 * brought its PROXY header (no promise turn), the bytes after the header stay for the handler, and the
 * intake leaves no listener, timer or mark behind.
 */
describe('Preamble.start()', () => {
  let server: net.Server | undefined;
  const sockets: net.Socket[] = [];

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });

  /** A listener whose accepted sockets are paused, as the server's are; resolves with a client and its server-side socket. */
  async function pair(): Promise<{ client: net.Socket; accepted: net.Socket }> {
    let accept!: (s: net.Socket) => void;
    const got = new Promise<net.Socket>((r) => (accept = r));
    server = net.createServer({ pauseOnConnect: true }, (s) => {
      sockets.push(s);
      accept(s);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sockets.push(client);
    await new Promise((r) => client.once('connect', r));
    return { client, accepted: await got };
  }

  const listeners = (s: net.Socket) => ['data', 'end', 'close', 'error'].map((e) => s.listenerCount(e));
  const peerOf = (s: net.Socket) => ({ host: s.remoteAddress!, port: s.remotePort!, family: 'IPv4' as const });

  test('calls back from the data event that brought the header, and leaves the rest of the bytes unread', async () => {
    const { client, accepted } = await pair();
    const preamble = Preamble.from({ proxyProtocol: true })!;
    // A microtask queued as the bytes arrive: the old promise form called back only after it ran.
    let microtaskRan = false;
    accepted.prependListener('data', () => queueMicrotask(() => (microtaskRan = true)));
    const before = listeners(accepted);
    const result = new Promise<{ result: PreambleResult | undefined; inEvent: boolean }>((resolve, reject) =>
      preamble.start(accepted, peerOf(accepted), (err, r) => (err ? reject(err) : resolve({ result: r, inEvent: !microtaskRan }))));
    client.write(`${v1Header('203.0.113.7', 51000, '192.0.2.1', 443)}hello\n`);
    const { result: r, inEvent } = await result;
    expect(inEvent).toBe(true);
    expect(r?.clientAddress).toEqual({ host: '203.0.113.7', port: 51000, family: 'IPv4' });
    expect(r?.proxy).toMatchObject({ version: 1, protocol: 'TCP4' });
    expect(r?.socket).toBe(accepted);
    // The intake's four listeners are gone again; the socket is paused with the line still to read.
    expect(listeners(accepted)).toEqual(before);
    expect(accepted.isPaused()).toBe(true);
    const rest = await new Promise<string>((resolve) => {
      let text = '';
      accepted.on('data', (d) => {
        text += d;
        if (text.includes('\n')) resolve(text);
      });
      accepted.resume();
    });
    expect(rest).toBe('hello\n');
  });

  test('a header cut short past its time ends with a ProxyProtocolError, and leaves no listener behind', async () => {
    const { client, accepted } = await pair();
    const preamble = Preamble.from({ proxyProtocol: true, limits: { lineTimeout: 0.2 } })!;
    const before = listeners(accepted);
    const started = Date.now();
    const err = await new Promise<unknown>((resolve) => preamble.start(accepted, peerOf(accepted), (e) => resolve(e)));
    client.write('PROXY TCP4 203.0'); // never finished
    expect(err).toBeInstanceOf(ProxyProtocolError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(listeners(accepted)).toEqual(before);
  });

  test('a connection closed before its first byte is a health check: undefined, once', async () => {
    const { client, accepted } = await pair();
    const preamble = Preamble.from({ proxyProtocol: true })!;
    const calls: Array<[unknown, PreambleResult | undefined]> = [];
    const done = new Promise<void>((resolve) => preamble.start(accepted, peerOf(accepted), (e, r) => {
      calls.push([e, r]);
      resolve();
    }));
    client.end();
    await done;
    // 'end' and 'close' both come: the second must not call back again
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([[undefined, undefined]]);
  });

  test('run() resolves as start() calls back', async () => {
    const { client, accepted } = await pair();
    const preamble = Preamble.from({ proxyProtocol: true })!;
    const running = preamble.run(accepted, peerOf(accepted));
    client.write(v1Header('198.51.100.9', 4000, '192.0.2.1', 80));
    await expect(running).resolves.toMatchObject({ clientAddress: { host: '198.51.100.9', port: 4000 }, socket: accepted });
  });
});
