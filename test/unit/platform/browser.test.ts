// The browser build's seam (src/platform/browser/, swapped in by tools/web/bundle.mjs): each module
// offers exactly the names of the Node module it stands in for, so a change to the seam that forgets the
// browser fails here and not in a page; and each keeps the promise its README makes.
import { describe, expect, test } from 'vitest';
import { BrowserError, FileError } from '../../../src/errors.js';
import { Buffer } from 'node:buffer';

const MODULES = ['events', 'async-context', 'timers', 'crypto', 'files', 'terminal', 'chromium'] as const;

describe('src/platform/browser/', () => {
  test.each(MODULES)('%s.ts exports the same names as the Node module', async name => {
    const node = await import(`../../../src/platform/${name}.ts`) as Record<string, unknown>;
    const browser = await import(`../../../src/platform/browser/${name}.ts`) as Record<string, unknown>;
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
    for (const k of Object.keys(node)) expect(typeof browser[k], k).toBe(typeof node[k]);
  });

  test('crypto: every function equals node:crypto\'s on random inputs, and the spec\'s sample data', async () => {
    const b = await import('../../../src/platform/browser/crypto.js');
    const n = await import('../../../src/platform/crypto.js');
    const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
    const r = b.randomBytes(100_000);
    expect(r.length).toBe(100_000);
    expect(r.subarray(70_000).some(x => x !== 0)).toBe(true); // filled past the 65 536-octet chunk
    // FIPS 197, Appendix B: the cipher example.
    const fk = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
    expect(hex(b.aes128(fk, Buffer.from('3243f6a8885a308d313198a2e0370734', 'hex')))).toBe('3925841d02dc09fbdc118597196a0b32');
    // RFC 4493, 4: the four examples.
    const msg = Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710', 'hex');
    expect([0, 16, 40, 64].map(len => hex(b.aesCmac(fk, msg.subarray(0, len))))).toEqual([
      'bb1d6929e95937287fa37d129b756746', '070a16b46b4d4144f79bdd9dd04a287c', 'dfa66747de9ae63030ca32611497c827', '51f0bebf7e3b9d92fc49741779363cfe']);
    for (let i = 0; i < 200; i++) {
      const key = n.randomBytes(16), block = n.randomBytes(16), m = n.randomBytes(i % 70);
      expect(hex(b.aes128(key, block))).toBe(hex(n.aes128(key, block)));
      expect(hex(b.aes128Encryptor(key)(block))).toBe(hex(n.aes128(key, block)));
      expect(hex(b.aesCmac(key, m))).toBe(hex(n.aesCmac(key, m)));
    }
    for (let i = 0; i < 4; i++) {
      const ours = b.p256Generate(), theirs = n.p256Generate();
      expect(hex(n.p256FromPrivateKey(ours.privateKey).x)).toBe(hex(ours.x));
      expect(hex(n.p256FromPrivateKey(ours.privateKey).y)).toBe(hex(ours.y));
      expect(b.p256IsValidPublicKey(theirs.x, theirs.y)).toBe(true);
      expect(hex(b.p256Ecdh(ours.privateKey, theirs.x, theirs.y))).toBe(hex(n.p256Ecdh(theirs.privateKey, ours.x, ours.y)));
    }
    // An off-curve point is refused before any arithmetic (the invalid-curve attack, CVE-2018-5383).
    const k = n.p256Generate();
    const bad = Uint8Array.from(k.y); bad[31]! ^= 1;
    expect(b.p256IsValidPublicKey(k.x, bad)).toBe(false);
    expect(() => b.p256Ecdh(k.privateKey, k.x, bad)).toThrow(/not a point of P-256/);
    expect(() => b.p256FromPrivateKey(new Uint8Array(32))).toThrow(/1 ≤ d < n/);
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
