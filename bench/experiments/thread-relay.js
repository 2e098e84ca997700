// Experiment (not part of npm run bench): the smallest relay to worker threads, the design @Threading uses where a
// thread cannot own a socket (Node 20 and 22 by default). The main thread accepts and reads; each connection's
// bytes and end cross to one of THREADS (2) threads, least-loaded first, and the thread's echo and end cross back.
// One postMessage per connection event, nothing batched, no flow control. Prints its address.
const { Worker, isMainThread, parentPort } = require('worker_threads');
const net = require('net');
if (!isMainThread) {
  parentPort.on('message', (m) => parentPort.postMessage(m)); // echo the bytes, or the end, back
  return;
}
const N = Number(process.env.THREADS || 2);
const conns = new Map();
let next = 0;
const threads = [];
for (let i = 0; i < N; i++) {
  const w = new Worker(__filename);
  w.load = 0;
  w.on('message', (m) => {
    const s = conns.get(m.id);
    if (!s) return;
    if (m.data) s.write(m.data);
    else { conns.delete(m.id); w.load--; s.end(); }
  });
  threads.push(w);
}
const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  const id = next++;
  let w = threads[0];
  for (const t of threads) if (t.load < w.load) w = t;
  w.load++;
  conns.set(id, s);
  s.on('data', (d) => w.postMessage({ id, data: d }));
  s.on('end', () => w.postMessage({ id, end: true }));
  s.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
