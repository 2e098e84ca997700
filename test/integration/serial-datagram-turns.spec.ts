/**
 * A serial datagram server serving a queue of datagrams whose handlers finish at once (no await) gives Node's
 * event loop a turn every few milliseconds: its loop took each queued datagram on a microtask, so signals,
 * timers (shutdownTimeout's own), IPC and shutdown() waited until the whole queue was served (hostile run:
 * SIGTERM with shutdownTimeout 1 ended the loop 7.5 s later, 3,000 datagrams queued). Python's loop waits in
 * select() at every turn.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { bootstrap, Server } from '../../src';
import { servingInTests } from '../helpers/serving';
import { runPython, unixDatagramSetup } from '../helpers/unix-dgram-setup';
import { SerialBusyEcho } from '../fixtures/unix-dgram-echo-handlers';

const serve = servingInTests<Server>();
const python = spawnSync('python3', ['--version']).status === 0;
const inCi = process.env.CI === 'true';
const withPython = python || inCi ? describe : describe.skip;
const setup = unixDatagramSetup('burst client');

withPython('a serial Unix datagram server with a queue of datagrams (python3 client)', () => {
  test("serves every datagram and gives Node's event loop a turn meanwhile: no timer waits for the whole queue", async () => {
    if (!python) throw new Error('python3 is not installed, and CI=true: install it (apt-get install -y python3)');
    const server = serve(await bootstrap(SerialBusyEcho, { transport: { path: path.join(setup.dir(), 'serial.sock') } }));
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const script = path.join(__dirname, '../fixtures/unix-dgram-burst-reader.py');
    const { out } = await runPython(setup.children, [script, path.join(setup.dir(), 'client.sock'), (server.serverAddress as { path: string }).path, '600'], 40000, 'the burst client to end');
    delay.disable();
    expect(out.trim()).toBe('got 600 of 600'); // 600 × 3 ms of handler: about 2 s of work
    expect(server.stats().accepted).toBe(600);
    // Without the turns: the longest wait of a timer was the queue's whole service time (seconds).
    expect(Math.round(delay.max / 1e6)).toBeLessThan(400);
  }, 60000);
});
