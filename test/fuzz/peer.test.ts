// Whole-stack fuzz, peer side: the central's L2CAP link (reassembly, LE signalling, fixed channels)
// with its GATT client and ATT bearer, against a peer that serves BlueZ's example database through a
// hostile pipe. Every ATT PDU the honest server sends may be dropped, truncated, re-opcoded,
// bit-flipped, replaced by random bytes or a hostile list of the expected response kind, answered by
// an Error Response for the wrong request, duplicated (an unsolicited response), or preceded by a
// notification / indication for any handle; the ACL fragments it travels in have a random size; and
// between operations the peer injects its own traffic: random ATT PDUs (requests to our server,
// notifications for unknown handles, indications without waiting for confirmations, stray
// responses), LE signalling commands (unknown codes, bogus parameter updates, lying lengths), and
// broken ACL (continuations without start, lying L2CAP lengths, unknown CIDs).
// Properties: every operation resolves or rejects with a BlewireError (AttError, ProtocolError,
// TimeoutError, DisconnectedError, …) — never a TypeError or RangeError — nothing reaches the
// process, each signalling answer names an identifier the peer used, no timer is left once the link
// is down, and once the peer turns honest a well-formed read works unless the bearer was closed by
// the spec's rules (transaction timeout).
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { FakeClock } from '../../src/clock.js';
import { DisconnectedError } from '../../src/errors.js';
import { decodeAcl, encodeAcl } from '../../src/hci/acl.js';
import { L2capLink } from '../../src/l2cap/link.js';
import { L2capReassembler } from '../../src/l2cap/reassembly.js';
import { decodeLeSignalling, encodeSignalling } from '../../src/l2cap/signalling.js';
import { encodeL2capFrame } from '../../src/l2cap/frames.js';
import type { ChannelReceiver, FixedChannel } from '../../src/l2cap/channel.js';
import { encodeAtt } from '../../src/att/pdus.js';
import { GattClient } from '../../src/gatt/client.js';
import { GattDatabase, type GattServerLink } from '../../src/gatt/server-db.js';
import { bluezExampleServices } from '../helpers/fake-peripheral.js';
import { advance, drive, driveUntil, Tracker, Tripwire } from './harness.js';
import { fuzzRuns } from '../helpers/fuzz-runs.js';

const HANDLE = 0x0040;
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const attHandle = fc.oneof(fc.constantFrom(0x0003, 0x000a, 0x0017, 0x001f, 0x0023, 0x0000, 0xffff), u16);

/** What the pipe does to one ATT PDU the honest server sends. */
const mutation = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ t: 'pass' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'drop' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('truncate' as const), keep: fc.nat(8) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('opcode' as const), op: u8 }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flip' as const), at: fc.nat(40), mask: fc.integer({ min: 1, max: 0xff }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 30 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hostileList' as const), bytes: fc.uint8Array({ maxLength: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('wrongError' as const), op: fc.oneof(fc.constantFrom(0x02, 0x04, 0x08, 0x0a, 0x10, 0x12), u8), handle: u16, code: u8 }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('error' as const), handle: u16, code: fc.oneof(fc.constantFrom(0x0a, 0x07, 0x0b, 0x12, 0x01), u8) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'dup' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('preNtf' as const), handle: attHandle, value: fc.uint8Array({ maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('preInd' as const), handle: attHandle, value: fc.uint8Array({ maxLength: 8 }) }) },
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

/** Signalling commands: well-formed with random fields, unknown codes, lying lengths. */
const signalling = fc.oneof(
  fc.record({ id: u8, intervalMin: u16, intervalMax: u16, latency: u16, timeout: u16 })
    .map(p => encodeSignalling({ kind: 'connectionParameterUpdateReq', identifier: p.id, intervalMin: p.intervalMin,
      intervalMax: p.intervalMax, latency: p.latency, timeout: p.timeout })),
  fc.record({ id: fc.integer({ min: 1, max: 255 }), intervalMin: fc.integer({ min: 6, max: 40 }), timeout: fc.integer({ min: 100, max: 3200 }) })
    .map(p => encodeSignalling({ kind: 'connectionParameterUpdateReq', identifier: p.id, intervalMin: p.intervalMin,
      intervalMax: p.intervalMin + 8, latency: 0, timeout: p.timeout })),
  fc.tuple(fc.oneof(fc.integer({ min: 0x01, max: 0x1a }), u8), u8, fc.uint8Array({ maxLength: 16 }), fc.oneof(fc.constant(-1), u16))
    .map(([code, id, data, len]) => Uint8Array.of(code, id, ...(len < 0 ? [data.length & 0xff, data.length >> 8] : [len & 0xff, len >> 8]), ...data)),
  fc.uint8Array({ maxLength: 12 }),
);

/** Things the peer sends on its own between operations. */
const interjection = fc.oneof(
  fc.record({ t: fc.constant('att' as const), bytes: fc.oneof(
    fc.tuple(fc.constantFrom(0x1b, 0x1d, 0x23, 0x02, 0x04, 0x08, 0x0a, 0x0c, 0x10, 0x12, 0x52, 0x16, 0x18, 0x20, 0x0e, 0x01, 0x0b, 0x13, 0x1e, 0x3f), fc.uint8Array({ maxLength: 24 }))
      .map(([op, rest]) => Uint8Array.of(op, ...rest)),
    fc.uint8Array({ maxLength: 24 }),
  ) }),
  fc.record({ t: fc.constant('indStorm' as const), handle: attHandle, n: fc.integer({ min: 2, max: 6 }) }),
  fc.record({ t: fc.constant('sig' as const), bytes: signalling }),
  // Service Changed (handle 0x000a) for a random range: a rediscovery runs behind the operations.
  fc.record({ t: fc.constant('serviceChanged' as const), start: u16, end: u16 }),
  fc.record({ t: fc.constant('acl' as const), pb: fc.integer({ min: 0, max: 3 }), cid: fc.oneof(fc.constantFrom(0x0004, 0x0005, 0x0006), u16),
    length: fc.oneof(fc.constant(-1), u16), data: fc.uint8Array({ maxLength: 30 }) }),
);
type Interjection = typeof interjection extends fc.Arbitrary<infer T> ? T : never;

const scenario = fc.record({
  mutations: fc.array(mutation, { maxLength: 40 }),
  interjections: fc.array(fc.array(interjection, { maxLength: 3 }), { minLength: 11, maxLength: 11 }),
  fragment: fc.oneof(fc.constant(251), fc.constant(27), fc.integer({ min: 1, max: 64 })),
  mtu: fc.constantFrom(23, 64, 517),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

const ascii = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('latin1') : '');

async function session(s: Scenario, tripwire: Tripwire): Promise<Tracker> {
  tripwire.reset();
  const clock = new FakeClock();
  const reassembler = new L2capReassembler();
  let peerReceiver: ChannelReceiver | undefined;
  const peerSignallingIds = new Set<number>();
  const answers: Array<{ kind: string; identifier: number }> = [];
  let lastRequestOpcode = 0x0a;
  let hostile = true;
  let m = 0;

  // Central → peer: ACL packets reassembled; ATT to the honest server, signalling answers recorded.
  const link: L2capLink = new L2capLink({
    get aclDataLength() { return 27; },
    sendAcl: (_h, packets) => {
      for (const p of packets) {
        const a = decodeAcl(p);
        const pdu = reassembler.push(a.handle, a.pb, a.data);
        if (!pdu) continue;
        if (pdu.cid === 0x0004) {
          const sdu = Uint8Array.from(pdu.payload);
          if ((sdu[0]! & 0x40) === 0 && sdu[0]! !== 0x1e) lastRequestOpcode = sdu[0]!;
          queueMicrotask(() => peerReceiver?.data(sdu));
        } else if (pdu.cid === 0x0005) {
          const cmd = decodeLeSignalling(pdu.payload);
          answers.push({ kind: cmd.kind, identifier: cmd.identifier });
        }
      }
      return Promise.resolve();
    },
  }, HANDLE, { clock, role: 'central' });

  // Peer → central: L2CAP frames cut into ACL fragments of the scenario's size, each on its own microtask.
  const toCentral = (cid: number, payload: Uint8Array): void => {
    const frame = encodeL2capFrame(cid, payload);
    for (let o = 0; o < frame.length; o += s.fragment) {
      const data = frame.slice(o, o + s.fragment);
      const pb = o === 0 ? 0b10 : 0b01;
      queueMicrotask(() => { link.acl(pb, data); });
    }
  };
  const mutate = (sdu: Uint8Array): Uint8Array[] => {
    const mu: Mutation = hostile ? s.mutations[m++] ?? { t: 'pass' } : { t: 'pass' };
    const err = (op: number, handle: number, code: number) => encodeAtt({ kind: 'errorRsp', requestOpcode: op, handle, errorCode: code });
    switch (mu.t) {
      case 'pass': return [sdu];
      case 'drop': return [];
      case 'truncate': return [sdu.subarray(0, Math.min(mu.keep, sdu.length - 1))];
      case 'opcode': return [Uint8Array.of(mu.op, ...sdu.subarray(1))];
      case 'flip': { const c = Uint8Array.from(sdu); c[mu.at % c.length]! ^= mu.mask; return [c]; }
      case 'random': return [mu.bytes];
      case 'hostileList': return [Uint8Array.of(lastRequestOpcode + 1, ...mu.bytes)];
      case 'wrongError': return [err(mu.op, mu.handle, mu.code)];
      case 'error': return [err(lastRequestOpcode, mu.handle, mu.code)];
      case 'dup': return [sdu, sdu];
      case 'preNtf': return [encodeAtt({ kind: 'handleValueNtf', handle: mu.handle, value: mu.value }), sdu];
      case 'preInd': return [encodeAtt({ kind: 'handleValueInd', handle: mu.handle, value: mu.value }), sdu];
    }
  };
  const peerAtt: FixedChannel = {
    handle: HANDLE,
    cid: 0x0004,
    mtu: 0xffff,
    close: () => { peerReceiver = undefined; },
    setReceiver: r => { peerReceiver = r; },
    send: sdu => {
      for (const out of mutate(Uint8Array.from(sdu))) toCentral(0x0004, out);
      return Promise.resolve();
    },
  };
  const db = new GattDatabase(bluezExampleServices());
  const server: GattServerLink = db.attach(peerAtt, { clock, mtu: s.mtu });

  const interject = (list: Interjection[]): void => {
    for (const i of list) {
      switch (i.t) {
        case 'att': toCentral(0x0004, i.bytes); break;
        case 'serviceChanged':
          toCentral(0x0004, encodeAtt({ kind: 'handleValueInd', handle: 0x000a,
            value: Uint8Array.of(i.start & 0xff, i.start >> 8, i.end & 0xff, i.end >> 8) }));
          break;
        case 'indStorm':
          for (let k = 0; k < i.n; k++) toCentral(0x0004, encodeAtt({ kind: 'handleValueInd', handle: i.handle, value: Uint8Array.of(k) }));
          break;
        case 'sig':
          if (i.bytes.length >= 2) peerSignallingIds.add(i.bytes[1]!);
          toCentral(0x0005, i.bytes);
          break;
        case 'acl': {
          const len = i.length < 0 ? i.data.length : i.length;
          const data = Uint8Array.of(len & 0xff, len >> 8, i.cid & 0xff, i.cid >> 8, ...i.data);
          // Raw fragments can end up in a signalling PDU in any alignment: any of their octets may be an identifier.
          for (const b of i.data) peerSignallingIds.add(b);
          queueMicrotask(() => { link.acl(i.pb, i.pb === 0b01 ? i.data : data); });
          break;
        }
      }
    }
  };

  const gatt = new GattClient(link.att, {
    clock,
    // A transaction timeout leaves the bearer dead; the link must go (Vol 3, Part F, 3.3.3).
    onTimeout: () => link.close(new DisconnectedError('link', 0x08, 'Connection Timeout')),
  });

  const t = new Tracker();
  const ops: Array<[string, () => Promise<unknown>]> = [
    ['exchangeMtu', () => gatt.exchangeMtu({ timeout: 5000 })],
    ['services', () => gatt.services({ timeout: 60_000 })],
    ['read', () => gatt.readValue(0x0003, { timeout: 10_000 })],
    ['write', () => gatt.writeValue(0x0023, Uint8Array.of(1, 2, 3), true)],
    ['subscribe', async () => {
      const ch = await gatt.characteristic('heart_rate', 'heart_rate_measurement', { timeout: 20_000 });
      const sub = await ch.subscribe(() => undefined);
      await server.notify(0x2a37, Uint8Array.of(0, 72)).catch(() => false);
      await sub.unsubscribe();
    }],
    ['readByUuid', () => gatt.readByUuid(0x2a19, { timeout: 10_000 })],
    ['within', () => gatt.within(15_000, async () => [await gatt.readValue(0x0003), await gatt.readValue(0x001f)])],
    ['notifications', () => gatt.within(20_000, async () => {
      const ch = await gatt.characteristic('battery_service', 'battery_level');
      const sub = await ch.subscribe();
      void server.notify(0x2a19, Uint8Array.of(99)).catch(() => false);
      for await (const v of sub) return v; // leaving the loop unsubscribes
      return undefined;
    })],
    ['readMultipleVariable', () => gatt.readMultipleVariable([0x0003, 0x001f])],
    ['longWrite', () => gatt.writeValue(0x0023, new Uint8Array(60).fill(0x5a), true, { timeout: 20_000 })],
    ['writeWithoutResponse', () => gatt.writeValue(0x0023, Uint8Array.of(9), false)],
  ];
  const script = async (): Promise<void> => {
    for (let k = 0; k < ops.length; k++) {
      interject(s.interjections[k]!);
      const [name, run] = ops[k]!;
      await t.track(name, run());
      if (process.env.FUZZ_DEBUG) { const o = t.ops.at(-1)!; console.log(name, o.error ? String(o.error) : 'ok'); }
    }
  };
  await drive(clock, script(), 'operation script');
  await drive(clock, t.track('settled', gatt.settled), 'rediscovery');
  expect(t.untyped, 'rejections that are not BlewireErrors').toEqual([]);

  // The peer turns honest: the bearer must still work unless the spec's rules closed it.
  hostile = false;
  // A request whose caller gave up still holds the bearer's slot until its answer or the 30 s
  // transaction timeout (which closes the bearer by the spec's rules): let that play out first.
  await advance(clock, 30_000);
  if (!gatt.bearer.isClosed && !link.closedError) {
    const value = await drive(clock, gatt.readValue(0x0003), 'read after the storm');
    expect(ascii(value)).toBe('BlueZ 5.66');
  }

  for (const a of answers) {
    expect(a.identifier, `${a.kind} answered with identifier 0`).not.toBe(0);
    expect(peerSignallingIds.has(a.identifier), `${a.kind} for an identifier the peer never used`).toBe(true);
  }

  // The link goes down: nothing may be left waiting on the clock.
  const down = new DisconnectedError('link', 0x13, 'Remote User Terminated Connection');
  link.close(down);
  peerReceiver?.closed(down);
  await driveUntil(clock, () => true, 0);
  expect(clock.pendingTimers, 'timers left after the link went down').toBe(0);
  expect(tripwire.escaped, 'exceptions that reached the process').toEqual([]);
  return t;
}

describe('whole-stack fuzz: a hostile peer', () => {
  const tripwire = new Tripwire();
  beforeEach(() => tripwire.arm());
  afterEach(() => tripwire.disarm());

  test('mutated answers and unsolicited ATT / signalling / ACL during discovery, reads, writes, subscriptions', async () => {
    await fc.assert(fc.asyncProperty(scenario, async s => { await session(s, tripwire); }),
      fuzzRuns(200, 0xa77));
  });

  test('an honest peer through the same pipe: every operation succeeds (the harness itself is sound)', async () => {
    const t = await session({ mutations: [], interjections: Array.from({ length: 11 }, () => []), fragment: 27, mtu: 517 }, tripwire);
    expect(t.ops.map(o => [o.name, o.settled, o.error])).toEqual(t.ops.map(o => [o.name, true, undefined]));
  });
});
