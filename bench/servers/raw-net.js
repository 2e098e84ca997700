'use strict';
/**
 * Anchor: the tightest echo Node's `net` allows: each chunk is written back as it comes (the load
 * generator sends whole lines, one in flight per connection), with backpressure as Node's docs do it.
 *   node raw-net.js tcp|unix [echo|burn]     (unix: the path is in BENCH_PATH)
 * burn: the CPU-bound anchor; every line costs one burn() and is answered "done\n", in the main thread.
 */
const net = require('node:net');

const where = process.argv[2] === 'unix' ? { path: process.env.BENCH_PATH } : { port: 0, host: '127.0.0.1' };
const onConnection = process.argv[3] === 'burn'
  ? (s) => {
      const { burn } = require('./burn');
      s.on('data', (d) => {
        for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) { burn(); s.write('done\n'); }
      });
      s.on('error', () => undefined);
    }
  : (s) => {
      // write each chunk back as it comes; stop reading while the kernel's send buffer is full
      s.on('data', (d) => { if (!s.write(d)) s.pause(); });
      s.on('drain', () => s.resume());
      s.on('error', () => undefined);
    };

const server = net.createServer({ noDelay: true }, onConnection);
server.listen({ ...where, backlog: 511 }, () =>
  console.log(JSON.stringify(where.path ? { path: where.path } : { host: '127.0.0.1', port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
