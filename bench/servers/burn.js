'use strict';
/**
 * The CPU-bound request of the bench: a fixed amount of synchronous work, about 20 ms of one core.
 * The amount is an iteration count that the driver calibrates once per run (pinned, by CPU time, see
 * `node burn.js --calibrate`) and hands to every server in BENCH_BURN_ITERS, so a request costs the
 * same work wherever it runs. (Spinning until the clock says 20 ms would not: threads preempted on one
 * core would all "finish" together, faking parallelism.)
 */
const ITERS = Number(process.env.BENCH_BURN_ITERS) || 4_000_000;
let sink = 0;

function work(iters) {
  let x = sink | 1;
  for (let i = 0; i < iters; i++) x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i) | 0;
  sink = x; // kept, so the loop cannot be optimised away
  return x;
}

function burn() { return work(ITERS); }

/** Iterations that take `ms` of this thread's CPU time: the fastest of several trials, scaled. */
function calibrate(ms = 20) {
  work(1e6); // warm up the JIT
  let best = Infinity;
  const probe = 2_000_000;
  for (let t = 0; t < 7; t++) {
    const c0 = process.cpuUsage();
    work(probe);
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return Math.round((probe * ms) / best);
}

module.exports = { burn, calibrate };
if (require.main === module && process.argv[2] === '--calibrate') console.log(calibrate(Number(process.argv[3]) || 20));
