/**
 * `npm run bench`: runs every tools/bench/*.bench.ts in turn (or those named on the command line,
 * e.g. `npm run bench -- scanner`). Benchmarks print figures; nothing here passes or fails on time.
 */
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import os from 'node:os';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter(f => f.endsWith('.bench.ts'))
  .filter(f => wanted.length === 0 || wanted.some(w => f.startsWith(w)))
  .sort();

// The stacks compared against (noble, ble-host) are not blewire's dependencies: they live in
// tools/bench/package.json with their own lock and are installed on the first run of a benchmark
// that needs them. --ignore-scripts: the benchmarks give noble a fake HCI socket, so no native module
// is built.
const PEERS = ['@stoprocent/noble', 'ble-host'];
const NEEDS_PEERS = new Set(['scanner.bench.ts', 'notify.bench.ts']);
if (files.some(f => NEEDS_PEERS.has(f)) && !PEERS.every(p => existsSync(join(dir, 'node_modules', p, 'package.json')))) {
  console.log(`installing the comparison peers (${PEERS.join(', ')}) into tools/bench/node_modules, once`);
  const r = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('npm ci in tools/bench failed; the scanner and notify benchmarks need it');
    process.exit(1);
  }
}

console.log(`blewire benchmarks — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`);
for (const f of files) {
  console.log(`\n## ${f.replace(/\.bench\.ts$/, '')}`);
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as { bench?: () => Promise<void> };
  if (typeof mod.bench !== 'function') throw new Error(`${f} does not export bench()`);
  await mod.bench();
}
