/**
 * How many cases a property-based test runs, and from which seed. The defaults keep `npm test` quick;
 * `FUZZ_RUNS` and `FUZZ_SEED` override them for a long or reproducible run, as the whole-stack fuzzers
 * already allow (a long run needs `--testTimeout=0` as well: the tier's 30 s limit is per test):
 *
 *   FUZZ_RUNS=200000 FUZZ_SEED=7 npx vitest run --config test/vitest.config.ts --project unit \
 *     test/unit/hci/codec-fuzz.test.ts --testTimeout=0
 *
 * A bad value (not a positive integer) is an error, not a silent fallback to the default.
 */
export function fuzzRuns(defaultRuns: number, defaultSeed?: number): { numRuns: number; seed?: number } {
  const numRuns = envInteger('FUZZ_RUNS', 1) ?? defaultRuns;
  const seed = envInteger('FUZZ_SEED', -0x80000000) ?? defaultSeed;
  return seed === undefined ? { numRuns } : { numRuns, seed };
}

function envInteger(name: string, min: number): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name}=${text} is not an integer >= ${min}`);
  return value;
}
