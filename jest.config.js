/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  // Each file compiled on its own, types unchecked here: test/typecheck.spec.ts checks the whole project once (tsconfig.jest.json says why).
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] },
  testTimeout: 20000,
  // Builds dist/ if stale (samples and package tests load sockserve through exports) and warms the workers' TypeScript cache.
  globalSetup: '<rootDir>/scripts/jest-global-setup.js',
  // Real sockets and workers on two cores. Three test files at a time, not two: the suite mostly waits (timers,
  // child processes starting, clients trickling): with two, the machine was 65 % idle through a CI run (vmstat), and
  // each Node line took 560-600 s on a slower machine, four lines past CI's 30 minutes. More than three would
  // starve the timing of the pools' tests.
  maxWorkers: 3,
  // How long a jest worker may take to exit once the run is over before jest kills it and prints "A worker
  // process has failed to exit gracefully". Jest's 500 ms default is too tight here: timed on this 2-core
  // machine, the two workers of the whole suite took 386 and 423 ms to exit with nothing left open (every
  // test file's resources checked after its afterAll), and two one-line test files without sockserve took
  // 82-388 ms. A real leak still shows: a worker held open by one is reported after this bound.
  workerGracefulExitTimeout: 5000,
};
