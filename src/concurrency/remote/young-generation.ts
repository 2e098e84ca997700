import type { ResourceLimits } from 'node:worker_threads';

/**
 * The young generation (megabytes) of each pool worker, thread or child, unless the user sizes it
 * (`resourceLimits.maxYoungGenerationSizeMb`, or `--max-semi-space-size` given to the server's process).
 *
 * V8 lets a busy isolate's young generation grow to 48 MB on Node 20 and 192 MB on Node 24, and keeps
 * it once grown: a pool of N workers pays that N times over, whatever each one holds. A burst of accepts
 * is enough to grow it, so that with 10,000 idle connections most of a worker's memory was young space
 * (issue 12). 6 MB (2 MB semi-spaces) measured on Node 20 (docs/benchmarks.md): RSS per idle connection
 * of @Forking 7.7 → 6.0 KB, streaming 64 KiB unchanged or better, connection rate unchanged, 16-connection
 * ping-pong about 3 % lower (more scavenges).
 */
export const WORKER_YOUNG_GENERATION_MB = 6;

/** V8 sizes a young generation at three semi-spaces: the two it copies between, and new large objects'. */
const SEMI_SPACES_PER_YOUNG_GENERATION = 3;

/** Whether the server's process was given a semi-space size, most or least (its command line or NODE_OPTIONS): its workers keep V8's sizing from it. */
function semiSpaceSizedByUser(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((flag) => /^--(max|min)[-_]semi[-_]space[-_]size(=|$)/.test(flag));
}

/**
 * The young generation (megabytes) a worker gets: `limits.maxYoungGenerationSizeMb` when given, else
 * WORKER_YOUNG_GENERATION_MB, else (the user sized semi-spaces with a flag) undefined: V8's sizing.
 */
export function workerYoungGenerationMb(limits: ResourceLimits | undefined): number | undefined {
  if (limits?.maxYoungGenerationSizeMb !== undefined) return limits.maxYoungGenerationSizeMb;
  return semiSpaceSizedByUser() ? undefined : WORKER_YOUNG_GENERATION_MB;
}

/** That young generation as a child process's V8 flag: its semi-space size, in whole megabytes, at least 1. */
export function semiSpaceFlag(youngMb: number): string {
  return `--max-semi-space-size=${Math.max(1, Math.ceil(youngMb / SEMI_SPACES_PER_YOUNG_GENERATION))}`;
}
