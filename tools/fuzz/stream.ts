/**
 * The stream fuzzer's loop, shared by `npm run fuzz` (tools/fuzz/run.ts) and the replay test of
 * saved failing inputs (test/fuzz/fixtures.test.ts): feed a window of inputs, let the target run its
 * window, check every CHECK_EVERY inputs, save the inputs since the last good checkpoint when a
 * check fails.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, Rng, toHex } from './mutate.js';
import { generator, LAYERS, openTarget, type Layer, type Target } from './targets.js';

/** Inputs fed between two windows (honest answers, virtual time, relinking). */
export const WINDOW = 64;
/** Inputs between checkpoints: also the most a saved fixture holds. */
export const CHECK_EVERY = 2048;

export interface Fixture {
  layer: Layer;
  seed: number;
  /** Index (0-based) of the first input of this fixture in the run of that seed. */
  first: number;
  problems: string[];
  /** The inputs since the last good checkpoint, hex. */
  inputs: string[];
}

export interface LayerResult {
  layer: Layer;
  inputs: number;
  packets: number;
  ms: number;
  /** CPU time of the process (user + system) while the layer ran: on a shared machine, the honest rate. */
  cpuMs: number;
  checkpoints: number;
  failures: Fixture[];
  maxTimers: number;
  heapGrowthMb: number;
  /** What the stream let happen (StackTarget): links set up again, operations that succeeded / failed, advertisements seen. */
  relinks: number;
  opsOk: number;
  opsFailed: number;
  advertisements: number;
  /** FilesTarget: inputs read through the file system (the others went to the readers' decoders). */
  viaFiles?: number;
}

/** Exceptions that reached the process while a layer ran (a global hook: one layer runs at a time). */
const escaped: unknown[] = [];
let hooked = false;
function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.on('uncaughtException', e => { escaped.push(e); });
  process.on('unhandledRejection', e => { escaped.push(e); });
}

function takeEscaped(): string[] {
  return escaped.splice(0).map(e => `escaped to the process: ${String((e as Error)?.stack ?? e)}`);
}

export interface RunOptions {
  seed: number;
  /** Stop after this many packets (records, for capture files). */
  packets: number;
  /** Stop after this much wall time. */
  ms: number;
  /** Where failing inputs are saved (undefined: not saved). */
  saveDir?: string;
  /** Give up on a layer after this many failing checkpoints. */
  maxFailures?: number;
  progress?: (layer: Layer, packets: number, ms: number) => void;
}

export async function runLayer(layer: Layer, o: RunOptions): Promise<LayerResult> {
  hookProcess();
  const seed = (o.seed ^ (LAYERS.indexOf(layer) * 0x9e3779b1)) >>> 0;
  const rng = new Rng(seed);
  const gen = generator(layer);
  let target: Target = await openTarget(layer);
  const heap0 = process.memoryUsage().heapUsed;
  let heapMax = heap0;
  const start = performance.now();
  let lastProgress = start;
  const cpu0 = process.cpuUsage();
  const r: LayerResult = { layer, inputs: 0, packets: 0, ms: 0, cpuMs: 0, checkpoints: 0, failures: [], maxTimers: 0, heapGrowthMb: 0,
    relinks: 0, opsOk: 0, opsFailed: 0, advertisements: 0 };
  const tally = (t: Target): void => {
    const s = (t as { stats?: { relinks: number; opsOk: number; opsFailed: number; advertisements: number; viaFiles?: number } }).stats;
    if (!s) return;
    r.relinks += s.relinks; r.opsOk += s.opsOk; r.opsFailed += s.opsFailed; r.advertisements += s.advertisements;
    if (s.viaFiles !== undefined) r.viaFiles = (r.viaFiles ?? 0) + s.viaFiles;
  };
  let since: Uint8Array[] = [];
  let first = 0;
  const stop = (): boolean => r.packets >= o.packets || performance.now() - start >= o.ms || r.failures.length >= (o.maxFailures ?? 5);
  while (!stop()) {
    for (let i = 0; i < WINDOW; i++) {
      const input = gen(rng);
      since.push(input);
      r.inputs++;
      r.packets += target.feed(input);
    }
    await target.window();
    if (since.length >= CHECK_EVERY || stop()) {
      const problems = [...await target.checkpoint(), ...takeEscaped()];
      r.checkpoints++;
      const stats = (target as { stats?: { timers: number } }).stats;
      if (stats) r.maxTimers = Math.max(r.maxTimers, stats.timers);
      heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
      if (problems.length) {
        const fx: Fixture = { layer, seed, first, problems, inputs: since.map(toHex) };
        r.failures.push(fx);
        if (o.saveDir) saveFixture(o.saveDir, fx);
        // The state that failed is suspect: carry on from a fresh adapter.
        tally(target);
        await target.close().catch(() => undefined);
        target = await openTarget(layer);
      }
      first = r.inputs;
      since = [];
    }
    const now = performance.now();
    if (o.progress && now - lastProgress > 10_000) {
      lastProgress = now;
      o.progress(layer, r.packets, now - start);
    }
  }
  tally(target);
  const left = [...await target.close(), ...takeEscaped()];
  if (left.length) {
    const fx: Fixture = { layer, seed, first, problems: left, inputs: since.map(toHex) };
    r.failures.push(fx);
    if (o.saveDir) saveFixture(o.saveDir, fx);
  }
  r.ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  r.cpuMs = (cpu.user + cpu.system) / 1000;
  r.heapGrowthMb = (heapMax - heap0) / 1048576;
  return r;
}

export function saveFixture(dir: string, fx: Fixture): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${fx.layer}-${fx.seed}-${fx.first}.json`);
  writeFileSync(path, `${JSON.stringify(fx, null, 1)}\n`);
  return path;
}

export function loadFixtures(dir: string): Array<{ name: string; fixture: Fixture }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter(n => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map(name => ({ name, fixture: JSON.parse(readFileSync(join(dir, name), 'utf8')) as Fixture }));
}

/** Feed a saved fixture to a fresh target the way the run did; the problems found (none: it passes). */
export async function replayFixture(fx: Fixture): Promise<string[]> {
  hookProcess();
  takeEscaped();
  const target = await openTarget(fx.layer);
  for (let i = 0; i < fx.inputs.length; i += WINDOW) {
    for (const hex of fx.inputs.slice(i, i + WINDOW)) target.feed(fromHex(hex));
    await target.window();
  }
  return [...await target.checkpoint(), ...await target.close(), ...takeEscaped()];
}
