// Whole-stack fuzz, a hostile SMP peer (issue 9 Proof): blewire's Adapter, link, L2CAP and pairing
// (src/link/pairing.ts over src/smp/session.ts) pair with a simulated peripheral whose SMP PDUs reach
// us through a hostile pipe at the H4 boundary. Every SMP PDU the peer sends (CID 0x0006) may pass, be
// dropped, be sent twice, have an octet flipped, be replaced by random octets (a random opcode and
// length), or be preceded by a random SMP PDU, be cut into ACL fragments (all of them delivered, or
// only the first), or follow a continuation fragment that has no start; one of ours may be dropped, so the peer waits (and our
// 30 s SMP timeout, Vol 3, Part H, 3.4, is what ends the pairing). Properties: pair() settles, with a
// SecurityState or a typed BlewireError (SmpError, TimeoutError, DisconnectedError, …), never a
// TypeError; the link ends cleanly; and once it is down no timer the host started for it is left.
// The SmpSession alone gets a finer fuzz in test/unit/smp/fuzz.test.ts.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Clock, TimerId } from '../../src/clock.js';
import { BlewireError } from '../../src/errors.js';
import { createSimulator, HEART_RATE_SENSOR, type SimPairing } from '../../src/sim/index.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import type { HciTransport } from '../../src/transport/types.js';
import { fuzzRuns } from '../helpers/fuzz-runs.js';

type Mutation =
  | { t: 'pass' } | { t: 'drop' } | { t: 'twice' }
  | { t: 'flip'; at: number; x: number }
  | { t: 'random'; bytes: number[] }
  | { t: 'inject'; bytes: number[] }
  | { t: 'split'; at: number[] }
  | { t: 'truncate'; at: number }
  | { t: 'orphan'; bytes: number[] };

const smpBytes = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 70 })
  .chain(b => fc.integer({ min: 0x01, max: 0x0f }).map(op => [op, ...b.slice(1)]));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ t: 'pass' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'twice' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flip' as const), at: fc.nat(80), x: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('random' as const), bytes: smpBytes }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('inject' as const), bytes: smpBytes }) },
  // ACL fragmentation (Vol 4, Part E, 5.4.2; Vol 3, Part A, 7.2): the PDU cut into a start fragment and
  // continuations at any octet, including inside the L2CAP header; a start whose continuations never
  // come (the next PDU's start must discard it); a continuation with no start before it.
  { weight: 2, arbitrary: fc.record({ t: fc.constant('split' as const), at: fc.array(fc.nat(80), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('truncate' as const), at: fc.nat(80) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('orphan' as const), bytes: smpBytes }) },
);

/** A clock that keeps the timers set on it since `watch()` that have not fired or been cleared. */
function countingClock(inner: Clock): Clock & { live: Set<TimerId>; watch(): void } {
  const live = new Set<TimerId>();
  let watching = false;
  return {
    live,
    watch: () => { watching = true; },
    now: () => inner.now(),
    setTimeout: (fn, ms) => {
      const id: TimerId = inner.setTimeout(() => { live.delete(id); fn(); }, ms);
      if (watching) live.add(id);
      return id;
    },
    clearTimeout: id => { live.delete(id); inner.clearTimeout(id); },
  };
}

/** An ACL packet (H4) carrying one whole L2CAP PDU on the SMP channel: its payload, else undefined. */
function smpPayload(p: Uint8Array): Uint8Array | undefined {
  if (p[0] !== 0x02 || p.length < 9 || (p[2]! & 0x30) === 0x10) return undefined;
  const aclLen = p[3]! | (p[4]! << 8), l2Len = p[5]! | (p[6]! << 8), cid = p[7]! | (p[8]! << 8);
  if (cid !== 0x0006 || aclLen !== l2Len + 4 || p.length !== 5 + aclLen) return undefined;
  return p.subarray(9);
}

/** The same ACL header (handle and flags of `like`) around a new SMP payload. */
function smpPacket(like: Uint8Array, payload: Uint8Array | number[]): Uint8Array {
  const n = payload.length;
  return Uint8Array.from([0x02, like[1]!, like[2]!, (n + 4) & 0xff, (n + 4) >> 8, n & 0xff, n >> 8, 0x06, 0x00, ...payload]);
}

/** `p`'s ACL payload in fragments cut at `cuts` (offsets into it): a start packet, then continuations. */
function fragments(p: Uint8Array, cuts: number[]): Uint8Array[] {
  const acl = p.subarray(5);
  const at = [...new Set(cuts.map(c => 1 + (c % Math.max(1, acl.length - 1))))].filter(c => c < acl.length).sort((a, b) => a - b);
  const bounds = [0, ...at, acl.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const part = acl.subarray(bounds[i]!, bounds[i + 1]!);
    const flags = i === 0 ? p[2]! : (p[2]! & 0xcf) | 0x10; // Packet_Boundary_Flag 0b01: continuing fragment
    out.push(Uint8Array.from([0x02, p[1]!, flags, part.length & 0xff, part.length >> 8, ...part]));
  }
  return out;
}

/**
 * The pairing methods the hostile peer is asked to run (Vol 3, Part H, 2.3.5.1, Tables 2.7/2.8): its IO
 * capabilities and SC bit against ours. The peer's user types what we display; ours types what it shows.
 */
const METHODS = [
  { name: 'SC Just Works', sc: true, ours: 'noInputNoOutput', peer: 'noInputNoOutput' },
  { name: 'SC Numeric Comparison', sc: true, ours: 'displayYesNo', peer: 'displayYesNo' },
  { name: 'SC Passkey, peer displays', sc: true, ours: 'keyboardOnly', peer: 'displayOnly' },
  { name: 'SC Passkey, we display', sc: true, ours: 'displayOnly', peer: 'keyboardOnly' },
  { name: 'legacy Just Works', sc: false, ours: 'noInputNoOutput', peer: 'noInputNoOutput' },
  { name: 'legacy Passkey, peer displays', sc: false, ours: 'keyboardDisplay', peer: 'displayOnly' },
  { name: 'legacy Passkey, we display', sc: false, ours: 'displayOnly', peer: 'keyboardOnly' },
] as const;
type Method = typeof METHODS[number];

async function pairThroughHostilePipe(plan: Mutation[], dropOurs: number | undefined, method: Method = METHODS[0]): Promise<{ outcome: unknown; leftover: number }> {
  const peerPairing: SimPairing = { io: method.peer, secureConnections: method.sc };
  const sim = createSimulator({ name: 'smp-fuzz', peripherals: [{ ...HEART_RATE_SENSOR, notifications: [], pairing: peerPairing }] });
  const peer = sim.peripheral(HEART_RATE_SENSOR.address);
  const inner = sim.transport;
  let theirs = 0, ours = 0;
  const transport: HciTransport = {
    clock: inner.clock!, description: 'hostile SMP pipe',
    send: p => {
      if (smpPayload(p) && ours++ === dropOurs) return;
      inner.send(p);
    },
    setReceiver: r => inner.setReceiver({
      packet: p => {
        const payload = smpPayload(p);
        if (!payload) return r.packet(p);
        const m = plan[theirs++ % plan.length]!;
        switch (m.t) {
          case 'pass': return r.packet(p);
          case 'drop': return;
          case 'twice': r.packet(p); return r.packet(Uint8Array.from(p));
          case 'flip': {
            const q = Uint8Array.from(p);
            q[9 + (m.at % payload.length)]! ^= m.x;
            return r.packet(q);
          }
          case 'random': return r.packet(smpPacket(p, m.bytes));
          case 'inject': r.packet(smpPacket(p, m.bytes)); return r.packet(p);
          case 'split': for (const f of fragments(p, m.at)) r.packet(f); return;
          case 'truncate': return r.packet(fragments(p, [m.at])[0]!);
          case 'orphan': {
            const [, tail] = fragments(smpPacket(p, m.bytes), [4]);
            if (tail) r.packet(tail);
            return r.packet(p);
          }
        }
      },
      closed: e => r.closed(e),
    }),
    close: () => inner.close(),
  };
  const clock = countingClock(sim.clock);
  const adapter = await Adapter.open({ transport, clock, bonds: new MemoryBondStore() });
  try {
    const ad = await adapter.find({ services: ['heart_rate'], timeout: 5000 });
    clock.watch(); // from the connection on: the link's and the pairing's timers
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    const outcome = await conn.pair({
      io: method.ours,
      onPasskeyDisplay: n => { peerPairing.passkey = n; },
      onPasskeyRequest: () => peer.pairingStats.displayed ?? 0,
      onNumericComparison: () => true,
    }).then(st => st, (e: unknown) => e);
    if (conn.connected) await conn.disconnect().catch(() => undefined);
    await sim.clock.delay(100);
    return { outcome, leftover: clock.live.size };
  } finally {
    await adapter.close();
  }
}

describe('whole-stack fuzz: a hostile SMP peer', () => {
  test('mutated, dropped, repeated, random and injected SMP PDUs (and one of ours lost), every pairing method: pair() settles typed, no timer left', async () => {
    let paired = 0, failed = 0;
    const methodsRun = new Set<string>();
    await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 12 }), fc.option(fc.nat(6), { nil: undefined }),
      fc.constantFrom(...METHODS),
      async (plan, dropOurs, method) => {
        methodsRun.add(method.name);
        const { outcome, leftover } = await pairThroughHostilePipe(plan, dropOurs, method);
        if (outcome instanceof Error) {
          expect(outcome, `${method.name}: ${String(outcome.stack)}`).toBeInstanceOf(BlewireError);
          failed++;
        } else {
          expect(outcome, method.name).toMatchObject({ encrypted: true, secureConnections: method.sc });
          paired++;
        }
        expect(leftover, method.name).toBe(0);
      }), fuzzRuns(70, 0x5a17));
    // Both outcomes occur: the pipe is hostile enough to fail pairings and honest enough to let some through.
    expect(paired).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    if (fuzzRuns(70).numRuns >= 70) expect([...methodsRun].sort()).toEqual(METHODS.map(m => m.name).sort());
  }, 240_000);

  test.each(METHODS.map(m => [m.name, m] as const))('%s through an honest pipe (no mutation): paired', async (_, method) => {
    const { outcome, leftover } = await pairThroughHostilePipe([{ t: 'pass' }], undefined, method);
    expect(outcome).toMatchObject({ encrypted: true, secureConnections: method.sc, authenticated: method.ours !== 'noInputNoOutput' });
    expect(leftover).toBe(0);
  });

  test('every SMP PDU of the peer cut into ACL fragments (inside the L2CAP header too): the pairing completes; a lone start fragment of each fails it by our timeout', async () => {
    const whole = await pairThroughHostilePipe([{ t: 'split', at: [2, 3, 9, 40] }, { t: 'split', at: [0] }, { t: 'split', at: [5, 6, 7, 8] }], undefined);
    expect(whole.outcome).toMatchObject({ encrypted: true });
    expect(whole.leftover).toBe(0);
    const cut = await pairThroughHostilePipe([{ t: 'truncate', at: 10 }], undefined);
    expect(cut.outcome).toBeInstanceOf(BlewireError);
    expect((cut.outcome as BlewireError).code).toBe('ETIMEDOUT'); // the SMP timeout, Vol 3, Part H, 3.4
    expect(cut.leftover).toBe(0);
  }, 120_000);
});
