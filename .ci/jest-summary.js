#!/usr/bin/env node
// Helper for .ci/run: reads a jest --json result file and prints one line:
//   <passed> <failed> <suitesPassed> <suitesFailed> <total> <note>
// With --failures it prints instead one line per failed test (file › test: first line of the
// failure), at most 20, so that the summary at the end of the CI log says what failed.
// "failed" = failed tests + suites that failed without a failed test (compile errors,
// import errors, hooks throwing outside a test: jest's numRuntimeErrorTestSuites).
// On a missing or unreadable file it prints "0 1 0 0 0 <reason>" and exits 0,
// so that the caller always gets a line it can sum up.
'use strict';
const fs = require('fs');

const failuresMode = process.argv[2] === '--failures';
const file = process.argv[failuresMode ? 3 : 2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  if (failuresMode) process.exit(0);
  const why = e && e.code === 'ENOENT' ? 'no jest JSON result was written' : 'jest JSON result unreadable';
  process.stdout.write(`0 1 0 0 0 ${why}\n`);
  process.exit(0);
}

const n = (v) => (Number.isFinite(v) ? v : 0);
const suites = Array.isArray(r.testResults) ? r.testResults : [];

const path = require('path');
const failedTests = (s) => (s.assertionResults || []).filter((a) => a.status === 'failed');
// Suites marked failed although none of their tests failed: a suite that did not
// compile or threw while loading has status "failed" and an empty assertion list.
const suiteOnly = suites.filter((s) => s.status === 'failed' && failedTests(s).length === 0);
const relative = (s) => path.relative(process.cwd(), s.name || '?');

if (failuresMode) {
  // The first three non-empty lines of a failure, without colour codes, on one line.
  const firstLines = (text) =>
    String(text || '').replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 3).join(' / ').slice(0, 400);
  const lines = [];
  for (const s of suites) {
    for (const a of failedTests(s)) lines.push(`${relative(s)} › ${a.fullName || a.title}: ${firstLines((a.failureMessages || [])[0])}`);
    if (suiteOnly.includes(s)) lines.push(`${relative(s)} (suite): ${firstLines(s.message || s.failureMessage)}`);
  }
  if (lines.length > 20) lines.splice(20, lines.length - 20, `… and ${lines.length - 20} more`);
  if (lines.length) process.stdout.write(lines.join('\n') + '\n');
  process.exit(0);
}

const suiteErrors = Math.max(suiteOnly.length, n(r.numRuntimeErrorTestSuites));

const passed = n(r.numPassedTests);
const failed = n(r.numFailedTests) + suiteErrors;
const notes = [];
if (suiteErrors) {
  notes.push(
    `${suiteErrors} suite(s) failed outside a test: ` +
      suiteOnly.map(relative).join(', '),
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
