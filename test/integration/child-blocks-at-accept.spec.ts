/**
 * A child that accepts connections itself and is blocked by a handler in the very turn of its event loop that
 * accepted the connection: the news of that connection reaches the server before the handler runs, so the
 * connection is counted and reported (WorkerCrashedError) when the heartbeat ends the child. Held for the turn's
 * end, that news was lost with the child: the client was reset, reported nowhere, not counted in `accepted`
 * (hostile run on worker lifecycles).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server, WorkerCrashedError } from '../../src';
import { BlocksAtAccept } from '../fixtures/blocked-child-handlers';
import { within } from '../helpers/clients';
import { eventually } from '../helpers/eventually';
import { servingInTests } from '../helpers/serving';

/** Connects and resolves with what the server sent before it closed the connection (a reset ends it too). */
function served(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      if (got.endsWith('\n')) socket.end('bye\n');
    });
    socket.on('error', () => undefined).on('close', () => resolve(got));
  });
}

describe('a child blocked by a handler in the turn that accepted its connection', () => {
  const serve = servingInTests<Server>();

  test('that connection is counted and reported as the heartbeat ends the child, and the next child serves', async () => {
    const lines: string[] = [];
    const logger = { warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m), info: () => undefined };
    const server = serve(await bootstrap(BlocksAtAccept, { heartbeatTimeout: 1, logger }));
    const { port } = server.serverAddress as { port: number };
    const first = await within(10000, 'the first connection', served(port));
    expect(first).toMatch(/^\d+\n$/);
    const second = await within(15000, 'the blocked connection to end', served(port));
    expect(second).toBe('');
    await eventually('the blocked connection to be reported', () => server.stats().errors === 1 && server.stats().active === 0, 10000);
    expect(server.stats()).toMatchObject({ accepted: 2, errors: 1, restarts: 1 });
    const third = await within(20000, 'a connection to the new child', served(port));
    expect(third).toMatch(/^\d+\n$/);
    expect(third).not.toBe(first);
    expect(lines.filter((l) => l.includes(WorkerCrashedError.name))).toHaveLength(1);
  }, 60000);
});
