import 'reflect-metadata';
import * as dc from 'node:diagnostics_channel';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bootstrap, Server } from '../../src';
import { connect, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';
import {
  ChildDatagramFailsThenReportsSlowly,
  ChildFailsThenReportsSlowly,
  ThreadDatagramFailsThenReportsSlowly,
  ThreadFailsThenReportsSlowly,
} from '../fixtures/abandoned-hook-handlers';
import {
  ChildDatagramHookFailsLate,
  ChildHookFailsLate,
  ThreadDatagramHookFailsLate,
  ThreadHookFailsLate,
} from '../fixtures/abandoned-hook-throws-handlers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The handler fails at 0.5 s and its @HandleError, in the worker, runs until 1.3 s; the pool abandons the request
// meanwhile (shutdownTimeout 1 s, or close() once the hook has begun). The worker's abandon() sent the pool's
// RequestTimeoutError, and the server's process reported that one through @HandleError again (twice in all), and
// counted it in clientErrors only; serial and @Concurrent (abandoned-owed-report.spec.ts) leave the report to the
// hook already running and count the handler's error once, in errors.

const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
let file: string;
const events = { ends: [] as Array<{ error?: { name?: string; message?: string } }>, closes: 0 };
const onEnd = (e: unknown) => void events.ends.push(e as never);
const onClose = () => void events.closes++;
beforeEach(() => {
  file = path.join(os.tmpdir(), `sockserve-hook-reports-${process.pid}-${Date.now()}`);
  Object.assign(events, { ends: [], closes: 0 });
  dc.subscribe('sockserve:request.end', onEnd);
  dc.subscribe('sockserve:connection.close', onClose);
});
afterEach(() => {
  dc.unsubscribe('sockserve:request.end', onEnd);
  dc.unsubscribe('sockserve:connection.close', onClose);
  fs.rmSync(file, { force: true });
});
const options = () => ({ logger: memoryLogger(), shutdownTimeout: 1, providers: [{ provide: 'reports', useValue: file }] });

/** What @HandleError noted, wherever it ran: `start <name>: <message>` as it began, `end` as it returned. */
const noted = (): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** The request was counted once as its handler's error, its hook ran once (to its end), and it ended once on the channels. */
async function reportedOnce(s: Server, stream: boolean): Promise<void> {
  expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
  // The hook runs to its end; a second run (here, at the abandoning, or in the worker) would have begun before it.
  await until(() => noted().includes('end'), 5000).catch(() => undefined);
  await sleep(300);
  expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
  expect(noted()).toEqual(['start Error: boom', 'end']);
  expect(events.ends).toEqual([expect.objectContaining({ error: expect.objectContaining({ name: 'Error', message: 'boom' }) })]);
  expect(events.closes).toBe(stream ? 1 : 0);
}

describe.each([
  { mode: '@Threading', Stream: ThreadFailsThenReportsSlowly, Datagram: ThreadDatagramFailsThenReportsSlowly },
  { mode: '@Forking', Stream: ChildFailsThenReportsSlowly, Datagram: ChildDatagramFailsThenReportsSlowly },
])('a $mode request abandoned while its own @HandleError runs in the worker', (m) => {
  async function failing(s: Server): Promise<() => void> {
    const socket = await within(5000, 'connect', connect(s.serverAddress as { host: string; port: number }));
    socket.on('error', () => undefined);
    socket.write('go\n');
    await until(() => s.stats().active === 1, 5000);
    return () => socket.destroy();
  }

  test('at shutdownTimeout: the hook runs once, and the request is counted once as the handler\'s error before shutdown() resolves', async () => {
    const s = serve(await bootstrap(m.Stream as never, options()));
    const hangUp = await failing(s);
    try {
      await within(5000, 'shutdown', s.shutdown());
      await reportedOnce(s, true);
    } finally {
      hangUp();
    }
  }, 20000);

  test('at close(): the hook runs once, and the request is counted once as the handler\'s error before close() resolves', async () => {
    const s = serve(await bootstrap(m.Stream as never, options()));
    const hangUp = await failing(s);
    try {
      await until(() => noted().length === 1, 5000); // the hook has begun
      await within(5000, 'close', s.close());
      await reportedOnce(s, true);
    } finally {
      hangUp();
    }
  }, 20000);

  // A datagram is given up at shutdownTimeout as a connection is (its hook, on the request's reply writer, is its report).
  test('over UDP, at shutdownTimeout: the hook runs once, and the datagram is counted once as the handler\'s error', async () => {
    const s = serve(await bootstrap(m.Datagram as never, options()));
    const client = dgram.createSocket('udp4');
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      await within(5000, 'shutdown', s.shutdown());
      await reportedOnce(s, false);
    } finally {
      client.close();
    }
  }, 20000);
});

// The handler fails at 0.8 s, and its @HandleError rejects at 1.3 s, after the pool gave the request up (shutdownTimeout
// 1 s, or close() at 1 s). Serial and @Concurrent servers wait for that hook and log its failure once; the pools sent
// the request's error when they gave it up, and what the hook threw later was lost: no line anywhere.
describe.each([
  { mode: '@Threading', Stream: ThreadHookFailsLate, Datagram: ThreadDatagramHookFailsLate },
  { mode: '@Forking', Stream: ChildHookFailsLate, Datagram: ChildDatagramHookFailsLate },
])('a $mode request whose @HandleError fails after the pool abandoned it', (m) => {
  const hookFailures = (logger: ReturnType<typeof memoryLogger>) => logger.lines.error.filter((line) => line.includes('the hook failed'));

  test.each(['shutdownTimeout', 'close()'])('over TCP, at %s: the hook\'s failure is logged once, the request counted once as its handler\'s error', async (at) => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Stream as never, { logger, shutdownTimeout: 1 }));
    const socket = await within(5000, 'connect', connect(s.serverAddress as { host: string; port: number }));
    socket.on('error', () => undefined);
    try {
      socket.write('go\n');
      await until(() => s.stats().active === 1, 5000);
      if (at === 'close()') {
        await sleep(1000);
        await within(5000, 'close', s.close());
      } else await within(5000, 'shutdown', s.shutdown());
      await until(() => hookFailures(logger).length > 0, 3000).catch(() => undefined);
      await sleep(300); // a second line would come now
      expect(hookFailures(logger)).toHaveLength(1);
      expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
    } finally {
      socket.destroy();
    }
  }, 20000);

  test('over UDP, at shutdownTimeout: the hook\'s failure is logged once, the datagram counted once as its handler\'s error', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Datagram as never, { logger, shutdownTimeout: 1 }));
    const client = dgram.createSocket('udp4');
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      await within(5000, 'shutdown', s.shutdown());
      await until(() => hookFailures(logger).length > 0, 3000).catch(() => undefined);
      await sleep(300);
      expect(hookFailures(logger)).toHaveLength(1);
      expect(s.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
    } finally {
      client.close();
    }
  }, 20000);
});
