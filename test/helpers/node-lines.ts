/**
 * `test`, or `test.skip` in the runs of `.ci/run` that repeat the suite on another Node line (it exports
 * SOCKSERVE_CI_REPEAT_LINE=1 for them). For checks whose result cannot depend on the Node that runs them,
 * such as tsc's type checks (TypeScript's output is the same on every line), which the run on the machine's
 * Node has made: run again on three lines they cost CI a minute and prove nothing more. `npm test` runs them.
 */
export const testOnce: typeof test = process.env.SOCKSERVE_CI_REPEAT_LINE === '1' ? test.skip : test;
