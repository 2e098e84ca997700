'use strict';
/**
 * Servers of the edge bench (bench/edge.js), one per process:
 *   node edge-servers.js raw-tls            Node's tls.createServer echo: the TLS anchor
 *   node edge-servers.js sockserve-tls      @TcpServer({ tls }) @Concurrent line echo
 *   node edge-servers.js sockserve-plain    @TcpServer @Concurrent line echo (the PROXY-off twin)
 *   node edge-servers.js sockserve-proxy    @TcpServer({ proxyProtocol: true }) @Concurrent line echo
 * Prints its address as one JSON line once listening.
 */
require('reflect-metadata');
const fs = require('node:fs');
const path = require('node:path');
const tls = require('node:tls');
const { bootstrap, Concurrent, Handle, TcpServer } = require('sockserve');

const certs = path.join(__dirname, '..', '..', 'test', 'fixtures', 'certs');
const TLS = { key: fs.readFileSync(path.join(certs, 'server.key')), cert: fs.readFileSync(path.join(certs, 'server.crt')) };
const kind = process.argv[2];

function echoHandler(name, options) {
  const Handler = class {};
  Object.defineProperty(Handler, 'name', { value: name });
  Handler.prototype.handle = async function handle(req) {
    for await (const line of req.rfile) await req.wfile.write(line);
  };
  Handle()(Handler.prototype, 'handle', Object.getOwnPropertyDescriptor(Handler.prototype, 'handle'));
  Concurrent()(Handler);
  TcpServer({ port: 0, backlog: 511, ...options })(Handler);
  return Handler;
}

(async () => {
  if (kind === 'raw-tls') {
    const server = tls.createServer(TLS, (s) => {
      s.on('data', (d) => { if (!s.write(d)) s.pause(); });
      s.on('drain', () => s.resume());
      s.on('error', () => undefined);
    });
    server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => console.log(JSON.stringify({ host: '127.0.0.1', port: server.address().port })));
    return;
  }
  const options = { 'sockserve-tls': { tls: TLS }, 'sockserve-plain': {}, 'sockserve-proxy': { proxyProtocol: true } }[kind];
  if (!options) throw new Error(`edge-servers.js: unknown server ${kind}`);
  const server = await bootstrap(echoHandler(kind.replace('-', '_'), options), { handleSignals: true });
  console.log(JSON.stringify(server.serverAddress));
  await server.serveForever();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
