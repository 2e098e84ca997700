'use strict';
// Anchor: Node's cluster with 2 workers running the raw net echo (the primary hands out connections).
const cluster = require('node:cluster');
const net = require('node:net');
const port = Number(process.env.BENCH_PORT);
if (cluster.isPrimary) {
  let up = 0;
  for (let i = 0; i < 2; i++) cluster.fork().on('listening', () => ++up === 2 && console.log(JSON.stringify({ host: '127.0.0.1', port })));
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  net.createServer({ noDelay: true }, (s) => { s.on('data', (d) => s.write(d)); s.on('error', () => undefined); }).listen(port, '127.0.0.1');
}
