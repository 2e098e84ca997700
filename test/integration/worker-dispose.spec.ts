/**
 * Singletons are per worker (docs/dependency-injection.md): each worker's are disposed when the pool ends
 * it on purpose (here at close()), and a dispose() that throws is logged, never lost nor fatal. With
 * handleSignals, a singleton of the server's own process that fails to dispose is logged and the process
 * exits 1, not through an unhandled rejection.
 */
import 'reflect-metadata';
import * as dc from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import { ChildProcess } from 'node:child_process';
import { bootstrap, Handle, HandlerClass, Injectable, Server, ServiceActions, StreamRequest, TcpServer } from '../../src';
import { LingeringChildren, LingeringThreads } from '../fixtures/disposing-handlers';
import {
  FailsTooChildren, FailsTooHere, FailsTooHookedChildren, FailsTooHookedHere, FailsTooHookedThreads, FailsTooHookedUdp, FailsTooThreads, FailsTooUdp, hookedLog,
  BigReplyDisposalFails, ServedChildren, ServedHere, ServedThreads, ServedUdpChildren, ServedUdpHere, ServedUdpThreads,
} from '../fixtures/dispose-masks-handlers';
import { AuditedChildren, AuditedConcurrent, AuditedSerial, AuditedThreads, AuditedUdpChildren, AuditedUdpConcurrent, AuditedUdpThreads, ExitingUdpChildren, ExitingUdpThreads, StuckAudit, StuckUdpChildren, StuckUdpConcurrent, StuckUdpThreads, disposeLog, HangingSingletonThreads, DisposingChildren, SlowFlushThreads, DisposingThreads, serviceTurns, StuckServiceChildren, StuckServiceThreads } from '../fixtures/disposing-handlers';
import * as net from 'node:net';
import { datagramExchange, datagramSilence, streamExchange, within } from '../helpers/clients';
import { startFixture } from '../helpers/fixture-process';
import { VerifyScopeHangs, VerifyScopeThrows, verifyScopeErrors } from '../fixtures/verify-scope-handlers';

describe('singletons of workers and of the server at close', () => {
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  const logs: string[] = [];
  const logOf = (pid: number) => {
    const log = disposeLog(pid);
    fs.rmSync(log, { force: true });
    logs.push(log);
    return log;
  };

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close().catch(() => undefined);
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const log of logs.splice(0)) fs.rmSync(log, { force: true });
  });

  test.each([
    ['@Threading', DisposingThreads],
    ['@Forking', DisposingChildren],
  ] as const)('%s: close() disposes each worker\'s singletons in that worker, and logs a dispose() that throws', async (_mode, handler) => {
    const log = logOf(process.pid);
    const errors: string[] = [];
    const s = await bootstrap(handler, { logger: { error: (m) => errors.push(m), warn: () => undefined } });
    servers.push(s);
    const loop = s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    // Two at once: the pool spreads them, so both workers build their singletons.
    const served = new Set((await Promise.all([0, 1].map(() => streamExchange({ host, port }, 'x\n', { halfClose: true, ms: 15000 })))).map((b) => b.toString().trim()));
    await s.shutdown();
    await loop;
    await s.close();
    const disposed = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => l.replace(/^disposed /, '')) : [];
    for (const worker of served) expect(disposed).toContain(worker); // "<pid> <threadId>" of each worker that served
    expect(disposed.every((w) => w.split(' ')[0] !== String(process.pid) || w.split(' ')[1] !== '0')).toBe(true); // none in the server's own thread
    const failures = errors.filter((m) => m.includes('disposing its singletons failed'));
    expect(failures.length).toBe(served.size);
    expect(failures[0]).toContain('pool already closed');
  });

  test('a worker singleton whose dispose() never settles takes only its share of the 5 s: the one built before it is still disposed, and close() ends', async () => {
    const log = logOf(process.pid);
    const errors: string[] = [];
    const s = await bootstrap(HangingSingletonThreads, { logger: { error: (m) => errors.push(m), warn: () => undefined } });
    servers.push(s);
    void s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    const worker = (await streamExchange({ host, port }, 'x\n', { halfClose: true, ms: 15000 })).toString().trim();
    await within(10000, 'close()', s.close());
    // Before: the hang took the whole 5 s, and the worker was ended with Recorded never disposed.
    expect(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').toContain(`disposed ${worker}`);
    expect(errors.join('\n')).toMatch(/NeverClosing's dispose\(\) did not settle within \d(\.\d)? s/);
  });

  test('a worker singleton whose dispose() takes 3 s finishes it at close(): a worker\'s singletons share the 5 s, not half of it', async () => {
    const log = logOf(process.pid);
    const errors: string[] = [];
    const s = await bootstrap(SlowFlushThreads, { logger: { error: (m) => errors.push(m), warn: () => undefined } });
    servers.push(s);
    void s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    const worker = (await streamExchange({ host, port }, 'x\n', { halfClose: true, ms: 15000 })).toString().trim();
    await within(10000, 'close()', s.close());
    // Before: cut off after 2.4 s ("did not settle"), and the worker ended in the middle of its flush.
    expect(errors).toEqual([]);
    expect(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').toContain(`flushed ${worker}`);
  });

  test.each([
    ['@Concurrent', 'concurrent', 1],
    ['@Threading', 'threading', 0],
    ['@Forking', 'forking', 0],
  ] as const)('%s with handleSignals: SIGTERM closes, logs the dispose() that threw, and exits (no unhandled rejection)', async (_mode, mode, code) => {
    const f = await startFixture('dispose-throws-server.ts', { env: { DISPOSE_MODE: mode }, children });
    const log = logOf(f.child.pid!);
    expect((await streamExchange({ host: '127.0.0.1', port: f.port }, 'x\n', { halfClose: true, ms: 15000 })).toString()).toMatch(/^\d+ \d+\n$/);
    f.child.kill('SIGTERM');
    // The server's own singleton failing makes close() reject: exit 1, said in the log. A worker's is logged by
    // the pool (the worker has ended): the server's close() succeeds, exit 0.
    expect(await within(30000, 'the server to exit', f.exited)).toBe(code);
    expect(f.out()).toContain('pool already closed');
    expect(f.out()).toMatch(mode === 'concurrent' ? /SIGTERM: closing failed \(the process exits with code 1\)/ : /disposing its singletons failed/);
    expect(f.out()).not.toMatch(/unhandled/i);
    expect(fs.readFileSync(log, 'utf8')).toMatch(/^disposed \d+ \d+$/m); // the other singleton was still disposed
  }, 120000); // a server process loading TypeScript (its start bounded at 60 s, its exit at 30 s): jest's 20 s default cut it first on a busy machine

  test.each([
    ['serial', AuditedSerial],
    ['@Concurrent', AuditedConcurrent],
    ['@Threading', AuditedThreads],
    ['@Forking', AuditedChildren],
  ] as const)('%s: a request-scoped dispose() that takes 1.5 s runs after the connection closed, not before', async (_mode, handler) => {
    const log = logOf(process.pid);
    const s = await bootstrap(handler, { logger: { error: () => undefined, warn: () => undefined } });
    servers.push(s);
    const loop = s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    const seen = await within(10000, 'the reply and the close', new Promise<{ reply: string; closeAfterReplyMs: number }>((resolve) => {
      let reply = '';
      let at = 0;
      const c = net.connect({ host, port }, () => c.end('hi\n'));
      c.on('data', (d) => {
        reply += d;
        at = Date.now();
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve({ reply, closeAfterReplyMs: Date.now() - at }));
    }));
    expect(seen.reply).toBe('reply hi\n');
    expect(seen.closeAfterReplyMs).toBeLessThan(1000); // the dispose() takes 1.5 s: the close did not wait for it
    await within(10000, 'the audit to be disposed', (async () => {
      while (!(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('audit '))) await new Promise((r) => setTimeout(r, 50));
    })());
    await s.shutdown();
    await loop;
  });
  // The server's own process sent a datagram's reply before the request scope's disposal, a worker after it: a
  // dispose() that took 1.5 s held each reply up 1.5 s with @Threading and @Forking only (review). (A serial server
  // takes the next datagram once the last one's scope is disposed: each request in turn, disposal included.)
  test.each([
    ['@Concurrent', AuditedUdpConcurrent],
    ['@Threading', AuditedUdpThreads],
    ['@Forking', AuditedUdpChildren],
  ] as const)('%s UDP: a request-scoped dispose() that takes 1.5 s runs after the reply has gone, not before', async (_mode, handler) => {
    const log = logOf(process.pid);
    const s = await bootstrap(handler, { logger: { error: () => undefined, warn: () => undefined } });
    servers.push(s);
    const loop = s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    // A worker started, and the request's code loaded.
    expect((await datagramExchange({ host, port }, 'warm', undefined, 15000)).data.toString()).toBe('reply warm');
    const sent = Date.now();
    const reply = await datagramExchange({ host, port }, 'hi', undefined, 10000);
    expect(reply.data.toString()).toBe('reply hi');
    expect(Date.now() - sent).toBeLessThan(1000); // the dispose() takes 1.5 s: the reply did not wait for it
    // A handler that wrote its reply, then threw: the reply is owed (Python's finish()), and goes before the disposal too.
    const thrownAt = Date.now();
    expect((await datagramExchange({ host, port }, 'boom', undefined, 10000)).data.toString()).toBe('reply boom');
    expect(Date.now() - thrownAt).toBeLessThan(1000);
    await within(10000, 'the 3 audits to be disposed', (async () => {
      while (!(fs.existsSync(log) && (fs.readFileSync(log, 'utf8').match(/^audit /gm) ?? []).length >= 3)) await new Promise((r) => setTimeout(r, 50));
    })());
    await s.shutdown();
    await loop;
    expect(s.stats().errors).toBe(1);
    expect(s.stats().bytesOut).toBe('reply warm'.length + 'reply hi'.length + 'reply boom'.length);
  });
});

describe('a request-scoped dispose() still running at shutdownTimeout', () => {
  test.each([
    ['@Threading', ExitingUdpThreads],
    ['@Forking', ExitingUdpChildren],
  ] as const)('%s UDP: a worker that dies while disposing a request scope, its reply gone, is not said to have lost the reply', async (_mode, handler) => {
    const lines: string[] = [];
    const ends: Array<{ bytesOut?: number; error?: { message?: string } }> = [];
    const onEnd = (m: unknown) => ends.push(m as (typeof ends)[number]);
    dc.subscribe('sockserve:request.end', onEnd);
    const s = await bootstrap(handler, { logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      expect((await datagramExchange({ host, port }, 'hi', undefined, 15000)).data.toString()).toBe('reply hi');
      await within(15000, 'the report of the death', (async () => {
        while (s.stats().errors < 1 || ends.length < 1) await new Promise((r) => setTimeout(r, 20));
      })());
      await s.shutdown();
      await loop;
    } finally {
      dc.unsubscribe('sockserve:request.end', onEnd);
      await s.close();
    }
    expect(s.stats().bytesOut).toBe('reply hi'.length);
    expect(ends.map((e) => e.bytesOut)).toEqual(['reply hi'.length]); // it was 0, said "its reply is not sent"
    expect(ends[0].error?.message).toMatch(/died while its request-scoped providers were being disposed \(its reply had gone\)/);
    expect(lines.join('\n')).not.toMatch(/reply is not sent/);
  });

  // The reply goes before the disposal; given up at shutdownTimeout, the request was reported as a handler whose
  // "reply is not sent", and a worker's request.end counted no byte out (hostile re-check).
  test.each([
    ['@Concurrent', StuckUdpConcurrent],
    ['@Threading', StuckUdpThreads],
    ['@Forking', StuckUdpChildren],
  ] as const)('%s UDP: the reply that went is counted, and the report names the dispose(), not the handler', async (_mode, handler) => {
    const lines: string[] = [];
    const ends: Array<{ bytesOut?: number; error?: { message?: string } }> = [];
    const onEnd = (m: unknown) => ends.push(m as (typeof ends)[number]);
    dc.subscribe('sockserve:request.end', onEnd);
    const s = await bootstrap(handler, { shutdownTimeout: 0.5, logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      expect((await datagramExchange({ host, port }, 'hi', undefined, 15000)).data.toString()).toBe('reply hi');
      await within(15000, 'shutdown', s.shutdown());
      await within(15000, 'the serve loop', loop);
      await s.close();
    } finally {
      dc.unsubscribe('sockserve:request.end', onEnd);
      await s.close();
      // The disposal given up still runs to its end (in this process with @Concurrent): nothing is left behind.
      await within(10000, 'the abandoned disposals', Promise.all(StuckAudit.disposals.splice(0)));
    }
    expect(s.stats().bytesOut).toBe('reply hi'.length);
    const report = lines.join('\n');
    expect(report).toMatch(/dispose\(\) was still running/);
    expect(report).not.toMatch(/reply is not sent/);
    // One request.end, its reply counted: at the lifecycle's end in a child (it read the datagram), at the request's
    // given up end otherwise, with the error.
    expect(ends.map((e) => e.bytesOut)).toEqual(['reply hi'.length]);
  });

  test.each([
    ['serial', AuditedSerial],
    ['@Concurrent', AuditedConcurrent],
  ] as const)('%s: is reported as the dispose() that did not return, not as a handler still running', async (_mode, handler) => {
    const lines: string[] = [];
    const s = await bootstrap(handler, { shutdownTimeout: 0.5, logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      const reply = await within(10000, 'the reply', new Promise<string>((resolve) => {
        let got = '';
        const c = net.connect({ host, port }, () => c.end('hi\n'));
        c.on('data', (d) => (got += d)).on('error', () => undefined).on('close', () => resolve(got));
      }));
      expect(reply).toBe('reply hi\n');
      await within(10000, 'shutdown', s.shutdown()); // the 1.5 s dispose() is under way: given up after 0.5 s
      await within(10000, 'the serve loop', loop);
    } finally {
      await s.close();
      // The dispose() given up still runs to its end, and writes its line then: wait for it, and remove the file.
      const log = disposeLog(process.pid);
      await within(10000, 'the abandoned dispose() to end', (async () => {
        while (!(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('audit '))) await new Promise((r) => setTimeout(r, 50));
      })());
      fs.rmSync(log, { force: true });
    }
    const report = lines.join('\n');
    expect(report).toContain("the request's handler had returned, but a request-scoped provider's dispose() was still running 0.5 s after shutdown began");
    expect(report).not.toContain('make the handler return');
  });
});

describe('a request a worker is still running when shutdownTimeout gives it up', () => {
  test.each([
    ['@Threading', LingeringThreads],
    ['@Forking', LingeringChildren],
  ] as const)('%s: its request-scoped instances are disposed before the worker ends (they never were)', async (_mode, handler) => {
    const log = disposeLog(process.pid);
    fs.rmSync(log, { force: true });
    const s = await bootstrap(handler, { shutdownTimeout: 0.5, logger: { error: () => undefined, warn: () => undefined } });
    const loop = s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    const c = net.connect({ host, port }, () => c.write('hi\n'));
    c.on('error', () => undefined);
    try {
      await within(10000, 'the request to start', new Promise<void>((resolve) => c.on('data', (d) => String(d).includes('started') && resolve())));
      await within(10000, 'shutdown', s.shutdown()); // the handler takes 20 s: abandoned after 0.5 s
      await within(10000, 'the serve loop', loop);
      await within(15000, 'close', s.close());
      expect(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').toMatch(/^abandoned-audit \d+ \d+$/m);
    } finally {
      c.destroy();
      await s.close();
      fs.rmSync(log, { force: true });
    }
  });
});

describe('a request-scoped dispose() that throws after the request failed', () => {
  /**
   * Serves `handler`, sends it one request (which fails, and whose scope then fails to dispose), waits for the
   * report and `settleMs` more; resolves with what was logged and stats().errors, the server closed.
   */
  async function failingRequest(handler: HandlerClass, settleMs = 0, datagram = false): Promise<{ report: string; errors: number }> {
    const lines: string[] = [];
    const s = await bootstrap(handler, { logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      if (datagram) expect(await datagramSilence({ host, port }, 'go\n', undefined, 500)).toBe(true);
      else expect(String(await streamExchange({ host, port }, 'go\n', { halfClose: true, ms: 10000 }))).toBe('');
      await within(10000, 'the report', (async () => { while (s.stats().errors === 0 || lines.length === 0) await new Promise((r) => setTimeout(r, 20)); })());
      await new Promise((r) => setTimeout(r, settleMs));
      return { report: lines.join('\n'), errors: s.stats().errors };
    } finally {
      await s.shutdown();
      await loop;
      await s.close();
    }
  }

  test.each([
    ['@Concurrent', FailsTooHere],
    ['@Threading', FailsTooThreads],
    ['@Forking', FailsTooChildren],
  ] as const)('%s: the report names both errors (the handler\'s was hidden by the disposal\'s)', async (_mode, handler) => {
    const { report, errors } = await failingRequest(handler);
    expect(report).toContain('THE HANDLER ERROR');
    expect(report).toContain('the audit log could not be flushed');
    expect(errors).toBe(1);
  });

  test('a datagram server (@Concurrent) whose reply cannot be sent: the report names the send\'s error and the disposal\'s (it was dropped)', async () => {
    const lines: string[] = [];
    const s = await bootstrap(BigReplyDisposalFails, { logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      expect(await datagramSilence({ host, port }, 'go\n', undefined, 500)).toBe(true);
      await within(10000, 'the report', (async () => { while (lines.length === 0) await new Promise((r) => setTimeout(r, 20)); })());
      await new Promise((r) => setTimeout(r, 200));
      expect(lines.join('\n')).toContain('longer than one UDP datagram can carry');
      expect(lines.join('\n')).toContain('the audit log could not be flushed');
    } finally {
      await s.shutdown();
      await loop;
      await s.close();
    }
  });

  test('a datagram server (serial): the report names both errors (the disposal\'s was dropped)', async () => {
    const { report, errors } = await failingRequest(FailsTooUdp, 0, true);
    expect(report).toContain('THE HANDLER ERROR');
    expect(report).toContain('the audit log could not be flushed');
    expect(errors).toBe(1);
  });

  test('a datagram server (@Concurrent) with @HandleError: the hook gets the handler\'s error once, the disposal\'s failure is logged', async () => {
    const hooked = hookedLog(process.pid);
    fs.rmSync(hooked, { force: true });
    try {
      const { report, errors } = await failingRequest(FailsTooHookedUdp, 300, true);
      expect(fs.readFileSync(hooked, 'utf8')).toBe('TypeError: THE HANDLER ERROR\n');
      expect(report).toContain('the audit log could not be flushed');
      expect(report).not.toContain('THE HANDLER ERROR');
      expect(errors).toBe(1);
    } finally {
      fs.rmSync(hooked, { force: true });
    }
  });

  test.each([
    ['@Concurrent', FailsTooHookedHere],
    ['@Threading', FailsTooHookedThreads],
    ['@Forking', FailsTooHookedChildren],
  ] as const)('%s with @HandleError: the hook gets the handler\'s error once, and the disposal\'s failure, which no hook saw, is logged', async (_mode, handler) => {
    const hooked = hookedLog(process.pid);
    fs.rmSync(hooked, { force: true });
    try {
      const { report, errors } = await failingRequest(handler, 300); // a second hook call or log line would come by then
      expect(fs.readFileSync(hooked, 'utf8')).toBe('TypeError: THE HANDLER ERROR\n');
      expect(report).toContain('the audit log could not be flushed');
      expect(report).not.toContain('THE HANDLER ERROR'); // the hook had it
      expect(errors).toBe(1);
    } finally {
      fs.rmSync(hooked, { force: true });
    }
  });
});

describe('a request-scoped dispose() that throws after a request that went well', () => {
  // @HandleError ran in the server's process on a fresh instance, for every mode: the server built request-scoped
  // providers (and, for a worker's error, singletons) there only to report a worker's failure (hostile run).
  // API.md §3: where the error arose, on the request's handler instance.
  test.each([
    ['@Concurrent', ServedHere, 'server', false],
    ['@Threading', ServedThreads, 'worker', false],
    ['@Forking', ServedChildren, 'worker', false],
    ['@Concurrent UDP', ServedUdpHere, 'server', true],
    ['@Threading UDP', ServedUdpThreads, 'worker', true],
    ['@Forking UDP', ServedUdpChildren, 'worker', true],
  ] as const)('%s: reaches @HandleError once, where it arose, on the request\'s handler instance', async (_mode, handler, where, datagram) => {
    const hooked = hookedLog(process.pid);
    fs.rmSync(hooked, { force: true });
    const lines: string[] = [];
    const s = await bootstrap(handler as HandlerClass, { logger: { error: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } });
    const loop = s.serveForever(0.05);
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      if (datagram) expect((await datagramExchange({ host, port }, 'hi\n', undefined, 15000)).data.toString()).toBe('hi\n');
      else expect(String(await streamExchange({ host, port }, 'hi\n', { halfClose: true, ms: 15000 }))).toBe('hi\n');
      await within(10000, 'the report', (async () => { while (s.stats().errors === 0) await new Promise((r) => setTimeout(r, 20)); })());
      await new Promise((r) => setTimeout(r, 300)); // a second hook call would come by then
      expect(fs.readFileSync(hooked, 'utf8')).toBe(`${where} served=true the audit log could not be flushed\n`);
      expect(s.stats().errors).toBe(1);
    } finally {
      fs.rmSync(hooked, { force: true });
      await s.shutdown();
      await loop;
      await s.close();
    }
  });
});

describe('a @ServiceActions that never settles, with a worker pool', () => {
  test.each([
    ['@Threading', StuckServiceThreads],
    ['@Forking', StuckServiceChildren],
  ] as const)('%s: shutdown() still ends within shutdownTimeout, and the log names the hook', async (_mode, handler) => {
    serviceTurns.n = 0;
    const warned: string[] = [];
    const s = await bootstrap(handler, { shutdownTimeout: 0.3, logger: { error: (m) => warned.push(m), warn: (m) => warned.push(m) } });
    try {
      const loop = s.serveForever(0.01);
      await within(10000, 'the hook to hang', (async () => { while (serviceTurns.n < 3) await new Promise((r) => setTimeout(r, 10)); })());
      const t0 = Date.now();
      await within(5000, 'shutdown() with the hook stuck', s.shutdown());
      await within(5000, 'the loop to end', loop);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(warned.join('\n')).toMatch(/serviceActions \(@ServiceActions\) had not settled/);
    } finally {
      await s.close();
    }
  });
});

describe('the request scope @Verify used in the server\'s process, its lifecycle in a worker', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await within(10000, 'close()', s.close()).catch(() => undefined);
    verifyScopeErrors().splice(0);
  });

  async function serveAndAsk(handler: Function): Promise<{ s: Server; reply: string }> {
    const s = await bootstrap(handler as new () => object, { logger: { error: () => undefined, warn: () => undefined } });
    servers.push(s);
    void s.serveForever(0.05);
    const { host, port } = s.serverAddress as { host: string; port: number };
    const reply = (await streamExchange({ host, port }, 'hello\n', { halfClose: true, ms: 10000 })).toString();
    return { s, reply };
  }

  test('a dispose() that throws is reported through @HandleError, and the request is served (it was dropped)', async () => {
    const { s, reply } = await serveAndAsk(VerifyScopeThrows);
    expect(reply).toBe('ok hello\n');
    await within(5000, 'the dispose error reported', (async () => { while (verifyScopeErrors().length === 0) await new Promise((r) => setTimeout(r, 20)); })());
    expect(verifyScopeErrors()).toEqual([expect.objectContaining({ message: 'audit log already closed' })]);
    expect(s.stats().errors).toBe(1);
  });

  test('a dispose() that never settles holds up neither the request nor close() (the client waited for ever)', async () => {
    const { s, reply } = await serveAndAsk(VerifyScopeHangs);
    expect(reply).toBe('ok hello\n');
    await within(5000, 'the request to end', (async () => { while (s.stats().active !== 0) await new Promise((r) => setTimeout(r, 20)); })());
    await within(10000, 'close()', s.close());
    expect(verifyScopeErrors()).toEqual([]);
  });
});

describe('a request-scoped dispose() that never settles, in a program whose server has closed', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('does not keep the program alive: it exits once close() has resolved, not 5 s later', async () => {
    const f = await startFixture('hung-scope-exit.ts', { children });
    expect((await streamExchange({ host: '127.0.0.1', port: f.port }, 'x\n', { halfClose: true, ms: 15000 })).toString()).toBe('x\n');
    await within(15000, 'close()', f.seen('closed'));
    const closedAt = Date.now();
    expect(await within(15000, 'the program to exit', f.exited)).toBe(0);
    // The disposal's 5 s bound held the event loop open (the in-band jest run: "did not exit one second after").
    expect(Date.now() - closedAt).toBeLessThan(2500);
  }, 90000); // a process loading TypeScript
});

describe('the request scope of a server-level hook (@ServiceActions, @HandleError) on a fresh instance', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await within(10000, 'close()', s.close()).catch(() => undefined);
  });

  test.each([
    ['throws', () => { throw new Error('ledger closed'); }],
    ['never settles', () => new Promise<void>(() => undefined)],
  ] as const)('whose dispose() %s holds a serial server up nowhere: the client is served at once, serveForever() goes on, the failure is logged', async (_what, dispose) => {
    @Injectable({ scope: 'request' })
    class Ledger { dispose() { return dispose(); } }
    @TcpServer(0)
    class Ticking {
      constructor(readonly ledger: Ledger) {}
      @Handle() async handle(req: StreamRequest) { await req.wfile.write(`ok ${(await req.rfile.readline()).toString()}`); }
      @ServiceActions() tick() { return undefined; }
    }
    const errors: string[] = [];
    const s = await bootstrap(Ticking, { logger: { error: (m) => errors.push(m), warn: () => undefined } });
    servers.push(s);
    let loop = 'running';
    s.serveForever(0.05).then(() => (loop = 'resolved'), (e: Error) => (loop = `rejected: ${e.message}`));
    await new Promise((r) => setTimeout(r, 200)); // several service-action turns
    const { host, port } = s.serverAddress as { host: string; port: number };
    // Before: each turn waited 5 s for the hung dispose (the client waited), or the throw rejected serveForever().
    const reply = await within(1500, 'the reply', streamExchange({ host, port }, 'x\n', { halfClose: true, ms: 1500 }));
    expect(reply.toString()).toBe('ok x\n');
    expect(loop).toBe('running');
    if (_what === 'throws') expect(errors.join('\n')).toMatch(/Ticking: disposing the request scope of a @ServiceActions call failed \(the server went on\): Error: ledger closed/);
  });

});
