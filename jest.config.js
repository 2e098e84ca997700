/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 20000,
  // Builds dist/ if stale (samples and package tests load sockserve through exports) and warms the workers' TypeScript cache.
  globalSetup: '<rootDir>/scripts/jest-global-setup.js',
  // Real sockets and workers: two cores, so keep the parallelism modest and predictable.
  maxWorkers: 2,
};
