import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** sockserve's own folder (src/ when run from sources, dist/ when compiled): frames in it are skipped. */
const OWN_ROOT = path.resolve(__dirname, '..') + path.sep;
/**
 * Packages whose frames are skipped: reflect-metadata, and the helper libraries that apply decorators for
 * compiled code (tslib's `__decorate` with TypeScript's `importHelpers`, swc's and Babel's runtime helpers).
 */
const SKIPPED_PACKAGES = ['reflect-metadata', 'tslib', `@swc${path.sep}helpers`, `@babel${path.sep}runtime`].map(
  (name) => `${path.sep}node_modules${path.sep}${name}${path.sep}`,
);

/**
 * The file that applied a class decorator (or built a classic server): the first stack frame outside
 * sockserve, reflect-metadata, the decorator helper libraries (tslib, @swc/helpers, @babel/runtime) and Node's
 * internals. Worker threads and child processes load the handler class again from this file. TypeScript
 * emits its `__decorate` helper into the user's module, or calls tslib's with `importHelpers`; either way
 * the first other frame is the module that declares the class.
 *
 * The frames are V8's own call sites, read through a temporary `Error.prepareStackTrace`, never the
 * stack's text: `--enable-source-maps`, ts-node and jest rewrite that text to the original sources
 * (a `.ts` file the package may not ship, or that was never run), while `getFileName()` names the
 * script that really runs (checked on Node 20, 22, 24 and 26, with and without source maps, and in
 * jest's module sandbox). An ES module's frame is a `file://` URL; this returns a path for it.
 * Undefined when no frame qualifies (e.g. a class decorated from `eval`).
 */
export function callerFile(): string | undefined {
  for (const file of stackFiles()) {
    if (file.startsWith('node:') || file.startsWith(OWN_ROOT) || SKIPPED_PACKAGES.some((dir) => file.includes(dir))) continue;
    return file;
  }
  return undefined;
}

/** The file of each frame of the current stack, innermost first (frames without a file left out). */
function stackFiles(): string[] {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  const holder: { stack?: unknown } = {};
  try {
    Error.stackTraceLimit = 50;
    Error.prepareStackTrace = (_error, sites) => sites;
    Error.captureStackTrace(holder, stackFiles);
    const sites = holder.stack;
    if (!Array.isArray(sites)) return [];
    const files: string[] = [];
    for (const site of sites as NodeJS.CallSite[]) {
      const name = site.getFileName?.() ?? undefined;
      if (!name) continue;
      files.push(name.startsWith('file://') ? fileURLToPath(name) : name);
    }
    return files;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}
