// GATT attribute values as table rows (issue 8, section 3): declarations, descriptors and the GATT
// service's characteristics decode and encode through one table; wrong sizes are DecodeErrors.
import { expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { fromShort } from '../../../src/codec/uuid.js';
import { DecodeError } from '../../../src/errors.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { CCCD, CHARACTERISTIC_PROPERTIES, EXTENDED_PROPERTIES, propertyNames } from '../../../src/gatt/constants.js';
import { cccdValue, decodeGattValue, describeGattValue, encodeGattValue, GATT_VALUE_TABLE, type GattValue } from '../../../src/gatt/values.js';

const cases: Array<[GattValue, string]> = [
  [{ kind: 'primaryServiceDeclaration', uuid: fromShort(0x180d) }, '0d18'],
  [{ kind: 'primaryServiceDeclaration', uuid: '12345678-1234-5678-1234-56789abcdef0' }, 'f0debc9a785634127856341278563412'],
  [{ kind: 'includeDeclaration', includedHandle: 0x0010, endGroupHandle: 0x0014, uuid16: fromHex('0f18') }, '100014000f18'],
  [{ kind: 'includeDeclaration', includedHandle: 0x0020, endGroupHandle: 0x0030, uuid16: new Uint8Array(0) }, '20003000'],
  [{ kind: 'characteristicDeclaration', properties: 0x12, valueHandle: 0x0017, uuid: fromShort(0x2a37) }, '121700372a'],
  [{ kind: 'extendedProperties', bits: 0x0001 }, '0100'],
  [{ kind: 'clientCharacteristicConfiguration', bits: 0x0002 }, '0200'],
  // Battery Level as a percentage: uint8, exponent 0, unit 0x27AD, Bluetooth SIG namespace, description 0.
  [{ kind: 'presentationFormat', format: 0x04, exponent: 0, unit: 0x27ad, namespace: 0x01, description: 0x0000 }, '0400ad27010000'],
  [{ kind: 'presentationFormat', format: 0x0e, exponent: -2, unit: 0x272f, namespace: 0x01, description: 0x0000 }, '0efe2f27010000'],
  [{ kind: 'aggregateFormat', handles: [0x0021, 0x0025] }, '21002500'],
  [{ kind: 'serviceChanged', start: 0x0001, end: 0xffff }, '0100ffff'],
  [{ kind: 'databaseHash', hash: fromHex('000102030405060708090a0b0c0d0e0f') }, '000102030405060708090a0b0c0d0e0f'],
];

test('every row round-trips at its exact size', () => {
  for (const [v, hex] of cases) {
    const bytes = encodeGattValue(v);
    expect(toHex(bytes)).toBe(hex);
    expect(decodeGattValue(v.kind, bytes)).toEqual(v);
  }
  expect(new Set(cases.map(c => c[0].kind)).size).toBe(9);
  expect(GATT_VALUE_TABLE.specOf('serviceChanged')).toBe('Vol 3, Part G, 7.1');
  // Bit-field values name their bits (the properties field type is CHARACTERISTIC_PROPERTIES).
  expect(describeGattValue(cases[4]![0])).toBe('characteristicDeclaration properties=0x12(read|notify) valueHandle=0x0017 uuid=' + describeGattValue(cases[4]![0]).split('uuid=')[1]);
});

test('CCCD, extended properties and declaration properties are bit fields (Vol 3, Part G, 3.3.1.1, 3.3.3.1, 3.3.3.3)', () => {
  // CCCD 0x0003: notification and indication, little-endian octets 03 00.
  const cccd = decodeGattValue('clientCharacteristicConfiguration', fromHex('0300'));
  expect([CCCD.has(cccd.bits, 'notification'), CCCD.has(cccd.bits, 'indication')]).toEqual([true, true]);
  expect(describeGattValue(cccd)).toBe('clientCharacteristicConfiguration bits=0x0003(notification|indication)');
  expect(toHex(cccdValue(CCCD.pack({ indication: true })))).toBe('0200');
  // Reserved bits round-trip and show as rfu.
  expect(toHex(encodeGattValue(decodeGattValue('clientCharacteristicConfiguration', fromHex('0480'))))).toBe('0480');
  expect(CCCD.describeBits(0x8004)).toBe('0x8004(rfu=0x8004)');
  // Properties 0x3e: read, write without response, write, notify, indicate.
  const decl = decodeGattValue('characteristicDeclaration', fromHex('3e0300002a'));
  expect(propertyNames(decl.properties)).toEqual(['read', 'writeWithoutResponse', 'write', 'notify', 'indicate']);
  expect(CHARACTERISTIC_PROPERTIES.pack({ read: true, notify: true })).toBe(0x12);
  expect(propertyNames(0x80, EXTENDED_PROPERTIES.pack({ reliableWrite: true }))).toEqual(['reliableWrite']);
  expect(describeGattValue(decodeGattValue('extendedProperties', fromHex('0300')))).toBe('extendedProperties bits=0x0003(reliableWrite|writableAuxiliaries)');
});

test('wrong sizes are DecodeErrors', () => {
  expect(() => decodeGattValue('characteristicDeclaration', fromHex('12170037122a'))).toThrow(DecodeError); // a 3-octet UUID
  expect(() => decodeGattValue('clientCharacteristicConfiguration', fromHex('01'))).toThrow(DecodeError);
  expect(() => decodeGattValue('clientCharacteristicConfiguration', fromHex('010000'))).toThrow(DecodeError);
  expect(() => decodeGattValue('serviceChanged', fromHex('0100ff'))).toThrow(DecodeError);
  expect(() => decodeGattValue('databaseHash', new Uint8Array(0))).toThrow(DecodeError);
  expect(toHex(cccdValue(1))).toBe('0100');
});

test('the server database lays out its declarations with the same rows', () => {
  const db = new GattDatabase([
    { uuid: 0x180f, id: 'bat', characteristics: [{ uuid: 0x2a19, properties: ['read', 'notify'], value: Uint8Array.of(90) }] },
    { uuid: 0x1234, includes: ['bat'], characteristics: [{ uuid: 0x2a00, properties: ['read', 'reliableWrite'] }] },
  ]);
  const read = (h: number) => db.server.handle({ kind: 'readReq', handle: h }, { mtu: 23, session: {} }) as { value: Uint8Array };
  expect(decodeGattValue('primaryServiceDeclaration', read(1).value).uuid).toBe(fromShort(0x180f));
  expect(decodeGattValue('characteristicDeclaration', read(2).value)).toEqual({ kind: 'characteristicDeclaration', properties: 0x12, valueHandle: 3, uuid: fromShort(0x2a19) });
  expect(decodeGattValue('clientCharacteristicConfiguration', read(4).value).bits).toBe(0);
  expect(decodeGattValue('includeDeclaration', read(6).value)).toMatchObject({ includedHandle: 1, endGroupHandle: 4, uuid16: fromHex('0f18') });
  expect(decodeGattValue('characteristicDeclaration', read(7).value).properties).toBe(0x82); // read + extended properties
  expect(decodeGattValue('extendedProperties', read(9).value).bits).toBe(0x0001);
});
