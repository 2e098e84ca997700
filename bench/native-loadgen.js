'use strict';
/**
 * The C load generators, built once into bench/.build/ with the machine's C compiler and rebuilt when the
 * source is newer: bench/loadgen.c (plain TCP, Unix and UDP; shared by `npm run bench` and `npm run
 * bench:edge`) and bench/tlsgen.c (TLS handshakes and ping-pong for `npm run bench:edge`, linked with
 * OpenSSL's libssl and libcrypto, so it needs their headers: Debian's `libssl-dev`).
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** `{ bin }` when bench/<name>.c is built (or was already), else `{ bin: null, error }` (no C compiler, say). */
function build(name, libraries = []) {
  const src = path.join(__dirname, `${name}.c`);
  const bin = path.join(__dirname, '.build', name);
  try {
    if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return { bin };
  } catch { /* rebuild */ }
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const cc = spawnSync(process.env.CC || 'cc', ['-O2', '-o', bin, src, ...libraries], { encoding: 'utf8' });
  if (cc.status === 0) return { bin };
  return { bin: null, error: (cc.error?.message ?? cc.stderr ?? '').split('\n')[0] };
}

/** bench/loadgen.c. */
const buildLoadgen = () => build('loadgen');
/** bench/tlsgen.c (OpenSSL). */
const buildTlsgen = () => build('tlsgen', ['-lssl', '-lcrypto', '-lpthread']);

module.exports = { buildLoadgen, buildTlsgen };
