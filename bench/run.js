'use strict';
/**
 * `npm run bench` (quick, ~3 min) and `npm run bench -- --full [--node <path>]`.
 *
 * Every server runs as its own process (pinned to CPU 0 with taskset when there is one), driven by
 * bench/loadgen.js in another process (pinned to CPU 1). Servers of one workload are measured in
 * interleaved repetitions and the median is reported, as a ratio to the anchor measured in the same
 * run (raw Node net, or raw dgram for UDP), because this machine is shared and noisy. Writes
 * bench/results/<stamp>.json (every run), bench/results/latest.md and bench/results/latest.svg.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const FULL = args.includes('--full');
const nodeAt = args.indexOf('--node');
const SERVER_NODE = nodeAt >= 0 ? path.resolve(args[nodeAt + 1]) : process.execPath;
const SECONDS = FULL ? 3 : 1;
const REPS = FULL ? 5 : 3;
const ROOT = path.join(__dirname, '..');
const SERVERS = path.join(__dirname, 'servers');
const TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && os.cpus().length > 1;
const PYTHON = spawnSync('python3', ['-c', 'import socketserver']).status === 0 ? 'python3' : null;
const TICK = 100; // USER_HZ on Linux
const children = new Set();

const pinned = (cpu, cmd, argv) => (TASKSET ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv]);

// ---- servers ----

const sock = (body, transport, mode) => ({ name: `sockserve ${mode}`, cmd: SERVER_NODE, argv: [path.join(SERVERS, 'sockserve.js'), body, transport, mode] });
const py = (kind, body) => ({ name: `python ${kind}`, cmd: PYTHON, argv: [path.join(SERVERS, 'py_server.py'), kind, body], python: true });
const nestTcp = () => ({ name: 'NestJS TCP transport', cmd: SERVER_NODE, argv: [path.join(SERVERS, 'nest-tcp.mjs')], workload: 'nest' });
const rawNet = (transport = 'tcp') => ({ name: 'raw net', cmd: SERVER_NODE, argv: [path.join(SERVERS, 'raw-net.js'), transport], anchor: true });

async function startServer(spec) {
  const env = { ...process.env, BENCH_PATH: path.join(os.tmpdir(), `sockserve-bench-${process.pid}-${Math.random().toString(36).slice(2)}.sock`) };
  if (spec.cluster) env.BENCH_PORT = String(20000 + Math.floor(Math.random() * 20000));
  const [cmd, argv] = pinned(0, spec.cmd, spec.argv);
  const proc = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.add(proc);
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${spec.name} did not start`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(out.slice(0, nl)); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${spec.name} exited (${code}) before it was ready`)); });
  });
  return { proc, target: JSON.parse(line), pid: proc.pid, socketPath: env.BENCH_PATH };
}

async function stopServer(server) {
  const { proc } = server;
  try {
    if (proc.exitCode === null && proc.signalCode === null) await stopProcess(proc);
  } finally {
    children.delete(proc);
    fs.rmSync(server.socketPath, { force: true }); // a server killed before its close() leaves its socket file
  }
}

async function stopProcess(proc) {
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
  const hard = setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
  await exited;
  clearTimeout(hard);
  try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* the group is gone: nothing left behind */ }
}

// ---- /proc: CPU and RSS of a server's whole process tree (children and cluster workers included) ----

function procTable() {
  const table = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.push({ pid: Number(d), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) });
    } catch { /* exited meanwhile */ }
  }
  return table;
}
function tree(pid) {
  const table = procTable();
  const ids = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of table) if (!ids.has(p.pid) && ids.has(p.ppid)) { ids.add(p.pid); grew = true; }
  }
  const mine = table.filter((p) => ids.has(p.pid));
  return { ticks: mine.reduce((n, p) => n + p.ticks, 0), rssMB: (mine.reduce((n, p) => n + p.rssPages, 0) * 4096) / 1e6 };
}

// ---- one measurement ----

function loadgen(opts) {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = pinned(1, process.execPath, [path.join(__dirname, 'loadgen.js'), JSON.stringify(opts)]);
    const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(p);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), (opts.seconds + 30) * 1000);
    p.once('exit', () => {
      clearTimeout(timer);
      children.delete(p);
      try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch (e) { reject(new Error(`loadgen gave no result: ${out}`)); }
    });
  });
}

async function measure(server, workload, conns, extra = {}) {
  const before = tree(server.pid);
  const t0 = Date.now();
  const r = await loadgen({ workload, target: server.target, conns, seconds: SECONDS, ...extra });
  const wall = (Date.now() - t0) / 1000;
  const after = tree(server.pid);
  return { ...r, serverCpu: (after.ticks - before.ticks) / TICK / wall, serverRssMB: after.rssMB };
}

/** Idle connections: server RSS per connection, from the RSS with `conns` open minus the RSS before. */
async function measureIdle(server, conns) {
  const before = tree(server.pid).rssMB;
  const [cmd, argv] = pinned(1, process.execPath, [path.join(__dirname, 'loadgen.js'), JSON.stringify({ workload: 'idle', target: server.target, conns, seconds: 0 })]);
  const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(p);
  await new Promise((resolve) => p.stdout.on('data', (d) => String(d).includes('"up"') && resolve()));
  await new Promise((r) => setTimeout(r, 500));
  const after = tree(server.pid).rssMB;
  p.stdin.end();
  await new Promise((r) => p.once('exit', r));
  children.delete(p);
  return { rate: conns, rssPerConnKB: ((after - before) * 1000) / conns, serverRssMB: after };
}

// ---- the plan ----

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };

function plan() {
  const groups = [
    { id: 'tcp16', title: 'TCP ping-pong, 64-byte lines, 16 connections (req/s)', workload: 'pingpong', conns: 16,
      servers: [rawNet(), { name: 'node cluster (2 workers)', cmd: SERVER_NODE, argv: [path.join(SERVERS, 'cluster.js')], cluster: true },
        sock('echo', 'tcp', 'concurrent'), sock('echo', 'tcp', 'threading'), sock('echo', 'tcp', 'forking'),
        py('ThreadingTCPServer', 'echo'), py('ForkingTCPServer', 'echo'), nestTcp()] },
    { id: 'tcp1', title: 'TCP ping-pong, 64-byte lines, 1 connection (req/s)', workload: 'pingpong', conns: 1,
      servers: [rawNet(), sock('echo', 'tcp', 'serial'), sock('echo', 'tcp', 'concurrent'), sock('echo', 'tcp', 'threading'), py('TCPServer', 'echo'), nestTcp()] },
    { id: 'stream', title: 'Streaming 64 KiB lines, 1 connection (MB/s)', workload: 'stream', conns: 1, unit: 'mbps',
      servers: [rawNet(), sock('echo', 'tcp', 'concurrent'), sock('echo', 'tcp', 'threading'), sock('echo', 'tcp', 'forking')] },
    { id: 'connrate', title: 'Connection rate: connect, one echo, close; 4 clients (conn/s)', workload: 'connrate', conns: 4,
      servers: [rawNet(), sock('echo', 'tcp', 'concurrent'), sock('echo', 'tcp', 'threading'), sock('echo', 'tcp', 'forking'), py('ThreadingTCPServer', 'echo')] },
    { id: 'udp1', title: 'UDP ping-pong, 1 client (req/s)', workload: 'udp', conns: 1,
      servers: [{ ...rawNet(), name: 'raw dgram', argv: [path.join(SERVERS, 'raw-dgram.js')] }, sock('echo', 'udp', 'serial'), sock('echo', 'udp', 'concurrent'), py('UDPServer', 'echo')] },
    { id: 'udp16', title: 'UDP ping-pong, 16 clients (req/s)', workload: 'udp', conns: 16,
      servers: [{ ...rawNet(), name: 'raw dgram', argv: [path.join(SERVERS, 'raw-dgram.js')] }, sock('echo', 'udp', 'concurrent'), sock('echo', 'udp', 'threading'), py('UDPServer', 'echo')] },
    { id: 'unix16', title: 'Unix stream ping-pong, 16 connections (req/s)', workload: 'pingpong', conns: 16,
      servers: [rawNet('unix'), sock('echo', 'unix', 'concurrent'), sock('echo', 'unix', 'threading')] },
    { id: 'cpu', title: 'CPU-bound handler (~20 ms per request), 8 clients (req/s); ratio to sockserve serial', workload: 'pingpong', conns: 8, payload: 'burn', seconds: FULL ? 4 : 2,
      servers: [{ ...sock('burn', 'tcp', 'serial'), anchor: true }, sock('burn', 'tcp', 'concurrent'), sock('burn', 'tcp', 'threading'), sock('burn', 'tcp', 'forking'), py('ThreadingTCPServer', 'burn'), py('ForkingTCPServer', 'burn')] },
  ];
  for (const g of groups) g.servers = g.servers.filter((s) => !s.python || PYTHON);
  return groups;
}

async function runGroup(g, results) {
  const started = [];
  try {
    for (const spec of g.servers) {
      try { started.push({ spec, server: await startServer(spec), runs: [] }); }
      catch (err) { started.push({ spec, error: String(err.message).split('\n')[0], runs: [] }); }
    }
    for (let rep = 0; rep < REPS; rep++) {
      for (const s of started) {
        if (!s.server) continue;
        try { s.runs.push(await measure(s.server, s.spec.workload ?? g.workload, g.conns, { payload: g.payload, seconds: g.seconds ?? SECONDS })); }
        catch (err) { s.error = String(err.message); }
      }
    }
  } finally {
    await Promise.all(started.filter((s) => s.server).map((s) => stopServer(s.server)));
  }
  const key = g.unit ?? 'rate';
  const rows = started.map((s) => ({
    server: s.spec.name,
    anchor: Boolean(s.spec.anchor),
    error: s.error,
    value: median(s.runs.map((r) => r[key])),
    p50us: median(s.runs.map((r) => r.p50us)),
    p99us: median(s.runs.map((r) => r.p99us)),
    serverCpu: median(s.runs.map((r) => r.serverCpu)),
    serverRssMB: median(s.runs.map((r) => r.serverRssMB)),
    loadgenCpu: median(s.runs.map((r) => r.loadgenCpu)),
    runs: s.runs,
  }));
  const anchor = rows.find((r) => r.anchor)?.value;
  for (const r of rows) r.ratio = anchor && r.value != null ? r.value / anchor : null;
  results.push({ id: g.id, title: g.title, unit: key, rows });
}

async function runIdle(results) {
  const counts = FULL ? [1000, 10000] : [1000];
  for (const n of counts) {
    const rows = [];
    for (const spec of [rawNet(), sock('echo', 'tcp', 'concurrent')]) {
      const server = await startServer(spec);
      try { rows.push({ server: spec.name, anchor: Boolean(spec.anchor), ...(await measureIdle(server, n)) }); }
      finally { await stopServer(server); }
    }
    const base = rows.find((r) => r.anchor).rssPerConnKB;
    for (const r of rows) r.ratio = base > 0 ? r.rssPerConnKB / base : null;
    results.push({ id: `idle${n}`, title: `${n} idle connections: server RSS per connection (KB; lower is better)`, unit: 'rssPerConnKB', rows });
  }
}

// ---- output ----

const fmt = (v, d = 0) => (v == null ? '–' : Number(v).toFixed(d));

function markdown(meta, results) {
  const lines = [`# sockserve benchmark`, '', `${meta.date} · ${meta.machine} · server Node ${meta.serverNode} · \`${meta.command}\``, '',
    `Medians of ${meta.reps} interleaved runs of ${meta.seconds} s; ratio = to the first row of each table, run in the same process tree at the same time.`,
    `Load generator pinned to its own CPU: ${meta.pinned ? 'yes (taskset)' : 'no'}. "gen sat." marks runs where the load generator itself used ≥ 90 % of a core, so the server may have had more to give.`, ''];
  for (const r of results) {
    lines.push(`## ${r.title}`, '', '| server | value | ratio | p50 µs | p99 µs | server CPU | server RSS MB | note |', '|---|---:|---:|---:|---:|---:|---:|---|');
    for (const row of r.rows) {
      const d = r.unit === 'mbps' ? 1 : r.unit === 'rssPerConnKB' ? 2 : 0;
      const note = row.error ? `not available: ${row.error}` : row.loadgenCpu >= 0.9 ? 'gen sat.' : '';
      lines.push(`| ${row.server} | ${fmt(row.value ?? row[r.unit], d)} | ${fmt(row.ratio, 2)} | ${fmt(row.p50us)} | ${fmt(row.p99us)} | ${row.serverCpu == null ? '–' : fmt(row.serverCpu * 100) + ' %'} | ${fmt(row.serverRssMB, 1)} | ${note} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function svg(results) {
  const picks = ['tcp16', 'tcp1', 'stream', 'connrate', 'udp16', 'unix16', 'cpu'];
  const bars = [];
  for (const id of picks) {
    const r = results.find((x) => x.id === id);
    if (!r) continue;
    for (const row of r.rows) if (!row.anchor && row.ratio != null && row.server.startsWith('sockserve')) bars.push({ label: `${id}: ${row.server.replace('sockserve ', '')}`, ratio: row.ratio });
  }
  const W = 640, rowH = 20, left = 190, max = Math.max(2, ...bars.map((b) => b.ratio));
  const x = (v) => left + (v / max) * (W - left - 50);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${bars.length * rowH + 40}" font-family="sans-serif" font-size="12">`,
    `<text x="${left}" y="14">sockserve / anchor in the same run (1.0 = raw Node net or dgram; cpu: serial)</text>`];
  bars.forEach((b, i) => {
    const y = 24 + i * rowH;
    out.push(`<text x="${left - 6}" y="${y + 13}" text-anchor="end">${b.label}</text>`,
      `<rect x="${left}" y="${y + 2}" width="${x(b.ratio) - left}" height="${rowH - 6}" fill="${b.ratio >= 1 ? '#3a7' : '#58c'}"/>`,
      `<text x="${x(b.ratio) + 4}" y="${y + 13}">${b.ratio.toFixed(2)}×</text>`);
  });
  out.push(`<line x1="${x(1)}" y1="20" x2="${x(1)}" y2="${bars.length * rowH + 30}" stroke="#c33" stroke-dasharray="3,3"/>`, '</svg>');
  return out.join('\n');
}

async function main() {
  const t0 = Date.now();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('run `npm run build` first (npm run bench does)');
  const serverNode = spawnSync(SERVER_NODE, ['--version']).stdout.toString().trim();
  const meta = {
    date: new Date().toISOString(), machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`,
    serverNode, loadgenNode: process.version, command: `npm run bench${FULL ? ' -- --full' : ''}${nodeAt >= 0 ? ` -- --node ${args[nodeAt + 1]}` : ''}`,
    reps: REPS, seconds: SECONDS, pinned: TASKSET, python: PYTHON ? spawnSync(PYTHON, ['--version']).stdout.toString().trim() : 'not present: Python rows skipped',
    nest: 'NestJS 12 TCP microservice, @MessagePattern echo; its own <len>#<json> framing, one request in flight per connection',
  };
  const results = [];
  for (const g of plan()) {
    process.stderr.write(`bench: ${g.title}\n`);
    await runGroup(g, results);
  }
  process.stderr.write('bench: idle connections\n');
  await runIdle(results);
  meta.seconds = SECONDS;
  meta.elapsedSeconds = Math.round((Date.now() - t0) / 1000);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify({ meta, results }, null, 2));
  const md = markdown(meta, results);
  fs.writeFileSync(path.join(dir, 'latest.md'), md + '\n');
  fs.writeFileSync(path.join(dir, 'latest.svg'), svg(results) + '\n');
  console.log(md);
  console.log(`\nbench: ${meta.elapsedSeconds} s; results in bench/results/`);
}

function cleanup() {
  for (const p of children) { try { process.kill(-p.pid, 'SIGKILL'); } catch { try { p.kill('SIGKILL'); } catch { /* gone */ } } }
}
if (require.main === module) {
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  process.on('exit', cleanup);
  main().catch((err) => { console.error(err); process.exitCode = 1; });
}
module.exports = { startServer, stopServer, rawNet, sock, measure };
