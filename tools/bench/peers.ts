/**
 * The stacks the benchmarks compare blewire against (noble, ble-host) are not blewire's dependencies:
 * they live in tools/bench/package.json with their own lock and are installed into
 * tools/bench/node_modules on the first run of a benchmark that needs them, so `npm install` /
 * `npm ci` of blewire never builds their native modules. `--ignore-scripts`: the benchmarks give
 * noble a fake HCI socket, so no native module is built here either.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PEERS = ['@stoprocent/noble', 'ble-host'];
/** The benchmark files that import a peer. */
export const NEEDS_PEERS = new Set(['scanner.bench.ts', 'notify.bench.ts', 'rss.bench.ts']);

export type Spawn = (cmd: string, args: string[], opts: { cwd: string; stdio: 'inherit' }) => { status: number | null };

/**
 * Installs the peers into `dir`/node_modules when one of `files` needs them and they are missing.
 * Returns false when the install failed (the caller stops), true otherwise.
 */
export function ensurePeers(dir: string, files: string[], spawn: Spawn, log: (s: string) => void = console.log): boolean {
  if (!files.some(f => NEEDS_PEERS.has(f))) return true;
  if (PEERS.every(p => existsSync(join(dir, 'node_modules', p, 'package.json')))) return true;
  log(`installing the comparison peers (${PEERS.join(', ')}) into tools/bench/node_modules, once`);
  return spawn('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' }).status === 0;
}
