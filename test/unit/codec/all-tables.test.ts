// Walks every codec table of the stack (HCI commands, their return parameters, events and LE Meta
// sub-events, ATT, L2CAP signalling, SMP, AD and GATT attribute values) through the one row
// interface (RowInfo: name and spec citation) and the one codec wrapper (framedCodec: the table plus
// its layer's framing): every row has the specification's name and a section citation, nameOf()
// answers by kind and by code, and every row round-trips — a body found by a seeded search over
// random bytes (or, for the three composite ATT responses whose validity random bytes almost never
// meet, a PDU built here) decodes, re-encodes to the same octets at the size the codec computes,
// and as a whole frame (header + body) decodes again to the same value; describe() and nameOf()
// name it. Each layer's public decode / encode / describe functions are checked to be that codec.
import { describe, expect, test } from 'vitest';
import { ByteWriter } from '../../../src/bytes/writer.js';
import { ByteReader } from '../../../src/bytes/reader.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { fromShort } from '../../../src/codec/uuid.js';
import type { FramedCodec, PduOf, Rows, Table } from '../../../src/codec/table.js';
import { ATT_CODEC, decodeAtt, describeAtt, encodeAtt } from '../../../src/att/pdus.js';
import { SMP_CODEC, decodeSmp, describeSmp, encodeSmp } from '../../../src/smp/pdus.js';
import { SIGNALLING_CODEC, decodeLeSignalling, describeSignalling, encodeSignalling } from '../../../src/l2cap/signalling.js';
import { AD_CODEC, decodeAd, describeAdStructure, encodeAd } from '../../../src/gap/ad.js';
import { GATT_VALUE_CODEC, decodeGattValue, describeGattValue, encodeGattValue } from '../../../src/gatt/values.js';
import { COMMAND_CODEC, RETURN_CODEC } from '../../../src/hci/commands.js';
import { EVENT_CODEC } from '../../../src/hci/events.js';
import { LE_META_CODEC } from '../../../src/hci/le-events.js';
import { decodeHciPacket, describeHciPacket, encodeHciPacket } from '../../../src/hci/packets.js';
import { DecodeError } from '../../../src/errors.js';

type AnyCodec = FramedCodec<Rows, object, unknown>;
/** Every table of the stack, each behind its one codec, with the header values its framing carries. */
const CODECS: Record<string, { codec: AnyCodec; header?: object; bare?: boolean }> = {
  'HCI commands': { codec: COMMAND_CODEC as never },
  'HCI return parameters': { codec: RETURN_CODEC as never, bare: true },
  'HCI events': { codec: EVENT_CODEC as never },
  'HCI LE Meta sub-events': { codec: LE_META_CODEC as never },
  ATT: { codec: ATT_CODEC as never },
  'L2CAP signalling': { codec: SIGNALLING_CODEC as never, header: { identifier: 7 } },
  SMP: { codec: SMP_CODEC as never },
  AD: { codec: AD_CODEC as never },
  'GATT values': { codec: GATT_VALUE_CODEC as never, bare: true },
};

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

describe.each(Object.entries(CODECS))('%s table', (_, { codec, header, bare }) => {
  const t = codec.table;
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

  test('every row round-trips through the one codec: body and whole frame, size, describe, nameOf', () => {
    for (const kind of t.kinds) {
      const code = t.codeOf(kind);
      let body: Uint8Array;
      let pdu: PduOf<Rows>;
      const built = codec === (ATT_CODEC as unknown) ? BUILT[kind] : undefined;
      if (built) {
        pdu = built as PduOf<Rows>;
        body = codec.encodeBody(pdu);
        expect(codec.decodeBody(code, new ByteReader(body, t.layer, kind)), kind).toEqual(pdu);
      } else {
        const found = findBody(t, kind);
        expect(found, `${kind}: no body decodes`).toBeDefined();
        const r = new ByteReader(found!, t.layer, kind);
        pdu = codec.decodeBody(code, r, header) as PduOf<Rows>;
        expect(pdu.kind).toBe(kind);
        body = found!.subarray(0, r.offset); // rows that ignore trailing octets (newer controllers) stop earlier
      }
      // The body through the codec and through the bare table agree.
      expect(codec.bodySizeOf(pdu), kind).toBe(body.length);
      expect(toHex(codec.encodeBody(pdu)), kind).toBe(toHex(body));
      expect(toHex(encodeBody(t, pdu)), kind).toBe(toHex(body));
      // The whole frame: the layer's header, then the same body.
      const frame = codec.encode(pdu);
      expect(codec.sizeOf(pdu), kind).toBe(frame.length);
      expect(toHex(frame.subarray(frame.length - body.length)), kind).toBe(toHex(body));
      if (bare) expect(frame.length).toBe(body.length);
      else expect(codec.decode(frame), kind).toEqual(pdu);
      expect(codec.nameOf(pdu)).toBe(t.nameOf(kind));
      const d = codec.describe(pdu);
      expect(d.startsWith(kind) || d.startsWith(t.nameOf(kind)!), `${kind}: ${d}`).toBe(true);
    }
  });
});

describe('each layer\'s public codec functions are its table codec', () => {
  test('ATT, SMP, signalling, AD, GATT values and whole HCI packets', () => {
    const att = fromHex('0a 0300');
    expect(decodeAtt(att)).toEqual(ATT_CODEC.decode(att));
    expect(toHex(encodeAtt(decodeAtt(att)))).toBe('0a0300');
    expect(describeAtt(decodeAtt(att))).toBe(ATT_CODEC.describe(decodeAtt(att)));
    const smp = fromHex('0b 2d');
    expect(decodeSmp(smp)).toEqual(SMP_CODEC.decode(smp));
    expect(toHex(encodeSmp(decodeSmp(smp)))).toBe('0b2d');
    expect(describeSmp(decodeSmp(smp))).toBe(SMP_CODEC.describe(decodeSmp(smp)));
    const sig = fromHex('12 05 0800 1800 2800 0000 f401');
    const cmd = decodeLeSignalling(sig);
    expect(cmd).toEqual(SIGNALLING_CODEC.decode(sig));
    expect(toHex(encodeSignalling(cmd))).toBe(toHex(sig));
    expect(describeSignalling(cmd)).toMatch(/^connectionParameterUpdateReq id=5 /);
    const ad = fromHex('020106 05ff4c000215 00 0000');
    expect(decodeAd(ad)).toEqual(AD_CODEC.decodeAll(ad)); // the zero Length ends the significant part
    expect(toHex(encodeAd(decodeAd(ad)))).toBe('02010605ff4c000215');
    expect(describeAdStructure(decodeAd(ad)[0]!)).toBe(AD_CODEC.describe(decodeAd(ad)[0]!));
    const cccd = decodeGattValue('clientCharacteristicConfiguration', fromHex('0100'));
    expect(toHex(encodeGattValue(cccd))).toBe('0100');
    expect(describeGattValue(cccd)).toBe(GATT_VALUE_CODEC.describe(cccd));
    // LE Set Scan Enable, and an LE Meta sub-event: the event codec hands 0x3E to the LE Meta codec.
    for (const h of ['01 0c20 02 0100', '04 3e 0c 02 01 00 01 554433221100 00 c4', '04 3e 03 7f 0102', '04 ff 02 0102']) {
      const p = decodeHciPacket(fromHex(h));
      expect(toHex(encodeHciPacket(p)), h).toBe(toHex(fromHex(h)));
      const own = p.type === 'command' ? COMMAND_CODEC : EVENT_CODEC;
      expect(describeHciPacket(p)).toBe((own as unknown as AnyCodec).describe(p));
    }
    expect(describeHciPacket(decodeHciPacket(fromHex('04 3e 03 7f 0102')))).toBe('Unknown LE Meta sub-event 0x7f data=0102');
  });
});
