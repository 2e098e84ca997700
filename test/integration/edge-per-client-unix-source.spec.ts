import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import { ProxyConcurrent, ProxyForking, ProxyThreading } from '../fixtures/edge-handlers';
import { askInfo, closed, endpoint, rawConnect } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';

/**
 * limits.maxConnectionsPerClient behind the PROXY protocol (API.md §11) holds for every client a header names,
 * also one named by a v2 header of the AF_UNIX family (what HAProxy sends for a client of a unix-socket
 * frontend): `clientAddress` is then `{ path }`. Such clients were counted under no key at all, so the limit
 * never refused one: four connections of the same client, limit 1, were all served.
 */

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 PROXY header naming the Unix client `src` (AF_UNIX, STREAM: 108-byte NUL-padded paths). */
function unixSourceHeader(src: string, dst = '/run/haproxy.sock'): Buffer {
  const addresses = Buffer.alloc(216);
  addresses.write(src, 0);
  addresses.write(dst, 108);
  const head = Buffer.alloc(16);
  SIGNATURE.copy(head);
  head[12] = 0x21; // version 2, PROXY
  head[13] = 0x31; // AF_UNIX, STREAM
  head.writeUInt16BE(addresses.length, 14);
  return Buffer.concat([head, addresses]);
}

describe.each([
  { mode: '@Concurrent', handler: ProxyConcurrent },
  { mode: '@Threading', handler: ProxyThreading },
  { mode: '@Forking', handler: ProxyForking },
])('maxConnectionsPerClient for a client named by a v2 AF_UNIX header, $mode', ({ handler }) => {
  const serve = servingInTests<Server>();
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  test('a second connection of the same Unix client is refused, and one of another client is served', async () => {
    const server = serve(await bootstrap(handler as new () => object, { transport: { port: 0, proxyProtocol: true, limits: { maxConnectionsPerClient: 1, lineTimeout: 5 } } }));
    const first = await rawConnect(endpoint(server), unixSourceHeader('/run/client-a.sock'));
    sockets.push(first);
    expect((await askInfo(first)).client).toEqual({ path: '/run/client-a.sock' });

    const second = await rawConnect(endpoint(server), unixSourceHeader('/run/client-a.sock'));
    sockets.push(second);
    const refused = await closed(second, 5000);
    expect(refused.data).toBe('');

    const other = await rawConnect(endpoint(server), unixSourceHeader('/run/client-b.sock'));
    sockets.push(other);
    expect((await askInfo(other)).client).toEqual({ path: '/run/client-b.sock' });
    expect(server.stats().rejected).toBe(1);
  });
});

describe('maxConnectionsPerClient behind the PROXY protocol: one IPv4 client, however its header spells it', () => {
  const serve = servingInTests<Server>();
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  test('TCP4 198.51.100.1, then TCP6 ::ffff:198.51.100.1: the second is refused (it counted as another client)', async () => {
    const server = serve(await bootstrap(ProxyConcurrent as new () => object, { transport: { port: 0, proxyProtocol: true, limits: { maxConnectionsPerClient: 1, lineTimeout: 5 } } }));
    const first = await rawConnect(endpoint(server), Buffer.from('PROXY TCP4 198.51.100.1 192.0.2.1 4000 80\r\n'));
    sockets.push(first);
    expect((await askInfo(first)).client).toMatchObject({ host: '198.51.100.1' });
    const mapped = await rawConnect(endpoint(server), Buffer.from('PROXY TCP6 ::ffff:198.51.100.1 2001:db8::1 4001 80\r\n'));
    sockets.push(mapped);
    expect((await closed(mapped, 5000)).data).toBe('');
    expect(server.stats().rejected).toBe(1);
  });
});

/**
 * A v2 AF_UNIX header whose source path is empty: the client of HAProxy's unix-socket frontend is almost always
 * an unbound socket (accept() gives no path), and an abstract name reads as empty too. Such clients are not one
 * client: they must count toward maxConnections only, never share one per-client bucket (`unix:`), which let one
 * of them in and refused every other, unrelated, client (re-check).
 */
describe('maxConnectionsPerClient, clients named by a v2 AF_UNIX header with no path', () => {
  const serve = servingInTests<Server>();
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  test('unbound (and abstract) Unix clients are not counted as one client', async () => {
    const server = serve(await bootstrap(ProxyConcurrent as new () => object, { transport: { port: 0, proxyProtocol: true, limits: { maxConnectionsPerClient: 1, lineTimeout: 5 } } }));
    for (const src of ['', '', '\0abstract-a', '\0abstract-b']) {
      const s = await rawConnect(endpoint(server), unixSourceHeader(src));
      sockets.push(s);
      expect((await askInfo(s)).client).toEqual({ path: '' });
    }
    expect(server.stats().rejected).toBe(0);
  });
});
