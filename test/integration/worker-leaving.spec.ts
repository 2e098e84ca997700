import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import type { BaseServer } from '../../src/classic';
import { exitClassic, ExitForking, ExitForkingOne, ExitThreading } from '../fixtures/exit-handlers';
import { streamExchange } from '../helpers/clients';
import { endpoint } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import { until } from '../fakes/fake-server';

/**
 * API.md §3: a worker that dies ends its own connections only. A worker's 'exit' reaches the server after its
 * own sockets closed, so a client that saw its connection close with the worker and came back at once was
 * placed on the dead worker meanwhile and reset, reported as a WorkerCrashedError of its own (hostile run:
 * Node 24 threads, where sockets are handed over, 5 of 5; Node 26 3 of 5). The worker says it is leaving
 * from its 'exit' event, before its sockets close.
 */
describe.each([
  { mode: '@Threading', handler: ExitThreading },
  { mode: '@Forking', handler: ExitForking },
])('a client that comes back right after its worker died, in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('is served by the replacement, not placed on the dead worker', async () => {
    const errors: unknown[] = [];
    const logger = { error: (m: string) => errors.push(m), warn: () => undefined, info: () => undefined };
    const server = serve(await bootstrap(handler, { logger }));
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      expect((await streamExchange(endpoint(server), 'exit\n', { halfClose: true })).toString()).toBe(''); // its worker died with it
      // The replacement's start (a child loading TypeScript) took more than the default 5 s on a loaded machine.
      replies.push((await streamExchange(endpoint(server), 'hello\n', { halfClose: true, ms: 20000 })).toString());
    }
    expect(replies).toEqual(['ok\n', 'ok\n', 'ok\n']);
    // Each death is the one connection that asked for it.
    expect(server.stats().errors).toBe(3);
    expect(errors.filter((line) => String(line).includes('WorkerCrashedError'))).toHaveLength(3);
  }, 60000);
});

/**
 * A child killed by a signal runs no JS at its end, so it says no `leaving`: a connection handed to it before
 * the server heard of its end never reached it (its channel closed), and was reset, or relayed to the dead
 * child; it goes to the next worker now (hostile re-check: 4 of 4 with connectionsPerChild 1, killed from outside).
 */
describe('a client that connects right after its child was killed from outside, with connectionsPerChild: 1', () => {
  const serve = servingInTests<Server>();

  test('is served by the replacement, not lost with the dead child', async () => {
    const logger = { error: () => undefined, warn: () => undefined, info: () => undefined };
    const server = serve(await bootstrap(ExitForkingOne, { logger }));
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      await until(() => server.stats().workers.length === 1, 10000);
      process.kill(server.stats().workers[0].id, 'SIGKILL');
      replies.push((await streamExchange(endpoint(server), 'hello\n', { halfClose: true })).toString());
    }
    expect(replies).toEqual(['ok\n', 'ok\n', 'ok\n']);
    expect(server.stats().errors).toBe(0); // no connection of its own died with it
  }, 60000);
});

describe.each(['threads', 'children'] as const)('a client that comes back right after its worker died, in a classic pool of %s', (mode) => {
  let server: BaseServer<any, any> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  // SIGKILL only for children: a thread's process.pid is the server's own.
  test.each(mode === 'children' ? ['exit', 'kill'] : ['exit'])('is served by the replacement after a worker\'s %s (classic ForkingMixIn: 3 of 4 reset before)', async (how) => {
    const reported: unknown[] = [];
    server = exitClassic(mode);
    server.handleError = (_request: unknown, _client: unknown, error: unknown) => void reported.push(error);
    await server.ready;
    const serving = server.serveForever(0.05);
    const target = { host: '127.0.0.1', port: (server.serverAddress as [string, number])[1] };
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Its worker dies with it (a SIGKILL may reset it: the kernel closes what the child had not read).
      expect((await streamExchange(target, `${how}\n`, { halfClose: true }).catch(() => Buffer.alloc(0))).toString()).toBe('');
      replies.push((await streamExchange(target, 'hello\n', { halfClose: true })).toString());
    }
    expect(replies).toEqual(['ok\n', 'ok\n', 'ok\n']);
    expect(reported.map((e) => (e as Error).name)).toEqual(['WorkerCrashedError', 'WorkerCrashedError', 'WorkerCrashedError']);
    server.shutdown();
    await serving;
  }, 60000);
});
