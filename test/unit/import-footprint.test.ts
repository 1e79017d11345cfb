// What `import 'blewire'` evaluates (issue 14, the import's footprint): the modules the package entry
// reaches through static imports, as Node loads them at import time. Type-only imports are erased
// and dynamic import() runs on first use, so neither counts. The subsystems a scanner or a GATT
// client never needs (the simulator, capture replay, the Web Bluetooth facade, the MQTT gateway, the
// CLI, the recording tools) must stay out of that set: each is loaded on first use or from its own
// entry. A static import that drags one in fails here with the chain that reached it.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';
import { expect, test } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/**
 * The specifiers `file` imports for their values, at load time (no type-only, no import()): relative
 * ones by default, packages and built-ins with `bare`.
 */
function loadTimeImports(file: string, text = readFileSync(file, 'utf8'), bare = false): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const st of sf.statements) {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(st)) {
      if (st.importClause?.isTypeOnly) continue;
      spec = st.moduleSpecifier;
    } else if (ts.isExportDeclaration(st)) {
      if (st.isTypeOnly || !st.moduleSpecifier) continue;
      spec = st.moduleSpecifier;
    }
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.') !== bare) out.push(spec.text);
  }
  return out;
}

/** Every src/ file evaluated by importing `entry`, each with the file that first imported it. */
function closure(entry: string): Map<string, string | undefined> {
  const seen = new Map<string, string | undefined>([[entry, undefined]]);
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const spec of loadTimeImports(f)) {
      const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
      if (!seen.has(target)) {
        seen.set(target, f);
        todo.push(target);
      }
    }
  }
  return seen;
}

function chain(seen: Map<string, string | undefined>, f: string): string {
  const path: string[] = [];
  for (let x: string | undefined = f; x !== undefined; x = seen.get(x)) path.unshift(relative(SRC, x));
  return path.join(' → ');
}

/** Folders of src/ that `import 'blewire'` must not evaluate. */
const NOT_AT_IMPORT = ['sim', 'replay', 'web-bluetooth', 'apps', 'cli', 'tooling'];

test('the walker sees value imports and re-exports, not type-only imports or import()', () => {
  const text = [
    "import { a } from './a.js';", "import './b.js';", "export { c } from './c.js';", "export * as d from './d.js';",
    "import { type E, f } from './ef.js';", "import type { G } from './g.js';", "export type { H } from './h.js';",
    "const i = await import('./i.js');", "import { j } from 'node:fs';",
  ].join('\n');
  expect(loadTimeImports('x.ts', text)).toEqual(['./a.js', './b.js', './c.js', './d.js', './ef.js']);
  expect(loadTimeImports('x.ts', text, true)).toEqual(['node:fs']);
  // transports.ts imports the registry statically and the simulator and replay with import().
  const transports = [...closure(resolve(SRC, 'transports.ts')).keys()].map(f => relative(SRC, f));
  expect(transports).toContain('transport/open.ts');
  expect(transports.some(f => f.startsWith('sim/'))).toBe(false);
  // The simulator's own entry does reach the simulator.
  expect([...closure(resolve(SRC, 'sim/register.ts')).keys()].filter(f => relative(SRC, f).startsWith('sim/')).length).toBeGreaterThan(3);
});

test('import "blewire" evaluates none of the simulator, replay, Web Bluetooth, gateway, CLI or tooling modules', () => {
  const seen = closure(resolve(SRC, 'index.ts'));
  const offenders = [...seen.keys()]
    .filter(f => NOT_AT_IMPORT.includes(relative(SRC, f).split('/')[0]!) || relative(SRC, f) === 'navigator.ts')
    .map(f => chain(seen, f));
  expect(offenders).toEqual([]);
  // The set is the stack itself: the adapter, the scanner and the GATT client are in it.
  const rel = new Set([...seen.keys()].map(f => relative(SRC, f)));
  for (const f of ['api/adapter.ts', 'gap/scanner.ts', 'gatt/client.ts', 'hci/host.ts']) expect(rel).toContain(f);
});

// Node 20 imports a CommonJS package into an ES module by scanning its source with cjs-module-lexer
// first; scanning debug's was enough for V8 to optimise the lexer with TurboFan, whose first use in a
// process brings about 4 MiB of the node binary into memory: `import 'blewire'` cost +12.9 MiB RSS
// with `import createDebug from 'debug'` and +8.9 MiB with require() (platform/debug.ts; `npm run
// bench -- rss`, blewire-import). So at import time the entry reaches Node's built-ins and nothing
// else by `import`: a package it needs then is require()d (createRequire), which does not scan.
test('import "blewire" imports no package but Node built-ins (a CommonJS package is require()d), and not node:crypto or node:net', () => {
  const seen = closure(resolve(SRC, 'index.ts'));
  const packages = [...seen.keys()].flatMap(f => loadTimeImports(f, undefined, true)
    .filter(spec => !spec.startsWith('node:'))
    .map(spec => `${chain(seen, f)} imports ${spec}`));
  expect(packages).toEqual([]);
  // Of the built-ins, not the two a scanner or a GATT client never calls: node:crypto (+1.9 MiB RSS
  // alone: the Security Manager's primitives, platform/crypto.ts, load it on first use) and node:net
  // (+1.5 MiB: the unix and TCP transports, transport/stream.ts, load it when they connect).
  const builtins = new Set([...seen.keys()].flatMap(f => loadTimeImports(f, undefined, true)));
  expect([...builtins].filter(b => b === 'node:crypto' || b === 'node:net')).toEqual([]);
  // The loggers are still debug's, loaded through the platform seam.
  expect([...seen.keys()].map(f => relative(SRC, f))).toContain('platform/debug.ts');
});
