/**
 * The CI summary of one test tier, which cannot say success for a run that lost tests.
 *
 *   node --import tsx tools/ci/summary.ts --tier unit --report .cache/ci/unit.json \
 *     --ledger .cache/ci/unit.ledger.json --exit <vitest's exit status>
 *
 * Prints the plain `TIER: N passed, N failed` line, then one line per problem, and exits 1 when:
 * - a test file that matches the tier's include globs on disk (test/vitest.config.ts) was not collected,
 *   or was collected but did not run (absent from the JSON report, no test in it, or a test left
 *   pending or skipped: no suite is skipped in this project);
 * - an unhandled error happened (it belongs to no test, so the JSON report's counts omit it);
 * - vitest exited non-zero, or its JSON report or the ledger (tools/ci/ledger-reporter.ts) is missing
 *   or says the run did not finish;
 * - any test failed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Ledger } from './ledger-reporter.js';

/** The parts of vitest's JSON report (reporter `json`) the summary reads. */
export interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numRuntimeErrorTestSuites?: number;
  success?: boolean;
  testResults: { name: string; status: string; message?: string; assertionResults: { status: string; fullName?: string }[] }[];
}

export interface SummaryInput {
  tier: string;
  /** Repository root: include globs are relative to it. */
  root: string;
  /** The tier's include globs (test/vitest.config.ts). */
  include: string[];
  report: JsonReport | undefined;
  ledger: Ledger | undefined;
  /** vitest's exit status. */
  exitCode: number;
}

export interface Summary {
  ok: boolean;
  lines: string[];
}

/** A glob (`*` within a path segment, `**` across segments) as a regular expression over relative paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files under root matching any glob, as paths relative to root, sorted. node_modules is never walked. */
export function filesMatching(root: string, globs: string[]): string[] {
  const out = new Set<string>();
  for (const glob of globs) {
    const re = globToRegExp(glob);
    // Walk from the glob's static prefix (the segments before the first wildcard).
    const segs = glob.split('/');
    const firstWild = segs.findIndex(s => /[*?]/.test(s));
    const base = segs.slice(0, firstWild < 0 ? segs.length - 1 : firstWild).join('/');
    const walk = (dir: string): void => {
      if (!existsSync(join(root, dir))) return;
      for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
        const rel = dir ? `${dir}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (e.name !== 'node_modules' && e.name !== '.git') walk(rel);
        } else if (re.test(rel)) out.add(rel);
      }
    };
    walk(base);
  }
  return [...out].sort();
}

export function summarize(input: SummaryInput): Summary {
  const { tier, root, report, ledger } = input;
  const problems: string[] = [];
  const rel = (f: string) => relative(root, resolve(root, f));
  const onDisk = filesMatching(root, input.include);

  let passed = 0;
  let failed = 0;
  if (!report) problems.push('the JSON report is missing: vitest did not finish');
  else {
    passed = report.numPassedTests;
    failed = report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
  }
  if (!ledger) problems.push('the ledger (tools/ci/ledger-reporter.ts) is missing: vitest did not start the run');
  else if (ledger.reason === 'incomplete') problems.push('the run did not finish (the ledger was never closed)');

  // A file ran when the JSON report has it with at least one test, every test passed or failed, and the
  // ledger (when present) agrees.
  const ran = new Set<string>();
  const why = new Map<string, string>();
  for (const r of report?.testResults ?? []) {
    const f = rel(r.name);
    const notRun = r.assertionResults.filter(a => a.status !== 'passed' && a.status !== 'failed');
    if (r.assertionResults.length === 0) why.set(f, `no test ran${r.message ? ` (${firstLine(r.message)})` : ''}`);
    else if (notRun.length > 0) why.set(f, `${notRun.length} of ${r.assertionResults.length} tests did not run (${notRun[0]!.status}: ${notRun[0]!.fullName ?? '?'})`);
    else ran.add(f);
  }
  for (const m of ledger?.modules ?? []) {
    const f = rel(m.file);
    if (!ran.has(f)) continue;
    if (m.state !== 'passed' && m.state !== 'failed') { ran.delete(f); why.set(f, `vitest left it ${m.state}`); }
    else if (m.skipped + m.pending > 0) { ran.delete(f); why.set(f, `${m.skipped + m.pending} tests skipped or pending`); }
  }
  const collected = new Set((ledger?.collected ?? []).map(rel));
  const expected = [...new Set([...onDisk, ...collected])].sort();
  const missing = expected.filter(f => !ran.has(f));
  for (const f of missing) {
    const reason = why.get(f) ?? (ledger && !collected.has(f) ? 'on disk but not collected' : 'collected but absent from the report');
    problems.push(`did not run: ${f}: ${reason}`);
  }
  if (ledger) for (const e of ledger.unhandledErrors) problems.push(`unhandled error: ${e.name}: ${firstLine(e.message)}`);
  if (input.exitCode !== 0) problems.push(`vitest exited with status ${input.exitCode}`);

  const lines = [`${tier}: ${passed} passed, ${failed} failed`];
  const unhandled = ledger?.unhandledErrors.length ?? 0;
  lines.push(`${tier}: ${ran.size} of ${expected.length} test files ran, ${missing.length} did not, ${unhandled} unhandled errors`);
  for (const p of problems) lines.push(`${tier}: ${p}`);
  const ok = problems.length === 0 && failed === 0 && expected.length > 0;
  lines.push(`${tier}: ${ok ? 'OK' : 'FAILED'}`);
  return { ok, lines };
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 300);

function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The include globs of one project of test/vitest.config.ts. */
export async function tierIncludes(root: string, tier: string): Promise<string[]> {
  const config = (await import(pathToFileURL(join(root, 'test/vitest.config.ts')).href)).default as {
    test?: { projects?: { test?: { name?: string; include?: string[] } }[] };
  };
  const project = config.test?.projects?.find(p => p.test?.name === tier);
  if (!project?.test?.include) throw new Error(`test/vitest.config.ts has no project named ${tier} with include globs`);
  return project.test.include;
}

async function main(argv: string[]): Promise<number> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`usage: summary.ts --tier T --report FILE --ledger FILE --exit N (missing --${name})`);
    return argv[i + 1]!;
  };
  const root = resolve(import.meta.dirname, '../..');
  const tier = arg('tier');
  const { ok, lines } = summarize({
    tier, root, include: await tierIncludes(root, tier),
    report: readJson<JsonReport>(resolve(arg('report'))),
    ledger: readJson<Ledger>(resolve(arg('ledger'))),
    exitCode: Number(arg('exit')),
  });
  for (const l of lines) console.log(l);
  return ok ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main(process.argv.slice(2)).then(code => process.exit(code), (e: unknown) => {
    console.error(`summary: ${(e as Error).message}`);
    process.exit(1);
  });
}
