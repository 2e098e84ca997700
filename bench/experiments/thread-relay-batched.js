// Experiment (not part of npm run bench): thread-relay.js with each direction's messages batched per turn of the
// event loop (one postMessage per thread per turn, as @Threading's relay does), the leanest relay this design allows.
const { Worker, isMainThread, parentPort } = require('worker_threads');
const net = require('net');
function batcher(post) {
  let out = null;
  return (m) => {
    if (out) return void out.push(m);
    out = [m];
    setImmediate(() => { const o = out; out = null; post(o); });
  };
}
if (!isMainThread) {
  const send = batcher((o) => parentPort.postMessage(o));
  parentPort.on('message', (batch) => { for (const m of batch) send(m); });
  return;
}
const N = Number(process.env.THREADS || 2);
const conns = new Map();
let next = 0;
const threads = [];
for (let i = 0; i < N; i++) {
  const w = new Worker(__filename);
  w.load = 0;
  w.send = batcher((o) => w.postMessage(o));
  w.on('message', (batch) => {
    for (const m of batch) {
      const s = conns.get(m.id);
      if (!s) continue;
      if (m.data) s.write(m.data);
      else { conns.delete(m.id); w.load--; s.end(); }
    }
  });
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
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
