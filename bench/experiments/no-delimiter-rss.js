'use strict';
/**
 * Issue 14's memory bound: a client sends 100 MB without a newline to an @Framing('lines') server; the
 * server's peak RSS (VmHWM, reset before the run through /proc/<pid>/clear_refs) may grow by at most
 * maxLength + 1 MB. Runs the compiled package (`npm run build` first), once with the default maxLength
 * (64 KiB) and once with 16 MiB:
 *   node bench/experiments/no-delimiter-rss.js
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const kb = (field, pid) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function once(body, maxLength) {
  const server = spawn(process.execPath, [path.join(__dirname, '..', 'servers', 'sockserve.js'), body, 'tcp', 'concurrent'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const address = JSON.parse(await new Promise((resolve) => server.stdout.once('data', (d) => resolve(String(d).split('\n')[0]))));
    // a warm-up connection, so that the first connection's one-time costs are not counted
    await new Promise((resolve) => { const s = net.connect(address, () => s.end('warm\n')); s.on('data', () => undefined); s.on('close', resolve); });
    await new Promise((resolve) => setTimeout(resolve, 300));
    fs.writeFileSync(`/proc/${server.pid}/clear_refs`, '5'); // VmHWM := VmRSS
    const before = kb('VmHWM', server.pid);
    const socket = net.connect(address);
    socket.on('error', () => undefined);
    socket.resume();
    let open = true;
    const closed = new Promise((resolve) => socket.once('close', () => { open = false; resolve(); }));
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let sent = 0;
    while (open && sent < 100 * 1024 * 1024) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
    }
    socket.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    socket.destroy();
    const peak = kb('VmHWM', server.pid);
    const growthMB = (peak - before) / 1024;
    const boundMB = maxLength / 2 ** 20 + 1;
    console.log(JSON.stringify({ maxLength, sentMB: Math.round(sent / 2 ** 20), peakGrowthMB: Number(growthMB.toFixed(2)), boundMB: Number(boundMB.toFixed(2)), met: growthMB <= boundMB }));
  } finally {
    server.kill('SIGKILL');
  }
}

(async () => {
  await once('msglines', 64 * 1024);
  await once('msglong', 16 * 1024 * 1024);
})().catch((err) => { console.error(err); process.exitCode = 1; });
