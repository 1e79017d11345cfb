// Our own LE privacy (Core Vol 3, Part C, 10.7) on the simulated controller, asserted on the wire: an
// adapter opened with `privacy` sets an RPA of its IRK with LE Set Random Address (Vol 4, Part E,
// 7.8.4; parameter octets checked), scans, initiates and advertises with Own_Address_Type random (0x01)
// from it, makes a new one on the injected clock with scanning and legacy advertising off around the
// command and never while an LE Create Connection is pending, gives its IRK and identity address to a
// bonding peer (Identity Information / Identity Address Information, Vol 3, Part H, 3.6.4 / 3.6.5), and
// that peer recognises it by identity under a later RPA. The IRK is kept in the bond store (0600 file
// in a 0700 directory), the same on every open; a damaged key file and a bad period are typed errors.
// These run on a controller without LL Privacy (HOST_RPA: as btvirt and many adapters), where the host
// makes every RPA; a controller with it makes our advertising RPA itself (controller-privacy.test.ts).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { Adapter, type AdapterOpenOptions } from '../../src/api/adapter.js';
import { toHex } from '../../src/bytes/hex.js';
import { ArgumentError, FileError, TimeoutError } from '../../src/errors.js';
import { isResolvablePrivateAddress, rpaMatchesIrk } from '../../src/gap/privacy.js';
import { decodeHciPacket, type CommandPacket } from '../../src/hci/packets.js';
import { ah } from '../../src/smp/crypto.js';
import { FileBondStore, LOCAL_IDENTITY_FILE, MemoryBondStore } from '../../src/smp/bonds.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';

/** A simulated controller without LL Privacy (LE feature bit 6): our RPAs are the host's. */
const HOST_RPA = { llPrivacy: false } as const;

const dir = mkdtempSync(join(tmpdir(), 'blewire-own-privacy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

/** The simulator's transport, with every H4 packet the host sends kept (the wire, host to controller). */
function tapped(sim: Simulator): HciTransport & { sent: Uint8Array[]; commands(): CommandPacket[] } {
  const sent: Uint8Array[] = [];
  const t = sim.transport;
  return {
    sent,
    description: `${t.description} (tapped)`,
    clock: t.clock,
    send(packet: Uint8Array) { sent.push(packet.slice()); t.send(packet); },
    setReceiver(r: TransportReceiver) { t.setReceiver(r); },
    close: () => t.close(),
    commands: () => sent.filter(p => p[0] === 0x01).map(p => decodeHciPacket(p) as CommandPacket),
  };
}

/** The LE Set Random Address packets (H4 01, opcode 0x2005 LSO first, length 6, address LSO first). */
function setRandomAddresses(sent: Uint8Array[]): string[] {
  return sent.filter(p => p[0] === 0x01 && p[1] === 0x05 && p[2] === 0x20).map(p => {
    expect(p.length).toBe(10);
    expect(p[3]).toBe(6);
    return [...p.subarray(4, 10)].reverse().map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  });
}

/** The address resolves under the IRK with the toolbox's ah (Vol 3, Part H, 2.2.2), computed here apart from the resolver. */
function resolvesWith(irkSmpOrder: Uint8Array, address: string): boolean {
  const o = address.split(':').map(h => parseInt(h, 16));
  if (o[0]! >> 6 !== 0b01) return false;
  const hash = ah(Uint8Array.from(irkSmpOrder).reverse(), Uint8Array.from(o.slice(0, 3)));
  return toHex(hash) === toHex(Uint8Array.from(o.slice(3)));
}

async function adapterOn(transport: HciTransport, sim: Simulator, opts: Partial<AdapterOpenOptions> = {}): Promise<Adapter> {
  const a = await Adapter.open({ transport, clock: sim.clock, bonds: new MemoryBondStore(), privacy: { rotateSeconds: 60 }, ...opts });
  open.push(a);
  return a;
}

describe('our RPA on the wire', () => {
  test('LE Set Random Address at open carries an RPA of our IRK; scanning (active) and initiating use Own_Address_Type random', async () => {
    const sim = createSimulator({ name: 'own-privacy', controller: HOST_RPA, peripherals: [{ ...HEART_RATE_SENSOR, notifications: [] }] });
    const wire = tapped(sim);
    const adapter = await adapterOn(wire, sim);
    const p = adapter.privacy!;
    expect(p.rotateSeconds).toBe(60);
    expect(p.identity).toEqual({ address: sim.controller.address, addressType: 'public' });
    const [first] = setRandomAddresses(wire.sent);
    expect(first).toBe(p.address);
    expect(isResolvablePrivateAddress(first!)).toBe(true);
    expect(resolvesWith(p.irk, first!)).toBe(true);
    expect(resolvesWith(new Uint8Array(16).fill(7), first!)).toBe(false);
    expect(sim.controller.randomAddress).toBe(first);

    const ad = await adapter.find({ services: ['heart_rate'], active: true, timeout: 5000 });
    const scanParams = wire.commands().filter(c => c.kind === 'leSetExtendedScanParameters');
    expect(scanParams.length).toBeGreaterThan(0);
    for (const c of scanParams) expect(c).toMatchObject({ ownAddressType: 1, scanningPhys: [{ scanType: 1 }] });
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    expect(wire.commands().find(c => c.kind === 'leExtendedCreateConnection')).toMatchObject({ ownAddressType: 1 });
    await conn.disconnect();
  });

  test('rotation: a new RPA on the clock, with scanning stopped around LE Set Random Address (7.8.4) and resumed', async () => {
    const sim = createSimulator({ name: 'own-privacy', controller: HOST_RPA, peripherals: [{ ...HEART_RATE_SENSOR, notifications: [] }] });
    const wire = tapped(sim);
    const adapter = await adapterOn(wire, sim);
    const session = adapter.scan({ active: true });
    await adapter.find({ services: ['heart_rate'], timeout: 5000 });
    const mark = wire.sent.length;
    await sim.clock.delay(60_000);
    await adapter.find({ services: ['heart_rate'], timeout: 5000 });
    const after = wire.sent.slice(mark);
    const kinds = after.filter(p => p[0] === 0x01).map(p => (decodeHciPacket(p) as CommandPacket).kind);
    const i = kinds.indexOf('leSetRandomAddress');
    expect(i).toBeGreaterThan(0);
    // The scan stopped before the address changed and started again after, parameters resent.
    expect(kinds.slice(0, i)).toContain('leSetExtendedScanEnable');
    expect(kinds.slice(i + 1, i + 3)).toEqual(['leSetExtendedScanParameters', 'leSetExtendedScanEnable']);
    const [next] = setRandomAddresses(after);
    expect(next).not.toBe(setRandomAddresses(wire.sent)[0]);
    expect(resolvesWith(adapter.privacy!.irk, next!)).toBe(true);
    expect(adapter.privacy!.address).toBe(next);
    expect(adapter.privacy!.rotations).toBe(2);
    session.stop();
    // The controller never refused the command (it does while scanning, as the spec says).
    expect(sim.controller.commandLog.filter(k => k === 'leSetRandomAddress')).toHaveLength(2);
  });

  test('never mid connection attempt: a rotation asked during LE Create Connection waits until the attempt ends', async () => {
    const sim = createSimulator({ name: 'own-privacy', controller: HOST_RPA, peripherals: [] });
    const wire = tapped(sim);
    const adapter = await adapterOn(wire, sim, { privacy: true });
    expect(adapter.privacy!.rotateSeconds).toBe(900);
    const attempt = adapter.connect({ address: 'C0:11:22:33:44:55', type: 'random' }, { timeout: 3000 }).catch(e => e as Error);
    await sim.clock.delay(1000);
    const rotated = adapter.privacy!.rotate();
    await sim.clock.delay(1000);
    expect(setRandomAddresses(wire.sent)).toHaveLength(1); // still the first: the attempt is pending
    expect(await attempt).toBeInstanceOf(TimeoutError);
    const rpa = await rotated;
    const kinds = wire.commands().map(c => c.kind);
    expect(kinds.lastIndexOf('leSetRandomAddress')).toBeGreaterThan(kinds.indexOf('leCreateConnectionCancel'));
    expect(setRandomAddresses(wire.sent)).toEqual([expect.any(String), rpa]);
  });
});

describe('advertising from our RPA', () => {
  test.each([['extended', HOST_RPA], ['legacy', { ...HOST_RPA, extended: false }]] as const)('%s: own address type random, the set follows each rotation', async (kind, controller) => {
    const sim = createSimulator({ name: 'own-privacy-adv', peripherals: [], controller });
    const wire = tapped(sim);
    const adapter = await adapterOn(wire, sim);
    const set = await adapter.advertise({ name: 'private' });
    const first = adapter.privacy!.address;
    if (kind === 'extended') {
      expect(wire.commands().find(c => c.kind === 'leSetExtendedAdvertisingParameters')).toMatchObject({ ownAddressType: 1 });
      // The set's own RPA (7.8.52): of our IRK, not the adapter's LE Set Random Address.
      expect(wire.commands().filter(c => c.kind === 'leSetAdvertisingSetRandomAddress')).toMatchObject([{ randomAddress: set.address }]);
      expect(set.address).not.toBe(first);
      expect(rpaMatchesIrk(adapter.privacy!.irk, set.address!)).toBe(true);
    } else {
      expect(wire.commands().find(c => c.kind === 'leSetAdvertisingParameters')).toMatchObject({ ownAddressType: 1 });
    }
    const mark = wire.sent.length;
    await sim.clock.delay(60_000);
    const next = adapter.privacy!.address;
    expect(next).not.toBe(first);
    const seq = wire.sent.slice(mark).filter(p => p[0] === 0x01).map(p => decodeHciPacket(p) as CommandPacket);
    if (kind === 'extended') {
      // LE Set Random Address, then the set: disabled, its own random address, enabled again (7.8.52).
      expect(seq.map(c => c.kind)).toEqual(['leSetRandomAddress', 'leSetExtendedAdvertisingEnable', 'leSetAdvertisingSetRandomAddress', 'leSetExtendedAdvertisingEnable']);
      // A new RPA of the set's own, neither its last one nor the adapter's new one.
      const setNext = (seq[2] as unknown as { randomAddress: string }).randomAddress;
      expect(setNext).toBe(set.address);
      expect([first, next]).not.toContain(setNext);
      expect(rpaMatchesIrk(adapter.privacy!.irk, setNext)).toBe(true);
    } else {
      // Legacy advertising must be off for LE Set Random Address (7.8.4).
      expect(seq.map(c => c.kind)).toEqual(['leSetAdvertisingEnable', 'leSetRandomAddress', 'leSetAdvertisingEnable']);
      expect(seq.map(c => (c as { enable?: number }).enable)).toEqual([0, undefined, 1]);
    }
    expect(setRandomAddresses(wire.sent.slice(mark))).toEqual([next]);
    expect(set.enabled).toBe(true);
    expect(sim.controller.commandLog.some(k => k.startsWith('invalid'))).toBe(false);
  });
});

describe('bonding gives the peer our IRK and identity; it knows us under our next RPA', () => {
  // The simulated peer keeps the keys a central distributes and finds its bond for a central's RPA
  // with the IRKs it holds (src/sim/pairing.ts). Two blewire hosts pairing (SimAir has no SMP bridge)
  // are in test/interop/privacy-btvirt.test.ts, where btvirt checks the keys.
  test('Pairing Request with IdKey, Identity Information + Identity Address Information sent, re-encryption after a rotation', async () => {
    const sim = createSimulator({ name: 'own-privacy', controller: HOST_RPA, peripherals: [{ ...HEART_RATE_SENSOR, notifications: [], pairing: {} }] });
    const wire = tapped(sim);
    const adapter = await adapterOn(wire, sim);
    const ad = await adapter.find({ services: ['heart_rate'], timeout: 5000 });
    const conn = await adapter.connect(ad!, { timeout: 5000 });
    expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true });
    // SMP on the wire (ACL, L2CAP CID 0x0006): H4 02, handle 2, length 2, L2CAP length 2, CID 2, then the PDU.
    const smp = wire.sent.filter(p => p[0] === 0x02 && p[7] === 0x06 && p[8] === 0x00).map(p => toHex(p.subarray(9)));
    // Pairing Request (Vol 3, Part H, 3.5.1): initiator keys EncKey | IdKey | LinkKey (0x0b) now that
    // we have an IRK; responder keys EncKey | IdKey | SignKey | LinkKey (0x0f).
    expect(smp[0]).toBe('0103002910' + '0b0f');
    // Identity Information (0x08, our IRK, LSO first) and Identity Address Information (0x09, type 0 public, address LSO first).
    const irk = adapter.privacy!.irk;
    expect(smp).toContain('08' + toHex(irk));
    const pub = sim.controller.address.split(':').reverse().join('').toLowerCase();
    expect(smp).toContain('0900' + pub);
    const peer = sim.peripheral(HEART_RATE_SENSOR.address);
    await sim.clock.delay(100); // our last key PDUs reach the peer a connection event or two later
    expect([...peer.bonds.values()].map(b => b.irk && toHex(b.irk))).toEqual([toHex(irk)]);
    await conn.disconnect();

    const before = adapter.privacy!.address;
    const after = await adapter.privacy!.rotate();
    expect(after).not.toBe(before);
    const again = await adapter.connect((await adapter.find({ services: ['heart_rate'], timeout: 5000 }))!, { timeout: 5000 });
    // The peer has no bond under this address: it finds ours by resolving the RPA with our IRK.
    expect(await again.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    expect(peer.pairingStats.pairings).toBe(1);
    await again.disconnect();
  });
});

describe('our keys are kept with the bonds', () => {
  test('made once, 0600 in a 0700 directory, the same IRK on the next open; a damaged file and a bad period are typed errors', async () => {
    const bondsDir = join(dir, 'bonds');
    const sim = createSimulator({ name: 'own-privacy', peripherals: [] });
    const a = await Adapter.open({ transport: sim.transport, bonds: bondsDir, privacy: true });
    const irk = a.privacy!.irk;
    const file = join(bondsDir, LOCAL_IDENTITY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(bondsDir).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ format: 'blewire-local-identity/1', irk: toHex(irk) });
    expect(await new FileBondStore(bondsDir).list()).toEqual([]); // not taken for a bond
    await a.close();

    const sim2 = createSimulator({ name: 'own-privacy', peripherals: [] });
    const b = await Adapter.open({ transport: sim2.transport, bonds: bondsDir, privacy: true });
    expect(b.privacy!.irk).toEqual(irk);
    expect(b.privacy!.address).not.toBe(a.privacy!.address);
    expect(rpaMatchesIrk(irk, b.privacy!.address)).toBe(true);
    await b.close();

    writeFileSync(file, '{"format":"blewire-local-identity/1","irk":"zz"}');
    const sim3 = createSimulator({ name: 'own-privacy', peripherals: [] });
    await expect(Adapter.open({ transport: sim3.transport, bonds: bondsDir, privacy: true })).rejects.toBeInstanceOf(FileError);
    await expect(Adapter.open({ transport: sim3.transport, bonds: false, privacy: { rotateSeconds: 0 } })).rejects.toBeInstanceOf(ArgumentError);
    await expect(Adapter.open({ transport: sim3.transport, bonds: false, privacy: { rotateSeconds: 41_401 } })).rejects.toBeInstanceOf(ArgumentError);
    await sim3.transport.close();
  });

  test('without privacy nothing is made or kept', async () => {
    const bondsDir = join(dir, 'plain');
    const sim = createSimulator({ name: 'no-privacy', peripherals: [] });
    const a = await Adapter.open({ transport: sim.transport, bonds: bondsDir });
    open.push(a);
    expect(a.privacy).toBeUndefined();
    expect(a.randomAddress).toBeUndefined();
    expect(() => statSync(join(bondsDir, LOCAL_IDENTITY_FILE))).toThrow();
  });
});
