import { killedBy } from '../../src/concurrency/remote/child-slot';

describe("a child's death by a signal, in words", () => {
  test('SIGABRT and SIGTRAP say that V8 ends a process this way when it runs out of memory, with the heap limit set', () => {
    // A forked child past resourceLimits.maxOldGenerationSizeMb read "was killed by SIGABRT", nothing about memory,
    // where a thread's death says "reaching memory limit" (hostile run).
    expect(killedBy('SIGABRT', 32)).toBe(
      "was killed by SIGABRT, as V8 ends a process that runs out of memory (resourceLimits.maxOldGenerationSizeMb, 32 MB; its FATAL ERROR report is then on the child's stderr), or as process.abort() does",
    );
    expect(killedBy('SIGTRAP', undefined)).toMatch(/^was killed by SIGTRAP, as V8 ends a process that runs out of memory \(Node's default heap limit; /);
  });

  test('another signal is named alone (the pool tells a kill from outside by this prefix)', () => {
    expect(killedBy('SIGKILL', 32)).toBe('was killed by SIGKILL');
    expect(killedBy('SIGTERM', undefined)).toBe('was killed by SIGTERM');
  });
});
