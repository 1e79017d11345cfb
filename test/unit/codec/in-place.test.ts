// The in-place report readers (codec/compile.ts inPlaceReader) agree with the table: on every
// advertising report event the table decodes, generated code and closures read the same values at
// the same offsets as the table's decode (address and data octets included); fits() refuses a
// missing octet, an extra one and a count that disagrees (hci/host.ts sends those the table's way).
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { inPlaceReader } from '../../../src/codec/compile.js';
import { bdAddr, i8, lengthPrefixed, u16, u8 } from '../../../src/codec/field.js';
import { addressString } from '../../../src/gap/registry.js';
import { decodeHciPacket, encodeEvent } from '../../../src/hci/packets.js';
import { EXT_ADV_EVENT_TYPE, LEGACY_ADV_EVENT_TYPE } from '../../../src/hci/bit-fields.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

const LEGACY = { eventType: LEGACY_ADV_EVENT_TYPE, addressType: u8, address: bdAddr, data: lengthPrefixed(u8), rssi: i8 };
const EXTENDED = {
  eventType: EXT_ADV_EVENT_TYPE, addressType: u8, address: bdAddr, primaryPhy: u8, secondaryPhy: u8, advertisingSid: u8,
  txPower: i8, rssi: i8, periodicAdvertisingInterval: u16, directAddressType: u8, directAddress: bdAddr, data: lengthPrefixed(u8),
};

const hexAddr = fc.uint8Array({ minLength: 6, maxLength: 6 }).map(b => addressString(b, 0));
const legacyReport = fc.record({ eventType: fc.integer({ min: 0, max: 255 }), addressType: fc.integer({ min: 0, max: 255 }), address: hexAddr,
  data: fc.uint8Array({ maxLength: 31 }), rssi: fc.integer({ min: -128, max: 127 }) });
const extReport = fc.record({ eventType: fc.integer({ min: 0, max: 0xffff }), addressType: fc.integer({ min: 0, max: 255 }), address: hexAddr,
  primaryPhy: fc.integer({ min: 0, max: 255 }), secondaryPhy: fc.integer({ min: 0, max: 255 }), advertisingSid: fc.integer({ min: 0, max: 255 }),
  txPower: fc.integer({ min: -128, max: 127 }), rssi: fc.integer({ min: -128, max: 127 }), periodicAdvertisingInterval: fc.integer({ min: 0, max: 0xffff }),
  directAddressType: fc.integer({ min: 0, max: 255 }), directAddress: hexAddr, data: fc.uint8Array({ maxLength: 60 }) });

describe.each(['generate', 'closures'] as const)('in-place report readers (%s)', mode => {
  const legacy = inPlaceReader(LEGACY, mode);
  const extended = inPlaceReader(EXTENDED, mode);

  test('read what the table decodes, field by field, octets at the offsets given', () => {
    for (const [reader, kind, arb] of [[legacy, 'leAdvertisingReport', legacyReport], [extended, 'leExtendedAdvertisingReport', extReport]] as const) {
      fc.assert(fc.property(fc.array(arb as fc.Arbitrary<Record<string, unknown>>, { maxLength: 4 }), reports => {
        const p = encodeEvent({ kind, reports } as never);
        const decoded = decodeHciPacket(p) as unknown as { reports: Array<Record<string, unknown>> };
        expect(reader.fits(p, 5, p.length, reports.length)).toBe(true);
        const v: Record<string, number> = {};
        let o = 5;
        for (const r of decoded.reports) {
          o = reader.read(p, o, v);
          for (const [k, x] of Object.entries(r)) {
            if (x instanceof Uint8Array) expect(p.subarray(v[k + 'At'], v[k + 'At']! + v[k + 'Length']!)).toEqual(x);
            else if (typeof x === 'string') expect(addressString(p, v[k + 'At']!)).toBe(x);
            else expect(v[k]).toBe(x);
          }
        }
        expect(o).toBe(p.length);
        expect(Object.keys(v)).toEqual(reports.length ? reader.keys : []);
      }), fuzzRuns(200));
    }
  });

  test('fits() accepts exactly what the table decodes: a missing or an extra octet, or a count that disagrees, is refused', () => {
    fc.assert(fc.property(fc.array(legacyReport, { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 1 }), (reports, extra) => {
      const p = encodeEvent({ kind: 'leAdvertisingReport', reports } as never);
      const cut = p.subarray(0, p.length - 1 + extra);
      const longer = new Uint8Array([...p, 0]);
      expect(legacy.fits(cut, 5, cut.length, reports.length)).toBe(extra === 1);
      expect(legacy.fits(longer, 5, longer.length, reports.length)).toBe(false);
      expect(legacy.fits(p, 5, p.length, reports.length + 1)).toBe(false);
    }), fuzzRuns(200));
  });
});

test('an in-place struct refuses a field it cannot place', () => {
  expect(() => inPlaceReader({ a: lengthPrefixed(u8), b: lengthPrefixed(u8) })).toThrow(/second length-prefixed/);
});
