/**
 * Hostile clients at the PROXY protocol intake (API.md §11), in every mode (serial, @Concurrent, @Threading,
 * @Forking), over TCP and Unix stream sockets, with and without TLS: headers split at every byte, bytes
 * after the header in the same write, half-closes and resets right after a header, malformed and stalled
 * headers, and plain data that looks like a header's start under `required: false`. What must hold: a bad
 * header ends only its connection (a ProxyProtocolError: one warn line, counted in proxyErrors), no byte
 * after a header is lost, and the server goes on serving.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { bootstrap, Server } from '../../src';
import { workerAcceptMechanism } from '../../src/runtime';
import { TLS } from '../fixtures/edge-handlers';
import * as fixtures from '../fixtures/proxy-hostile-handlers';
import { removeTempDir, tempDir, within } from '../helpers/clients';
import { closed, rawConnect, replyOf, tlsConnect, v1Header, v2Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import { HELD_BACK, heldBack } from '../helpers/memory-logger';
import { eventually } from '../helpers/eventually';

type Target = { host: string; port: number } | { path: string };

/** Writes `bytes` and waits until they have left this process (so the next write is a separate segment). */
function send(socket: net.Socket, bytes: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : setImmediate(resolve))));
}

/**
 * Sends `first`, then (as a separate write) `second` over a connection, runs TLS over it when `secure`,
 * sends `payload` and half-closes; resolves with all the server answered before it closed.
 */
async function exchange(target: Target, first: Buffer, second: Buffer, payload: string, secure: boolean): Promise<string> {
  const raw = await rawConnect(target);
  try {
    await send(raw, first);
    if (second.length > 0) await send(raw, second);
    const socket = secure ? await tlsConnect(target, { raw }) : raw;
    const reply = replyOf(socket);
    socket.end(payload);
    return await reply;
  } finally {
    raw.destroy();
  }
}

const modes = [
  { mode: 'serial', tcp: fixtures.TcpSerial, unix: fixtures.UnixSerial },
  { mode: '@Concurrent', tcp: fixtures.TcpConcurrent, unix: fixtures.UnixConcurrent },
  { mode: '@Threading', tcp: fixtures.TcpThreading, unix: fixtures.UnixThreading },
  { mode: '@Forking', tcp: fixtures.TcpForking, unix: fixtures.UnixForking },
];
const cases = modes.flatMap((m) => [
  { ...m, transport: 'TCP', secure: false },
  { ...m, transport: 'TCP', secure: true },
  { ...m, transport: 'Unix', secure: false },
  { ...m, transport: 'Unix', secure: true },
]);

describe.each(cases)('hostile PROXY clients in $mode over $transport (TLS: $secure)', ({ mode, tcp, unix, transport, secure }) => {
  const serve = servingInTests<Server>();
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeTempDir(dir));

  async function start(proxyProtocol: true | { required: boolean } = true, lineTimeout?: number): Promise<{ server: Server; target: Target; warned: string[] }> {
    const warned: string[] = [];
    const logger = { warn: (m: string) => warned.push(m), error: (m: string) => warned.push(`error: ${m}`) };
    const overrides = { proxyProtocol, ...(lineTimeout ? { limits: { lineTimeout } } : {}), ...(secure ? { tls: TLS } : {}), ...(transport === 'Unix' ? { path: path.join(dir, 's.sock') } : {}) };
    const server = serve(await bootstrap(transport === 'TCP' ? tcp : unix, { transport: overrides, logger }));
    const address = server.serverAddress as Target;
    return { server, target: 'path' in address ? { path: address.path } : address, warned };
  }

  test('a v1 and a v2 header split at each byte, the rest sent with the data, lose no byte after the header', async () => {
    const { target, server } = await start();
    const headers = [
      Buffer.from(v1Header('203.0.113.7', 65535, '192.0.2.1', 0)),
      v2Header({ src: '203.0.113.7', srcPort: 65535, dst: '192.0.2.1', dstPort: 0, tlvs: [{ type: 5, value: Buffer.from('id') }] }),
    ];
    for (const header of headers) {
      // With TLS a handshake follows each header: the boundaries that matter most (after 'P' or the first
      // signature byte, inside the signature, between CR and LF), not every one.
      const cuts = secure ? [1, 2, 5, 6, 12, header.length - 1] : Array.from({ length: header.length - 1 }, (_, i) => i + 1);
      for (const cut of cuts) {
        const tail = secure ? Buffer.alloc(0) : Buffer.from('first\n');
        const reply = await exchange(target, header.subarray(0, cut), Buffer.concat([header.subarray(cut), tail]), 'info\nlast, no newline', secure);
        const lines = reply.split('\n');
        expect({ cut, first: secure ? 'first' : lines.shift(), last: lines.pop() }).toEqual({ cut, first: 'first', last: 'last, no newline' });
        expect({ cut, client: JSON.parse(lines[0]).client }).toEqual({ cut, client: { host: '203.0.113.7', port: 65535, family: 'IPv4' } });
      }
    }
    expect(server.stats()).toMatchObject({ proxyErrors: 0, errors: 0 });
  });

  test('a header and the TLS ClientHello in one write, or a header and data in one write, are both read', async () => {
    const { target } = await start();
    const raw = await rawConnect(target);
    try {
      raw.cork(); // the header and what follows it leave in one writev
      raw.write(v2Header({ src: '192.0.2.77', srcPort: 77 }));
      const pending = secure ? tlsConnect(target, { raw }) : Promise.resolve(raw);
      if (!secure) raw.write('first\ninfo\n');
      process.nextTick(() => raw.uncork());
      const socket = await pending;
      const reply = replyOf(socket);
      socket.end(secure ? 'first\ninfo\n' : '');
      const [first, info] = (await reply).split('\n');
      expect(first).toBe('first');
      expect(JSON.parse(info).client).toEqual({ host: '192.0.2.77', port: 77, family: 'IPv4' });
    } finally {
      raw.destroy();
    }
  });

  test('a malformed or stalled header ends only its connection: one warn line each, counted in proxyErrors, and the next client is served', async () => {
    // Without TLS lineTimeout only has to fire on the two that stall (no wait here is timed): 0.5 s rather than
    // the handlers' 1 s, which saved ~0.5 s per case. Not less: the preamble counts it from the accept, so it
    // also bounds the gap between the next client's connect and its header (0.5 s, as hostile-observed-handlers
    // give PROXY clients that must be served). With TLS it bounds that client's handshake too, under load: 1 s kept.
    const { target, server, warned } = await start(true, secure ? undefined : 0.5);
    const hostile = [
      'PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n', // a bare LF
      'PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\r\n',
      `PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, // its CRLF at bytes 107-108: one byte too long
      'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n',
      Buffer.concat([v2Header({ src: '10.0.0.1' }).subarray(0, 13), Buffer.from([0x12]), v2Header({ src: '10.0.0.1' }).subarray(14)]), // UDP over IPv4 (0x12): no stream's client
      Buffer.concat([v2Header({ src: '10.0.0.1' }).subarray(0, 14), Buffer.from([0x00, 0x04, 1, 2, 3, 4])]), // a TCP4 block of 4 bytes
      Buffer.concat([v2Header({ src: '10.0.0.1', tlvs: [{ type: 5, value: Buffer.from('abc') }] }).subarray(0, 16 + 12), Buffer.from([5, 0, 9, 1])]),
      'P', // then nothing: lineTimeout ends it
      v2Header({ src: '10.0.0.1' }).subarray(0, 3),
      'hello\n', // no header where one is required
    ];
    // all at once: the two that stall each wait out lineTimeout, together rather than in turn
    const ends = await Promise.all(hostile.map(async (bytes) => ({ bytes: bytes.toString(), ...(await closed(await rawConnect(target, bytes))) })));
    expect(ends).toMatchObject(hostile.map((bytes) => ({ bytes: bytes.toString(), data: '' })));
    await eventually('a warn line per connection', () => warned.length >= hostile.length, 10000);
    expect(warned).toHaveLength(hostile.length);
    for (const line of warned) expect(line).toMatch(/^ProxyProtocolError from .*PROXY protocol: /);
    expect(server.stats()).toMatchObject({ proxyErrors: hostile.length, errors: 0, tlsErrors: 0 });
    const reply = await exchange(target, Buffer.from(v1Header('198.51.100.9', 9)), Buffer.alloc(0), 'info\n', secure);
    expect(JSON.parse(reply).client.host).toBe('198.51.100.9');
  });

  test('a header then a reset or a half-close at once, and a close with no byte, leave the server serving with nothing open', async () => {
    const { target, server, warned } = await start();
    const reset = await rawConnect(target, v1Header('192.0.2.5', 5));
    if (transport === 'TCP') reset.resetAndDestroy(); // a RST; a Unix socket has none, it just goes
    else reset.destroy();
    const halfClosed = await rawConnect(target);
    const got = replyOf(halfClosed);
    halfClosed.end(`${v1Header('192.0.2.6', 6)}partial`);
    if (!secure) expect(await got).toBe('partial'); // with TLS the plain bytes after the header are a failed handshake
    else await got;
    const silent = await rawConnect(target);
    silent.end();
    await closed(silent);
    const reply = await exchange(target, Buffer.from(v1Header('198.51.100.9', 9)), Buffer.alloc(0), 'info\n', secure);
    expect(JSON.parse(reply).client.host).toBe('198.51.100.9');
    await eventually('no connection left open', () => server.stats().active === 0 && server.stats().workers.every((w) => w.connections === 0), 10000);
    expect(server.stats()).toMatchObject({ proxyErrors: 0 });
    expect(warned.filter((w) => /ProxyProtocolError/.test(w))).toEqual([]);
  });

  test('with required: false, v1, v2, LOCAL and plain clients at once are each read as what they are, with no byte lost', async () => {
    // lineTimeout 10 s, not the fixtures' 1 s: 24 TLS handshakes at once in one child of a busy two-core machine
    // passed that bound (a reply came back empty); what is tested here is what each client is read as.
    const { target, server, warned } = await start({ required: false }, 10);
    const clients = Array.from({ length: 24 }, (_, i) => {
      const host = `198.51.100.${i + 1}`;
      const kind = i % (secure ? 3 : 4);
      if (kind === 0) return { head: Buffer.from(v1Header(host, 1000 + i)), expect: host };
      if (kind === 1) return { head: v2Header({ src: host, srcPort: 1000 + i }), expect: host };
      if (kind === 2) return { head: v2Header({ local: true }), expect: undefined };
      return { head: Buffer.from(i % 8 === 3 ? 'PROXZ\r\n' : '\r\n\r\nQ\n'), expect: undefined, echo: true };
    });
    const replies = await Promise.all(clients.map(async (c) => {
      if (c.echo) return exchange(target, c.head.subarray(0, 1), Buffer.from(`${c.head.subarray(1).toString('latin1')}info\n`), '', false);
      return exchange(target, c.head.subarray(0, 3), c.head.subarray(3), 'info\n', secure);
    }));
    replies.forEach((reply, i) => {
      const c = clients[i];
      const lines = reply.split('\n');
      if (c.echo) expect(lines.slice(0, -2).join('\n') + '\n').toBe(c.head.toString('latin1'));
      const info = JSON.parse(lines[lines.length - 2]);
      expect({ i, host: info.client.host === '127.0.0.1' || info.client.path !== undefined ? undefined : info.client.host }).toEqual({ i, host: c.expect });
    });
    expect(server.stats()).toMatchObject({ proxyErrors: 0, errors: 0 });
    expect(warned).toEqual([]);
  });

  // The two timed plain clients under required: false share one server and (but in serial mode, whose one
  // handler serves one connection at a time) run at once: each waits out lineTimeout, and in turn, on two
  // servers, they took ~3 s a case. Both with lineTimeout 1.5 s; the later line still comes 300 ms after it.
  // Skipped, not passed empty, under TLS: there the bytes after an absent header are the ClientHello, which the handshake's bound covers.
  (secure ? test.skip : test)('with required: false, plain data that starts like a signature and stalls is cut lineTimeout after its first byte, not twice that; a plain client\'s later line gets its own lineTimeout, not what was left of the first one\'s', async () => {
    const { target } = await start({ required: false }, 1.5);
    const stalled = async () => {
      const raw = await rawConnect(target);
      try {
        const t0 = Date.now();
        const ended = closed(raw);
        await send(raw, 'PROX'); // the preamble waits lineTimeout (1.5 s) for the rest of a signature, then gives the bytes to the handler
        await within(8000, 'the stalled line to be cut', ended);
        // Before: the handler's read counted a fresh lineTimeout from when it saw the bytes: 3-3.8 s in all.
        expect(Date.now() - t0).toBeLessThan(2700);
      } finally {
        raw.destroy();
      }
    };
    const laterLine = async () => {
      const raw = await rawConnect(target);
      try {
        const reply = replyOf(raw);
        await send(raw, 'first\n');
        await new Promise((r) => setTimeout(r, 1800)); // longer than lineTimeout since the first line's first byte
        await send(raw, 'sec');
        await new Promise((r) => setTimeout(r, 100));
        await send(raw, 'ond\n');
        raw.end();
        // Before (hostile re-check): the second line was cut at once, measured from the first line's first byte.
        expect(await reply).toBe('first\nsecond\n');
      } finally {
        raw.destroy();
      }
    };
    if (mode === 'serial') {
      await stalled();
      await laterLine();
    } else {
      await Promise.all([stalled(), laterLine()]);
    }
  });

  test('with required: false, plain data that starts like a signature (P, PROX, CR LF) is served whole, even when it ends at once', async () => {
    const { target, server } = await start({ required: false });
    for (const plain of ['P', 'PROX', '\r', '\r\n', 'PROXY', 'Plain\n', '\r\nhello\n', 'PROXYish\n']) {
      if (secure) break; // under TLS the first bytes after an absent header are the ClientHello, never plain text
      const reply = await exchange(target, Buffer.from(plain), Buffer.alloc(0), '', false);
      expect({ plain, reply }).toEqual({ plain, reply: plain });
    }
    const reply = await exchange(target, Buffer.from(v1Header('198.51.100.9', 9)), Buffer.alloc(0), 'info\n', secure);
    expect(JSON.parse(reply).client.host).toBe('198.51.100.9');
    expect(server.stats()).toMatchObject({ proxyErrors: 0, errors: 0 });
  });
});

// Where this process holds the connection through its header: it runs the preamble (serial, @Concurrent), or relays the
// bytes to a thread that runs it (Unix sockets; TCP before Node 24). Where a worker holds the socket itself, its reads
// are not to be seen from here, and close() reached it as the close it is already.
const heldHere = cases.filter(({ mode, transport }) => mode === 'serial' || mode === '@Concurrent' ||
  (mode === '@Threading' && (transport === 'Unix' || workerAcceptMechanism().threadingTcp === 'relayed')));

describe.each(heldHere)('close() and a PROXY client part-way through its header in $mode over $transport (TLS: $secure)', ({ tcp, unix, transport, secure }) => {
  const serve = servingInTests<Server>();
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeTempDir(dir));

  test('is reported as the server\'s close, not as a header the client cut short', async () => {
    // A thread reading relayed bytes read the close as the client's end: a ProxyProtocolError "closed the connection
    // in the middle of its header", counted in proxyErrors (hostile re-check).
    const warned: string[] = [];
    const logger = { warn: (m: string) => warned.push(m), error: (m: string) => warned.push(`error: ${m}`) };
    const overrides = { limits: { lineTimeout: 30 }, ...(secure ? { tls: TLS } : {}), ...(transport === 'Unix' ? { path: path.join(dir, 's.sock') } : {}) };
    const server = serve(await bootstrap(transport === 'TCP' ? tcp : unix, { transport: overrides, logger }));
    const address = server.serverAddress as Target;
    const raw = await rawConnect('path' in address ? { path: address.path } : address, 'PROXY TCP4 198.51.100.1 ');
    try {
      // Its bytes read here (closed unread, a connection is a health check); relayed ones reach the thread before the close.
      const held = () => [...(server as unknown as { classic: { listener: { connections: Iterable<net.Socket> } } }).classic.listener.connections];
      await eventually('the header read', () => held().some((socket) => socket.bytesRead > 0), 10000);
      await within(10000, 'close()', server.close());
      await eventually('its report', () => warned.length === 1, 5000);
      expect(warned).toEqual([expect.stringMatching(/^RequestTimeoutError from .*: the connection was still in its PROXY header when \w+'s server\.close\(\) was called, so it was closed/)]);
      expect(server.stats()).toMatchObject({ proxyErrors: 0, clientErrors: 1, errors: 0 });
    } finally {
      raw.destroy();
    }
  });
});

describe.each([
  { mode: 'connectionsPerThread: 1', handler: fixtures.TcpOnePerThread },
  { mode: 'connectionsPerChild: 1', handler: fixtures.TcpOnePerChild },
])('an optional PROXY header that never comes, read by the server and handed over ($mode)', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('the stalled bytes are cut lineTimeout after their first byte in the worker too, not twice that', async () => {
    const logger = { warn: () => undefined, error: () => undefined };
    const server = serve(await bootstrap(handler, { transport: { proxyProtocol: { required: false }, limits: { lineTimeout: 2 } }, logger }));
    const raw = await rawConnect(server.serverAddress as Target);
    try {
      const t0 = Date.now();
      const ended = closed(raw);
      await send(raw, 'PROX');
      await within(8000, 'the stalled line to be cut', ended);
      // Before: the server's process passed the bytes on but not when they came, and the worker counted anew (4 s and more).
      expect(Date.now() - t0).toBeLessThan(3700);
    } finally {
      raw.destroy();
    }
  });
});

/** Open descriptors of a process (this one, or a child by pid): Linux's /proc; undefined elsewhere. */
function openFds(pid: number = process.pid): number | undefined {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

describe.each(modes)('many stalled PROXY clients in $mode', ({ tcp }) => {
  const serve = servingInTests<Server>();
  // More than the common soft limit of 1024 descriptors; 2000 before, which cost CI twice the time per mode.
  const N = 1200;

  test(`${N} connections that send 'P' and stall are each ended by lineTimeout, and their descriptors are released`, async () => {
    const warned: string[] = [];
    const server = serve(await bootstrap(tcp, { transport: { proxyProtocol: true }, logger: { warn: (m: string) => warned.push(m), error: (m: string) => warned.push(m) } }));
    const target = server.serverAddress as { host: string; port: number };
    // A first client served makes the workers start before the descriptors are counted.
    expect(JSON.parse(await exchange(target, Buffer.from(v1Header('198.51.100.9', 9)), Buffer.alloc(0), 'info\n', false)).client.host).toBe('198.51.100.9');
    const pids = () => [process.pid, ...server.stats().workers.map((w) => w.pid).filter((p): p is number => p !== undefined && p !== process.pid)];
    const before = pids().map((p) => openFds(p) ?? 0);
    const sockets: net.Socket[] = [];
    const ends: Array<Promise<unknown>> = [];
    const ended = new Set<net.Socket>();
    try {
      // Batches of 100 stay well within the listen backlog (511), so none waits in a full accept queue.
      // Each socket is watched from its connect: one ended before its whole batch connected is counted too.
      for (let i = 0; i < N; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => rawConnect(target, 'P').then((s) => {
          ends.push(closed(s, 30000).then(() => void ended.add(s)));
          return s;
        })));
        sockets.push(...batch);
      }
      await within(30000, 'every stalled connection to be ended', Promise.all(ends)).catch((err: Error) => {
        // Say which side lost the connection: never accepted by the server, or accepted and not timed out.
        const open = sockets.filter((s) => !ended.has(s));
        const stats = server.stats();
        throw new Error(`${err.message}: ${open.length} of ${N} still open (client ports ${open.slice(0, 5).map((s) => s.localPort).join(', ')}); ` +
          `the server accepted ${stats.accepted}, counted ${stats.proxyErrors} ProxyProtocolErrors, serves ${stats.active}`);
      });
      await eventually('a ProxyProtocolError per stalled connection', () => server.stats().proxyErrors === N, 15000);
      // One warn line each, at most 10 a second: the rest of each second are one line giving their number.
      const single = () => warned.filter((w) => /^ProxyProtocolError from .*no complete header .* within 1 s/.test(w)).length;
      const held = () => heldBack(warned).count;
      await eventually('every error logged, or counted in a held-back line', () => single() + held() >= N, 5000).catch((err: Error) => {
        throw new Error(`${err.message}: ${single()} logged, ${held()} held back, of ${N}; other lines: ${JSON.stringify(warned.filter((w) => !/^ProxyProtocolError from .*no complete header/.test(w) && !HELD_BACK.test(w)).slice(0, 5))}`);
      });
      expect({ logged: single() + held() }).toEqual({ logged: N });
      expect(single()).toBeGreaterThan(0);
      expect(warned.filter((w) => !/^ProxyProtocolError from /.test(w) && !HELD_BACK.test(w))).toEqual([]);
      await eventually('the descriptors to be released', () => pids().every((p, i) => (openFds(p) ?? 0) <= before[i] + 10), 15000);
      expect(JSON.parse(await exchange(target, Buffer.from(v1Header('198.51.100.10', 10)), Buffer.alloc(0), 'info\n', false)).client.host).toBe('198.51.100.10');
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 120000);
});

describe.each([
  { mode: 'serial', tcp: fixtures.TcpSerial },
  { mode: '@Forking', tcp: fixtures.TcpForking },
])('TCP6 PROXY headers on an IPv6 listener in $mode', ({ tcp }) => {
  const serve = servingInTests<Server>();

  test.each([
    ['PROXY TCP6 2001:DB8::A ::1 65535 0', { host: '2001:db8::a', port: 65535, family: 'IPv6' }],
    ['PROXY TCP6 :: :: 0 65535', { host: '::', port: 0, family: 'IPv6' }],
    ['PROXY TCP6 ::FFFF:1.2.3.4 ::1 1 2', { host: '::ffff:1.2.3.4', port: 1, family: 'IPv6' }],
    ['PROXY TCP6 0:0:0:0:0:ffff:0102:0304 ::1 1 2', { host: '::ffff:1.2.3.4', port: 1, family: 'IPv6' }],
    ['PROXY TCP4 0.0.0.0 255.255.255.255 0 65535', { host: '0.0.0.0', port: 0, family: 'IPv4' }],
    ['PROXY TCP4 255.255.255.255 0.0.0.0 65535 0', { host: '255.255.255.255', port: 65535, family: 'IPv4' }],
  ])('%s names the client as Node would write it', async (line, client) => {
    const server = serve(await bootstrap(tcp, { transport: { host: '::1', proxyProtocol: true } }));
    const target = server.serverAddress as { host: string; port: number };
    const reply = await exchange(target, Buffer.from(`${line}\r`), Buffer.from('\nfirst\n'), 'info\n', false);
    const [first, info] = reply.split('\n');
    expect(first).toBe('first');
    expect(JSON.parse(info).client).toEqual(client);
  });
});
