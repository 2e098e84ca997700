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

/**
 * The CommonJS module of this process that exports `cls` (the first one loaded), for a classic handler class
 * declared in a module other than the one that builds its server; undefined when none does (ES modules are
 * not listed in Node's module cache).
 */
export function findLoadedExport(cls: Function): ClassRef | undefined {
  for (const mod of Object.values(require.cache)) {
    const exports = mod?.exports as Record<string, unknown> | undefined;
    if (!mod?.filename || (typeof exports !== 'object' && typeof exports !== 'function') || exports === null) continue;
    const exportName = Object.keys(exports).find((name) => exports[name] === cls);
    if (exportName !== undefined) return { source: mod.filename, exportName };
  }
  return undefined;
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

/** In a worker: the class `ref` names, loaded by module path. */
export function loadClass(ref: ClassRef): new (...args: any[]) => unknown {
  const cls = moduleExports(ref.source)[ref.exportName];
  if (typeof cls !== 'function') throw new Error(`${ref.exportName} is no longer exported from ${ref.source}`);
  return cls as new (...args: any[]) => unknown;
}
