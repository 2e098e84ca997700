import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Concurrent, Handle, HandleError, Server, StreamRequest, TcpServer } from '../../src';
import { connect, within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';
import { recordEvents } from '../helpers/events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockingChildren } from '../fixtures/blocked-child-handlers';
import { ChildAnswersSecondLine, ChildWritesTooMuch, ThreadAnswersSecondLine, ThreadWritesTooMuch } from '../fixtures/abandoned-report-handlers';

const serve = servingInTests<Server>();
const tcp = (s: Server) => s.serverAddress as { host: string; port: number };
const sockets: net.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

const reports: Array<{ port: number; at: number }> = [];
beforeEach(() => (reports.length = 0));

/** Each request reads its line, then awaits something that never settles; so does @HandleError. */
@TcpServer(0) @Concurrent()
class HungAndHungReports {
  @Handle() async handle(req: StreamRequest) {
    await req.rfile.readline();
    await new Promise(() => {});
  }
  @HandleError() report(_e: unknown, client: { port: number }) {
    reports.push({ port: client.port, at: Date.now() });
    return new Promise(() => {});
  }
}

/** Reads lines for ever; @HandleError takes a while (a report sent somewhere slow), then returns. */
@TcpServer(0) @Concurrent()
class ReadsWithSlowReport {
  @Handle() async handle(req: StreamRequest) {
    for (;;) if ((await req.rfile.readline()).length === 0) return;
  }
  @HandleError() async report(_e: unknown, client: { port: number }) {
    reports.push({ port: client.port, at: Date.now() });
    await new Promise((r) => setTimeout(r, 400));
  }
}

async function clientsInHandler(server: Server, n: number, payload: string): Promise<net.Socket[]> {
  const opened: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = await within(5000, 'connect', connect(tcp(server)));
    s.on('error', () => undefined);
    sockets.push(s);
    opened.push(s);
    s.write(payload);
  }
  await within(5000, 'every request in its handler', (async () => {
    while (server.stats().active < n) await new Promise((r) => setTimeout(r, 10));
  })());
  return opened;
}

describe('shutdown with @HandleError that never settles', () => {
  test('requests abandoned at shutdownTimeout are reported side by side: shutdown() takes about 2 × shutdownTimeout, not one more per request', async () => {
    const server = serve(await bootstrap(HungAndHungReports, { shutdownTimeout: 1, logger: memoryLogger() }));
    await clientsInHandler(server, 4, 'go\n');
    const started = Date.now();
    await within(15000, 'shutdown', server.shutdown());
    const took = Date.now() - started;
    expect(reports).toHaveLength(4);
    // 1 s of drain, then the reports, each bounded by shutdownTimeout (1 s, and handleErrorSafely's 1 s more):
    // one after another they took 1 + 4 × 1 s
    expect(took).toBeLessThan(3500);
  }, 20000);

  test('a request ended at shutdownTimeout whose @HandleError takes a while (more than the 100 ms grace) reaches the hook once, not twice', async () => {
    const server = serve(await bootstrap(ReadsWithSlowReport, { shutdownTimeout: 0.5, logger: memoryLogger() }));
    const [client] = await clientsInHandler(server, 1, 'half a li'); // a line that has started to arrive is read whole
    const port = client.localPort;
    await within(10000, 'shutdown', server.shutdown());
    await new Promise((r) => setTimeout(r, 600)); // a second report would come 100 ms after the first
    expect(reports.map((r) => r.port)).toEqual([port]);
  }, 20000);
});

describe('a pool\'s request abandoned at shutdownTimeout', () => {
  let file: string;
  beforeEach(() => {
    file = path.join(os.tmpdir(), `sockserve-reports-${process.pid}-${Date.now()}`);
    process.env.SOCKSERVE_TEST_REPORTS = file;
  });
  afterEach(() => {
    delete process.env.SOCKSERVE_TEST_REPORTS;
    fs.rmSync(file, { force: true });
  });

  test.each([
    ['@Threading', ThreadAnswersSecondLine],
    ['@Forking', ChildAnswersSecondLine],
  ])('%s: reaches @HandleError once (its RequestTimeoutError), not again in the worker for the closed connection its handler later meets', async (_mode, Handler) => {
    const server = serve(await bootstrap(Handler as never, { shutdownTimeout: 0.5, logger: memoryLogger() }));
    await clientsInHandler(server, 1, 'first\nsecond, half');
    await within(10000, 'shutdown', server.shutdown());
    await new Promise((r) => setTimeout(r, 500)); // a report from the worker would have come by now
    expect(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)).toEqual(['RequestTimeoutError']);
  }, 20000);
});

// A relayed thread's write that the main thread's close() cancelled was answered with ECANCELED (hostile re-check).
describe.each([
  { mode: '@Threading, its bytes relayed', Handler: ThreadWritesTooMuch, relayed: true },
  { mode: '@Threading', Handler: ThreadWritesTooMuch, relayed: false },
  { mode: '@Forking', Handler: ChildWritesTooMuch, relayed: false },
])('a write in a worker waiting on a client that does not read, cancelled by close(), with $mode', ({ Handler, relayed }) => {
  let recorder: ReturnType<typeof recordEvents>;
  beforeEach(() => {
    recorder = recordEvents();
    if (relayed) process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
  });
  afterEach(() => {
    recorder.stop();
    delete process.env.SOCKSERVE_SOCKET_TRANSFER;
  });

  test('rejects with the RequestTimeoutError saying close() ended the request, as in the server\'s own process', async () => {
    const server = serve(await bootstrap(Handler as never, { shutdownTimeout: 5, logger: memoryLogger() }));
    const [client] = await clientsInHandler(server, 1, 'go\n');
    client.pause(); // never reads
    await new Promise((r) => setTimeout(r, 300));
    await within(10000, 'close', server.close());
    // The handler rethrows what its write rejected with: its request ends with it.
    const ends = recorder.named('sockserve:request.end');
    expect(ends.map((e) => (e.error as { name?: string } | undefined)?.name)).toEqual(['RequestTimeoutError']);
    expect(String((ends[0].error as { message?: string }).message)).toMatch(/close\(\) was called|the server was closed/);
    expect(server.stats()).toMatchObject({ clientErrors: 1, errors: 0 });
  }, 20000);
});

describe('SIGTERM\'s drain with a child whose event loop is blocked', () => {
  test('shutdownTimeout counts once, from when the listeners began closing: the wait for the blocked child\'s listener is not added to it', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(BlockingChildren, { shutdownTimeout: 2, logger }));
    // One connection in each child: one blocks its child, the other's handler never returns. The children accept
    // from the shared socket, and the kernel may give every connection to one of them (it did, 40 in a row, on a
    // loaded machine): while the first child is blocked for a moment, the other one takes the second connection.
    const ask = (s: net.Socket, line: string) => within(5000, `the answer to ${line}`, new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(d.toString().trim()));
      s.write(`${line}\n`);
    }));
    const opened = async () => {
      const s = await within(5000, 'connect', connect(tcp(server)));
      s.on('error', () => undefined);
      sockets.push(s);
      return s;
    };
    const blocked = await opened();
    const first = await ask(blocked, 'pid');
    blocked.write('block 1000\n');
    await new Promise((r) => setTimeout(r, 100));
    const hung = await opened();
    expect(await ask(hung, 'pid')).not.toBe(first); // answered while the first child was blocked
    expect(await ask(blocked, 'pid')).toBe(first); // and the first child serves again
    hung.write('hang\n');
    blocked.write('block\n');
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    // what handleSignals does on SIGTERM (bootstrap.ts): the listeners close, then shutdown()
    await within(20000, 'the drain', (async () => {
      await (server as unknown as { stopListening(): Promise<void> }).stopListening();
      await server.shutdown();
    })());
    const took = Date.now() - started;
    // 2 s for the blocked child to close its listener, its SIGTERM's grace (2 s), and nothing more: the hung
    // request's shutdownTimeout had passed by then. It took 2 s more, a second shutdownTimeout, counted afresh.
    expect(took).toBeLessThan(5500);
  }, 30000);
});

describe('a write waiting on a client that does not read, at shutdownTimeout', () => {
  const outcomes: string[] = [];
  beforeEach(() => (outcomes.length = 0));

  @TcpServer(0) @Concurrent()
  class WritesTooMuch {
    @Handle() async handle(req: StreamRequest) {
      await req.rfile.readline();
      try {
        await req.wfile.write(Buffer.alloc(16 * 1024 * 1024, 'x')); // more than the socket buffers take
        outcomes.push('write resolved');
      } catch (e) {
        outcomes.push(`write rejected: ${(e as NodeJS.ErrnoException).code ?? (e as Error).name}`);
        throw e;
      }
    }
    @HandleError() report(e: unknown) {
      outcomes.push(`reported: ${(e as NodeJS.ErrnoException).code ?? (e as Error).name}`);
    }
  }

  test('rejects with the RequestTimeoutError the connection was closed with (Node 20 called the cancelled write back without an error: it resolved)', async () => {
    const server = serve(await bootstrap(WritesTooMuch, { shutdownTimeout: 0.5, logger: memoryLogger() }));
    const [client] = await clientsInHandler(server, 1, 'go\n');
    client.pause(); // never reads
    await new Promise((r) => setTimeout(r, 200));
    await within(10000, 'shutdown', server.shutdown());
    expect(outcomes).toEqual(['write rejected: RequestTimeoutError', 'reported: RequestTimeoutError']);
  }, 20000);

  // Node 20 rejected it with EPIPE, Node 22 and 24 with ECANCELED; then ECANCELED on every Node; now the server's reason,
  // as a write made after close() gets (a write close() cancels says why, the same in every mode).
  test('cancelled by close(), it rejects with the RequestTimeoutError saying close() ended the request, on every Node', async () => {
    const server = serve(await bootstrap(WritesTooMuch, { shutdownTimeout: 5, logger: memoryLogger() }));
    const [client] = await clientsInHandler(server, 1, 'go\n');
    client.pause(); // never reads
    await new Promise((r) => setTimeout(r, 200));
    await within(10000, 'close', server.close());
    await within(5000, 'the outcome', (async () => {
      while (outcomes.length < 2) await new Promise((r) => setTimeout(r, 10));
    })());
    expect(outcomes).toEqual(['write rejected: RequestTimeoutError', 'reported: RequestTimeoutError']);
  }, 20000);
});
