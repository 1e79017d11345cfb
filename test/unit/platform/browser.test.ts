// The browser build's seam (src/platform/browser/, swapped in by tools/web/bundle.mjs): each module
// offers exactly the names of the Node module it stands in for, so a change to the seam that forgets the
// browser fails here and not in a page; and each keeps the promise its README makes.
import { describe, expect, test } from 'vitest';
import { BrowserError, FileError } from '../../../src/errors.js';

const MODULES = ['events', 'async-context', 'timers', 'crypto', 'files', 'terminal', 'chromium'] as const;

describe('src/platform/browser/', () => {
  test.each(MODULES)('%s.ts exports the same names as the Node module', async name => {
    const node = await import(`../../../src/platform/${name}.ts`) as Record<string, unknown>;
    const browser = await import(`../../../src/platform/browser/${name}.ts`) as Record<string, unknown>;
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
    for (const k of Object.keys(node)) expect(typeof browser[k], k).toBe(typeof node[k]);
  });

  test('crypto: random octets from Web Crypto; AES and P-256 say they are not available (BrowserError)', async () => {
    const c = await import('../../../src/platform/browser/crypto.js');
    const r = c.randomBytes(100_000);
    expect(r.length).toBe(100_000);
    expect(new Set(r).size).toBeGreaterThan(200); // filled past the 65 536-octet chunk, not zeros
    expect(r.subarray(70_000).some(b => b !== 0)).toBe(true);
    expect(() => c.aes128(new Uint8Array(16), new Uint8Array(16))).toThrow(BrowserError);
    expect(() => c.p256Generate()).toThrow(/Web Crypto does not offer/);
  });

  test('async context: seen inside run() synchronously, gone after it', async () => {
    const { createAsyncContext } = await import('../../../src/platform/browser/async-context.js');
    const ctx = createAsyncContext<string>();
    expect(ctx.get()).toBeUndefined();
    expect(ctx.run('outer', () => [ctx.get(), ctx.run('inner', () => ctx.get()), ctx.get()])).toEqual(['outer', 'inner', 'outer']);
    expect(ctx.get()).toBeUndefined();
    expect(() => ctx.run('x', () => { throw new Error('boom'); })).toThrow('boom');
    expect(ctx.get()).toBeUndefined();
  });

  test('macrotask: after microtasks, in order', async () => {
    const { macrotask } = await import('../../../src/platform/browser/timers.js');
    const order: string[] = [];
    await new Promise<void>(resolve => {
      macrotask(() => order.push('task 1'));
      macrotask(() => { order.push('task 2'); resolve(); });
      void Promise.resolve().then(() => order.push('microtask'));
    });
    expect(order).toEqual(['microtask', 'task 1', 'task 2']);
  });

  test('files: a path given in a page is a FileError that says why', async () => {
    const f = await import('../../../src/platform/browser/files.js');
    await expect(f.readFileCapped('/x/bonds.json', 10)).rejects.toThrow(FileError);
    await expect(f.writeFileAtomic('/x/y', 'z')).rejects.toThrow(/no file system/);
    expect(f.pathIn('/a/', 'b')).toBe('/a/b');
  });

  test('terminal and chromium: none in a page', async () => {
    const t = await import('../../../src/platform/browser/terminal.js');
    expect(t.interactiveTerminal()).toBeUndefined();
    const ch = await import('../../../src/platform/browser/chromium.js');
    await expect(ch.Chromium.launch()).rejects.toThrow(BrowserError);
  });
});
