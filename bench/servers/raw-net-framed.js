'use strict';
/**
 * Anchors for the framing rows: echo servers on Node's `net` that frame by hand, as tight as a
 * careful Node programmer writes them, with backpressure as Node's docs do it.
 *   node raw-net-framed.js lines    each '\n'-terminated line is one message; the replies to the lines of
 *                                   one chunk go out in one write; a partial line waits for its end
 *   node raw-net-framed.js frames   4-byte big-endian length-prefixed frames, each echoed with its prefix
 */
const net = require('node:net');

const kind = process.argv[2];

function lines(s) {
  let partial = '';
  s.setEncoding('utf8');
  s.on('data', (d) => {
    const text = partial + d;
    const last = text.lastIndexOf('\n');
    if (last < 0) { partial = text; return; }
    partial = text.slice(last + 1);
    let out = '';
    for (const line of text.slice(0, last).split('\n')) out += line + '\n';
    if (!s.write(out)) s.pause();
  });
}

function frames(s) {
  let held = null; // bytes of an incomplete frame
  s.on('data', (d) => {
    let buf = held ? Buffer.concat([held, d]) : d;
    held = null;
    const out = [];
    let i = 0;
    while (buf.length - i >= 4) {
      const n = buf.readUInt32BE(i);
      if (buf.length - i - 4 < n) break;
      out.push(buf.subarray(i, i + 4 + n));
      i += 4 + n;
    }
    if (i < buf.length) held = buf.subarray(i);
    if (out.length > 0 && !s.write(out.length === 1 ? out[0] : Buffer.concat(out))) s.pause();
  });
}

const server = net.createServer({ noDelay: true }, (s) => {
  (kind === 'frames' ? frames : lines)(s);
  s.on('drain', () => s.resume());
  s.on('error', () => undefined);
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () =>
  console.log(JSON.stringify({ host: '127.0.0.1', port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
