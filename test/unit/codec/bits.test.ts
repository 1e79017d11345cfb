// Pins the bit-field type: named access instead of shifts and masks, values that stay the wire
// number (so reserved bits round-trip), and describe() naming the bits, on the spec's layouts.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ByteReader } from '../../../src/bytes/reader.js';
import { ByteWriter } from '../../../src/bytes/writer.js';
import { toHex } from '../../../src/bytes/hex.js';
import { bitfield } from '../../../src/codec/bits.js';
import { x8 } from '../../../src/codec/field.js';
import { AD_FLAGS, describeFlags } from '../../../src/gap/ad.js';
import { SMP_AUTH_REQ } from '../../../src/smp/pdus.js';

// SMP AuthReq (Vol 3, Part H, 3.5.1): Bonding_Flags (2 bits), MITM, SC, Keypress, CT2, 2 bits RFU.
const AUTH_REQ = SMP_AUTH_REQ;

describe('bitfield', () => {
  test('named access and packing', () => {
    expect(AUTH_REQ.pack({ bondingFlags: 1, mitm: true, sc: true })).toBe(0x0d);
    expect(AUTH_REQ.pack({ ct2: true, keypress: false })).toBe(0x20);
    expect(AUTH_REQ.has(0x0d, 'mitm')).toBe(true);
    expect(AUTH_REQ.has(0x0d, 'keypress')).toBe(false);
    expect(AUTH_REQ.get(0x0e, 'bondingFlags')).toBe(2);
    expect(AUTH_REQ.parts.sc).toMatchObject({ mask: 0x08, shift: 3 });
    expect(AUTH_REQ.known).toBe(0x3f);
  });
  test('describe names bits, multi-bit values and reserved bits', () => {
    expect(AUTH_REQ.fmt!(0x2d)).toBe('0x2d(bonding|mitm|sc|ct2)');
    expect(AUTH_REQ.fmt!(0x02)).toBe('0x02(bondingFlags=2)');
    expect(AUTH_REQ.fmt!(0xc0)).toBe('0xc0(rfu=0xc0)');
    expect(AUTH_REQ.fmt!(0)).toBe('0x00(none)');
    expect(describeFlags(0x06)).toBe('0x06(LE General|no BR/EDR)');
    expect(AD_FLAGS.fmt!(0x1a)).toBe('0x1a(LE General|LE+BR/EDR controller|LE+BR/EDR host)');
  });
  test('the value is the wire octet: every byte round-trips, reserved bits included', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), v => {
      const w = ByteWriter.alloc(1, 'smp', 'authReq');
      AUTH_REQ.write(w, v);
      const bytes = w.finish();
      expect(toHex(bytes)).toBe(v.toString(16).padStart(2, '0'));
      expect(AUTH_REQ.read(new ByteReader(bytes, 'smp', 'authReq'))).toBe(v);
      const named = AUTH_REQ.pack({ bondingFlags: AUTH_REQ.get(v, 'bondingFlags'), mitm: AUTH_REQ.has(v, 'mitm'),
        sc: AUTH_REQ.has(v, 'sc'), keypress: AUTH_REQ.has(v, 'keypress'), ct2: AUTH_REQ.has(v, 'ct2') });
      expect(named).toBe(v & 0x3f);
    }));
  });
  test('overlapping parts are a table error', () => {
    expect(() => bitfield(x8, { a: 0x03, b: 0x02 })).toThrow(/overlaps/);
  });
});
