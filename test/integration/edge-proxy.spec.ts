import 'reflect-metadata';
import {
  bootstrap, ClientAddress, Concurrent, Handle, HandleError, ProxyProtocolError, Server, Setup, StreamRequest, TcpServer, Verify,
} from '../../src';
import { ProxyConcurrent, ProxyForking, ProxySerial, ProxyThreading, ProxyTlsConcurrent, ProxyTlsForking, reportOrEcho } from '../fixtures/edge-handlers';
import { within } from '../helpers/clients';
import { askInfo, closed, endpoint, rawConnect, readLine, tlsConnect, v1Header, v2Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import { eventually } from '../helpers/eventually';

describe.each([
  { mode: 'serial', handler: ProxySerial },
  { mode: '@Concurrent', handler: ProxyConcurrent },
  { mode: '@Threading', handler: ProxyThreading },
  { mode: '@Forking', handler: ProxyForking },
])('the PROXY protocol in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('a v1 header makes clientAddress the original client, and bytes sent with it reach the handler', async () => {
    const server = serve(await bootstrap(handler));
    const client = await rawConnect(endpoint(server), `${v1Header('203.0.113.7', 51000, '192.0.2.1', 443)}first line\n`);
    try {
      expect(await readLine(client)).toBe('first line\n');
      const info = await askInfo(client);
      expect(info.client).toEqual({ host: '203.0.113.7', port: 51000, family: 'IPv4' });
      expect(info.proxy).toEqual({ version: 1, command: 'PROXY', protocol: 'TCP4', source: { host: '203.0.113.7', port: 51000 }, destination: { host: '192.0.2.1', port: 443 }, tlvs: [] });
    } finally {
      client.destroy();
    }
  });

  test('a v2 header with TLVs, sent a byte at a time, gives req.proxy its TLVs', async () => {
    const server = serve(await bootstrap(handler));
    const header = v2Header({ ipv6: true, src: '2001:db8::9', srcPort: 7000, dst: '2001:db8::1', dstPort: 6380, tlvs: [{ type: 0x05, value: Buffer.from('id-42') }] });
    const client = await rawConnect(endpoint(server));
    try {
      for (const byte of header) {
        client.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      const info = await askInfo(client);
      expect(info.client).toEqual({ host: '2001:db8::9', port: 7000, family: 'IPv6' });
      expect(info.proxy).toMatchObject({ version: 2, command: 'PROXY', protocol: 'TCP6', tlvs: [{ type: 5, value: Buffer.from('id-42').toString('hex') }] });
    } finally {
      client.destroy();
    }
  });

  test("a v2 LOCAL header runs the handler with the proxy's own address", async () => {
    const server = serve(await bootstrap(handler));
    const client = await rawConnect(endpoint(server), v2Header({ local: true }));
    try {
      const info = await askInfo(client);
      expect(info.client).toEqual({ host: '127.0.0.1', port: client.localPort, family: 'IPv4' });
      expect(info.proxy).toMatchObject({ version: 2, command: 'LOCAL' });
    } finally {
      client.destroy();
    }
  });

  test('a connection without a header is closed with a ProxyProtocolError counted in proxyErrors only', async () => {
    const logged: string[] = [];
    const server = serve(await bootstrap(handler, { logger: { error: (m: string) => logged.push(m), warn: (m: string) => logged.push(m) } }));
    const direct = await rawConnect(endpoint(server), 'hello\n');
    expect((await closed(direct)).data).toBe('');
    await eventually('the warning', () => logged.length > 0, 5000);
    expect(logged).toEqual([expect.stringMatching(/^ProxyProtocolError from 127\.0\.0\.1:\d+: PROXY protocol: .* sent no PROXY header.*Fix:/)]);
    expect(server.stats()).toMatchObject({ proxyErrors: 1, errors: 0 });
  });
});

describe('the PROXY protocol and the lifecycle', () => {
  const serve = servingInTests<Server>();

  test('@Verify sees the original client, and a malformed header reaches only @HandleError', async () => {
    const calls: string[] = [];
    @TcpServer({ port: 0, proxyProtocol: true }) @Concurrent()
    class Checked {
      @Verify() verify(client: ClientAddress) { calls.push(`verify ${client.host}`); return client.host !== '198.51.100.66'; }
      @Setup() setup() { calls.push('setup'); }
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(`hi ${req.clientAddress.host}\n`); }
      @HandleError() error(err: Error, client: ClientAddress) { calls.push(`error ${err.constructor.name} ${client.host}`); }
    }
    const server = serve(await bootstrap(Checked));
    const good = await rawConnect(endpoint(server), v1Header('198.51.100.5', 1000));
    expect(await readLine(good)).toBe('hi 198.51.100.5\n');
    good.destroy();
    const refused = await rawConnect(endpoint(server), v1Header('198.51.100.66', 1000));
    expect((await closed(refused)).data).toBe('');
    calls.length = 0;
    const bad = await rawConnect(endpoint(server), 'PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n');
    await closed(bad);
    await eventually('@HandleError', () => calls.length > 0, 5000);
    expect(calls).toEqual(['error ProxyProtocolError 127.0.0.1']);
    expect(server.stats()).toMatchObject({ proxyErrors: 1, errors: 0 });
  });

  test('a header from a peer not in trusted is a ProxyProtocolError', async () => {
    const errors: unknown[] = [];
    @TcpServer({ port: 0, proxyProtocol: { trusted: ['10.0.0.0/8'] } })
    class OnlyTen {
      @Handle() handle() {}
      @HandleError() error(err: unknown) { errors.push(err); }
    }
    const server = serve(await bootstrap(OnlyTen));
    await closed(await rawConnect(endpoint(server), v1Header('198.51.100.5', 1000)));
    await eventually('@HandleError', () => errors.length > 0, 5000);
    expect(errors[0]).toBeInstanceOf(ProxyProtocolError);
    expect((errors[0] as Error).message).toMatch(/127\.0\.0\.1:\d+ is not a trusted proxy.*clients must connect through the load balancer.*Fix: connect through it, or add the proxy's address or CIDR to proxyProtocol.trusted/);
  });

  test('with required: false, an untrusted peer\'s header is refused at its signature, not read whole (a 64 KB v2 header cost ~140 ms of CPU) nor waited for', async () => {
    const errors: unknown[] = [];
    @TcpServer({ port: 0, proxyProtocol: { trusted: ['10.0.0.0/8'], required: false }, limits: { lineTimeout: 10 } }) @Concurrent()
    class OptionalOnlyTen {
      @Handle() handle(req: StreamRequest) { return reportOrEcho(req); }
      @HandleError() error(err: unknown) { errors.push(err); }
    }
    const server = serve(await bootstrap(OptionalOnlyTen));
    // the v2 signature, and then nothing: refused at once, not after lineTimeout (10 s) nor after 64 KB
    const v2 = await rawConnect(endpoint(server), v2Header({ src: '198.51.100.5' }).subarray(0, 12));
    expect((await within(5000, 'the refusal', closed(v2))).data).toBe('');
    const v1 = await rawConnect(endpoint(server), 'PROXY ');
    expect((await within(5000, 'the refusal', closed(v1))).data).toBe('');
    await eventually('@HandleError', () => errors.length === 2, 5000);
    for (const err of errors) expect((err as Error).message).toMatch(/is not a trusted proxy/);
    // plain data from the same peer is still served
    const plain = await rawConnect(endpoint(server), 'Plain\n');
    try {
      expect(await readLine(plain)).toBe('Plain\n');
    } finally {
      plain.destroy();
    }
    expect(server.stats()).toMatchObject({ proxyErrors: 2, errors: 0 });
  });

  test('with required: false a connection without a header is plain data, not a byte lost, and one with a header is still read', async () => {
    @TcpServer({ port: 0, proxyProtocol: { required: false } }) @Concurrent()
    class Optional {
      @Handle() handle(req: StreamRequest) { return reportOrEcho(req); }
    }
    const server = serve(await bootstrap(Optional));
    const plain = await rawConnect(endpoint(server), 'P');
    try {
      await new Promise((r) => setTimeout(r, 50));
      plain.write('lain, not a header\n'); // 'P' looked like the start of "PROXY " until this came
      expect(await readLine(plain)).toBe('Plain, not a header\n');
      expect((await askInfo(plain)).proxy).toBeUndefined();
    } finally {
      plain.destroy();
    }
    const proxied = await rawConnect(endpoint(server), v1Header('192.0.2.44', 4444));
    try {
      expect((await askInfo(proxied)).client.host).toBe('192.0.2.44');
    } finally {
      proxied.destroy();
    }
  });

  test('proxyProtocol: false reads no header, as when it is left out: a header is the handler\'s data', async () => {
    @TcpServer({ port: 0, proxyProtocol: process.env.SOCKSERVE_TEST_NEVER_SET === '1' }) @Concurrent()
    class Off {
      @Handle() handle(req: StreamRequest) { return reportOrEcho(req); }
    }
    const server = serve(await bootstrap(Off));
    const client = await rawConnect(endpoint(server), v1Header('192.0.2.44', 4444));
    try {
      expect(await readLine(client)).toBe(v1Header('192.0.2.44', 4444)); // echoed as the line it is
      const info = await askInfo(client);
      expect(info.client.host).toBe('127.0.0.1');
      expect(info.proxy).toBeUndefined();
    } finally {
      client.destroy();
    }
    expect(server.stats().proxyErrors).toBe(0);
  });

  test('a proxyProtocol that is neither a boolean nor an object is a ConfigurationError saying what to pass', () => {
    expect(() => {
      @TcpServer({ port: 0, proxyProtocol: 'yes' as never })
      class Bad {
        @Handle() handle() {}
      }
      return Bad;
    }).toThrow(/@TcpServer on Bad: proxyProtocol "yes" is not a boolean or an object \{ trusted\?, required\? \}\. Fix: .*or false for none\./);
  });

  test('a header that does not arrive within limits.lineTimeout is a ProxyProtocolError', async () => {
    const errors: Error[] = [];
    @TcpServer({ port: 0, proxyProtocol: true, limits: { lineTimeout: 0.5 } })
    class Slow {
      @Handle() handle() {}
      @HandleError() error(err: Error) { errors.push(err); }
    }
    const server = serve(await bootstrap(Slow));
    const client = await rawConnect(endpoint(server), 'PROXY TCP4 1.2.3.4');
    const end = await closed(client);
    expect(end.data).toBe('');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProxyProtocolError);
    expect(errors[0].message).toMatch(/within 0.5 s \(limits.lineTimeout\)/);
  });

  test('a connection closed before its first byte is a quiet health check', async () => {
    const calls: string[] = [];
    @TcpServer({ port: 0, proxyProtocol: true })
    class Checked {
      @Verify() verify() { calls.push('verify'); return true; }
      @Handle() handle() { calls.push('handle'); }
      @HandleError() error() { calls.push('error'); }
    }
    const server = serve(await bootstrap(Checked));
    for (let i = 0; i < 3; i++) {
      const probe = await rawConnect(endpoint(server));
      probe.end();
      await closed(probe);
    }
    await eventually('three health checks', () => server.stats().healthChecks === 3, 5000);
    expect(calls).toEqual([]);
    expect(server.stats()).toMatchObject({ healthChecks: 3, proxyErrors: 0, errors: 0 });
  });

  test.each([
    { mode: '@Concurrent', handler: ProxyTlsConcurrent },
    { mode: '@Forking', handler: ProxyTlsForking },
  ])('PROXY and TLS together in $mode: the header first, then the handshake', async ({ handler }) => {
    const server = serve(await bootstrap(handler));
    const raw = await rawConnect(endpoint(server), v2Header({ src: '192.0.2.200', srcPort: 2000 }));
    const client = await tlsConnect(endpoint(server), { raw });
    try {
      const info = await askInfo(client);
      expect(info.client).toEqual({ host: '192.0.2.200', port: 2000, family: 'IPv4' });
      expect(info.tls).toMatchObject({ protocol: 'TLSv1.3', authorized: true });
      expect(info.proxy).toMatchObject({ version: 2, source: { host: '192.0.2.200', port: 2000 } });
    } finally {
      client.destroy();
    }
  });
});

describe.each([
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
])('a balancer\'s check (a v2 LOCAL header) on a handler that answers one line and closes first, $mode', ({ decorate }) => {
  const serve = servingInTests<Server>();

  test('counts in healthChecks, whoever closes first (it counted as a request when the handler closed first: new-user run)', async () => {
    @TcpServer({ port: 0, host: '127.0.0.1', proxyProtocol: true }) @decorate()
    class OneShot {
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); }
    }
    const server = serve(await bootstrap(OneShot));
    for (const ending of ['end', 'reset'] as const) {
      const client = await rawConnect(endpoint(server), Buffer.concat([v2Header({ local: true }), Buffer.from('ping\n')]));
      expect(await readLine(client)).toBe('ping\n');
      const gone = closed(client);
      if (ending === 'end') client.end();
      else client.resetAndDestroy();
      await gone;
    }
    await eventually('both counted', () => server.stats().healthChecks === 2, 5000).catch(() => undefined);
    expect(server.stats()).toMatchObject({ healthChecks: 2, errors: 0, clientErrors: 0 });
  });
});
