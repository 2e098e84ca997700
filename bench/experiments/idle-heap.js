'use strict';
// Experiment (not part of npm run bench): the V8 heap an idle keep-alive connection costs a server, and
// which objects make it up (a heap snapshot diff by constructor, per connection), for one of the bench's
// handlers or for raw net. Deterministic, unlike a timing: run it before and after a change that should
// free memory per connection.
//   node --expose-gc bench/experiments/idle-heap.js <echo_tcp_concurrent|echo_tcp_serial|msglines_tcp_concurrent|raw>
require('reflect-metadata');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const v8 = require('node:v8');

if (process.argv[2] === '--clients') {
  // the client side, in a process of its own: n idle connections, "up" once all are open, exit on stdin's end
  const [port, n] = process.argv.slice(3).map(Number);
  let up = 0;
  let started = 0;
  const more = () => {
    for (let i = 0; i < 200 && started < n; i++, started++) {
      const s = net.connect(port, '127.0.0.1', () => { if (++up === n) console.log('up'); else if (up % 200 === 0) setImmediate(more); });
      s.on('error', () => undefined);
    }
  };
  more();
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  return;
}

if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc');
const FROM = 1000;
const ADDED = 4000;

async function openIdle(port, n) {
  const c = spawn(process.execPath, [__filename, '--clients', String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve) => c.stdout.once('data', resolve));
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the server takes every connection and settles
  return c;
}

function byConstructor() {
  const file = v8.writeHeapSnapshot(path.join(os.tmpdir(), `idle-heap-${process.pid}.heapsnapshot`));
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.unlinkSync(file);
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const counts = new Map();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const key = `${types[snap.nodes[i + iType]]}:${snap.strings[snap.nodes[i + iName]].slice(0, 60)}`;
    const e = counts.get(key) ?? [0, 0];
    e[0]++;
    e[1] += snap.nodes[i + iSize];
    counts.set(key, e);
  }
  return counts;
}

(async () => {
  const which = process.argv[2] ?? 'echo_tcp_concurrent';
  let port;
  if (which === 'raw') {
    const server = net.createServer({ noDelay: true }, (s) => { s.on('data', (d) => s.write(d)); s.on('error', () => undefined); });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  } else {
    const { bootstrap } = require('sockserve');
    const server = await bootstrap(require('../servers/handlers')[which]);
    server.serveForever();
    port = server.serverAddress.port;
  }
  const first = await openIdle(port, FROM);
  global.gc();
  const heap1 = process.memoryUsage().heapUsed;
  const before = byConstructor();
  const second = await openIdle(port, ADDED);
  global.gc();
  const heap2 = process.memoryUsage().heapUsed;
  const after = byConstructor();
  console.log(`${which}: ${((heap2 - heap1) / ADDED).toFixed(0)} bytes of heap per idle connection (${FROM} -> ${FROM + ADDED} open)`);
  const rows = [];
  for (const [key, [n, size]] of after) {
    const [n0, size0] = before.get(key) ?? [0, 0];
    if (n - n0 >= ADDED * 0.75) rows.push([((size - size0) / ADDED).toFixed(0), ((n - n0) / ADDED).toFixed(2), key]);
  }
  rows.sort((a, b) => b[0] - a[0]);
  console.log('bytes/conn\tobjects/conn\tkind:name');
  for (const r of rows.slice(0, 30)) console.log(r.join('\t'));
  first.stdin.end();
  second.stdin.end();
  process.exit(0);
})();
