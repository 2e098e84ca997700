// Experiment (not part of npm run bench): the smallest hand-over of accepted TCP sockets to worker threads
// (Node 24.21+, 26.6+: worker.postMessage({ socket }, [socket])), the design @Threading uses there. The main thread
// accepts unread (pauseOnConnect) and hands each connection to one of THREADS (2) threads, least-loaded
// first; the thread echoes and ends it, and says so. Prints its address. ECHO=lean: the threads run the lean
// await-per-line echo (lean-promise-echo.js), the floor of threads serving the stream API.
const { Worker, isMainThread, parentPort } = require('worker_threads');
const net = require('net');
if (!isMainThread) {
  const lean = process.env.ECHO === 'lean' ? require('./lean-promise-echo').leanEcho : undefined;
  parentPort.on('message', ({ socket }) => {
    socket.on('close', () => parentPort.postMessage(0));
    if (lean) return void lean(socket);
    socket.on('data', (d) => socket.write(d));
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    socket.resume();
  });
  return;
}
const N = Number(process.env.THREADS || 2);
const threads = [];
for (let i = 0; i < N; i++) {
  const w = new Worker(__filename);
  w.load = 0;
  w.on('message', () => w.load--);
  threads.push(w);
}
const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
  let w = threads[0];
  for (const t of threads) if (t.load < w.load) w = t;
  w.load++;
  w.postMessage({ socket }, [socket]);
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
