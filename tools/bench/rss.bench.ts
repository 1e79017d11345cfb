/**
 * Memory with 10,000 advertisers tracked, each stack in a fresh child process (rss-child.mjs), never
 * a delta inside a process that ran other benches: node alone, the import of blewire alone (the built
 * package, dist/: what an application loads, not the TypeScript loader), blewire with its registry
 * configured for 10,000 devices, noble's whole stack, ble-host (the application keeps the last report
 * per advertiser, ble-host keeps none). RSS and JS heap after a full GC, min / median / max of 5
 * children per stack, started interleaved; and the size V8's young generation (both semi-spaces) had
 * grown to, which a full GC keeps: part of each RSS figure that follows from how much survived
 * scavenges, not from what is still held.
 *
 *   npm run bench -- rss
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineLine, range, saveResults, type Range } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const N = 10_000;
const STACKS = ['bare', 'blewire-import', 'blewire', 'noble', 'ble-host'] as const;
const MiB = 2 ** 20;

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** dist/ built from today's src/ (npm run build when a source is newer than the build). */
function ensureBuilt(): void {
  let built = 0;
  try { built = statSync(join(ROOT, 'dist/index.js')).mtimeMs; } catch { /* not built */ }
  if (built >= newest(join(ROOT, 'src'))) return;
  console.log('  building dist/ (npm run build) for the import measurement');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
}

interface Child { tracked: number; start: { rss: number; heap: number }; imported: { rss: number; heap: number }; end: { rss: number; heap: number; young: number } }

export async function bench(): Promise<void> {
  console.log(machineLine());
  ensureBuilt();
  const runs = new Map<string, Child[]>(STACKS.map(s => [s, []]));
  for (let r = 0; r < 5; r++) {
    for (const s of STACKS) {
      const out = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('./rss-child.mjs', import.meta.url)), s, String(N)],
        { encoding: 'utf8', timeout: 120_000 });
      if (out.status !== 0) throw new Error(`rss child ${s} failed: ${out.stderr}`);
      runs.get(s)!.push(JSON.parse(out.stdout.trim().split('\n').pop()!) as Child);
    }
  }
  const f = (r: Range) => `${(r.min / MiB).toFixed(1)} / ${(r.median / MiB).toFixed(1)} / ${(r.max / MiB).toFixed(1)} MiB`;
  console.log(`  RSS of a fresh process (min / median / max of 5), after a full GC; ${N} advertisers (ADV_IND + SCAN_RSP each)`);
  const saved: Record<string, unknown> = {};
  for (const s of STACKS) {
    const c = runs.get(s)!;
    const end = range(c.map(x => x.end.rss)), heap = range(c.map(x => x.end.heap)), young = range(c.map(x => x.end.young));
    const imp = range(c.map(x => x.imported.rss - x.start.rss)), impHeap = range(c.map(x => x.imported.heap - x.start.heap));
    const what = s === 'bare' ? 'node alone' : s === 'blewire-import' ? 'import blewire (dist), nothing else' : `${c[0]!.tracked} advertisers tracked`;
    console.log(`    ${s.padEnd(15)} RSS ${f(end)}  heap ${f(heap)}  young generation ${(young.median / MiB).toFixed(0)} MiB  (${what}; ` +
      `the import: +${(imp.median / MiB).toFixed(1)} MiB RSS, +${(impHeap.median / MiB).toFixed(1)} MiB heap)`);
    saved[s] = { rss: end, heap, young, importRss: imp, importHeap: impHeap, tracked: c[0]!.tracked };
  }
  if (!process.env.BENCH_NO_SAVE) await saveResults('rss', saved);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  bench().catch(e => { console.error(e); process.exitCode = 1; });
}
