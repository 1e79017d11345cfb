// Pins the declarative database layout (handles as BlueZ's example server lays them out) and the
// Database Hash against the Core spec's example vector.
import { describe, expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { aesCmac } from '../../../src/gatt/crypto.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { bluezExampleServices } from '../../helpers/fake-peripheral.js';

describe('layout', () => {
  test("the BlueZ replica has BlueZ's handles: 46 attributes, 0x0001–0x002e", () => {
    const db = new GattDatabase(bluezExampleServices());
    expect(db.server.attributes).toHaveLength(46);
    expect(db.server.attributes.at(-1)!.handle).toBe(0x2e);
    expect(db.layout.map(s => [s.start, s.end])).toEqual([[1, 7], [8, 0x11], [0x12, 0x14], [0x15, 0x1c], [0x1d, 0x20], [0x21, 0x2e]]);
    const chars = db.layout.flatMap(s => s.characteristics);
    expect(chars.map(c => c.declHandle)).toEqual([2, 4, 6, 9, 0xc, 0xe, 0x10, 0x13, 0x16, 0x19, 0x1b, 0x1e, 0x22, 0x27, 0x2b]);
    expect(chars.map(c => c.properties)).toEqual([2, 2, 2, 0x20, 0x0a, 2, 2, 2, 0x10, 2, 8, 0x12, 0x8a, 0x0a, 0x0a]);
    expect(chars.flatMap(c => c.descriptors.map(d => d.handle))).toEqual([0xb, 0x18, 0x20, 0x24, 0x25, 0x26, 0x29, 0x2a, 0x2d, 0x2e]);
  });
});

describe('crypto', () => {
  test('AES-CMAC matches RFC 4493 example 2', () => {
    expect(toHex(aesCmac(fromHex('2b7e151628aed2a6abf7158809cf4f3c'), fromHex('6bc1bee22e409f96e93d7e117393172a')))).toBe('070a16b46b4d4144f79bdd9dd04a287c');
    expect(toHex(aesCmac(fromHex('2b7e151628aed2a6abf7158809cf4f3c'), new Uint8Array(0)))).toBe('bb1d6929e95937287fa37d129b756746');
  });

  test('Database Hash of the Core spec example database (Vol 3, Part G, Appendix B)', () => {
    // GAP: Device Name (read/write), Appearance; GATT: Service Changed + CCCD, Client Supported
    // Features, Database Hash; Glucose including the secondary Battery service, one characteristic
    // with a CCCD and an Extended Properties descriptor of value 0x0000.
    const db = new GattDatabase([
      { uuid: 0x1800, characteristics: [
        { uuid: 0x2a00, properties: ['read', 'write'] },
        { uuid: 0x2a01, properties: ['read'] },
      ] },
      { uuid: 0x1801, characteristics: [
        { uuid: 0x2a05, properties: ['indicate'] },
        { uuid: 0x2b29, properties: ['read', 'write'] },
        { uuid: 0x2b2a, properties: ['read'] },
      ] },
      { uuid: 0x1808, includes: ['bas'], characteristics: [
        { uuid: 0x2a18, properties: ['read', 'indicate'], descriptors: [{ uuid: 0x2902 }, { uuid: 0x2900, value: Uint8Array.of(0, 0) }] },
      ] },
      { uuid: 0x180f, id: 'bas', primary: false, characteristics: [{ uuid: 0x2a19, properties: ['read'] }] },
    ]);
    expect(toHex(db.hash)).toBe('f1ca2d48ecf58bac8a8830bbb9fba990');
  });
});
