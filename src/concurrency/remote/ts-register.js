'use strict';
/**
 * The TypeScript loader sockserve puts into worker threads and child processes when the handler's
 * module (or sockserve itself) runs from .ts sources. It transpiles each file on its own, with the
 * decorator options sockserve needs, and keeps the output in a cache keyed by path, size, mtime and
 * TypeScript version: TypeScript's warm-up costs seconds, so only the first worker pays it.
 * Plain JavaScript, because it must load before anything can compile TypeScript.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');

const cacheDir = path.join(os.tmpdir(), `sockserve-ts-cache-${process.getuid ? process.getuid() : 'user'}`);
let ts;
let tsVersion;

function typescript() {
  if (!ts) ts = require(require.resolve('typescript', { paths: [process.cwd(), __dirname] }));
  return ts;
}

function version() {
  if (tsVersion === undefined) {
    try {
      const pkg = require.resolve('typescript/package.json', { paths: [process.cwd(), __dirname] });
      tsVersion = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
    } catch {
      tsVersion = 'unknown';
    }
  }
  return tsVersion;
}

function compile(filename) {
  const t = typescript();
  const out = t.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: {
      module: t.ModuleKind.CommonJS,
      target: t.ScriptTarget.ES2022,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      useDefineForClassFields: false,
      esModuleInterop: true,
      inlineSourceMap: true,
    },
  });
  return out.outputText;
}

function load(module, filename) {
  const stat = fs.statSync(filename);
  const key = crypto.createHash('sha1').update(`${filename}\0${stat.size}\0${stat.mtimeMs}\0${version()}\0v1`).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  let code;
  try {
    code = fs.readFileSync(cached, 'utf8');
  } catch {
    code = compile(filename);
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, cached); // atomic: a concurrent worker reads a whole file or none
    } catch {
      // an unwritable cache only costs speed
    }
  }
  module._compile(code, filename);
}

for (const ext of ['.ts', '.mts', '.cts']) {
  if (!require.extensions[ext]) require.extensions[ext] = load;
}

// A handler's stack trace names its .ts lines, as ts-node's do in the server's process: the inline source
// maps above are read by Node only once source maps are on (Node's --enable-source-maps; Node 16.6+).
// Without it a worker's traceback named the .ts file with the compiled JavaScript's line (new-user run).
if (typeof process.setSourceMapsEnabled === 'function') process.setSourceMapsEnabled(true);

/**
 * TypeScript written for ES modules (moduleResolution node16/nodenext) names its relative imports by their
 * compiled file: `./store.js` for `./store.ts`. Compiled here to CommonJS, that `require('./store.js')`
 * finds no file; it then takes the TypeScript source, as ts-node and jest's moduleNameMapper do. Only for
 * relative imports from a TypeScript file, and only when the JavaScript file is not there.
 */
const Module = require('node:module');
if (!Module._resolveFilename.sockserveTs) {
  const resolve = Module._resolveFilename;
  const resolveTs = function (request, parent, ...rest) {
    try {
      return resolve.call(this, request, parent, ...rest);
    } catch (err) {
      const named = /^(\.{1,2}[\\/].*)\.(m|c)?js$/.exec(request);
      if (!named || err.code !== 'MODULE_NOT_FOUND' || !/\.[mc]?ts$/.test((parent && parent.filename) || '')) throw err;
      return resolve.call(this, `${named[1]}.${named[2] || ''}ts`, parent, ...rest);
    }
  };
  resolveTs.sockserveTs = true;
  Module._resolveFilename = resolveTs;
}
