/**
 * debug's `createDebug` (the per-layer loggers of ../log.ts), loaded with `require()`.
 *
 * Why not `import createDebug from 'debug'` (issue 14, the import's footprint): debug is CommonJS, and
 * Node 20 imports a CommonJS module into an ES module by first scanning its source for named exports
 * with cjs-module-lexer. Scanning debug's 16 KB runs the lexer's comment loop hot enough for V8 to
 * optimise it with TurboFan, and the first TurboFan compilation of a process brings about 4 MiB of the
 * node binary's optimising compiler into memory: `import 'blewire'` cost +12.9 MiB RSS with the import
 * and +10.3 MiB with this require() (fresh process each, after a full GC). `require()` runs the same
 * module without the scan, and it is the same module object an application's own `import` or
 * `require` of debug gets, so `debug.enable()` from the application still reaches these loggers.
 *
 * The browser build swaps this module for browser/debug.ts (a plain import, bundled).
 */
import { createRequire } from 'node:module';
import type createDebugType from 'debug';

export const createDebug = createRequire(import.meta.url)('debug') as typeof createDebugType;
