/**
 * An IPv4 client of a dual-stack UDP server (host '::') has an IPv4-mapped address ('::ffff:127.0.0.1',
 * family IPv6 as Node reports it), but its datagrams travel as IPv4: the kernel refuses a reply longer than
 * 65,507 bytes to it (EMSGSIZE). The error must name IPv4's bound (it said "a reply of 65527 bytes is longer
 * than ... 65,527 bytes over IPv6", contradicting itself), and sockserve/testing must refuse the same reply
 * that production refuses (it sent 65,527 bytes to '::ffff:…' where the real server could not).
 */
import 'reflect-metadata';
import { bootstrap, Concurrent, DatagramRequest, Handle, HandleError, Server, UdpServer } from '../../src';
import { TestServer } from '../../src/testing';
import { datagramExchange, datagramSilence } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
const reported: NodeJS.ErrnoException[] = [];
beforeEach(() => void reported.splice(0));

@UdpServer({ port: 0, host: '::' }) @Concurrent()
class Sized {
  @Handle() async handle(req: DatagramRequest) {
    const n = Number(req.data.toString());
    await req.wfile.write(Number.isInteger(n) && n > 0 ? Buffer.alloc(n, 0x61) : req.data);
  }
  @HandleError() failed(error: NodeJS.ErrnoException) { reported.push(error); }
}

describe('an IPv4 client of a dual-stack UDP server', () => {
  test('a reply longer than 65,507 bytes fails with IPv4\'s bound in its message, one of 65,507 goes', async () => {
    const s = serve(await bootstrap(Sized));
    const port = (s.serverAddress as { port: number }).port;
    expect((await datagramExchange({ host: '127.0.0.1', port }, '65507')).data.length).toBe(65507);
    expect(await datagramSilence({ host: '127.0.0.1', port }, '65520')).toBe(true);
    await until(() => reported.length === 1);
    expect(reported[0].code).toBe('EMSGSIZE');
    expect(reported[0].message).toContain('65,507 bytes over IPv4');
    expect(reported[0].message).not.toContain('65,527 bytes over IPv6');
  });

  test('sockserve/testing refuses the same reply to an IPv4-mapped sender, and lets 65,507 bytes through', async () => {
    const t = await TestServer.create(Sized, { logger: { error() {}, warn() {} } });
    try {
      const from = { host: '::ffff:198.51.100.2', port: 5353 };
      expect((await t.datagram('65507', from))?.length).toBe(65507);
      expect(await t.datagram('65520', from)).toBeUndefined();
      expect(reported.map((e) => e.code)).toEqual(['EMSGSIZE']);
      expect(reported[0].message).toContain('65,507 bytes over IPv4');
      // a real IPv6 sender may still get 65,527 bytes
      expect((await t.datagram('65527', { host: '2001:db8::2', port: 5353 }))?.length).toBe(65527);
    } finally {
      await t.close();
    }
  });
});
