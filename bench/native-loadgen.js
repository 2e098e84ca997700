'use strict';
/**
 * The C load generator (bench/loadgen.c), built once into bench/.build/loadgen with the machine's C compiler
 * and rebuilt when the source is newer. Shared by `npm run bench` and `npm run bench:edge`.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const SRC = path.join(__dirname, 'loadgen.c');
const BIN = path.join(__dirname, '.build', 'loadgen');

/** `{ bin }` when the generator is built (or was already), else `{ bin: null, error }` (no C compiler, say). */
function buildLoadgen() {
  try {
    if (fs.existsSync(BIN) && fs.statSync(BIN).mtimeMs >= fs.statSync(SRC).mtimeMs) return { bin: BIN };
  } catch { /* rebuild */ }
  fs.mkdirSync(path.dirname(BIN), { recursive: true });
  const cc = spawnSync(process.env.CC || 'cc', ['-O2', '-o', BIN, SRC], { encoding: 'utf8' });
  if (cc.status === 0) return { bin: BIN };
  return { bin: null, error: (cc.error?.message ?? cc.stderr ?? '').split('\n')[0] };
}

module.exports = { buildLoadgen };
