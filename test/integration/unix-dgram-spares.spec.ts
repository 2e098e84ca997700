/**
 * Spare senders bound again once the first ones are nearly used up (transports/unix-dgram.socket.ts, SPARE_LOW):
 * a fresh sender has the server's path for a moment while it is bound, and a request sent then reaches it. It
 * used to be bound when a reply needed it, and sent that reply at once: when the reply met EAGAIN (a client that
 * does not read) the sender was stuck before it had read the request, which was lost, unanswered (16 and 19 of
 * some 80,000 in two runs of 8 s with new non-reading clients coming all the time). Spares are now bound a turn
 * before they are used, and read what reached them meanwhile.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, spawnSync } from 'node:child_process';
import { createUnixDatagramSocket } from '../../src/transports/datagram-socket';
import type { DatagramSocket } from '../../src/transports/datagram-socket';
import { removeTempDir, tempDir } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { runPython } from '../helpers/unix-dgram-setup';

const python = spawnSync('python3', ['--version']).status === 0;
const inCi = process.env.CI === 'true';
const withPython = python || inCi ? describe : describe.skip;

// A client that sends requests (each 'b<i>') as fast as the server takes them, reading the replies in a thread,
// while new clients that never read come and go (12 requests each, one more than their queue holds); it prints
// how many requests it sent. ENOENT (the path without a file for a moment) and ECONNREFUSED are retried.
const clients = `
import os, socket, sys, threading, time
d, server, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
stop = threading.Event(); sent = [0]
def flood():
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); b.bind(os.path.join(d, 'b.sock')); b.settimeout(0.5)
    def read():
        try:
            while True: b.recv(100)
        except OSError: pass
    threading.Thread(target=read, daemon=True).start()
    i = 0
    while not stop.is_set():
        try:
            b.sendto(b'b%d' % i, server); sent[0] += 1; i += 1
        except (FileNotFoundError, ConnectionRefusedError, socket.timeout): time.sleep(0.001)
        if i % 8 == 0: time.sleep(0.0005)
def churn():
    j = 0
    while not stop.is_set():
        n = os.path.join(d, 'n%d.sock' % j); j += 1
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.bind(n)
        for _ in range(12):
            try: c.sendto(b'n', server)
            except OSError: pass
        time.sleep(0.01); c.close(); os.unlink(n)
threads = [threading.Thread(target=flood), threading.Thread(target=churn)]
for t in threads: t.start()
time.sleep(seconds); stop.set()
for t in threads: t.join()
print('sent %d' % sent[0], flush=True)
`;

let dir = '';
let server: DatagramSocket | undefined;
beforeEach(() => (dir = tempDir()));
const running: ChildProcess[] = [];
afterEach(async () => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close();
  server = undefined;
  removeTempDir(dir);
});

const needPython = () => { if (!python) throw new Error('python3 is not installed, and CI=true: install it (apt-get install -y python3)'); };

/** Runs python3 (see helpers/unix-dgram-setup.ts), killed after the test; resolves with what it printed, stderr included. */
const python3 = async (args: string[], ms: number, what: string) => (await runPython(running, args, ms, what)).out;

withPython('a Unix datagram server whose spare senders are used up, while non-reading clients come and go (python3)', () => {
  test('loses no request sent in a fresh sender\'s moment with the path', async () => {
    needPython();
    const failures: Error[] = [];
    const socket = (server = createUnixDatagramSocket({ path: path.join(dir, 's.sock'), maxPacketSize: 8192, onFailure: (e) => failures.push(e), spareSenders: 16 }));
    await socket.bind();
    let requests = 0;
    socket.onMessage((d) => {
      if (d.data[0] === 0x62) requests++;
      socket.send(d.data, d.from).catch(() => undefined);
    });
    const out = await python3(['-c', clients, dir, path.join(dir, 's.sock'), '6'], 30000, 'the clients to end');
    const match = /sent (\d+)/.exec(out);
    if (!match) throw new Error(`the clients failed: ${out}`);
    const sent = Number(match[1]);
    // The last requests may still wait in the server's queue: read within 5 s, or the count below says how many never came.
    await until(() => requests >= sent, 5000).catch(() => undefined);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(1000);
    expect(requests).toBe(sent);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.swap'))).toEqual([]);
  }, 60000);
});

withPython('a Unix datagram server that meets one slow reader after another (python3)', () => {
  // A sender whose parked reply went sends again (reuse()): a slow reader's burst costs about one sender, not one
  // per EAGAIN (some 30 for a burst of 1,000 read at 0.5 ms each), which used the 64 spares up in two or three
  // bursts, and the server then bound senders at its path again, where clients met ENOENT (flake hunt).
  test('keeps its spare senders: each burst costs one or two at most', async () => {
    needPython();
    const socket = (server = createUnixDatagramSocket({ path: path.join(dir, 's.sock'), maxPacketSize: 8192 }));
    await socket.bind();
    socket.onMessage((d) => void socket.send(d.data, d.from).catch(() => undefined));
    const spares = () => (socket as unknown as { spares: unknown[] }).spares.length;
    const before = spares();
    const script = path.join(__dirname, '../fixtures/unix-dgram-burst-reader.py');
    for (let burst = 0; burst < 3; burst++) {
      const out = await python3([script, path.join(dir, `r${burst}.sock`), path.join(dir, 's.sock'), '500', '0.0005'], 30000, 'the reading client to end');
      expect(out.trim()).toBe('got 500 of 500');
    }
    // About one a burst; two when the machine is loaded (CI with other work: 4 for 3 bursts), never one per EAGAIN.
    expect(before - spares()).toBeLessThanOrEqual(6);
  }, 120000);
});

// Clients that send one request and wait for its reply, until the file stop exists (argv[1]: a directory, argv[2]: the
// server, argv[3]: how many); each prints "ok <n> lost <n>" (lost: no reply within 1 s).
const pingPong = `
import os, socket, sys, threading, time
d, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
def run(k):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.bind(os.path.join(d, 'p%d.sock' % k)); c.settimeout(1)
    ok = lost = 0
    while not os.path.exists(os.path.join(d, 'stop')):
        try:
            c.sendto(b'p', server); c.recv(100); ok += 1
        except socket.timeout: lost += 1
    out.append('ok %d lost %d' % (ok, lost))
ts = [threading.Thread(target=run, args=(k,)) for k in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print('\\n'.join(out), flush=True)
`;

withPython('a Unix datagram server that meets slow readers together, and other clients meanwhile (python3)', () => {
  // A sender whose parked reply went was reused only when no other had taken its place meanwhile: a reply to any
  // other client took a fresh one at once, and the slow reader's sender was closed when its reply went. So with
  // three slow readers at once, or one among ping-pong clients, each EAGAIN cost a spare again (45 in 3 s for one
  // slow reader and four ping-pong clients; 53 in 10 s for three slow readers and two others, whose sendto met
  // ENOENT 15 times once the spares ran out). Such a sender now waits to be the next one (reusable).
  test('keeps its spare senders: each burst costs one or two at most', async () => {
    needPython();
    const serverPath = path.join(dir, 's.sock');
    const socket = (server = createUnixDatagramSocket({ path: serverPath, maxPacketSize: 8192 }));
    await socket.bind();
    socket.onMessage((d) => void socket.send(d.data, d.from).catch(() => undefined));
    const spares = () => (socket as unknown as { spares: unknown[] }).spares.length;
    const before = spares();
    const others = python3(['-c', pingPong, dir, serverPath, '3'], 60000, 'the ping-pong clients to end');
    others.catch(() => undefined); // awaited below; a failure before that is the test's
    const script = path.join(__dirname, '../fixtures/unix-dgram-burst-reader.py');
    for (let burst = 0; burst < 2; burst++) {
      const readers = [0, 1, 2].map((k) => python3([script, path.join(dir, `r${burst}-${k}.sock`), serverPath, '500', '0.0005'], 30000, 'a reading client to end'));
      expect((await Promise.all(readers)).map((out) => out.trim())).toEqual(['got 500 of 500', 'got 500 of 500', 'got 500 of 500']);
    }
    fs.writeFileSync(path.join(dir, 'stop'), '');
    const lines = (await others).trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^ok [1-9]\d* lost 0$/);
    expect(before - spares()).toBeLessThanOrEqual(12); // 2 to 7 measured (58 before), 7 with other suites running
  }, 120000);
});

// Skipped (and said so) where net.core.wmem_max leaves a sender's buffer too small for 11 replies of 8 KB.
const wideBuffers = Number(fs.readFileSync('/proc/sys/net/core/wmem_max', 'utf8')) >= 1 << 20;

withPython('a Unix datagram server whose replies are large, to a client that reads them slowly (python3)', () => {
  // The kernel polls a sender as writable only while what its receivers have not read yet is at most a quarter of its
  // send buffer, and the addon sends a parked reply only then: with the default buffer (208 KiB), a full queue of
  // 11 replies of 8 KB is more, so the parked reply waited until the client had read 8 of them, and a client reading
  // one every 100 ms lost all but 12 of 30 (each given up after 250 ms). Senders now ask for a larger buffer.
  (wideBuffers ? test : test.skip)('a parked reply of 8 KB goes once the client reads one', async () => {
    needPython();
    const serverPath = path.join(dir, 's.sock');
    const socket = (server = createUnixDatagramSocket({ path: serverPath, maxPacketSize: 8192 }));
    await socket.bind();
    const reply = Buffer.alloc(8000, 0x72);
    socket.onMessage((d) => void socket.send(reply, d.from).catch(() => undefined));
    const script = path.join(__dirname, '../fixtures/unix-dgram-burst-reader.py');
    const out = await python3([script, path.join(dir, 'r.sock'), serverPath, '30', '0.1'], 30000, 'the reading client to end');
    expect(out.trim()).toBe('got 30 of 30');
  }, 60000);
});
