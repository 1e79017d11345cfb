// The browser build of blewire/web-bluetooth: src/navigator-browser.ts bundled with esbuild into one ES
// module, dist/browser/web-bluetooth.js, with the platform seam's modules swapped for
// src/platform/browser/ and the transport layer's index for src/transport/browser.ts (a WebSocket is
// a page's only way to a controller). The build fails if anything else reaches a Node built-in: that is
// the check that the protocol layers stay portable (src/platform/index.ts).
//
//   node tools/web/bundle.mjs [--outfile PATH]   (part of `npm run build`)
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');
const arg = process.argv.indexOf('--outfile');
const outfile = arg > 0 ? resolve(process.argv[arg + 1]) : join(ROOT, 'dist/browser/web-bluetooth.js');

const SWAPPED = new Set(['debug', 'events', 'async-context', 'timers', 'crypto', 'files', 'terminal', 'chromium']);

/** Redirects imports of the seam's Node modules (from anywhere in src/ but the browser folder itself). */
const browserSeam = {
  name: 'blewire-browser-seam',
  setup(b) {
    b.onResolve({ filter: /(^|\/)platform\/[a-z-]+\.js$|(^|\/)transport\/index\.js$/ }, args => {
      if (!args.importer.startsWith(SRC) || args.importer.includes(`${SRC}/platform/browser/`)) return undefined;
      const target = resolve(dirname(args.importer), args.path);
      const m = /\/platform\/([a-z-]+)\.js$/.exec(target);
      if (m && SWAPPED.has(m[1])) return { path: join(SRC, 'platform/browser', `${m[1]}.ts`) };
      if (target === join(SRC, 'transport/index.js')) return { path: join(SRC, 'transport/browser.ts') };
      return undefined;
    });
    // Everything else: a `.js` specifier of a TypeScript source.
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, args => {
      if (!args.importer.startsWith(SRC)) return undefined;
      const ts = resolve(dirname(args.importer), args.path).replace(/\.js$/, '.ts');
      return existsSync(ts) ? { path: ts } : undefined;
    });
  },
};

const result = await build({
  entryPoints: [join(SRC, 'navigator-browser.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
  plugins: [browserSeam],
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) console.log(`${outfile}: ${bytes} bytes, ${Object.keys(result.metafile.inputs).length} modules`);
