// Whole-stack fuzz, controller side: an Adapter on a scripted fake controller (async memory
// transport, FakeClock) is brought up honestly, gets one link, and then — while a scan, a find, a
// second connect, GATT discovery / read / write and link-layer procedures are pending — the
// "controller" sends hostile packets: random bytes behind valid H4 indicators, events with absurd
// lengths, valid events with random field values (unknown handles, wrong statuses, Number Of
// Completed Packets for handles we never had or beyond what is outstanding, Command Complete /
// Status for commands never sent, Disconnection Complete for unknown handles, malformed
// advertising data), and ACL fragments (continuations without start, overflows, bogus L2CAP
// lengths, wrong CIDs, random ATT / signalling payloads). It also answers LE Create Connection
// Cancel in hostile ways. Properties: nothing escapes to the process, every public promise settles
// (only with BlewireErrors) once virtual time passes its timeouts, and after close() no timer is left.
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { FakeClock } from '../../src/clock.js';
import { DisconnectedError } from '../../src/errors.js';
import { Adapter } from '../../src/api/adapter.js';
import type { HciEvent } from '../../src/hci/events.js';
import { HCI_EVENTS } from '../../src/hci/events.js';
import { LE_META_EVENTS } from '../../src/hci/le-events.js';
import { COMMAND_TABLE } from '../../src/hci/commands.js';
import { encodeAcl, encodeEvent } from '../../src/hci/packets.js';
import { commandMask, FakeController } from '../unit/hci/host-fake-controller.js';
import { decodeAcl } from '../../src/hci/acl.js';
import { L2capReassembler } from '../../src/l2cap/reassembly.js';
import { encodeL2capFrame } from '../../src/l2cap/frames.js';
import type { ChannelReceiver } from '../../src/l2cap/channel.js';
import { GattDatabase } from '../../src/gatt/server-db.js';
import { bluezExampleServices } from '../helpers/fake-peripheral.js';
import { advance, drive, driveUntil, flush, Tracker, Tripwire } from './harness.js';
import { fuzzRuns } from '../helpers/fuzz-runs.js';

const PEER = 'C0:11:22:33:44:55';
const PEER2 = 'C0:11:22:33:44:66';
const LINK = 0x40;

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** Mostly our live link, a handle we never had, and anything at all. */
const handle = fc.oneof(fc.constantFrom(LINK, LINK, 0x41, 0x0eff, 0x0000), u16);
const status = fc.oneof(fc.constant(0), u8);
const address = fc.constantFrom(PEER, PEER2, '00:00:00:00:00:00', 'FF:FF:FF:FF:FF:FF');
const opcodes = COMMAND_TABLE.kinds.map(k => COMMAND_TABLE.codeOf(k));
const opcode = fc.oneof(fc.constantFrom(...opcodes), fc.constant(0), u16);
const eventCodes = Object.values(HCI_EVENTS).map(r => r.code);
const subevents = Object.values(LE_META_EVENTS).map(r => r.code);

/** Advertising data: random bytes (malformed AD), or AD-shaped structures with lying lengths. */
const adData = fc.oneof(
  fc.uint8Array({ maxLength: 31 }),
  fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), u8, fc.uint8Array({ maxLength: 8 })), { maxLength: 4 })
    .map(s => Uint8Array.from(s.flatMap(([len, type, body]) => [len, type, ...body])).subarray(0, 31)),
);

const event: fc.Arbitrary<HciEvent> = fc.oneof(
  fc.record({ kind: fc.constant('commandStatus'), status, numHciCommandPackets: u8, commandOpcode: opcode }),
  fc.record({ kind: fc.constant('numberOfCompletedPackets'),
    handles: fc.array(fc.record({ connectionHandle: handle, numCompletedPackets: fc.oneof(fc.constantFrom(1, 2), u16) }), { maxLength: 4 }) }),
  fc.record({ kind: fc.constant('disconnectionComplete'), status, connectionHandle: handle, reason: u8 }),
  fc.record({ kind: fc.constant('leConnectionComplete'), status, connectionHandle: handle, role: fc.oneof(fc.constantFrom(0, 1), u8),
    peerAddressType: u8, peerAddress: address, connectionInterval: u16, peripheralLatency: u16, supervisionTimeout: u16,
    centralClockAccuracy: u8 }),
  fc.record({ kind: fc.constant('leConnectionUpdateComplete'), status, connectionHandle: handle, connectionInterval: u16,
    peripheralLatency: u16, supervisionTimeout: u16 }),
  fc.record({ kind: fc.constant('lePhyUpdateComplete'), status, connectionHandle: handle, txPhy: u8, rxPhy: u8 }),
  fc.record({ kind: fc.constant('leDataLengthChange'), connectionHandle: handle, maxTxOctets: u16, maxTxTime: u16,
    maxRxOctets: u16, maxRxTime: u16 }),
  fc.record({ kind: fc.constant('leRemoteConnectionParameterRequest'), connectionHandle: handle, intervalMin: u16,
    intervalMax: u16, maxLatency: u16, timeout: u16 }),
  fc.record({ kind: fc.constant('leAdvertisingReport'), reports: fc.array(fc.record({
    eventType: fc.oneof(fc.integer({ min: 0, max: 4 }), u8), addressType: fc.oneof(fc.integer({ min: 0, max: 3 }), u8),
    address, data: adData, rssi: fc.integer({ min: -128, max: 127 }) }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('leExtendedAdvertisingReport'), reports: fc.array(fc.record({
    eventType: u16, addressType: u8, address, primaryPhy: u8, secondaryPhy: u8, advertisingSid: u8,
    txPower: fc.integer({ min: -128, max: 127 }), rssi: fc.integer({ min: -128, max: 127 }), periodicAdvertisingInterval: u16,
    directAddressType: u8, directAddress: address, data: adData }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('encryptionChange'), status, connectionHandle: handle, encryptionEnabled: u8 }),
  fc.record({ kind: fc.constant('dataBufferOverflow'), linkType: u8 }),
  fc.record({ kind: fc.constant('leScanTimeout') }),
  fc.record({ kind: fc.constant('hardwareError'), hardwareCode: u8 }),
) as fc.Arbitrary<HciEvent>;

/** L2CAP payloads: ATT / signalling / SMP-shaped or random, under a right or lying Length. */
const l2capFrame = fc.record({
  cid: fc.oneof(fc.constantFrom(0x0004, 0x0004, 0x0005, 0x0006), u16),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.tuple(fc.constantFrom(0x01, 0x03, 0x05, 0x09, 0x0b, 0x0d, 0x11, 0x13, 0x1b, 0x1d, 0x02, 0x0a), fc.uint8Array({ maxLength: 30 }))
      .map(([op, rest]) => Uint8Array.of(op, ...rest)),
  ),
  lengthDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -4, max: 600 })),
}).map(({ cid, payload, lengthDelta }) => {
  const len = Math.max(0, Math.min(0xffff, payload.length + lengthDelta));
  return Uint8Array.of(len & 0xff, len >> 8, cid & 0xff, cid >> 8, ...payload);
});

const packet: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: event.map(e => encodeEvent(e)) },
  // Command Complete for anything, with random return parameters (most never sent, some in flight).
  { weight: 2, arbitrary: fc.tuple(u8, opcode, fc.uint8Array({ maxLength: 12 }))
    .map(([n, op, ret]) => Uint8Array.of(0x04, 0x0e, 3 + ret.length, n, op & 0xff, op >> 8, ...ret)) },
  // Events with random parameters and a right or absurd length octet.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...eventCodes, 0x3e, 0xff, 0x00), fc.uint8Array({ maxLength: 40 }), fc.boolean(), u8)
    .map(([code, params, honest, len]) => Uint8Array.of(0x04, code, honest ? params.length : len, ...params)) },
  // LE meta events with absurd lengths.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...subevents, 0x00, 0x7f), fc.uint8Array({ maxLength: 40 }), fc.boolean(), u8)
    .map(([sub, params, honest, len]) => Uint8Array.of(0x04, 0x3e, honest ? params.length + 1 : len, sub, ...params)) },
  // ACL fragments: start / continuation / bogus PB, on our link or not.
  { weight: 4, arbitrary: fc.tuple(handle, fc.oneof(fc.constantFrom(0, 1, 2, 2), u8), l2capFrame, fc.nat(3))
    .map(([h, pb, frame, cut]) => encodeAcl({ handle: h & 0x0fff, pb: pb & 3, data: cut === 0 ? frame.subarray(0, frame.length >> 1) : frame })) },
  // Random bytes behind a valid (or invalid) H4 indicator.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x02, 0x04, 0x01, 0x03, 0x05, 0x00, 0xff), fc.uint8Array({ maxLength: 48 }))
    .map(([ind, b]) => Uint8Array.of(ind, ...b)) },
);

const step = fc.record({ packet, advanceMs: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 3000 })) });
const cancelMode = fc.constantFrom('honest', 'completeOnly', 'disallowed', 'silent', 'disallowedThenConnects');
type CancelMode = typeof cancelMode extends fc.Arbitrary<infer T> ? T : never;

function connComplete(handle: number, address = PEER): HciEvent {
  return { kind: 'leConnectionComplete', status: 0, connectionHandle: handle, role: 0, peerAddressType: 1,
    peerAddress: address, connectionInterval: 24, peripheralLatency: 0, supervisionTimeout: 400, centralClockAccuracy: 0 };
}

/**
 * The fake controller with an honest peripheral behind the link: ATT the host sends on handle 0x40 is
 * reassembled and answered from BlueZ's example database, so GATT makes real progress while the
 * controller itself misbehaves.
 */
class ControllerWithPeer extends FakeController {
  private readonly reassembler = new L2capReassembler();
  private peer: ChannelReceiver | undefined;
  serving = false;
  constructor(clock: FakeClock) {
    super();
    new GattDatabase(bluezExampleServices()).attach({
      handle: LINK, cid: 0x0004, mtu: 0xffff,
      close: () => { this.peer = undefined; },
      setReceiver: r => { this.peer = r; },
      send: sdu => {
        if (this.serving) {
          const frame = encodeL2capFrame(0x0004, sdu);
          for (let o = 0; o < frame.length; o += 27) this.injectAcl(LINK, o === 0 ? 0b10 : 0b01, frame.slice(o, o + 27));
        }
        return Promise.resolve();
      },
    }, { clock });
  }
  override send(packet: Uint8Array): void {
    super.send(packet);
    if (!this.serving || packet[0] !== 0x02) return;
    const a = decodeAcl(packet);
    if (a.handle !== LINK) return;
    const pdu = this.reassembler.push(a.handle, a.pb, a.data);
    if (pdu?.cid === 0x0004) {
      const sdu = Uint8Array.from(pdu.payload);
      queueMicrotask(() => this.peer?.data(sdu));
    }
  }
  /** The peer's bearer learns the link is gone (clears its timers). */
  down(): void {
    this.serving = false;
    this.peer?.closed(new DisconnectedError('link', 0x16));
  }
}

async function session(steps: Array<{ packet: Uint8Array; advanceMs: number }>, cancel: CancelMode, tripwire: Tripwire,
  serving = false): Promise<Tracker> {
  tripwire.reset();
  const clock = new FakeClock();
  const ctl = new ControllerWithPeer(clock);
  ctl.serving = serving;
  // An honest controller finishes a Disconnect with Disconnection Complete.
  ctl.on('disconnect', cmd => ({ events: [
    { kind: 'commandStatus', status: 0, numHciCommandPackets: 1, commandOpcode: 0x0406 },
    { kind: 'disconnectionComplete', status: 0, connectionHandle: (cmd as { connectionHandle: number }).connectionHandle, reason: 0x16 },
  ] }));
  const cc = (s: number): HciEvent => ({ kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x200e,
    returnParameters: { kind: 'leCreateConnectionCancel', status: s } } as HciEvent);
  ctl.on('leCreateConnectionCancel', () => {
    switch (cancel) {
      case 'honest': return { events: [cc(0), { ...connComplete(0, PEER2), status: 0x02 } as HciEvent] };
      case 'completeOnly': return { events: [cc(0)] };
      case 'disallowed': return { events: [cc(0x0c)] };
      case 'disallowedThenConnects': return { events: [cc(0x0c), connComplete(0x42, PEER2)] };
      case 'silent': return 'silent';
    }
  });

  // open() loads the transport module (real I/O, not virtual time); the fake controller answers init at once.
  // Bonds in memory: connect() consults the bond list, and the user's bond directory is real I/O that virtual time does not drive.
  const adapter = await Adapter.open({ transport: ctl, clock, bonds: false });
  const first = adapter.connect({ address: PEER, type: 'random' }, { timeout: 5000 });
  await drive(clock, ctl.sent('leCreateConnection'), 'LE Create Connection');
  ctl.inject(connComplete(LINK));
  const conn = await drive(clock, first, 'connect');

  const t = new Tracker();
  const scan = adapter.scan({ timeout: 3000, duplicates: true });
  t.track('scan', (async () => { for await (const ad of scan) void [ad.name, ad.serviceUuids, ad.manufacturerData, ad.serviceData, ad.txPower, ad.flags, ad.appearance]; })());
  t.track('find', adapter.find({ name: 'nobody', timeout: 2000 }));
  t.track('connect', adapter.connect({ address: PEER2, type: 'random' }, { timeout: 4000 }));
  t.track('services', conn.services({ timeout: 20_000 }));
  t.track('read', conn.gatt.readValue(0x0003, { timeout: 8000 }));
  t.track('write', conn.gatt.writeValue(0x0023, Uint8Array.of(1, 2, 3), true));
  t.track('writeWithoutResponse', conn.gatt.writeValue(0x0023, Uint8Array.of(4), false));
  t.track('updateParameters', conn.updateParameters({ intervalMin: 30, intervalMax: 50 }));
  t.track('setPhy', conn.setPhy(2));
  t.track('closed', conn.closed);

  for (const s of steps) {
    ctl.deliver(s.packet);
    if (s.advanceMs > 0) await advance(clock, s.advanceMs);
  }
  const settled = await driveUntil(clock, () => t.pending.length === 0 || t.pending.every(n => n === 'closed'), 600_000);
  expect(settled ? [] : t.pending.filter(n => n !== 'closed'), 'public promises that never settled').toEqual([]);
  expect(t.untyped, 'rejections that are not BlewireErrors').toEqual([]);

  await drive(clock, adapter.close(), 'Adapter.close');
  ctl.down();
  await driveUntil(clock, () => t.pending.length === 0, 0);
  expect(t.pending, 'still pending after close').toEqual([]);
  expect(clock.pendingTimers, 'timers left after close').toBe(0);
  await flush();
  expect(ctl.harnessErrors, 'answers the fake controller could not build (a bug of the test)').toEqual([]);
  expect(tripwire.escaped, 'exceptions that reached the process').toEqual([]);
  return t;
}

describe('whole-stack fuzz: a hostile controller', () => {
  const tripwire = new Tripwire();
  beforeEach(() => tripwire.arm());
  afterEach(() => tripwire.disarm());

  test('random and mutated packets while scanning, connecting and during GATT: no escape, no hang, no leak', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), cancelMode,
      async (steps, cancel) => { await session(steps, cancel, tripwire); }), fuzzRuns(150, 0xb1e5));
  });

  test('the same with an honest peripheral answering GATT behind the misbehaving controller', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), cancelMode,
      async (steps, cancel) => { await session(steps, cancel, tripwire, true); }),
    fuzzRuns(150, 0x9a77));
  });

  test('with no hostile packet the peripheral is reached: discovery, read and writes succeed (the harness is sound)', async () => {
    const t = await session([], 'honest', tripwire, true);
    const outcome = Object.fromEntries(t.ops.map(o => [o.name, o.error === undefined ? 'ok' : (o.error as Error).name]));
    expect(outcome).toMatchObject({ services: 'ok', read: 'ok', write: 'ok', writeWithoutResponse: 'ok', scan: 'ok', find: 'ok',
      connect: 'TimeoutError' });
  });

  test.each(['honest', 'completeOnly', 'disallowed', 'silent', 'disallowedThenConnects'] as const)(
    'connect timeout with LE Create Connection Cancel answered %s: connect() settles, no timer left', async cancel => {
      await session([], cancel, tripwire);
    });
});

// ---- init: every command of the bring-up answered honestly, with an error, with random return
// parameters, with Command Status, or not at all ------------------------------------------------------

const INIT_COMMANDS = ['reset', 'setEventMask', 'readLocalVersionInformation', 'readLocalSupportedCommands',
  'readLocalSupportedFeatures', 'readBdAddr', 'leReadLocalSupportedFeatures', 'leReadBufferSizeV2', 'leReadBufferSize',
  'readBufferSize', 'leReadFilterAcceptListSize', 'leSetEventMask', 'leSetRandomAddress'] as const;

const initAnswer = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ t: 'honest' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('status' as const), status: fc.integer({ min: 1, max: 0xff }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('commandStatus' as const), status: u8 }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('random' as const), ret: fc.uint8Array({ maxLength: 16 }), n: u8 }) },
  { weight: 1, arbitrary: fc.constant({ t: 'silent' as const }) },
);

describe('whole-stack fuzz: a hostile controller during bring-up', () => {
  // Adapter.open() imports the transport layer; load it once up front so virtual time alone drives open().
  beforeAll(async () => { await import('../../src/transport/index.js'); });
  const tripwire = new Tripwire();
  beforeEach(() => tripwire.arm());
  afterEach(() => tripwire.disarm());

  /** One bring-up per case; the property is shared by the random run and the pinned regression seeds. */
  const bringUp = () => fc.asyncProperty(fc.dictionary(fc.constantFrom(...INIT_COMMANDS), initAnswer), fc.boolean(),
    async (answers, randomAddress) => {
      tripwire.reset();
      const ctl = new FakeController();
      const clock = new FakeClock();
      for (const [kind, a] of Object.entries(answers)) {
        ctl.on(kind as (typeof INIT_COMMANDS)[number], cmd => {
          const op = COMMAND_TABLE.codeOf(kind as (typeof INIT_COMMANDS)[number]);
          switch (a.t) {
            case 'honest': return undefined;
            case 'status': return { status: a.status };
            case 'commandStatus': return { events: [{ kind: 'commandStatus', status: a.status, numHciCommandPackets: 1, commandOpcode: op }] };
            case 'silent': return 'silent';
            case 'random':
              ctl.deliver(Uint8Array.of(0x04, 0x0e, 3 + a.ret.length, a.n, op & 0xff, op >> 8, ...a.ret));
              return 'silent';
          }
        });
      }
      const t = new Tracker();
      let adapter: Adapter | undefined;
      const open = t.track('open', Adapter.open({ transport: ctl, clock, bonds: false, ...(randomAddress ? { randomAddress: 'C1:02:03:04:05:06' } : {}) })
        .then(a => { adapter = a; }));
      expect(await driveUntil(clock, () => t.pending.length === 0), 'Adapter.open never settled').toBe(true);
      await open;
      expect(t.untyped).toEqual([]);
      if (adapter) {
        t.track('scan', adapter.scan({ timeout: 1000 }).done);
        t.track('connect', adapter.connect({ address: PEER, type: 'random' }, { timeout: 2000 }));
        expect(await driveUntil(clock, () => t.pending.length === 0), `never settled: ${t.pending.join()}`).toBe(true);
        expect(t.untyped).toEqual([]);
        await drive(clock, adapter.close(), 'Adapter.close');
      }
      expect(clock.pendingTimers, 'timers left').toBe(0);
      await flush();
      expect(ctl.harnessErrors, 'answers the fake controller could not build (a bug of the test)').toEqual([]);
      expect(tripwire.escaped).toEqual([]);
    });

  test('Adapter.open resolves or rejects typed, leaves no timer when it fails, and a usable adapter closes clean', async () => {
    await fc.assert(bringUp(), fuzzRuns(150, 0x1417));
  });

  // Regression (issue 15): with this seed case 2667 answers LE Read Local Supported Features with random
  // bytes that list Data Length Extension; the host then sends the optional LE Read Maximum Data Length,
  // which the fake could not answer (EncodeError thrown into the transport, caught by the tripwire), and
  // the tripwire, never reset, failed every later case, so fast-check shrank to an all-honest bring-up.
  // Pinned, not from FUZZ_SEED: it must keep passing whatever the environment asks for.
  test('regression: seed 1749203 (harness faults, not the product) passes its first 2700 cases', async () => {
    await fc.assert(bringUp(), { seed: 1749203, numRuns: 2700 });
  }, 180_000); // ~6 s on a busy machine; the tier's 30 s default is too tight when it is very busy

  test('a controller listing every optional bring-up read gets each answered, and the adapter reports them', async () => {
    tripwire.reset();
    const ctl = new FakeController();
    ctl.leFeatures = (1n << 5n) | (1n << 6n) | (1n << 12n); // Data Length Extension, LL Privacy, Extended Advertising (Vol 6, Part B, 4.6)
    ctl.supportedCommands = commandMask([[34, 6]]); // LE Read Resolving List Size (Vol 4, Part E, 6.27)
    const clock = new FakeClock();
    const adapter = await drive(clock, Adapter.open({ transport: ctl, clock, bonds: false }), 'Adapter.open');
    expect(ctl.kinds()).toEqual(expect.arrayContaining(['leReadResolvingListSize', 'leReadMaximumDataLength',
      'leReadNumberOfSupportedAdvertisingSets', 'leReadMaximumAdvertisingDataLength']));
    expect(adapter.controller).toMatchObject({ resolvingListSize: 8, numAdvertisingSets: 4, maxAdvertisingDataLength: 1650,
      maxDataLength: { maxTxOctets: 251, maxTxTime: 17040, maxRxOctets: 251, maxRxTime: 17040 } });
    await drive(clock, adapter.close(), 'Adapter.close');
    await flush();
    expect(ctl.harnessErrors).toEqual([]);
    expect(tripwire.escaped).toEqual([]);
  });

  test('the tripwire forgets earlier cases once reset, so one escape does not fail the cases after it', async () => {
    const before = tripwire.escaped.length;
    queueMicrotask(() => { throw new Error('planted escape'); });
    await flush();
    expect(tripwire.escaped.length).toBe(before + 1);
    tripwire.reset();
    expect(tripwire.escaped).toEqual([]);
  });
});
