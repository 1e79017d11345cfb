// The `blewire` command as one file: src/cli/main.ts and everything it can load, bundled with esbuild
// into dist/cli/blewire.cjs (part of `npm run build`); and `blewire-gateway` as another,
// dist/cli/gateway.cjs (src/cli/gateway-main.ts and only what the gateway uses). Why: Node resolves,
// reads and compiles each ES module of dist/ separately (about a hundred for `scan`), which was most of
// the CLI's start-up; one CommonJS file is one read, and src/cli/launch.mjs compiles it as a vm.Script
// whose V8 code cache it keeps (src/cli/run-bundle.mjs says how), which Node 20 cannot do for ES modules.
//
// The packages blewire depends on (ws, debug, the optional native modules, mqtt) stay outside the
// bundle: they are installed next to it, and the native ones cannot be bundled. The library's entries
// are bundled apart (tools/package/bundle-lib.mjs, ES modules with shared chunks); this file is only
// what the bin runs.
//
// The gateway's bundle is also minified (whitespace and syntax; names are kept, so class names, error
// names and stack frames' function names are the sources'): V8 keeps a script's source and the compiled
// top level of its modules for the life of the process, and a gateway runs for months within an
// 80 MB budget (issue 11). Heap snapshots of a gateway scanning, before any device (the memory run of
// tools/bench/gateway.bench.ts, BENCH_GATEWAY_SNAPSHOT): 11.0 MB with the CLI's bundle, 11.5 MB with a
// gateway-only bundle not minified (every module's top level in the one script function, none of them
// lazy), 10.05 MB minified.
//
//   node tools/package/bundle-cli.mjs [--outfile PATH] [--gateway-outfile PATH] [--verbose]
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const argPath = (flag, fallback) => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? resolve(process.argv[i + 1]) : join(ROOT, fallback);
};

async function bundle(entry, outfile, minify) {
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20.19',
    packages: 'external',
    // The one `import.meta.url` in src/ (apps/gateway/mqtt.ts, to require() MQTT.js): in a CommonJS
    // file it is this file's URL, which resolves packages from the same node_modules as dist/.
    define: { 'import.meta.url': '__blewire_bundle_url' },
    banner: { js: "'use strict';\nconst __blewire_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
    legalComments: 'none',
    minifyWhitespace: minify,
    minifySyntax: minify,
    logLevel: 'warning',
    metafile: true,
  });
  // V8 keeps a script's source for as long as the process runs (lazy compilation, Function#toString), and
  // one character above U+007F makes the whole 1.4 MB a two-byte string: 2.8 MB of heap instead of 1.4 MB,
  // in every blewire process (a gateway's RSS budget is 80 MB). esbuild escapes such characters in code
  // (its default charset is ASCII) but not in the comments it keeps; escape them there too (\uXXXX is
  // inert in a comment, and the same character in a string or regular expression).
  const text = readFileSync(outfile, 'utf8');
  if (/[^\x00-\x7f]/.test(text)) writeFileSync(outfile, text.replace(/[^\x00-\x7f]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  if (process.argv.includes('--verbose')) {
    const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
    console.log(`${outfile}: ${bytes} bytes, ${Object.keys(result.metafile.inputs).length} modules`);
  }
}

await bundle('src/cli/main.ts', argPath('--outfile', 'dist/cli/blewire.cjs'), false);
await bundle('src/cli/gateway-main.ts', argPath('--gateway-outfile', 'dist/cli/gateway.cjs'), true);
