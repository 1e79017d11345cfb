// Pins the HCI codec on annotated wire fixtures: every command, return-parameter, event and LE
// sub-event row decodes from spec bytes to the expected value and encodes back to the same bytes;
// every row has a fixture; every truncation is a DecodeError and nothing else.
import { describe, expect, expectTypeOf, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { DecodeError, EncodeError } from '../../../src/errors.js';
import {
  HCI_COMMANDS, type CommandReturn, type CompleteCommandKind, type HciCommandKind, type StatusCommandKind,
} from '../../../src/hci/commands.js';
import { HCI_EVENTS } from '../../../src/hci/events.js';
import { LE_META_EVENTS } from '../../../src/hci/le-events.js';
import {
  decodeHciPacket, describeHciPacket, encodeAcl, encodeCommand, encodeEvent, encodeHciPacket, type HciPacket,
} from '../../../src/hci/packets.js';
import { HCI_STATUS, statusName } from '../../../src/hci/status.js';
import {
  ALL_FIXTURES, COMMAND_FIXTURES, EVENT_FIXTURES, LE_EVENT_FIXTURES, RETURN_FIXTURES, UNKNOWN_H4_FIXTURE,
} from './fixtures.js';

const kindsOf = (list: Array<{ packet: HciPacket }>): Set<string> =>
  new Set(list.map(f => ('kind' in f.packet ? f.packet.kind : '')));

describe('HCI fixtures round-trip', () => {
  for (const { packet, hex } of [...ALL_FIXTURES, UNKNOWN_H4_FIXTURE]) {
    const bytes = fromHex(hex);
    const label = 'kind' in packet ? `${packet.type} ${packet.kind}` : packet.type;
    const extra = packet.type === 'event' && packet.kind === 'commandComplete' ? ` ${packet.returnParameters.kind}` : '';
    test(`${label}${extra} ${toHex(bytes.subarray(0, 4))}`, () => {
      expect(decodeHciPacket(bytes)).toEqual(packet);
      expect(toHex(encodeHciPacket(packet))).toBe(toHex(bytes));
      // Views into a larger buffer at an offset decode identically (no absolute-offset assumptions).
      const padded = new Uint8Array(bytes.length + 7);
      padded.set(bytes, 3);
      expect(decodeHciPacket(padded.subarray(3, 3 + bytes.length))).toEqual(packet);
      expect(describeHciPacket(packet)).not.toMatch(/\n/);
    });
  }
});

describe('completeness', () => {
  test('every command row has a command fixture', () => {
    const have = kindsOf(COMMAND_FIXTURES);
    expect(Object.keys(HCI_COMMANDS).filter(k => !have.has(k))).toEqual([]);
  });
  test('every command row with return parameters has a Command Complete fixture', () => {
    const have = new Set<string>(RETURN_FIXTURES.map(f => f.packet.type === 'event' && f.packet.kind === 'commandComplete'
      ? f.packet.returnParameters.kind : ''));
    const withReturns = Object.entries(HCI_COMMANDS).filter(([, r]) => 'returns' in r).map(([k]) => k);
    expect(withReturns.filter(k => !have.has(k))).toEqual([]);
  });
  test('every event row and LE sub-event row has a fixture', () => {
    const have = new Set([...kindsOf(EVENT_FIXTURES), ...kindsOf(LE_EVENT_FIXTURES), ...kindsOf(RETURN_FIXTURES)]);
    expect([...Object.keys(HCI_EVENTS), ...Object.keys(LE_META_EVENTS)].filter(k => !have.has(k))).toEqual([]);
  });
  test('every row cites the Core spec', () => {
    for (const r of [...Object.values(HCI_COMMANDS), ...Object.values(HCI_EVENTS), ...Object.values(LE_META_EVENTS)]) {
      expect(r.spec).toMatch(/^Vol \d, Part [A-Z], \d+(\.\d+)+$/);
    }
  });
});

describe('malformed input', () => {
  test('every truncation of every fixture is a DecodeError, nothing else', () => {
    for (const { hex } of ALL_FIXTURES) {
      const bytes = fromHex(hex);
      for (let i = 0; i < bytes.length; i++) {
        let err: unknown;
        try { decodeHciPacket(bytes.slice(0, i)); } catch (e) { err = e; }
        expect(err, `${hex} cut at ${i}`).toBeInstanceOf(DecodeError);
      }
    }
  });
  test('a parameter length that disagrees with the packet is a DecodeError', () => {
    expect(() => decodeHciPacket(fromHex('01 030c 01'))).toThrow(DecodeError);          // says 1, has 0
    expect(() => decodeHciPacket(fromHex('04 05 04 00 4000 13 00'))).toThrow(DecodeError); // says 4, has 5
    expect(() => decodeHciPacket(fromHex('02 4020 0800 0300040002 1702'))).toThrow(DecodeError);
  });
  test('commands are strict about trailing parameters', () => {
    expect(() => decodeHciPacket(fromHex('01 0c20 03 01 00 00'))).toThrow(/leSetScanEnable.*trailing/);
  });
  test('fixed-size events tolerate parameters appended by newer controllers', () => {
    expect(decodeHciPacket(fromHex('04 05 05 00 4000 13 99'))).toEqual(
      { type: 'event', kind: 'disconnectionComplete', status: 0, connectionHandle: 0x40, reason: 0x13 });
    expect(decodeHciPacket(fromHex('04 0e 08 01 0220 00 fb00 0f ff'))).toMatchObject(
      { returnParameters: { kind: 'leReadBufferSize', leAclDataPacketLength: 251, totalNumLeAclDataPackets: 15 } });
  });
  test('report arrays are strict: bytes after the counted reports are an error', () => {
    expect(() => decodeHciPacket(fromHex('04 3e 10 02 01 00 01 554433221100 03 020106 c4 00'))).toThrow(DecodeError);
    // A report count larger than the bytes can hold fails before allocating.
    expect(() => decodeHciPacket(fromHex('04 3e 02 02 ff'))).toThrow(DecodeError);
  });
  test('advertising data longer than 31 in LE Set Advertising Data is a DecodeError', () => {
    expect(() => decodeHciPacket(fromHex('01 0820 20 20' + '00'.repeat(31)))).toThrow(DecodeError);
  });
  test('an empty packet is a DecodeError', () => {
    expect(() => decodeHciPacket(new Uint8Array(0))).toThrow(DecodeError);
  });
});

describe('encoding', () => {
  test('encodeCommand builds the H4 command packet from a typed command', () => {
    expect(toHex(encodeCommand({ kind: 'leRand' }))).toBe('01182000');
    expect(toHex(encodeCommand({ kind: 'disconnect', connectionHandle: 0x40, reason: 0x13 }))).toBe('010604034000' + '13');
  });
  test('encodeAcl packs handle and flags', () => {
    expect(toHex(encodeAcl({ handle: 0x0041, pb: 0, bc: 0, data: fromHex('0100') }))).toBe('024100020001' + '00');
    expect(() => encodeAcl({ handle: 0x1000, pb: 0, bc: 0, data: new Uint8Array(0) })).toThrow(EncodeError);
  });
  test('out-of-range values and oversized parameters are EncodeErrors, never truncation', () => {
    expect(() => encodeCommand({ kind: 'leSetScanEnable', enable: 256, filterDuplicates: 0 })).toThrow(EncodeError);
    expect(() => encodeCommand({ kind: 'vendor', opcode: 0xfc00, data: new Uint8Array(256) })).toThrow(EncodeError);
    expect(() => encodeCommand({ kind: 'leSetAdvertisingData', advertisingData: new Uint8Array(32) })).toThrow(EncodeError);
    expect(() => encodeCommand({ kind: 'leSetExtendedScanParameters', ownAddressType: 0, scanningFilterPolicy: 0,
      scanningPhys: [{ phy: 4, scanType: 0, scanInterval: 1, scanWindow: 1 }, { phy: 1, scanType: 0, scanInterval: 1, scanWindow: 1 }] }))
      .toThrow(EncodeError); // PHY blocks out of bit order
  });
  test('Command Complete refuses return parameters of another command', () => {
    expect(() => encodeEvent({ kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x2018,
      returnParameters: { kind: 'reset', status: 0 } })).toThrow(EncodeError);
  });
  test('a missing field is an EncodeError', () => {
    expect(() => encodeCommand({ kind: 'disconnect', connectionHandle: 0x40 } as never)).toThrow(EncodeError);
  });
});

describe('describe', () => {
  const d = (hex: string): string => describeHciPacket(decodeHciPacket(fromHex(hex)));
  test('commands by spec name with their fields', () => {
    expect(d('01 0c20 02 01 00')).toBe('LE Set Scan Enable enable=1 filterDuplicates=0');
    expect(d('01 0604 03 4000 13')).toBe('Disconnect connectionHandle=0x0040 reason=Remote User Terminated Connection');
  });
  test('Command Complete and Command Status name the command by opcode', () => {
    expect(d('04 0e 0c 01 1820 00 0102030405060708'))
      .toBe('Command Complete LE Rand ncmd=1 status=Success randomNumber=0102030405060708');
    expect(d('04 0f 04 0c 01 0d20')).toBe('Command Status LE Create Connection status=Command Disallowed ncmd=1');
    expect(d('04 0e 04 01 17fc 00')).toBe('Command Complete Vendor 0xfc17 ncmd=1 data=00');
  });
  test('LE events and reports', () => {
    expect(d('04 3e 0f 02 01 00 01 554433221100 03 020106 c4'))
      .toBe('LE Advertising Report reports=[{eventType=ADV_IND addressType=1 address="00:11:22:33:44:55" data=020106 rssi=-60}]');
  });
});

describe('status codes', () => {
  test('names from Vol 1, Part F', () => {
    expect(statusName(0x3e)).toMatch(/^Connection Failed to be Established/);
    expect(statusName(0x13)).toBe('Remote User Terminated Connection');
    expect(statusName(0x00)).toBe('Success');
    expect(statusName(0xf0)).toBe('Reserved (0xf0)');
    expect(Object.keys(HCI_STATUS).length).toBeGreaterThan(60);
  });
});

describe('derived types', () => {
  test('typed return parameters and completion kinds come from the table', () => {
    expectTypeOf<CommandReturn<'leRand'>>().toEqualTypeOf<{ status: number; randomNumber: Uint8Array }>();
    expectTypeOf<CommandReturn<'leReadBufferSizeV2'>>().toEqualTypeOf<{ status: number; leAclDataPacketLength: number;
      totalNumLeAclDataPackets: number; isoDataPacketLength: number; totalNumIsoDataPackets: number }>();
    expectTypeOf<CommandReturn<'reset'>>().toEqualTypeOf<{ status: number }>();
    expectTypeOf<CommandReturn<'leReadLocalSupportedFeatures'>['leFeatures']>().toEqualTypeOf<bigint>();
    expectTypeOf<'leCreateConnection'>().toMatchTypeOf<StatusCommandKind>();
    expectTypeOf<'leRand'>().toMatchTypeOf<CompleteCommandKind>();
    expectTypeOf<'leRand'>().not.toMatchTypeOf<StatusCommandKind>();
    expectTypeOf<'nonsense'>().not.toMatchTypeOf<HciCommandKind>();
  });
});
