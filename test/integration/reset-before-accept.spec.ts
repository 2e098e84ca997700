/**
 * A client that sends a whole request and resets before the server has accepted its connection (the
 * server's event loop busy for a moment, a burst): its bytes are still readable from the accepted socket,
 * then ECONNRESET. Only a connection that closes before sending any byte is a health check (API.md §11):
 * the request reaches the handler, in every mode. It was destroyed unread and counted a health check
 * wherever the server's process accepts (getpeername fails after the reset: hostile run).
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { bootstrap, HandlerClass, Server } from '../../src';
import {
  resetGo, resetLog, ResetChildBusy, ResetChildBusyLimited, ResetChildPerConnection, ResetChildren, ResetConcurrent, ResetSerial, ResetSerialProxied,
  ResetPerClient, ResetPerClientThreads, ResetThreadPerConnection, ResetThreads, ResetThreadsProxied,
} from '../fixtures/reset-before-accept-handlers';
import { until } from '../fakes/fake-server';
import { within } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };

/**
 * Clients in a child process, run while this process waits for it, blocked (spawnSync): each connects, sends
 * `request-<i>`, and resets 20 ms later, one after another, before this process (its main thread) can accept.
 */
function resettingClientsWhileBlocked(port: number, n: number, header = '', send = true): void {
  const run = spawnSync(process.execPath, ['-e', `
    const net = require('net'); let i = 0;
    (function one() {
      const c = net.connect(${port}, '127.0.0.1', () => {
        if (${send}) c.write(${JSON.stringify(header)} + 'request-' + i + '\\n');
        setTimeout(() => { c.resetAndDestroy(); if (++i < ${n}) one(); else process.exit(0); }, 20);
      });
      c.on('error', () => undefined);
    })();`], { stdio: 'ignore', timeout: 10000 });
  expect(run.status).toBe(0);
}

describe('a request sent just before a reset, while the server is not accepting', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  beforeEach(() => fs.writeFileSync(resetLog, ''));
  afterEach(() => fs.rmSync(resetLog, { force: true }));
  const logged = () => fs.readFileSync(resetLog, 'utf8').split('\n').filter((l) => l !== '');
  const requests = () => logged().filter((l) => l.startsWith('request-')).sort();
  const verified = () => logged().filter((l) => l.startsWith('verify '));
  /** What @Verify is given for a client whose address went with its reset: the IP shape, no address left. */
  const resetClient = `verify ${JSON.stringify({ host: '', port: 0, family: 'IPv4' })}`;

  test.each([
    ['serial', ResetSerial],
    ['@Concurrent', ResetConcurrent],
    ['@Threading', ResetThreads],
    ['@Threading, connectionsPerThread: 1', ResetThreadPerConnection],
    ['@Forking, connectionsPerChild: 1', ResetChildPerConnection],
    ['@Forking', ResetChildren],
    ['serial, maxConnectionsPerClient: 1', ResetPerClient],
    ['@Threading, maxConnectionsPerClient: 1', ResetPerClientThreads],
  ] as Array<[string, HandlerClass]>)('%s: reaches the handler, and is not counted a health check', async (_mode, Handler) => {
    const s = serve(await bootstrap(Handler, { logger: quiet }));
    const { port } = s.serverAddress as { port: number };
    resettingClientsWhileBlocked(port, 3);
    await until(() => requests().length === 3, 10000);
    expect(requests()).toEqual(['request-0', 'request-1', 'request-2']);
    expect(verified()).toEqual([resetClient, resetClient, resetClient]);
    await until(() => s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ healthChecks: 0, rejected: 0 });
  });

  test.each([
    ['serial', ResetSerial],
    ['@Concurrent', ResetConcurrent],
    ['@Threading', ResetThreads],
    ['@Forking, connectionsPerChild: 1', ResetChildPerConnection],
  ] as Array<[string, HandlerClass]>)('%s, with no byte sent: a health check, that reaches no hook', async (_mode, Handler) => {
    const s = serve(await bootstrap(Handler, { logger: quiet }));
    const { port } = s.serverAddress as { port: number };
    resettingClientsWhileBlocked(port, 3, '', false);
    await until(() => s.stats().healthChecks === 3 && s.stats().active === 0, 10000);
    expect(logged()).toEqual([]);
    expect(s.stats()).toMatchObject({ rejected: 0, errors: 0, clientErrors: 0 });
  });

  test.each([
    ['serial', false, ResetSerial], ['serial', true, ResetSerial], ['@Concurrent', false, ResetConcurrent], ['@Concurrent', true, ResetConcurrent],
  ] as Array<[string, boolean, HandlerClass]>)('%s, close() before the first read (bytes sent: %s): counted in rejected, as a connection close() finds still queued (it was in accepted only: hostile re-check)', async (_mode, send, Handler) => {
    const s = serve(await bootstrap(Handler, { logger: quiet }));
    const { port } = s.serverAddress as { port: number };
    // close() from the accept itself: after the server's own handler of it, before the read that tells bytes from none.
    const listening = (s as unknown as { classic: { listener: { server: net.Server } } }).classic.listener.server;
    let closing: Promise<void> | undefined;
    listening.once('connection', () => void (closing = s.close()));
    resettingClientsWhileBlocked(port, 1, '', send);
    await until(() => closing !== undefined, 10000);
    await within(10000, 'close()', closing!);
    expect(logged()).toEqual([]);
    expect(s.stats()).toMatchObject({ accepted: 1, rejected: 1, healthChecks: 0, errors: 0, clientErrors: 0, active: 0 });
  });

  describe('where a child accepts itself, while it is busy', () => {
    afterEach(() => fs.rmSync(resetGo, { force: true }));

    /** Blocks the child (a `busy` request), runs `clients` meanwhile, then lets the child go on; the busy client is answered. */
    async function whileChildBusy(port: number, clients: () => void): Promise<void> {
      const busy = net.connect(port, '127.0.0.1');
      busy.on('error', () => undefined);
      try {
        const answered = new Promise<string>((resolve) => {
          let got = '';
          busy.on('data', (d: Buffer) => (got += d));
          busy.on('close', () => resolve(got));
        });
        busy.end('busy\n');
        await until(() => logged().includes('busy'), 10000);
        clients();
        fs.writeFileSync(resetGo, '');
        expect(await within(10000, 'the busy request\'s answer', answered)).toBe('done\n');
      } finally {
        busy.destroy();
      }
    }

    test('@Forking: a request sent before the reset reaches the handler, its client the IP shape with no address (it was { path: \'\' })', async () => {
      const s = serve(await bootstrap(ResetChildBusy, { logger: quiet }));
      const { port } = s.serverAddress as { port: number };
      await whileChildBusy(port, () => resettingClientsWhileBlocked(port, 3));
      await until(() => requests().length === 3, 10000);
      expect(requests()).toEqual(['request-0', 'request-1', 'request-2']);
      expect(verified().slice(1)).toEqual([resetClient, resetClient, resetClient]); // the first: the busy client's
      await until(() => s.stats().active === 0, 10000);
      expect(s.stats()).toMatchObject({ healthChecks: 0, rejected: 0 });
    });

    test('@Forking, maxConnectionsPerChild 3: the busy child serves 3 at most; the reset clients it accepted at once counted as they came', async () => {
      const pids = `${resetLog}.pids`;
      fs.writeFileSync(pids, '');
      try {
        const s = serve(await bootstrap(ResetChildBusyLimited, { logger: quiet }));
        const { port } = s.serverAddress as { port: number };
        await whileChildBusy(port, () => resettingClientsWhileBlocked(port, 3));
        await until(() => requests().length === 3, 10000);
        const served = fs.readFileSync(pids, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split(' '));
        const busyPid = served.find(([, what]) => what === 'busy')![0];
        // Before: took() waited for each reset client's first read, so the child accepted all three at once, past its count.
        expect(served.filter(([pid]) => pid === busyPid)).toHaveLength(3);
        await until(() => s.stats().active === 0, 10000);
      } finally {
        fs.rmSync(pids, { force: true });
      }
    });

    test('@Forking, with no byte sent: a health check, that reaches no hook (it ran @Verify)', async () => {
      const s = serve(await bootstrap(ResetChildBusy, { logger: quiet }));
      const { port } = s.serverAddress as { port: number };
      await whileChildBusy(port, () => resettingClientsWhileBlocked(port, 3, '', false));
      await until(() => s.stats().healthChecks === 3 && s.stats().active === 0, 10000);
      expect(verified()).toHaveLength(1); // the busy client's
      expect(s.stats()).toMatchObject({ rejected: 0, errors: 0, clientErrors: 0 });
    });
  });

  test.each([
    ['serial', ResetSerialProxied],
    ['@Threading', ResetThreadsProxied],
  ] as Array<[string, HandlerClass]>)('%s with the PROXY protocol: is a health check, quiet, as HAProxy\'s checks that end so (the proxy\'s address is gone, so its header cannot be believed)', async (_mode, Handler) => {
    const logged: string[] = [];
    const s = serve(await bootstrap(Handler, { logger: { error: (m) => logged.push(m), warn: (m) => logged.push(m), info: () => undefined } }));
    const { port } = s.serverAddress as { port: number };
    resettingClientsWhileBlocked(port, 3, 'PROXY TCP4 198.51.100.7 192.0.2.1 4000 80\r\n');
    await until(() => s.stats().healthChecks === 3 && s.stats().active === 0, 10000);
    expect(s.stats()).toMatchObject({ proxyErrors: 0, errors: 0, clientErrors: 0 });
    expect(logged).toEqual([]);
    expect(fs.readFileSync(resetLog, 'utf8')).toBe('');
  });
});
