// The device registry (gap/registry.ts): devices are slots in typed arrays found through an
// open-addressed probe table keyed by a seeded mix of the address. With a known seed, addresses are
// made to share a mix on purpose, and every operation must still keep them apart; a model (a Map)
// checks long random runs of touches, prunes and evictions.
import { describe, expect, test } from 'vitest';
import { ADDRESS_TYPE_INDEX, DeviceRegistry, MAX_REGISTRY_CAPACITY, addressString } from '../../../src/gap/registry.js';
import { ArgumentError } from '../../../src/errors.js';

const K = 0x9e3779b1;
const { public: PUBLIC, random: RANDOM, anonymous: ANONYMOUS } = ADDRESS_TYPE_INDEX as { public: number; random: number; anonymous: number };
/** HCI octets (least significant first) of a 48-bit address given as its low 32 and high 16 bits. */
function octets(lo: number, hi16: number): Uint8Array {
  return Uint8Array.of(lo & 0xff, (lo >>> 8) & 0xff, (lo >>> 16) & 0xff, (lo >>> 24) & 0xff, hi16 & 0xff, hi16 >>> 8);
}

// With seed 0 the mix is lo ^ imul(hi, K), hi = type << 16 | high 16 bits ('random' is type 1).
const LO1 = 0x11223344, HI1 = 0xc001, HI2 = 0xc002;
const sameMixLo = (hi16: number): number => (LO1 ^ Math.imul((1 << 16) | HI1, K) ^ Math.imul((1 << 16) | hi16, K)) | 0;
const A = octets(LO1, HI1), B = octets(sameMixLo(HI2), HI2), C = octets(0x55667788, 0xc003);

describe('device registry', () => {
  test('two addresses sharing a mix stay two devices: touch, get, values, prune, eviction', () => {
    const r = new DeviceRegistry(2, 0);
    const a = r.touchAt(A, 0, RANDOM, -40, 1);
    const b = r.touchAt(B, 0, RANDOM, -50, 2);
    expect(a).not.toBe(b);
    expect(r.size).toBe(2);
    expect(r.touchAt(A, 0, RANDOM, -41, 3)).toBe(a);
    expect(r.touchAt(B, 0, RANDOM, -51, 4)).toBe(b);
    expect([r.get(addressString(A, 0), 'random')?.reports, r.get(addressString(B, 0), 'random')?.reports]).toEqual([2, 2]);
    // The string forms find the same slots; the other address type is another device.
    expect(r.get(addressString(A, 0), 'random')).toMatchObject({ slot: a, rssi: -41, lastSeen: 3, firstSeen: 1 });
    expect(r.get(addressString(B, 0), 'random')).toMatchObject({ slot: b, rssi: -51, lastSeen: 4, firstSeen: 2 });
    expect(r.get(addressString(B, 0), 'public')).toBeUndefined();
    expect(r.slotOf('not an address', 'random')).toBe(-1);
    expect(new Set([...r.values()].map(e => e.slot))).toEqual(new Set([a, b]));
    // Full (capacity 2): a third device evicts one; both were seen again, so one loses its second chance.
    const c = r.touchAt(C, 0, RANDOM, -60, 6);
    expect(r.size).toBe(2);
    expect(r.evicted).toBe(1);
    expect(r.get(addressString(C, 0), 'random')?.slot).toBe(c);
    const kept = [A, B].filter(o => r.get(addressString(o, 0), 'random') !== undefined);
    expect(kept.length).toBe(1);
    // Prune what was not heard since t=6: the survivor of the pair goes, the third device stays.
    expect(r.prune(6)).toBe(1);
    expect([...r.values()].map(e => e.address)).toEqual([addressString(C, 0)]);
    expect(r.size).toBe(1);
  });

  test('removing the first of a probe run keeps the ones after it findable', () => {
    // Five addresses with one mix: they sit in one run of the probe table.
    const r = new DeviceRegistry(10, 0);
    const all = [HI1, 0xc002, 0xc003, 0xc004, 0xc005].map(h => octets(h === HI1 ? LO1 : sameMixLo(h), h));
    all.forEach((o, i) => r.touchAt(o, 0, RANDOM, -40, i < 2 ? 1 : 5));
    expect(r.prune(2)).toBe(2);
    expect(r.get(addressString(all[0]!, 0), 'random')).toBeUndefined();
    expect(r.get(addressString(all[1]!, 0), 'random')).toBeUndefined();
    for (const o of all.slice(2)) expect(r.get(addressString(o, 0), 'random')?.reports).toBe(1);
    // Heard again: new devices, their counts start again.
    r.touchAt(all[0]!, 0, RANDOM, -40, 7);
    expect(r.get(addressString(all[0]!, 0), 'random')).toMatchObject({ reports: 1, firstSeen: 7 });
    expect(r.size).toBe(4);
  });

  test('many devices at the default seed: each found again, the count exact, the slots grown to the capacity and no further', () => {
    const r = new DeviceRegistry(5000);
    expect(r.allocated).toBeLessThan(5000);
    const all = Array.from({ length: 5000 }, (_, i) => octets((i * 2654435761) | 0, 0xc000 | (i & 0x3fff)));
    const slots = all.map((o, i) => r.touchAt(o, 0, i % 2 ? RANDOM : PUBLIC, -40, i));
    expect(r.size).toBe(5000);
    expect(r.allocated).toBe(5000);
    all.forEach((o, i) => expect(r.touchAt(o, 0, i % 2 ? RANDOM : PUBLIC, -40, 9999)).toBe(slots[i]));
    expect(new Set(slots).size).toBe(5000);
    expect(r.evicted).toBe(0);
    // One more evicts one and takes its slot; the slots stay at the capacity.
    const s = r.touchAt(octets(1, 0xd000), 0, RANDOM, -40, 10_000);
    expect(r.size).toBe(5000);
    expect(r.evicted).toBe(1);
    expect(r.allocated).toBe(5000);
    expect(slots).toContain(s);
  });

  test('the snapshot names the device: address, type, id; the address string is kept once made', () => {
    const r = new DeviceRegistry(4, 0);
    const s = r.touchAt(octets(0x44332211, 0xc0aa), 0, ANONYMOUS, 127, 3);
    const e = r.get('C0:AA:44:33:22:11', 'anonymous')!;
    expect(e).toEqual({ slot: s, address: 'C0:AA:44:33:22:11', addressType: 'anonymous', id: 2 * 2 ** 48 + 0xc0aa44332211,
      lastSeen: 3, firstSeen: 3, rssi: 127, reports: 1 });
    expect(r.addressOf(s)).toBe(r.addressOf(s));
    expect(r.bitsOf(s)).toBe(0xc0aa44332211);
  });

  test('capacity: an integer from 1 to the maximum, or an ArgumentError', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, MAX_REGISTRY_CAPACITY + 1]) expect(() => new DeviceRegistry(bad)).toThrow(ArgumentError);
    expect(new DeviceRegistry(1).capacity).toBe(1);
    // Capacity 1: every new device replaces the last one (a set bit only delays it by one sweep).
    const r = new DeviceRegistry(1, 0);
    r.touchAt(A, 0, RANDOM, -40, 1);
    r.touchAt(A, 0, RANDOM, -40, 2);
    r.touchAt(B, 0, RANDOM, -40, 3);
    expect([...r.values()].map(e => e.address)).toEqual([addressString(B, 0)]);
    expect(r.evicted).toBe(1);
  });

  test('onRemove names every slot that is given up (eviction, prune, clear) before it is reused', () => {
    const r = new DeviceRegistry(2, 0);
    const removed: number[] = [];
    r.onRemove = s => { removed.push(s); expect(r.has(s)).toBe(true); };
    const a = r.touchAt(A, 0, RANDOM, -40, 1);
    r.touchAt(B, 0, RANDOM, -40, 2);
    const c = r.touchAt(C, 0, RANDOM, -40, 3);
    expect(removed).toEqual([c]);
    expect(r.prune(3)).toBe(1);
    expect(removed.length).toBe(2);
    r.clear();
    expect(removed.length).toBe(3);
    expect(r.size).toBe(0);
    expect([...r.values()]).toEqual([]);
    expect(r.touchAt(A, 0, RANDOM, -40, 4)).toBe(0);
  });

  test('a model check: random touches, prunes and evictions against a Map, many addresses sharing a mix', () => {
    let seed = 12345;
    const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    // 40 addresses, half of them with one mix (one long probe run), capacity 16: constant eviction.
    const addrs = Array.from({ length: 40 }, (_, i) => (i % 2 ? octets(sameMixLo(0xc100 + i), 0xc100 + i) : octets(i * 7919, 0xc200 + i)));
    const r = new DeviceRegistry(16, 0);
    const model = new Map<string, { first: number; reports: number }>();
    r.onRemove = s => { model.delete(r.addressOf(s)); };
    for (let t = 1; t <= 4000; t++) {
      if (rand(50) === 0) {
        const before = t - rand(30);
        const n = r.prune(before);
        expect(n).toBeGreaterThanOrEqual(0);
        continue;
      }
      const o = addrs[rand(addrs.length)]!;
      const key = addressString(o, 0);
      r.touchAt(o, 0, RANDOM, -40, t);
      const m = model.get(key);
      if (m) m.reports++;
      else model.set(key, { first: t, reports: 1 });
      expect(r.size).toBe(model.size);
      expect(r.size).toBeLessThanOrEqual(16);
      if (t % 97 === 0) {
        for (const a of addrs) {
          const k = addressString(a, 0);
          const e = r.get(k, 'random');
          const want = model.get(k);
          expect(e === undefined ? undefined : { first: e.firstSeen, reports: e.reports }).toEqual(want);
        }
      }
    }
    expect(r.evicted).toBeGreaterThan(100);
  });
});
