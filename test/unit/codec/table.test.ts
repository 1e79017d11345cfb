// Pins the codec core: a declared table decodes, encodes, sizes and describes its rows, and rejects
// short or over-long input with DecodeError only.
import { describe, expect, test } from 'vitest';
import { ByteReader } from '../../../src/bytes/reader.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { arrayOf, bdAddr, i8, lengthPrefixed, rest, struct, u16, u8, x16 } from '../../../src/codec/field.js';
import { codeU8, defineTable, framedCodec } from '../../../src/codec/table.js';
import { DecodeError, EncodeError } from '../../../src/errors.js';

const T = defineTable('att', {
  ping: { code: 0x01, name: 'TEST', spec: 'test', fields: { handle: x16, value: rest } },
  pair: { code: 0x02, name: 'TEST', spec: 'test', fields: { a: u8, b: u16 } },
  list: { code: 0x03, name: 'TEST', spec: 'test', fields: { items: arrayOf(u8, struct({ addr: bdAddr, rssi: i8, data: lengthPrefixed(u8) })) } },
});
const codec = framedCodec(T, codeU8, { what: 'test pdu' });

describe('defineTable', () => {
  test('decodes, encodes and sizes each row', () => {
    const cases: Array<[string, unknown]> = [
      ['01 0300 aabb', { kind: 'ping', handle: 3, value: fromHex('aabb') }],
      ['02 07 3412', { kind: 'pair', a: 7, b: 0x1234 }],
      ['03 01 554433221100 c4 02 0102', { kind: 'list', items: [{ addr: '00:11:22:33:44:55', rssi: -60, data: fromHex('0102') }] }],
    ];
    for (const [h, pdu] of cases) {
      const bytes = fromHex(h);
      expect(codec.decode(bytes)).toEqual(pdu);
      expect(toHex(codec.encode(pdu as never))).toBe(toHex(bytes));
      expect(codec.sizeOf(pdu as never)).toBe(bytes.length);
    }
  });
  // Issue 14: `import 'blewire'` defines every layer's tables (about 500 rows) and compiles none of
  // them; a table compiles its rows, and checks them, on its first use. A row that breaks the rules
  // is therefore reported then, by every entry point, before any PDU is read or written.
  test('rows are compiled and checked on the first use, not when the table is defined', () => {
    const clash = { a: { code: 0x01, name: 'A', spec: 'test', fields: {} }, b: { code: 0x01, name: 'B', spec: 'test', fields: {} } };
    const unnamed = { a: { code: 0x01, name: '', spec: 'test', fields: {} } };
    for (const [rows, why] of [[clash, /code 0x1 used by a and b/], [unnamed, /row a needs a name and a spec/]] as const) {
      const t = defineTable('att', rows);
      expect(t.kinds).toEqual(Object.keys(rows));
      expect(() => t.kindOf(1)).toThrow(why);
      expect(() => t.codeOf('a')).toThrow(why);
      expect(() => t.info()).toThrow(why);
      expect(() => framedCodec(t, codeU8, { what: 'test pdu' }).decode(fromHex('01'))).toThrow(why);
    }
    const fresh = defineTable('att', { a: { code: 0x05, name: 'A', spec: 'test', fields: { v: u8 } } });
    expect(fresh.nameOf(0x05)).toBe('A');
    expect(fresh.minSize('a')).toBe(1);
  });
  test('unknown codes keep their bytes', () => {
    expect(codec.decode(fromHex('7f 0102'))).toEqual({ kind: 'unknown', code: 0x7f, data: fromHex('0102') });
  });
  test('truncation and trailing bytes are DecodeErrors naming the PDU', () => {
    const full = fromHex('03 01 554433221100 c4 02 0102');
    for (let i = 0; i < full.length; i++) {
      expect(() => codec.decode(full.subarray(0, i))).toThrow(DecodeError);
    }
    expect(() => codec.decode(fromHex('02 07 3412 00'))).toThrow(/pair.*trailing/);
  });
  test('describe is one line with formatted fields', () => {
    expect(T.describe({ kind: 'ping', handle: 3, value: fromHex('aabb') })).toBe('ping handle=0x0003 value=aabb');
  });
  test('out-of-range values are EncodeErrors, not truncation', () => {
    expect(() => codec.encode({ kind: 'pair', a: 256, b: 0 })).toThrow(EncodeError);
  });
  test('a reader never reads past its end', () => {
    const r = new ByteReader(fromHex('0102'), 'att', 'x');
    expect(() => r.u24()).toThrow(DecodeError);
  });
});
