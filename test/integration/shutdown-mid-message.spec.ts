/**
 * A client part-way through a line when shutdown began holds its request (a message begun is read whole, within
 * lineTimeout): at shutdownTimeout its error says so, with the bytes that had come, not "the request was still
 * running… make the handler return" (new user: a synchronous @OnMessage, whose handler had nothing to return from).
 */
import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import {
  MidMessageChildJson, MidMessageChildRfile, MidMessageLines, MidMessageRfile, MidMessageSerialLines, MidMessageThreadLines, MidMessageThreadRfile, StuckThreadLines,
} from '../fixtures/mid-message-handlers';
import { recordEvents } from '../helpers/events';
import { rawConnect, endpoint } from '../helpers/edge-clients';
import { within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';

const serve = servingInTests<Server>();
let recorded: ReturnType<typeof recordEvents> | undefined;
afterEach(() => recorded?.stop());

test.each([
  ['@Concurrent, @OnMessage', MidMessageLines],
  ['@Threading, @OnMessage', MidMessageThreadLines],
  ['@Forking, rfile.readline()', MidMessageChildRfile],
])('%s: the error at shutdownTimeout says the client was still sending a message, and how much of it had come', async (_mode, Handler) => {
  const events = (recorded = recordEvents());
  const s = serve(await bootstrap(Handler as new () => object, { shutdownTimeout: 1, logger: memoryLogger() }));
  const c = await rawConnect(endpoint(s), 'whole\npart');
  c.on('error', () => undefined);
  try {
    await until(() => s.stats().active === 1, 5000);
    await new Promise((r) => setTimeout(r, 200)); // 'part' reaches the reader
    await within(10000, 'shutdown', s.shutdown());
    await until(() => events.named('sockserve:request.end').length === 1, 5000);
    const [end] = events.named('sockserve:request.end');
    expect((end!.error as Error).message).toMatch(/^the client was still sending a message 1 s after shutdown began \(shutdownTimeout\): 4 bytes of it had come, not its end .*Fix: lower limits\.lineTimeout/);
  } finally {
    c.destroy();
  }
});

test('a handler stuck on a message, with half of the next line behind it, still gets the handler\'s message (it blamed the client)', async () => {
  const events = (recorded = recordEvents());
  const s = serve(await bootstrap(StuckThreadLines, { shutdownTimeout: 1, logger: memoryLogger() }));
  const c = await rawConnect(endpoint(s), 'stuck\nhalf');
  c.on('error', () => undefined);
  try {
    await until(() => s.stats().active === 1, 5000);
    await new Promise((r) => setTimeout(r, 200));
    await within(10000, 'shutdown', s.shutdown());
    await until(() => events.named('sockserve:request.end').length === 1, 5000);
    const [end] = events.named('sockserve:request.end');
    expect((end!.error as Error).message).toMatch(/^the request was still running in its threading worker when shutdownTimeout passed/);
  } finally {
    c.destroy();
  }
});

describe.each([
  ['close()', (s: Server) => s.close(), (owner: string) => `^${owner}'s server\\.close\\(\\) was called while the client was still sending a message: 4 bytes of it had come, not its end .*Fix: await shutdown\\(\\) before close\\(\\)`],
  ['a second signal', (s: Server) => (s as unknown as { closeForSignal(signal: string): Promise<void> }).closeForSignal('SIGTERM'), (owner: string) => `^${owner}: another signal \\(SIGTERM\\) came during the drain, so the server closed at once while the client was still sending a message: 4 bytes`],
] as const)('%s during the drain, a client part-way through a message', (_how, closeIt, said) => {
  // Before: the held bytes were parsed as if the client had ended there (relayed @Threading: a FramingError blaming the
  // client; the lines framer made a message of them and answered it) or dropped unreported (@Concurrent): new-user run.
  test.each([
    ['serial, @OnMessage', MidMessageSerialLines],
    ['@Concurrent, @OnMessage', MidMessageLines],
    ['@Concurrent, rfile.readline()', MidMessageRfile],
    ['@Threading, @OnMessage', MidMessageThreadLines],
    ['@Threading, rfile.readline()', MidMessageThreadRfile],
    ['@Forking, @OnMessage', MidMessageChildJson],
    ['@Forking, rfile.readline()', MidMessageChildRfile],
  ])('%s: its request ends with an error that says the server closed it mid-message', async (_mode, Handler) => {
    const events = (recorded = recordEvents());
    const s = serve(await bootstrap(Handler as new () => object, { shutdownTimeout: 30, logger: memoryLogger() }));
    const whole = Handler === MidMessageChildJson ? '"whole"\n' : 'whole\n';
    const c = await rawConnect(endpoint(s), `${whole}part`);
    let got = '';
    c.on('data', (d) => (got += d.toString()));
    c.on('error', () => undefined);
    try {
      await until(() => s.stats().active === 1 && got.length > 0, 5000);
      await new Promise((r) => setTimeout(r, 200)); // 'part' reaches the reader
      const drained = s.shutdown();
      await new Promise((r) => setTimeout(r, 200));
      await within(10000, 'the close', closeIt(s));
      await within(10000, 'the drain', drained);
      await until(() => events.named('sockserve:request.end').length === 1, 5000);
      const [end] = events.named('sockserve:request.end');
      expect((end!.error as Error | undefined)?.message).toMatch(new RegExp(said((Handler as { name: string }).name), 's'));
      expect(got).toBe(whole); // the whole message answered, the part not
    } finally {
      c.destroy();
    }
  });
});
