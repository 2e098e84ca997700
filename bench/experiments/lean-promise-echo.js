// The leanest await-per-line echo (`npm run bench` runs it as the "lean promise floor" row of tcp16, a reference): readline()
// returns a promise resolved from the data callback (readline itself is no async function, no extra await), write() a
// resolved promise when the kernel took the bytes; the connection's loop awaits both. Two awaits a request.
// `leanEcho(socket)` is exported for experiments/shared-accept.js (ECHO=lean: the same echo in a pool of children).
const net = require('net');

async function leanEcho(s) {
  let buf = null, wake = null, eof = false;
  s.on('data', (c) => {
    buf = buf ? Buffer.concat([buf, c]) : c;
    if (wake) { const i = buf.indexOf(10); if (i >= 0) { const w = wake; wake = null; const l = buf.subarray(0, i + 1); buf = i + 1 < buf.length ? buf.subarray(i + 1) : null; w(l); } }
  });
  s.on('end', () => { eof = true; if (wake) { const w = wake; wake = null; w(null); } });
  s.on('error', () => {});
  s.resume();
  const readline = () => {
    if (buf) { const i = buf.indexOf(10); if (i >= 0) { const l = buf.subarray(0, i + 1); buf = i + 1 < buf.length ? buf.subarray(i + 1) : null; return Promise.resolve(l); } }
    if (eof) return Promise.resolve(null);
    return new Promise((r) => (wake = r));
  };
  const write = (b) => { s.write(b); return s.writableLength === 0 ? Promise.resolve() : new Promise((r) => s.once('drain', r)); };
  for (let l; (l = await readline()) !== null;) await write(l);
  s.end();
}
exports.leanEcho = leanEcho;

if (require.main === module) {
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, leanEcho);
  srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: srv.address().port })));
  process.on('SIGTERM', () => process.exit(0));
}
