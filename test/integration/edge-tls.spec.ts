import 'reflect-metadata';
import * as net from 'node:net';
import * as tlsLib from 'node:tls';
import * as dc from 'node:diagnostics_channel';
import * as path from 'node:path';
import {
  bootstrap, Concurrent, ConfigurationError, Forking, Handle, HandleError, Server, Setup, StreamRequest, TcpServer, Threading,
  TlsHandshakeError, UnixStreamServer, Verify,
} from '../../src';
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { cert, reportOrEcho, TLS, TlsConcurrent, TlsForking, TlsVerifiedConcurrent, TlsVerifiedForking, TlsVerifiedThreading, TlsWriteNeverCalledBack, TlsRelayedForking, TlsRelayedThreading, TlsSerial, TlsThreading, TlsTwoChildren, TlsTwoThreads } from '../fixtures/edge-handlers';
import { removeTempDir, tempDir, within } from '../helpers/clients';
import { askInfo, closed, endpoint, rawConnect, readLine, tlsConnect, v1Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import { eventually } from '../helpers/eventually';
import { memoryLogger } from '../helpers/memory-logger';

describe.each([
  { mode: 'serial', handler: TlsSerial },
  { mode: '@Concurrent', handler: TlsConcurrent },
  { mode: '@Threading', handler: TlsThreading },
  { mode: '@Forking', handler: TlsForking },
  // TLS ended in the server's process, the plain bytes relayed to the worker: a forged record after the handshake
  // left the connection open, unreported, holding its worker, until close() (hostile run)
  { mode: '@Threading, connectionsPerThread: 1', handler: TlsRelayedThreading },
  { mode: '@Forking, connectionsPerChild: 1', handler: TlsRelayedForking },
])('TLS in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('the handler reads and writes plain bytes, and req.tls says protocol, cipher, ALPN, SNI and the client certificate', async () => {
    const server = serve(await bootstrap(handler));
    const client = await tlsConnect(endpoint(server), { alpn: ['other'] });
    try {
      client.write('hello over TLS\n');
      expect(await readLine(client)).toBe('hello over TLS\n');
      const { tls, client: address } = await askInfo(client);
      expect(tls).toMatchObject({ protocol: 'TLSv1.3', alpnProtocol: 'other', servername: 'localhost', authorized: true });
      expect(typeof tls.cipher).toBe('string');
      expect(tls.peerCertificate.subject.CN).toBe('sockserve test client');
      expect(address).toMatchObject({ host: '127.0.0.1', port: client.localPort });
    } finally {
      client.destroy();
    }
  });

  test('a client without a certificate is served with authorized false (rejectUnauthorized: false)', async () => {
    const server = serve(await bootstrap(handler));
    const client = await tlsConnect(endpoint(server), { anonymous: true });
    try {
      const { tls } = await askInfo(client);
      expect(tls.authorized).toBe(false);
      expect(tls.peerCertificate).toBeUndefined();
    } finally {
      client.destroy();
    }
  });

  test('a client that hangs up as its handshake completes is ended at once (lineTimeout is 30 s), and the next client is served', async () => {
    const server = serve(await bootstrap(handler, { logger: { error: () => undefined, warn: () => undefined } }));
    const { port } = endpoint(server) as { port: number };
    await within(5000, 'the client to hang up', new Promise<void>((resolve) => {
      const s = tlsLib.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => resolve());
    }));
    // Ended as Node's own tls.Server ends it (ECONNRESET: a TLS error), or read to its end (a health check):
    // either way at once, not held in CLOSE-WAIT until lineTimeout.
    await within(5000, 'the server to end the connection', (async () => {
      for (;;) {
        const st = server.stats();
        if (st.tlsErrors + st.healthChecks === 1 && st.active === 0 && st.workers.every((w) => w.connections === 0)) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })());
    const client = await tlsConnect(endpoint(server));
    client.write('next\n');
    expect(await readLine(client)).toBe('next\n');
    client.destroy();
  });

  test('a client that half-closes after its request still gets the reply (half-open once the handshake is made)', async () => {
    const server = serve(await bootstrap(handler));
    const client = await tlsConnect(endpoint(server));
    try {
      client.end('last words\n');
      expect(await readLine(client)).toBe('last words\n');
    } finally {
      client.destroy();
    }
  });

  test('a plain-text client is closed with a TlsHandshakeError counted in tlsErrors only, and TLS clients are still served', async () => {
    const warned: string[] = [];
    const logger = { error: (m: string) => warned.push(`error: ${m}`), warn: (m: string) => warned.push(m) };
    const server = serve(await bootstrap(handler, { logger }));
    const plain = await rawConnect(endpoint(server), 'GET / HTTP/1.0\r\n\r\n');
    const end = await closed(plain);
    expect(end.data).not.toContain('GET');
    const client = await tlsConnect(endpoint(server));
    client.write('still here\n');
    expect(await readLine(client)).toBe('still here\n');
    client.destroy();
    await eventually('the warning', () => warned.length > 0, 5000);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^TlsHandshakeError from 127\.0\.0\.1:\d+: TLS handshake with .* failed: the client spoke plain text/);
    expect(warned[0]).not.toContain('\n');
    expect(server.stats()).toMatchObject({ tlsErrors: 1, errors: 0 });
  });

  test('a forged record after the handshake ends that connection with one warn line, counted in tlsErrors (hostile-client run: a traceback each, in errors)', async () => {
    const warned: string[] = [];
    const logger = { error: (m: string) => warned.push(`error: ${m}`), warn: (m: string) => warned.push(m) };
    const server = serve(await bootstrap(handler, { logger }));
    const raw = net.connect(endpoint(server) as net.NetConnectOpts);
    raw.on('error', () => undefined);
    const client = await tlsConnect(endpoint(server), { raw });
    client.write('before\n');
    expect(await readLine(client)).toBe('before\n');
    // An application-data record (type 23, TLS 1.2 on the wire) whose 32 bytes no key made: its tag fails.
    const gone = closed(raw);
    raw.write(Buffer.concat([Buffer.from([23, 3, 3, 0, 32]), Buffer.alloc(32, 0x5a)]));
    await gone;
    await eventually('the warning', () => warned.length > 0, 5000);
    // OpenSSL's reason in words, not its queue entry with file names and line numbers (hostile run)
    expect(warned).toEqual([expect.stringMatching(/^Error from 127\.0\.0\.1:\d+: TLS failed after the handshake: [a-z][a-z ]+; the connection was closed \(ERR_SSL_[A-Z_]+\)$/)]);
    expect(server.stats()).toMatchObject({ tlsErrors: 1, errors: 0, clientErrors: 0 });
    const next = await tlsConnect(endpoint(server));
    next.write('after\n');
    expect(await readLine(next)).toBe('after\n');
    next.destroy();
  });
});

describe('TLS and the lifecycle', () => {
  const serve = servingInTests<Server>();

  test('a handshake OpenSSL refuses (no shared cipher) is reported with its reason in words, not OpenSSL\'s queue entry', async () => {
    const warned: string[] = [];
    const server = serve(await bootstrap(TlsConcurrent, { logger: { error: (m: string) => warned.push(`error: ${m}`), warn: (m: string) => warned.push(m) } }));
    const { port } = endpoint(server) as { port: number };
    await within(5000, 'the refused handshake', new Promise<void>((resolve) => {
      const c = tlsLib.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES128-SHA' });
      c.on('error', () => resolve()).on('close', () => resolve());
    }));
    await eventually('the warning', () => warned.length > 0, 5000);
    expect(warned).toEqual([expect.stringMatching(/^TlsHandshakeError from 127\.0\.0\.1:\d+: TLS handshake with 127\.0\.0\.1:\d+ failed: [a-z][a-z ]+ \(ERR_SSL_[A-Z_]+\)\.$/)]);
    expect(warned[0]).not.toMatch(/ssl\/|SSL routines/);
    expect(server.stats()).toMatchObject({ tlsErrors: 1, errors: 0 });
  });

  test('a failed handshake reaches @HandleError as a TlsHandshakeError before any other hook', async () => {
    const calls: string[] = [];
    @TcpServer({ port: 0, tls: TLS })
    class Hooked {
      @Verify() verify() { calls.push('verify'); return true; }
      @Setup() setup() { calls.push('setup'); }
      @Handle() handle() { calls.push('handle'); }
      @HandleError() error(err: Error) { calls.push(`error ${err.constructor.name}`); }
    }
    const server = serve(await bootstrap(Hooked));
    await closed(await rawConnect(endpoint(server), 'plain text\n'));
    await eventually('@HandleError', () => calls.length > 0, 5000);
    expect(calls).toEqual(['error TlsHandshakeError']);
  });

  test('a client that connects and closes without a byte is a quiet health check', async () => {
    const calls: string[] = [];
    @TcpServer({ port: 0, tls: TLS })
    class Quiet {
      @Verify() verify() { calls.push('verify'); return true; }
      @Handle() handle() { calls.push('handle'); }
      @HandleError() error() { calls.push('error'); }
    }
    const server = serve(await bootstrap(Quiet));
    const probe = await rawConnect(endpoint(server));
    probe.end();
    await closed(probe);
    await eventually('the health check to be counted', () => server.stats().healthChecks === 1, 5000);
    expect(calls).toEqual([]);
    expect(server.stats()).toMatchObject({ healthChecks: 1, tlsErrors: 0, errors: 0 });
  });

  test('setSecureContext() gives new connections the new certificate without a restart', async () => {
    const server = serve(await bootstrap(TlsConcurrent));
    const before = await tlsConnect(endpoint(server));
    const first = before.getPeerCertificate().serialNumber;
    await server.setSecureContext({ key: cert('rotated.key'), cert: cert('rotated.crt'), ca: cert('ca.crt') });
    const after = await tlsConnect(endpoint(server));
    try {
      expect(after.getPeerCertificate().serialNumber).not.toBe(first);
      after.write('new cert\n');
      expect(await readLine(after)).toBe('new cert\n');
      before.write('old cert\n'); // the open connection keeps working
      expect(await readLine(before)).toBe('old cert\n');
    } finally {
      before.destroy();
      after.destroy();
    }
  });

  test('bootstrap({ transport }) gives a plain handler tls, proxyProtocol and limits at run time, checked by the same rules', async () => {
    @TcpServer(0) @Concurrent()
    class Configured {
      @Handle() handle(req: StreamRequest) { return reportOrEcho(req); }
    }
    const server = serve(await bootstrap(Configured, { transport: { tls: TLS, proxyProtocol: true, limits: { maxConnectionsPerClient: 5 } } }));
    const raw = await rawConnect(endpoint(server), v1Header('192.0.2.9', 999));
    const client = await tlsConnect(endpoint(server), { raw });
    try {
      const info = await askInfo(client);
      expect(info.client.host).toBe('192.0.2.9');
      expect(info.tls.protocol).toBe('TLSv1.3');
    } finally {
      client.destroy();
    }
    await expect(bootstrap(Configured, { transport: { limits: { lineTimeout: 0 } } })).rejects.toThrow(/limits.lineTimeout 0 is not a positive number/);
  });

  test.each([
    ['@Threading', TlsTwoThreads],
    ['@Forking', TlsTwoChildren],
  ] as const)('%s: a TLS session resumes whichever of two workers the client reaches (the workers share the ticket keys)', async (_mode, handler) => {
    const s = serve(await bootstrap(handler));
    const { host, port } = endpoint(s);
    let session: Buffer | undefined;
    const reused: boolean[] = [];
    const pids = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const c = await within(10000, 'a TLS 1.2 client', new Promise<tlsLib.TLSSocket>((resolve, reject) => {
        const t = tlsLib.connect({ host, port, ca: cert('ca.crt'), servername: 'localhost', maxVersion: 'TLSv1.2', session, key: cert('client.key'), cert: cert('client.crt') });
        t.once('secureConnect', () => resolve(t)).once('error', reject);
      }));
      pids.add((await askInfo(c)).pid);
      if (i > 0) reused.push(c.isSessionReused());
      session = c.getSession();
      c.end();
      await closed(c);
    }
    // Before: each worker had keys of its own, and only a client that came back to the same worker resumed.
    expect(reused).toEqual(Array(7).fill(true));
    if (handler === TlsTwoChildren) expect(pids.size).toBe(2); // children: the two took connections in turn
  });

  test('a bad key or certificate is a ConfigurationError that names tls, not proxyProtocol.trusted', async () => {
    @TcpServer({ port: 0, tls: { key: 'not a key', cert: cert('server.crt') } })
    class BadKey {
      @Handle() handle() {}
    }
    @TcpServer({ port: 0, tls: { ...TLS, minVersion: 'TLSv9' as never } })
    class BadVersion {
      @Handle() handle() {}
    }
    // In the pools too, where workers terminate TLS (it was "the worker could not load the handler").
    @TcpServer({ port: 0, tls: { key: cert('client.key'), cert: cert('server.crt') } }) @Threading({ threads: 1 })
    class MismatchThreads {
      @Handle() handle() {}
    }
    @TcpServer({ port: 0, tls: { key: cert('client.key'), cert: cert('server.crt') } }) @Forking({ children: 1 })
    class MismatchChildren {
      @Handle() handle() {}
    }
    for (const handler of [BadKey, BadVersion, MismatchThreads, MismatchChildren]) {
      const failed = await bootstrap(handler).then(() => undefined, (e: unknown) => e);
      expect(failed).toBeInstanceOf(ConfigurationError);
      // Before: "TCPServer: proxyProtocol.trusted: error:…PEM routines… Fix: list addresses or CIDR blocks"
      expect((failed as Error).message).toMatch(new RegExp(`^${handler.name}: tls: .*Fix: give a PEM private key`, 's'));
      expect((failed as Error).message).not.toContain('proxyProtocol');
    }
  });

  test('tls without a key and its certificate is a ConfigurationError at bootstrap (Node accepts it and fails every handshake)', async () => {
    @TcpServer({ port: 0, tls: {} })
    class Empty {
      @Handle() handle() {}
    }
    @TcpServer({ port: 0, tls: { key: cert('server.key'), ca: cert('ca.crt') } })
    class KeyOnly {
      @Handle() handle() {}
    }
    @TcpServer({ port: 0, tls: { cert: cert('server.crt') } }) @Forking({ children: 1 })
    class CertOnlyChildren {
      @Handle() handle() {}
    }
    const cases: Array<[new () => unknown, RegExp]> = [
      [Empty, /^Empty: tls: no certificate and key/],
      [KeyOnly, /^KeyOnly: tls: a key without its certificate \(cert\)/],
      [CertOnlyChildren, /^CertOnlyChildren: tls: a certificate without its private key \(key\)/],
    ];
    for (const [handler, message] of cases) {
      const failed = await bootstrap(handler).then(() => undefined, (e: unknown) => e);
      expect(failed).toBeInstanceOf(ConfigurationError);
      expect((failed as Error).message).toMatch(message);
    }
    const classic = new TCPServer(['127.0.0.1', 0], StreamRequestHandler, { tls: {}, bindAndActivate: false });
    await expect(classic.serverBind()).rejects.toThrow(/^TCPServer: tls: no certificate and key/);
    classic.serverClose();
    // What supplies a certificate per connection is enough.
    @TcpServer({ port: 0, tls: { SNICallback: (_name: string, cb: (e: Error | null, ctx?: tlsLib.SecureContext) => void) => cb(null, tlsLib.createSecureContext(TLS)) } })
    class BySni {
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); }
    }
    const server = serve(await bootstrap(BySni));
    const client = await tlsConnect(endpoint(server));
    try {
      client.write('by SNI\n');
      expect(await readLine(client)).toBe('by SNI\n');
    } finally {
      client.destroy();
    }
  });

  test('setSecureContext() without a key and its certificate is a ConfigurationError and changes nothing', async () => {
    const server = serve(await bootstrap(TlsConcurrent));
    const first = await tlsConnect(endpoint(server));
    const serial = first.getPeerCertificate().serialNumber;
    first.destroy();
    expect(() => server.setSecureContext({ ca: cert('ca.crt') })).toThrow(/setSecureContext\(\): no certificate and key, so nothing was changed/);
    expect(() => server.setSecureContext({ key: cert('rotated.key') })).toThrow(ConfigurationError);
    // A key Node's TLS refuses (garbage; a key that is not the certificate's): named, with a fix, Node's error its cause.
    for (const refused of [{ key: Buffer.from('not a key'), cert: cert('server.crt') }, { key: cert('rotated.key'), cert: cert('server.crt') }]) {
      let thrown: unknown;
      try {
        void server.setSecureContext(refused);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigurationError);
      expect((thrown as Error).message).toMatch(/^TlsConcurrent\.setSecureContext\(\): Node's TLS refused the new options \((unsupported|key values mismatch)[^)]*\), so nothing was changed.*Fix: /);
      expect(String((thrown as Error).cause)).toMatch(/error:[0-9A-F]+:/); // Node's own, in OpenSSL's words
    }
    const again = await tlsConnect(endpoint(server));
    try {
      expect(again.getPeerCertificate().serialNumber).toBe(serial);
      again.write('still\n');
      expect(await readLine(again)).toBe('still\n');
    } finally {
      again.destroy();
    }
  });

  test('setSecureContext() on a server without tls is a ConfigurationError', async () => {
    @TcpServer(0)
    class Plain {
      @Handle() handle() {}
    }
    const server = serve(await bootstrap(Plain));
    expect(() => server.setSecureContext({ cert: cert('server.crt') })).toThrow(ConfigurationError);
    // It named the classic class (TCPServer), where every other message names the handler (new-user run).
    expect(() => server.setSecureContext({ cert: cert('server.crt') })).toThrow(/^Plain\.setSecureContext\(\): this server does not speak TLS/);
  });

  test('an SNICallback with @Threading or @Forking is a ConfigurationError at bootstrap', async () => {
    const SNI = { ...TLS, SNICallback: (_name: string, cb: (e: Error | null) => void) => cb(null) };
    @TcpServer({ port: 0, tls: SNI }) @Threading()
    class SniThreads {
      @Handle() handle() {}
    }
    @TcpServer({ port: 0, tls: SNI }) @Forking()
    class SniChildren {
      @Handle() handle() {}
    }
    await expect(bootstrap(SniThreads)).rejects.toThrow(/SNICallback is a function.*threading.*Fix:/s);
    await expect(bootstrap(SniChildren)).rejects.toThrow(/SNICallback is a function.*forking.*Fix:/s);
  });

  test('@UnixStreamServer terminates TLS too', async () => {
    const dir = tempDir();
    try {
      @UnixStreamServer({ path: path.join(dir, 'tls.sock'), tls: TLS })
      class UnixTls {
        @Handle() async handle(req: StreamRequest) { await req.wfile.write(`${req.tls?.protocol} ${await req.rfile.readline()}`); }
      }
      const server = serve(await bootstrap(UnixTls));
      const client = await tlsConnect({ path: path.join(dir, 'tls.sock') });
      client.write('over a Unix socket\n');
      expect(await readLine(client)).toBe('TLSv1.3 over a Unix socket\n');
      client.destroy();
      await server.shutdown();
      await server.close();
    } finally {
      removeTempDir(dir);
    }
  });
});

describe('the classic TCPServer with the tls option', () => {
  const serve = servingInTests<TCPServer>();

  test('serves a StreamRequestHandler over TLS, and a plain-text client reaches handleError as a TlsHandshakeError', async () => {
    class Echo extends StreamRequestHandler {
      async handle() { await this.wfile.write(await this.rfile.readline()); }
    }
    const errors: unknown[] = [];
    class Server extends TCPServer {
      override handleError(_r: unknown, _a: unknown, error: unknown) { errors.push(error); }
    }
    const server = serve(new Server(['127.0.0.1', 0], Echo, { tls: TLS }));
    await server.ready;
    const [host, port] = server.serverAddress;
    const client = await tlsConnect({ host, port });
    client.write('classic\n');
    expect(await readLine(client)).toBe('classic\n');
    client.destroy();
    await closed(await rawConnect({ host, port }, 'plain\n'));
    await eventually('handleError', () => errors.length > 0, 5000);
    expect(errors[0]).toBeInstanceOf(TlsHandshakeError);
  });
});

/** Polls `cond` every 10 ms until it holds. */

void net;

describe('a TLS write that never calls back after the client\'s end', () => {
  const serve = servingInTests<Server>();
  test('ends as a reset within a few seconds: its request, its limits slot and its descriptor are not held for good', async () => {
    // Before: a write begun as a client's reset arrived (read as its end) never settled and its socket never closed:
    // stats().active 1 for ever, a maxConnections slot and a descriptor held, close() waited shutdownTimeout (hostile run).
    const errors: unknown[] = [];
    const server = serve(await bootstrap(TlsWriteNeverCalledBack, { logger: { error: () => undefined, warn: () => undefined } }));
    const ended = new Promise<void>((resolve) => dc.subscribe('sockserve:request.end', function onEnd(data: unknown) {
      errors.push((data as { error?: unknown }).error);
      dc.unsubscribe('sockserve:request.end', onEnd);
      resolve();
    }));
    const client = await tlsConnect(endpoint(server));
    client.on('error', () => undefined);
    client.write('go\n');
    await eventually('the request to begin', () => server.stats().active === 1);
    await new Promise((r) => setTimeout(r, 200)); // the handler's write is under way
    client.end(); // the client's end reaches the server's TLS socket
    await within(15000, 'the request to end', ended);
    expect(errors).toEqual([expect.objectContaining({ code: 'ECONNRESET' })]);
    await eventually('the request to be counted ended', () => server.stats().active === 0);
    expect(server.stats()).toMatchObject({ active: 0, clientErrors: 1 });
    client.destroy();
  }, 30000);
});

describe('a client certificate that does not verify (requestCert with rejectUnauthorized)', () => {
  const serve = servingInTests<Server>();
  test.each([
    ['@Concurrent', 'TLSv1.3', TlsVerifiedConcurrent], ['@Concurrent', 'TLSv1.2', TlsVerifiedConcurrent],
    ['@Threading', 'TLSv1.3', TlsVerifiedThreading], ['@Forking', 'TLSv1.2', TlsVerifiedForking],
  ] as const)('%s, %s: its refusal says why, not "ECONNRESET: socket hang up" (hostile run), and a trusted client is served after it', async (_mode, maxVersion, Handler) => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(Handler, { logger }));
    const { port } = endpoint(server) as { port: number };
    const untrusted = tlsLib.connect({ host: '127.0.0.1', port, ca: cert('ca.crt'), servername: 'localhost', maxVersion, key: cert('untrusted.key'), cert: cert('untrusted.crt') });
    untrusted.on('error', () => undefined);
    untrusted.on('secureConnect', () => untrusted.write('info\n'));
    try {
      await eventually('the refusal to be counted', () => server.stats().tlsErrors === 1, 10000);
      expect(logger.lines.warn).toEqual([
        expect.stringMatching(/^TlsHandshakeError from 127\.0\.0\.1:\d+: TLS handshake with 127\.0\.0\.1:\d+ failed: DEPTH_ZERO_SELF_SIGNED_CERT: the client's certificate did not verify against tls\.ca \(Node's root certificates where ca is not given\), so it was refused \(requestCert with rejectUnauthorized\)\.$/),
      ]);
      const trusted = await tlsConnect(endpoint(server));
      try {
        expect((await askInfo(trusted)).tls.authorized).toBe(true);
      } finally {
        trusted.destroy();
      }
      expect(server.stats()).toMatchObject({ tlsErrors: 1, errors: 0, clientErrors: 0 });
    } finally {
      untrusted.destroy();
    }
  }, 30000);

  test.each(['TLSv1.3', 'TLSv1.2'] as const)('%s: a client with no certificate is told apart, and the line says the server asks for one (it gave only OpenSSL\'s "peer did not return a certificate": new-user run)', async (maxVersion) => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(TlsVerifiedConcurrent, { logger }));
    const { port } = endpoint(server) as { port: number };
    const anonymous = tlsLib.connect({ host: '127.0.0.1', port, ca: cert('ca.crt'), servername: 'localhost', maxVersion });
    anonymous.on('error', () => undefined);
    try {
      await eventually('the refusal to be counted', () => server.stats().tlsErrors === 1, 10000);
      expect(logger.lines.warn).toEqual([
        expect.stringMatching(/TLS handshake with 127\.0\.0\.1:\d+ failed: the client sent no certificate, which requestCert with rejectUnauthorized requires \(ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE\)\.$/),
      ]);
    } finally {
      anonymous.destroy();
    }
  }, 30000);
});
