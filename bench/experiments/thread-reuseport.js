// Experiment (not part of npm run bench): THREADS (2) worker threads that each listen on the same port with
// `reusePort` (Node 22.12+) and echo, the main thread not accepting at all: the least any @Threading design
// that lets threads accept can cost. Prints its address.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const net = require('net');
const echo = (s) => { s.on('data', (d) => s.write(d)); s.on('end', () => s.end()); s.on('error', () => {}); };
if (!isMainThread) {
  net.createServer({ allowHalfOpen: true, noDelay: true }, echo)
    .listen({ host: '127.0.0.1', port: workerData.port, reusePort: true }, () => parentPort.postMessage('listening'));
  return;
}
const N = Number(process.env.THREADS || 2);
// Bind the port first (reusePort), so the threads join it; then close this one so only threads accept.
const first = net.createServer().listen({ host: '127.0.0.1', port: 0, reusePort: true }, () => {
  const port = first.address().port;
  let ready = 0;
  for (let i = 0; i < N; i++) {
    new Worker(__filename, { workerData: { port } }).on('message', () => {
      if (++ready === N) first.close(() => console.log(JSON.stringify({ host: '127.0.0.1', port })));
    });
  }
});
process.on('SIGTERM', () => process.exit(0));
