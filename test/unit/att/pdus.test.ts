// Pins the ATT PDU table: every row decodes and encodes its annotated fixture both ways at the exact
// size, hostile composite responses and truncations are DecodeErrors (never anything else), and
// random bytes either decode to something that re-encodes to the same PDU or throw DecodeError.
import { describe, expect, expectTypeOf, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { DecodeError, EncodeError } from '../../../src/errors.js';
import {
  ATT_PDUS, ATT_TABLE, attMethodOf, attSizeOf, decodeAtt, describeAtt, encodeAtt, isAttRequest, responseKindOf,
  type AttKind, type AttPdu, type ResponseFor,
} from '../../../src/att/pdus.js';
import { attErrorName, AttErrorCode } from '../../../src/att/constants.js';
import { fromShort } from '../../../src/codec/uuid.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

const b = fromHex;
const U = fromShort;
const NUS = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const NUS_LE = '9ecadc240ee5a9e093f3a3b50100406e';

const FIXTURES: Array<[AttPdu, string]> = [
  [{ kind: 'errorRsp', requestOpcode: 0x10, handle: 0x0001, errorCode: 0x0a },
    '01' +      // opcode: ATT_ERROR_RSP
    '10' +      // request opcode in error: READ_BY_GROUP_TYPE_REQ
    '01 00' +   // attribute handle in error 0x0001
    '0a'],      // error code: Attribute Not Found
  [{ kind: 'exchangeMtuReq', clientRxMtu: 517 },
    '02' +      // opcode: ATT_EXCHANGE_MTU_REQ
    '05 02'],   // client rx mtu = 517
  [{ kind: 'exchangeMtuRsp', serverRxMtu: 247 },
    '03' +      // opcode: ATT_EXCHANGE_MTU_RSP
    'f7 00'],   // server rx mtu = 247
  [{ kind: 'findInformationReq', startingHandle: 0x0004, endingHandle: 0xffff },
    '04' +      // opcode: ATT_FIND_INFORMATION_REQ
    '04 00' +   // starting handle
    'ff ff'],   // ending handle
  [{ kind: 'findInformationRsp', informationData: [{ handle: 0x0004, uuid: U(0x2902) }, { handle: 0x0005, uuid: U(0x2901) }] },
    '05' +      // opcode: ATT_FIND_INFORMATION_RSP
    '01' +      // format: 16-bit UUIDs
    '04 00 02 29' + // handle 0x0004: CCCD
    '05 00 01 29'], // handle 0x0005: user description
  [{ kind: 'findInformationRsp', informationData: [{ handle: 0x0010, uuid: NUS }] },
    '05' +      // opcode: ATT_FIND_INFORMATION_RSP
    '02' +      // format: 128-bit UUIDs
    '10 00' + NUS_LE], // handle 0x0010: NUS (little-endian)
  [{ kind: 'findByTypeValueReq', startingHandle: 1, endingHandle: 0xffff, attributeType: U(0x2800), attributeValue: b('0d18') },
    '06' +      // opcode: ATT_FIND_BY_TYPE_VALUE_REQ
    '01 00 ff ff' + // handle range 0x0001-0xffff
    '00 28' +   // attribute type: primary service
    '0d 18'],   // value: heart rate service UUID
  [{ kind: 'findByTypeValueRsp', handlesInformationList: [{ foundAttributeHandle: 0x000c, groupEndHandle: 0x0010 }] },
    '07' +      // opcode: ATT_FIND_BY_TYPE_VALUE_RSP
    '0c 00' +   // found attribute handle
    '10 00'],   // group end handle
  [{ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeType: U(0x2803) },
    '08' +      // opcode: ATT_READ_BY_TYPE_REQ
    '01 00 ff ff' + // handle range
    '03 28'],   // attribute type: characteristic declaration (16-bit form)
  [{ kind: 'readByTypeReq', startingHandle: 1, endingHandle: 5, attributeType: NUS },
    '08' +      // opcode: ATT_READ_BY_TYPE_REQ
    '01 00 05 00' + // handle range
    NUS_LE],    // attribute type: 128-bit
  [{ kind: 'readByTypeRsp', attributeDataList: [
    { handle: 0x0002, value: b('02 0300 002a') }, { handle: 0x0004, value: b('02 0500 012a') }] },
    '09' +      // opcode: ATT_READ_BY_TYPE_RSP
    '07' +      // element length: 2 (handle) + 5 (value)
    '02 00 02 03 00 00 2a' + // 0x0002: props=read, value handle 0x0003, uuid 0x2a00
    '04 00 02 05 00 01 2a'], // 0x0004: props=read, value handle 0x0005, uuid 0x2a01
  [{ kind: 'readReq', handle: 0x0003 },
    '0a' +      // opcode: ATT_READ_REQ
    '03 00'],   // handle
  [{ kind: 'readRsp', value: b('426c7565') },
    '0b' +      // opcode: ATT_READ_RSP
    '42 6c 75 65'], // value "Blue"
  [{ kind: 'readBlobReq', handle: 0x0003, valueOffset: 22 },
    '0c' +      // opcode: ATT_READ_BLOB_REQ
    '03 00' +   // handle
    '16 00'],   // value offset 22
  [{ kind: 'readBlobRsp', value: b('0102') },
    '0d' +      // opcode: ATT_READ_BLOB_RSP
    '01 02'],   // part attribute value
  [{ kind: 'readMultipleReq', setOfHandles: [3, 5, 7] },
    '0e' +      // opcode: ATT_READ_MULTIPLE_REQ
    '03 00 05 00 07 00'], // handles
  [{ kind: 'readMultipleRsp', setOfValues: b('010203') },
    '0f' +      // opcode: ATT_READ_MULTIPLE_RSP
    '01 02 03'], // concatenated values
  [{ kind: 'readByGroupTypeReq', startingHandle: 1, endingHandle: 0xffff, attributeGroupType: U(0x2800) },
    '10' +      // opcode: ATT_READ_BY_GROUP_TYPE_REQ
    '01 00 ff ff' + // handle range
    '00 28'],   // group type: primary service
  [{ kind: 'readByGroupTypeRsp', attributeDataList: [
    { handle: 1, endGroupHandle: 5, value: b('0018') }, { handle: 6, endGroupHandle: 9, value: b('0118') }] },
    '11' +      // opcode: ATT_READ_BY_GROUP_TYPE_RSP
    '06' +      // element length: 6 (16-bit service UUIDs)
    '01 00 05 00 00 18' + // 0x0001-0x0005 generic access
    '06 00 09 00 01 18'], // 0x0006-0x0009 generic attribute
  [{ kind: 'readByGroupTypeRsp', attributeDataList: [{ handle: 0x0010, endGroupHandle: 0xffff, value: b(NUS_LE) }] },
    '11' +      // opcode: ATT_READ_BY_GROUP_TYPE_RSP
    '14' +      // element length: 20 (128-bit service UUID)
    '10 00 ff ff' + NUS_LE], // 0x0010-0xffff NUS
  [{ kind: 'writeReq', handle: 0x000d, value: b('0100') },
    '12' +      // opcode: ATT_WRITE_REQ
    '0d 00' +   // handle (a CCCD)
    '01 00'],   // value: notifications on
  [{ kind: 'writeRsp' },
    '13'],      // opcode: ATT_WRITE_RSP
  [{ kind: 'prepareWriteReq', handle: 0x0020, valueOffset: 18, value: b('aabb') },
    '16' +      // opcode: ATT_PREPARE_WRITE_REQ
    '20 00' +   // handle
    '12 00' +   // value offset 18
    'aa bb'],   // part value
  [{ kind: 'prepareWriteRsp', handle: 0x0020, valueOffset: 18, value: b('aabb') },
    '17' +      // opcode: ATT_PREPARE_WRITE_RSP (echoes the request)
    '20 00 12 00 aa bb'],
  [{ kind: 'executeWriteReq', flags: 1 },
    '18' +      // opcode: ATT_EXECUTE_WRITE_REQ
    '01'],      // flags: write all prepared values
  [{ kind: 'executeWriteRsp' },
    '19'],      // opcode: ATT_EXECUTE_WRITE_RSP
  [{ kind: 'handleValueNtf', handle: 0x000c, value: b('0648') },
    '1b' +      // opcode: ATT_HANDLE_VALUE_NTF
    '0c 00' +   // handle
    '06 48'],   // value: heart rate 72
  [{ kind: 'handleValueInd', handle: 0x0003, value: b('0100ffff') },
    '1d' +      // opcode: ATT_HANDLE_VALUE_IND
    '03 00' +   // handle (service changed)
    '01 00 ff ff'], // affected range
  [{ kind: 'handleValueCfm' },
    '1e'],      // opcode: ATT_HANDLE_VALUE_CFM
  [{ kind: 'readMultipleVariableReq', setOfHandles: [3, 9] },
    '20' +      // opcode: ATT_READ_MULTIPLE_VARIABLE_REQ
    '03 00 09 00'], // handles
  [{ kind: 'readMultipleVariableRsp', lengthValueTupleList: [{ length: 1, value: b('64') }, { length: 4, value: b('aabb') }] },
    '21' +      // opcode: ATT_READ_MULTIPLE_VARIABLE_RSP
    '01 00 64' + // length 1, value
    '04 00 aa bb'], // length 4, value truncated to 2 by the MTU (only the last may be)
  [{ kind: 'multipleHandleValueNtf', handleLengthValueTupleList: [{ handle: 3, value: b('01') }, { handle: 9, value: b('0203') }] },
    '23' +      // opcode: ATT_MULTIPLE_HANDLE_VALUE_NTF
    '03 00 01 00 01' + // handle 3, length 1, value
    '09 00 02 00 02 03'], // handle 9, length 2, value
  [{ kind: 'writeCmd', handle: 0x0010, value: b('68656c6c6f') },
    '52' +      // opcode: ATT_WRITE_CMD
    '10 00' +   // handle
    '68 65 6c 6c 6f'], // value "hello"
  [{ kind: 'signedWriteCmd', handle: 0x0010, value: b('01'), authenticationSignature: b('000102030405060708090a0b') },
    'd2' +      // opcode: ATT_SIGNED_WRITE_CMD
    '10 00' +   // handle
    '01' +      // value
    '00 01 02 03 04 05 06 07 08 09 0a 0b'], // signature: sign counter (4) + MAC (8)
];

describe('ATT fixtures', () => {
  for (const [pdu, h] of FIXTURES) {
    test(`${pdu.kind} ${h.slice(0, 24)} round-trips`, () => {
      const bytes = b(h);
      expect(decodeAtt(bytes)).toEqual(pdu);
      expect(toHex(encodeAtt(pdu))).toBe(toHex(bytes));
      expect(attSizeOf(pdu)).toBe(bytes.length);
      expect(describeAtt(pdu).startsWith(pdu.kind)).toBe(true);
    });
  }

  test('every ATT table row has a fixture', () => {
    const covered = new Set(FIXTURES.map(([p]) => p.kind));
    expect(ATT_TABLE.kinds.filter(k => !covered.has(k))).toEqual([]);
  });

  test('every truncation throws DecodeError or decodes to a shorter valid PDU, nothing else', () => {
    for (const [pdu, h] of FIXTURES) {
      const bytes = b(h);
      const min = 1 + ATT_TABLE.minSize(pdu.kind);
      for (let i = 0; i < bytes.length; i++) {
        let threw: unknown;
        try {
          decodeAtt(bytes.subarray(0, i));
        } catch (e) {
          threw = e;
        }
        if (threw !== undefined) expect(threw, `${pdu.kind} cut at ${i}`).toBeInstanceOf(DecodeError);
        if (i < min) expect(threw, `${pdu.kind} cut at ${i} < ${min}`).toBeInstanceOf(DecodeError);
      }
    }
  });

  test('unknown opcodes keep their bytes; commands are classified by bit 6', () => {
    expect(decodeAtt(b('7f 0102'))).toEqual({ kind: 'unknown', code: 0x7f, data: b('0102') });
    expect(toHex(encodeAtt({ kind: 'unknown', code: 0x7f, data: b('0102') }))).toBe('7f0102');
    expect(attMethodOf(0x7f)).toBe('command');
    expect(attMethodOf(0x3f)).toBe('unknown');
    expect(attMethodOf(0x0a)).toBe('request');
  });
});

describe('hostile composite responses are DecodeErrors', () => {
  const bad: Array<[string, string]> = [
    ['11 07 0100 0500 001800', 'group element length 7'],
    ['11 00', 'group element length 0'],
    ['11 06', 'empty group list'],
    ['11 06 0100 0500 0018 0600', 'group list not a multiple of 6'],
    ['11 06 0000 0500 0018', 'group handle 0'],
    ['11 06 0500 0100 0018', 'group end before start'],
    ['11 06 0100 0500 0018 0300 0400 0118', 'group starting inside the previous one'],
    ['11 14 0100 0500 0018', 'group element length 20 with 6 octets'],
    ['09 01 00', 'read by type element length 1'],
    ['09 00', 'read by type element length 0'],
    ['09 03 0100 aa 0200', 'read by type list not a multiple'],
    ['09 03', 'read by type empty list'],
    ['09 03 0200 aa 0100 bb', 'read by type handles descending'],
    ['05 03 0100 0229', 'find information format 3'],
    ['05 01 0100 02', 'find information pair cut'],
    ['05 01', 'find information empty'],
    ['05 02 0100 0229', 'find information format 2 with a 16-bit pair'],
    ['07 0100', 'find by type value pair cut'],
    ['07', 'find by type value empty'],
    ['07 0500 0400', 'find by type value end before found'],
    ['0e 0300', 'read multiple with one handle'],
    ['0e 0300 05', 'read multiple odd length'],
    ['20 0300', 'read multiple variable with one handle'],
    ['23', 'multiple handle value ntf empty'],
    ['23 0300 0500 0102', 'multiple handle value ntf value cut'],
    ['21 0100 aa 05', 'read multiple variable dangling length octet'],
    ['d2 1000 0102030405060708090a0b', 'signed write without a whole signature'],
    ['08 0100 ffff 0028 00', 'read by type req with a 3-octet UUID'],
    ['08 0100 ffff 78563412', 'read by type req with a 32-bit UUID'],
    ['13 00', 'write rsp with a trailing octet'],
    ['02 0502 00', 'exchange mtu req too long'],
  ];
  for (const [h, what] of bad) {
    test(what, () => expect(() => decodeAtt(b(h))).toThrow(DecodeError));
  }
  test('errors name the layer, the PDU and the offset', () => {
    try {
      decodeAtt(b('11 07 0100 0500 001800'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
      const d = e as DecodeError;
      expect([d.layer, d.what, d.offset]).toEqual(['att', 'readByGroupTypeRsp', 1]);
    }
  });
});

describe('encoding', () => {
  test('values that do not fit are EncodeErrors, never truncation', () => {
    const cases: AttPdu[] = [
      { kind: 'readReq', handle: 0x10000 },
      { kind: 'readByTypeRsp', attributeDataList: [{ handle: 1, value: b('01') }, { handle: 2, value: b('0102') }] },
      { kind: 'readByTypeRsp', attributeDataList: [] },
      { kind: 'readByGroupTypeRsp', attributeDataList: [{ handle: 1, endGroupHandle: 2, value: b('010203') }] },
      { kind: 'readMultipleReq', setOfHandles: [1] },
      { kind: 'signedWriteCmd', handle: 1, value: b(''), authenticationSignature: b('00') },
      { kind: 'readMultipleVariableRsp', lengthValueTupleList: [{ length: 1, value: b('0102') }] },
      { kind: 'readMultipleVariableRsp', lengthValueTupleList: [{ length: 3, value: b('01') }, { length: 1, value: b('01') }] },
      { kind: 'findByTypeValueReq', startingHandle: 1, endingHandle: 2, attributeType: NUS, attributeValue: b('') },
    ];
    for (const pdu of cases) expect(() => encodeAtt(pdu), pdu.kind).toThrow(EncodeError);
  });
  test('find information picks format 2 as soon as one UUID is not 16-bit', () => {
    const pdu: AttPdu = { kind: 'findInformationRsp', informationData: [{ handle: 1, uuid: U(0x2902) }, { handle: 2, uuid: NUS }] };
    const bytes = encodeAtt(pdu);
    expect(toHex(bytes.subarray(0, 4))).toBe('05020100');
    expect(bytes.length).toBe(2 + 2 * 18);
    expect(decodeAtt(bytes)).toEqual(pdu);
  });
  test('decoded values are views into the frame, not copies', () => {
    const frame = b('1b 0c00 0648');
    const pdu = decodeAtt(frame) as { value: Uint8Array };
    expect(pdu.value.buffer).toBe(frame.buffer);
  });
});

describe('table metadata and types', () => {
  test('requests name their response; methods follow the opcode bits', () => {
    for (const k of ATT_TABLE.kinds) {
      const row = ATT_PDUS[k] as { code: number; method: string; response?: AttKind };
      if (row.method === 'request') {
        expect(row.response, k).toBeDefined();
        expect(ATT_PDUS[row.response!].method).toBe('response');
        expect(ATT_PDUS[row.response!].code).toBe(row.code + 1); // Vol 3, Part F, 3.4: rsp = req + 1
      }
      expect(!!(row.code & 0x40), k).toBe(row.method === 'command');
    }
    expect(responseKindOf('readByGroupTypeReq')).toBe('readByGroupTypeRsp');
    expect(isAttRequest({ kind: 'readReq', handle: 1 })).toBe(true);
    expect(isAttRequest({ kind: 'writeCmd', handle: 1, value: b('') })).toBe(false);
  });
  test('ResponseFor maps a request kind to its response PDU type', () => {
    expectTypeOf<ResponseFor<'readReq'>['kind']>().toEqualTypeOf<'readRsp'>();
    expectTypeOf<ResponseFor<'readReq'>['value']>().toEqualTypeOf<Uint8Array>();
    expectTypeOf<ResponseFor<'readByGroupTypeReq'>['attributeDataList'][number]['endGroupHandle']>().toEqualTypeOf<number>();
    expectTypeOf<ResponseFor<'exchangeMtuReq'>['serverRxMtu']>().toEqualTypeOf<number>();
  });
  test('describe names the failed request and the error', () => {
    expect(describeAtt({ kind: 'errorRsp', requestOpcode: 0x10, handle: 1, errorCode: 0x0a }))
      .toBe('errorRsp requestOpcode=readByGroupTypeReq handle=0x0001 errorCode=0x0a (Attribute Not Found)');
    expect(attErrorName(AttErrorCode.CccdImproperlyConfigured)).toMatch(/Client Characteristic Configuration/);
    expect(attErrorName(0x80)).toBe('Application Error 0x80');
    expect(attErrorName(0x50)).toBe('Reserved 0x50');
  });
});

describe('random input', () => {
  test('decodes or throws DecodeError; whatever decodes re-encodes to an equal PDU', () => {
    const opcodes = ATT_TABLE.kinds.map(k => ATT_PDUS[k].code);
    fc.assert(fc.property(
      fc.oneof(fc.constantFrom(...opcodes), fc.integer({ min: 0, max: 255 })),
      fc.uint8Array({ maxLength: 48 }),
      (op, body) => {
        const frame = Uint8Array.of(op, ...body);
        let pdu;
        try {
          pdu = decodeAtt(frame);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
          return;
        }
        const again = encodeAtt(pdu);
        expect(decodeAtt(again)).toEqual(pdu);
        expect(attSizeOf(pdu)).toBe(again.length);
      },
    ), fuzzRuns(10_000));
  });
});
