'use strict';
/**
 * Anchor: Node's `cluster` with 2 workers, each running the raw `net` echo; the primary accepts and
 * hands connections out round-robin (Node's default on Linux). listen(0) in the workers: the primary
 * binds one port for both, which the first 'listening' reports.
 */
const cluster = require('node:cluster');
const net = require('node:net');

if (cluster.isPrimary) {
  let up = 0;
  for (let i = 0; i < 2; i++) {
    cluster.fork().on('listening', (address) => {
      if (++up === 2) console.log(JSON.stringify({ host: '127.0.0.1', port: address.port }));
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('data', (d) => { if (!s.write(d)) s.pause(); });
    s.on('drain', () => s.resume());
    s.on('error', () => undefined);
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
}
