// Pins the README: its library example runs against the sources (on the simulated controller instead
// of hci0), and the commands it names exist. `npm run test:package` runs the same example, and the
// JavaScript ones, unchanged with plain tsc and node against the packed package.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

test('the library example runs against the simulator', async () => {
  const block = /<!-- run by test\/package as example.ts -->\n```ts\n([\s\S]*?)```/.exec(README)?.[1];
  expect(block).toBeDefined();
  const dir = mkdtempSync(join(tmpdir(), 'blewire-readme-'));
  try {
    const code = block!
      .replace("from 'blewire'", `from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/index.ts')).href)}`)
      .replace("transport: process.env.BLEWIRE_TRANSPORT ?? 'hci0'", "transport: 'sim'")
      .replace("'trace.btsnoop'", JSON.stringify(join(dir, 'trace.btsnoop')))
      .replace(/console\.log\(/g, 'log(');
    const file = join(dir, 'example.mts');
    // The example's `await using` scope ends (disconnect) when main's inner block does.
    const imports = code.split('\n').filter(l => l.startsWith('import '));
    const body = code.split('\n').filter(l => !l.startsWith('import ')).join('\n');
    writeFileSync(file, `${imports.join('\n')}\nexport const lines = []; const log = (...a) => lines.push(a.join(' '));\n` +
      `export async function main() {\n{\n${body}\n}\n}\n`);
    const mod = await import(pathToFileURL(file).href) as { main(): Promise<void>; lines: string[] };
    await mod.main();
    expect(mod.lines.some(l => l.includes('Pulse HR'))).toBe(true);
    expect(mod.lines.some(l => l.startsWith('gone:'))).toBe(true);
    expect(readFileSync(join(dir, 'trace.btsnoop')).subarray(0, 8).toString('latin1')).toBe('btsnoop\0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every CLI command the README lists is one blewire knows', async () => {
  const listed = [...README.matchAll(/^blewire (\w+)/gm)].map(m => m[1]!);
  expect(listed.length).toBeGreaterThanOrEqual(8);
  const main = readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8');
  for (const c of listed) expect(main).toContain(`${c}: { load:`);
});

test('the scripts the README names exist', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  for (const s of ['test', 'test:interop', 'test:package', 'bench']) expect(pkg.scripts[s]).toBeDefined();
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  expect(ci).toContain('npm test');
  expect(ci).toContain('npm run test:interop');
  expect(ci).toContain('test/package/package.test.mjs');
  expect(ci).toContain('tools/interop/setup.sh');
});
