// Pins host-side LE privacy (gap/privacy.ts): the spec's ah sample as an RPA that resolves (Core Vol 3,
// Part H, Appendix D.7; Vol 6, Part B, 1.3.2), address kinds, the resolver's answers (bonded RPA,
// stranger, identity, controller-resolved types), its bounded cache (what a hit costs, eviction,
// invalidation when bonds change), and our own RPA's rotation on an injected clock.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import {
  AddressResolver, generateRpa, isResolvablePrivateAddress, LocalPrivacy, MAX_RESOLUTION_CACHE, randomAddressKind, rpaMatchesIrk,
} from '../../../src/gap/privacy.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { HciHost } from '../../../src/hci/host.js';
import { Scanner, type Advertisement } from '../../../src/gap/scanner.js';
import { FakeController } from '../hci/host-fake-controller.js';

/** Appendix D.7 (ah): IRK ec0234a3 57c8ad05 341010a6 0a397d9b, prand 708194, hash 0dfbaa; printed MSO first. */
const SPEC_IRK_MSO = fromHex('ec0234a357c8ad05341010a60a397d9b');
/** The same IRK as SMP carries it and bonds keep it (least significant octet first). */
const SPEC_IRK = Uint8Array.from(SPEC_IRK_MSO).reverse();
const SPEC_RPA = '70:81:94:0D:FB:AA';

describe('the spec sample (Vol 3, Part H, Appendix D.7)', () => {
  test('prand 708194 and hash 0dfbaa make an RPA that the sample IRK resolves', () => {
    expect(isResolvablePrivateAddress(SPEC_RPA)).toBe(true);
    expect(rpaMatchesIrk(SPEC_IRK, SPEC_RPA)).toBe(true);
    expect(rpaMatchesIrk(SPEC_IRK, SPEC_RPA.toLowerCase())).toBe(true);
    // One bit off in the hash, in prand, or the key the other way round: no match.
    expect(rpaMatchesIrk(SPEC_IRK, '70:81:94:0D:FB:AB')).toBe(false);
    expect(rpaMatchesIrk(SPEC_IRK, '70:81:95:0D:FB:AA')).toBe(false);
    expect(rpaMatchesIrk(SPEC_IRK_MSO, SPEC_RPA)).toBe(false);
  });

  test('generateRpa with the sample prand gives the sample address', () => {
    expect(generateRpa(SPEC_IRK, () => Uint8Array.of(0x70, 0x81, 0x94))).toBe(SPEC_RPA);
    // prand's top bits are forced to 0b01 whatever the random octets are.
    const a = generateRpa(SPEC_IRK, () => Uint8Array.of(0xf0, 0x81, 0x94));
    expect(a.startsWith('70:81:94:')).toBe(true);
  });

  test('generated RPAs resolve with their IRK, and never have an all-0 or all-1 random part', () => {
    const seqs = [Uint8Array.of(0x40, 0, 0), Uint8Array.of(0x7f, 0xff, 0xff), Uint8Array.of(0x55, 1, 2)];
    let i = 0;
    const a = generateRpa(SPEC_IRK, () => seqs[i++]!);
    expect(a.startsWith('55:01:02:')).toBe(true);
    for (let n = 0; n < 50; n++) {
      const r = generateRpa(SPEC_IRK);
      expect(randomAddressKind(r)).toBe('resolvable');
      expect(rpaMatchesIrk(SPEC_IRK, r)).toBe(true);
    }
  });
});

test('address kinds from the two most significant bits (Vol 6, Part B, 1.3)', () => {
  expect(randomAddressKind('C0:00:00:00:00:01')).toBe('static');
  expect(randomAddressKind('40:00:00:00:00:01')).toBe('resolvable');
  expect(randomAddressKind('3F:00:00:00:00:01')).toBe('nonResolvable');
  expect(randomAddressKind('80:00:00:00:00:01')).toBe('reserved');
  expect(isResolvablePrivateAddress(SPEC_RPA, 0)).toBe(false); // a public address is never an RPA
  expect(isResolvablePrivateAddress('nonsense')).toBe(false);
});

describe('AddressResolver', () => {
  const identity = { type: 1 as const, address: 'D4:1E:35:7A:00:01' };
  const other = Uint8Array.from({ length: 16 }, (_, i) => i + 1);

  test('a bonded RPA resolves to its identity; a stranger does not; a second look is one cache hit', () => {
    const r = new AddressResolver();
    r.setBonds([{ identity: { type: 0, address: '00:11:22:33:44:55' }, peerIrk: other }, { identity, peerIrk: SPEC_IRK }]);
    expect(r.resolve(SPEC_RPA, 1)).toEqual({ address: 'D4:1E:35:7A:00:01', addressType: 'random' });
    expect(r.stats.ahComputed).toBe(2); // tried both IRKs
    expect(r.resolve(SPEC_RPA, 1)).toEqual({ address: 'D4:1E:35:7A:00:01', addressType: 'random' });
    expect(r.stats).toMatchObject({ rpaLookups: 2, cacheHits: 1, ahComputed: 2 });
    const stranger = generateRpa(fromHex('00112233445566778899aabbccddeeff'));
    expect(r.resolve(stranger, 1)).toBeUndefined();
    expect(r.resolve(stranger, 1)).toBeUndefined();
    expect(r.stats).toMatchObject({ rpaLookups: 4, cacheHits: 2, ahComputed: 4 });
  });

  test('identities: a bonded identity address is itself; controller-resolved types 2 / 3 are identities', () => {
    const r = new AddressResolver();
    r.setBonds([{ identity: { type: 0, address: '00:aa:01:00:00:00' } }]);
    expect(r.resolve('00:AA:01:00:00:00', 0)).toEqual({ address: '00:AA:01:00:00:00', addressType: 'public' });
    expect(r.resolve('00:AA:01:00:00:00', 1)).toBeUndefined(); // the same 48 bits as a random address: another device
    expect(r.resolve('C1:22:33:44:55:66', 1)).toBeUndefined();
    expect(r.resolve('C1:22:33:44:55:66', 3)).toEqual({ address: 'C1:22:33:44:55:66', addressType: 'random' });
    expect(r.resolve(SPEC_RPA, 1)).toBeUndefined(); // no IRK: nothing to resolve with
    expect(r.stats.ahComputed).toBe(0);
  });

  test('the cache is bounded: least recently used addresses go first (CLOCK: a hit gives a second chance)', () => {
    const r = new AddressResolver(4);
    r.setBonds([{ identity, peerIrk: SPEC_IRK }]);
    const strangers = Array.from({ length: 10 }, () => generateRpa(other));
    for (const a of strangers) expect(r.resolve(a, 1)).toBeUndefined();
    expect(r.cached).toBe(4);
    expect(r.stats.evicted).toBe(6);
    r.resolve(strangers[6]!, 1); // touched: now the most recent
    r.resolve(SPEC_RPA, 1);      // evicts the least recent (strangers[7])
    const before = r.stats.ahComputed;
    r.resolve(strangers[6]!, 1);
    expect(r.stats.ahComputed).toBe(before);     // still cached
    r.resolve(strangers[7]!, 1);
    expect(r.stats.ahComputed).toBe(before + 1); // evicted: computed again
  });

  test('a new bond resolves an RPA that was cached as foreign; a removed bond no longer resolves', () => {
    const r = new AddressResolver();
    r.setBonds([{ identity: { type: 0, address: '00:11:22:33:44:55' }, peerIrk: other }]);
    expect(r.resolve(SPEC_RPA, 1)).toBeUndefined();
    r.add({ identity, peerIrk: SPEC_IRK });
    expect(r.resolve(SPEC_RPA, 1)?.address).toBe('D4:1E:35:7A:00:01');
    expect(r.hasIrk('D4:1E:35:7A:00:01', 'random')).toBe(true);
    r.remove(identity);
    expect(r.resolve(SPEC_RPA, 1)).toBeUndefined();
    expect(r.hasIrk('D4:1E:35:7A:00:01', 'random')).toBe(false);
    expect(r.size).toBe(1);
  });

  test('resolveValue takes the 48-bit value the scanner has; the string and the value give the same answers', () => {
    const r = new AddressResolver();
    r.setBonds([{ identity, peerIrk: SPEC_IRK }, { identity: { type: 0, address: '00:AA:01:00:00:00' } }]);
    expect(r.resolveValue(0x7081940dfbaa, 1, SPEC_RPA)).toEqual({ address: 'D4:1E:35:7A:00:01', addressType: 'random' });
    expect(r.resolveValue(0x7081940dfbab, 1, '70:81:94:0D:FB:AB')).toBeUndefined();
    expect(r.resolveValue(0x00aa01000000, 0, '00:AA:01:00:00:00')).toEqual({ address: '00:AA:01:00:00:00', addressType: 'public' });
    expect(r.resolveValue(0x00aa01000000, 1, '00:AA:01:00:00:00')).toBeUndefined();
    expect(r.resolve(SPEC_RPA.toLowerCase(), 1)?.address).toBe('D4:1E:35:7A:00:01');
    expect(r.stats).toMatchObject({ rpaLookups: 3, cacheHits: 1 });
  });

  test('the generation changes with every bond added or removed, never on a lookup', () => {
    const r = new AddressResolver();
    const g0 = r.generation;
    r.add({ identity, peerIrk: SPEC_IRK });
    const g1 = r.generation;
    expect(g1).not.toBe(g0);
    r.resolve(SPEC_RPA, 1);
    r.resolve('C1:22:33:44:55:66', 1);
    expect(r.generation).toBe(g1);
    r.remove(identity);
    expect(r.generation).not.toBe(g1);
  });

  test('a malformed IRK is not used (the identity stays bonded); malformed addresses are strangers', () => {
    const r = new AddressResolver();
    r.setBonds([{ identity, peerIrk: new Uint8Array(5) }]);
    expect(r.irkCount).toBe(0);
    expect(r.resolve('D4:1E:35:7A:00:01', 1)?.addressType).toBe('random');
    r.add({ identity: { type: 0, address: '00:11:22:33:44:55' }, peerIrk: SPEC_IRK });
    expect(r.resolve('4Z:ZZ:ZZ:ZZ:ZZ:ZZ', 1)).toBeUndefined();
    expect(r.resolve('', 1)).toBeUndefined();
  });
});

describe('the scanner keeps each device\'s answer while the bonds are the same', () => {
  const identity = { type: 1 as const, address: 'D4:1E:35:7A:00:01' };
  test('an advertiser heard before costs no resolver call; a new bond names a device already heard', async () => {
    const ctl = new FakeController();
    const clock = new FakeClock();
    const host = new HciHost(ctl, { clock });
    await host.init();
    const r = new AddressResolver();
    r.setBonds([{ identity: { type: 0, address: '00:11:22:33:44:55' }, peerIrk: Uint8Array.from({ length: 16 }, (_, i) => i) }]);
    let calls = 0;
    const scanner = new Scanner(host, { clock, resolve: (bits, t, a) => { calls++; return r.resolveValue(bits, t, a); },
      resolverGeneration: () => r.generation });
    const seen: Advertisement[] = [];
    scanner.onAdvertisement(a => seen.push(a));
    scanner.scan({ active: false, duplicates: true });
    await ctl.sent('leSetScanEnable');
    // Report bytes: LE Advertising Report, ADV_NONCONN_IND, random, address 70:81:94:0D:FB:AA (the spec's RPA).
    const report = { kind: 'leAdvertisingReport' as const, reports: [{ eventType: 3, addressType: 1, address: SPEC_RPA, data: fromHex('020106'), rssi: -50 }] };
    for (let i = 0; i < 5; i++) ctl.inject(report);
    await new Promise(r => setImmediate(r));
    expect(seen).toHaveLength(5);
    expect(seen.every(a => a.identity === undefined)).toBe(true);
    expect(calls).toBe(1);
    expect(r.stats.ahComputed).toBe(1);
    r.add({ identity, peerIrk: SPEC_IRK });
    ctl.inject(report);
    ctl.inject(report);
    await new Promise(r => setImmediate(r));
    expect(seen.at(-1)!.identity).toEqual({ address: 'D4:1E:35:7A:00:01', addressType: 'random' });
    expect(seen.at(-1)!.address).toBe(SPEC_RPA);
    expect(calls).toBe(2);
  });
});

describe('a crowd of strangers with RPAs cannot grow the resolution cache past MAX_RESOLUTION_CACHE', () => {
  test('MAX_RESOLUTION_CACHE + 500 advertisers, each a new RPA, heard by the scanner: the cache holds the bound, the bonded peer still resolves', async () => {
    const ctl = new FakeController();
    const clock = new FakeClock();
    const host = new HciHost(ctl, { clock });
    await host.init();
    const r = new AddressResolver(); // the adapter's default capacity
    r.setBonds([{ identity: { type: 1, address: 'D4:1E:35:7A:00:01' }, peerIrk: SPEC_IRK }]);
    const scanner = new Scanner(host, { clock, resolve: (bits, t, a) => r.resolveValue(bits, t, a), resolverGeneration: () => r.generation });
    const seen: Advertisement[] = [];
    scanner.onAdvertisement(a => seen.push(a));
    scanner.scan({ active: false, duplicates: true });
    await ctl.sent('leSetScanEnable');
    // Distinct RPAs of a stranger's IRK: prand counts up (top bits 0b01), so no two are the same.
    const strangerIrk = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);
    const crowd = MAX_RESOLUTION_CACHE + 500;
    for (let i = 1; i <= crowd; i++) {
      const address = generateRpa(strangerIrk, () => Uint8Array.of(0x40 | (i >> 16), (i >> 8) & 0xff, i & 0xff));
      ctl.inject({ kind: 'leAdvertisingReport', reports: [{ eventType: 3, addressType: 1, address, data: fromHex('020106'), rssi: -70 }] });
      if (i % 256 === 0) await new Promise(res => setImmediate(res));
    }
    ctl.inject({ kind: 'leAdvertisingReport', reports: [{ eventType: 3, addressType: 1, address: SPEC_RPA, data: fromHex('020106'), rssi: -50 }] });
    for (let i = 0; i < 4; i++) await new Promise(res => setImmediate(res));
    expect(seen).toHaveLength(crowd + 1);
    expect(r.stats.rpaLookups).toBe(crowd + 1);
    expect(r.cached).toBe(MAX_RESOLUTION_CACHE);
    expect(r.stats.evicted).toBe(crowd + 1 - MAX_RESOLUTION_CACHE);
    expect(seen.at(-1)!.identity).toEqual({ address: 'D4:1E:35:7A:00:01', addressType: 'random' });
  });
});

describe('LocalPrivacy: our RPA rotates on the injected clock', () => {
  test('a new RPA of our IRK every interval; stop() leaves no timer', async () => {
    const clock = new FakeClock();
    const applied: string[] = [];
    const p = new LocalPrivacy({ irk: SPEC_IRK, clock, intervalMs: 60_000, apply: async a => { applied.push(a); } });
    await p.start();
    expect(applied).toEqual([p.address]);
    clock.advance(59_999);
    expect(applied).toHaveLength(1);
    clock.advance(1);
    await Promise.resolve();
    await Promise.resolve();
    expect(applied).toHaveLength(2);
    expect(applied[1]).not.toBe(applied[0]);
    expect(p.address).toBe(applied[1]);
    for (const a of applied) expect(rpaMatchesIrk(SPEC_IRK, a)).toBe(true);
    p.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  test('a failed apply keeps the old address and tries again at the next expiry', async () => {
    const clock = new FakeClock();
    let fail = true;
    const p = new LocalPrivacy({ irk: SPEC_IRK, clock, intervalMs: 1000, apply: async () => { if (fail && p.rotations > 0) throw new Error('Command Disallowed'); } });
    await p.start();
    const first = p.address;
    clock.advance(1000);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(p.address).toBe(first);
    expect(clock.pendingTimers).toBe(1);
    fail = false;
    clock.advance(1000);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(p.address).not.toBe(first);
    expect(p.rotations).toBe(2);
    p.stop();
  });
});
