import * as path from 'node:path';

/** sockserve's own folder (src/ when run from sources, dist/ when compiled): frames in it are skipped. */
const OWN_ROOT = path.resolve(__dirname, '..') + path.sep;

/**
 * The file that applied a class decorator: the first stack frame outside sockserve and Node's internals.
 * Worker threads and child processes load the handler class again from this file. TypeScript emits its
 * `__decorate` helper into the user's module, so that frame names the module that declares the class.
 */
export function callerFile(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(line);
    if (!m) continue;
    const file = m[1].replace(/^file:\/\//, '');
    if (file.startsWith(OWN_ROOT) || file.includes(`${path.sep}node_modules${path.sep}reflect-metadata${path.sep}`)) continue;
    return file;
  }
  return undefined;
}
