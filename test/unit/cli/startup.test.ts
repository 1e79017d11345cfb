// `blewire --help` must cost what Node alone does (issue 13: start-up <= 0.25 s; `npm run bench -- cli`
// measures it): the modules main.ts loads before a command is chosen are few and small. This follows
// the static imports (not `import()`) from src/cli/main.ts through src/ and pins the set, so a new
// top-level import of the stack (the transports registry, the UUID tables, the Adapter) fails here.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');

function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  // `import … from './x.js'`, `import './x.js'`, `export … from './x.js'`; type-only imports load nothing.
  for (const m of src.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm)) {
    out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return out;
}

test('blewire --help loads only main, report, stdout, help, fs-errors and errors', () => {
  const seen = new Set<string>();
  const queue = [join(ROOT, 'src/cli/main.ts')];
  while (queue.length) {
    const f = queue.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    queue.push(...staticImports(f));
  }
  expect([...seen].map(f => relative(join(ROOT, 'src'), f)).sort()).toEqual(
    ['cli/fs-errors.ts', 'cli/help.ts', 'cli/main.ts', 'cli/report.ts', 'cli/stdout.ts', 'errors.ts']);
});
