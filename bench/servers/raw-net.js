'use strict';
// Anchor: the tightest line echo Node's net allows (echo each chunk as it comes; the load sends whole lines).
const net = require('node:net');
const where = process.argv[2] === 'unix' ? { path: process.env.BENCH_PATH } : { port: 0, host: '127.0.0.1' };
const server = net.createServer({ noDelay: true }, (s) => {
  s.on('data', (d) => s.write(d));
  s.on('error', () => undefined);
});
server.listen(where, () => console.log(JSON.stringify(where.path ? { path: where.path } : { host: '127.0.0.1', port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
