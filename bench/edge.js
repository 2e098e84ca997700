'use strict';
/**
 * The production-edge bench:  npm run bench:edge  (or node bench/edge.js [--seconds s] [--reps n])
 *
 * TLS: 16 keep-alive connections ping-pong, and the connection rate with a full handshake each, for
 * sockserve @Concurrent with `tls` against Node's own tls.createServer in the same run; the ping-pong twice, on
 * the stream API (`for await (const line of req.rfile)`, an awaited write per line) and on the message API
 * (`@Framing('lines')` with a synchronous `@OnMessage`, the fast path), as the plain TCP rows measure both. PROXY: the
 * connection rate of sockserve @Concurrent with `proxyProtocol: true` (each connection sends a v1 header)
 * against the same server without it, driven by the C load generator (bench/loadgen.c: connect, the header in
 * its own send as HAProxy sends it, one line, half-close, read to EOF) when a C compiler is there, since the
 * Node client spends more on an extra write than the server spends on the header. The TLS rows are driven by
 * bench/tlsgen.c (OpenSSL, a thread per connection) when it builds: a Node tls client spends about as much CPU
 * per handshake as the server it drives (measured: 93 % of its core against the raw tls server's 75 %), so with
 * it those rows measured the client. TLS in workers: the handshake rate of @Threading({ threads: 2 }) and
 * @Forking({ children: 2 }) with `tls` (each worker terminates TLS on the sockets it owns) against the same
 * raw tls anchor, and beside them Node's own cluster of two processes running that raw tls echo (each accepting
 * from the shared socket, as @Forking's children do): what a pool of processes reaches on the machine at hand.
 * Servers are pinned to the first CPU, the client to the last (when taskset works), except
 * the pools, which are given every CPU: spreading handshakes over cores is what they are for; each figure is the median of interleaved repetitions, reported as a same-run ratio,
 * because the machine is shared and noisy. Needs `npm run build` first (sockserve resolves to dist/).
 */
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const SECONDS = opt('--seconds', 2);
const REPS = opt('--reps', 3);
const cpus = os.cpus().length;
const TASKSET = cpus > 1 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const children = new Set();
const NATIVE = require('./native-loadgen').buildLoadgen().bin;
const TLSGEN = require('./native-loadgen').buildTlsgen().bin;
/**
 * Seconds of warm-up per server and workload: connection rates run each connection's code a thousand times a
 * second or less (TLS), which V8 optimises late (a @Concurrent TLS server measured 690 handshakes/s in its first
 * 3 s and 1,000 in the next 3), and a pool's workers each see only their share.
 */
const WARM_UP = { 'tls-pingpong16': 1, 'tls-pingpong16-messages': 1, 'proxy-connections': 2 };
const WARM_UP_HANDSHAKES = 6;

function pinned(cpu, argv) {
  return TASKSET ? ['taskset', ['-c', String(cpu), process.execPath, ...argv]] : [process.execPath, argv];
}

/**
 * Servers given every CPU (worker pools); the others are pinned to CPU 0. `--pin-pools` pins the pools to
 * CPU 0 too: on a two-core machine the client needs the other core whole, and a pool spread over both takes
 * part of it from the client, so that row then measures the pools' overhead per connection instead.
 */
const UNPINNED = new Set(args.includes('--pin-pools') ? [] : ['sockserve-tls-threading', 'sockserve-tls-forking', 'cluster-tls']);

function startServer(kind) {
  return new Promise((resolve, reject) => {
    const script = [path.join(__dirname, 'servers', 'edge-servers.js'), kind];
    const [cmd, argv] = UNPINNED.has(kind) ? [process.execPath, script] : pinned(0, script);
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ proc, port: JSON.parse(out.split('\n')[0]).port });
    });
    proc.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
}

function client(argv) {
  if (argv[0] === 'native') return nativeClient(argv.slice(1));
  if (argv[0] === 'tlsgen') return tlsgenClient(argv.slice(1));
  const [cmd, a] = pinned(cpus - 1, [path.join(__dirname, 'edge-client.js'), ...argv.map(String)]);
  const r = spawnSync(cmd, a, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  const result = JSON.parse((r.stdout || '{}').trim().split('\n').pop() || '{}');
  if (result.error || !result.rate) throw new Error(`client ${argv.join(' ')}: ${result.error ?? r.stderr}`);
  return result.rate;
}

/** bench/loadgen.c: `[workload, port, seconds, connections, payload]`; its rate. */
function nativeClient([workload, port, seconds, conns, payload]) {
  return cClient('loadgen', NATIVE, [workload, String(conns), String(seconds), `127.0.0.1:${port}`, payload, '0.1'], seconds);
}

/** bench/tlsgen.c: `[workload, port, seconds, connections]`; its rate. */
function tlsgenClient([workload, port, seconds, conns]) {
  return cClient('tlsgen', TLSGEN, [workload, String(conns), String(seconds), `127.0.0.1:${port}`, '0.1'], seconds);
}

/** Runs one of the C clients pinned to the last CPU; its rate, or throws when it failed or saw over 1 % errors. */
function cClient(name, bin, argv, seconds) {
  const options = { encoding: 'utf8', timeout: (seconds + 30) * 1000 };
  const r = TASKSET ? spawnSync('taskset', ['-c', String(cpus - 1), bin, ...argv], options) : spawnSync(bin, argv, options);
  const result = JSON.parse((r.stdout || '{}').trim().split('\n').pop() || '{}');
  if (!result.rate || result.errors > result.count / 100) throw new Error(`${name} ${argv.join(' ')}: ${r.stderr || r.stdout}`);
  return result.rate;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const servers = {};
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;
  for (const kind of ['raw-tls', 'sockserve-tls', 'sockserve-tls-messages', 'sockserve-plain', 'sockserve-proxy', 'sockserve-tls-threading', 'sockserve-tls-forking', 'cluster-tls']) servers[kind] = await startServer(kind);
  const handshakes = (p, k, secs) => (TLSGEN ? ['tlsgen', 'handshakes', p, secs, 8] : ['connect-tls', p, secs, 8]);
  const workloads = [
    { id: 'tls-pingpong16', unit: 'round trips/s', anchor: 'raw-tls', subject: 'sockserve-tls', argv: (p, k, secs) => (TLSGEN ? ['tlsgen', 'pingpong', p, secs, 16] : ['pingpong-tls', p, secs, 16]) },
    { id: 'tls-pingpong16-messages', unit: 'round trips/s', anchor: 'raw-tls', subject: 'sockserve-tls-messages', argv: (p, k, secs) => (TLSGEN ? ['tlsgen', 'pingpong', p, secs, 16] : ['pingpong-tls', p, secs, 16]) },
    { id: 'tls-handshakes', unit: 'connections/s', anchor: 'raw-tls', subject: 'sockserve-tls', argv: handshakes },
    { id: 'tls-handshakes-threading', unit: 'connections/s', anchor: 'raw-tls', subject: 'sockserve-tls-threading', argv: handshakes },
    { id: 'tls-handshakes-forking', unit: 'connections/s', anchor: 'raw-tls', subject: 'sockserve-tls-forking', argv: handshakes },
    { id: 'tls-handshakes-cluster', unit: 'connections/s', anchor: 'raw-tls', subject: 'cluster-tls', argv: handshakes },
    { id: 'proxy-connections', unit: 'connections/s', anchor: 'sockserve-plain', subject: 'sockserve-proxy',
      argv: NATIVE ? (p, k, secs) => ['native', 'connrate', p, secs, 8, k === 'sockserve-proxy' ? 'proxy' : 'echo'] : (p, k, secs) => ['connect', p, secs, 8, k === 'sockserve-proxy' ? 'v1' : ''] },
  ];
  const rows = [];
  for (const w of workloads) {
    if (only && !only.includes(w.id)) continue;
    const rates = { [w.anchor]: [], [w.subject]: [] };
    const warm = WARM_UP[w.id] ?? WARM_UP_HANDSHAKES;
    client(w.argv(servers[w.anchor].port, w.anchor, warm));
    client(w.argv(servers[w.subject].port, w.subject, warm));
    for (let rep = 0; rep < REPS; rep++) {
      for (const kind of [w.anchor, w.subject]) rates[kind].push(client(w.argv(servers[kind].port, kind, SECONDS)));
    }
    const anchor = median(rates[w.anchor]);
    const subject = median(rates[w.subject]);
    rows.push({ id: w.id, unit: w.unit, anchor: w.anchor, anchorRate: Math.round(anchor), subject: w.subject, subjectRate: Math.round(subject), ratio: +(subject / anchor).toFixed(2) });
  }
  console.log(`edge bench, ${SECONDS} s × ${REPS} reps, medians, node ${process.version}, ${cpus} CPUs, PROXY row driven by ${NATIVE ? 'bench/loadgen.c' : 'edge-client.js (no C compiler)'}, TLS rows by ${TLSGEN ? 'bench/tlsgen.c' : 'edge-client.js (tlsgen did not build: no C compiler or no OpenSSL headers)'}${TASKSET ? ' (server CPU 0, client CPU ' + (cpus - 1) + (UNPINNED.size ? '; pools on every CPU)' : '; pools on CPU 0 too)') : ''}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| workload | anchor | anchor rate | sockserve | sockserve rate | ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.id} (${r.unit}) | ${r.anchor} | ${r.anchorRate} | ${r.subject} | ${r.subjectRate} | ${r.ratio}× |`);
}

function cleanup() {
  for (const proc of children) {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(cleanup);
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
