'use strict';
// Experiment (not part of npm run bench): what an idle TCP connection costs a process whose worker threads
// hold it, by how they got it, with no sockserve code at all: the floor each @Threading mechanism starts from.
//   raw      the main thread accepts and serves (raw net: the bench's anchor)
//   reuse    two threads each listen with reusePort and accept themselves (Node 22.12+)
//   transfer the main thread accepts and moves each socket into one of two threads (Node 24.21+, 26.6+)
// Prints the RSS added per connection from 1,000 to 1,000 + N2 (default 9,000) open, and the V8 heap used
// per connection in the main thread and in the threads. Memory, not time: it holds on a busy machine.
//   node --expose-gc bench/experiments/thread-socket-memory.js <raw|reuse|transfer>
// Measured 2026-12-03 (KB per connection, RSS; heap of the threads): Node 24.22.3 raw 2.9, reuse 2.5
// (1.0), transfer 6.5 (2.3): a moved socket arrives in the thread with its properties in dictionary mode
// (1.6 KB, where an accepted one has fast ones), and the move costs ~2.7 KB of native memory besides.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const echo = (socket) => {
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => undefined);
};
/** Heap used after a full GC, for the main thread's question. */
const heapUsed = () => {
  global.gc();
  return process.memoryUsage().heapUsed;
};

if (!isMainThread) {
  if (workerData.port) net.createServer(echo).listen({ port: workerData.port, host: '127.0.0.1', reusePort: true }, () => parentPort.postMessage('up'));
  parentPort.on('message', (msg) => (msg === 'heap' ? parentPort.postMessage(heapUsed()) : echo(msg.socket)));
} else {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');
  const mode = process.argv[2];
  const more = Number(process.env.N2 ?? 9000);
  let threads = [];
  const threadHeap = async () => {
    let total = 0;
    for (const t of threads) total += await new Promise((resolve) => (t.once('message', resolve), t.postMessage('heap')));
    return total;
  };
  // The clients, in a process of their own (idle-heap.js's client side): n idle connections.
  const open = async (port, n) => {
    const clients = spawn(process.execPath, [path.join(__dirname, 'idle-heap.js'), '--clients', String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => clients.stdout.once('data', resolve));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    return clients;
  };
  const measure = async (port) => {
    const first = await open(port, 1000);
    const m1 = heapUsed(), t1 = await threadHeap(), r1 = process.memoryUsage().rss;
    const second = await open(port, more);
    const m2 = heapUsed(), t2 = await threadHeap(), r2 = process.memoryUsage().rss;
    const kb = (a, b) => ((b - a) / more / 1024).toFixed(2);
    console.log(`${process.version} ${mode}: RSS ${kb(r1, r2)} KB/conn, main heap ${kb(m1, m2)} KB/conn, threads' heap ${kb(t1, t2)} KB/conn`);
    first.stdin.end();
    second.stdin.end();
    process.exit(0);
  };
  if (mode === 'raw') {
    const server = net.createServer(echo).listen(0, '127.0.0.1', () => measure(server.address().port));
  } else if (mode === 'transfer') {
    threads = [0, 1].map(() => new Worker(__filename, { workerData: {} }));
    let next = 0;
    const server = net.createServer({ pauseOnConnect: true }, (socket) => threads[next++ % 2].postMessage({ socket }, [socket]));
    server.listen(0, '127.0.0.1', () => measure(server.address().port));
  } else if (mode === 'reuse') {
    const probe = net.createServer().listen({ port: 0, host: '127.0.0.1', reusePort: true }, async () => {
      const port = probe.address().port;
      threads = [0, 1].map(() => new Worker(__filename, { workerData: { port } }));
      await Promise.all(threads.map((t) => new Promise((resolve) => t.once('message', resolve))));
      probe.close(); // the threads' listeners take every connection from here
      measure(port);
    });
  } else {
    throw new Error('usage: node --expose-gc thread-socket-memory.js <raw|reuse|transfer>');
  }
}
