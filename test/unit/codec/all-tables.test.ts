// Walks every codec table of the stack (HCI commands, their return parameters, events and LE Meta
// sub-events, ATT, L2CAP signalling, SMP, AD and GATT attribute values) through the one row
// interface (RowInfo: name and spec citation) and the one table codec: every row has the
// specification's name and a section citation, nameOf() answers by kind and by code, and every row
// round-trips — a body found by a seeded search over random bytes (or, for the three composite ATT
// responses whose validity random bytes almost never meet, a PDU built here) decodes, re-encodes to
// the same octets at the size the table computes, describes itself and decodes again to the same value.
import { describe, expect, test } from 'vitest';
import { ByteReader } from '../../../src/bytes/reader.js';
import { ByteWriter } from '../../../src/bytes/writer.js';
import { toHex } from '../../../src/bytes/hex.js';
import { fromShort } from '../../../src/codec/uuid.js';
import type { PduOf, Rows, Table } from '../../../src/codec/table.js';
import { ATT_TABLE } from '../../../src/att/pdus.js';
import { SMP_TABLE } from '../../../src/smp/pdus.js';
import { SIGNALLING_TABLE } from '../../../src/l2cap/signalling.js';
import { AD_TABLE } from '../../../src/gap/ad.js';
import { GATT_VALUE_TABLE } from '../../../src/gatt/values.js';
import { COMMAND_TABLE, RETURN_TABLE } from '../../../src/hci/commands.js';
import { EVENT_TABLE } from '../../../src/hci/events.js';
import { LE_META_TABLE } from '../../../src/hci/le-events.js';
import { DecodeError } from '../../../src/errors.js';

const TABLES = {
  'HCI commands': COMMAND_TABLE, 'HCI return parameters': RETURN_TABLE, 'HCI events': EVENT_TABLE,
  'HCI LE Meta sub-events': LE_META_TABLE, ATT: ATT_TABLE, 'L2CAP signalling': SIGNALLING_TABLE, SMP: SMP_TABLE,
  AD: AD_TABLE, 'GATT values': GATT_VALUE_TABLE,
} as unknown as Record<string, Table<Rows>>;

/** Built by hand: lists whose element length, handle order and divisibility random bytes rarely satisfy. */
const BUILT: Record<string, unknown> = {
  findInformationRsp: { kind: 'findInformationRsp', informationData: [{ handle: 3, uuid: fromShort(0x2902) }] },
  readByTypeRsp: { kind: 'readByTypeRsp', attributeDataList: [{ handle: 3, value: Uint8Array.of(0x12, 0x04, 0x00, 0x37, 0x2a) }] },
  readByGroupTypeRsp: { kind: 'readByGroupTypeRsp', attributeDataList: [{ handle: 1, endGroupHandle: 5, value: Uint8Array.of(0x0d, 0x18) }] },
};

// Core Vol/Part/section, the Core Specification Supplement, or a profile / service specification with its version.
const CITATION = /^(Vol [1-7], Part [A-H], \d+(\.\d+)*|Core Specification Supplement, Part A, \d+(\.\d+)*|[A-Z0-9][\w ]+ \d+\.\d+, \d+(\.\d+)*)$/;

function lcg(seed: number): () => number {
  let s = seed;
  return () => { s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff; return s; };
}

/** A body of this row that decodes, by a seeded search: zeros and small or random octets at sizes from the minimum up. */
function findBody<R extends Rows>(t: Table<R>, kind: keyof R & string): Uint8Array | undefined {
  const rnd = lcg(0x5eed ^ t.codeOf(kind));
  const min = t.minSize(kind);
  for (let i = 0; i < 4000; i++) {
    const n = min + (i < 50 ? i % 5 : rnd() % 40);
    const b = new Uint8Array(n);
    if (i >= 5) for (let j = 0; j < n; j++) b[j] = i % 3 === 0 ? rnd() % 4 : rnd() & 0xff;
    try {
      t.decodeBody(t.codeOf(kind), new ByteReader(b, t.layer, kind));
      return b;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
  }
  return undefined;
}

function encodeBody<R extends Rows>(t: Table<R>, pdu: PduOf<R>): Uint8Array {
  const w = ByteWriter.alloc(t.sizeOfBody(pdu), t.layer, String(pdu.kind));
  t.encodeBody(w, pdu);
  return w.finish();
}

describe.each(Object.entries(TABLES))('%s table', (_, t) => {
  test('every row has the specification\'s name and a section citation; nameOf answers by kind and by code', () => {
    const info = t.info();
    expect(info.length).toBe(t.kinds.length);
    expect(info.length).toBeGreaterThan(0);
    for (const row of info) {
      expect(row.name, row.kind).toMatch(/\S/);
      expect(row.name, row.kind).not.toBe(row.kind); // the spec's name, not our identifier
      expect(row.spec, row.kind).toMatch(CITATION);
      expect(t.nameOf(row.kind)).toBe(row.name);
      expect(t.nameOf(row.code)).toBe(row.name);
      expect(t.kindOf(row.code)).toBe(row.kind);
      expect(t.specOf(row.kind)).toBe(row.spec);
    }
    expect(new Set(info.map(r => r.name)).size, 'names are unique within a table').toBe(info.length);
    expect(t.nameOf(0x7fffffff)).toBeUndefined();
  });

  test('every row round-trips through the table codec', () => {
    for (const kind of t.kinds) {
      let bytes: Uint8Array;
      let pdu: PduOf<Rows>;
      const built = t === (ATT_TABLE as unknown) ? BUILT[kind] : undefined;
      if (built) {
        pdu = built as PduOf<Rows>;
        bytes = encodeBody(t, pdu);
        expect(t.decodeBody(t.codeOf(kind), new ByteReader(bytes, t.layer, kind)), kind).toEqual(pdu);
      } else {
        const body = findBody(t, kind);
        expect(body, `${kind}: no body decodes`).toBeDefined();
        const r = new ByteReader(body!, t.layer, kind);
        pdu = t.decodeBody(t.codeOf(kind), r)!;
        expect(pdu.kind).toBe(kind);
        bytes = body!.subarray(0, r.offset); // rows that ignore trailing octets (newer controllers) stop earlier
      }
      expect(t.sizeOfBody(pdu), kind).toBe(bytes.length);
      expect(toHex(encodeBody(t, pdu)), kind).toBe(toHex(bytes));
      expect(t.decodeBody(t.codeOf(kind), new ByteReader(encodeBody(t, pdu), t.layer, kind)), kind).toEqual(pdu);
      expect(t.describe(pdu).split(' ')[0], kind).toBe(kind);
    }
  });
});
