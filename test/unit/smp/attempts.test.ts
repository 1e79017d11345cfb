// Repeated attempts (Core Vol 3, Part H, 2.3.6), on the injected clock: the waiting interval grows
// exponentially with each failure up to a maximum, comes back down exponentially after quiet periods,
// is kept under the peer's identity when known, gates our own Security Request too, and is bounded.
import { describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { ArgumentError, SmpError } from '../../../src/errors.js';
import { PairingAttempts } from '../../../src/smp/attempts.js';
import { SmpPairingFailedReason as R } from '../../../src/smp/pdus.js';
import { SmpSession, type SmpAction } from '../../../src/smp/session.js';
import type { SmpAddress } from '../../../src/smp/session.js';
import { I_ADDR, Pair, R_ADDR } from './harness.js';

const PEER = 'C1:B2:B3:B4:B5:B6';

describe('PairingAttempts: growth, cap and decay', () => {
  test('each failure doubles the wait from 2 s up to the 60 s cap; the wait runs out on the clock', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock);
    const waits: number[] = [];
    for (let n = 0; n < 8; n++) {
      a.failed(PEER);
      waits.push(a.blockedFor(PEER));
    }
    expect(waits).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    clock.advance(59_999);
    expect(a.blockedFor(PEER)).toBe(1);
    clock.advance(1);
    expect(a.blockedFor(PEER)).toBe(0);
    expect(a.blockedFor(PEER.toLowerCase())).toBe(0);
  });

  test('failures in a row while waiting still grow the wait; the address is case-insensitive', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock, { initialMs: 1_000, maxMs: 8_000 });
    a.failed(PEER.toLowerCase());
    a.failed(PEER);
    expect(a.blockedFor(PEER)).toBe(2_000);
    expect(a.nextWaitMs(PEER)).toBe(4_000);
  });

  test('quiet periods after the wait bring the interval back down one halving at a time, to the minimum', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock, { initialMs: 2_000, maxMs: 60_000, decayMs: 60_000 });
    for (let n = 0; n < 6; n++) a.failed(PEER); // at the cap: 60 s
    expect(a.nextWaitMs(PEER)).toBe(60_000);
    clock.advance(60_000); // the wait runs out; no decay yet
    expect(a.blockedFor(PEER)).toBe(0);
    expect(a.nextWaitMs(PEER)).toBe(60_000);
    clock.advance(59_999);
    expect(a.nextWaitMs(PEER)).toBe(60_000);
    clock.advance(1); // one quiet period: one step down (level 6 → 5), so the next failure is back at 60 s
    expect(a.nextWaitMs(PEER)).toBe(60_000);
    clock.advance(60_000); // a second one: level 4, the next failure waits 32 s
    expect(a.nextWaitMs(PEER)).toBe(32_000);
    a.failed(PEER);
    expect(a.blockedFor(PEER)).toBe(32_000);
    clock.advance(32_000 + 3 * 60_000); // the wait, then three quiet periods: level 5 → 2
    expect(a.nextWaitMs(PEER)).toBe(8_000);
    a.failed(PEER);
    expect(a.blockedFor(PEER)).toBe(8_000);
    // Long quiet: fully decayed and forgotten; the next failure waits the minimum again.
    clock.advance(8_000 + 3 * 60_000 - 1);
    expect(a.nextWaitMs(PEER)).toBe(4_000); // level 1 still remembered: a failure now would wait 4 s
    expect(a.size).toBe(1);
    clock.advance(1);
    expect(a.size).toBe(0);
    expect(a.nextWaitMs(PEER)).toBe(2_000);
    a.failed(PEER);
    expect(a.blockedFor(PEER)).toBe(2_000);
  });

  test('decay is worked out lazily and in whole periods, whenever the clock is read', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock, { initialMs: 1_000, maxMs: 16_000, decayMs: 10_000 });
    for (let n = 0; n < 5; n++) a.failed(PEER); // 16 s
    clock.advance(16_000 + 25_000); // two whole quiet periods and a half: level 5 → 3
    expect(a.nextWaitMs(PEER)).toBe(8_000); // level 4 next
    clock.advance(5_000); // the third period completes: level 2
    expect(a.nextWaitMs(PEER)).toBe(4_000);
  });

  test('a success forgets the peer at once', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock);
    a.failed(PEER); a.failed(PEER);
    a.succeeded(PEER.toLowerCase());
    expect(a.blockedFor(PEER)).toBe(0);
    expect(a.size).toBe(0);
  });

  test('bounded: past maxPeers the fully decayed go first, then the least recently failed', () => {
    const clock = new FakeClock();
    const a = new PairingAttempts(clock, { initialMs: 1_000, maxMs: 1_000, decayMs: 1_000, maxPeers: 3 });
    const addr = (n: number) => `00:00:00:00:00:0${n}`;
    a.failed(addr(1));
    clock.advance(2_000); // addr 1: wait over and one quiet period: fully decayed (but still stored)
    a.failed(addr(2)); a.failed(addr(3));
    a.failed(addr(4)); // over the cap: the decayed addr 1 goes, not addr 2
    expect(a.size).toBe(3);
    expect([2, 3, 4].map(n => a.blockedFor(addr(n)))).toEqual([1_000, 1_000, 1_000]);
    a.failed(addr(2)); // addr 2 failed again: now the most recent
    a.failed(addr(5)); // over the cap: the least recently failed, addr 3, goes
    expect(a.size).toBe(3);
    expect([2, 3, 4, 5].map(n => a.blockedFor(addr(n)) > 0)).toEqual([true, false, true, true]);
    // A flood of claimants never grows the state past the cap.
    for (let n = 0; n < 1_000; n++) a.failed(`10:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`);
    expect(a.size).toBe(3);
  });

  test('options are checked', () => {
    const clock = new FakeClock();
    expect(() => new PairingAttempts(clock, { initialMs: 0 })).toThrow(ArgumentError);
    expect(() => new PairingAttempts(clock, { decayMs: Number.NaN })).toThrow(ArgumentError);
    expect(() => new PairingAttempts(clock, { maxPeers: 0 })).toThrow(ArgumentError);
    expect(() => new PairingAttempts(clock, { initialMs: 5_000, maxMs: 1_000 })).toThrow(ArgumentError);
  });
});

describe('SmpSession and the back-off', () => {
  /** A bare session against nobody: records what it emits. */
  function lone(role: 'initiator' | 'responder', clock: FakeClock, attempts: PairingAttempts, peer: SmpAddress, identity?: SmpAddress) {
    const actions: SmpAction[] = [];
    const s = new SmpSession({
      role, clock, local: role === 'initiator' ? I_ADDR : R_ADDR, peer, attempts,
      emit: a => actions.push(a), ...(identity ? { peerIdentity: () => identity } : {}),
    });
    return { s, actions, sent: () => actions.filter(a => a.kind === 'send').map(a => (a as { pdu: Uint8Array }).pdu) };
  }
  const IDENTITY: SmpAddress = { type: 0, address: '00:1B:DC:0A:0B:0C' };
  const RPA_1: SmpAddress = { type: 1, address: '4B:00:00:00:00:01' };
  const RPA_2: SmpAddress = { type: 1, address: '5C:00:00:00:00:02' };

  test('a failure is kept under the identity: the same peer on a new RPA still waits; an unknown one does not', () => {
    const clock = new FakeClock();
    const attempts = new PairingAttempts(clock);
    // The peer, known by its identity, fails a pairing while on RPA 1 (a tampered confirm: Confirm Value Failed).
    const p = new Pair({ attempts, peerIdentity: () => IDENTITY, secureConnections: false }, { secureConnections: false });
    (p as unknown as { clock: unknown }).clock = clock;
    p.tap = (f, pdu) => (f === 'r' && pdu[0] === 0x03 ? Uint8Array.from(pdu, (b, k) => (k === 1 ? b ^ 1 : b)) : pdu);
    p.i.pair(); p.run();
    expect((p.failure('i') as SmpError).reason).toBe(R.ConfirmValueFailed);
    expect(attempts.blockedFor(IDENTITY.address)).toBe(2_000);
    expect(attempts.blockedFor(R_ADDR.address)).toBe(0); // not under the link address
    // Back on a fresh RPA, resolved to the same identity: refused locally, nothing on the air.
    const again = lone('initiator', clock, attempts, RPA_2, IDENTITY);
    again.s.pair();
    expect(again.sent()).toEqual([]);
    expect(again.actions).toMatchObject([{ kind: 'failed', error: { reason: R.RepeatedAttempts } }]);
    // As responder too: its Pairing Request is answered with Pairing Failed (Repeated Attempts).
    const asResponder = lone('responder', clock, attempts, RPA_1, IDENTITY);
    asResponder.s.receive(Uint8Array.of(0x01, 0x03, 0x00, 0x01, 0x10, 0x00, 0x00));
    expect(asResponder.sent()).toEqual([Uint8Array.of(0x05, R.RepeatedAttempts)]);
    // A peer whose RPA did not resolve is another claimant: it may pair.
    const stranger = lone('initiator', clock, attempts, RPA_2);
    stranger.s.pair();
    expect(stranger.sent()[0]?.[0]).toBe(0x01);
    // Once the wait has run out, the known peer may pair again.
    clock.advance(2_000);
    const later = lone('initiator', clock, attempts, RPA_1, IDENTITY);
    later.s.pair();
    expect(later.sent()[0]?.[0]).toBe(0x01);
  });

  test('our own Security Request waits too (responder), and goes out once the wait is over', () => {
    const clock = new FakeClock();
    const attempts = new PairingAttempts(clock);
    attempts.failed(I_ADDR.address);
    const r = lone('responder', clock, attempts, I_ADDR);
    r.s.requestSecurity();
    expect(r.sent()).toEqual([]);
    expect(r.actions).toMatchObject([{ kind: 'failed', error: { reason: R.RepeatedAttempts, by: 'local' } }]);
    expect(r.s.phase).toBe('idle');
    clock.advance(2_000);
    r.s.requestSecurity();
    expect(r.sent()).toHaveLength(1);
    expect(r.sent()[0]![0]).toBe(0x0b);
  });

  test('a Security Request from a peer in back-off is answered with Pairing Failed (Repeated Attempts), no Pairing Request', () => {
    const clock = new FakeClock();
    const attempts = new PairingAttempts(clock);
    attempts.failed(IDENTITY.address);
    const i = lone('initiator', clock, attempts, RPA_1, IDENTITY);
    i.s.receive(Uint8Array.of(0x0b, 0x01));
    expect(i.sent()).toEqual([Uint8Array.of(0x05, R.RepeatedAttempts)]);
    expect(i.actions.find(a => a.kind === 'failed')).toMatchObject({ error: { reason: R.RepeatedAttempts } });
    expect(clock.pendingTimers).toBe(0);
  });
});
