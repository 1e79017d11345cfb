// The bin's V8 code cache (src/cli/run-bundle.mjs): a hit on the second run, a private folder (0700)
// and files (0600), and every kind of doubt a miss that still runs the program: a damaged, truncated,
// foreign-mode or linked cache file, a stale one (same length, other bundle), a folder open to others,
// a folder that is a link or a file. Each run is a new Node process, as the bin is.
import { spawnSync } from 'node:child_process';
import {
  chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';

const RUNNER = resolve(import.meta.dirname, '../../../src/cli/run-bundle.mjs');
let work: string;
let bundle: string;

/** A bundle big enough that V8 makes a real cache of it: many functions, all called. */
function writeBundle(tag: string): void {
  const fns = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x + ${i} * 2; }`).join('\n');
  const calls = Array.from({ length: 200 }, (_, i) => `f${i}(1)`).join(' + ');
  writeFileSync(bundle, `${fns}\nconsole.log('${tag}', ${calls}, typeof require, typeof module.exports);\n`);
}

/** Runs the bundle in a new process; returns its stdout and what runBundle said of the cache. */
function run(env: Record<string, string>): { out: string; status: string; code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { runBundle } = await import(${JSON.stringify(RUNNER)}); process.stderr.write('CACHE ' + runBundle(${JSON.stringify(bundle)}, '1.2.3', ['scan']) + '\\n');`],
  { encoding: 'utf8', env: { ...process.env, BLEWIRE_CODE_CACHE: '', ...env } });
  return { out: r.stdout.trim(), status: /CACHE (\w+)/.exec(r.stderr)?.[1] ?? '', code: r.status, stderr: r.stderr };
}

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'blewire-code-cache-'));
  bundle = join(work, 'bundle.cjs');
  writeBundle('A');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const cacheFiles = (dir: string): string[] => readdirSync(dir).filter(f => f.endsWith('.v8cache'));
const expected = `A ${Array.from({ length: 200 }, (_, i) => 1 + i * 2).reduce((a, b) => a + b)} function object`;

test('a miss writes a 0600 file in a 0700 folder; the next run hits it', () => {
  const xdg = join(work, 'xdg');
  const first = run({ XDG_CACHE_HOME: xdg });
  expect([first.out, first.status, first.code]).toEqual([expected, 'miss', 0]);
  const dir = join(xdg, 'blewire');
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  const files = cacheFiles(dir);
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^scan\.[0-9a-f]{32}\.v8cache$/);
  expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
  const second = run({ XDG_CACHE_HOME: xdg });
  expect([second.out, second.status, second.code]).toEqual([expected, 'hit', 0]);
  expect(readdirSync(dir)).toEqual(files); // no temporary file left behind
});

test('a damaged, truncated, foreign-mode or linked cache file is a miss, and the program still runs', () => {
  const xdg = join(work, 'xdg');
  run({ XDG_CACHE_HOME: xdg });
  const dir = join(xdg, 'blewire');
  const file = join(dir, cacheFiles(dir)[0]!);
  const good = readFileSync(file);
  const damages: [string, () => void][] = [
    ['a flipped payload byte', () => { const b = Buffer.from(good); b[b.length - 10]! ^= 0xff; writeFileSync(file, b, { mode: 0o600 }); }],
    ['a flipped header byte', () => { const b = Buffer.from(good); b[3]! ^= 0xff; writeFileSync(file, b, { mode: 0o600 }); }],
    ['truncated', () => writeFileSync(file, good.subarray(0, good.length - 100), { mode: 0o600 })],
    ['empty', () => writeFileSync(file, '', { mode: 0o600 })],
    ['garbage', () => writeFileSync(file, Buffer.alloc(4096, 0x41), { mode: 0o600 })],
    ['mode 0644', () => { writeFileSync(file, good); chmodSync(file, 0o644); }],
    ['a symbolic link to a good copy', () => {
      const copy = join(work, 'copy.v8cache');
      writeFileSync(copy, good, { mode: 0o600 });
      symlinkSync(copy, file);
    }],
    ['a directory', () => mkdirSync(file)],
  ];
  for (const [what, damage] of damages) {
    rmSync(file, { recursive: true, force: true }); // the previous damage, or the file a run rewrote
    damage();
    const r = run({ XDG_CACHE_HOME: xdg });
    expect([what, r.out, r.status, r.code, r.stderr.replace(/CACHE \w+\n/, '')]).toEqual([what, expected, 'miss', 0, '']);
  }
  // After a plain damage the next run rewrote a good file: a hit again.
  rmSync(file, { recursive: true, force: true });
  writeFileSync(file, Buffer.alloc(100), { mode: 0o600 });
  run({ XDG_CACHE_HOME: xdg });
  expect(run({ XDG_CACHE_HOME: xdg }).status).toBe('hit');
});

test('another bundle of the same length never gets the old cache; the old file is replaced', () => {
  const xdg = join(work, 'xdg');
  run({ XDG_CACHE_HOME: xdg });
  const dir = join(xdg, 'blewire');
  const old = cacheFiles(dir);
  const oldData = readFileSync(join(dir, old[0]!));
  writeBundle('B'); // same length, other content: V8 alone would accept the old data
  const r = run({ XDG_CACHE_HOME: xdg });
  expect([r.out, r.status]).toEqual([expected.replace(/^A/, 'B'), 'miss']);
  const now = cacheFiles(dir);
  expect(now).toHaveLength(1);
  expect(now[0]).not.toBe(old[0]);
  // A file of the old bundle put back under the new name (the header's bundle hash differs): a miss.
  writeFileSync(join(dir, now[0]!), oldData, { mode: 0o600 });
  const again = run({ XDG_CACHE_HOME: xdg });
  expect([again.out, again.status]).toEqual([expected.replace(/^A/, 'B'), 'miss']);
  expect(run({ XDG_CACHE_HOME: xdg }).status).toBe('hit');
});

test('a folder that is not private, a link, or not a folder at all: the cache is off and the program runs', () => {
  const open = join(work, 'open');
  mkdirSync(join(open, 'blewire'), { recursive: true, mode: 0o755 });
  chmodSync(join(open, 'blewire'), 0o755);
  const linked = join(work, 'linked');
  mkdirSync(linked);
  const target = join(work, 'target');
  mkdirSync(target, { mode: 0o700 });
  symlinkSync(target, join(linked, 'blewire'));
  const file = join(work, 'file');
  mkdirSync(file);
  writeFileSync(join(file, 'blewire'), 'not a folder');
  const under = join(work, 'under-a-file');
  writeFileSync(under, 'x');
  for (const xdg of [open, linked, file, under]) {
    for (let i = 0; i < 2; i++) {
      const r = run({ XDG_CACHE_HOME: xdg });
      expect([xdg, r.out, r.status, r.code]).toEqual([xdg, expected, 'off', 0]);
    }
  }
  expect(readdirSync(join(open, 'blewire'))).toEqual([]);
  expect(readdirSync(target)).toEqual([]);
});

test('BLEWIRE_CODE_CACHE=0 turns it off; a relative XDG_CACHE_HOME is not used', () => {
  const xdg = join(work, 'xdg');
  expect(run({ XDG_CACHE_HOME: xdg, BLEWIRE_CODE_CACHE: '0' }).status).toBe('off');
  expect(() => statSync(xdg)).toThrow();
  const home = join(work, 'home');
  mkdirSync(home);
  const r = run({ XDG_CACHE_HOME: 'relative/dir', HOME: home });
  expect(r.status).toBe('miss');
  expect(cacheFiles(join(home, '.cache/blewire'))).toHaveLength(1);
});
