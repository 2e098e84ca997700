/**
 * A `@Verify` that is slow or never settles holds back only its own client where requests run many at once
 * (`@Concurrent`, `@Threading`, `@Forking`): the loop went on only once the verdict came, so one stalled
 * verification stopped a server from taking anything else, and its shutdown waited forever (hostile-client run).
 */
import 'reflect-metadata';
import { bootstrap, RequestTimeoutError, Server } from '../../src';
import { workerAcceptMechanism } from '../../src/runtime';
import {
  errorsSeen, StallingTcpConcurrent, StallingTcpThreads, StallingUdpChildren, StallingUdpConcurrent, StallingUdpThreads, verifies,
} from '../fixtures/verify-handlers';
import { connect, datagramExchange, readToEnd, streamExchange, Target, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function target(s: Server): Target & { port: number } {
  const a = s.serverAddress as { host: string; port: number };
  return { host: a.host, port: a.port };
}

afterEach(() => {
  verifies.clear();
  errorsSeen.clear();
});

describe.each([
  { name: '@Concurrent', Handler: StallingTcpConcurrent, verifiesHere: () => true },
  // Where a thread is handed its connection or accepts it, @Verify runs there (its own count, not this process's).
  { name: '@Threading', Handler: StallingTcpThreads, verifiesHere: () => workerAcceptMechanism().threadingTcp === 'relayed' },
])('TCP, $name', ({ Handler, verifiesHere }) => {
  const serve = servingInTests<Server>();

  test('a client whose @Verify never settles holds back no other client; shutdown ends it after shutdownTimeout', async () => {
    const s = serve(await bootstrap(Handler as never, { shutdownTimeout: 0.5 }));
    const stalled = await within(5000, 'connect', connect(target(s)));
    stalled.on('error', () => undefined);
    try {
      const ended = within(15000, 'the stalled client to be closed', readToEnd(stalled));
      if (verifiesHere()) await until(() => verifies.get(Handler) === 1, 5000);
      expect(String(await streamExchange(target(s), 'next\n', { halfClose: true, ms: 5000 }))).toBe('next\n');
      expect(String(await streamExchange(target(s), 'third\n', { halfClose: true, ms: 5000 }))).toBe('third\n');
      await within(10000, 'shutdown', s.shutdown());
      expect(String(await ended)).toBe('');
      // abandoned and reported once where it ran here (it was silent with @Threading)
      if (verifiesHere()) {
        expect(errorsSeen.get(Handler)).toEqual([expect.any(RequestTimeoutError)]);
        expect((errorsSeen.get(Handler)![0] as Error).message).toMatch(/^@Verify had not settled 0\.5 s after shutdown began \(shutdownTimeout\), so the connection was closed/);
      }
    } finally {
      stalled.destroy();
    }
  });
});

describe.each([
  { name: '@Concurrent', Handler: StallingUdpConcurrent },
  { name: '@Threading', Handler: StallingUdpThreads },
])('UDP, $name (@Verify runs in the server\'s process)', ({ Handler }) => {
  const serve = servingInTests<Server>();

  test('a datagram whose @Verify never settles holds back no other datagram, and shutdown resolves after shutdownTimeout', async () => {
    const s = serve(await bootstrap(Handler as never, { shutdownTimeout: 0.5 }));
    const client = dgram.createSocket('udp4');
    try {
      client.send('never', target(s).port, '127.0.0.1');
      await until(() => verifies.get(Handler) === 1, 5000);
      expect(String((await datagramExchange(target(s), 'next')).data)).toBe('next');
      expect(String((await datagramExchange(target(s), 'third')).data)).toBe('third');
      await within(10000, 'shutdown', s.shutdown());
      // abandoned and reported once, as a datagram's (it was silent with @Threading)
      expect(errorsSeen.get(Handler)).toEqual([expect.any(RequestTimeoutError)]);
      expect((errorsSeen.get(Handler)![0] as Error).message).toMatch(/^@Verify had not settled 0\.5 s after shutdown began \(shutdownTimeout\), so the datagram was dropped unanswered and no other hook ran\. Fix:/);
    } finally {
      client.close();
    }
  });
});

describe.each([
  { name: '@Concurrent', Handler: StallingUdpConcurrent },
  { name: '@Threading', Handler: StallingUdpThreads },
])('UDP, $name: close() without shutdown() while a @Verify is stalled', ({ Handler }) => {
  const serve = servingInTests<Server>();

  test('the datagram is reported once and counted in clientErrors, in a pool too (it was dropped silently: the pool\'s close ended the loop first)', async () => {
    const s = serve(await bootstrap(Handler as never, { shutdownTimeout: 0.5 }));
    const client = dgram.createSocket('udp4');
    try {
      client.send('never', target(s).port, '127.0.0.1');
      await until(() => verifies.get(Handler) === 1 && s.stats().active === 1, 5000);
      await within(10000, 'close', s.close());
      expect(errorsSeen.get(Handler)).toEqual([expect.any(RequestTimeoutError)]);
      expect((errorsSeen.get(Handler)![0] as Error).message).toMatch(new RegExp(`^@Verify had not settled when ${Handler.name}'s server\\.close\\(\\) was called, so the datagram was dropped unanswered`));
      expect(s.stats()).toMatchObject({ accepted: 1, clientErrors: 1, errors: 0, active: 0 });
    } finally {
      client.close();
    }
  });
});

describe('UDP, @Forking: a child that reads the socket runs @Verify itself', () => {
  const serve = servingInTests<Server>();
  let file: string;
  beforeEach(() => {
    file = path.join(os.tmpdir(), `sockserve-verify-errors-${process.pid}-${Date.now()}`);
    process.env.SOCKSERVE_VERIFY_ERRORS = file;
  });
  afterEach(() => {
    delete process.env.SOCKSERVE_VERIFY_ERRORS;
    fs.rmSync(file, { force: true });
  });

  test('a datagram whose @Verify has not settled at shutdownTimeout is reported as such, not as a handler still running (hostile run)', async () => {
    const s = serve(await bootstrap(StallingUdpChildren, { shutdownTimeout: 0.5 }));
    const client = dgram.createSocket('udp4');
    try {
      client.send('never', target(s).port, '127.0.0.1');
      expect(String((await datagramExchange(target(s), 'next', undefined, 10000)).data)).toBe('next');
      await until(() => s.stats().active === 1, 5000);
      await within(10000, 'shutdown', s.shutdown());
      await until(() => fs.existsSync(file), 5000);
      // Before: "the datagram's handler was still running in its forking worker when shutdownTimeout passed".
      expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toEqual([
        expect.stringMatching(/^RequestTimeoutError: @Verify had not settled when shutdownTimeout passed after shutdown began, so the datagram was dropped unanswered and no other hook ran\. Fix:/),
      ]);
    } finally {
      client.close();
    }
  });
});
