import 'reflect-metadata';
import * as tls from 'node:tls';
import { bootstrap, Server } from '../../src';
import { cert, ProxyTlsConcurrent } from '../fixtures/edge-handlers';
import * as path from 'node:path';
import { errorsSeenHere, ProxyTlsInChildren, ProxyTlsInThreads, UnixGoodbyeInThreads, UnixTlsErrorReplyInThreads } from '../fixtures/edge-worker-handlers';
import * as net from 'node:net';
import { removeTempDir, tempDir, within } from '../helpers/clients';
import { closed, endpoint, rawConnect, tlsConnect, v1Header, v2Header } from '../helpers/edge-clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

/**
 * A balancer's TLS check behind its PROXY header (HAProxy's `check-ssl` with `send-proxy`): the header, a
 * whole handshake, then the close, with or without close_notify. docs/production.md: quiet, and counted in
 * stats().healthChecks, wherever the handshake ran. Threads that terminate TLS on relayed bytes (Node 20 and
 * 22) counted it nowhere: the header's bytes were taken off the TLS socket's count, which never held them.
 */

/** Resolves once `check()` holds; polls for `ms` at most, so a failing wait leaves no timer behind. */
function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(true) : Date.now() > end ? resolve(false) : setTimeout(poll, 10));
    poll();
  });
}

/** A TLS 1.2 client over `raw` (its Finished goes before the server's, so a drop at secureConnect ends a complete handshake). */
function tls12Connect(raw: import('node:net').Socket): Promise<tls.TLSSocket> {
  return within(10000, 'a TLS 1.2 handshake', new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ socket: raw, ca: cert('ca.crt'), servername: 'localhost', key: cert('client.key'), cert: cert('client.crt'), maxVersion: 'TLSv1.2' });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  }));
}

beforeEach(() => {
  errorsSeenHere.length = 0;
});

describe.each([
  { mode: '@Threading', handler: ProxyTlsInThreads },
  { mode: '@Forking', handler: ProxyTlsInChildren },
])('TLS health checks behind a PROXY header with $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('a header, a handshake and an end(), and a TLS 1.2 handshake then a drop, are each a quiet health check', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(handler, { logger }));
    const check = await tlsConnect(endpoint(server), { raw: await rawConnect(endpoint(server), v1Header('203.0.113.1', 1)) });
    check.end();
    await closed(check);
    await until(() => server.stats().healthChecks === 1 && server.stats().active === 0);
    expect(server.stats()).toMatchObject({ healthChecks: 1, active: 0 });
    const dropped = await tls12Connect(await rawConnect(endpoint(server), v1Header('203.0.113.2', 2)));
    dropped.destroy();
    await until(() => server.stats().healthChecks === 2 && server.stats().active === 0);
    expect(server.stats()).toMatchObject({ healthChecks: 2, active: 0, errors: 0, clientErrors: 0, tlsErrors: 0, proxyErrors: 0 });
    expect(errorsSeenHere).toEqual([]);
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });
});

/**
 * `n` clients one after another, each opened by `open` and destroyed 1 ms after its `ready` (its connect, or its
 * handshake); resolves once the last has closed.
 */
async function comeAndGo(n: number, open: (ready: () => void) => net.Socket): Promise<void> {
  for (let i = 0; i < n; i++) {
    await within(10000, 'a client to come and go', new Promise<void>((resolve) => {
      const s = open(() => setTimeout(() => s.destroy(), 1));
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    }));
  }
}

describe('a TLS 1.3 client that closes right after its handshake, over bytes relayed to a thread (a Unix socket)', () => {
  const serve = servingInTests<Server>();
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => removeTempDir(dir));

  test('is a quiet health check even when the handler answers the reset with an error line (it was a client error, 3 to 10 times in 20)', async () => {
    const logger = memoryLogger();
    const file = path.join(dir, 'tls.sock');
    const server = serve(await bootstrap(UnixTlsErrorReplyInThreads, { logger, transport: { path: file } }));
    // Its session tickets unread, the client's close is a reset: the server's process relays it to the thread,
    // whose handler then writes. That write never reaches the client, as on a socket of the thread's own.
    await comeAndGo(20, (ready) => tls.connect({ path: file, ca: cert('ca.crt'), servername: 'localhost' }).once('secureConnect', ready));
    await until(() => server.stats().healthChecks + server.stats().clientErrors === 20 && server.stats().active === 0, 10000);
    expect(server.stats()).toMatchObject({ healthChecks: 20, clientErrors: 0, errors: 0, tlsErrors: 0, active: 0 });
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });
});

describe('a plain client that connects and goes at once, over bytes relayed to a thread (a Unix socket)', () => {
  const serve = servingInTests<Server>();
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => removeTempDir(dir));

  test('is a quiet health check even when @Finish says goodbye to it (its failed write counted as bytes out: a client error)', async () => {
    const logger = memoryLogger();
    const file = path.join(dir, 'plain.sock');
    const server = serve(await bootstrap(UnixGoodbyeInThreads, { logger, transport: { path: file } }));
    await comeAndGo(6, (ready) => net.connect(file, ready));
    await until(() => server.stats().healthChecks + server.stats().clientErrors === 6 && server.stats().active === 0, 10000);
    expect(server.stats()).toMatchObject({ healthChecks: 6, clientErrors: 0, errors: 0, active: 0 });
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });
});

describe.each([
  { mode: '@Concurrent', handler: ProxyTlsConcurrent },
  { mode: '@Threading', handler: ProxyTlsInThreads },
  { mode: '@Forking', handler: ProxyTlsInChildren },
])('a balancer\'s TLS check (a v2 LOCAL header) that resets in the middle of its handshake, with $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('is a quiet health check, as HAProxy\'s check-ssl cut short by its `inter` (it was a TlsHandshakeError warn line each)', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(handler, { logger }));
    const raw = await rawConnect(endpoint(server), v2Header({ local: true }));
    raw.on('error', () => undefined);
    await within(10000, 'the server\'s first handshake message', new Promise<void>((resolve) => {
      const s = tls.connect({ socket: raw, ca: cert('ca.crt'), servername: 'localhost' });
      s.on('error', () => undefined);
      // The client's handshake secrets follow the server's first flight: its own Finished is not sent yet.
      s.once('keylog', () => {
        raw.resetAndDestroy();
        resolve();
      });
    }));
    await until(() => server.stats().healthChecks + server.stats().tlsErrors === 1 && server.stats().active === 0, 10000);
    expect(server.stats()).toMatchObject({ healthChecks: 1, tlsErrors: 0, clientErrors: 0, errors: 0, active: 0 });
    expect([...logger.lines.warn, ...logger.lines.error]).toEqual([]);
  });
});
