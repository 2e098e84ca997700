/**
 * A health check that ends while it waits for its worker: with one connection per worker
 * (connectionsPerThread: 1, connectionsPerChild: 1) the main thread reads the PROXY header and runs the TLS
 * handshake, then the connection waits for a fresh worker to start. A balancer's check that ends there (a
 * header, or a header and a handshake, then a reset: HAProxy ends its checks with one; no byte of a request)
 * is a health check as anywhere else (API.md §11): counted in `stats().healthChecks` only, no @HandleError,
 * no log line. It reached @HandleError as "the connection closed before a worker could take it" and counted
 * in clientErrors (hostile run: 9 of 12).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import { bootstrap, Server } from '../../src';
import { errorsHere, SlowEdgeOnePerChild, SlowEdgeOnePerThread, slowEdgeMark } from '../fixtures/slow-start-edge-handlers';
import { endpoint, rawConnect, readLine, tlsConnect, v1Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';
import { eventually } from '../helpers/eventually';
import type * as net from 'node:net';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([
  { model: 'connectionsPerThread: 1', handler: SlowEdgeOnePerThread },
  { model: 'connectionsPerChild: 1', handler: SlowEdgeOnePerChild },
])('with $model, behind PROXY and TLS', ({ handler }) => {
  const serve = servingInTests<Server>();
  const opened: net.Socket[] = [];
  afterEach(() => {
    fs.rmSync(slowEdgeMark, { force: true });
    for (const s of opened.splice(0)) s.destroy();
    errorsHere.length = 0;
  });

  test('checks that end while their worker starts (a header then a reset; a header, a handshake, then a reset) are quiet health checks', async () => {
    const lines: string[] = [];
    const logger = { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), info: () => undefined, debug: () => undefined };
    const server = serve(await bootstrap(handler, { logger }));
    // One client holds the only warm worker, so that each check waits for a worker of its own, slow to start.
    const holdRaw = await rawConnect(endpoint(server), v1Header('203.0.113.1', 1000));
    const hold = await tlsConnect(endpoint(server), { raw: holdRaw });
    opened.push(holdRaw, hold);
    hold.write('hello\n');
    expect(await readLine(hold)).toBe('hello\n');
    fs.writeFileSync(slowEdgeMark, '');
    const headerOnly = await Promise.all([1, 2].map((i) => rawConnect(endpoint(server), v1Header(`203.0.113.${10 + i}`, 2000 + i))));
    const handshaken = await Promise.all([1, 2].map(async (i) => {
      const raw = await rawConnect(endpoint(server), v1Header(`203.0.113.${20 + i}`, 3000 + i));
      opened.push(raw);
      await tlsConnect(endpoint(server), { raw });
      return raw;
    }));
    await sleep(200); // the header read here (the handshakes have completed)
    for (const s of [...headerOnly, ...handshaken]) s.resetAndDestroy();
    await eventually('the four checks to be counted', () => server.stats().healthChecks === 4, 15000);
    await sleep(300);
    expect(server.stats()).toMatchObject({ healthChecks: 4, clientErrors: 0, errors: 0, proxyErrors: 0, tlsErrors: 0 });
    expect(errorsHere).toEqual([]);
    expect(lines).toEqual([]);
    // The held client is served still.
    hold.write('still\n');
    expect(await readLine(hold)).toBe('still\n');
  }, 30000);
});
