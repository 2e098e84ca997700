/**
 * Hostile clients against the connection preamble (PROXY header, TLS first bytes) as the listener runs it
 * through Preamble.start(): connections that go away at the worst moments, while the server is busy, and
 * what the server must still do then (serve the next client, count what happened, leave nothing open).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import * as fixtures from '../fixtures/proxy-hostile-handlers';
import { within } from '../helpers/clients';
import { rawConnect, replyOf, tlsConnect, v1Header, v2Header } from '../helpers/edge-clients';
import { TLS } from '../fixtures/edge-handlers';
import { servingInTests } from '../helpers/serving';

type Target = { host: string; port: number };

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a PROXY connection reset while it waits in the queue (serial server busy)', () => {
  const serve = servingInTests<Server>();
  const sockets: net.Socket[] = [];
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.destroy());
  });

  test.each([
    ['v1 header and a line', () => Buffer.from(`${v1Header('203.0.113.9', 9)}hello\n`)],
    ['v2 header alone', () => v2Header({ src: '203.0.113.9', srcPort: 9 })],
  ])('%s, then a RST: its handler sees the reset, and the next client is served', async (_name, head) => {
    const warned: string[] = [];
    const logger = { warn: (m: string) => warned.push(m), error: (m: string) => warned.push(m) };
    const server = serve(await bootstrap(fixtures.TcpSerial, { transport: { proxyProtocol: true }, logger }));
    const target = server.serverAddress as Target;
    // A keeps the serial loop busy: it has sent a line and not its end.
    const a = await rawConnect(target, `${v1Header('198.51.100.1', 1)}first\n`);
    sockets.push(a);
    const aReply = replyOf(a);
    await pause(100);
    // B's header is read (the connection is queued behind A), then B resets.
    const b = await rawConnect(target, head());
    sockets.push(b);
    await pause(200);
    b.resetAndDestroy();
    await pause(100);
    a.end('x');
    expect(await aReply).toBe('first\nx');
    // The loop must reach C: B's handler ends on its reset instead of waiting for an event that has gone.
    const c = await rawConnect(target, `${v1Header('198.51.100.3', 3)}info\n`);
    sockets.push(c);
    c.end();
    const reply = await replyOf(c);
    expect(JSON.parse(reply).client.host).toBe('198.51.100.3');
    expect(server.stats()).toMatchObject({ accepted: 3, active: 0, proxyErrors: 0 });
    expect(warned.filter((w) => /ProxyProtocolError|RequestTimeoutError/.test(w))).toEqual([]);
  });
});

describe.each([
  { mode: 'serial', tcp: fixtures.TcpSerial },
  { mode: '@Concurrent', tcp: fixtures.TcpConcurrent },
  { mode: '@Forking', tcp: fixtures.TcpForking },
])('PROXY header then FIN with TLS after it in $mode', ({ tcp }) => {
  const serve = servingInTests<Server>();

  test.each([
    ['v1', () => Buffer.from(v1Header('203.0.113.9', 9))],
    ['v2', () => v2Header({ src: '203.0.113.9', srcPort: 9 })],
  ])('a %s header and the end at once is a health check (a proxy\'s TCP check with send-proxy), not a handshake that waits out lineTimeout', async (_v, head) => {
    const warned: string[] = [];
    const logger = { warn: (m: string) => warned.push(m), error: (m: string) => warned.push(m) };
    const server = serve(await bootstrap(tcp, { transport: { proxyProtocol: true, tls: TLS }, logger }));
    const target = server.serverAddress as Target;
    const socket = await rawConnect(target);
    const started = Date.now();
    const reply = replyOf(socket);
    socket.end(head());
    expect(await reply).toBe('');
    // lineTimeout is 1 s: a connection closed well before it was not left to time out.
    expect(Date.now() - started).toBeLessThan(700);
    await within(5000, 'the health check counted', (async () => {
      while (server.stats().healthChecks < 1) await pause(10);
    })());
    expect(server.stats()).toMatchObject({ healthChecks: 1, tlsErrors: 0, proxyErrors: 0, errors: 0 });
    expect(warned).toEqual([]);
    // And a TLS client behind the same header is still served.
    const raw = await rawConnect(target, v1Header('198.51.100.4', 4));
    const tlsSocket = await tlsConnect(target, { raw });
    const answer = replyOf(tlsSocket);
    tlsSocket.end('info\n');
    expect(JSON.parse(await answer).client.host).toBe('198.51.100.4');
    raw.destroy();
  });
});
