import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import { canTransferTcpSockets } from '../../src/runtime';
import { cert, TLS } from '../fixtures/edge-handlers';
import {
  classicForkingTls, EdgeOnePerThread, EdgePerRequestChild, errorsSeenHere, PerClientBehindProxy, ProxyInChildren, ProxyInThreads, ProxyTlsInChildren,
  ProxyTlsInThreads, REFUSED_HOST, RenegotiableInChild, RenegotiableInThread, TlsInChildren, TlsInThreads, TlsMessagesInChildren, TlsMessagesInThreads, UnixTlsInChildren, ProxyDefaultErrorsInChildren, ProxyDefaultErrorsInThreads, ProxyPerRequestChild, ProxyPerRequestThread, verifiedHere, OnePerClientThreads, OneInAllChildren, OnePerNamedClientThreads,
} from '../fixtures/edge-worker-handlers';
import * as path from 'node:path';
import { removeTempDir, tempDir, within } from '../helpers/clients';
import { closed, endpoint, rawConnect, readLine, tlsConnect, v1Header, v2Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import type * as net from 'node:net';
import { connect as netConnect } from 'node:net';
import * as tls from 'node:tls';
import type { TCPServer } from '../../src/classic';
import { eventually } from '../helpers/eventually';

/**
 * TLS, the PROXY protocol and @Verify run in the worker that serves the connection (API.md §3), so that
 * handshakes use the workers' cores: on a socket it owns (children always; threads where Node moves TCP
 * sockets, 24.21+ and 26.6+), or on the raw bytes the main thread relays to it, TLS records included
 * (threads on Node 20 and 22, Unix sockets in threads).
 */

async function askWhere(socket: net.Socket): Promise<any> {
  socket.write('where\n');
  return JSON.parse(await readLine(socket));
}

const quietLogger = () => {
  const lines: string[] = [];
  return { lines, logger: { error: (m: string) => lines.push(`error: ${m}`), warn: (m: string) => lines.push(`warn: ${m}`), info: () => undefined, debug: () => undefined } };
};

beforeEach(() => {
  errorsSeenHere.length = 0;
  verifiedHere.length = 0;
});

describe.each([
  { mode: '@Threading', tls: TlsInThreads, messages: TlsMessagesInThreads, defaultErrors: ProxyDefaultErrorsInThreads, proxy: ProxyInThreads, both: ProxyTlsInThreads, renegotiable: RenegotiableInThread, ownsRaw: canTransferTcpSockets() },
  { mode: '@Forking', tls: TlsInChildren, messages: TlsMessagesInChildren, defaultErrors: ProxyDefaultErrorsInChildren, proxy: ProxyInChildren, both: ProxyTlsInChildren, renegotiable: RenegotiableInChild, ownsRaw: true },
])('TLS, PROXY and @Verify with $mode (the worker owns the raw socket: $ownsRaw)', ({ tls: TlsHandler, messages: MessagesHandler, defaultErrors: DefaultErrors, proxy: ProxyHandler, both: BothHandler, renegotiable: Renegotiable, ownsRaw }) => {
  const serve = servingInTests<Server>();

  test.each([['@Handle', 'stream'], ['@OnMessage', 'messages']])('%s: clients that end right after their TLS handshake, sending nothing, are closed and counted out (relayed threads kept them open for ever: a maxConnections lockout)', async (_name, kind) => {
    const server = serve(await bootstrap(kind === 'stream' ? TlsHandler : MessagesHandler));
    const clients = await Promise.all(Array.from({ length: 6 }, () => tlsConnect(endpoint(server))));
    try {
      for (const client of clients) client.end();
      await Promise.all(clients.map((client) => closed(client)));
      await eventually('every connection to be counted out', () => server.stats().active === 0, 5000);
      // a working client after them
      const next = await tlsConnect(endpoint(server));
      next.write('next\n');
      expect(await readLine(next)).toBe('next\n');
      next.destroy();
    } finally {
      for (const client of clients) client.destroy();
    }
  });

  test('a TLS client is echoed, req.tls is filled, and the handshake and @Verify ran where the handler holds the TLS socket', async () => {
    const server = serve(await bootstrap(TlsHandler));
    const client = await tlsConnect(endpoint(server), { alpn: ['other'] });
    try {
      client.write('hello over TLS\n');
      expect(await readLine(client)).toBe('hello over TLS\n');
      const where = await askWhere(client);
      expect(where.tls).toMatchObject({ protocol: 'TLSv1.3', alpnProtocol: 'other', servername: 'localhost', authorized: true });
      expect(where.tls.peerCertificate.subject.CN).toBe('sockserve test client');
      expect(where.client).toMatchObject({ host: '127.0.0.1', port: client.localPort });
      expect(where.handledAt.worker).toBe(true);
      // The TLS socket lives where the handshake ran: in the worker, over the raw socket or the relayed bytes.
      expect(where.ownsTlsSocket).toBe(true);
      // @Verify ran on the handler's own instance, in the same worker, before the lifecycle.
      expect(where.verifiedAt).toEqual(where.handledAt);
      expect(where.verifiedClient).toEqual(where.client);
      expect(verifiedHere).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  test('PROXY v1 and v2 headers name the client for clientAddress and @Verify, with req.proxy and its TLVs', async () => {
    const server = serve(await bootstrap(ProxyHandler));
    const v1 = await rawConnect(endpoint(server), v1Header('203.0.113.7', 40001));
    const v2 = await rawConnect(endpoint(server), v2Header({ src: '198.51.100.4', srcPort: 40002, tlvs: [{ type: 0x05, value: Buffer.from('id-1') }] }));
    try {
      const one = await askWhere(v1);
      expect(one.client).toEqual({ host: '203.0.113.7', port: 40001, family: 'IPv4' });
      expect(one.proxy).toMatchObject({ version: 1, command: 'PROXY', protocol: 'TCP4' });
      const two = await askWhere(v2);
      expect(two.client).toEqual({ host: '198.51.100.4', port: 40002, family: 'IPv4' });
      expect(two.proxy).toMatchObject({ version: 2, command: 'PROXY', tlvs: [{ type: 5, value: Buffer.from('id-1').toString('hex') }] });
      expect(two.ownsSocket).toBe(ownsRaw); // else its bytes are relayed
      for (const w of [one, two]) expect(w).toMatchObject({ verifiedClient: w.client, verifiedAt: w.handledAt });
      expect(verifiedHere).toEqual([]);
    } finally {
      v1.destroy();
      v2.destroy();
    }
  });

  test('an error of a request behind a PROXY header is reported under the client the header names, not the proxy\'s address (hostile run)', async () => {
    const { lines, logger } = quietLogger();
    const server = serve(await bootstrap(DefaultErrors, { logger }));
    const client = await rawConnect(endpoint(server), v1Header('198.51.100.9', 5555));
    try {
      client.write('hello\n');
      expect(await readLine(client)).toBe('hello\n');
      client.write('fail\n'); // the handler throws
      await eventually('the error to be logged', () => lines.length > 0, 10000);
      // the default @HandleError's traceback is printed in the server's process, which knew only the proxy's address
      expect(lines).toEqual([expect.stringContaining('Exception occurred during processing of request from 198.51.100.9:5555')]);
    } finally {
      client.destroy();
    }
  });

  test('@Verify refusing the client behind the header closes its connection, runs no handler, and counts it rejected', async () => {
    const server = serve(await bootstrap(ProxyHandler));
    const refused = await rawConnect(endpoint(server), `${v1Header(REFUSED_HOST, 40003)}where\n`);
    const end = await closed(refused);
    expect(end.data).toBe('');
    await eventually('the refusal to be counted', () => server.stats().rejected === 1, 5000);
    expect(server.stats()).toMatchObject({ rejected: 1, errors: 0, proxyErrors: 0 });
    expect(verifiedHere).toEqual([]); // refused in the worker
  });

  test('PROXY then TLS: the header names the client and the handshake follows it, both where the socket is owned', async () => {
    const server = serve(await bootstrap(BothHandler));
    const raw = await rawConnect(endpoint(server), v2Header({ src: '192.0.2.9', srcPort: 999 }));
    const client = await tlsConnect(endpoint(server), { raw });
    try {
      const where = await askWhere(client);
      expect(where.client).toMatchObject({ host: '192.0.2.9', port: 999 });
      expect(where.tls.protocol).toBe('TLSv1.3');
      expect(where.ownsTlsSocket).toBe(true);
      expect(where).toMatchObject({ verifiedAt: where.handledAt, verifiedClient: where.client });
      expect(verifiedHere).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  test('a plain-text client of the TLS port ends that connection only: tlsErrors, and @HandleError in the server\'s process', async () => {
    const server = serve(await bootstrap(TlsHandler));
    const keep = await tlsConnect(endpoint(server));
    const plain = await rawConnect(endpoint(server), 'GET / HTTP/1.0\r\n\r\n');
    const port = plain.localPort;
    expect((await closed(plain)).data).not.toContain('GET');
    await eventually('@HandleError', () => errorsSeenHere.length > 0, 5000);
    expect(errorsSeenHere).toEqual([{ name: 'TlsHandshakeError', client: expect.objectContaining({ host: '127.0.0.1', port }), worker: false }]);
    expect(server.stats()).toMatchObject({ tlsErrors: 1, errors: 0, clientErrors: 0, restarts: 0 });
    keep.write('still served\n'); // a connection the same worker holds goes on
    expect(await readLine(keep)).toBe('still served\n');
    keep.destroy();
  });

  test('TLS 1.2 clients that renegotiate past Node\'s limit end their own connections only: tlsErrors, one warn line each, no worker dies (hostile-client run: one ended a relaying thread)', async () => {
    const { lines, logger } = quietLogger();
    const server = serve(await bootstrap(Renegotiable, { logger }));
    // A client of the same (only) worker, served throughout.
    const keep = await within(10000, 'TLS handshake', new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...(endpoint(server) as tls.ConnectionOptions), rejectUnauthorized: false });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    }));
    keep.on('error', () => undefined);
    const attackers = 5;
    for (let i = 0; i < attackers; i++) {
      const attacker = tls.connect({ ...(endpoint(server) as tls.ConnectionOptions), rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
      attacker.on('error', () => undefined);
      await within(10000, 'the attacker to be closed', new Promise<void>((resolve) => {
        attacker.once('close', () => resolve());
        attacker.once('secureConnect', async () => {
          for (let r = 0; r < 5 && !attacker.destroyed; r++) await new Promise<void>((next) => void (attacker.renegotiate({}, () => next()) || next()));
        });
      }));
    }
    await eventually('every attacker reported', () => server.stats().tlsErrors === attackers, 10000);
    expect(server.stats()).toMatchObject({ tlsErrors: attackers, errors: 0, restarts: 0 });
    expect(lines.filter((l) => !/^warn: Error from 127\.0\.0\.1:\d+: TLS session renegotiation attack detected/.test(l))).toEqual([]);
    keep.write('still served\n');
    expect(await readLine(keep)).toBe('still served\n');
    keep.destroy();
  });

  test('a malformed PROXY header ends that connection only: proxyErrors, and @HandleError in the server\'s process', async () => {
    const server = serve(await bootstrap(ProxyHandler));
    const keep = await rawConnect(endpoint(server), v1Header('203.0.113.8', 1));
    const bad = await rawConnect(endpoint(server), 'PROXY TCP4 not-an-address 127.0.0.1 1 2\r\nwhere\n');
    expect((await closed(bad)).data).toBe('');
    const badV2 = await rawConnect(endpoint(server), Buffer.concat([v2Header({ src: '192.0.2.1' }).subarray(0, 12), Buffer.from([0x31, 0x11, 0, 12])]));
    expect((await closed(badV2)).data).toBe('');
    await eventually('@HandleError twice', () => errorsSeenHere.length === 2, 5000);
    expect(errorsSeenHere.map((e) => [e.name, e.worker])).toEqual([['ProxyProtocolError', false], ['ProxyProtocolError', false]]);
    expect(server.stats()).toMatchObject({ proxyErrors: 2, errors: 0, restarts: 0 });
    expect((await askWhere(keep)).client.host).toBe('203.0.113.8');
    keep.destroy();
  });

  test('without @HandleError a failed handshake is one warn line, no traceback', async () => {
    const { lines, logger } = quietLogger();
    // The fixtures have @HandleError: the default report is seen through a handler without one.
    const { TlsForking, TlsThreading } = await import('../fixtures/edge-handlers');
    const server = serve(await bootstrap(TlsHandler === TlsInThreads ? TlsThreading : TlsForking, { logger }));
    await closed(await rawConnect(endpoint(server), 'plain\n'));
    await eventually('the warning', () => lines.length > 0, 5000);
    expect(lines).toEqual([expect.stringMatching(/^warn: TlsHandshakeError from 127\.0\.0\.1:\d+: TLS handshake with .* failed: the client spoke plain text/)]);
    expect(server.stats().tlsErrors).toBe(1);
  });

  test('health checks are quiet: a connect and close with no byte, and a PROXY v2 LOCAL header then the close', async () => {
    const { lines, logger } = quietLogger();
    const tlsServer = serve(await bootstrap(TlsHandler, { logger }));
    const proxyServer = serve(await bootstrap(BothHandler, { logger }));
    const probe = await rawConnect(endpoint(tlsServer));
    probe.end();
    await closed(probe);
    const local = await rawConnect(endpoint(proxyServer), v2Header({ local: true }));
    local.end();
    await closed(local);
    await eventually('the health checks to be counted', () => tlsServer.stats().healthChecks === 1 && proxyServer.stats().healthChecks === 1, 5000);
    for (const s of [tlsServer, proxyServer]) expect(s.stats()).toMatchObject({ healthChecks: 1, tlsErrors: 0, proxyErrors: 0, errors: 0, rejected: 0 });
    expect(errorsSeenHere).toEqual([]);
    expect(lines).toEqual([]);
  });

  test('shutdown() ends the idle TLS connections held in the workers, and resolves', async () => {
    const server = serve(await bootstrap(TlsHandler));
    const idle = await Promise.all([0, 1].map(() => tlsConnect(endpoint(server))));
    for (const client of idle) expect(await askWhere(client)).toMatchObject({ handledAt: { worker: true } });
    const ends = idle.map((client) => closed(client));
    await within(10000, 'shutdown', server.shutdown());
    expect(await within(10000, 'the idle connections to end', Promise.all(ends))).toEqual([{ reset: false, data: '' }, { reset: false, data: '' }]);
  });

  test('setSecureContext() with an option the workers cannot receive (a function) is a ConfigurationError and changes nothing', async () => {
    const server = serve(await bootstrap(TlsHandler));
    const first = await tlsConnect(endpoint(server));
    const serial = first.getPeerCertificate().serialNumber;
    first.destroy();
    const bad = { key: cert('rotated.key'), cert: cert('rotated.crt'), ca: cert('ca.crt'), checkServerIdentity: () => undefined };
    expect(() => server.setSecureContext(bad as never)).toThrow(/setSecureContext\(\): the options cannot be copied to the workers .*nothing was changed/);
    // not half-applied: the server's own TLS (where the main thread terminates it) and the workers' keep the old certificate
    for (let i = 0; i < 4; i++) {
      const client = await tlsConnect(endpoint(server));
      expect(client.getPeerCertificate().serialNumber).toBe(serial);
      client.destroy();
    }
  });

  test('setSecureContext() reaches the workers: new connections get the new certificate, open ones keep theirs', async () => {
    const server = serve(await bootstrap(TlsHandler));
    const before = await tlsConnect(endpoint(server));
    const first = before.getPeerCertificate().serialNumber;
    await within(10000, 'every worker to use the new certificate', server.setSecureContext({ key: cert('rotated.key'), cert: cert('rotated.crt'), ca: cert('ca.crt') }));
    // Clients four at a time, kept open, until both workers have served some: where children accept
    // themselves the kernel picks the child, so the count it takes is not fixed (bounded: 40).
    const after: Awaited<ReturnType<typeof tlsConnect>>[] = [];
    const pids = new Set<string>();
    try {
      while (pids.size < 2 && after.length < 40) {
        const batch = await Promise.all([0, 1, 2, 3].map(() => tlsConnect(endpoint(server))));
        after.push(...batch);
        for (const client of batch) {
          expect(client.getPeerCertificate().serialNumber).not.toBe(first);
          client.write('new cert\n');
          expect(await readLine(client)).toBe('new cert\n');
          const where = await askWhere(client);
          pids.add(`${where.handledAt.pid}/${where.handledAt.threadId}`);
        }
      }
      expect(pids.size).toBe(2);
      before.write('old cert\n');
      expect(await readLine(before)).toBe('old cert\n');
    } finally {
      before.destroy();
      after.forEach((c) => c.destroy());
    }
  });
});

describe('where the main thread keeps the preamble and @Verify in the pooled modes', () => {
  const serve = servingInTests<Server>();

  test.each([
    { model: 'connectionsPerThread: 1', handler: EdgeOnePerThread },
    { model: '@Forking perRequest', handler: EdgePerRequestChild },
  ])('with $model a client refused by @Verify costs no worker, and an accepted one is relayed over TLS', async ({ handler }) => {
    const server = serve(await bootstrap(handler));
    const workersBefore = server.stats().workers.map((w) => w.id);
    const refusedRaw = await rawConnect(endpoint(server), v1Header(REFUSED_HOST, 5));
    const refused = await tlsConnect(endpoint(server), { raw: refusedRaw });
    expect((await closed(refused)).data).toBe('');
    expect(verifiedHere.map((c) => c.host)).toEqual([REFUSED_HOST]);
    expect(server.stats().workers.map((w) => w.id)).toEqual(workersBefore);
    const raw = await rawConnect(endpoint(server), v1Header('203.0.113.20', 6));
    const client = await tlsConnect(endpoint(server), { raw });
    try {
      const where = await askWhere(client);
      expect(where).toMatchObject({ client: { host: '203.0.113.20' }, handledAt: { worker: true }, ownsTlsSocket: false });
      expect(where.verifiedAt).toBeUndefined(); // @Verify ran here, on an instance of its own
      expect(verifiedHere.map((c) => c.host)).toEqual([REFUSED_HOST, '203.0.113.20']);
    } finally {
      client.destroy();
    }
  });

  test('maxConnectionsPerClient behind a PROXY header counts the named client here, then hands the connection over', async () => {
    const server = serve(await bootstrap(PerClientBehindProxy));
    const first = await rawConnect(endpoint(server), v1Header('203.0.113.30', 7));
    try {
      const where = await askWhere(first);
      expect(where).toMatchObject({ client: { host: '203.0.113.30' }, handledAt: { worker: true } });
      expect(verifiedHere.map((c) => c.host)).toEqual(['203.0.113.30']);
      const second = await rawConnect(endpoint(server), v1Header('203.0.113.30', 8));
      expect((await closed(second)).data).toBe('');
      expect(server.stats().rejected).toBe(1);
    } finally {
      first.destroy();
    }
  });
});

// A client whose previous connection had closed (it saw the close) was refused, its end not yet heard from the worker
// that served it: maxConnectionsPerClient 1 served 12 to 19 of 40 such clients with @Threading (hostile run).
describe.each([
  { model: '@Threading, maxConnectionsPerClient 1', handler: OnePerClientThreads, proxy: false },
  { model: '@Forking, maxConnections 1', handler: OneInAllChildren, proxy: false },
  { model: '@Threading, maxConnectionsPerClient 1 behind a PROXY header', handler: OnePerNamedClientThreads, proxy: true },
])('a limit of one connection, with $model', ({ handler, proxy }) => {
  const serve = servingInTests<Server>();

  test('serves a client that opens each connection once its last one has closed, and still refuses a second one', async () => {
    const server = serve(await bootstrap(handler));
    const header = (i: number) => (proxy ? v1Header('203.0.113.50', 50 + i) : '');
    for (let i = 0; i < 30; i++) {
      const client = await rawConnect(endpoint(server), `${header(i)}line ${i}\n`);
      // Half of them end first; the others wait for the server's end, its socket lingering for their FIN (relayed).
      if (i % 2 === 0) client.end();
      expect((await closed(client)).data).toBe(`line ${i}\n`);
    }
    expect(server.stats().rejected).toBe(0);
    const first = await rawConnect(endpoint(server), `${header(90)}hold\n`);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const second = await rawConnect(endpoint(server), `${header(91)}second\n`);
      expect((await closed(second)).data).toBe('');
      expect(server.stats().rejected).toBe(1);
      first.end();
      expect((await closed(first)).data).toBe('hold\n');
    } finally {
      first.destroy();
    }
  });

  test('counts a connection whose client has not closed its side while the server\'s socket lingers for it (a worker that owned it counted it out at its request\'s end)', async () => {
    const server = serve(await bootstrap(handler));
    const header = (i: number) => (proxy ? v1Header('203.0.113.50', 50 + i) : '');
    // Reads its reply and the server's end, and keeps its own side open: the server's socket lingers for its FIN.
    const halfOpen = netConnect({ ...(endpoint(server) as net.NetConnectOpts), allowHalfOpen: true });
    halfOpen.on('error', () => undefined);
    try {
      let got = '';
      halfOpen.on('data', (d) => (got += d.toString()));
      const ended = new Promise<void>((resolve) => halfOpen.once('end', resolve));
      halfOpen.write(`${header(1)}first\n`);
      await within(5000, 'the server to end the first connection', ended);
      expect(got).toBe('first\n');
      // Its descriptor is still open in the server (lingering): over the limit, a second one is refused.
      const second = await rawConnect(endpoint(server), `${header(2)}second\n`);
      expect((await closed(second)).data).toBe('');
      expect(server.stats().rejected).toBe(1);
      // Its client closes its side: the linger ends, and the next one is served.
      halfOpen.end();
      await closed(halfOpen);
      await eventually('the lingering connection to be counted out', () => server.stats().active === 0, 5000);
      const third = await rawConnect(endpoint(server), `${header(3)}third\n`);
      third.end();
      expect((await closed(third)).data).toBe('third\n');
    } finally {
      halfOpen.destroy();
    }
  });

  // Behind a PROXY header the per-client wait comes after the header is read (the listener's ready()), which counted it already.
  (proxy ? test.skip : test)('a connection held over the limit when close() comes is counted as rejected', async () => {
    const server = serve(await bootstrap(handler));
    const header = (i: number) => (proxy ? v1Header('203.0.113.50', 50 + i) : '');
    const halfOpen = netConnect({ ...(endpoint(server) as net.NetConnectOpts), allowHalfOpen: true });
    halfOpen.on('error', () => undefined);
    try {
      const ended = new Promise<void>((resolve) => halfOpen.once('end', resolve));
      halfOpen.resume();
      halfOpen.write(`${header(1)}first\n`);
      await within(5000, 'the server to end the first connection', ended);
      // Over the limit while the first one lingers (it may end any moment): held, unread, up to 250 ms.
      const second = await rawConnect(endpoint(server), `${header(2)}second\n`);
      await eventually('the second connection to be accepted', () => server.stats().accepted === 2, 5000);
      expect(server.stats().rejected).toBe(0); // still held
      await server.close();
      expect((await closed(second)).data).toBe('');
      expect(server.stats()).toMatchObject({ accepted: 2, rejected: 1, active: 0 });
    } finally {
      halfOpen.destroy();
    }
  });
});

describe.each([
  { model: '@Threading', handler: ProxyInThreads },
  { model: '@Forking', handler: ProxyInChildren },
  { model: '@Threading perRequest', handler: ProxyPerRequestThread },
  { model: '@Forking perRequest', handler: ProxyPerRequestChild },
])('a PROXY header and then the client\'s end, with $model', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('a client that sends its header and ends at once is closed and counted out (its end, read with the header, never reached a relayed worker: hostile run)', async () => {
    const server = serve(await bootstrap(handler));
    // each sends its header and its FIN as it connects, before the server has accepted it
    const clients = Array.from({ length: 4 }, (_, i) => netConnect(endpoint(server) as net.NetConnectOpts).end(v1Header('203.0.113.40', 40 + i)));
    for (const client of clients) client.on('error', () => undefined);
    try {
      const ends = await Promise.all(clients.map((client) => closed(client, 5000)));
      expect(ends).toEqual(clients.map(() => ({ reset: false, data: '' })));
      await eventually('every connection to be counted out', () => server.stats().active === 0, 5000);
      const next = await rawConnect(endpoint(server), v1Header('203.0.113.41', 41));
      next.write('next\n');
      expect(await readLine(next)).toBe('next\n');
      next.destroy();
      expect(server.stats()).toMatchObject({ errors: 0, proxyErrors: 0 });
    } finally {
      for (const client of clients) client.destroy();
    }
  });

  test('a client that resets right after its header (perRequest: while its connection waits for a fresh worker) is a client error, not a handler error', async () => {
    const { logger } = quietLogger();
    const server = serve(await bootstrap(handler, { logger }));
    const client = await rawConnect(endpoint(server));
    client.on('error', () => undefined);
    client.write(`${v1Header('203.0.113.42', 42)}hello\n`);
    await new Promise((resolve) => setTimeout(resolve, 5)); // a fresh worker takes longer than this to start
    client.resetAndDestroy();
    // Where the server was slow to accept (a loaded machine), the client reset before it was accepted: its address
    // went with the reset, so its header cannot be believed, and it is a health check (API.md §11); a client error
    // otherwise. Never a handler's error either way.
    const seen = () => server.stats().clientErrors + server.stats().errors + server.stats().healthChecks;
    await eventually('the reset to be reported', () => seen() > 0 && server.stats().active === 0, 5000);
    expect(server.stats().errors).toBe(0);
    expect(server.stats().clientErrors + server.stats().healthChecks).toBe(1);
  });
});

describe('tls options that cannot reach the workers', () => {
  test('a function among the tls options (pskCallback) with @Forking is a ConfigurationError naming the handler and a fix', async () => {
    await expect(bootstrap(TlsInChildren, { transport: { tls: { ...TLS, pskCallback: () => null } } })).rejects.toThrow(
      /TlsInChildren: the tls options cannot be copied to the forking workers that terminate TLS .*Fix:/s,
    );
  });
});

describe('a Unix stream server with TLS and @Forking', () => {
  const serve = servingInTests<Server>();

  test('its child terminates TLS and runs @Verify on the socket it owns', async () => {
    const dir = tempDir();
    try {
      const sock = path.join(dir, 'tls.sock');
      serve(await bootstrap(UnixTlsInChildren, { transport: { path: sock } }));
      const client = await tlsConnect({ path: sock });
      const where = await askWhere(client);
      expect(where).toMatchObject({ ownsTlsSocket: true, tls: { protocol: 'TLSv1.3' }, handledAt: { worker: true } });
      expect(where.verifiedAt).toEqual(where.handledAt);
      client.destroy();
    } finally {
      removeTempDir(dir);
    }
  });
});

describe('the classic ForkingMixIn(TCPServer) with the tls option', () => {
  const serve = servingInTests<TCPServer>();

  test('its children terminate TLS: the handler\'s request is the TLS socket, and plain text is a TlsHandshakeError in the server', async () => {
    const server = classicForkingTls();
    const errors: unknown[] = [];
    server.handleError = (_r, _a, e) => void errors.push(e);
    await server.ready;
    serve(server);
    const [host, port] = server.serverAddress;
    const client = await tlsConnect({ host, port });
    client.write('over TLS\n');
    const reply = JSON.parse(await readLine(client));
    expect(reply).toMatchObject({ tlsHere: true, line: 'over TLS\n', at: { worker: true } });
    expect(reply.at.pid).not.toBe(process.pid);
    client.destroy();
    await closed(await rawConnect({ host, port }, 'plain\n'));
    await eventually('handleError', () => errors.length > 0, 5000);
    expect((errors[0] as Error).name).toBe('TlsHandshakeError');
  });
});
