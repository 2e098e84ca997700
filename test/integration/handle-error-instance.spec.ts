/**
 * @HandleError runs on the request's own handler instance in every mode (API.md §3 says so of workers; the
 * server's process did otherwise until 2026-12-04): what setup() or @Verify stored on `this` is there, and the
 * connection is still open, so the hook can answer the client before it closes (Python's handle_error,
 * then shutdown_request). Each case fails on a fresh instance: the reply or the log says so.
 */
import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import * as F from '../fixtures/error-instance-handlers';
import { datagramExchange, streamExchange, within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';
import * as net from 'node:net';

const modes = [
  { mode: 'serial', stream: F.StreamSerial, verify: F.VerifySerial, datagram: F.DatagramSerial },
  { mode: '@Concurrent', stream: F.StreamConcurrent, verify: F.VerifyConcurrent, datagram: F.DatagramConcurrent },
  { mode: '@Threading', stream: F.StreamThreading, verify: F.VerifyThreading, datagram: F.DatagramThreading },
  { mode: '@Forking', stream: F.StreamForking, verify: F.VerifyForking, datagram: F.DatagramForking },
];

function hostPort(s: Server): { host: string; port: number } {
  const a = s.serverAddress as { host: string; port: number };
  return { host: a.host, port: a.port };
}

describe.each(modes)('$mode: @HandleError on the request\'s handler instance', (m) => {
  const serve = servingInTests<Server>();

  test('a stream handler\'s error: the hook answers the client through the request setup() kept, then the connection closes', async () => {
    const log = memoryLogger();
    const s = serve(await bootstrap(m.stream, { logger: log }));
    const reply = await within(10_000, 'the error reply', streamExchange(hostPort(s), 'hello\n'));
    expect(reply.toString()).toBe('ERR bad hello (line hello)\n');
    await until(() => s.stats().errors === 1, 5000);
    expect(log.lines.error).toEqual([]);
  });

  test('a @Verify that throws: the hook sees what that @Verify stored', async () => {
    const log = memoryLogger();
    const s = serve(await bootstrap(m.verify, { logger: log }));
    const c = net.connect(hostPort(s));
    c.on('error', () => undefined);
    c.resume();
    await within(10_000, 'the refused client\'s close', new Promise((resolve) => c.on('close', resolve)));
    await until(() => s.stats().errors === 1, 5000);
    expect(log.lines.error.filter((l) => l.includes('fresh instance'))).toEqual([]);
  });

  test('a datagram handler\'s error: the hook\'s reply goes back to the sender', async () => {
    const s = serve(await bootstrap(m.datagram, { logger: memoryLogger() }));
    const got = await datagramExchange(hostPort(s), 'ping\n');
    expect(got.data.toString()).toBe('ERR bad ping\n');
  });
});
