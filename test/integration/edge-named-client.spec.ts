import 'reflect-metadata';
import { bootstrap, ClientAddress, Concurrent, Handle, HandleError, Server, StreamRequest, TcpServer } from '../../src';
import { TLS } from '../fixtures/edge-handlers';
import { errorsSeenHere, ProxyTlsInChildren, ProxyTlsInThreads } from '../fixtures/edge-worker-handlers';
import { closed, endpoint, rawConnect, v1Header } from '../helpers/edge-clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

/**
 * A TLS handshake that fails after a PROXY header is the named client's failure (API.md §11: clientAddress is
 * the original client): @HandleError and the warn line name that client, not the proxy's address, as they do
 * for the connection's other errors and for limits.
 */

const seenHere: Array<{ name: string; client: ClientAddress | undefined }> = [];

@TcpServer({ port: 0, tls: TLS, proxyProtocol: true, limits: { lineTimeout: 2 } }) @Concurrent()
class ProxyTlsInMain {
  @Handle() async handle(req: StreamRequest): Promise<void> {
    await req.wfile.write('hello\n');
  }

  @HandleError() error(err: Error, client: ClientAddress | undefined): void {
    seenHere.push({ name: err.name, client });
  }
}

@TcpServer({ port: 0, tls: TLS, proxyProtocol: true, limits: { lineTimeout: 2 } }) @Concurrent()
class ProxyTlsDefaultErrors {
  @Handle() async handle(req: StreamRequest): Promise<void> {
    await req.wfile.write('hello\n');
  }
}

/** Resolves once `check()` holds; polls for `ms` at most, so a failing wait leaves no timer behind. */
function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(true) : Date.now() > end ? resolve(false) : setTimeout(poll, 10));
    poll();
  });
}

beforeEach(() => {
  seenHere.length = 0;
  errorsSeenHere.length = 0;
});

describe.each([
  { mode: '@Concurrent', handler: ProxyTlsInMain, seen: seenHere },
  { mode: '@Threading', handler: ProxyTlsInThreads, seen: errorsSeenHere },
  { mode: '@Forking', handler: ProxyTlsInChildren, seen: errorsSeenHere },
])('a failed TLS handshake behind a PROXY header with $mode', ({ handler, seen }) => {
  const serve = servingInTests<Server>();

  test('reaches @HandleError with the client the header named, not the proxy', async () => {
    const server = serve(await bootstrap(handler as new () => object));
    const plain = await rawConnect(endpoint(server), `${v1Header('203.0.113.12', 5003)}GET / HTTP/1.0\r\n\r\n`);
    await closed(plain);
    await until(() => seen.length > 0);
    expect(seen.map(({ name, client }) => ({ name, client }))).toEqual([{ name: 'TlsHandshakeError', client: { host: '203.0.113.12', port: 5003, family: 'IPv4' } }]);
    expect(server.stats().tlsErrors).toBe(1);
  });
});

describe('a failed TLS handshake behind a PROXY header, without @HandleError', () => {
  const serve = servingInTests<Server>();

  test('is one warn line from the client the header named', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(ProxyTlsDefaultErrors, { logger }));
    const plain = await rawConnect(endpoint(server), `${v1Header('203.0.113.12', 5003)}GET / HTTP/1.0\r\n\r\n`);
    await closed(plain);
    await until(() => logger.lines.warn.length > 0);
    expect(logger.lines.warn).toEqual([
      'TlsHandshakeError from 203.0.113.12:5003: TLS handshake with 203.0.113.12:5003 failed: the client spoke plain text, not TLS (ERR_SSL_HTTP_REQUEST); a load balancer\'s health check must speak TLS too (HAProxy: check-ssl).',
    ]);
  });
});
