'use strict';
/**
 * Builds dist/ (npm run build) when it is missing or older than a source file: samples and the package
 * tests load sockserve as an application does, through package.json `exports`, i.e. from dist/.
 * Cheap when dist/ is fresh (one stat per source file). Used by jest's globalSetup (scripts/jest-global-setup.js) and by `npm start`.
 *   node scripts/build-if-stale.js      # exits with tsc's status
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const stamp = path.join(root, 'dist', '.tsbuildinfo'); // written by every build (tsconfig.build.json)
const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newestMtime(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted or renamed file changes its folder's mtime
  for (const name of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, name)));
  return newest;
}

function isStale() {
  let built;
  try {
    built = fs.statSync(stamp).mtimeMs;
  } catch {
    return true;
  }
  return inputs.some((p) => newestMtime(path.join(root, p)) > built);
}

function buildIfStale() {
  if (!isStale()) return 0;
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit', timeout: 180000 });
  if (r.status === 0) fs.utimesSync(stamp, new Date(), new Date()); // tsc leaves an unchanged stamp as it was
  return r.status ?? 1;
}

/**
 * jest's globalSetup. A type error in src/ still emits dist/ (tsc reports it above, and the spec files that
 * import the file fail on it through ts-jest), so only a build that left no dist/ stops the whole run.
 */
module.exports = async function globalSetup() {
  const status = buildIfStale();
  if (status === 0) return;
  if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) throw new Error(`npm run build failed (status ${status}) and left no dist/`);
  process.stderr.write(`\nbuild-if-stale: tsc -p tsconfig.build.json exited with ${status}; dist/ was emitted anyway (see the errors above)\n`);
};

if (require.main === module) process.exitCode = buildIfStale();
