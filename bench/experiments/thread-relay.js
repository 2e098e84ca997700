// Experiment (not part of npm run bench): the smallest relay to worker threads, the design @Threading uses where a
// thread cannot own a socket (Node 20 and 22 by default). The main thread accepts and reads; each connection's
// bytes and end cross to one of THREADS (2) threads, least-loaded first, and the thread's echo and end cross back.
// One postMessage per connection event, or with BATCHED=1 one per thread and direction per turn of the event loop
// (as @Threading's relay does); no flow control. Prints its address.
const { Worker, isMainThread, parentPort } = require('worker_threads');
const net = require('net');
const BATCHED = process.env.BATCHED === '1';
/** post(m) now, or (BATCHED) gathered with the turn's others into one postMessage of an array. */
function sender(post) {
  if (!BATCHED) return post;
  let out = null;
  return (m) => {
    if (out) return void out.push(m);
    out = [m];
    setImmediate(() => { const o = out; out = null; post(o); });
  };
}
const each = (msg, fn) => (BATCHED ? msg.forEach(fn) : fn(msg));
if (!isMainThread) {
  const send = sender((m) => parentPort.postMessage(m));
  parentPort.on('message', (msg) => each(msg, send)); // echo the bytes, or the end, back
  return;
}
const N = Number(process.env.THREADS || 2);
const conns = new Map();
let next = 0;
const threads = [];
for (let i = 0; i < N; i++) {
  const w = new Worker(__filename);
  w.load = 0;
  w.send = sender((m) => w.postMessage(m));
  w.on('message', (msg) => each(msg, (m) => {
    const s = conns.get(m.id);
    if (!s) return;
    if (m.data) s.write(m.data);
    else s.end();
  }));
  threads.push(w);
}
const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  const id = next++;
  let w = threads[0];
  for (const t of threads) if (t.load < w.load) w = t;
  w.load++;
  conns.set(id, s);
  s.on('data', (d) => w.send({ id, data: d }));
  s.on('end', () => w.send({ id, end: true }));
  s.on('error', () => {});
  s.on('close', () => { conns.delete(id); w.load--; }); // ended, or reset before its end crossed
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
