/**
 * The platform seam: the only folder of src/ whose modules reach Node built-ins for the protocol
 * layers (bytes, codec, hci, l2cap, att, gatt, gap, smp, the link, api, sim, inspect); those layers
 * import the module they need from here and never `node:*` (test/unit/architecture.test.ts enforces
 * it). Each module is one small concern with a documented shape:
 *
 *   events.ts          EventEmitter (node:events)
 *   debug.ts           createDebug, the debug package loaded with require() (node:module)
 *   async-context.ts   createAsyncContext(): a value that follows async calls (node:async_hooks)
 *   timers.ts          macrotask(fn) (setImmediate)
 *   env.ts             envVar(name) (process.env, absent elsewhere)
 *   crypto.ts          AES-128, AES-CMAC, P-256, random octets (node:crypto)
 *   files.ts           private files for caches and bonds (node:fs)
 *   chromium.ts        a Chromium driven over the DevTools pipe, for the Web Bluetooth bridge (node:child_process)
 *   terminal.ts        a question on the terminal (node:readline), for the Web Bluetooth chooser
 *
 * A browser or Deno build swaps a module for its own implementation of the same exports (a bundler
 * alias or an import map per file); nothing above this folder changes. The modules have no top-level
 * side effects: importing one starts nothing and registers nothing.
 *
 * This index re-exports the small portable pieces for convenience; crypto.ts and files.ts are
 * imported directly by the layers that need them, so that importing the seam does not load them.
 */
export { EventEmitter } from './events.js';
export { createAsyncContext, type AsyncContext } from './async-context.js';
export { macrotask } from './timers.js';
export { envVar } from './env.js';
