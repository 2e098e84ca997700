'use strict';
/**
 * Fills the disk cache of sockserve's worker TypeScript loader (src/concurrency/remote/ts-register.js) for
 * every source file, in one process, compiling without running anything. When tests run sockserve from
 * its sources, each new worker thread or child process loads src/ through that loader; in a fresh clone the
 * cache is empty and the first workers each transpile all of src/ at once, which on a busy two-core machine
 * can outlast a test's timeout. Cheap when the cache is warm (no TypeScript is loaded then).
 * Used by jest's globalSetup (scripts/jest-global-setup.js).
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function sources(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(p));
    else if (/\.[cm]?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Returns false when the loader is not where it was (nothing to warm), true otherwise. Bounded: 120 s. */
function warmWorkerCache() {
  const register = path.join(root, 'src', 'concurrency', 'remote', 'ts-register.js');
  if (!fs.existsSync(register)) return false;
  // The samples too: tests run some of them in a process of their own with this loader (test/helpers/fixture-process.ts).
  const files = [...sources(path.join(root, 'src')), ...sources(path.join(root, 'samples')), ...sources(path.join(root, 'test', 'fixtures')).filter((f) => !f.includes(`${path.sep}packed-app${path.sep}`))];
  // The loader's extension handler compiles (or finds in the cache) and then calls module._compile: a no-op here.
  const script = `const load = require.extensions['.ts']; for (const f of JSON.parse(process.argv[1])) { try { load({ _compile() {} }, f); } catch {} }`;
  spawnSync(process.execPath, ['-r', register, '-e', script, JSON.stringify(files)], { cwd: root, stdio: 'ignore', timeout: 120000 });
  return true;
}

module.exports = { warmWorkerCache };

if (require.main === module) warmWorkerCache();
