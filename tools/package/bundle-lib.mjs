// The library's entries as a few ES modules instead of about a hundred (part of `npm run build`, after
// tsc): dist/index.js, dist/navigator.js and dist/navigator-dom.js are rebuilt by esbuild from tsc's
// output into entries that import shared chunks in dist/chunks/ (code splitting, so the entries share
// one copy of every class: an Adapter or a BlewireError is the same class whichever entry it came
// from), and what the code loads with import() (the simulator, replay, the gateway, ...) stays a chunk
// of its own, loaded on first use as before.
//
// Why (issue 14, the import's footprint): Node's ES module loader keeps per module a record, its
// resolution, its source text and the promises of its linking, and the allocation of the ~100 modules'
// loading survived long enough to make V8 grow the young generation from 4 to 8 MiB during
// `import 'blewire'`. Measured on this machine (one fresh process each, after a full GC): import of
// tsc's dist/index.js +17.7 MiB RSS, +4.8 MiB heap, young generation grown to 8 MiB; of this build's
// +11.6-11.9 MiB RSS, +2.8 MiB heap, young generation 4 MiB. `npm run bench -- rss` measures it.
//
// tsc's per-module files stay in dist/ beside them (the declarations point at them, and they are what
// the package has always shipped); nothing in the package imports them any more. The packages blewire
// depends on stay outside the chunks (packages: 'external'). keepNames: esbuild writes a class that
// refers to itself as `var Adapter = class _Adapter`, and renames a top-level name that collides in a
// chunk (sameBytes2), and a class's name is observable (BlewireError's name is new.target.name). The
// build checks that every class and function the entries export is named as exported.
//
// keepNames wraps every function expression too, `var hex = __name((b) => ..., "hex")`, and its
// Object.defineProperty of `name` on an anonymous function turns that function's properties into a
// dictionary (256 bytes each: 751 closures, 0.19 MiB of heap at import). Where the call is the whole
// initializer of a binding or property of the same name, the language names the function by itself
// (NamedEvaluation, ECMA-262 13.15.2 and 13.2.5.5), so unwrapNames() below drops those calls (505 of
// them) and the names stay as they were: import of the built entry +8.7-8.9 -> +8.2-8.3 MiB RSS, heap
// 3.64 -> 3.44 MiB (fresh process each, after a full GC).
//
//   node tools/package/bundle-lib.mjs [--verbose]
import { build } from 'esbuild';
import ts from 'typescript';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `text` without the `__name(fn, "x")` calls whose `fn` is an anonymous function or class that is the
 * whole initializer of a variable or property named `x` (it gets that name without the call). Nested
 * calls are dropped on later passes.
 */
function unwrapNames(text) {
  for (;;) {
    const sf = ts.createSourceFile('chunk.js', text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
    const edits = [];
    const visit = node => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === '__name' && node.arguments.length === 2) {
        const [fn, name] = node.arguments;
        const p = node.parent;
        const anonymous = ts.isArrowFunction(fn) || ((ts.isFunctionExpression(fn) || ts.isClassExpression(fn)) && !fn.name);
        const bound = (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) &&
          p.initializer === node && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? p.name.text : undefined;
        if (anonymous && ts.isStringLiteral(name) && bound === name.text) {
          edits.push([node.getStart(sf), node.end, text.slice(fn.getStart(sf), fn.end)]);
          return;
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    if (edits.length === 0) return text;
    for (const [start, end, fn] of edits.reverse()) text = text.slice(0, start) + fn + text.slice(end);
  }
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = join(ROOT, 'dist');
const ENTRIES = ['index', 'navigator', 'navigator-dom'];

const out = mkdtempSync(join(tmpdir(), 'blewire-lib-'));
try {
  const result = await build({
    entryPoints: Object.fromEntries(ENTRIES.map(e => [e, join(DIST, `${e}.js`)])),
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  // esbuild escapes non-ASCII characters in code but keeps the few comments it keeps as they are; one
  // '–' makes V8 hold the whole chunk's source as a two-byte string (twice the heap). In a comment the
  // escape is only text; the check says if one ever lands elsewhere.
  for (const f of Object.keys(result.metafile.outputs)) {
    const text = readFileSync(f, 'utf8');
    const ascii = unwrapNames(text).replace(/[^\x00-\x7f]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    if (ascii !== text) writeFileSync(f, ascii);
  }
  rmSync(join(DIST, 'chunks'), { recursive: true, force: true });
  // The inputs were all read; the entries now replace tsc's.
  cpSync(out, DIST, { recursive: true });
  if (process.argv.includes('--verbose')) {
    for (const [f, o] of Object.entries(result.metafile.outputs)) console.log(`${o.bytes}\t${f.slice(f.indexOf('blewire-lib-')).replace(/^[^/]*\//, 'dist/')}`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

const misnamed = [];
for (const e of ENTRIES) {
  const mod = await import(pathToFileURL(join(DIST, `${e}.js`)).href);
  // Every exported class and function, and those of an exported namespace (smpCrypto), by its own name.
  const check = (key, v) => { if (typeof v === 'function' && v.name !== key.split('.').pop()) misnamed.push(`${e}: ${key} is named ${v.name}`); };
  for (const [k, v] of Object.entries(mod)) {
    check(k, v);
    if (Object.prototype.toString.call(v) === '[object Module]') for (const [k2, v2] of Object.entries(v)) check(`${k}.${k2}`, v2);
  }
}
if (misnamed.length > 0) throw new Error(`bundle-lib: exports named otherwise: ${misnamed.join('; ')}`);
