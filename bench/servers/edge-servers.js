'use strict';
/**
 * Servers of the edge bench (bench/edge.js), one per process:
 *   node edge-servers.js raw-tls            Node's tls.createServer echo: the TLS anchor
 *   node edge-servers.js sockserve-tls      @TcpServer({ tls }) @Concurrent line echo
 *   node edge-servers.js sockserve-tls-messages  the same with @Framing('lines') and a synchronous @OnMessage
 *   node edge-servers.js sockserve-plain    @TcpServer @Concurrent line echo (the PROXY-off twin)
 *   node edge-servers.js sockserve-proxy    @TcpServer({ proxyProtocol: true }) @Concurrent line echo
 *   node edge-servers.js sockserve-tls-threading   @TcpServer({ tls }) @Threading({ threads: 2 }) line echo
 *   node edge-servers.js sockserve-tls-forking     @TcpServer({ tls }) @Forking({ children: 2 }) line echo
 *   node edge-servers.js cluster-tls        the raw tls echo in two processes of Node's cluster, each accepting
 *                                           from the shared socket (SCHED_NONE, as @Forking's children do): the
 *                                           floor of a pool of processes on this machine
 * Prints its address as one JSON line once listening. The handler classes are exported, and the start-up
 * guarded by isWorker(), because threads and children load this module again by path.
 */
require('reflect-metadata');
const fs = require('node:fs');
const path = require('node:path');
const tls = require('node:tls');
const { bootstrap, Concurrent, Forking, Framing, Handle, isWorker, OnMessage, TcpServer, Threading } = require('sockserve');

const certs = path.join(__dirname, '..', '..', 'test', 'fixtures', 'certs');
const TLS = { key: fs.readFileSync(path.join(certs, 'server.key')), cert: fs.readFileSync(path.join(certs, 'server.crt')) };
const kind = process.argv[2];

function echoHandler(name, options, concurrency = Concurrent()) {
  const Handler = class {};
  Object.defineProperty(Handler, 'name', { value: name });
  Handler.prototype.handle = async function handle(req) {
    for await (const line of req.rfile) await req.wfile.write(line);
  };
  Handle()(Handler.prototype, 'handle', Object.getOwnPropertyDescriptor(Handler.prototype, 'handle'));
  concurrency(Handler);
  TcpServer({ port: 0, backlog: 511, ...options })(Handler);
  return Handler;
}

/** The same echo on the message API (`@Framing('lines')`, a synchronous `@OnMessage`): sockserve's fast path. */
function messageHandler(name, options) {
  const Handler = class {};
  Object.defineProperty(Handler, 'name', { value: name });
  Handler.prototype.echo = function echo(line) {
    return line;
  };
  OnMessage()(Handler.prototype, 'echo', Object.getOwnPropertyDescriptor(Handler.prototype, 'echo'));
  Framing('lines')(Handler);
  Concurrent()(Handler);
  TcpServer({ port: 0, backlog: 511, ...options })(Handler);
  return Handler;
}

const handlers = {
  'sockserve-tls': echoHandler('sockserve_tls', { tls: TLS }),
  'sockserve-tls-messages': messageHandler('sockserve_tls_messages', { tls: TLS }),
  'sockserve-plain': echoHandler('sockserve_plain', {}),
  'sockserve-proxy': echoHandler('sockserve_proxy', { proxyProtocol: true }),
  'sockserve-tls-threading': echoHandler('sockserve_tls_threading', { tls: TLS }, Threading({ threads: 2 })),
  'sockserve-tls-forking': echoHandler('sockserve_tls_forking', { tls: TLS }, Forking({ children: 2 })),
};
for (const Handler of Object.values(handlers)) exports[Handler.name] = Handler;

function rawTls(onListening) {
  const server = tls.createServer(TLS, (s) => {
    s.on('data', (d) => { if (!s.write(d)) s.pause(); });
    s.on('drain', () => s.resume());
    s.on('error', () => undefined);
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => onListening?.(server.address().port));
}

if (!isWorker()) (async () => {
  if (kind === 'raw-tls') return rawTls((port) => console.log(JSON.stringify({ host: '127.0.0.1', port })));
  if (kind === 'cluster-tls') {
    const cluster = require('node:cluster');
    if (!cluster.isPrimary) return rawTls();
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const workers = [cluster.fork(), cluster.fork()];
    let listening = 0;
    cluster.on('listening', (worker, address) => {
      if (++listening === workers.length) console.log(JSON.stringify({ host: '127.0.0.1', port: address.port }));
    });
    process.on('SIGTERM', () => {
      for (const worker of workers) worker.process.kill('SIGKILL');
      process.exit(0);
    });
    return;
  }
  const Handler = handlers[kind];
  if (!Handler) throw new Error(`edge-servers.js: unknown server ${kind}`);
  const server = await bootstrap(Handler, { handleSignals: true });
  console.log(JSON.stringify(server.serverAddress));
  await server.serveForever();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
if (!isWorker()) process.on('SIGTERM', () => process.exit(0));
