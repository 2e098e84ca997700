/**
 * The young generation each pool worker gets (young-generation.ts): a small default, the user's
 * resourceLimits.maxYoungGenerationSizeMb, or V8's own sizing when the server's process was given a
 * semi-space size on its command line or in NODE_OPTIONS.
 */
import { semiSpaceFlag, WORKER_YOUNG_GENERATION_MB, workerYoungGenerationMb } from '../../src/concurrency/remote/young-generation';

describe('a worker\'s young generation', () => {
  const saved = process.env.NODE_OPTIONS;
  afterEach(() => {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  });

  test('is 6 MB by default, with or without other resourceLimits', () => {
    delete process.env.NODE_OPTIONS;
    expect(WORKER_YOUNG_GENERATION_MB).toBe(6);
    expect(workerYoungGenerationMb(undefined)).toBe(6);
    expect(workerYoungGenerationMb({ maxOldGenerationSizeMb: 48 })).toBe(6);
  });

  test('is the user\'s maxYoungGenerationSizeMb when given, whatever the flags', () => {
    process.env.NODE_OPTIONS = '--max-semi-space-size=32';
    expect(workerYoungGenerationMb({ maxYoungGenerationSizeMb: 24 })).toBe(24);
  });

  test.each(['--max-semi-space-size=32', '--max_semi_space_size=32', '--enable-source-maps --max-semi-space-size=1', '--min-semi-space-size=16'])(
    'is left to V8 when NODE_OPTIONS holds %s',
    (options) => {
      process.env.NODE_OPTIONS = options;
      expect(workerYoungGenerationMb(undefined)).toBeUndefined();
    },
  );

  test('becomes a child\'s --max-semi-space-size: a third of it, in whole megabytes, at least 1', () => {
    expect(semiSpaceFlag(6)).toBe('--max-semi-space-size=2');
    expect(semiSpaceFlag(24)).toBe('--max-semi-space-size=8');
    expect(semiSpaceFlag(10)).toBe('--max-semi-space-size=4');
    expect(semiSpaceFlag(1)).toBe('--max-semi-space-size=1');
  });
});
