import type { ChildProcess } from 'node:child_process';
import { connect, readToEnd, within } from '../helpers/clients';
import { startFixture } from '../helpers/fixture-process';

/** Every child started, even one whose start timed out: afterEach ends them. */
const started: ChildProcess[] = [];

describe('bootstrap({ handleSignals: true })', () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    const exits: Promise<unknown>[] = [];
    for (const c of started.splice(0)) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      exits.push(new Promise((resolve) => c.once('exit', resolve)));
      // a detached server leads its own process group: end the group, its children too
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
    // the next test (and jest's end) starts once they are gone, not while they are still exiting
    await Promise.all(exits);
    child = undefined;
  });

  /**
   * Starts the fixture `file` (a server with handleSignals that prints `busy` when a request is in its handler), puts one
   * request in its handler and sends SIGTERM: asserts that the request is answered and the process exits 0, and
   * resolves with what the process printed.
   */
  async function drainOneRequest(file: string): Promise<string> {
    const server = await startFixture(file, { startMs: 45000, children: started });
    child = server.child;
    const socket = await connect({ host: '127.0.0.1', port: server.port });
    try {
      const reply = readToEnd(socket);
      socket.write('in flight\n');
      await within(10000, 'the request in its handler', server.seen('busy'));
      child.kill('SIGTERM');
      expect((await within(5000, 'reply', reply)).toString()).toBe('in flight\n');
      expect(await within(5000, 'exit', server.exited)).toBe(0);
      return server.out();
    } finally {
      socket.destroy();
    }
  }

  test('SIGTERM drains the request in flight, closes, and the process exits 0', async () => {
    expect(await drainOneRequest('signal-server.ts')).toContain('drained');
  }, 60000); // a server process loading TypeScript: slow on a busy machine

  test('SIGTERM: serveForever() resolves once the drain has closed the server, its singletons disposed (a program may exit then)', async () => {
    // Before: serveForever() resolved at the loop's end, before the close, and the program's process.exit() came
    // before the singleton's dispose() (never printed).
    const out = await drainOneRequest('dispose-signal-server.ts');
    expect(out).toContain('disposed');
    expect(out.indexOf('disposed')).toBeLessThan(out.indexOf('serveForever resolved'));
  }, 60000);

  test('bootstrap([A, B]): the program closing A leaves B\'s signal handling in place: SIGTERM drains B\'s request and exits 0', async () => {
    // Before: closing A removed the signal listeners of both servers, so SIGTERM killed the process with B's
    // request in flight (no reply, exit by signal, a Unix server's socket file left behind).
    expect(await drainOneRequest('pair-signal-server.ts')).toContain('drained');
  }, 60000);

  test.each(['SIGTERM', 'SIGINT'])('%s to the whole process group (Ctrl-C, systemd, timeout) lets @Forking children finish their requests: every reply, exit 0', async (signal) => {
    // detached: the server leads a process group of its own, with its children in it
    const server = await startFixture('group-signal-server.ts', { detached: true, children: started });
    child = server.child;
    const { port, exited, seen } = server;
    const sockets = await Promise.all([1, 2, 3].map(() => connect({ host: '127.0.0.1', port })));
    const replies = sockets.map((socket) => readToEnd(socket));
    sockets.forEach((socket, i) => socket.write(`request ${i}\n`));
    await within(20000, 'three requests in their handlers', Promise.all([0, 1, 2].map((i) => seen(`busy request ${i}`))));
    process.kill(-child.pid!, signal as NodeJS.Signals);
    const got = await within(10000, 'replies', Promise.all(replies));
    expect(got.map((b) => b.toString())).toEqual(['request 0\n', 'request 1\n', 'request 2\n']);
    expect(await within(10000, 'exit', exited)).toBe(0);
    expect(server.out()).toContain('drained');
    sockets.forEach((socket) => socket.destroy());
  }, 90000); // a server and its children loading TypeScript: slow on a busy machine
});
