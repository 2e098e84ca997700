import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import { ProxyConcurrent } from '../fixtures/edge-handlers';
import { askInfo, endpoint, rawConnect } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';

/**
 * A v2 AF_UNIX header whose source path is empty: the client of HAProxy's unix-socket frontend is almost always
 * an unbound socket (accept() gives no path), and an abstract name reads as empty too. Such clients are not one
 * client: they must count toward maxConnections only, never share one per-client bucket (`unix:`), which let one
 * of them in and refused every other, unrelated, client.
 */
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function unixSourceHeader(src: string, dst = '/run/haproxy.sock'): Buffer {
  const addresses = Buffer.alloc(216);
  addresses.write(src, 0);
  addresses.write(dst, 108);
  const head = Buffer.alloc(16);
  SIGNATURE.copy(head);
  head[12] = 0x21;
  head[13] = 0x31;
  head.writeUInt16BE(addresses.length, 14);
  return Buffer.concat([head, addresses]);
}

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
