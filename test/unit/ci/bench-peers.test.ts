// The stacks the benchmarks compare against (noble, ble-host) are not in blewire's own install:
// they are declared and locked in tools/bench and installed there on the first benchmark run that
// needs them (issue 13, "npm install for a contributor compiles only what the product needs").
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ensurePeers, PEERS, type Spawn } from '../../../tools/bench/peers.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'blewire-bench-peers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function recorder(status = 0): { spawn: Spawn; calls: { cmd: string; args: string[]; cwd: string }[] } {
  const calls: { cmd: string; args: string[]; cwd: string }[] = [];
  return { calls, spawn: (cmd, args, opts) => { calls.push({ cmd, args, cwd: opts.cwd }); return { status }; } };
}

describe('benchmark peers', () => {
  test('are not dependencies of blewire, and are declared and locked in tools/bench', () => {
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const kind of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const p of PEERS) expect(Object.keys(root[kind] ?? {})).not.toContain(p);
    }
    const rootLock = readFileSync(join(ROOT, 'package-lock.json'), 'utf8');
    for (const p of PEERS) expect(rootLock).not.toContain(`"node_modules/${p}"`);
    const bench = JSON.parse(readFileSync(join(ROOT, 'tools/bench/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(bench.dependencies).sort()).toEqual([...PEERS].sort());
    const lock = readFileSync(join(ROOT, 'tools/bench/package-lock.json'), 'utf8');
    for (const p of PEERS) expect(lock).toContain(`"node_modules/${p}"`);
  });

  test('a benchmark that needs them installs them once, with npm ci --ignore-scripts in tools/bench', () => {
    const dir = join(tmp, 'first');
    mkdirSync(dir);
    const r = recorder();
    const log: string[] = [];
    expect(ensurePeers(dir, ['ad.bench.ts', 'scanner.bench.ts'], r.spawn, s => log.push(s))).toBe(true);
    expect(r.calls).toEqual([{ cmd: 'npm', args: ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], cwd: dir }]);
    expect(log[0]).toMatch(/installing the comparison peers/);
    // Installed: the next run does not install again.
    for (const p of PEERS) {
      mkdirSync(join(dir, 'node_modules', p), { recursive: true });
      writeFileSync(join(dir, 'node_modules', p, 'package.json'), '{}');
    }
    const again = recorder();
    expect(ensurePeers(dir, ['notify.bench.ts'], again.spawn, () => undefined)).toBe(true);
    expect(again.calls).toEqual([]);
  });

  test('benchmarks that do not compare against a peer install nothing; a failed install is reported', () => {
    const dir = join(tmp, 'none');
    mkdirSync(dir);
    const r = recorder();
    expect(ensurePeers(dir, ['ad.bench.ts', 'capture.bench.ts'], r.spawn, () => undefined)).toBe(true);
    expect(r.calls).toEqual([]);
    expect(ensurePeers(dir, ['notify.bench.ts'], recorder(1).spawn, () => undefined)).toBe(false);
  });
});
