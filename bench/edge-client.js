'use strict';
/**
 * The edge bench's load generator (run pinned to its own CPU by bench/edge.js):
 *   node edge-client.js pingpong-tls <port> <seconds> <connections>   TLS keep-alive, 64-byte lines, one in flight each
 *   node edge-client.js connect-tls  <port> <seconds> <parallel>      a full TLS handshake per connection (no resumption)
 *   node edge-client.js connect      <port> <seconds> <parallel> [v1] one line per TCP connection, with a PROXY v1 header when v1
 * Prints { ops, seconds, rate } as one JSON line.
 */
const net = require('node:net');
const tls = require('node:tls');

const [mode, portText, secondsText, nText, header] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const n = Number(nText);
const LINE = Buffer.from(`${'x'.repeat(63)}\n`);
let ops = 0;
let stop = false;

function lineOver(socket) {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d) => {
      got += d.length;
      if (got >= LINE.length) {
        socket.off('data', onData);
        socket.off('error', reject); // one listener per round trip would pile up on a keep-alive socket
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(LINE);
  });
}

function open(secure) {
  return new Promise((resolve, reject) => {
    const s = secure
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
      : net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

async function pingpong() {
  const s = await open(true);
  while (!stop) {
    await lineOver(s);
    ops++;
  }
  s.destroy();
}

async function connectLoop(secure) {
  const prefix = header === 'v1' ? Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 40000 6380\r\n') : null;
  while (!stop) {
    const s = await open(secure);
    if (prefix) s.write(prefix);
    await lineOver(s);
    s.destroy();
    ops++;
  }
}

(async () => {
  const work = mode === 'pingpong-tls' ? pingpong : () => connectLoop(mode === 'connect-tls');
  const started = Date.now();
  setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(Array.from({ length: n }, () => work()));
  const elapsed = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ ops, seconds: elapsed, rate: ops / elapsed }));
})().catch((err) => {
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exit(1);
});
