// The device registry's slots (gap/registry.ts): keys are mixed into 32-bit slots, and keys that share
// a slot are chained. With a known seed, two addresses are made to share a slot on purpose, and every
// operation must still keep them apart.
import { describe, expect, test } from 'vitest';
import { DeviceRegistry, addressString } from '../../../src/gap/registry.js';

const K = 0x9e3779b1;
/** HCI octets (least significant first) of a 48-bit address given as its low 32 and high 16 bits. */
function octets(lo: number, hi16: number): Uint8Array {
  return Uint8Array.of(lo & 0xff, (lo >>> 8) & 0xff, (lo >>> 16) & 0xff, (lo >>> 24) & 0xff, hi16 & 0xff, hi16 >>> 8);
}

// With seed 0 the slot is lo ^ imul(hi, K), hi = type << 16 | high 16 bits ('random' is type 1).
const LO1 = 0x11223344, HI1 = 0xc001, HI2 = 0xc002;
const LO2 = (LO1 ^ Math.imul((1 << 16) | HI1, K) ^ Math.imul((1 << 16) | HI2, K)) | 0;
const A = octets(LO1, HI1), B = octets(LO2, HI2), C = octets(0x55667788, 0xc003);

describe('device registry', () => {
  test('two addresses sharing a slot stay two devices: touch, get, values, prune, eviction', () => {
    const r = new DeviceRegistry<string>(2, 0);
    const a = r.touchAt(A, 0, 'random', -40, 1);
    const b = r.touchAt(B, 0, 'random', -50, 2);
    expect(a).not.toBe(b);
    expect(r.size).toBe(2);
    expect(r.touchAt(A, 0, 'random', -41, 3)).toBe(a);
    expect(r.touchAt(B, 0, 'random', -51, 4)).toBe(b);
    expect([a.reports, b.reports]).toEqual([2, 2]);
    // The string forms find the same entries; the other address type is another device.
    expect(r.get(addressString(A, 0), 'random')).toBe(a);
    expect(r.get(addressString(B, 0), 'random')).toBe(b);
    expect(r.get(addressString(B, 0), 'public')).toBeUndefined();
    expect(r.touch(addressString(B, 0), 'random', -52, 5)).toBe(b);
    expect(new Set(r.values())).toEqual(new Set([a, b]));
    // Full (capacity 2): a third device evicts one; both were seen again, so one loses its second chance.
    const c = r.touchAt(C, 0, 'random', -60, 6);
    expect(r.size).toBe(2);
    expect(r.evicted).toBe(1);
    expect(r.get(addressString(C, 0), 'random')).toBe(c);
    const kept = [a, b].filter(e => r.get(e.address, 'random') === e);
    expect(kept.length).toBe(1);
    // Prune what was not heard since t=6: the survivor of the pair goes, the third device stays.
    expect(r.prune(6)).toBe(1);
    expect([...r.values()]).toEqual([c]);
    expect(r.size).toBe(1);
  });

  test('pruning the first of a chain keeps the second findable', () => {
    const r = new DeviceRegistry<string>(10, 0);
    const a = r.touchAt(A, 0, 'random', -40, 1);
    const b = r.touchAt(B, 0, 'random', -50, 5);
    expect(r.prune(2)).toBe(1);
    expect(r.get(a.address, 'random')).toBeUndefined();
    expect(r.get(b.address, 'random')).toBe(b);
    expect(r.touchAt(B, 0, 'random', -50, 6)).toBe(b);
    expect(r.touchAt(A, 0, 'random', -40, 7)).not.toBe(a); // heard again: a new entry
    expect(r.size).toBe(2);
  });

  test('many devices at the default seed: each found again, the count exact', () => {
    const r = new DeviceRegistry<string>(5000);
    const all = Array.from({ length: 5000 }, (_, i) => octets((i * 2654435761) | 0, 0xc000 | (i & 0x3fff)));
    const entries = all.map((o, i) => r.touchAt(o, 0, i % 2 ? 'random' : 'public', -40, i));
    expect(r.size).toBe(5000);
    all.forEach((o, i) => expect(r.touchAt(o, 0, i % 2 ? 'random' : 'public', -40, 9999)).toBe(entries[i]));
    expect(r.evicted).toBe(0);
  });
});
