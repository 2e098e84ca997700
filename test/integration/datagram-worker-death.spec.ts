/**
 * A datagram whose worker dies while serving it: stats().bytesIn and its request.end count the bytes it
 * brought, in every pool, whether the server's process handed it over or a child read it from the shared
 * UDP socket itself (hostile run: the shared socket's counted 0 bytes in, the handed-over one its length).
 */
import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Server, WorkerCrashedError } from '../../src';
import { until } from '../fakes/fake-server';
import { DyingUdpChild, DyingUdpThread } from '../fixtures/dying-datagram-handlers';
import { recordEvents } from '../helpers/events';
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
