/**
 * `npm run bench`: runs every tools/bench/*.bench.ts in turn (or those named on the command line,
 * e.g. `npm run bench -- scanner`). Benchmarks print figures; nothing here passes or fails on time.
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import os from 'node:os';
import { ensurePeers } from './peers.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter(f => f.endsWith('.bench.ts'))
  .filter(f => wanted.length === 0 || wanted.some(w => f.startsWith(w)))
  .sort();

// The comparison peers (noble, ble-host) are installed into tools/bench on first use (peers.ts).
if (!ensurePeers(dir, files, spawnSync)) {
  console.error('npm ci in tools/bench failed; the scanner and notify benchmarks need it');
  process.exit(1);
}

console.log(`blewire benchmarks — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`);
for (const f of files) {
  console.log(`\n## ${f.replace(/\.bench\.ts$/, '')}`);
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as { bench?: () => Promise<void> };
  if (typeof mod.bench !== 'function') throw new Error(`${f} does not export bench()`);
  await mod.bench();
}
