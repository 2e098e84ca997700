'use strict';
/**
 * sockserve's bench handlers, one exported class per (workload, transport, mode). Workers load this
 * module again by path, so it only declares. Decorators are applied by hand (plain JS).
 */
require('reflect-metadata');
const {
  Concurrent, Forking, Handle, Threading, TcpServer, UdpServer, UnixStreamServer,
} = require('sockserve');

function burn(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* ~20 ms of CPU-bound work */ }
}

const bodies = {
  // keep-alive line echo
  echo: async function handle(req) {
    if (req.data) return req.wfile.write(req.data);
    for await (const line of req.rfile) await req.wfile.write(line);
  },
  // ~20 ms of synchronous work per request line, then a 5-byte reply
  burn: async function handle(req) {
    if (req.data) { burn(20); return req.wfile.write('done\n'); }
    for await (const _line of req.rfile) { burn(20); await req.wfile.write('done\n'); }
  },
};
const transports = {
  tcp: () => TcpServer({ port: 0, backlog: 511 }),
  udp: () => UdpServer(0),
  unix: () => UnixStreamServer({ path: process.env.BENCH_PATH || '/tmp/sockserve-bench.sock', backlog: 511 }),
};
const modes = {
  serial: null,
  concurrent: () => Concurrent(),
  threading: () => Threading({ threads: 2, maxThreads: 16 }),
  forking: () => Forking({ children: 2, maxChildren: 16 }),
};

for (const [body, handle] of Object.entries(bodies)) {
  for (const [transport, decorate] of Object.entries(transports)) {
    for (const [mode, concurrency] of Object.entries(modes)) {
      const name = `${body}_${transport}_${mode}`;
      const Handler = class {};
      Object.defineProperty(Handler, 'name', { value: name });
      Handler.prototype.handle = handle;
      Handle()(Handler.prototype, 'handle', Object.getOwnPropertyDescriptor(Handler.prototype, 'handle'));
      if (concurrency) concurrency()(Handler);
      decorate()(Handler);
      exports[name] = Handler;
    }
  }
}
