/**
 * A datagram whose worker dies while serving it: stats().bytesIn and its request.end count the bytes it
 * brought, in every pool, whether the server's process handed it over or a child read it from the shared
 * UDP socket itself (hostile run: the shared socket's counted 0 bytes in, the handed-over one its length).
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { bootstrap, Server, WorkerCrashedError } from '../../src';
import { until } from '../fakes/fake-server';
import { DyingUdpChild, DyingUdpThread } from '../fixtures/dying-datagram-handlers';
import { recordEvents } from '../helpers/events';
import { memoryLogger } from '../helpers/memory-logger';
import { SlowStartRecycledUdp, slowStartMark } from '../fixtures/slow-start-recycled-handlers';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
let client: dgram.Socket | undefined;
let recorder: ReturnType<typeof recordEvents> | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
  recorder?.stop();
  recorder = undefined;
});

describe.each([
  ['@Threading({ threads: 1 }), handed over', DyingUdpThread],
  ['@Forking({ children: 1 }), read by the child from the shared socket', DyingUdpChild],
])('UDP on %s', (_name, handler) => {
  test('a datagram whose worker dies counts its bytes in stats().bytesIn and in its request.end', async () => {
    handler.errors.length = 0;
    recorder = recordEvents();
    const server = serve(await bootstrap(handler as never));
    const { host, port } = server.serverAddress as { host: string; port: number };
    client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client!.bind(0, '127.0.0.1', resolve));
    const payload = 'exit-0123456789'; // 15 bytes
    client.send(payload, port, host);
    await until(() => handler.errors.length === 1 && server.stats().active === 0, 15000);
    expect(handler.errors[0]).toBeInstanceOf(WorkerCrashedError);
    expect(server.stats()).toMatchObject({ accepted: 1, errors: 1, bytesIn: payload.length, bytesOut: 0 });
    const ends = recorder.named('sockserve:request.end');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ bytesIn: payload.length, bytesOut: 0 });
  });
});

describe('a recycled pool (maxConnectionsPerThread) whose new workers start slower than shutdownTimeout', () => {
  afterEach(() => fs.rmSync(slowStartMark, { force: true }));

  test('a worker that reached its count while still starting serves what it took: the recycle bound counts from its start, not from its count (it was ended unready, each datagram failed)', async () => {
    SlowStartRecycledUdp.errors.length = 0;
    const server = serve(await bootstrap(SlowStartRecycledUdp, { shutdownTimeout: 0.3, logger: memoryLogger() }));
    const { host, port } = server.serverAddress as { host: string; port: number };
    fs.writeFileSync(slowStartMark, ''); // from now on a worker takes 800 ms to start
    client = dgram.createSocket('udp4');
    const replies: string[] = [];
    client.on('message', (m) => replies.push(m.toString()));
    await new Promise<void>((resolve) => client!.bind(0, '127.0.0.1', resolve));
    for (let i = 0; i < 6; i++) client.send(`d${i}`, port, host);
    await until(() => replies.length + SlowStartRecycledUdp.errors.length === 6 && server.stats().active === 0, 15000);
    expect(SlowStartRecycledUdp.errors).toEqual([]);
    expect(replies.sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5']);
  });
});
