'use strict';
/**
 * sockserve's bench handlers: one exported class per (body, transport, mode), e.g. `echo_tcp_concurrent`.
 * Threads and children load this module again by path (the file the decorators were applied in), so it
 * only declares: the start-up is in sockserve.js. Plain JS, so the decorators are applied by hand,
 * exactly as TypeScript's emit would apply them.
 */
require('reflect-metadata');
const {
  Concurrent, Forking, Framing, Handle, OnMessage, Threading, TcpServer, UdpServer, UnixStreamServer,
} = require('sockserve');
const { burn } = require('./burn');

const bodies = {
  // keep-alive line echo; a datagram is echoed whole
  echo: async function handle(req) {
    if (req.data) return req.wfile.write(req.data);
    for await (const line of req.rfile) await req.wfile.write(line);
  },
  // every request line costs one burn() (~20 ms of one core, synchronous), then a 5-byte reply
  burn: async function handle(req) {
    if (req.data) { burn(); return req.wfile.write('done\n'); }
    for await (const _line of req.rfile) { burn(); await req.wfile.write('done\n'); }
  },
};
const transports = {
  tcp: () => TcpServer({ port: 0, backlog: 511 }),
  udp: () => UdpServer(0),
  unix: () => UnixStreamServer({ path: process.env.BENCH_PATH || '/tmp/sockserve-bench.sock', backlog: 511 }),
};
// Pools: two workers (one per core of this machine), each an event loop serving many connections;
// `threading1` is Python's model (connectionsPerThread: 1): one connection per thread, the pool growing
// to 16 for the 16 keep-alive connections of the biggest workload.
const modes = {
  serial: null,
  concurrent: () => Concurrent(),
  threading: () => Threading({ threads: 2 }),
  forking: () => Forking({ children: 2 }),
  threading1: () => Threading({ threads: 2, connectionsPerThread: 1, maxThreads: 16 }),
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

// Message handlers (@Framing + a synchronous @OnMessage): `msglines_tcp_<mode>` echoes each line,
// `msgframes_tcp_<mode>` each 4-byte length-prefixed frame (at most 1 MiB).
const messageBodies = {
  msglines: { framing: () => Framing('lines'), on: function on(line) { return line; } },
  msgframes: { framing: () => Framing('length-prefixed', { lengthBytes: 4 }), on: function on(frame) { return frame; } },
  // lines of up to 16 MiB: for the nodelim rows (bench/run.js)
  msglong: { framing: () => Framing('lines', { maxLength: 16 * 1024 * 1024 }), on: function on(line) { return line.length; } },
};
for (const [body, { framing, on }] of Object.entries(messageBodies)) {
  for (const [mode, concurrency] of Object.entries(modes)) {
    const name = `${body}_tcp_${mode}`;
    const Handler = class {};
    Object.defineProperty(Handler, 'name', { value: name });
    Handler.prototype.on = on;
    OnMessage()(Handler.prototype, 'on', Object.getOwnPropertyDescriptor(Handler.prototype, 'on'));
    framing()(Handler);
    if (concurrency) concurrency()(Handler);
    transports.tcp()(Handler);
    exports[name] = Handler;
  }
}
