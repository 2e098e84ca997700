import type { Logger } from '../../src';

/** A logger that keeps every line by level (bootstrap()'s `logger` option), for tests that read what was logged. */
export function memoryLogger(): Logger & { lines: Record<'error' | 'warn' | 'info' | 'debug', string[]> } {
  const lines = { error: [] as string[], warn: [] as string[], info: [] as string[], debug: [] as string[] };
  return {
    lines,
    error: (m) => lines.error.push(m),
    warn: (m) => lines.warn.push(m),
    info: (m) => lines.info.push(m),
    debug: (m) => lines.debug.push(m),
  };
}
