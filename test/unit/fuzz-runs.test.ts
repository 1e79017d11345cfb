import { afterEach, describe, expect, test, vi } from 'vitest';
import { fuzzRuns } from '../helpers/fuzz-runs.js';

// Every property-based test takes its case count and seed from fuzzRuns (issue 15: the codec fuzz
// ignored FUZZ_RUNS, so a long run was impossible without editing the tests).
describe('fuzzRuns', () => {
  afterEach(() => { vi.unstubAllEnvs(); });

  test('defaults when FUZZ_RUNS / FUZZ_SEED are unset or empty', () => {
    vi.stubEnv('FUZZ_RUNS', '');
    expect(fuzzRuns(3000, 0x5eed)).toEqual({ numRuns: 3000, seed: 0x5eed });
    expect(fuzzRuns(500)).toEqual({ numRuns: 500 });
  });

  test('the environment overrides both', () => {
    vi.stubEnv('FUZZ_RUNS', '200000');
    vi.stubEnv('FUZZ_SEED', '-7');
    expect(fuzzRuns(3000, 0x5eed)).toEqual({ numRuns: 200000, seed: -7 });
    expect(fuzzRuns(500)).toEqual({ numRuns: 200000, seed: -7 });
  });

  test('a value that is not a usable integer is an error, not a silent default', () => {
    for (const bad of ['abc', '0', '1.5', '-3', '1e400']) {
      vi.stubEnv('FUZZ_RUNS', bad);
      expect(() => fuzzRuns(10), bad).toThrow(/FUZZ_RUNS/);
    }
  });
});
