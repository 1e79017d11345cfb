// The controller's resolving list on the simulated controller (Core Vol 6, Part B, 4.7; Vol 4, Part E,
// 7.8.38-7.8.45): bonding gives the controller the peer's IRK (and ours), with address resolution off
// and the radio quiet around the change; the controller then reports the peer by its identity
// (address type 0x03) so the host computes no ah; connect by identity names the identity in LE Create
// Connection (Peer_Address_Type 0x03) with Own_Address_Type 0x03, and LE Enhanced Connection Complete
// carries the identity, the peer's RPA and ours. A full list leaves the rest to the host's resolver, and
// so does a controller that refuses the list. Every command is checked as the bytes the host sent, and
// its answer as the bytes the controller sent back.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { HciStatusError } from '../../src/errors.js';
import { isResolvablePrivateAddress, rpaMatchesIrk } from '../../src/gap/privacy.js';
import type { Advertisement } from '../../src/gap/scanner.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';
import type { SimPeripheral } from '../../src/sim/types.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { fromHex, toHex } from '../../src/bytes/hex.js';
import type { HciTransport } from '../../src/transport/types.js';

const IDENTITY = HEART_RATE_SENSOR.address; // D4:1E:35:7A:00:01, static random
const IRK_MSO = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const IRK = Uint8Array.from(fromHex(IRK_MSO)).reverse(); // SMP (and HCI) order
const OTHER = 'D4:1E:35:7A:00:02';
const OTHER_IRK_MSO = '00112233445566778899aabbccddeeff';
const OTHER_IRK = Uint8Array.from(fromHex(OTHER_IRK_MSO)).reverse();
const ROTATE_MS = 60_000;
/** Our own entry (gap/resolving-list.ts, LOCAL_ENTRY): public 00:00:00:00:00:00, a zero peer IRK, our IRK. */
const OWN = '0/00:00:00:00:00:00';
const ownEntry = (ourIrkHex: string): string => `01272027${'00'.repeat(7)}${'00'.repeat(16)}${ourIrkHex}`;

const OP = {
  setScanEnable: 0x200c, extScanEnable: 0x2042, createConnection: 0x200d, extCreateConnection: 0x2043,
  add: 0x2027, clear: 0x2029, enable: 0x202d, timeout: 0x202e, mode: 0x204e,
} as const;

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

function peripheral(address: string, irkHex: string, name: string): SimPeripheral {
  return { ...HEART_RATE_SENSOR, name, address, advertising: { ...HEART_RATE_SENSOR.advertising!, data: { ...HEART_RATE_SENSOR.advertising!.data, name } },
    notifications: [], privacy: { irk: { hex: irkHex }, rotateMs: ROTATE_MS }, pairing: {} };
}

function world(resolvingListSize?: number, both = false): Simulator {
  return createSimulator({ name: 'resolving-list', ...(resolvingListSize !== undefined ? { controller: { resolvingListSize } } : {}),
    peripherals: [peripheral(IDENTITY, IRK_MSO, 'Pulse HR'), ...(both ? [peripheral(OTHER, OTHER_IRK_MSO, 'Pulse HR 2')] : [])] });
}

/** What crossed the H4 boundary, both ways (whole packets). */
interface Wire { sent: Uint8Array[]; received: Uint8Array[] }

function tee(sim: Simulator, wire: Wire): HciTransport {
  const t = sim.transport;
  return {
    clock: t.clock, description: t.description,
    send: p => { wire.sent.push(Uint8Array.from(p)); t.send(p); },
    setReceiver: r => t.setReceiver({
      packet: p => { wire.received.push(Uint8Array.from(p)); r.packet(p); },
      closed: e => r.closed(e),
    }),
    close: () => t.close(),
  };
}

async function adapterOn(sim: Simulator, wire: Wire, bonds: MemoryBondStore, privacy = true): Promise<Adapter> {
  const a = await Adapter.open({ transport: tee(sim, wire), clock: sim.clock, bonds, ...(privacy ? { privacy: { rotateSeconds: 600 } } : {}) });
  open.push(a);
  return a;
}

const opcodeOf = (p: Uint8Array): number => p[1]! | (p[2]! << 8);
/** Commands of these opcodes the host sent, as hex (H4 indicator, opcode, length, parameters). */
const commands = (wire: Wire, ...ops: number[]): string[] =>
  wire.sent.filter(p => p[0] === 0x01 && ops.includes(opcodeOf(p))).map(p => toHex(p));
/** Status of each Command Complete for `op` the controller sent. */
const completes = (wire: Wire, op: number): number[] =>
  wire.received.filter(p => p[0] === 0x04 && p[1] === 0x0e && (p[4]! | (p[5]! << 8)) === op).map(p => p[6]!);
/** "AA:BB:…" as HCI carries it (least significant octet first), hex. */
const addr = (a: string): string => a.split(':').reverse().join('').toLowerCase();
const fromAddr = (b: Uint8Array): string => [...b].reverse().map(x => x.toString(16).padStart(2, '0').toUpperCase()).join(':');

/** Address type and address of every advertising report the controller sent (legacy 0x02, extended 0x0D). */
function reportAddresses(wire: Wire): Array<{ type: number; address: string }> {
  const out: Array<{ type: number; address: string }> = [];
  for (const p of wire.received) {
    if (p[0] !== 0x04 || p[1] !== 0x3e || p[4] !== 1) continue;
    if (p[3] === 0x02) out.push({ type: p[6]!, address: fromAddr(p.subarray(7, 13)) });
    if (p[3] === 0x0d) out.push({ type: p[7]!, address: fromAddr(p.subarray(8, 14)) });
  }
  return out;
}

async function until(sim: Simulator, what: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !what(); i++) await sim.clock.delay(10);
  expect(what()).toBe(true);
}

async function firstReport(adapter: Adapter, name = 'Pulse HR'): Promise<Advertisement> {
  const ad = await adapter.find({ name, timeout: 5000 });
  expect(ad).toBeDefined();
  return ad!;
}

/**
 * Pair and bond with the first advertiser named `name`; the link is closed again once our last key
 * PDUs (sent as pair() resolves) have had a few connection events to reach the peer.
 */
async function bond(adapter: Adapter, name = 'Pulse HR', sim?: Simulator): Promise<void> {
  const conn = await adapter.connect(await firstReport(adapter, name), { timeout: 5000 });
  expect(await conn.pair()).toMatchObject({ bonded: true });
  if (sim) await sim.clock.delay(500);
  await conn.disconnect();
}

describe('the controller\'s resolving list', () => {
  test('bonding gives the controller the peer\'s IRK and ours: resolution off, list cleared, entry added, RPA timeout, resolution on, with scanning stopped around it', async () => {
    const sim = world();
    const wire: Wire = { sent: [], received: [] };
    const bonds = new MemoryBondStore();
    const adapter = await adapterOn(sim, wire, bonds);
    const ourIrk = toHex(adapter.privacy!.irk);
    // No bond yet: the list holds our own entry only (the controller makes our advertising RPA from it).
    expect(commands(wire, OP.add, OP.clear, OP.enable, OP.timeout, OP.mode)).toEqual([
      '012d200100', '01292000', ownEntry(ourIrk), '012e20025802', '012d200101']);
    expect(sim.controller.resolvingIdentities).toEqual([OWN]);
    // A scan runs while the bond is made: the change must stop it first (7.8.38 / 7.8.44).
    const session = adapter.scan({ duplicates: true });
    await sim.clock.delay(200);
    const from = wire.sent.length;
    await bond(adapter);
    await until(sim, () => adapter.resolvingList.active);
    const after: Wire = { sent: wire.sent.slice(from), received: wire.received };
    expect(commands(after, OP.add, OP.clear, OP.enable, OP.timeout, OP.mode)).toEqual([
      '012d200100', // LE Set Address Resolution Enable: off
      '01292000', // LE Clear Resolving List
      ownEntry(ourIrk), // LE Add Device To Resolving List: our entry (no privacy mode: it is no peer)
      `0127202701${addr(IDENTITY)}${toHex(IRK)}${ourIrk}`, // LE Add Device To Resolving List: random identity, peer IRK, our IRK
      `014e200801${addr(IDENTITY)}01`, // LE Set Privacy Mode: that identity, device privacy mode
      '012e20025802', // LE Set Resolvable Private Address Timeout: 600 s
      '012d200101', // on
    ]);
    for (const op of [OP.add, OP.clear, OP.enable, OP.timeout, OP.mode]) expect(completes(wire, op).every(s => s === 0)).toBe(true);
    // Scan Enable off came before the first list command and on again after the last.
    const kinds = after.sent.filter(p => p[0] === 0x01).map(p => ({ op: opcodeOf(p), first: p[4] }));
    const firstList = kinds.findIndex(k => k.op === OP.enable);
    const lastList = kinds.length - 1 - [...kinds].reverse().findIndex(k => k.op === OP.enable);
    const scanBefore = kinds.slice(0, firstList).reverse().find(k => k.op === OP.extScanEnable || k.op === OP.setScanEnable);
    const scanAfter = kinds.slice(lastList).find(k => k.op === OP.extScanEnable || k.op === OP.setScanEnable);
    expect(scanBefore?.first).toBe(0);
    expect(scanAfter?.first).toBe(1);
    expect(sim.controller.resolvingIdentities).toEqual([OWN, `1/${IDENTITY}`]);
    session.stop();
  });

  test('a new run on the same store writes the list at open, before anything scans', async () => {
    const bonds = new MemoryBondStore();
    const first = await adapterOn(world(), { sent: [], received: [] }, bonds);
    await bond(first);
    const ourIrk = first.privacy!.irk;
    await first.close();

    const sim = world();
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, bonds);
    expect(toHex(adapter.privacy!.irk)).toBe(toHex(ourIrk)); // our IRK is kept in the store
    expect(adapter.resolvingList.active).toBe(true);
    expect(commands(wire, OP.add)).toEqual([ownEntry(toHex(ourIrk)), `0127202701${addr(IDENTITY)}${toHex(IRK)}${toHex(ourIrk)}`]);
    const ad = await firstReport(adapter);
    expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    const kinds = wire.sent.filter(p => p[0] === 0x01).map(opcodeOf);
    expect(kinds.lastIndexOf(OP.enable)).toBeLessThan(kinds.findIndex(k => k === OP.extScanEnable || k === OP.setScanEnable));
    expect(reportAddresses(wire).every(r => r.type === 0x03 && r.address === IDENTITY)).toBe(true);
    expect(adapter.resolver.stats.ahComputed).toBe(0);
  });

  test('with the list on: reports name the identity (0x03 from the controller, no ah on the host); connect by identity sends 0x03 + identity with Own_Address_Type 0x03; Enhanced Connection Complete carries identity, peer RPA and our RPA; the bond re-encrypts', async () => {
    const sim = world();
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore());
    await bond(adapter, 'Pulse HR', sim);
    await until(sim, () => adapter.resolvingList.active);
    const ourIrk = adapter.privacy!.irk;
    await sim.clock.delay(ROTATE_MS); // the peer has a new RPA
    const ah = adapter.resolver.stats.ahComputed;
    wire.received.length = 0;
    wire.sent.length = 0;
    const ad = await firstReport(adapter);
    expect(ad.address).toBe(IDENTITY);
    expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(ad.bonded).toBe(true);
    const raw = reportAddresses(wire);
    expect(raw.length).toBeGreaterThan(0);
    expect(raw.every(r => r.type === 0x03 && r.address === IDENTITY)).toBe(true);
    expect(adapter.resolver.stats.ahComputed).toBe(ah);

    const conn = await adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
    // LE Extended Create Connection: filter policy 0, Own_Address_Type 0x03, Peer_Address_Type 0x03, the identity.
    const create = commands(wire, OP.extCreateConnection, OP.createConnection);
    expect(create).toHaveLength(1);
    expect(create[0]!.slice(0, 26)).toBe(`014320${create[0]!.slice(6, 8)}000303${addr(IDENTITY)}`);
    // LE Enhanced Connection Complete (v1 0x0A or v2 0x29): Peer_Address_Type 0x03, identity, local RPA, peer RPA.
    const cc = wire.received.find(p => p[0] === 0x04 && p[1] === 0x3e && (p[3] === 0x0a || p[3] === 0x29));
    expect(cc).toBeDefined();
    expect(cc![4]).toBe(0); // status
    expect(cc![8]).toBe(0x03);
    expect(fromAddr(cc!.subarray(9, 15))).toBe(IDENTITY);
    const localRpa = fromAddr(cc!.subarray(15, 21)), peerRpa = fromAddr(cc!.subarray(21, 27));
    expect(rpaMatchesIrk(IRK, peerRpa)).toBe(true);
    expect(rpaMatchesIrk(ourIrk, localRpa)).toBe(true);
    expect(conn.address).toBe(peerRpa);
    expect(isResolvablePrivateAddress(conn.address)).toBe(true);
    expect(conn.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    // The peer pairs and encrypts against the address it saw: our controller's RPA.
    expect(sim.linkTo(IDENTITY)).toBeDefined();
    const enc = await conn.encrypt();
    expect(enc).toMatchObject({ encrypted: true, bonded: true });
    expect(sim.peripheral(IDENTITY).pairingStats.pairings).toBe(1);
  });

  test('a full list: the controller resolves the bonds that fit, the host the rest', async () => {
    const sim = world(2, true); // our entry and one peer's
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore());
    await bond(adapter, 'Pulse HR');
    await bond(adapter, 'Pulse HR 2');
    await until(sim, () => adapter.resolvingList.active && adapter.resolvingList.overflow === 1);
    expect(sim.controller.resolvingIdentities).toEqual([OWN, `1/${IDENTITY}`]);
    await sim.clock.delay(ROTATE_MS);
    const from = wire.received.length;
    const one = await firstReport(adapter, 'Pulse HR');
    const two = await firstReport(adapter, 'Pulse HR 2');
    expect(one.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(two.identity).toEqual({ address: OTHER, addressType: 'random' });
    expect(one.address).toBe(IDENTITY);
    expect(rpaMatchesIrk(OTHER_IRK, two.address)).toBe(true);
    const raw = reportAddresses({ sent: [], received: wire.received.slice(from) });
    expect(raw.some(r => r.type === 0x03 && r.address === IDENTITY)).toBe(true);
    expect(raw.some(r => r.type === 0x01 && rpaMatchesIrk(OTHER_IRK, r.address))).toBe(true);
    expect(raw.some(r => r.address === OTHER)).toBe(false);
    expect(adapter.resolver.stats.ahComputed).toBeGreaterThan(0);
    // The one the host resolves is still reached by identity (at its RPA, Peer_Address_Type 0x01).
    const conn = await adapter.connect({ address: OTHER, type: 'random' }, { timeout: 5000 });
    expect(conn.identity).toEqual({ address: OTHER, addressType: 'random' });
    expect(rpaMatchesIrk(OTHER_IRK, conn.address)).toBe(true);
  });

  test('a controller that refuses the list: the host resolves everything and our Own_Address_Type stays 0x01', async () => {
    const sim = world();
    sim.failCommand('leAddDeviceToResolvingList', 0x07);
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore());
    await bond(adapter);
    await until(sim, () => completes(wire, OP.add).length === 1);
    await sim.clock.delay(100);
    expect(completes(wire, OP.add)).toEqual([0x07]);
    expect(adapter.resolvingList.active).toBe(false);
    expect(sim.controller.addressResolution).toBe(false);
    await sim.clock.delay(ROTATE_MS);
    const from = wire.received.length;
    const ad = await firstReport(adapter);
    expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(isResolvablePrivateAddress(ad.address)).toBe(true);
    expect(reportAddresses({ sent: [], received: wire.received.slice(from) }).every(r => r.type === 0x01)).toBe(true);
    const sentFrom = wire.sent.length;
    const conn = await adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
    expect(conn.identity?.address).toBe(IDENTITY);
    const create = commands({ sent: wire.sent.slice(sentFrom), received: [] }, OP.extCreateConnection, OP.createConnection);
    expect(create[0]!.slice(8, 14)).toBe('000101'); // filter policy 0, own 0x01, peer 0x01 (the RPA)
  });

  test('a controller with the list commands but without LL Privacy (as btvirt): the list is written, the host resolves, our Own_Address_Type stays 0x01', async () => {
    const sim = createSimulator({ name: 'no-ll-privacy', controller: { llPrivacy: false },
      peripherals: [peripheral(IDENTITY, IRK_MSO, 'Pulse HR')] });
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore());
    expect(adapter.controller.resolvingListSize).toBe(8);
    await bond(adapter, 'Pulse HR', sim);
    await until(sim, () => adapter.resolvingList.active);
    expect(sim.controller.resolvingIdentities).toEqual([`1/${IDENTITY}`]);
    expect(adapter.resolvingList.resolves).toBe(false);
    await sim.clock.delay(ROTATE_MS);
    const from = wire.received.length, sentFrom = wire.sent.length;
    const ad = await firstReport(adapter);
    expect(isResolvablePrivateAddress(ad.address)).toBe(true);
    expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(reportAddresses({ sent: [], received: wire.received.slice(from) }).every(r => r.type === 0x01)).toBe(true);
    const conn = await adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
    const create = commands({ sent: wire.sent.slice(sentFrom), received: [] }, OP.extCreateConnection, OP.createConnection);
    expect(create[0]!.slice(8, 14)).toBe('000101');
    expect(await conn.encrypt()).toMatchObject({ encrypted: true, bonded: true });
  });

  test('without our privacy only peers are listed: removing the last bond empties the list and turns resolution off', async () => {
    const sim = world();
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore(), false);
    expect(commands(wire, OP.add, OP.clear, OP.enable)).toEqual([]);
    await bond(adapter);
    await until(sim, () => sim.controller.resolvingIdentities.length === 1);
    expect(commands(wire, OP.add)).toEqual([`0127202701${addr(IDENTITY)}${toHex(IRK)}${'00'.repeat(16)}`]); // Local_IRK zero
    expect(await adapter.removeBond({ address: IDENTITY, type: 'random' })).toBe(true);
    await until(sim, () => sim.controller.resolvingIdentities.length === 0);
    expect(sim.controller.addressResolution).toBe(false);
    expect(adapter.resolvingList.active).toBe(false);
  });

  test('reset() writes the list again (the controller lost it); removing the bond takes its entry out, ours stays', async () => {
    const sim = world();
    const adapter = await adapterOn(sim, { sent: [], received: [] }, new MemoryBondStore());
    await bond(adapter);
    await until(sim, () => sim.controller.resolvingIdentities.length === 2);
    await adapter.reset();
    expect(sim.controller.resolvingIdentities).toEqual([OWN, `1/${IDENTITY}`]);
    expect(sim.controller.addressResolution).toBe(true);
    expect(adapter.resolvingList.active).toBe(true);
    expect(await adapter.removeBond({ address: IDENTITY, type: 'random' })).toBe(true);
    await until(sim, () => sim.controller.resolvingIdentities.length === 1);
    // Our entry stays (our advertising RPA); the peer's is gone.
    expect(sim.controller.resolvingIdentities).toEqual([OWN]);
    expect(sim.controller.addressResolution).toBe(true);
    expect(adapter.resolvingList.has(IDENTITY, 1)).toBe(false);
  });

  test('the simulated controller refuses list changes while resolution is on and it scans, and Set Address Resolution Enable while it scans (7.8.38 / 7.8.44)', async () => {
    const sim = world(2);
    const adapter = await adapterOn(sim, { sent: [], received: [] }, new MemoryBondStore(), false);
    const status = async (p: Promise<unknown>): Promise<number> => p.then(() => 0, (e: unknown) => (e as HciStatusError).status);
    const entry = (address: string, irk = IRK) => ({ kind: 'leAddDeviceToResolvingList' as const, peerIdentityAddressType: 1,
      peerIdentityAddress: address, peerIrk: irk, localIrk: new Uint8Array(16) });
    const h = adapter.host;
    expect(await status(h.command(entry(IDENTITY)))).toBe(0);
    expect(await status(h.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 1 }))).toBe(0);
    const session = adapter.scan({});
    await sim.clock.delay(100);
    expect(await status(h.command(entry(OTHER)))).toBe(0x0c);
    expect(await status(h.command({ kind: 'leClearResolvingList' }))).toBe(0x0c);
    expect(await status(h.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 0 }))).toBe(0x0c);
    session.stop();
    await sim.clock.delay(100);
    expect(await status(h.command(entry(OTHER)))).toBe(0);
    expect(await status(h.command(entry(OTHER, OTHER_IRK)))).toBe(0x12); // same identity, other keys
    expect(await status(h.command(entry(OTHER)))).toBe(0); // the same four values: success, not added twice
    expect(await status(h.command(entry('D4:1E:35:7A:00:03')))).toBe(0x07); // two entries: full
    expect(await status(h.command({ ...entry(OTHER), peerIdentityAddressType: 2 }))).toBe(0x12);
    expect(await status(h.command({ kind: 'leRemoveDeviceFromResolvingList', peerIdentityAddressType: 1, peerIdentityAddress: 'D4:1E:35:7A:00:03' }))).toBe(0x02);
    expect(await status(h.command({ kind: 'leSetResolvablePrivateAddressTimeout', rpaTimeout: 0 }))).toBe(0x12);
    expect(await status(h.command({ kind: 'leSetResolvablePrivateAddressTimeout', rpaTimeout: 0xa1b9 }))).toBe(0x12);
    expect(sim.controller.resolvingIdentities).toEqual([`1/${IDENTITY}`, `1/${OTHER}`]);
  });
  test('network privacy mode ignores a listed peer that advertises with its identity; LE Set Privacy Mode to device mode hears it again (Vol 6, Part B, 4.7; Vol 4, Part E, 7.8.77)', async () => {
    // The peer uses no privacy: it advertises with its static random identity address.
    const plain: SimPeripheral = { ...HEART_RATE_SENSOR, name: 'Plain', address: IDENTITY, addressType: 'random', notifications: [] };
    const sim = createSimulator({ name: 'privacy-mode', peripherals: [plain] });
    const wire: Wire = { sent: [], received: [] };
    const adapter = await adapterOn(sim, wire, new MemoryBondStore(), false);
    const h = adapter.host;
    const status = async (p: Promise<unknown>): Promise<number> => p.then(() => 0, (e: unknown) => (e as HciStatusError).status);
    const mode = (address: string, privacyMode: number) => ({ kind: 'leSetPrivacyMode' as const, peerIdentityAddressType: 1, peerIdentityAddress: address, privacyMode });
    const heard = async (): Promise<number> => {
      const from = wire.received.length;
      const session = adapter.scan({ duplicates: true });
      await sim.clock.delay(500);
      session.stop();
      await sim.clock.delay(100);
      return reportAddresses({ sent: [], received: wire.received.slice(from) }).filter(r => r.address === IDENTITY).length;
    };
    expect(await heard()).toBeGreaterThan(0);
    expect(await status(h.command({ kind: 'leAddDeviceToResolvingList', peerIdentityAddressType: 1, peerIdentityAddress: IDENTITY, peerIrk: IRK, localIrk: new Uint8Array(16) }))).toBe(0);
    expect(await status(h.command({ kind: 'leSetAddressResolutionEnable', addressResolutionEnable: 1 }))).toBe(0);
    expect(await heard()).toBe(0); // network privacy mode: the identity address on the air is ignored
    expect(await status(h.command(mode(OTHER, 1)))).toBe(0x02); // not in the list: Unknown Connection Identifier
    expect(await status(h.command(mode(IDENTITY, 2)))).toBe(0x12);
    const session = adapter.scan({});
    await sim.clock.delay(100);
    expect(await status(h.command(mode(IDENTITY, 1)))).toBe(0x0c); // resolution on and scanning
    session.stop();
    await sim.clock.delay(100);
    expect(await status(h.command(mode(IDENTITY, 1)))).toBe(0);
    expect(await heard()).toBeGreaterThan(0); // device privacy mode
  });
});
