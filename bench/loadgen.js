'use strict';
/**
 * The load generator in Node: one process, pinned by the driver to its own CPU. It drives one server
 * with one workload for a fixed time and prints one JSON line: the rate, p50/p99 latency in
 * microseconds, and its own CPU share (a share near 1 means the generator, not the server, may have
 * been the limit). The driver prefers loadgen.c (same workloads, same output, less CPU per request)
 * when a C compiler is present; the idle-connections workload always runs here.
 *
 *   node bench/loadgen.js '<json: { workload, target, conns, seconds, ... }>'
 */
const net = require('node:net');
const dgram = require('node:dgram');

const opts = JSON.parse(process.argv[2]);
const LINE = Buffer.from('x'.repeat(63) + '\n');

const latencies = [];
let count = 0;
let bytes = 0;
let errors = 0;
const ramp = opts.ramp ?? 0; // seconds run but not counted: a new connection's first round trips
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const measureFrom = Date.now() + ramp * 1000;
const deadline = measureFrom + opts.seconds * 1000;
const live = () => Date.now() < deadline;
const counting = () => Date.now() >= measureFrom;

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  const wall = Math.max(1e-3, total - ramp);
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : null);
  const out = {
    rate: count / wall,
    mbps: bytes / wall / 1e6,
    p50us: pct(0.5),
    p99us: pct(0.99),
    count,
    errors,
    loadgenCpu: (cpu.user + cpu.system) / 1e6 / total,
    loadgen: 'node',
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  // Half-close what is still open and read it to EOF (bounded), so servers see a clean end of input.
  let left = 0;
  for (const s of streams) {
    if (s.destroyed) continue;
    left++;
    s.removeAllListeners('data');
    s.on('data', () => undefined);
    s.once('close', () => { if (--left === 0) process.exit(0); });
    s.end();
  }
  if (left === 0) process.exit(0);
  setTimeout(() => process.exit(0), 2000);
}

const streams = new Set();
/** Stop using a stream connection: it is half-closed and drained by finish(). */
const retire = (s) => { s.removeAllListeners('data'); s.on('data', () => undefined); };

const connectOpts = () => (opts.target.path ? { path: opts.target.path } : { host: opts.target.host, port: opts.target.port });
const now = () => Number(process.hrtime.bigint() / 1000n);

/**
 * Keep-alive ping-pong on `opts.conns` connections, one request in flight on each. `framing()` is made
 * once per connection and gives `request()`, the next request to send, and `replies(bytes)`, how many
 * whole replies the bytes just received complete.
 */
function keepAlive(framing) {
  let open = opts.conns;
  for (let i = 0; i < opts.conns; i++) {
    const s = net.connect(connectOpts());
    streams.add(s);
    s.setNoDelay?.(true);
    const { request, replies } = framing();
    let sent = 0;
    const send = () => {
      sent = now();
      s.write(request());
    };
    s.on('connect', send);
    s.on('data', (d) => {
      for (let n = replies(d); n > 0; n--) {
        if (counting()) { count++; latencies.push(now() - sent); }
        if (live()) send();
        else {
          retire(s);
          if (--open === 0) finish();
          return;
        }
      }
    });
    s.on('error', () => { errors++; if (--open === 0) finish(); });
  }
}

/** Keep-alive ping-pong of 64-byte lines (or "burn\n" answered "done\n"). */
function pingpong() {
  const burn = opts.payload === 'burn';
  const size = burn ? 5 : 64;
  keepAlive(() => {
    let got = 0;
    return {
      request: () => (burn ? 'burn\n' : LINE),
      replies: (d) => {
        got += d.length;
        const whole = Math.floor(got / size);
        got -= whole * size;
        return whole;
      },
    };
  });
}

/**
 * Pipelined lines: each connection writes `opts.batch` (100) 64-byte lines in one write, waits for all
 * their replies, and writes the next batch; the rate counts lines. Latency is per batch.
 */
function pipeline() {
  const batch = opts.batch ?? 100;
  const block = Buffer.concat(Array.from({ length: batch }, () => LINE));
  keepAlive(() => {
    let got = 0;
    return {
      request: () => block,
      replies: (d) => {
        got += d.length;
        if (got < block.length) return 0;
        got -= block.length;
        if (counting()) count += batch - 1; // keepAlive counts the batch's last reply itself
        return 1;
      },
    };
  });
}

/**
 * Length-prefixed frames (4-byte big-endian prefix, `opts.size` bytes of body), `opts.window` in flight
 * per connection (1: ping-pong); counts frames and their bytes (MB/s).
 */
function frames() {
  const size = opts.size ?? 64;
  const window = opts.window ?? 1;
  const frame = Buffer.alloc(4 + size, 'z');
  frame.writeUInt32BE(size, 0);
  let open = opts.conns;
  for (let i = 0; i < opts.conns; i++) {
    const s = net.connect(connectOpts());
    streams.add(s);
    s.setNoDelay?.(true);
    let inflight = 0;
    let pending = 0;
    const sentAt = [];
    const pump = () => {
      while (inflight < window && live()) {
        inflight++;
        sentAt.push(now());
        s.write(frame);
      }
    };
    s.on('connect', pump);
    s.on('data', (d) => {
      const counted = counting();
      pending += d.length;
      while (pending >= frame.length) {
        pending -= frame.length;
        inflight--;
        const t = sentAt.shift();
        if (counted) { count++; bytes += frame.length; latencies.push(now() - t); }
      }
      if (live()) pump();
      else if (inflight === 0) {
        retire(s);
        if (--open === 0) finish();
      }
    });
    s.on('error', () => { errors++; if (--open === 0) finish(); });
  }
  setTimeout(() => finish(), (ramp + opts.seconds) * 1000 + 3000); // a stuck connection must not hang the run
}

/** One connection streaming 64 KiB lines, a window of 8 in flight; MB/s of echoed bytes. */
function stream() {
  const chunk = Buffer.alloc(64 * 1024, 'y');
  chunk[chunk.length - 1] = 0x0a;
  const s = net.connect(connectOpts());
  streams.add(s);
  let inflight = 0;
  const pump = () => {
    while (inflight < 8 && live()) {
      inflight++;
      s.write(chunk);
    }
  };
  s.on('connect', pump);
  let pending = 0;
  s.on('data', (d) => {
    const counted = counting();
    if (counted) bytes += d.length;
    pending += d.length;
    while (pending >= chunk.length) {
      pending -= chunk.length;
      inflight--;
      if (counted) count++;
    }
    if (live()) pump();
    else if (inflight === 0 || !live()) {
      retire(s);
      finish();
    }
  });
  s.on('error', finish);
}

/** Connection rate: each client connects, sends one line, reads the echo, closes, again. */
function connrate() {
  let open = opts.conns;
  const one = () => {
    if (!live()) {
      if (--open === 0) finish();
      return;
    }
    const t = now();
    const s = net.connect(connectOpts(), () => s.end(LINE));
    let got = 0;
    s.on('data', (d) => (got += d.length));
    s.on('close', () => {
      if (got >= 64) {
        if (counting()) { count++; latencies.push(now() - t); }
      } else errors++;
      one();
    });
    s.on('error', () => { errors++; });
  };
  for (let i = 0; i < opts.conns; i++) one();
}

/** UDP ping-pong: each client socket sends a datagram and waits for the reply (a lost one is resent after 200 ms). */
function udp() {
  let open = opts.conns;
  const type = opts.target.host.includes(':') ? 'udp6' : 'udp4';
  for (let i = 0; i < opts.conns; i++) {
    const s = dgram.createSocket(type);
    let sent = 0;
    let timer;
    const send = () => {
      sent = now();
      s.send(LINE, opts.target.port, opts.target.host);
      clearTimeout(timer);
      timer = setTimeout(send, 200);
    };
    s.on('message', () => {
      if (counting()) { count++; latencies.push(now() - sent); }
      if (live()) send();
      else {
        clearTimeout(timer);
        s.close();
        if (--open === 0) finish();
      }
    });
    s.bind(0, () => send());
  }
  setTimeout(() => finish(), (ramp + opts.seconds) * 1000 + 1500); // lost datagrams must not hang the run
}

/**
 * Idle connections, in steps (`steps: [100, 1000]`): open connections up to the next step, print
 * {"up": n}, wait for a line on stdin, go on; after the last step hold them until stdin closes.
 */
function idle() {
  const steps = opts.steps ?? [opts.conns];
  const sockets = [];
  let step = 0;
  let opening = 0;
  let up = 0;
  const openMore = () => {
    const goal = steps[step];
    while (opening < 64 && sockets.length < goal) {
      opening++;
      const s = net.connect(connectOpts(), () => {
        opening--;
        up++;
        if (up === goal) process.stdout.write(JSON.stringify({ up }) + '\n');
        else openMore();
      });
      s.on('error', (err) => { process.stderr.write(`loadgen idle: ${err.message}\n`); process.exit(3); });
      sockets.push(s);
    }
  };
  let pending = '';
  process.stdin.on('data', (d) => {
    pending += d;
    while (pending.includes('\n')) {
      pending = pending.slice(pending.indexOf('\n') + 1);
      if (step < steps.length - 1) { step++; openMore(); }
    }
  });
  process.stdin.on('end', () => process.exit(0));
  openMore();
}

/**
 * Slowloris: `conns` connections that each send one byte every 2 s and never a newline (the attack of
 * issues 12 and 13). Prints {"up": n} once every connection is open and has sent its first byte, then
 * trickles until stdin closes. A connection the server closes is counted, not reopened.
 */
function slowloris() {
  const sockets = [];
  let opening = 0;
  let up = 0;
  let closed = 0;
  const openMore = () => {
    while (opening < 64 && sockets.length < opts.conns) {
      opening++;
      const s = net.connect(connectOpts(), () => {
        opening--;
        s.write('x');
        if (++up === opts.conns) process.stdout.write(JSON.stringify({ up }) + '\n');
        else openMore();
      });
      s.on('error', () => undefined);
      s.on('close', () => closed++);
      s.on('data', () => undefined);
      sockets.push(s);
    }
  };
  const trickle = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('x'); }, 2000);
  process.stdin.resume();
  process.stdin.on('end', () => {
    clearInterval(trickle);
    process.stderr.write(JSON.stringify({ closedByServer: closed }) + '\n');
    process.exit(0);
  });
  openMore();
}

/** Ping-pong in NestJS's TCP framing: `<length>#{"pattern":"echo","data":…,"id":…}`, one request in flight per connection. */
function nest() {
  const data = 'x'.repeat(63);
  keepAlive(() => {
    let seq = 0;
    let buf = '';
    return {
      request: () => {
        const json = JSON.stringify({ pattern: 'echo', data, id: String(++seq) });
        return `${Buffer.byteLength(json)}#${json}`;
      },
      replies: (d) => {
        buf += d;
        let whole = 0;
        for (;;) {
          const hash = buf.indexOf('#');
          if (hash < 0) return whole;
          const len = Number(buf.slice(0, hash));
          if (buf.length < hash + 1 + len) return whole;
          buf = buf.slice(hash + 1 + len);
          whole++;
        }
      },
    };
  });
}

({ pingpong, pipeline, frames, stream, connrate, udp, idle, slowloris, nest })[opts.workload]();
