/**
 * A datagram reply the socket refuses (EMSGSIZE: longer than UDP allows) did not leave: in every mode its
 * `request.end` says bytesOut 0 with the error, and stats().bytesOut counts only replies that left. With
 * @Threading (the main thread sends what the worker wrote) and @Forking (the child sends it itself), the
 * worker's request.end counted the reply before it was sent.
 */
import 'reflect-metadata';
import * as dc from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import { bootstrap, Concurrent, DatagramRequest, Handle, Server, UdpServer } from '../../src';
import { runWorkerCommand } from '../fixtures/worker-commands';
import { fixtureDir, ThreadedUdp } from '../fixtures/threaded-handlers';
import { forkDir, ForkedUdp } from '../fixtures/forked-handlers';
import { datagramExchange, datagramSilence } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

const providers = [{ provide: 'suffix', useValue: '!' }];
const serve = servingInTests<Server>();
beforeAll(() => [fixtureDir, forkDir].forEach((d) => fs.mkdirSync(d, { recursive: true })));
afterAll(() => [fixtureDir, forkDir].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const ends: Array<{ bytesIn: number; bytesOut: number; error?: { code?: string } }> = [];
const onEnd = (m: unknown) => void ends.push(m as (typeof ends)[number]);
beforeEach(() => {
  ends.length = 0;
  dc.subscribe('sockserve:request.end', onEnd);
});
afterEach(() => void dc.unsubscribe('sockserve:request.end', onEnd));

abstract class Commands {
  @Handle() async handle(req: DatagramRequest) {
    const [cmd] = req.data.toString().trim().split(' ');
    if (!(await runWorkerCommand(cmd, undefined, req, process.pid))) await req.wfile.write(`ok ${cmd}`);
  }
}
@UdpServer(0) class SerialUdp extends Commands {}
@UdpServer(0) @Concurrent() class ConcurrentUdp extends Commands {}

test.each([
  ['serial', SerialUdp],
  ['@Concurrent', ConcurrentUdp],
  ['@Threading', ThreadedUdp],
  ['@Forking (children read the socket)', ForkedUdp],
])('%s: a reply refused with EMSGSIZE counts no bytes out, in request.end and in stats()', async (_mode, handler) => {
  const server = serve(await bootstrap(handler as never, { providers }));
  const address = server.serverAddress as { host: string; port: number };
  expect(await datagramSilence(address, 'oversize\n', undefined, 1000)).toBe(true);
  const small = (await datagramExchange(address, 'hello\n')).data.length;
  await until(() => ends.length === 2 && server.stats().errors === 1, 10000);

  const refused = ends.find((e) => e.bytesIn === 'oversize\n'.length)!;
  expect(refused).toMatchObject({ bytesOut: 0, error: { code: 'EMSGSIZE' } });
  // The error says what it is and the fix, in every mode (@Forking gave Node's raw "send EMSGSIZE" and its traceback).
  // It names the handler, as every message does (@Forking's children said "UDPServer"; hostile run).
  expect((refused.error as { message?: string }).message).toMatch(new RegExp(`^${handler.name}: a reply of \\d+ bytes is longer than one UDP datagram can carry`));
  expect(ends.find((e) => e.bytesIn === 'hello\n'.length)).toMatchObject({ bytesOut: small });
  expect(server.stats().bytesOut).toBe(small);
});
