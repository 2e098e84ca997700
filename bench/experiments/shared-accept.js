// Experiment (not part of npm run bench): children accept from the shared listening socket (KIDS children, 4),
// the design @Forking would need to reach raw net's connection rate; the parent closes its copy. Prints its address.
// ECHO=lean: each child runs the lean await-per-line echo (lean-promise-echo.js) instead of the raw one, the
// floor of a pool of processes serving the stream API (`await readline()`/`await write()`).
const { fork } = require('child_process');
const net = require('net');
const N = Number(process.env.KIDS || 4);
if (process.argv[2] === 'child') {
  const lean = process.env.ECHO === 'lean' ? require('./lean-promise-echo').leanEcho : undefined;
  process.on('message', (m, srv) => {
    if (!srv) return;
    srv.on('connection', (sock) => {
      if (lean) { sock.setNoDelay(true); return void lean(sock); }
      sock.on('data', (d) => sock.write(d)); sock.on('end', () => sock.end());
    });
  });
  process.on('disconnect', () => process.exit(0));
  return;
}
const srv = net.createServer({ allowHalfOpen: true });
srv.listen(0, '127.0.0.1', () => {
  const kids = [];
  for (let i = 0; i < N; i++) { const c = fork(__filename, ['child']); kids.push(c); c.send('server', srv); }
  setTimeout(() => { srv.close(); console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address()?.port ?? port })); }, 300);
  var port = srv.address().port;
});
process.on('SIGTERM', () => process.exit(0));
