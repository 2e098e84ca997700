import { workerLaunch } from '../../src/concurrency/remote/worker-launch';

describe('how workers are started', () => {
  const saved = process.execArgv;
  afterEach(() => {
    process.execArgv = saved;
  });

  test('a program run with -r ts-node/register gives its workers sockserve\'s cached TypeScript loader instead, and keeps its other preloads', () => {
    process.execArgv = ['-r', 'ts-node/register/transpile-only', '--require=/app/node_modules/ts-node/register/index.js', '-r', 'tsconfig-paths/register', '--enable-source-maps', '--inspect'];
    const { execArgv } = workerLaunch('thread-entry', '/app/src/handler.ts', 'Handler');
    expect(execArgv.slice(0, 3)).toEqual(['-r', 'tsconfig-paths/register', '--enable-source-maps']);
    expect(execArgv).toHaveLength(5);
    expect(execArgv[3]).toBe('-r');
    expect(execArgv[4]).toMatch(/ts-register\.js$/);
  });

  test('a program started with sockserve\'s TypeScript loader itself (as the tests start their fixtures) gives it to its workers once', () => {
    const loader = require.resolve('../../src/concurrency/remote/ts-register.js');
    process.execArgv = ['-r', loader, '--enable-source-maps'];
    expect(workerLaunch('child-entry', '/app/src/handler.ts', 'Handler').execArgv).toEqual(['--enable-source-maps', '-r', loader]);
  });

  test('module hooks an ES module handler may need (--import, --loader) reach the workers', () => {
    process.execArgv = ['--import', 'tsx', '--loader=ts-node/esm', '--experimental-vm-modules'];
    const { execArgv } = workerLaunch('thread-entry', '/app/dist/handler.mjs', 'Handler');
    expect(execArgv.slice(0, 4)).toEqual(['--import', 'tsx', '--loader=ts-node/esm', '--experimental-vm-modules']);
  });

  test('V8 flags (--max-old-space-size…) go to children, new V8 instances, and not to threads, which refuse them and share the process\'s', () => {
    process.execArgv = ['--max-old-space-size=4096', '--stack-trace-limit=50', '--expose-gc', '--enable-source-maps'];
    // (from the sources, as here, sockserve's TypeScript loader follows: `-r …/ts-register.js`)
    expect(workerLaunch('thread-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 2)).toEqual(['--enable-source-maps', '-r']);
    expect(workerLaunch('child-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 5)).toEqual([...process.execArgv, '-r']);
  });

  test('either spelling of a V8 flag, and the other common V8 flags, go to children and not to threads', () => {
    process.execArgv = ['--max_old_space_size=512', '--expose_gc', '--max-semi-space-size=64', '--stack-size=2000', '--jitless'];
    expect(workerLaunch('child-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 5)).toEqual(process.execArgv);
    expect(workerLaunch('thread-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 1)).toEqual(['-r']); // only sockserve's loader (sources)
  });

  test('Node\'s permission model goes whole to children (the switch with its grants, values after a space too) and not to threads, where it holds already', () => {
    process.execArgv = ['--experimental-permission', '--allow-fs-read=*', '--allow-fs-write', '/tmp/app', '--allow-child-process', '--allow-worker', '--experimental-default-type=commonjs', '-C', 'development'];
    expect(workerLaunch('child-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 9)).toEqual(process.execArgv);
    expect(workerLaunch('thread-entry', '/app/dist/handler.js', 'Handler').execArgv.slice(0, 3)).toEqual(['--experimental-default-type=commonjs', '-C', 'development']);
  });
});
