/**
 * Diagnostic, not a bench: does this machine have a slow memory state? (issue 14, session 18). Starts
 * fresh processes one after the other (CHILDREN, default 10); each measures, 7 times interleaved after a
 * warm-up, the hand-written floor's pass over the extended advertising corpus (memory-bound: the corpus
 * is larger than the L2), a random pointer chase over 8 MiB (one cycle through every slot: cache and
 * TLB misses only), and harness.ts's host probe (registers only: the CPU's clock). Prints the median of
 * each per process. On the project's host the floor came out at 255-283 ns per report in most processes
 * and at 395-477 ns in some, minutes apart, with the probe flat: the slow state is the memory system's,
 * and no stack's figure can be read without the floor beside it.
 *   node --expose-gc --import tsx tools/bench/host-memory.ts
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { extendedCorpus } from './adv-corpus.js';
import { advertisingFloor } from './floor.js';
import { cpuMicros, hostProbe, machineLine, range } from './harness.js';

const median = (v: number[]): number => range(v).median;

function child(): void {
  const slots = 2 << 20; // 8 MiB of Int32
  const next = new Int32Array(slots);
  for (let i = 0; i < slots; i++) next[i] = i;
  // Sattolo's shuffle: a single cycle through every slot, so the chase visits all of them.
  let s = 12345;
  for (let i = slots - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    const j = (s >>> 0) % i;
    const t = next[i]!;
    next[i] = next[j]!;
    next[j] = t;
  }
  let at = 0;
  const chase = (steps: number): number => {
    const t0 = cpuMicros();
    for (let k = 0; k < steps; k++) at = next[at]!;
    return (cpuMicros() - t0) * 1000 / steps;
  };
  const corpus = extendedCorpus();
  const floor = advertisingFloor(f => f);
  const pass = (): number => {
    const t0 = cpuMicros();
    for (const p of corpus) floor.feed(p);
    return (cpuMicros() - t0) * 1000 / corpus.length;
  };
  for (let k = 0; k < 3; k++) { chase(200_000); pass(); hostProbe(); }
  const ch: number[] = [], fl: number[] = [], pr: number[] = [];
  for (let r = 0; r < 7; r++) { ch.push(chase(1_000_000)); fl.push(pass()); pr.push(hostProbe() / 1000); }
  console.log(JSON.stringify({ floor: median(fl), chase: median(ch), probe: median(pr), at }));
}

function parent(): void {
  const n = Number(process.env.CHILDREN ?? 10);
  console.log(machineLine());
  console.log(`  ${n} fresh processes, one after the other; medians of 7 rounds each`);
  const rows: Array<{ floor: number; chase: number; probe: number }> = [];
  for (let i = 0; i < n; i++) {
    const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)],
      { encoding: 'utf8', env: { ...process.env, HOST_MEMORY_CHILD: '1' }, timeout: 120_000 });
    if (out.status !== 0) throw new Error(`child ${i} failed: ${out.stderr}`);
    const r = JSON.parse(out.stdout.trim().split('\n').pop()!) as { floor: number; chase: number; probe: number };
    rows.push(r);
    console.log(`    ${new Date().toISOString().slice(11, 19)}  floor ${r.floor.toFixed(0).padStart(4)} ns per extended report` +
      `  chase ${r.chase.toFixed(1).padStart(6)} ns per step  probe ${r.probe.toFixed(2)} ms`);
  }
  const fastest = Math.min(...rows.map(r => r.floor));
  const slow = rows.filter(r => r.floor >= 1.3 * fastest).length;
  console.log(`  ${slow} of ${n} processes ran the floor at 1.3x or more of the fastest one (${fastest.toFixed(0)} ns); ` +
    `probe ${Math.min(...rows.map(r => r.probe)).toFixed(2)}-${Math.max(...rows.map(r => r.probe)).toFixed(2)} ms`);
}

if (process.env.HOST_MEMORY_CHILD) child();
else parent();
