// Pins the layer direction of ARCHITECTURE.md: every static import in src/ goes to the same folder or
// to one the importing folder may depend on (api → gatt → att → l2cap → hci → transport → capture →
// codec → bytes; gap on hci; sim and inspect on the codecs and the stack, never on api). A change
// that points an arrow upward fails here with the file and the import.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');
/** Files at the top of src/ that every layer may use (they import nothing of the stack). */
const BASE = new Set(['errors', 'clock', 'log', 'operation']);

const BELOW: Record<string, string[]> = {
  bytes: [],
  // platform/ wraps Node built-ins (crypto, fs, ...) and depends on nothing of the stack.
  platform: [],
  codec: ['bytes'],
  capture: ['codec', 'bytes'],
  transport: ['capture', 'codec', 'bytes'],
  hci: ['transport', 'capture', 'codec', 'bytes'],
  l2cap: ['hci', 'transport', 'codec', 'bytes'],
  att: ['l2cap', 'codec', 'bytes'],
  smp: ['platform', 'l2cap', 'codec', 'bytes'],
  gatt: ['att', 'l2cap', 'codec', 'bytes', 'platform'],
  gap: ['l2cap', 'hci', 'transport', 'codec', 'bytes'],
  inspect: ['att', 'smp', 'l2cap', 'hci', 'gap', 'capture', 'codec', 'bytes'],
  sim: ['gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
  api: ['gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'inspect', 'codec', 'bytes', 'platform'],
  replay: ['api', 'sim', 'inspect', 'gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
  cli: ['api', 'replay', 'sim', 'inspect', 'gatt', 'att', 'smp', 'l2cap', 'gap', 'hci', 'transport', 'capture', 'codec', 'bytes', 'platform'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The folder (layer) of a path under src/, or the base file's name for errors/clock/log/index. */
function layerOf(path: string): string {
  const rel = relative(SRC, path).replace(/\\/g, '/');
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.(ts|js)$/, '') : parts[0]!;
}

test('every static import in src/ respects the layer direction', () => {
  const wrong: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (from === 'index') continue; // the public surface re-exports every layer
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)) {
      const to = layerOf(resolve(dirname(file), m[1]!));
      if (to === from || BASE.has(to)) continue;
      if (BASE.has(from) || !(BELOW[from] ?? []).includes(to)) {
        wrong.push(`${relative(SRC, file)} (${from}) imports ${m[1]} (${to})`);
      }
    }
  }
  expect(wrong).toEqual([]);
});

test('the layer table names every folder of src/', () => {
  const folders = readdirSync(SRC).filter(n => statSync(join(SRC, n)).isDirectory());
  expect(folders.filter(f => !(f in BELOW))).toEqual([]);
});
