/**
 * A vitest reporter that writes down what the run collected, what ran and which errors escaped every
 * test (unhandled errors), for tools/ci/summary.ts. The JSON reporter alone cannot show a test file
 * that was collected but never ran (a worker blocked past its RPC timeout drops it silently) nor the
 * unhandled errors, so the CI summary could say "57 passed, 0 failed" for a run that lost two files.
 *
 * Written to the file named by BLEWIRE_CI_LEDGER: first at the start of the run with `reason:
 * "incomplete"` (so a run that dies half-way leaves a ledger that says so), then at the end.
 *
 *   vitest run --reporter=default --reporter=./tools/ci/ledger-reporter.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Reporter, TestModule, TestSpecification } from 'vitest/node';

/** The ledger file's shape (tools/ci/summary.ts reads it). */
export interface Ledger {
  /** Absolute paths of the test files vitest collected for this run. */
  collected: string[];
  /** Every test module vitest reported at the end, with its state and test counts. */
  modules: { file: string; state: string; passed: number; failed: number; skipped: number; pending: number }[];
  /** Errors no test caught (unhandled rejections, worker RPC timeouts, errors after a test ended). */
  unhandledErrors: { name: string; message: string }[];
  /** vitest's TestRunEndReason, or 'incomplete' while the run is going (or when it died). */
  reason: string;
}

export default class LedgerReporter implements Reporter {
  private readonly path = process.env.BLEWIRE_CI_LEDGER;
  private collected: string[] = [];

  private write(ledger: Ledger): void {
    if (!this.path) return;
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(this.path, JSON.stringify(ledger, null, 1) + '\n');
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.collected = [...new Set(specifications.map(s => s.moduleId))].sort();
    this.write({ collected: this.collected, modules: [], unhandledErrors: [], reason: 'incomplete' });
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<{ name?: string; message?: string }>, reason: string): void {
    const modules = testModules.map(m => {
      const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
      for (const t of m.children.allTests()) counts[t.result().state]++;
      return { file: m.moduleId, state: m.state(), ...counts };
    });
    this.write({
      collected: this.collected,
      modules,
      unhandledErrors: unhandledErrors.map(e => ({ name: String(e.name ?? 'Error'), message: String(e.message ?? e) })),
      reason,
    });
  }
}
