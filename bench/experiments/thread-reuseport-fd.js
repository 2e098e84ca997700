// Experiment (not part of npm run bench): thread-reuseport.js for Node 20, whose `net` ignores `reusePort`: each
// thread listens on its own SO_REUSEPORT descriptor made by node-unix-socket's createReuseportFd(port, host),
// `listen({ fd })`. The main thread binds port 0 once to learn a free port, then closes that socket (another
// program could take the port before the threads bind it: good enough for an experiment). Prints its address.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const net = require('net');
const { createReuseportFd } = require('node-unix-socket');
const echo = (s) => { s.on('data', (d) => s.write(d)); s.on('end', () => s.end()); s.on('error', () => {}); };
if (!isMainThread) {
  net.createServer({ allowHalfOpen: true, noDelay: true }, echo).listen({ fd: workerData.fd }, () => parentPort.postMessage('listening'));
  return;
}
const N = Number(process.env.THREADS || 2);
const probe = createReuseportFd(0, '127.0.0.1');
const port = (() => { const s = new net.Server(); s.listen({ fd: probe }); const p = s.address().port; s.close(); return p; })();
let ready = 0;
for (let i = 0; i < N; i++) {
  new Worker(__filename, { workerData: { fd: createReuseportFd(port, '127.0.0.1') } }).on('message', () => {
    if (++ready === N) console.log(JSON.stringify({ host: '127.0.0.1', port }));
  });
}
process.on('SIGTERM', () => process.exit(0));
