/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 20000,
  // Samples and package tests load sockserve through package.json exports, i.e. dist/: build it if stale.
  globalSetup: '<rootDir>/scripts/build-if-stale.js',
  // Real sockets and workers: two cores, so keep the parallelism modest and predictable.
  maxWorkers: 2,
};
