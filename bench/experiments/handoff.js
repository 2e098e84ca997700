// Experiment (not part of npm run bench): the smallest prefork hand-off, the design @Forking uses. The parent accepts
// and child.send()s each connection to an idle child of KIDS (4); children echo and say done. Prints its address.
const { fork } = require('child_process');
const net = require('net');
const N = Number(process.env.KIDS || 4);
const ser = process.env.SER || 'json';
if (process.argv[2] === 'child') {
  process.on('message', (m, sock) => {
    if (!sock) return;
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end());
    sock.on('close', () => process.send({ t: 'done' }));
    sock.resume();
  });
  process.on('disconnect', () => process.exit(0));
  return;
}
const idle = [], waiting = [];
for (let i = 0; i < N; i++) {
  const c = fork(__filename, ['child'], { serialization: ser });
  c.on('message', () => { const w = waiting.shift(); if (w) give(c, w); else idle.push(c); });
  idle.push(c);
}
function give(c, s) { c.send({ t: 'conn' }, s, { keepOpen: false }); }
const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => { const c = idle.pop(); if (c) give(c, s); else waiting.push(s); });
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
