import { commonJsExports, moduleExports, preloadModules } from '../../metadata/module-loader';
import { loadingInWorker } from '../../runtime';
import type { ClassRef, WorkerSpec } from './protocol';

/**
 * A class as a worker can find it again: the first of `files` whose module exports it (the very same
 * constructor), with the export's name. CommonJS files are already loaded in this process, so this only
 * reads their exports. An ES module cannot be read synchronously (nor safely imported while the program's
 * entry module may still be in a top-level await): it is taken to export the class under its own name,
 * and the worker checks that when it loads it. Undefined when no file fits.
 */
export function findExport(cls: Function, files: ReadonlyArray<string | undefined>): ClassRef | undefined {
  for (const source of new Set(files)) {
    if (!source) continue;
    let exports: Record<string, unknown> | undefined;
    try {
      exports = commonJsExports(source);
    } catch {
      continue;
    }
    if (exports === undefined) return cls.name ? { source, exportName: cls.name } : undefined;
    const exportName = Object.keys(exports).find((name) => exports[name] === cls);
    if (exportName !== undefined) return { source, exportName };
  }
  return undefined;
}

/** ClassRef.exportName of a class that is its module's whole `module.exports` (`module.exports = Echo`). */
export const WHOLE_MODULE = 'module.exports';

/**
 * The CommonJS module of this process that exports `cls`, for a classic handler class declared in a module other
 * than the one that builds its server; undefined when none does (ES modules are not listed in Node's module
 * cache). A module other than the program's entry is preferred (the entry would run again in each worker, its
 * server start included, where it re-exports the class). Only data properties are read: a getter (a library's
 * lazy export) is never called.
 */
export function findLoadedExport(cls: Function): ClassRef | undefined {
  let entry: ClassRef | undefined;
  for (const mod of Object.values(require.cache)) {
    const held: unknown = mod?.exports; // not `exports`: compiled to CommonJS, that name is this module's own
    if (!mod?.filename || (typeof held !== 'object' && typeof held !== 'function') || held === null) continue;
    let exportName: string | undefined;
    try {
      exportName = held === cls ? WHOLE_MODULE : Object.keys(held).find((name) => {
        const property = Object.getOwnPropertyDescriptor(held, name);
        return property !== undefined && 'value' in property && property.value === cls;
      });
    } catch {
      continue; // a Proxy or an exotic object that will not be listed
    }
    if (exportName === undefined) continue;
    if (mod !== require.main) return { source: mod.filename, exportName };
    entry ??= { source: mod.filename, exportName };
  }
  return entry;
}

/** Whether `file` is a CommonJS module this process has loaded (its exports were read, not guessed). */
export function isLoadedCommonJs(file: string | undefined): boolean {
  return file !== undefined && require.cache[file] !== undefined;
}

/**
 * In a worker, before anything else: loads the modules `spec` names, ES modules through `import()`.
 * `refused`: told at once when a module starts a server while it loads (runtime.ts loadingInWorker).
 */
export function loadWorkerModules(spec: WorkerSpec, refused?: (error: Error) => void): Promise<void> {
  const files = [spec.source];
  for (const { token, useClass } of spec.classes) {
    files.push(useClass.source);
    if (token.kind === 'class') files.push(token.ref.source);
  }
  return loadingInWorker(() => preloadModules(files), refused);
}

/** In a worker: the exports of a module loadWorkerModules() loaded (or a CommonJS one, required now). */
export { moduleExports };

/**
 * The export `name` of a module's exports, or the function of that name it exports under another (`export { Impl
 * as Store }`, `export default Impl`): an ES module's exports cannot be read in the server's process, which takes
 * the class's own name for its export's. The handler's class and the providers' classes are found so.
 */
export function exportedClass(exported: Record<string, unknown>, name: string): unknown {
  return exported[name] ?? Object.values(exported).find((v) => typeof v === 'function' && v.name === name);
}

/**
 * In a worker: the class `ref` names, loaded by module path. `what` it is, for the error when that module does
 * not export it (an ES module's exports cannot be read before: the server's process takes the class for exported).
 */
export function loadClass(ref: ClassRef, what: string): new (...args: any[]) => unknown {
  const cls = exportedClass(moduleExports(ref.source), ref.exportName);
  if (typeof cls !== 'function') {
    // It said "no longer exported" and "could not load the handler", with the handler's Fix, of a provider class
    // never exported (new-user run, ES modules).
    throw new Error(
      `${what}, ${ref.exportName}, is not exported from ${ref.source}, and a worker loads it from there by name. ` +
        `Fix: export it from that module (export class ${ref.exportName} …).`,
    );
  }
  return cls as new (...args: any[]) => unknown;
}
