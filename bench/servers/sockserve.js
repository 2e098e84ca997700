'use strict';
/**
 * A sockserve server for the bench:   node sockserve.js <echo|burn> <tcp|udp|unix> <serial|concurrent|threading|forking>
 * Prints its address as one JSON line once bound, or {"error": "<first line>"} when bootstrap()
 * rejects (a mode that is not available yet), and exits 1. The handler classes live in handlers.js,
 * which only declares, so that threads and children can load it again by path.
 */
require('reflect-metadata');
const { bootstrap } = require('sockserve');
const handlers = require('./handlers');

const [body, transport, mode] = process.argv.slice(2);

// BENCH_SUBSCRIBE=1: one subscriber to every sockserve channel and to the request tracing channel,
// each doing what a metrics exporter does at least (reading a field), for the events workloads.
if (process.env.BENCH_SUBSCRIBE === '1') {
  const dc = require('node:diagnostics_channel');
  let seen = 0;
  const note = (m) => { seen += m && m.durationMs !== undefined ? 1 : 0; };
  for (const name of ['connection.open', 'connection.close', 'request.start', 'request.end', 'message', 'worker.start', 'worker.exit']) {
    dc.subscribe(`sockserve:${name}`, note);
  }
  if (typeof dc.tracingChannel === 'function') {
    dc.tracingChannel('sockserve:request').subscribe({ start: note, end: note, asyncStart: note, asyncEnd: note, error: note });
  }
  process.on('exit', () => seen);
}
const Handler = handlers[`${body}_${transport}_${mode}`];

(async () => {
  let server;
  try {
    if (!Handler) throw new Error(`no bench handler ${body}_${transport}_${mode}`);
    server = await bootstrap(Handler, { handleSignals: true });
  } catch (err) {
    const first = String(err?.message ?? err).split('\n')[0];
    console.log(JSON.stringify({ error: `${err?.name ?? 'Error'}: ${first}` }));
    console.error(err);
    process.exit(1);
  }
  console.log(JSON.stringify(server.serverAddress));
  await server.serveForever();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
