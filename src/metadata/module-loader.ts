import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Loading a user's module by path, the way Node itself would load it: CommonJS through `require()`,
 * ES modules through `import()`. Worker threads and child processes load the handler's module (and the
 * modules of class providers) this way. `require()` of an ES module fails on Node 20 (`ERR_REQUIRE_ESM`)
 * and, on 22.12+, for a graph with top-level await (`ERR_REQUIRE_ASYNC_MODULE`), so ES modules are
 * imported, once, before anything asks for their exports synchronously.
 */

/** A module's file path: `file://` URLs (an ES module's `import.meta.url`) are turned into paths. */
export function modulePath(fileOrUrl: string): string {
  return fileOrUrl.startsWith('file://') ? fileURLToPath(fileOrUrl) : fileOrUrl;
}

/**
 * Whether Node loads `file` as an ES module: `.mjs`/`.mts`, or `.js`/`.ts` under a package.json with
 * `"type": "module"` (Node's own rule; the nearest package.json decides).
 */
export function isEsModule(file: string): boolean {
  const ext = path.extname(file);
  if (ext === '.mjs' || ext === '.mts') return true;
  if (ext === '.cjs' || ext === '.cts') return false;
  return packageType(path.dirname(file)) === 'module';
}

/** Whether `err` is Node refusing to `require()` an ES module (Node 20), or one with top-level await (22.12+). */
export function isRequireOfEsm(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE';
}

/** ES modules loaded by preloadModules(), and the load errors (of any module) to rethrow when asked for. */
const loaded = new Map<string, { exports?: Record<string, unknown>; error?: unknown }>();

/**
 * Loads each file: ES modules through `import()` (kept for moduleExports()), CommonJS through `require()`.
 * Never rejects: a module that fails to load is remembered with its error, which moduleExports() throws.
 */
export async function preloadModules(files: Iterable<string>): Promise<void> {
  for (const file of new Set(files)) {
    if (loaded.has(file)) continue;
    try {
      if (!isEsModule(file)) {
        try {
          requireModule(file);
          continue;
        } catch (err) {
          if (!isRequireOfEsm(err)) throw err; // kept below: moduleExports() throws it, without running the module again
        }
      }
      loaded.set(file, { exports: await importOrRequireTypeScript(file) });
    } catch (error) {
      loaded.set(file, { error });
    }
  }
}

/** The exports of `file`: an ES module preloaded by preloadModules(), else CommonJS through `require()`. */
export function moduleExports(file: string): Record<string, unknown> {
  const known = loaded.get(file);
  if (known?.error !== undefined) throw known.error;
  if (known?.exports) return known.exports;
  return requireModule(file);
}

/**
 * The exports of `file` if CommonJS can give them now (the module is loaded, or loads), or `undefined`
 * for an ES module: the main thread never imports one itself, since the program's own entry module may
 * still be suspended in a top-level await, and importing it again would wait for itself. Throws what
 * `require()` throws otherwise.
 */
export function commonJsExports(file: string): Record<string, unknown> | undefined {
  if (isEsModule(file)) return undefined;
  try {
    return requireModule(file);
  } catch (err) {
    if (isRequireOfEsm(err)) return undefined;
    throw err;
  }
}

/**
 * `import()` of an ES module. TypeScript under `"type": "module"` that Node cannot import without an ESM
 * loader hook (ts-node/esm, tsx), as under jest with ts-jest, which runs the tests as CommonJS: Node 20 and
 * 22 know no `.ts` (ERR_UNKNOWN_FILE_EXTENSION), and from 23.6 Node strips types itself but cannot run
 * decorators (a SyntaxError) nor emit their metadata. Both fail before any module of the graph has run, so
 * the file is then `require()`d through the `.ts` loader this process has (sockserve's ts-register.js in a
 * worker), as jest itself loaded it.
 */
async function importOrRequireTypeScript(file: string): Promise<Record<string, unknown>> {
  try {
    return (await importModule(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const ext = path.extname(file);
    if (!TYPESCRIPT.has(ext) || !require.extensions[ext] || !failedBeforeRunning(err)) throw err;
    return requireModule(file);
  }
}

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

/** Node refused the module graph before running any of it: an unknown extension, TypeScript it cannot strip, a syntax error. */
function failedBeforeRunning(err: unknown): boolean {
  const { code, name } = (err ?? {}) as { code?: unknown; name?: unknown };
  return code === 'ERR_UNKNOWN_FILE_EXTENSION' || code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' || name === 'SyntaxError';
}

function requireModule(file: string): Record<string, unknown> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as Record<string, unknown>;
}

/**
 * A real dynamic `import()`. Written through `Function` because TypeScript compiles `import()` in a
 * CommonJS build to `require()`, which is what must be avoided here.
 */
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

const typeByDir = new Map<string, string | undefined>();

/** The `type` field of the package.json nearest to `dir` (undefined when none says). */
function packageType(dir: string): string | undefined {
  if (typeByDir.has(dir)) return typeByDir.get(dir);
  let type: string | undefined;
  try {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { type?: unknown };
    type = typeof json.type === 'string' ? json.type : undefined;
  } catch {
    const parent = path.dirname(dir);
    type = parent === dir ? undefined : packageType(parent);
  }
  typeByDir.set(dir, type);
  return type;
}
