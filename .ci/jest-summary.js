#!/usr/bin/env node
// Helper for .ci/run: reads a jest --json result file and prints one line:
//   <passed> <failed> <suitesPassed> <suitesFailed> <total> <note>
// "failed" = failed tests + suites that failed without a failed test (compile errors,
// import errors, hooks throwing outside a test: jest's numRuntimeErrorTestSuites).
// On a missing or unreadable file it prints "0 1 0 0 0 <reason>" and exits 0,
// so that the caller always gets a line it can sum up.
'use strict';
const fs = require('fs');

const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  const why = e && e.code === 'ENOENT' ? 'no jest JSON result was written' : 'jest JSON result unreadable';
  process.stdout.write(`0 1 0 0 0 ${why}\n`);
  process.exit(0);
}

const n = (v) => (Number.isFinite(v) ? v : 0);
const suites = Array.isArray(r.testResults) ? r.testResults : [];

// Suites marked failed although none of their tests failed: a suite that did not
// compile or threw while loading has status "failed" and an empty assertion list.
const suiteOnly = suites.filter(
  (s) => s.status === 'failed' && !(s.assertionResults || []).some((a) => a.status === 'failed'),
);
const suiteErrors = Math.max(suiteOnly.length, n(r.numRuntimeErrorTestSuites));

const passed = n(r.numPassedTests);
const failed = n(r.numFailedTests) + suiteErrors;
const notes = [];
if (suiteErrors) {
  notes.push(
    `${suiteErrors} suite(s) failed outside a test: ` +
      suiteOnly.map((s) => require('path').relative(process.cwd(), s.name)).join(', '),
  );
}
if (n(r.numPendingTests) || n(r.numTodoTests)) {
  notes.push(`${n(r.numPendingTests)} skipped, ${n(r.numTodoTests)} todo`);
}
if (r.wasInterrupted) notes.push('run was interrupted');
process.stdout.write(
  [passed, failed, n(r.numPassedTestSuites), n(r.numFailedTestSuites), n(r.numTotalTests), notes.join('; ')]
    .join(' ')
    .trimEnd() + '\n',
);
