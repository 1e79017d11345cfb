// A hostile SMP peer: every PDU in flight may be dropped, repeated, mutated, replaced by random octets
// or by a PDU replayed from another pairing, the user may answer anything or nothing, encryption
// events may be bogus, and time runs out. Whatever happens: no exception escapes, every failure is a
// typed error, the two sides never settle on different keys (unless the attacker changed the encrypted key distribution), and no timer is left on the fake clock.
import { expect, test } from 'vitest';
import fc from 'fast-check';
import { toHex } from '../../../src/bytes/hex.js';
import { DisconnectedError, SmpError, TimeoutError } from '../../../src/errors.js';
import { SmpIoCapability as IO, type SmpIoCapability } from '../../../src/smp/pdus.js';
import { Pair, type Side } from './harness.js';

// A transcript of honest PDUs from both methods families, to replay into other pairings.
function transcript(opts: { sc: boolean; io: SmpIoCapability }): Uint8Array[] {
  const p = new Pair({ secureConnections: opts.sc, io: opts.io, mitm: true }, { secureConnections: opts.sc, io: IO.KeyboardDisplay });
  p.i.pair();
  p.run();
  return p.sent.map(s => s.pdu);
}
const REPLAY = [...transcript({ sc: true, io: IO.KeyboardOnly }), ...transcript({ sc: false, io: IO.DisplayYesNo }),
  ...transcript({ sc: true, io: IO.DisplayYesNo })];

const fate = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ k: 'pass' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'repeat' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('flip' as const), at: fc.nat(80), bit: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), len: fc.nat(80) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 70 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('replay' as const), i: fc.nat(REPLAY.length - 1) }) },
);

const scenario = fc.record({
  iSc: fc.boolean(), rSc: fc.boolean(),
  iIo: fc.constantFrom<SmpIoCapability>(0, 1, 2, 3, 4), rIo: fc.constantFrom<SmpIoCapability>(0, 1, 2, 3, 4),
  iMitm: fc.boolean(), rMitm: fc.boolean(),
  startBy: fc.constantFrom('pair', 'securityRequest'),
  fates: fc.array(fate, { minLength: 1, maxLength: 60 }),
  passkey: fc.oneof(fc.constant('peer' as const), fc.constant('never' as const), fc.integer({ min: -5, max: 1_100_000 })),
  compare: fc.oneof(fc.boolean(), fc.constant('never' as const)),
  encStatus: fc.constantFrom(0, 0, 0, 0x06, 0x3d),
  stray: fc.array(fc.constantFrom('passkey', 'compare', 'cancel', 'enc', 'ltk', 'pair'), { maxLength: 4 }),
});

const typed = (e: unknown) => e instanceof SmpError || e instanceof TimeoutError || e instanceof DisconnectedError;

test('a hostile peer gets typed failures only, no hang, no leaked timer', () => {
  fc.assert(fc.property(scenario, s => {
    const p = new Pair(
      { secureConnections: s.iSc, io: s.iIo, mitm: s.iMitm },
      { secureConnections: s.rSc, io: s.rIo, mitm: s.rMitm },
      { i: { passkey: s.passkey, compare: s.compare }, r: { passkey: 'peer', compare: s.compare } });
    let n = 0;
    let keysTouched = false;
    p.tap = (from: Side, pdu: Uint8Array) => {
      // The attacker's budget: after 400 PDUs it lets the rest through (answers to garbage are 1:1,
      // so an attacker rewriting every answer could keep two honest sides talking for ever).
      if (n >= 400) return pdu;
      const f = s.fates[n++ % s.fates.length]!;
      // Key distribution runs encrypted on a real link: a change there would fail the MIC, so the
      // keys-agree check below only holds when those PDUs went through untouched.
      if (f.k !== 'pass' && pdu[0]! >= 0x06 && pdu[0]! <= 0x0a) keysTouched = true;
      const to = from === 'i' ? p.r : p.i;
      switch (f.k) {
        case 'pass': return pdu;
        case 'drop': return undefined;
        case 'repeat': to.receive(pdu); return pdu;
        case 'flip': { const c = pdu.slice(); const at = f.at % c.length; c[at]! ^= 1 << f.bit; return c; }
        case 'truncate': return pdu.subarray(0, f.len % (pdu.length + 1));
        case 'random': return f.bytes;
        case 'replay': return REPLAY[f.i]!;
      }
    };
    if (s.startBy === 'pair') p.i.pair();
    else p.r.requestSecurity();
    p.run();
    for (const st of s.stray) {
      const side = n % 2 ? p.i : p.r;
      if (st === 'passkey') side.passkeyEntered(123456);
      if (st === 'compare') side.numericComparisonResult(true);
      if (st === 'cancel') side.passkeyCancelled();
      if (st === 'enc') side.encryptionChanged(s.encStatus, 16);
      if (st === 'ltk') side.ltkRequest(0, new Uint8Array(8));
      if (st === 'pair' && side === p.i && (p.i.phase === 'idle')) p.i.pair();
      p.run();
    }
    p.clock.advance(31_000);
    p.run();
    for (const side of ['i', 'r'] as const) {
      for (const a of p.actions[side]) if (a.kind === 'failed') expect(typed(a.error)).toBe(true);
    }
    const a = p.result('i'), b = p.result('r');
    if (a && b && !keysTouched) expect(toHex(a.ltk?.key ?? new Uint8Array())).toBe(toHex(b.ltk?.key ?? new Uint8Array()));
    p.i.linkClosed();
    p.r.linkClosed();
    expect(p.clock.pendingTimers).toBe(0);
  }), { numRuns: 400 });
});

test('random octets into a fresh session of either role never throw and leave no timer after 30 s', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 30 }), fc.boolean(), (frames, responder) => {
    const p = new Pair({}, {});
    p.tap = () => undefined;
    const s = responder ? p.r : p.i;
    for (const f of frames) s.receive(f);
    p.clock.advance(30_000);
    expect(p.clock.pendingTimers).toBe(0);
  }), { numRuns: 300 });
});
