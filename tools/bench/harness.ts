/**
 * The rules every comparative benchmark follows, in one place, so no figure can flatter us (issue 14):
 *  - CPU time of this process (process.cpuUsage: user + system), not wall time: the machine is shared;
 *  - the stacks interleaved round by round in one process (round r runs every contender once, in an
 *    order rotated per round), so a burst of load hits them all alike;
 *  - min / median / max over ≥ 5 rounds, all printed;
 *  - no gc() inside a measured section (garbage a stack makes is part of its cost: the collector runs
 *    when it runs, and is charged to whoever is running); allocation is measured apart, after the rounds;
 *  - the machine's load average printed with every run;
 *  - what each contender delivered for the same input, printed next to its cost;
 *  - the CPU's own speed beside every round (hostProbe). On this project's shared host the same code,
 *    the hand-written floor included, has measured 1.3-1.8x apart between processes and from one
 *    minute to the next at the same load, with the probe steady: that state is the memory system (a
 *    memory-bound pass slows, a loop in registers does not), and it shows in the floor, which walks
 *    the same corpus beside every stack; the probe rules out the CPU clock.
 * Figures only: nothing here passes or fails on time.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';

export interface Contender {
  name: string;
  /** One pass over the corpus: returns when everything fed was handled (a promise when the pass yields). */
  pass(): void | Promise<void>;
  /** What the stack handed the application so far (advertisements, notifications, …). */
  delivered(): number;
  /** What a delivery is, in words ("merged discover events"). */
  unit?: string;
}

export interface Range { min: number; median: number; max: number }

export interface Result {
  name: string;
  /** CPU ns per input unit, per round. */
  samples: number[];
  ns: Range;
  /** Deliveries per pass. */
  deliveredPerPass: number;
  unit: string | undefined;
  /** Bytes allocated per input unit (measured apart, undefined without --expose-gc). */
  allocPerUnit?: number;
  /** The host probe's reading in each of the same rounds (hostProbe: CPU µs). */
  probeSamples?: number[];
}

export const range = (v: number[]): Range => {
  const s = [...v].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};

/** user + system CPU µs of this process. */
export function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** Steps of hostProbe's loop: about 3 ms of CPU on the project's host. */
const PROBE_STEPS = 1 << 21;
let probeSink = 1;
/**
 * The CPU's speed, as CPU µs of a fixed loop of integer multiplies and XORs: registers only, no
 * memory traffic and no allocation, so nothing any stack did before it changes what it costs; only
 * the machine does (its clock, a neighbour on the same core). It does not see the memory system (cache
 * share, page placement): the floor does. Read once per round by interleave(), printed by report()
 * beside the figures. Lower is faster; compare readings of one machine only.
 */
export function hostProbe(): number {
  const t0 = cpuMicros();
  let h = probeSink;
  for (let i = 0; i < PROBE_STEPS; i++) h = (Math.imul(h ^ i, 0x9e3779b1) + 7) | 0;
  probeSink = h | 1;
  return cpuMicros() - t0;
}

/** One line saying where and under what load the figures were taken. */
export function machineLine(): string {
  const l = os.loadavg().map(x => x.toFixed(2)).join(' ');
  let l2 = '';
  try { l2 = `, L2 ${Number(execFileSync('getconf', ['LEVEL2_CACHE_SIZE']).toString()) >> 10} KiB/core`; } catch { /* not Linux */ }
  return `node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}${l2}; load average ${l} (1/5/15 min)`;
}

/**
 * Run every contender's pass `rounds` times, interleaved; `units` input units per pass. One warm-up
 * pass each first (not measured). Returns CPU ns per unit, min/median/max.
 */
export async function interleave(contenders: Contender[], units: number, rounds = 7): Promise<Result[]> {
  if (rounds < 5) throw new Error('benchmarks take at least 5 rounds');
  const samples = contenders.map(() => [] as number[]);
  const deliveredPerPass = contenders.map(() => 0);
  for (const c of contenders) await c.pass();
  for (let k = 0; k < 5; k++) hostProbe(); // compiled before its first reading
  const probes: number[] = [];
  const diag = process.env.BENCH_DIAG ? await gcDiagnostics() : undefined;
  for (let r = 0; r < rounds; r++) {
    probes.push(hostProbe());
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + r) % contenders.length;
      const c = contenders[i]!;
      const d0 = c.delivered();
      const m0 = diag?.mainThreadNs();
      const ru0 = diag ? process.resourceUsage() : undefined;
      const w0 = performance.now();
      const t0 = cpuMicros();
      await c.pass();
      const us = cpuMicros() - t0;
      if (diag) {
        const mainUs = (diag.mainThreadNs() - m0!) / 1000;
        const ru1 = process.resourceUsage();
        const sysMs = (ru1.systemCPUTime - ru0!.systemCPUTime) / 1000, faults = ru1.minorPageFault - ru0!.minorPageFault;
        const w1 = performance.now();
        diag.rows.push(gcMs => `      diag round ${r} ${c.name.padEnd(28)} process ${(us / 1000).toFixed(1)} ms, main thread ${(mainUs / 1000).toFixed(1)} ms, ` +
          `other threads ${((us - mainUs) / 1000).toFixed(1)} ms, GC pauses ${gcMs(w0, w1).toFixed(1)} ms, system ${sysMs.toFixed(1)} ms, ` +
          `${faults} minor page faults (${(us * 1000 / units).toFixed(0)} ns per unit)`);
      }
      samples[i]!.push((us * 1000) / units);
      deliveredPerPass[i] = c.delivered() - d0;
    }
  }
  if (diag) {
    await new Promise(r => setTimeout(r, 50));
    for (const row of diag.rows) console.log(row(diag.pausesBetween));
    diag.stop();
  }
  return contenders.map((c, i) => ({ name: c.name, samples: samples[i]!, ns: range(samples[i]!), deliveredPerPass: deliveredPerPass[i]!, unit: c.unit, probeSamples: probes }));
}

/**
 * BENCH_DIAG=1: per round, the process's CPU split into the main thread's (Linux schedstat, ns) and
 * the other threads' (V8's concurrent marking and sweeping, compilers), the GC pauses on the main
 * thread, and the kernel's share (system CPU, minor page faults: pages the heap touched afresh), to see
 * what makes rounds vary. Printed only; the figures stay the process's CPU time.
 */
async function gcDiagnostics() {
  const { readFileSync } = await import('node:fs');
  const { PerformanceObserver } = await import('node:perf_hooks');
  const pauses: Array<{ start: number; duration: number }> = [];
  const obs = new PerformanceObserver(list => { for (const e of list.getEntries()) pauses.push({ start: e.startTime, duration: e.duration }); });
  obs.observe({ entryTypes: ['gc'] });
  return {
    rows: [] as Array<(gcMs: (a: number, b: number) => number) => string>,
    mainThreadNs: (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]),
    pausesBetween: (a: number, b: number): number => pauses.filter(p => p.start >= a && p.start < b).reduce((t, p) => t + p.duration, 0),
    stop: () => obs.disconnect(),
  };
}

/**
 * Bytes allocated per unit by `run` (which handles `units` input units): heap growth over a batch
 * small enough that no scavenge runs in between, after a full collection; median of 5. Outside any
 * measured section; undefined without --expose-gc.
 */
export async function allocation(run: () => void | Promise<void>, units: number): Promise<number | undefined> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const v: number[] = [];
  for (let k = 0; k < 5; k++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    await run();
    const after = process.memoryUsage().heapUsed;
    v.push(Math.max(0, after - before) / units);
  }
  return range(v).median;
}

/**
 * Bytes allocated per unit, counted by V8's sampling heap profiler (node:inspector), objects collected
 * by either GC included: 3 windows of 5 runs of `run` each, after one run outside them; the least
 * window is returned. Unlike a heapUsed delta, this counts what was allocated and nothing else: a
 * heapUsed delta also moves with the young generation's bookkeeping (a microtask checkpoint inside the
 * run added about 200 B per report to it with no allocation behind it: same scavenge count, same
 * sampled bytes). The least window, because starting the profiler now and then deoptimises the
 * application's callback for a while, which shows as allocation (boxed numbers) the stack does not
 * make. Statistical: one sample per 64 bytes on average.
 */
export async function sampledAllocation(run: () => void | Promise<void>, units: number): Promise<number> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  let least = Infinity;
  try {
    for (let w = 0; w < 3; w++) {
      await run();
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
      });
      for (let k = 0; k < 5; k++) await run();
      const { profile } = await session.post('HeapProfiler.stopSampling');
      let bytes = 0;
      const walk = (n: { selfSize: number; children: unknown[] }): void => {
        bytes += n.selfSize;
        for (const c of n.children) walk(c as typeof n);
      };
      walk(profile.head as unknown as { selfSize: number; children: unknown[] });
      least = Math.min(least, bytes / (5 * units));
    }
    return least;
  } finally {
    session.disconnect();
  }
}

export const fmtNs = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
export const fmtRange = (r: Range): string => `${fmtNs(r.min)} / ${fmtNs(r.median)} / ${fmtNs(r.max)}`;

/**
 * The table every comparative bench prints: per contender min / median / max CPU per unit, what it
 * delivered per pass, bytes allocated per unit, and the median as × floor and the ratio to `versus`.
 */
export function report(what: string, results: Result[], opts: { floor?: string; versus?: string[] } = {}): void {
  const floor = results.find(r => r.name === opts.floor);
  console.log(`  ${what}: CPU per input, min / median / max of ${results[0]!.samples.length} interleaved rounds`);
  for (const r of results) {
    const xf = floor && r !== floor ? `  ${(r.ns.median / floor.ns.median).toFixed(1)}× floor` : '';
    const alloc = r.allocPerUnit === undefined ? '' : `  alloc ≈ ${r.allocPerUnit.toFixed(0)} B`;
    console.log(`    ${r.name.padEnd(30)} ${fmtRange(r.ns).padStart(30)}${xf}${alloc}  delivers ${r.deliveredPerPass}${r.unit ? ' ' + r.unit : ''}/pass`);
  }
  const main = results[0]!;
  for (const v of opts.versus ?? []) {
    const o = results.find(r => r.name === v);
    if (!o) continue;
    // The ratio's range: worst and best pairing of the two stacks' rounds (interleaved, so round by round).
    const ratios = main.samples.map((s, i) => o.samples[i]! / s);
    const rr = range(ratios);
    console.log(`    ${main.name} vs ${v}: ${rr.median.toFixed(1)}× faster (round by round ${rr.min.toFixed(1)}–${rr.max.toFixed(1)}×)`);
  }
  if (main.probeSamples) {
    const p = range(main.probeSamples);
    const ms = (us: number): string => (us / 1000).toFixed(2);
    console.log(`    host probe (a fixed integer loop, once per round: the CPU's speed, lower is faster): ${ms(p.min)} / ${ms(p.median)} / ${ms(p.max)} ms`);
  }
}

/** Figures for the README chart (tools/bench/chart.ts reads them from tools/bench/results/). */
export async function saveResults(name: string, data: unknown): Promise<void> {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`${name}.json`, dir), JSON.stringify({ when: new Date().toISOString(), machine: machineLine(), data }, null, 2) + '\n');
}

/** Yield to the event loop (between chunks of input, as a socket read would). */
export const turn = (): Promise<void> => new Promise(r => setImmediate(r));
