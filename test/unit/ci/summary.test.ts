// The CI summary cannot say success for a run that lost tests (issue 15): a real vitest run in a scratch
// project, with the JSON and ledger reporters, where one file on disk is left out of the run and one
// test throws after it ended (an unhandled error), must be summarised as FAILED naming both; the same
// project run whole and clean must be OK. Plus the pure checks on hand-made reports.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { Ledger } from '../../../tools/ci/ledger-reporter.js';
import { filesMatching, globToRegExp, summarize, tierIncludes, type JsonReport } from '../../../tools/ci/summary.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');
const REPORTER = join(ROOT, 'tools/ci/ledger-reporter.ts');

const scratch = mkdtempSync(join(tmpdir(), 'blewire-ci-summary-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs vitest (asynchronously) in a scratch project; resolves with its exit status, report and ledger. */
function runVitest(dir: string, files: string[]): Promise<{ code: number; report: JsonReport; ledger: Ledger }> {
  return new Promise(done => {
    execFile(process.execPath, [VITEST, 'run', '--root', dir, '--config', join(dir, 'vitest.config.mjs'),
      '--reporter=json', `--reporter=${REPORTER}`, `--outputFile.json=${join(dir, 'report.json')}`, ...files],
    { cwd: dir, env: { ...process.env, BLEWIRE_CI_LEDGER: join(dir, 'ledger.json') }, timeout: 120_000 }, err => {
      done({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        report: JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as JsonReport,
        ledger: JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')) as Ledger,
      });
    });
  });
}

function project(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 't'), { recursive: true });
  // globals: the scratch project cannot resolve 'vitest' from its own folder.
  writeFileSync(join(dir, 'vitest.config.mjs'), 'export default { test: { globals: true, include: ["t/**/*.test.js"] } };\n');
  for (const [f, src] of Object.entries(files)) writeFileSync(join(dir, 't', f), src);
  return dir;
}

describe('CI summary', () => {
  test('a real run that leaves a file on disk unrun and has an unhandled error is FAILED, naming both', async () => {
    const dir = project('lossy', {
      'a.test.js': 'test("a1", () => { expect(1).toBe(1); });\ntest("a2", () => {});\n',
      'b.test.js': 'test("b1", async () => { setTimeout(() => { throw new Error("thrown after the test ended"); }, 0); await new Promise(r => setTimeout(r, 20)); });\n',
      'c.test.js': 'test("c1", () => {});\n',
    });
    const { code, report, ledger } = await runVitest(dir, ['t/a.test.js', 't/b.test.js']);
    expect(ledger.reason).not.toBe('incomplete');
    expect(ledger.unhandledErrors.map(e => e.message)).toEqual(['thrown after the test ended']);
    const { ok, lines } = summarize({ tier: 'scratch', root: dir, include: ['t/**/*.test.js'], report, ledger, exitCode: code });
    expect(ok).toBe(false);
    // The tests that did run all passed: the JSON report alone says success.
    expect(lines[0]).toBe('scratch: 3 passed, 0 failed');
    expect(lines).toContain('scratch: did not run: t/c.test.js: on disk but not collected');
    expect(lines).toContain('scratch: unhandled error: Error: thrown after the test ended');
    expect(lines).toContain('scratch: 2 of 3 test files ran, 1 did not, 1 unhandled errors');
    expect(lines.at(-1)).toBe('scratch: FAILED');
  }, 120_000);

  test('the same kind of project run whole and clean is OK', async () => {
    const dir = project('clean', { 'a.test.js': 'test("a1", () => {});\n', 'sub.test.js': 'test("s", () => {});\n' });
    const { code, report, ledger } = await runVitest(dir, []);
    const { ok, lines } = summarize({ tier: 'scratch', root: dir, include: ['t/**/*.test.js'], report, ledger, exitCode: code });
    expect(lines).toEqual(['scratch: 2 passed, 0 failed', 'scratch: 2 of 2 test files ran, 0 did not, 0 unhandled errors', 'scratch: OK']);
    expect(ok).toBe(true);
  }, 120_000);

  const file = (name: string, ...statuses: string[]) =>
    ({ name, status: 'passed', assertionResults: statuses.map((status, i) => ({ status, fullName: `${name} #${i}` })) });
  const ledgerOf = (collected: string[], extra: Partial<Ledger> = {}): Ledger =>
    ({ collected, modules: collected.map(f => ({ file: f, state: 'passed', passed: 1, failed: 0, skipped: 0, pending: 0 })), unhandledErrors: [], reason: 'passed', ...extra });

  test('a collected file absent from the report, a file with no test, a skipped test: each is a file that did not run', () => {
    const dir = project('pure', { 'a.test.js': '', 'b.test.js': '', 'c.test.js': '', 'd.test.js': '' });
    const abs = (f: string) => join(dir, 't', f);
    const report: JsonReport = {
      numPassedTests: 3, numFailedTests: 0,
      testResults: [file(abs('a.test.js'), 'passed'), file(abs('b.test.js')), file(abs('c.test.js'), 'passed', 'skipped')],
    };
    const ledger = ledgerOf(['a', 'b', 'c', 'd'].map(f => abs(`${f}.test.js`)));
    const { ok, lines } = summarize({ tier: 'x', root: dir, include: ['t/*.test.js'], report, ledger, exitCode: 0 });
    expect(ok).toBe(false);
    expect(lines.filter(l => l.includes('did not run:'))).toEqual([
      'x: did not run: t/b.test.js: no test ran',
      `x: did not run: t/c.test.js: 1 of 2 tests did not run (skipped: ${abs('c.test.js')} #1)`,
      'x: did not run: t/d.test.js: collected but absent from the report',
    ]);
  });

  test('a missing report or ledger, an unfinished run or a non-zero exit fails even with every file accounted for', () => {
    const dir = project('meta', { 'a.test.js': '' });
    const report: JsonReport = { numPassedTests: 1, numFailedTests: 0, testResults: [file(join(dir, 't/a.test.js'), 'passed')] };
    const ledger = ledgerOf([join(dir, 't/a.test.js')]);
    const base = { tier: 'x', root: dir, include: ['t/*.test.js'], report, ledger, exitCode: 0 };
    expect(summarize(base).ok).toBe(true);
    expect(summarize({ ...base, report: undefined }).lines).toContain('x: the JSON report is missing: vitest did not finish');
    expect(summarize({ ...base, ledger: undefined }).ok).toBe(false);
    expect(summarize({ ...base, ledger: { ...ledger, reason: 'incomplete' } }).lines).toContain('x: the run did not finish (the ledger was never closed)');
    expect(summarize({ ...base, exitCode: 1 }).lines).toContain('x: vitest exited with status 1');
    expect(summarize({ ...base, report: { ...report, numFailedTests: 1 } }).ok).toBe(false);
    // No test file at all is not a success either.
    expect(summarize({ ...base, include: ['none/*.test.js'], report: { ...report, testResults: [] }, ledger: ledgerOf([]) }).ok).toBe(false);
  });

  test('globs: * stays in a segment, ** crosses segments (or none); the real tiers find their files', async () => {
    expect(globToRegExp('test/unit/**/*.test.ts').test('test/unit/a.test.ts')).toBe(true);
    expect(globToRegExp('test/unit/**/*.test.ts').test('test/unit/x/y/a.test.ts')).toBe(true);
    expect(globToRegExp('test/unit/*.test.ts').test('test/unit/x/a.test.ts')).toBe(false);
    expect(globToRegExp('test/unit/**/*.test.ts').test('test/unit/a.test.tsx')).toBe(false);
    const unit = filesMatching(ROOT, await tierIncludes(ROOT, 'unit'));
    expect(unit).toContain('test/unit/ci/summary.test.ts');
    expect(unit).toContain('test/fuzz/controller.test.ts');
    const interop = filesMatching(ROOT, await tierIncludes(ROOT, 'interop'));
    expect(interop).toContain('test/interop/capture-tshark.test.ts');
    expect(interop.every(f => f.startsWith('test/interop/'))).toBe(true);
  });
});
