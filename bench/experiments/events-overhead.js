'use strict';
/**
 * What sockserve's event publishing costs per connection, measured in-process, without sockets: the
 * calls the server makes for one connection and its request (connection.open, the request with
 * request.start/end and the tracing channel, connection.close), with nobody subscribed, then with one
 * subscriber to every channel. Run `npm run build` first, then
 *   node bench/experiments/events-overhead.js                 (events on)
 *   SOCKSERVE_EVENTS=0 node bench/experiments/events-overhead.js   (compiled out)
 * Prints nanoseconds per connection (median of 7 rounds). Compare with a connection's cost in the
 * connrate workload (hundreds of microseconds of server CPU on this machine).
 */
const dc = require('node:diagnostics_channel');
const ev = require('../../dist/observability/events');

const client = { host: '127.0.0.1', port: 5000, family: 'IPv4' };
const server = {};
const done = Promise.resolve();
const bytes = () => [64, 64];

async function oneConnection() {
  const socket = {};
  ev.connectionOpened(server, socket, client);
  if (ev.requestObserved()) await ev.traceRequest(server, client, () => done, bytes);
  else await done;
  ev.connectionClosed(server, socket, 64, 64);
}

async function round(n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await oneConnection();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function measure(label) {
  await round(20000); // warm-up
  const rounds = [];
  for (let r = 0; r < 7; r++) rounds.push(await round(100000));
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(40)} ${rounds[3].toFixed(0)} ns per connection`);
}

(async () => {
  const events = process.env.SOCKSERVE_EVENTS === '0' ? 'compiled out' : 'on';
  await measure(`events ${events}, no subscriber`);
  const note = () => undefined;
  for (const name of ['connection.open', 'connection.close', 'request.start', 'request.end', 'message', 'worker.start', 'worker.exit']) dc.subscribe(`sockserve:${name}`, note);
  if (typeof dc.tracingChannel === 'function') dc.tracingChannel('sockserve:request').subscribe({ start: note, end: note, asyncStart: note, asyncEnd: note, error: note });
  await measure(`events ${events}, one subscriber to all`);
})();
