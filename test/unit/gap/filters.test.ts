// Pins the Web-Bluetooth filter semantics: all conditions of one filter must hold, any filter of a
// list may match, masks apply to data and prefix, services count when listed or keyed in service
// data, and invalid filters are ArgumentErrors at compile time (not silent non-matches).
import { describe, expect, test } from 'vitest';
import { compileFilters, filtersOf, normaliseAddress, type Filterable } from '../../../src/gap/filters.js';
import { uuid } from '../../../src/codec/uuid.js';
import { ArgumentError } from '../../../src/errors.js';

const dev = (o: Partial<Filterable>): Filterable => ({
  address: 'C0:00:00:00:00:01', rssi: -50, name: undefined, serviceUuids: [], serviceData: new Map(),
  manufacturerData: new Map(), ...o,
});

describe('scan filters', () => {
  test('no filter matches everything (no predicate at all)', () => {
    expect(compileFilters([])).toBeUndefined();
    expect(compileFilters(filtersOf({}))).toBeUndefined();
  });

  test('every condition of one filter must hold', () => {
    const m = compileFilters([{ namePrefix: 'Po', services: ['heart_rate'], rssi: -60 }])!;
    const hr = [uuid('heart_rate')];
    expect(m(dev({ name: 'Polar', serviceUuids: hr }))).toBe(true);
    expect(m(dev({ name: 'Polar', serviceUuids: hr, rssi: -70 }))).toBe(false);
    expect(m(dev({ name: 'Garmin', serviceUuids: hr }))).toBe(false);
    expect(m(dev({ name: 'Polar' }))).toBe(false);
    expect(m(dev({ name: 'Polar', serviceData: new Map([[hr[0]!, Uint8Array.of()]]) }))).toBe(true);
  });

  test('manufacturer and service data: prefix under mask', () => {
    const m = compileFilters([{ manufacturerData: [{ companyIdentifier: 0x4c, dataPrefix: Uint8Array.of(0x12, 0x34), mask: Uint8Array.of(0xf0, 0xff) }] }])!;
    expect(m(dev({ manufacturerData: new Map([[0x4c, Uint8Array.of(0x1f, 0x34, 9)]]) }))).toBe(true);
    expect(m(dev({ manufacturerData: new Map([[0x4c, Uint8Array.of(0x22, 0x34)]]) }))).toBe(false);
    expect(m(dev({ manufacturerData: new Map([[0x4c, Uint8Array.of(0x12)]]) }))).toBe(false); // shorter than prefix
    expect(m(dev({ manufacturerData: new Map([[0x4d, Uint8Array.of(0x12, 0x34)]]) }))).toBe(false);
    const s = compileFilters([{ serviceData: [{ service: 0xfeaa }] }])!;
    expect(s(dev({ serviceData: new Map([[uuid(0xfeaa), Uint8Array.of()]]) }))).toBe(true);
  });

  test('a list matches when any filter does; top-level fields narrow each', () => {
    const m = compileFilters(filtersOf({ rssi: -60, filters: [{ name: 'a' }, { name: 'b' }] }))!;
    expect(m(dev({ name: 'b', rssi: -50 }))).toBe(true);
    expect(m(dev({ name: 'b', rssi: -61 }))).toBe(false);
    expect(m(dev({ name: 'c', rssi: -50 }))).toBe(false);
  });

  test('addresses are compared in one canonical form; bad input is an ArgumentError', () => {
    expect(normaliseAddress('c0-11-22-33-44-55')).toBe('C0:11:22:33:44:55');
    expect(() => compileFilters([{ address: 'nope' }])).toThrow(ArgumentError);
    expect(() => compileFilters([{ manufacturerData: [{ companyIdentifier: 1, dataPrefix: Uint8Array.of(1), mask: Uint8Array.of(1, 2) }] }])).toThrow(ArgumentError);
    expect(() => compileFilters([{ services: ['not-a-uuid!'] }])).toThrow(ArgumentError);
  });
});
