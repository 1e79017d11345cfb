// Pins the SMP PDU table: every PDU decodes and encodes its annotated fixture both ways at the exact
// size, lengths are exact (short or long PDUs are DecodeErrors), and random input never throws
// anything but DecodeError.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { DecodeError } from '../../../src/errors.js';
import {
  SMP_AUTH_REQ, SMP_BONDING, SMP_KEY_DIST, SMP_PDUS, SMP_TABLE, SmpAuthReq, SmpKeyDist, authReqBonds, decodeSmp, describeAuthReq, describeKeyDist, describeSmp, encodeSmp, smpSizeOf,
  type SmpPdu,
} from '../../../src/smp/pdus.js';
import { fuzzRuns } from '../../helpers/fuzz-runs.js';

const b = fromHex;
const K = '00112233445566778899aabbccddeeff';
const X = '20b003d2f297be2c5e2c83a7e9f9a5b9eff49111acf4fddbcc0301480e359de6';
const Y = 'dc809c49652aeb6d63329abf5a52155c766345c28fed3024741c8ed01589d28b';

const FIXTURES: Array<[SmpPdu, string]> = [
  [{ kind: 'pairingRequest', ioCapability: 0x03, oobDataFlag: 0, authReq: 0x2d, maxEncryptionKeySize: 16,
    initiatorKeyDistribution: 0x0d, responderKeyDistribution: 0x0f },
    '01' +    // code: Pairing Request
    '03' +    // IO capability: NoInputNoOutput
    '00' +    // OOB data: not present
    '2d' +    // AuthReq: bonding | MITM | SC | CT2
    '10' +    // max encryption key size 16
    '0d' +    // initiator keys: enc | sign | link
    '0f'],    // responder keys: enc | id | sign | link
  [{ kind: 'pairingResponse', ioCapability: 0x04, oobDataFlag: 1, authReq: 0x01, maxEncryptionKeySize: 7,
    initiatorKeyDistribution: 0x00, responderKeyDistribution: 0x01 },
    '02' +    // code: Pairing Response
    '04 01' + // IO capability KeyboardDisplay, OOB present
    '01' +    // AuthReq: bonding only (legacy)
    '07' +    // max key size 7
    '00 01'], // initiator: none, responder: enc key
  [{ kind: 'pairingConfirm', confirmValue: b(K) }, '03' + K],  // code, 128-bit confirm (LSO first)
  [{ kind: 'pairingRandom', randomValue: b(K) }, '04' + K],    // code, 128-bit random
  [{ kind: 'pairingFailed', reason: 0x04 }, '05 04'],          // code, reason: Confirm Value Failed
  [{ kind: 'encryptionInformation', longTermKey: b(K) }, '06' + K], // code, LTK
  [{ kind: 'centralIdentification', ediv: 0x1234, rand: b('0102030405060708') },
    '07' +    // code: Central Identification
    '34 12' + // EDIV
    '01 02 03 04 05 06 07 08'], // Rand (64 bits)
  [{ kind: 'identityInformation', identityResolvingKey: b(K) }, '08' + K], // code, IRK
  [{ kind: 'identityAddressInformation', addrType: 1, bdAddr: 'C0:11:22:33:44:55' },
    '09' +    // code: Identity Address Information
    '01' +    // address type: static random
    '55 44 33 22 11 c0'], // BD_ADDR little-endian
  [{ kind: 'signingInformation', signatureKey: b(K) }, '0a' + K], // code, CSRK
  [{ kind: 'securityRequest', authReq: 0x0d }, '0b 0d'],     // code, AuthReq: bonding | MITM | SC
  [{ kind: 'pairingPublicKey', publicKeyX: b(X), publicKeyY: b(Y) }, '0c' + X + Y], // code, P-256 X, Y (LSO first)
  [{ kind: 'pairingDhKeyCheck', dhKeyCheck: b(K) }, '0d' + K], // code, DHKey check value
  [{ kind: 'pairingKeypressNotification', notificationType: 1 }, '0e 01'], // code, digit entered
];

describe('SMP fixtures', () => {
  for (const [pdu, h] of FIXTURES) {
    test(`${pdu.kind} round-trips`, () => {
      const bytes = b(h);
      expect(decodeSmp(bytes)).toEqual(pdu);
      expect(toHex(encodeSmp(pdu))).toBe(toHex(bytes));
      expect(smpSizeOf(pdu)).toBe(bytes.length);
      expect(describeSmp(pdu).startsWith(pdu.kind)).toBe(true);
    });
  }
  test('every row has a fixture', () => {
    const covered = new Set(FIXTURES.map(([p]) => p.kind));
    expect(SMP_TABLE.kinds.filter(k => !covered.has(k))).toEqual([]);
  });
  test('every truncation and every extra octet is a DecodeError', () => {
    for (const [, h] of FIXTURES) {
      const bytes = b(h);
      for (let i = 0; i < bytes.length; i++) expect(() => decodeSmp(bytes.subarray(0, i))).toThrow(DecodeError);
      expect(() => decodeSmp(Uint8Array.of(...bytes, 0))).toThrow(DecodeError);
    }
  });
  test('codes are unique and rows cite Part H', () => {
    for (const k of SMP_TABLE.kinds) expect(SMP_PDUS[k].spec).toMatch(/^Vol 3, Part H, 3\.[56]\.\d$/);
  });
  test('unknown codes keep their bytes', () => {
    expect(decodeSmp(b('0f 01'))).toEqual({ kind: 'unknown', code: 0x0f, data: b('01') });
  });
  test('describe names bits and reasons', () => {
    expect(describeSmp(FIXTURES[0]![0])).toBe('pairingRequest ioCapability=NoInputNoOutput oobDataFlag=not present ' +
      'authReq=0x2d(bonding|mitm|sc|ct2) maxEncryptionKeySize=16 initiatorKeyDistribution=0x0d(enc|sign|link) ' +
      'responderKeyDistribution=0x0f(enc|id|sign|link)');
    expect(describeSmp({ kind: 'pairingFailed', reason: 0x0b })).toBe('pairingFailed reason=DHKey Check Failed');
    expect(describeAuthReq(SmpAuthReq.Keypress | 0x40)).toBe('0x50(keypress|rfu=0x40)');
    expect(describeKeyDist(SmpKeyDist.IdKey)).toBe('0x02(id)');
    expect(describeAuthReq(0)).toBe('0x00(none)');
  });
  test('the spec sample pairing features (Vol 3, Part H, 2.2.3 c1 example) decode to named bits', () => {
    // preq = 0x07071000000101 and pres = 0x05000800000302 are given most significant octet first;
    // on the wire the Code comes first, so the octets are reversed.
    const preq = decodeSmp(b('01 01 00 00 10 07 07'));
    expect(preq).toEqual({ kind: 'pairingRequest', ioCapability: 0x01, oobDataFlag: 0, authReq: 0, maxEncryptionKeySize: 16,
      initiatorKeyDistribution: 0x07, responderKeyDistribution: 0x07 });
    const pres = decodeSmp(b('02 03 00 00 08 00 05'));
    expect(pres).toEqual({ kind: 'pairingResponse', ioCapability: 0x03, oobDataFlag: 0, authReq: 0, maxEncryptionKeySize: 8,
      initiatorKeyDistribution: 0x00, responderKeyDistribution: 0x05 });
    expect(describeSmp(pres)).toBe('pairingResponse ioCapability=NoInputNoOutput oobDataFlag=not present authReq=0x00(none) ' +
      'maxEncryptionKeySize=8 initiatorKeyDistribution=0x00(none) responderKeyDistribution=0x05(enc|sign)');
    const dist = (preq as { responderKeyDistribution: number }).responderKeyDistribution;
    expect([SMP_KEY_DIST.has(dist, 'encKey'), SMP_KEY_DIST.has(dist, 'idKey'), SMP_KEY_DIST.has(dist, 'signKey'),
      SMP_KEY_DIST.has(dist, 'linkKey')]).toEqual([true, true, true, false]);
    // Built from named bits, the same octets come back.
    const built = encodeSmp({ kind: 'pairingResponse', ioCapability: 0x03, oobDataFlag: 0, authReq: SMP_AUTH_REQ.pack({}),
      maxEncryptionKeySize: 8, initiatorKeyDistribution: SMP_KEY_DIST.pack({}),
      responderKeyDistribution: SMP_KEY_DIST.pack({ encKey: true, signKey: true }) });
    expect(toHex(built)).toBe('02030000080005');
  });
  test('AuthReq and key distribution bits by name (Vol 3, Part H, 3.5.1 Figure 3.3, 3.6.1 Figure 3.11)', () => {
    // bonding (Bonding_Flags 0b01) | MITM | SC | CT2 = 0b0010_1101
    const v = SMP_AUTH_REQ.pack({ bondingFlags: SMP_BONDING, mitm: true, sc: true, ct2: true });
    expect(toHex(encodeSmp({ kind: 'securityRequest', authReq: v }))).toBe('0b2d');
    expect(authReqBonds(0x2d)).toBe(true);
    expect(authReqBonds(0x03)).toBe(false); // Bonding_Flags 0b11 is reserved, not bonding
    expect(authReqBonds(0x0c)).toBe(false);
    expect(SMP_AUTH_REQ.has(0x10, 'keypress')).toBe(true);
    expect(SMP_KEY_DIST.known).toBe(0x0f);
    // The constants kept for existing users are the table's bits.
    expect([SmpAuthReq.Bonding, SmpAuthReq.BondingMask, SmpAuthReq.Mitm, SmpAuthReq.SecureConnections, SmpAuthReq.Keypress,
      SmpAuthReq.Ct2]).toEqual([0x01, 0x03, 0x04, 0x08, 0x10, 0x20]);
    expect([SmpKeyDist.EncKey, SmpKeyDist.IdKey, SmpKeyDist.SignKey, SmpKeyDist.LinkKey]).toEqual([1, 2, 4, 8]);
  });
  test('random input decodes or throws DecodeError; what decodes re-encodes identically', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0x10 }), fc.uint8Array({ maxLength: 70 }), (code, body) => {
      const frame = Uint8Array.of(code, ...body);
      let pdu;
      try {
        pdu = decodeSmp(frame);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      expect(toHex(encodeSmp(pdu))).toBe(toHex(frame));
    }), fuzzRuns(5000));
  });
});
