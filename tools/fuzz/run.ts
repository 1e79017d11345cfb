/**
 * `npm run fuzz`: stream fuzzing of every layer (issue 15), not part of `npm test`.
 *
 *   npm run fuzz                                   # every layer, 200 000 packets each
 *   npm run fuzz -- --packets 10000000             # the 10 M per layer target
 *   npm run fuzz -- --minutes 5 --layer att-client,smp --seed 42
 *
 * Layers: hci-events, acl-l2cap, signalling, att-client, att-server, smp, ad, capture, files (hostile files on disk). Each runs on one
 * persistent adapter fed a stream of hostile input (tools/fuzz/targets.ts says what is checked). A
 * failing checkpoint saves the inputs since the last good one under test/fixtures/fuzz/ (--out DIR),
 * which test/fuzz/fixtures.test.ts replays in `npm test`. Exit status 1 when anything failed.
 */
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { LAYERS, type Layer } from './targets.js';
import { runLayer, type LayerResult } from './stream.js';

function usage(msg: string): never {
  console.error(`fuzz: ${msg}\nusage: npm run fuzz -- [--layer L1,L2] [--packets N | --minutes M] [--seed S] [--out DIR]\nlayers: ${LAYERS.join(', ')}`);
  process.exit(2);
}

const args = process.argv.slice(2);
let layers: Layer[] = [...LAYERS];
let packets = Number.POSITIVE_INFINITY;
let ms = Number.POSITIVE_INFINITY;
let seed = Date.now() % 0x7fffffff;
let out = fileURLToPath(new URL('../../test/fixtures/fuzz/', import.meta.url));
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  const v = args[i + 1];
  const num = (): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) usage(`${a} needs a positive number`);
    i++;
    return n;
  };
  if (a === '--layer') {
    if (!v) usage('--layer needs a value');
    const want = v.split(',');
    for (const w of want) if (!(LAYERS as readonly string[]).includes(w)) usage(`unknown layer ${w}`);
    layers = want as Layer[];
    i++;
  } else if (a === '--packets') packets = Math.floor(num());
  else if (a === '--minutes') ms = num() * 60_000;
  else if (a === '--seed') seed = Math.floor(num());
  else if (a === '--out') { if (!v) usage('--out needs a directory'); out = v; i++; }
  else usage(`unknown argument ${a}`);
}
if (packets === Number.POSITIVE_INFINITY && ms === Number.POSITIVE_INFINITY) packets = 200_000;

const gcNote = (globalThis as { gc?: unknown }).gc ? '' : ' (no --expose-gc: memory checks see garbage too)';
console.log(`blewire stream fuzz — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, load ${os.loadavg().map(l => l.toFixed(1)).join(' ')}`);
console.log(`seed ${seed}; per layer: ${packets === Number.POSITIVE_INFINITY ? '' : `${packets} packets`}${packets !== Number.POSITIVE_INFINITY && ms !== Number.POSITIVE_INFINITY ? ' or ' : ''}${ms === Number.POSITIVE_INFINITY ? '' : `${ms / 60_000} min`}${gcNote}`);

const results: LayerResult[] = [];
for (const layer of layers) {
  const r = await runLayer(layer, {
    seed, packets, ms, saveDir: out,
    progress: (l, n, t) => console.log(`  ${l}: ${n} packets, ${Math.round(n / (t / 1000))}/s`),
  });
  results.push(r);
  const rate = Math.round(r.packets / (r.ms / 1000));
  const cpuRate = Math.round(r.packets / (r.cpuMs / 1000));
  console.log(`${layer.padEnd(11)} ${String(r.packets).padStart(10)} packets ${(r.ms / 1000).toFixed(1).padStart(7)} s ${String(rate).padStart(8)}/s` +
    ` (${cpuRate}/CPU-s)` +
    `  checkpoints ${r.checkpoints}  max timers ${r.maxTimers}  heap +${r.heapGrowthMb.toFixed(1)} MB  failures ${r.failures.length}` +
    (layer === 'capture' || layer === 'files' ? (layer === 'files' ? `  (reads ok ${r.opsOk} / refused typed ${r.opsFailed}; ${r.viaFiles ?? 0} through the file system)` : '') : `  (links ${r.relinks}, operations ok ${r.opsOk} / failed ${r.opsFailed}, advertisements ${r.advertisements})`));
  for (const f of r.failures) console.log(`  FAILED at input ${f.first}: ${f.problems.slice(0, 3).join(' | ').slice(0, 600)}`);
}
const total = results.reduce((n, r) => n + r.packets, 0);
const failed = results.reduce((n, r) => n + r.failures.length, 0);
console.log(`\n${total} packets in ${(results.reduce((n, r) => n + r.ms, 0) / 1000).toFixed(1)} s; load now ${os.loadavg()[0]!.toFixed(1)}; ${failed} failing checkpoint(s)${failed ? `, inputs saved under ${out}` : ''}`);
process.exit(failed ? 1 : 0);
