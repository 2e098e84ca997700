import 'reflect-metadata';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { bootstrap, Concurrent, DatagramRequest, Handle, Server, StreamRequest, UdpServer, UnixStreamServer } from '../../src';
import type { ServerStats, WorkerExitEvent } from '../../src';
import { datagramExchange, datagramSilence, removeTempDir, tempDir, within } from '../helpers/clients';
import { closed, endpoint, heldTlsClient, rawConnect, readLine, tlsConnect, v2Header } from '../helpers/edge-clients';
import { recordEvents } from '../helpers/events';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import * as H from '../fixtures/hostile-observed-handlers';
import { memoryLogger } from '../helpers/memory-logger';

/**
 * Hostile clients against stats() and the sockserve: channels (API.md §14), in every mode: after each,
 * the counters say exactly what happened (nothing counted twice, nothing missed), active returns to 0,
 * every connection.open has its close, every request ends exactly once, and the logger got one warn
 * line for routine client behaviour, an error block for a handler error.
 */
const modes = [
  { mode: 'serial', Plain: H.HostileSerialPlain, Tls: H.HostileSerialTls, Proxy: H.HostileSerialProxy, Framed: H.HostileSerialFramed, Capped: H.HostileSerialCapped, Datagrams: H.HostileSerialDatagrams, workers: false, child: false },
  { mode: '@Concurrent', Plain: H.HostileConcurrentPlain, Tls: H.HostileConcurrentTls, Proxy: H.HostileConcurrentProxy, Framed: H.HostileConcurrentFramed, Capped: H.HostileConcurrentCapped, Datagrams: H.HostileConcurrentDatagrams, workers: false, child: false },
  { mode: '@Threading', Plain: H.HostileThreadPlain, Tls: H.HostileThreadTls, Proxy: H.HostileThreadProxy, Framed: H.HostileThreadFramed, Capped: H.HostileThreadCapped, Datagrams: H.HostileThreadDatagrams, workers: true, child: false },
  { mode: '@Forking', Plain: H.HostileChildPlain, Tls: H.HostileChildTls, Proxy: H.HostileChildProxy, Framed: H.HostileChildFramed, Capped: H.HostileChildCapped, Datagrams: H.HostileChildDatagrams, workers: true, child: true },
];

type Counters = Partial<Omit<ServerStats, 'workers'>>;


const ZERO: Counters = { rejected: 0, errors: 0, clientErrors: 0, tlsErrors: 0, proxyErrors: 0, healthChecks: 0, restarts: 0 };

/** A TLS record header announcing a ClientHello, with none of its body: a handshake cut off at its first bytes. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00]);

describe.each(modes)('observability under hostile clients in $mode mode', (m) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([]));
  let recorder: ReturnType<typeof recordEvents>;
  let logger: ReturnType<typeof memoryLogger>;
  const sockets: net.Socket[] = [];
  beforeEach(() => {
    recorder = recordEvents();
    logger = memoryLogger();
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    recorder.stop();
  });

  async function start(Handler: Function, options: { requestTimeout?: number; transport?: object } = {}): Promise<Server> {
    return serve(await bootstrap(Handler as new () => object, { logger, ...options }));
  }

  function track<T extends net.Socket>(socket: T): T {
    sockets.push(socket);
    socket.on('error', () => undefined);
    return socket;
  }

  const opens = () => recorder.named('sockserve:connection.open').length;
  const closes = () => recorder.named('sockserve:connection.close').length;
  const ends = () => recorder.named('sockserve:request.end');
  /** request.start is published where the request runs: in this process only without workers. */
  const starts = () => recorder.named('sockserve:request.start').length;

  /**
   * Waits until the server is quiet (no request active, no connection open in any worker, every opened
   * connection closed, `requestEnds` request.end events in), then checks every counter: `expected` on top
   * of zeros for the error kinds, so that a count in the wrong field fails.
   */
  async function settles(s: Server, expected: Counters, requestEnds: number): Promise<ServerStats> {
    const quiet = () => {
      const st = s.stats();
      return st.active === 0 && st.workers.every((w) => w.connections === 0) && opens() === closes() && ends().length >= requestEnds
        && Object.entries(expected).every(([k, v]) => st[k as keyof Counters] === v);
    };
    try {
      await until(quiet, 10000);
    } catch {
      // fall through: the assertions below say what differs
    }
    const st = s.stats();
    expect({ ...st, workers: undefined }).toMatchObject({ ...ZERO, ...expected, active: 0 });
    expect(st.workers.map((w) => w.connections).filter((c) => c !== 0)).toEqual([]);
    expect(closes()).toBe(opens());
    expect(ends()).toHaveLength(requestEnds);
    if (!m.workers) expect(starts()).toBe(requestEnds);
    return st;
  }

  function oneWarnLine(pattern: RegExp): void {
    expect(logger.lines.error).toEqual([]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(pattern)]);
    expect(logger.lines.warn[0]).not.toContain('\n');
  }

  test('a client that resets while its reply is being written counts one client error, ends its request once with the error, and logs one warn line', async () => {
    const s = await start(m.Plain);
    const c = track(await rawConnect(endpoint(s), 'big\n'));
    await within(5000, 'the reply to start', new Promise((r) => c.once('data', r)));
    c.resetAndDestroy();
    await settles(s, { accepted: 1, clientErrors: 1, bytesIn: 4 }, 1);
    // A reset or a broken pipe, whichever the kernel says: never ECANCELED, the write Node 22+ cancels
    // because of the reset (the request reports the reset).
    expect(['ECONNRESET', 'EPIPE']).toContain((ends()[0].error as { code?: string }).code);
    expect(s.stats().bytesOut).toBeGreaterThan(0);
    // The same bytes in request.end as in connection.close and stats(): a worker's request.end said what its handler
    // had written when its lifecycle ended (a relayed thread's, what it had sent the main thread), not what left.
    const [close] = recorder.named('sockserve:connection.close');
    expect({ bytesIn: ends()[0].bytesIn, bytesOut: ends()[0].bytesOut }).toEqual({ bytesIn: close.bytesIn, bytesOut: close.bytesOut });
    expect(s.stats().bytesOut).toBe(close.bytesOut);
    oneWarnLine(/ECONNRESET|EPIPE/);
  });

  test('a client that trickles a line past lineTimeout counts one client error and one warn line', async () => {
    const s = await start(m.Plain);
    const c = track(await rawConnect(endpoint(s), 'tr'));
    await closed(c);
    await settles(s, { accepted: 1, clientErrors: 1, bytesIn: 2, bytesOut: 0 }, 1);
    expect(ends()[0].error).toMatchObject({ name: 'RequestTimeoutError' });
    oneWarnLine(/^RequestTimeoutError from 127\.0\.0\.1:\d+: /);
  });

  test('a client idle past requestTimeout after a request counts one client error and one warn line', async () => {
    const s = await start(m.Plain, { requestTimeout: 0.3 });
    const c = track(await rawConnect(endpoint(s), 'one\n'));
    expect(await readLine(c)).toBe('ONE\n');
    await closed(c);
    await settles(s, { accepted: 1, clientErrors: 1, bytesIn: 4, bytesOut: 4 }, 1);
    expect(ends()[0].error).toMatchObject({ name: 'RequestTimeoutError' });
    oneWarnLine(/^RequestTimeoutError from 127\.0\.0\.1:\d+: /);
  });

  test('a line over maxLineLength counts one client error after the lines before it were answered', async () => {
    const s = await start(m.Plain);
    const c = track(await rawConnect(endpoint(s), `ok\n${'x'.repeat(40)}\n`));
    expect((await closed(c)).data).toBe('OK\n');
    await settles(s, { accepted: 1, clientErrors: 1, bytesOut: 3 }, 1);
    expect(ends()[0].error).toMatchObject({ name: 'LineTooLongError' });
    oneWarnLine(/LineTooLongError/);
  });

  test('connect-and-close and connect-and-reset with no byte count as health checks only, with their open and close', async () => {
    const s = await start(m.Plain);
    const fin = track(await rawConnect(endpoint(s)));
    fin.end();
    await closed(fin);
    await until(() => s.stats().accepted === 1, 5000);
    const rst = track(await rawConnect(endpoint(s)));
    await until(() => s.stats().accepted === 2, 5000);
    rst.resetAndDestroy();
    // No byte is needed before a plain TCP handler runs, so each was a request, which ended with no error.
    await settles(s, { accepted: 2, healthChecks: 2, bytesIn: 0, bytesOut: 0 }, 2);
    expect(ends().filter((e) => e.error !== undefined)).toEqual([]);
    // Their request.end says so, as stats() counts them: the README's watch() counted each as a request (new user).
    await until(() => ends().length === 2, 5000);
    expect(ends().map((e) => e.healthCheck)).toEqual([true, true]);
    expect(recorder.named('tracing:error')).toEqual([]);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a PROXY header and then the client\'s end (HAProxy\'s check-send-proxy) counts as a health check only, in every mode', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 198.51.100.7 127.0.0.1 4000 80\r\n'));
    c.end();
    await closed(c);
    // Before: @Concurrent and serial counted it as nothing (the header's bytes made it a request), the pools
    // as a health check and a request of the worker's as well.
    await settles(s, { accepted: 1, healthChecks: 1, bytesOut: 0 }, 1);
    expect(s.stats().workers.reduce((n, w) => n + w.requests, 0)).toBe(0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a PROXY header and then a reset (how HAProxy ends a check) counts as a health check only, in every mode', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 198.51.100.8 127.0.0.1 4000 80\r\n'));
    // connection.open is published once the header was read (it names the client the header gives).
    await until(() => opens() === 1, 5000);
    expect(recorder.named('sockserve:connection.open')[0]).toMatchObject({ clientAddress: { host: '198.51.100.8' } });
    c.resetAndDestroy();
    // Before: the header's bytes made the reset a client's error (a warn line, clientErrors 1) in every mode.
    await settles(s, { accepted: 1, healthChecks: 1, bytesOut: 0 }, 1);
    expect(ends().filter((e) => e.error !== undefined)).toEqual([]);
    expect(s.stats().workers.reduce((n, w) => n + w.requests, 0)).toBe(0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test.each([
    ['a reset (HAProxy\'s tcp-check ends so)', (c: net.Socket) => c.resetAndDestroy()],
    ['the client\'s end', (c: net.Socket) => c.end()],
  ])('a PROXY v2 LOCAL connection that sends a line, reads the reply, then ends with %s is a health check: no error, no log line', async (_how, end) => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), Buffer.concat([v2Header({ local: true }), Buffer.from('ping\n')])));
    expect(await readLine(c)).toBe('PING\n');
    end(c);
    // Before: the reset reached the handler's next read, a client error with a warn line per check (new-user run
    // behind the docs' HAProxy configuration: five a second per backend, for ever).
    await settles(s, { accepted: 1, healthChecks: 1 }, 1);
    expect(ends().filter((e) => e.error !== undefined)).toEqual([]);
    // Its request.end says it was the balancer's check, so that a subscriber counting requests can leave it out.
    await until(() => ends().length === 1, 5000);
    expect(ends().map((e) => e.healthCheck)).toEqual([true]);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('an oversized message to @OnMessage counts one client error and the messages before it, and ends the request once', async () => {
    const s = await start(m.Framed);
    const c = track(await rawConnect(endpoint(s), `a\nb\n${'x'.repeat(40)}\n`));
    expect((await closed(c)).data).toBe('A\nB\n');
    await settles(s, { accepted: 1, clientErrors: 1, messages: 2, bytesOut: 4 }, 1);
    expect(ends()[0].error).toMatchObject({ name: 'FrameTooLongError' });
    expect(ends()[0].healthCheck).toBeUndefined();
    oneWarnLine(/FrameTooLongError/);
  });

  test('an @OnMessage that throws counts one handler error and logs one error block, and the messages before it', async () => {
    const s = await start(m.Framed);
    const c = track(await rawConnect(endpoint(s), 'a\nfail\nnever\n'));
    expect((await closed(c)).data).toBe('A\n');
    await until(() => s.stats().messages >= 2, 5000); // a worker's count comes with its next report (<= 1 s)
    await settles(s, { accepted: 1, errors: 1 }, 1);
    expect(logger.lines.warn).toEqual([]);
    expect(logger.lines.error).toEqual([expect.stringMatching(/Error: handler failure/)]);
  });

  test('a client that resets between messages counts one client error, not a handler error', async () => {
    const s = await start(m.Framed);
    const c = track(await rawConnect(endpoint(s), 'a\n'));
    expect(await readLine(c)).toBe('A\n');
    c.resetAndDestroy();
    await settles(s, { accepted: 1, clientErrors: 1, messages: 1 }, 1);
    oneWarnLine(/ECONNRESET/);
  });

  test('a TLS client that vanishes after the first bytes of its ClientHello counts in tlsErrors only', async () => {
    const s = await start(m.Tls);
    const c = track(await rawConnect(endpoint(s), PARTIAL_CLIENT_HELLO));
    await until(() => s.stats().accepted === 1, 5000);
    c.end();
    await closed(c);
    await settles(s, { accepted: 1, tlsErrors: 1 }, 0);
    oneWarnLine(/TlsHandshakeError/);
  });

  test('a TLS client that resets after its whole ClientHello, in the middle of the handshake, counts in tlsErrors only', async () => {
    const s = await start(m.Tls);
    const held = await heldTlsClient(endpoint(s));
    try {
      await held.serverSpoke;
    } finally {
      held.destroy();
    }
    await settles(s, { accepted: 1, tlsErrors: 1 }, 0);
    oneWarnLine(/TlsHandshakeError/);
  });

  test('a TLS client that resets mid-request after its handshake is a client error, not a TLS error', async () => {
    const s = await start(m.Tls);
    const raw = track(await rawConnect(endpoint(s)));
    const c = track(await tlsConnect(endpoint(s), { raw }));
    c.write('one\n');
    expect(await readLine(c)).toBe('ONE\n');
    raw.resetAndDestroy();
    await settles(s, { accepted: 1, clientErrors: 1 }, 1);
    oneWarnLine(/ECONNRESET/);
  });

  test('a client that speaks plain text to a TLS port opens no connection, starts no request and counts no byte, as in every mode', async () => {
    const s = await start(m.Tls);
    const c = track(await rawConnect(endpoint(s), 'hello\n'));
    await closed(c);
    await settles(s, { accepted: 1, tlsErrors: 1, bytesIn: 0, bytesOut: 0 }, 0);
    expect(opens()).toBe(0);
    if (m.workers) {
      await new Promise((r) => setTimeout(r, 1500)); // a report from every worker since (at most 1 s old)
      expect(s.stats().workers.reduce((n, w) => n + w.requests, 0)).toBe(0);
    }
    oneWarnLine(/TlsHandshakeError/);
  });

  test("a TLS request's bytes are the application's (not the TLS records), the same in stats(), request.end and connection.close", async () => {
    const s = await start(m.Tls);
    const c = track(await tlsConnect(endpoint(s)));
    c.write('one\n');
    expect(await readLine(c)).toBe('ONE\n');
    c.end();
    await closed(c);
    const st = await settles(s, { accepted: 1, bytesIn: 4, bytesOut: 4 }, 1);
    expect(ends()[0]).toMatchObject({ bytesIn: 4, bytesOut: 4 });
    expect(recorder.named('sockserve:connection.close')).toEqual([expect.objectContaining({ bytesIn: 4, bytesOut: 4 })]);
    // a worker's figures come with its reports (at most 1 s old)
    if (m.workers) await until(() => s.stats().workers.reduce((n, w) => n + w.requests, 0) === 1, 5000);
    expect(st.active).toBe(0);
  });

  test('a TLS client that closes after its handshake with no byte is a health check, in stats() and in its request.end alike', async () => {
    const s = await start(m.Tls);
    const c = track(await tlsConnect(endpoint(s)));
    c.end();
    await closed(c);
    await settles(s, { accepted: 1, healthChecks: 1, bytesIn: 0, bytesOut: 0 }, 1);
    // Its request.end said nothing of it on a thread relaying the TLS bytes (Node 20 and 22): it was asked of the relay.
    await until(() => ends().length === 1, 5000);
    expect(ends().map((e) => e.healthCheck)).toEqual([true]);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test("a PROXY header before a TLS handshake counts in bytesIn, as on a plain connection (it counted the application's bytes only)", async () => {
    const s = await start(m.Tls, { transport: { proxyProtocol: true } });
    const header = 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 16443\r\n';
    const raw = track(await rawConnect(endpoint(s), header));
    const c = track(await tlsConnect(endpoint(s), { raw }));
    c.write('one\n');
    expect(await readLine(c)).toBe('ONE\n');
    c.end();
    await closed(c);
    const bytesIn = header.length + 4;
    await settles(s, { accepted: 1, bytesIn, bytesOut: 4 }, 1);
    expect(ends()[0]).toMatchObject({ bytesIn, bytesOut: 4 });
    expect(recorder.named('sockserve:connection.close')).toEqual([expect.objectContaining({ bytesIn, bytesOut: 4 })]);
  });

  test('a PROXY header, then a TLS client that closes before its first byte, is still a health check only', async () => {
    const s = await start(m.Tls, { transport: { proxyProtocol: true } });
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 16443\r\n'));
    c.end();
    await closed(c);
    await settles(s, { accepted: 1, healthChecks: 1, bytesIn: 0, bytesOut: 0 }, 0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a TLS health check (connect, close, no byte) counts in healthChecks only', async () => {
    const s = await start(m.Tls);
    const c = track(await rawConnect(endpoint(s)));
    await until(() => s.stats().accepted === 1, 5000);
    c.end();
    await closed(c);
    await settles(s, { accepted: 1, healthChecks: 1 }, 0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a client that closes half-way through a PROXY v1 header counts in proxyErrors only', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 192.0.2'));
    await until(() => s.stats().accepted === 1, 5000);
    c.end();
    await closed(c);
    await settles(s, { accepted: 1, proxyErrors: 1 }, 0);
    oneWarnLine(/ProxyProtocolError/);
  });

  test('a client that resets half-way through a PROXY v2 header counts in proxyErrors only', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), v2Header({ src: '192.0.2.7', srcPort: 4000 }).subarray(0, 14)));
    await until(() => s.stats().accepted === 1, 5000);
    c.resetAndDestroy();
    await settles(s, { accepted: 1, proxyErrors: 1 }, 0);
    oneWarnLine(/ProxyProtocolError/);
  });

  test('a PROXY header that stalls past lineTimeout counts in proxyErrors only', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 '));
    await closed(c);
    await settles(s, { accepted: 1, proxyErrors: 1 }, 0);
    oneWarnLine(/ProxyProtocolError/);
  });

  test('a client that resets mid-request after a good PROXY header is a client error counted once', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), 'PROXY TCP4 192.0.2.7 127.0.0.1 4000 9000\r\none\n'));
    expect(await readLine(c)).toBe('ONE\n');
    c.resetAndDestroy();
    await settles(s, { accepted: 1, clientErrors: 1 }, 1);
    expect(ends()[0].clientAddress).toMatchObject({ host: '192.0.2.7', port: 4000 });
    // connection.open names the client the header names too, wherever the header was read
    expect(recorder.named('sockserve:connection.open')).toEqual([expect.objectContaining({ clientAddress: expect.objectContaining({ host: '192.0.2.7', port: 4000 }) })]);
    oneWarnLine(/ECONNRESET/);
  });

  test('a client refused by @Verify behind a PROXY header is accepted and rejected, opens and closes, and starts no request', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), `PROXY TCP4 ${H.REFUSED_HOST} 127.0.0.1 4000 9000\r\nx\n`));
    expect((await closed(c)).data).toBe('');
    await settles(s, { accepted: 1, rejected: 1 }, 0);
    expect(starts()).toBe(0);
    expect(recorder.named('tracing:start')).toEqual([]);
    // Nor a request in its worker's row: a worker reports every second at most (a child counted it).
    await new Promise((r) => setTimeout(r, 1300));
    expect(s.stats().workers.reduce((n, w) => n + w.requests, 0)).toBe(0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a client @Verify writes a line to and refuses counts those bytes out, in every mode (a child counted none)', async () => {
    const s = await start(m.Proxy);
    const c = track(await rawConnect(endpoint(s), `PROXY TCP4 ${H.REFUSED_LOUDLY_HOST} 127.0.0.1 4000 9000\r\nx\n`));
    expect((await closed(c)).data).toBe('go away\n');
    await settles(s, { accepted: 1, rejected: 1, bytesOut: 8 }, 0);
    expect(starts()).toBe(0);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });

  test('a garbage datagram counts one client error and one warn line, a throwing @OnMessage one handler error, and each datagram ends its request once', async () => {
    const s = await start(m.Datagrams);
    // The two silences (each waits 1 s for a reply that must not come) overlap, which saved ~1 s a mode; the
    // second datagram goes once the first's request has ended, so the ends still come in the datagrams' order.
    const garbage = datagramSilence(endpoint(s), '{not json\n', undefined, 1000);
    await until(() => ends().length === 1, 5000);
    const failing = datagramSilence(endpoint(s), '"fail"\n', undefined, 1000);
    expect(await garbage).toBe(true);
    expect(await failing).toBe(true);
    expect((await datagramExchange(endpoint(s), '"ok"\n')).data.toString()).toBe('{"ok":"ok"}\n');
    await until(() => s.stats().messages === 2, 5000); // a worker's count comes with its next report (<= 1 s)
    await settles(s, { accepted: 3, clientErrors: 1, errors: 1, messages: 2, bytesIn: 22 }, 3);
    expect(ends().map((e) => (e.error as { name?: string } | undefined)?.name)).toEqual(['FramingError', 'Error', undefined]);
    expect(logger.lines.warn).toEqual([expect.stringMatching(/FramingError/)]);
    expect(logger.lines.warn[0]).not.toContain('\n');
    expect(logger.lines.error).toEqual([expect.stringMatching(/Error: handler failure/)]);
  });

  test('connections over maxConnectionsPerClient from the client a PROXY header names are rejected, and another client is served', async () => {
    const s = await start(m.Proxy, { transport: { limits: { lineTimeout: 5, maxConnectionsPerClient: 1 } } });
    const header = (host: string, port: number) => `PROXY TCP4 ${host} 127.0.0.1 ${port} 9000\r\n`;
    const held = track(await rawConnect(endpoint(s), `${header('192.0.2.7', 4000)}one\n`));
    expect(await readLine(held)).toBe('ONE\n');
    for (let i = 0; i < 2; i++) {
      const extra = track(await rawConnect(endpoint(s), `${header('192.0.2.7', 4001 + i)}two\n`));
      expect((await closed(extra)).data).toBe('');
    }
    const another = async () => {
      const other = track(await rawConnect(endpoint(s), `${header('192.0.2.8', 5000)}three\n`));
      expect(await readLine(other)).toBe('THREE\n');
      const gone = closed(other);
      other.end();
      await gone;
    };
    if (m.mode !== 'serial') await another(); // a serial server serves one connection at a time: after `held`
    const gone = closed(held);
    held.end();
    await gone;
    if (m.mode === 'serial') await another();
    await settles(s, { accepted: 4, rejected: 2 }, 2);
    // Each refusal is said, naming the client the header gave, at most one line a second; the rest are summed up.
    const refused = () => logger.lines.warn.filter((l) => /refused a connection from 192\.0\.2\.7:400[12]: it was over limits\.maxConnectionsPerClient \(1\)/.test(l)).length;
    const summed = () => logger.lines.warn.reduce((n, l) => n + Number(/: (\d+) more connections? (?:was|were) refused at a limit/.exec(l)?.[1] ?? 0), 0);
    await until(() => refused() + summed() === 2, 3000);
    expect(logger.lines.warn).toHaveLength(2);
    expect(logger.lines.error).toEqual([]);
  });

  test('twenty clients at once, half resetting and half closing after their reply, leave every count exact and active at 0', async () => {
    const s = await start(m.Plain);
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const c = track(await rawConnect(endpoint(s), `c${i}\n`));
      expect(await readLine(c, 20000)).toBe(`C${i}\n`);
      if (i % 2 === 0) {
        c.resetAndDestroy();
      } else {
        c.end();
        await closed(c, 20000);
      }
    }));
    const st = await settles(s, { accepted: 20, clientErrors: 10 }, 20);
    expect(ends().filter((e) => e.error !== undefined)).toHaveLength(10);
    expect(st.bytesIn).toBe(st.bytesOut);
    expect(logger.lines.warn).toHaveLength(10);
    expect(logger.lines.error).toEqual([]);
  });

  test('connections over maxConnections are accepted, rejected and closed, and every count returns to rest', async () => {
    const s = await start(m.Capped);
    const held = track(await rawConnect(endpoint(s), 'one\n'));
    expect(await readLine(held)).toBe('ONE\n');
    for (let i = 0; i < 3; i++) {
      const extra = track(await rawConnect(endpoint(s)));
      await closed(extra);
    }
    expect(s.stats()).toMatchObject({ rejected: 3, accepted: 4, active: 1 });
    held.end();
    await closed(held);
    await settles(s, { accepted: 4, rejected: 3 }, 1);
    expect(logger.lines.error).toEqual([]);
  });
});

describe.each(modes.filter((m) => m.child))('observability when a worker is killed in $mode mode', (m) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([]));
  let recorder: ReturnType<typeof recordEvents>;
  afterEach(() => recorder?.stop());

  test('a child killed with SIGKILL mid-request counts one handler error and one restart, ends its request once, and leaves no process', async () => {
    recorder = recordEvents();
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Plain as new () => object, { logger }));
    const c = await rawConnect(endpoint(s), 'one\n');
    try {
      expect(await readLine(c)).toBe('ONE\n');
      c.write('hang\n');
      const pid = s.stats().workers[0].id;
      const gone = closed(c);
      process.kill(pid, 'SIGKILL');
      await gone;
      await until(() => s.stats().restarts === 1 && s.stats().active === 0 && recorder.named('sockserve:request.end').length === 1, 10000);
      expect(s.stats()).toMatchObject({ ...ZERO, accepted: 1, errors: 1, restarts: 1, active: 0 });
      expect(recorder.named('sockserve:request.end')[0].error).toMatchObject({ name: 'WorkerCrashedError' });
      expect(recorder.named('sockserve:connection.close')).toHaveLength(recorder.named('sockserve:connection.open').length);
      expect(recorder.named('sockserve:worker.exit')).toEqual([expect.objectContaining({ workerId: pid, signal: 'SIGKILL', reason: 'was killed by SIGKILL' })]);
      // WorkerExitEvent.signal is typed as Node's signal names, so it goes to process.kill() or os.constants.signals without a cast.
      const signal: NodeJS.Signals | null | undefined = (recorder.named('sockserve:worker.exit')[0] as unknown as WorkerExitEvent).signal;
      expect(signal && os.constants.signals[signal]).toBe(os.constants.signals.SIGKILL);
      expect(logger.lines.error).toEqual([expect.stringMatching(/WorkerCrashedError/)]);
      expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    } finally {
      c.destroy();
    }
  });
});

describe.each([
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
])('observability of a Unix stream server under hostile clients in $mode mode', (m) => {
  const serve = servingInTests<Server>();
  let dir: string;
  let recorder: ReturnType<typeof recordEvents>;
  beforeEach(() => {
    dir = tempDir();
    recorder = recordEvents();
  });
  afterEach(() => {
    recorder.stop();
    removeTempDir(dir);
  });

  test('a client that goes away while the handler waits is no error, a connect-and-close is one health check, and every connection and request ends once', async () => {
    const logger = memoryLogger();
    const target = { path: path.join(dir, 's.sock') };
    @UnixStreamServer(target.path) @m.decorate()
    class Echo {
      @Handle() async h(req: StreamRequest) {
        for (;;) {
          const line = await req.rfile.readline();
          if (line.length === 0) return;
          await req.wfile.write(line);
        }
      }
    }
    const s = serve(await bootstrap(Echo, { logger }));
    const probe = await rawConnect(target);
    probe.end();
    await closed(probe);
    await until(() => s.stats().healthChecks === 1, 5000);
    const c = await rawConnect(target, 'one\n');
    try {
      expect(await readLine(c)).toBe('one\n');
      c.destroy(); // a Unix socket cannot send RST: the client goes away without ending its request
      await until(() => s.stats().active === 0 && recorder.named('sockserve:connection.close').length === 2, 5000);
    } finally {
      c.destroy();
    }
    expect(s.stats()).toMatchObject({ accepted: 2, healthChecks: 1, errors: 0, clientErrors: 0, bytesIn: 4, bytesOut: 4, active: 0 });
    expect(recorder.named('sockserve:connection.open')).toHaveLength(2);
    expect(recorder.named('sockserve:request.start')).toHaveLength(2);
    expect(recorder.named('sockserve:request.end').filter((e) => e.error !== undefined)).toEqual([]);
    expect(recorder.named('sockserve:request.end')).toHaveLength(2);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });
});

// Requests the serial loop never took, closed unserved by close() (or at shutdownTimeout), were counted and reported,
// and no event told of them: a datagram server counted 3,399 errors and published 2 request.end; a connection queued
// behind a hung request had no connection.open nor close (hostile runs). @Concurrent takes every one, and publishes them.
describe('serial requests closed unserved', () => {
  const serve = servingInTests<Server>();
  let recorder: ReturnType<typeof recordEvents>;
  const sockets: net.Socket[] = [];
  beforeEach(() => {
    recorder = recordEvents();
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    recorder.stop();
  });

  test('connections queued behind a hung request when close() comes each open, end their request with the error, and close', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(H.HostileSerialPlain as new () => object, { logger }));
    const hung = await rawConnect(endpoint(s), 'hang\n');
    sockets.push(hung);
    await until(() => recorder.named('sockserve:request.start').length === 1, 5000);
    for (let i = 0; i < 3; i++) sockets.push(await rawConnect(endpoint(s), `queued ${i}\n`));
    await until(() => s.stats().accepted === 4, 5000);
    await s.close();
    expect(s.stats()).toMatchObject({ ...ZERO, accepted: 4, clientErrors: 4, active: 0 });
    expect(recorder.named('sockserve:connection.open')).toHaveLength(4);
    expect(recorder.named('sockserve:connection.close')).toHaveLength(4);
    expect(recorder.named('sockserve:request.start')).toHaveLength(4);
    const ends = recorder.named('sockserve:request.end');
    expect(ends.map((e) => (e.error as Error | undefined)?.name)).toEqual(Array(4).fill('RequestTimeoutError'));
    expect(ends.reduce((n, e) => n + Number(e.bytesIn), 0)).toBe(s.stats().bytesIn);
  });

  test('connections accepted after shutdown() (Python\'s backlog) and reset by close() count as rejected, with no request', async () => {
    const s = serve(await bootstrap(H.HostileSerialPlain as new () => object, { logger: memoryLogger() }));
    await s.shutdown(); // the loop servingInTests started ends; the listening socket stays open (Python's)
    const late = [await rawConnect(endpoint(s), 'late 1\n'), await rawConnect(endpoint(s), 'late 2\n')];
    sockets.push(...late);
    await until(() => s.stats().accepted === 2, 5000);
    await s.close();
    expect((await Promise.all(late.map((c) => closed(c)))).map((c) => c.data)).toEqual(['', '']);
    expect(s.stats()).toMatchObject({ ...ZERO, accepted: 2, rejected: 2, active: 0 });
    expect(recorder.named('sockserve:connection.open')).toEqual([]);
    expect(recorder.named('sockserve:request.end')).toEqual([]);
  });

  test('datagrams queued behind a running one when close() comes each end their request with the error', async () => {
    @UdpServer({ host: '127.0.0.1', port: 0 })
    class SlowDatagrams {
      @Handle() async h(req: DatagramRequest) {
        await new Promise((r) => setTimeout(r, 2000));
        await req.wfile.write(req.data);
      }
    }
    const s = serve(await bootstrap(SlowDatagrams, { logger: memoryLogger() }));
    const client = dgram.createSocket('udp4');
    try {
      const { port } = s.serverAddress as { port: number };
      for (let i = 0; i < 5; i++) client.send(`d${i}`, port, '127.0.0.1');
      await until(() => recorder.named('sockserve:request.start').length === 1 && s.classicServer.queuedRequests === 4, 5000);
      await s.close();
    } finally {
      client.close();
    }
    expect(s.stats()).toMatchObject({ accepted: 5, clientErrors: 5, errors: 0 });
    expect(recorder.named('sockserve:request.start')).toHaveLength(5);
    const ends = recorder.named('sockserve:request.end');
    expect(ends.map((e) => (e.error as Error | undefined)?.name)).toEqual(Array(5).fill('RequestTimeoutError'));
  });
});
