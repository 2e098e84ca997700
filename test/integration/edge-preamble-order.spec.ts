import 'reflect-metadata';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { bootstrap, Concurrent, Handle, Server, StreamRequest, TcpServer } from '../../src';
import { TLS } from '../fixtures/edge-handlers';
import { within } from '../helpers/clients';
import { closed, endpoint, rawConnect, readLine, tlsConnect, v1Header } from '../helpers/edge-clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

/**
 * The order of a connection's edge (docs/production.md): the limits, maxConnectionsPerClient once the PROXY
 * header has named the client, then the TLS handshake. A client over its limit costs no handshake.
 */

/** The first flight of a TLS client (its ClientHello), captured without a server. */
function clientHello(): Promise<Buffer> {
  return within(5000, 'a ClientHello', new Promise<Buffer>((resolve) => {
    const capture = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        resolve(chunk);
        callback();
      },
    });
    const client = tls.connect({ socket: capture as never, servername: 'localhost' });
    client.on('error', () => undefined);
    setImmediate(() => client.destroy());
  }));
}

describe('maxConnectionsPerClient behind a PROXY header, with TLS', () => {
  const serve = servingInTests<Server>();

  test('a client over its limit is closed after its header, before any handshake: nothing sent back, counted rejected, not a TLS error', async () => {
    @TcpServer({ port: 0, tls: TLS, proxyProtocol: true, limits: { maxConnectionsPerClient: 1, lineTimeout: 2 } }) @Concurrent()
    class PerClientTls {
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(`hello ${req.clientAddress.host}\n`); await req.rfile.readAll(); }
    }
    const logger = memoryLogger();
    const server = serve(await bootstrap(PerClientTls, { logger }));
    const first = await tlsConnect(endpoint(server), { raw: await rawConnect(endpoint(server), v1Header('198.51.100.1', 1)) });
    try {
      expect(await readLine(first)).toBe('hello 198.51.100.1\n');
      // The same client again, its ClientHello right behind the header: closed with no byte of a handshake.
      const second = await rawConnect(endpoint(server), Buffer.concat([Buffer.from(v1Header('198.51.100.1', 2)), await clientHello()]));
      expect((await closed(second, 5000)).data.length).toBe(0);
      expect(server.stats()).toMatchObject({ rejected: 1, tlsErrors: 0 });
      // No TLS error line: one line of the refusal, naming the client the header gave.
      expect(logger.lines.warn).toEqual([expect.stringMatching(/^PerClientTls: refused a connection from 198\.51\.100\.1:2: it was over limits\.maxConnectionsPerClient \(1\)/)]);
      // Another client is served.
      const other = await tlsConnect(endpoint(server), { raw: await rawConnect(endpoint(server), v1Header('198.51.100.2', 3)) });
      expect(await readLine(other)).toBe('hello 198.51.100.2\n');
      other.destroy();
    } finally {
      first.destroy();
    }
  });

  test('with required: false, a client with no header over its limit is closed at its first bytes, before any handshake', async () => {
    @TcpServer({ port: 0, tls: TLS, proxyProtocol: { required: false }, limits: { maxConnectionsPerClient: 1, lineTimeout: 2 } }) @Concurrent()
    class PerClientOptionalHeader {
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(`hello ${req.clientAddress.host}\n`); await req.rfile.readAll(); }
    }
    const logger = memoryLogger();
    const server = serve(await bootstrap(PerClientOptionalHeader, { logger }));
    const first = await tlsConnect(endpoint(server), { raw: await rawConnect(endpoint(server), undefined, '127.0.0.2') });
    try {
      expect(await readLine(first)).toBe('hello 127.0.0.2\n');
      const second = await rawConnect(endpoint(server), await clientHello(), '127.0.0.2');
      expect((await closed(second, 5000)).data.length).toBe(0);
      expect(server.stats()).toMatchObject({ rejected: 1, tlsErrors: 0 });
      expect(logger.lines.warn).toEqual([expect.stringMatching(/^PerClientOptionalHeader: refused a connection from 127\.0\.0\.2:\d+: it was over limits\.maxConnectionsPerClient \(1\)/)]);
    } finally {
      first.destroy();
    }
  });
});
