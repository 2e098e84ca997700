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

/**
 * The line that stands for the routine client errors a second held back (messages.clientErrorsHeldBack):
 * "<Handler>: N more routine client error(s) in the last second was/were not logged …"; group 1 is N.
 */
export const HELD_BACK = /: (\d+) more routine client errors? in the last second (?:was|were) not logged/;

/** The held-back lines among `lines`, the number each stands for, and their sum. */
export function heldBack(lines: readonly string[]): { lines: string[]; counts: number[]; count: number } {
  const held = lines.filter((l) => HELD_BACK.test(l));
  const counts = held.map((l) => Number(HELD_BACK.exec(l)![1]));
  return { lines: held, counts, count: counts.reduce((n, c) => n + c, 0) };
}
