// Experiment (not part of npm run bench): the floor of a promise-shaped API, a keep-alive line echo that awaits
// each line and each write and does nothing else. Prints its address.
const net = require('net');
const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, async (s) => {
  let buf = Buffer.alloc(0), wake = null, eof = false;
  s.on('data', (c) => { buf = buf.length ? Buffer.concat([buf, c]) : c; const w = wake; wake = null; w && w(); });
  s.on('end', () => { eof = true; const w = wake; wake = null; w && w(); });
  s.on('error', () => {});
  s.resume();
  const readline = async () => { for (;;) { const i = buf.indexOf(10); if (i >= 0) { const l = buf.subarray(0, i + 1); buf = buf.subarray(i + 1); return l; } if (eof) return null; await new Promise((r) => (wake = r)); } };
  const write = (b) => new Promise((res) => { s.write(b, () => {}); if (s.writableLength === 0) res(); else s.once('drain', res); });
  for (let l; (l = await readline()) !== null;) await write(l);
  s.end();
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
