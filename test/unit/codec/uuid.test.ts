// Pins the UUID representation: every accepted spelling maps to one canonical 128-bit string, the
// wire forms (2/4/16 octets little-endian) decode and encode exactly, and bad input fails loudly.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { ByteReader } from '../../../src/bytes/reader.js';
import { ByteWriter } from '../../../src/bytes/writer.js';
import { ArgumentError } from '../../../src/errors.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import {
  describeUuid, fromShort, is16, shortUuid, uuid, uuid128, uuid16, uuid32, uuidAny, uuidFromBytes, uuidName,
  uuidOf, uuidTitle, uuidToBytes, uuidToBytes128,
} from '../../../src/codec/uuid.js';
import { CHARACTERISTIC_NAMES, DESCRIPTOR_NAMES, SERVICE_NAMES, uuidByName } from '../../../src/codec/uuid-names.js';
import { DecodeError, EncodeError } from '../../../src/errors.js';
import type { Field } from '../../../src/codec/field.js';

const HR = '0000180d-0000-1000-8000-00805f9b34fb';

function enc<T>(f: Field<T>, v: T): string {
  const w = ByteWriter.alloc(f.size(v), 'att', 'test');
  f.write(w, v);
  return toHex(w.finish());
}
function dec<T>(f: Field<T>, h: string): T {
  const r = new ByteReader(fromHex(h), 'att', 'test');
  const v = f.read(r);
  r.done();
  return v;
}

describe('uuid()', () => {
  test('accepts numbers, short hex, full strings and names', () => {
    for (const x of [0x180d, '180d', '0x180d', '0X180D', '0000180d', HR, HR.toUpperCase(), HR.replace(/-/g, ''),
      'heart_rate', ' Heart_Rate ']) {
      expect(uuid(x)).toBe(HR);
    }
    expect(uuid('heart_rate_measurement')).toBe('00002a37-0000-1000-8000-00805f9b34fb');
    expect(uuid('gatt.client_characteristic_configuration')).toBe('00002902-0000-1000-8000-00805f9b34fb');
    expect(uuid('client_characteristic_configuration')).toBe('00002902-0000-1000-8000-00805f9b34fb');
    expect(uuid('device_name')).toBe('00002a00-0000-1000-8000-00805f9b34fb');
    expect(uuid('gatt.primary_service')).toBe('00002800-0000-1000-8000-00805f9b34fb');
    expect(uuid('gatt.database_hash')).toBe('00002b2a-0000-1000-8000-00805f9b34fb');
    expect(uuid(0x12345678)).toBe('12345678-0000-1000-8000-00805f9b34fb');
    expect(uuid('6E400001-B5A3-F393-E0A9-E50E24DCCA9E')).toBe('6e400001-b5a3-f393-e0a9-e50e24dcca9e');
  });
  test('category lookups follow Web Bluetooth (current_time is a service and a characteristic)', () => {
    expect(uuidOf('service', 'current_time')).toBe(fromShort(0x1805));
    expect(uuidOf('characteristic', 'current_time')).toBe(fromShort(0x2a2b));
    expect(uuidOf('descriptor', 0x2902)).toBe(fromShort(0x2902));
    expect(() => uuidOf('service', 'heart_rate_measurement')).toThrow(ArgumentError);
  });
  test('rejects what is not a UUID', () => {
    for (const x of ['', 'no_such_thing', '18d', '123456789', '0x123456789', 'xyz', -1, 2 ** 32, 1.5, HR + '0']) {
      expect(() => uuid(x as never)).toThrow(ArgumentError);
    }
  });
  test('shortUuid, is16, names and describe', () => {
    expect(shortUuid(HR)).toBe(0x180d);
    expect(shortUuid('12345678-0000-1000-8000-00805f9b34fb')).toBe(0x12345678);
    expect(shortUuid('6e400001-b5a3-f393-e0a9-e50e24dcca9e')).toBeUndefined();
    expect(is16(HR)).toBe(true);
    expect(is16('12345678-0000-1000-8000-00805f9b34fb')).toBe(false);
    expect(uuidName(HR)).toBe('heart_rate');
    expect(describeUuid(HR)).toBe('0x180d (heart_rate)');
    expect(describeUuid(fromShort(0xfe95))).toBe('0xfe95');
    expect(uuidTitle(fromShort(0x2a37))).toBe('Heart Rate Measurement');
    expect(uuidTitle(fromShort(0x2902))).toBe('Client Characteristic Configuration');
    expect(uuidTitle(fromShort(0x2a50))).toBe('PnP ID');
    expect(uuidTitle(fromShort(0xfe95))).toBeUndefined();
    expect(describeUuid('6e400001-b5a3-f393-e0a9-e50e24dcca9e')).toBe('6e400001-b5a3-f393-e0a9-e50e24dcca9e');
  });
  test('every name resolves back to its number', () => {
    for (const [m, cat] of [[SERVICE_NAMES, 'service'], [CHARACTERISTIC_NAMES, 'characteristic'],
      [DESCRIPTOR_NAMES, 'descriptor']] as const) {
      for (const [n, name] of m) expect(uuidByName(name, cat)).toBe(n);
    }
  });
});

describe('wire forms', () => {
  const NUS = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
  const NUS_WIRE = '9e ca dc 24 0e e5 a9 e0 93 f3 a3 b5 01 00 40 6e'; // little-endian: last string octet first
  test('uuid16 / uuid32 / uuid128 both ways', () => {
    expect(dec(uuid16, '0d 18')).toBe(HR);
    expect(enc(uuid16, HR)).toBe('0d18');
    expect(dec(uuid32, '78 56 34 12')).toBe('12345678-0000-1000-8000-00805f9b34fb');
    expect(enc(uuid32, '12345678-0000-1000-8000-00805f9b34fb')).toBe('78563412');
    expect(dec(uuid128, NUS_WIRE)).toBe(NUS);
    expect(enc(uuid128, NUS)).toBe(NUS_WIRE.replace(/ /g, ''));
    expect(enc(uuid128, HR)).toBe('fb349b5f80000080001000000d180000');
    expect(toHex(uuidToBytes128(HR))).toBe('fb349b5f80000080001000000d180000');
  });
  test('uuidAny takes 2 or 16 octets and writes the shortest ATT form', () => {
    expect(dec(uuidAny, '0d18')).toBe(HR);
    expect(dec(uuidAny, 'fb349b5f80000080001000000d180000')).toBe(HR);
    expect(enc(uuidAny, HR)).toBe('0d18');
    expect(enc(uuidAny, NUS)).toBe(NUS_WIRE.replace(/ /g, ''));
    expect(enc(uuidAny, '12345678-0000-1000-8000-00805f9b34fb')).toHaveLength(32); // 32-bit → 128 in ATT
    for (const h of ['', '0d', '0d1800', '78563412']) expect(() => dec(uuidAny, h)).toThrow(DecodeError);
    expect(toHex(uuidToBytes(HR))).toBe('0d18');
  });
  test('encoding a UUID that does not fit is an EncodeError', () => {
    expect(() => enc(uuid16, NUS)).toThrow(EncodeError);
    expect(() => enc(uuid16, '12345678-0000-1000-8000-00805f9b34fb')).toThrow(EncodeError);
    expect(() => enc(uuid128, 'garbage')).toThrow(EncodeError);
  });
  test('uuidFromBytes handles offsets and rejects other lengths', () => {
    expect(uuidFromBytes(fromHex('ff 0d 18 ff'), 1, 2)).toBe(HR);
    expect(uuidFromBytes(fromHex('010203'))).toBeUndefined();
  });
  test('any 16 octets round-trip through the string form', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), b => {
      const u = uuidFromBytes(b)!;
      expect(uuid(u)).toBe(u);
      expect(toHex(uuidToBytes128(u))).toBe(toHex(b));
    }));
  });
});
