// Pins the L2CAP signalling table and the basic frame: every command decodes and encodes its
// annotated fixture both ways, C-frames may hold several commands, and truncated or random input is
// a DecodeError only.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { DecodeError } from '../../../src/errors.js';
import {
  SIGNALLING_COMMANDS, SIGNALLING_TABLE, decodeLeSignalling, decodeSignalling, describeSignalling, encodeSignalling,
  signallingResponseKindOf, signallingSizeOf, type AnySignallingCommand, type SignallingCommand,
} from '../../../src/l2cap/signalling.js';
import { decodeL2capFrame, describeL2capFrame, encodeL2capFrame, l2capLengthOf } from '../../../src/l2cap/frames.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

const b = fromHex;

const FIXTURES: Array<[SignallingCommand, string]> = [
  [{ kind: 'commandRejectRsp', identifier: 2, reason: 0x0002, data: b('4000 4100') },
    '01 02 0600' + // code: command reject, id 2, length 6
    '0200' +       // reason: invalid CID in request
    '4000 4100'],  // reason data: local CID, remote CID
  [{ kind: 'connectionReq', identifier: 1, psm: 0x0001, sourceCid: 0x0040 },
    '02 01 0400' + // code: connection request, id 1, length 4
    '0100 4000'],  // PSM 1 (SDP), source CID 0x0040
  [{ kind: 'connectionRsp', identifier: 1, destinationCid: 0x0041, sourceCid: 0x0040, result: 0, status: 0 },
    '03 01 0800' + // code: connection response
    '4100 4000 0000 0000'], // dcid, scid, result successful, status
  [{ kind: 'configurationReq', identifier: 3, destinationCid: 0x0041, flags: 0, options: b('01 02 a002') },
    '04 03 0800' + // code: configuration request
    '4100 0000' +  // dcid, flags
    '01 02 a002'], // option MTU = 672
  [{ kind: 'configurationRsp', identifier: 3, sourceCid: 0x0040, flags: 0, result: 0, options: b('') },
    '05 03 0600' + // code: configuration response
    '4000 0000 0000'], // scid, flags, result success
  [{ kind: 'disconnectionReq', identifier: 4, destinationCid: 0x0041, sourceCid: 0x0040 },
    '06 04 0400 4100 4000'], // code: disconnection request, dcid, scid
  [{ kind: 'disconnectionRsp', identifier: 4, destinationCid: 0x0041, sourceCid: 0x0040 },
    '07 04 0400 4100 4000'], // code: disconnection response
  [{ kind: 'echoReq', identifier: 5, data: b('abcd') },
    '08 05 0200 abcd'], // code: echo request with data
  [{ kind: 'echoRsp', identifier: 5, data: b('') },
    '09 05 0000'],      // code: echo response, no data
  [{ kind: 'informationReq', identifier: 6, infoType: 0x0003 },
    '0a 06 0200 0300'], // code: information request, fixed channels supported
  [{ kind: 'informationRsp', identifier: 6, infoType: 0x0003, result: 0, data: b('8600000000000000') },
    '0b 06 0c00' +      // code: information response, length 12
    '0300 0000' +       // info type, result success
    '8600000000000000'], // fixed channel mask
  [{ kind: 'connectionParameterUpdateReq', identifier: 7, intervalMin: 6, intervalMax: 12, latency: 0, timeout: 500 },
    '12 07 0800' +      // code: connection parameter update request
    '0600 0c00' +       // interval 7.5 ms … 15 ms
    '0000 f401'],       // latency 0, supervision timeout 5 s
  [{ kind: 'connectionParameterUpdateRsp', identifier: 7, result: 0 },
    '13 07 0200 0000'], // code: response, accepted
  [{ kind: 'leCreditBasedConnectionReq', identifier: 8, lePsm: 0x0080, sourceCid: 0x0040, mtu: 512, mps: 247, initialCredits: 10 },
    '14 08 0a00' +      // code: LE credit based connection request
    '8000 4000' +       // LE_PSM 0x80, source CID
    '0002 f700 0a00'],  // MTU 512, MPS 247, credits 10
  [{ kind: 'leCreditBasedConnectionRsp', identifier: 8, destinationCid: 0x0041, mtu: 512, mps: 247, initialCredits: 10, result: 0 },
    '15 08 0a00' +      // code: LE credit based connection response
    '4100 0002 f700 0a00 0000'], // dcid, MTU, MPS, credits, result successful
  [{ kind: 'flowControlCreditInd', identifier: 9, cid: 0x0041, credits: 5 },
    '16 09 0400 4100 0500'], // code: flow control credit ind, CID, 5 credits
  [{ kind: 'creditBasedConnectionReq', identifier: 10, spsm: 0x0027, mtu: 517, mps: 251, initialCredits: 3, sourceCids: [0x40, 0x41] },
    '17 0a 0c00' +      // code: credit based connection request (EATT)
    '2700 0502 fb00 0300' + // SPSM 0x27 (EATT), MTU 517, MPS 251, credits 3
    '4000 4100'],       // source CIDs
  [{ kind: 'creditBasedConnectionRsp', identifier: 10, mtu: 517, mps: 251, initialCredits: 3, result: 0, destinationCids: [0x50] },
    '18 0a 0a00' +      // code: credit based connection response
    '0502 fb00 0300 0000' + // MTU, MPS, credits, result
    '5000'],            // destination CIDs
  [{ kind: 'creditBasedReconfigureReq', identifier: 11, mtu: 600, mps: 251, destinationCids: [0x50] },
    '19 0b 0600 5802 fb00 5000'], // code: reconfigure request, MTU 600, MPS, CIDs
  [{ kind: 'creditBasedReconfigureRsp', identifier: 11, result: 1 },
    '1a 0b 0200 0100'], // code: reconfigure response, MTU reduction not allowed
];

describe('signalling fixtures', () => {
  for (const [cmd, h] of FIXTURES) {
    test(`${cmd.kind} round-trips`, () => {
      const bytes = b(h);
      expect(decodeSignalling(bytes)).toEqual([cmd]);
      expect(decodeLeSignalling(bytes)).toEqual(cmd);
      expect(toHex(encodeSignalling(cmd))).toBe(toHex(bytes));
      expect(signallingSizeOf(cmd)).toBe(bytes.length);
      expect(describeSignalling(cmd)).toMatch(new RegExp(`^${cmd.kind} id=${cmd.identifier}`));
    });
  }
  test('every row has a fixture', () => {
    const covered = new Set(FIXTURES.map(([c]) => c.kind));
    expect(SIGNALLING_TABLE.kinds.filter(k => !covered.has(k))).toEqual([]);
  });
  test('truncations throw DecodeError only', () => {
    for (const [, h] of FIXTURES) {
      const bytes = b(h);
      for (let i = 0; i < bytes.length; i++) expect(() => decodeSignalling(bytes.subarray(0, i))).toThrow(DecodeError);
    }
  });
  test('requests name their responses', () => {
    expect(signallingResponseKindOf('connectionParameterUpdateReq')).toBe('connectionParameterUpdateRsp');
    for (const k of SIGNALLING_TABLE.kinds) {
      const r = (SIGNALLING_COMMANDS[k] as { response?: string }).response;
      if (r) expect(SIGNALLING_TABLE.kinds).toContain(r);
    }
  });
});

describe('C-frames', () => {
  test('a BR/EDR C-frame may carry several commands; LE allows one', () => {
    const two = b('0a 06 0200 0300' + '0a 07 0200 0200');
    const cmds = decodeSignalling(two);
    expect(cmds.map(c => [c.kind, c.identifier])).toEqual([['informationReq', 6], ['informationReq', 7]]);
    expect(toHex(encodeSignalling(cmds))).toBe(toHex(two));
    expect(() => decodeLeSignalling(two)).toThrow(DecodeError);
  });
  test('unknown codes keep identifier and data', () => {
    const u: AnySignallingCommand = { kind: 'unknown', code: 0x0c, identifier: 3, data: b('0100 4000 01') };
    const bytes = b('0c 03 0500 0100 4000 01');
    expect(decodeSignalling(bytes)).toEqual([u]);
    expect(toHex(encodeSignalling(u))).toBe(toHex(bytes));
    expect(describeSignalling(u)).toBe('unknown code=0x0c id=3 data=0100400001');
  });
  test('a command longer or shorter than its fixed fields is a DecodeError', () => {
    expect(() => decodeSignalling(b('13 07 0300 000000'))).toThrow(DecodeError);
    expect(() => decodeSignalling(b('13 07 0100 00'))).toThrow(DecodeError);
    expect(() => decodeSignalling(b('13 07 0400 0000'))).toThrow(DecodeError); // length past the frame
    expect(() => decodeSignalling(b('17 0a 0b00 2700 0502 fb00 0300 4000 41'))).toThrow(DecodeError); // odd CID list
    expect(() => decodeSignalling(b(''))).toThrow(DecodeError);
  });
  test('describe shows units', () => {
    expect(describeSignalling(FIXTURES[11]![0])).toBe(
      'connectionParameterUpdateReq id=7 intervalMin=6 (7.50 ms) intervalMax=12 (15.00 ms) latency=0 timeout=500 (5000 ms)');
  });
  test('random input decodes or throws DecodeError, and what decodes re-encodes identically', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 0x1b }), (body, code) => {
      const frame = Uint8Array.of(code, ...body);
      let cmds;
      try {
        cmds = decodeSignalling(frame);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      expect(toHex(encodeSignalling(cmds))).toBe(toHex(frame));
    }), fuzzRuns(5000));
  });
});

describe('basic frames', () => {
  test('decode and encode', () => {
    const f = b('0300 0400 0a0300'); // length 3, CID ATT, payload: read request handle 3
    expect(decodeL2capFrame(f)).toEqual({ cid: 4, payload: b('0a0300') });
    expect(toHex(encodeL2capFrame(4, b('0a0300')))).toBe(toHex(f));
    expect(l2capLengthOf(f)).toBe(3);
    expect(l2capLengthOf(b('03'))).toBeUndefined();
    expect(describeL2capFrame({ cid: 4, payload: b('0a0300') })).toBe('cid=0x0004 (ATT) 0a0300');
  });
  test('a Length that disagrees with the bytes is a DecodeError', () => {
    for (const h of ['', '03', '0300 04', '0300 0400 0a03', '0300 0400 0a030000']) {
      expect(() => decodeL2capFrame(b(h))).toThrow(DecodeError);
    }
  });
});
