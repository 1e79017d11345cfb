// Each defence of the Security Manager, tried as an attack: a man in the middle rewrites PDUs in flight
// (the harness tap), or a peer is configured to misbehave. The victim must answer with the spec's
// Pairing Failed reason, never derive or use a key, and leave no timer behind.
import { describe, expect, test } from 'vitest';
import { toHex } from '../../../src/bytes/hex.js';
import { ArgumentError, InvalidStateError, SmpError, TimeoutError } from '../../../src/errors.js';
import { p256FromPrivateKey } from '../../../src/platform/crypto.js';
import { PairingAttempts } from '../../../src/smp/attempts.js';
import { SC_DEBUG_PRIVATE_KEY } from '../../../src/smp/crypto.js';
import { SmpIoCapability as IO, SmpPairingFailedReason as R, decodeSmp, encodeSmp } from '../../../src/smp/pdus.js';
import { Pair, type Side } from './harness.js';

function reasonOf(e: unknown): number | undefined {
  return e instanceof SmpError ? e.reason : undefined;
}
/** The Pairing Failed reasons a side put on the wire. */
function failedSent(p: Pair, side: Side): number[] {
  return p.sent.filter(s => s.from === side && s.pdu[0] === 0x05).map(s => s.pdu[1]!);
}
function rewrite(p: Pair, from: Side, code: number, edit: (pdu: Uint8Array) => Uint8Array): void {
  p.tap = (f, pdu) => (f === from && pdu[0] === code ? edit(pdu.slice()) : pdu);
}

describe('public key defences (LE Secure Connections)', () => {
  test('a public key not on P-256 (y = 0, the CVE-2018-5383 invalid-curve attack) is refused with DHKey Check Failed', () => {
    const p = new Pair({}, {});
    rewrite(p, 'i', 0x0c, pdu => { pdu.fill(0, 33, 65); return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'r')).toEqual([R.DhKeyCheckFailed]);
    expect(reasonOf(p.failure('r'))).toBe(R.DhKeyCheckFailed);
    expect((p.failure('r') as SmpError).detail).toMatch(/CVE-2018-5383/);
    // The responder never sent its own public key, let alone a confirm: no DHKey was used.
    expect(p.codes('r')).toEqual([0x02, 0x05]);
    expect(p.result('i')).toBeUndefined();
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('a public key off the curve by one bit is refused the same way', () => {
    const p = new Pair({}, {});
    rewrite(p, 'r', 0x0c, pdu => { pdu[40]! ^= 0x01; return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.DhKeyCheckFailed]);
    expect(p.actions.i.some(a => a.kind === 'startEncryption')).toBe(false);
  });
  test('our own public key reflected back (CVE-2020-26558) is refused', () => {
    const p = new Pair({ io: IO.KeyboardOnly, mitm: true }, { io: IO.DisplayOnly });
    let initiatorKey: Uint8Array | undefined;
    p.tap = (f, pdu) => {
      if (pdu[0] !== 0x0c) return pdu;
      if (f === 'i') { initiatorKey = pdu; return pdu; }
      return initiatorKey; // the attacker answers the initiator with its own key
    };
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.DhKeyCheckFailed]);
    expect((p.failure('i') as SmpError).detail).toMatch(/CVE-2020-26558/);
    expect(p.codes('i').includes(0x03)).toBe(false); // no passkey round was started
  });
  test('the SC debug key is refused unless allowed', () => {
    const debug = p256FromPrivateKey(SC_DEBUG_PRIVATE_KEY);
    const p = new Pair({}, { keyPair: debug });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.AuthenticationRequirements]);
    const q = new Pair({ allowDebugKeys: true }, { keyPair: debug });
    q.i.pair();
    q.run();
    expect(q.result('i')?.secureConnections).toBe(true);
  });
});

describe('confirm and check values', () => {
  test.each([false, true])('a tampered Pairing Confirm fails with Confirm Value Failed (sc %s)', sc => {
    const p = new Pair({ secureConnections: sc }, { secureConnections: sc });
    rewrite(p, 'r', 0x03, pdu => { pdu[5]! ^= 0x80; return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.ConfirmValueFailed]);
    expect(p.encryptions).toBe(0);
  });
  test('a tampered Pairing Random fails with Confirm Value Failed (legacy, at the responder)', () => {
    const p = new Pair({ secureConnections: false }, { secureConnections: false });
    rewrite(p, 'i', 0x04, pdu => { pdu[1]! ^= 1; return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'r')).toEqual([R.ConfirmValueFailed]);
  });
  test('a tampered DHKey Check fails with DHKey Check Failed at the responder', () => {
    const p = new Pair({}, {});
    rewrite(p, 'i', 0x0d, pdu => { pdu[16]! ^= 1; return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'r')).toEqual([R.DhKeyCheckFailed]);
    expect(p.encryptions).toBe(0);
  });
  test('a wrong passkey fails with Confirm Value Failed in the first round it differs (SC) or at once (legacy)', () => {
    for (const sc of [true, false]) {
      const p = new Pair({ io: IO.KeyboardOnly, mitm: true, secureConnections: sc }, { io: IO.DisplayOnly, secureConnections: sc },
        { i: { passkey: 0 }, r: {} });
      p.i.pair();
      p.run();
      const passkey = p.displayed.r!;
      if (passkey === 0) continue; // one in a million: the right passkey
      expect(reasonOf(p.failure('i')) ?? reasonOf(p.failure('r'))).toBe(R.ConfirmValueFailed);
      if (sc) {
        // The first differing bit ends it: rounds before it pass, so an attacker learns one bit at most.
        let bit = 0;
        while (((passkey >>> bit) & 1) === 0) bit++;
        expect(p.codes('i').filter(c => c === 0x03)).toHaveLength(bit + 1);
      }
    }
  });
  test('numeric comparison rejected by the user fails with Numeric Comparison Failed', () => {
    const p = new Pair({ io: IO.DisplayYesNo, mitm: true }, { io: IO.DisplayYesNo }, { i: { compare: false }, r: { compare: 'never' } });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.NumericComparisonFailed]);
    expect(p.clock.pendingTimers).toBe(0);
  });
});

describe('policy', () => {
  test('requireMitm with only Just Works possible fails with Authentication Requirements', () => {
    const p = new Pair({ mitm: true, requireMitm: true, io: IO.KeyboardDisplay }, { io: IO.NoInputNoOutput });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.AuthenticationRequirements]);
  });
  test('secureConnectionsOnly refuses a legacy-only peer', () => {
    const p = new Pair({ secureConnectionsOnly: true }, { secureConnections: false });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.AuthenticationRequirements]);
    expect(p.codes('i')).toEqual([0x01, 0x05]);
  });
  test('the minimum key size (16 by default) refuses a peer offering 7 octets; 7 is allowed when configured', () => {
    const p = new Pair({}, { maxKeySize: 7, minKeySize: 7 });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.EncryptionKeySize]);
    const q = new Pair({ minKeySize: 7 }, { maxKeySize: 7, minKeySize: 7 });
    q.i.pair();
    q.run();
    const r = q.result('i')!;
    expect(r.keySize).toBe(7);
    // Vol 3, Part H, 2.3.4: the key keeps its 7 least significant octets; wire order puts them first.
    expect(toHex(r.ltk!.key).slice(14)).toBe('00'.repeat(9));
    expect(toHex(q.result('r')!.ltk!.key)).toBe(toHex(r.ltk!.key));
  });
  test('a responder refusing a too-short request answers Encryption Key Size', () => {
    const p = new Pair({ maxKeySize: 10, minKeySize: 7 }, {});
    p.i.pair();
    p.run();
    expect(failedSent(p, 'r')).toEqual([R.EncryptionKeySize]);
  });
  test('a controller reporting a shorter key than negotiated (KNOB-style) fails the pairing and drops the link', () => {
    const p = new Pair({}, {});
    p.reportedKeySize = 7;
    p.i.pair();
    p.run();
    expect(reasonOf(p.failure('i'))).toBe(R.EncryptionKeySize);
    expect(p.actions.i.some(a => a.kind === 'disconnect')).toBe(true);
    expect(p.result('i')).toBeUndefined();
  });
  test('minKeySize outside 7..16 is refused at construction', () => {
    expect(() => new Pair({ minKeySize: 6 }, {})).toThrow(ArgumentError);
  });
});

describe('timeout (3.4)', () => {
  test('30 s without an answer fails with TimeoutError, and no SMP runs on the link afterwards', () => {
    const p = new Pair({}, {});
    p.tap = () => undefined; // the responder never hears anything
    p.i.pair();
    p.run();
    p.clock.advance(29_999);
    expect(p.failure('i')).toBeUndefined();
    p.clock.advance(1);
    expect(p.failure('i')).toBeInstanceOf(TimeoutError);
    expect(p.i.phase).toBe('dead');
    expect(() => p.i.pair()).toThrow(InvalidStateError);
    const before = p.sent.length;
    p.i.receive(encodeSmp({ kind: 'securityRequest', authReq: 1 }));
    p.i.receive(Uint8Array.of(0x02, 3, 0, 1, 16, 0, 0));
    expect(p.sent.length).toBe(before); // nothing answered, not even Pairing Failed
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('the timer restarts on every PDU sent: a slow but live pairing does not time out', () => {
    const p = new Pair({ io: IO.KeyboardOnly, mitm: true }, { io: IO.DisplayOnly }, { i: { passkey: 'never' }, r: {} });
    p.i.pair();
    p.run();
    p.clock.advance(20_000);
    p.i.passkeyEntered(p.displayed.r!);
    p.run();
    expect(p.result('i')?.method).toBe('passkeyResponderDisplays');
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('a user who never answers times both sides out', () => {
    const p = new Pair({ io: IO.DisplayYesNo, mitm: true }, { io: IO.DisplayYesNo }, { i: { compare: 'never' }, r: { compare: 'never' } });
    p.i.pair();
    p.run();
    p.clock.advance(30_000);
    expect(p.failure('i')).toBeInstanceOf(TimeoutError);
    expect(p.failure('r')).toBeInstanceOf(TimeoutError);
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('linkClosed ends a pairing in progress with DisconnectedError and clears the timer', () => {
    const p = new Pair({}, {});
    p.tap = () => undefined;
    p.i.pair();
    p.run();
    p.i.linkClosed();
    expect(p.failure('i')?.code).toBe('EDISCONNECTED');
    expect(p.clock.pendingTimers).toBe(0);
  });
});

describe('repeated attempts (2.3.6)', () => {
  test('after a verification failure the next attempt waits, the wait doubles, success resets it', () => {
    const p0 = new Pair({}, {});
    const attempts = new PairingAttempts(p0.clock, { initialMs: 2000 });
    const make = (tamper: boolean) => {
      const p = new Pair({ secureConnections: false, attempts }, { secureConnections: false });
      (p as unknown as { clock: unknown }).clock = p0.clock;
      if (tamper) rewrite(p, 'r', 0x03, pdu => { pdu[1]! ^= 1; return pdu; });
      return p;
    };
    const a = make(true);
    a.i.pair(); a.run();
    expect(reasonOf(a.failure('i'))).toBe(R.ConfirmValueFailed);
    const b = make(false);
    b.i.pair(); b.run();
    expect(reasonOf(b.failure('i'))).toBe(R.RepeatedAttempts);
    expect(b.sent).toHaveLength(0); // refused locally, nothing sent
    expect(attempts.blockedFor('C1:B2:B3:B4:B5:B6')).toBe(2000);
    p0.clock.advance(2000);
    const c = make(true);
    c.i.pair(); c.run();
    expect(attempts.blockedFor('C1:B2:B3:B4:B5:B6')).toBe(4000);
    p0.clock.advance(4000);
    const d = make(false);
    d.i.pair(); d.run();
    expect(d.result('i')).toBeDefined();
    expect(attempts.blockedFor('C1:B2:B3:B4:B5:B6')).toBe(0);
  });
  test('a responder refuses a Pairing Request from a peer in back-off with Repeated Attempts', () => {
    const p = new Pair({}, { attempts: undefined });
    const attempts = new PairingAttempts(p.clock);
    attempts.failed('A1:A2:A3:A4:A5:A6');
    const q = new Pair({}, { attempts });
    (q as unknown as { clock: unknown }).clock = p.clock;
    q.i.pair();
    q.run();
    expect(failedSent(q, 'r')).toEqual([R.RepeatedAttempts]);
    expect(reasonOf(q.failure('i'))).toBe(R.RepeatedAttempts);
  });
});

describe('Security Request (3.6.7)', () => {
  test('the initiator answers a Security Request by pairing', () => {
    const p = new Pair({}, {});
    p.r.requestSecurity();
    p.run();
    expect(p.actions.i[0]).toEqual({ kind: 'securityRequest', authReq: 0x29 });
    expect(p.result('i')?.secureConnections).toBe(true);
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('with a bond that satisfies the request it re-encrypts without pairing', () => {
    const key = Uint8Array.from({ length: 16 }, (_, k) => k + 1);
    const p = new Pair({ bondedKey: { key, ediv: 0x1234, rand: new Uint8Array(8).fill(7), authenticated: false } }, {});
    p.responderBond = { key, ediv: 0x1234 };
    p.r.requestSecurity();
    p.run();
    expect(p.actions.i.filter(a => a.kind === 'startEncryption')).toHaveLength(1);
    expect(p.codes('i')).toEqual([]); // no SMP PDU at all from the central
    expect(p.encryptions).toBe(1);
    expect(p.clock.pendingTimers).toBe(0);
    expect(p.r.phase).toBe('idle');
  });
  test('a bond the peer has lost (encryption fails) falls back to pairing', () => {
    const key = Uint8Array.from({ length: 16 }, (_, k) => k + 1);
    const p = new Pair({ bondedKey: { key, ediv: 0x1234, rand: new Uint8Array(8).fill(7), authenticated: false } }, {});
    p.r.requestSecurity();
    p.run();
    expect(p.codes('i')[0]).toBe(0x01);
    expect(p.result('i')?.secureConnections).toBe(true);
    expect(p.encryptions).toBe(2);
  });
  test('a bond without MITM does not satisfy a request asking for MITM: pair instead', () => {
    const key = Uint8Array.from({ length: 16 }, (_, k) => k + 1);
    const p = new Pair({ bondedKey: { key, ediv: 1, rand: new Uint8Array(8), authenticated: false } },
      { mitm: true, io: IO.DisplayOnly }, { i: { passkey: 'peer' }, r: {} });
    p.r.requestSecurity();
    p.run();
    expect(p.codes('i')[0]).toBe(0x01);
  });
  test('a Security Request during pairing is ignored', () => {
    const p = new Pair({}, {});
    p.tap = (f, pdu) => (f === 'r' && pdu[0] === 0x02 ? undefined : pdu);
    p.i.pair();
    p.run();
    p.i.receive(encodeSmp({ kind: 'securityRequest', authReq: 0x0d }));
    expect(p.codes('i')).toEqual([0x01]);
    expect(p.failure('i')).toBeUndefined();
  });
});

describe('malformed and unexpected input', () => {
  test('a Pairing Request of the wrong length is answered with Invalid Parameters', () => {
    const p = new Pair({}, {});
    p.r.receive(Uint8Array.of(0x01, 0x03, 0x00));
    expect(failedSent(p, 'r')).toEqual([R.InvalidParameters]);
  });
  test('an unknown command code is answered with Command Not Supported', () => {
    const p = new Pair({}, {});
    p.r.receive(Uint8Array.of(0x3f, 1, 2));
    expect(failedSent(p, 'r')).toEqual([R.CommandNotSupported]);
  });
  test('reserved IO capability and key size outside 7..16 are Invalid Parameters', () => {
    const p = new Pair({}, {});
    p.r.receive(encodeSmp({ kind: 'pairingRequest', ioCapability: 9, oobDataFlag: 0, authReq: 1, maxEncryptionKeySize: 16,
      initiatorKeyDistribution: 0, responderKeyDistribution: 0 }));
    p.r.receive(encodeSmp({ kind: 'pairingRequest', ioCapability: 3, oobDataFlag: 0, authReq: 1, maxEncryptionKeySize: 17,
      initiatorKeyDistribution: 0, responderKeyDistribution: 0 }));
    expect(failedSent(p, 'r')).toEqual([R.InvalidParameters, R.InvalidParameters]);
    expect(p.clock.pendingTimers).toBe(0);
  });
  test('a Pairing Response that adds keys the request did not offer is Invalid Parameters', () => {
    const p = new Pair({ bond: false }, {});
    rewrite(p, 'r', 0x02, pdu => { pdu[5] = 0x07; pdu[6] = 0x07; return pdu; });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.InvalidParameters]);
  });
  test('an identity address that is random but not static is refused', () => {
    const p = new Pair({}, { keys: { irk: new Uint8Array(16).fill(1), identity: { type: 1, address: '41:22:33:44:55:66' } } });
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.InvalidParameters]);
    expect(p.result('i')).toBeUndefined();
  });
  test('a PDU out of order fails with Unspecified Reason', () => {
    const p = new Pair({}, {});
    rewrite(p, 'r', 0x0c, () => encodeSmp({ kind: 'pairingDhKeyCheck', dhKeyCheck: new Uint8Array(16) }));
    p.i.pair();
    p.run();
    expect(failedSent(p, 'i')).toEqual([R.UnspecifiedReason]);
    expect(decodeSmp(p.sent.at(-1)!.pdu)).toMatchObject({ kind: 'pairingFailed', reason: R.UnspecifiedReason });
  });
});
