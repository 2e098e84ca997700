'use strict';
/** jest's globalSetup: dist/ fresh (samples and package tests load it), and the workers' TypeScript cache warm. */
const buildIfStale = require('./build-if-stale');
const { warmWorkerCache } = require('./warm-worker-cache');

module.exports = async function globalSetup() {
  await buildIfStale();
  warmWorkerCache();
};
