import type { ClassRef } from './protocol';

/**
 * A class as a worker can find it again: the first of `files` whose module exports it (the very same
 * constructor), with the export's name. The files are already loaded in this process, so this only
 * reads their exports. Undefined when none does.
 */
export function findExport(cls: Function, files: ReadonlyArray<string | undefined>): ClassRef | undefined {
  for (const source of new Set(files)) {
    if (!source) continue;
    let exports: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      exports = require(source) as Record<string, unknown>;
    } catch {
      continue;
    }
    const exportName = Object.keys(exports).find((name) => exports[name] === cls);
    if (exportName !== undefined) return { source, exportName };
  }
  return undefined;
}

/** In a worker: the class `ref` names, loaded by module path. */
export function loadClass(ref: ClassRef): new (...args: any[]) => unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cls = (require(ref.source) as Record<string, unknown>)[ref.exportName];
  if (typeof cls !== 'function') throw new Error(`${ref.exportName} is no longer exported from ${ref.source}`);
  return cls as new (...args: any[]) => unknown;
}
