// Privacy end to end on the simulated controller (Core Vol 3, Part C, 10.7): a virtual peripheral that
// advertises under a resolvable private address and makes a new one every minute of virtual time. Before
// bonding its reports are strangers'; after pairing (it distributes its IRK and identity address) the
// bond is stored under the identity, the link knows the identity, and its next RPAs resolve in scan
// reports, in filters, in adapter.devices(), and for connect-by-identity, which finds the device under
// its fresh RPA and re-encrypts from the bond. A second adapter on the same bond store resolves from open.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Advertisement } from '../../src/gap/scanner.js';
import { isResolvablePrivateAddress, rpaMatchesIrk } from '../../src/gap/privacy.js';
import { TimeoutError } from '../../src/errors.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { MemoryGattCache, type GattCache } from '../../src/gatt/cache.js';
import { fromHex } from '../../src/bytes/hex.js';

const IDENTITY = HEART_RATE_SENSOR.address; // D4:1E:35:7A:00:01, a static random address
const IRK_MSO = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const IRK = Uint8Array.from(fromHex(IRK_MSO)).reverse(); // SMP order, as bonds keep it
const ROTATE_MS = 60_000;

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

// A controller without a resolving list (size 0): the host resolves every RPA (gap/privacy.ts). The
// controller's list is test/sim/resolving-list.test.ts.
function world(): Simulator {
  return createSimulator({ name: 'privacy', controller: { resolvingListSize: 0 }, peripherals: [{
    // Its own copy of the advertising spec: a test below stops it by editing that object.
    ...HEART_RATE_SENSOR, advertising: { ...HEART_RATE_SENSOR.advertising! }, notifications: [], privacy: { irk: { hex: IRK_MSO }, rotateMs: ROTATE_MS }, pairing: {},
  }] });
}

async function adapterOn(sim: Simulator, bonds = new MemoryBondStore()): Promise<Adapter> {
  const a = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds });
  open.push(a);
  return a;
}

async function firstReport(adapter: Adapter, filter: { address?: string } = {}): Promise<Advertisement> {
  const ad = await adapter.find({ services: ['heart_rate'], timeout: 5000, ...filter });
  expect(ad).toBeDefined();
  return ad!;
}

/** A bond store holding the bond of an earlier run (its own simulator and adapter, closed since). */
async function bondedInAnEarlierRun(): Promise<MemoryBondStore> {
  const bonds = new MemoryBondStore();
  const first = await adapterOn(world(), bonds);
  const conn = await first.connect(await firstReport(first), { timeout: 5000 });
  await conn.pair();
  await conn.disconnect();
  await first.close();
  return bonds;
}

describe('a peripheral with a rotating RPA, resolved by the host (the controller has no resolving list)', () => {
  test('its address on the air is an RPA of its IRK, new every rotation period, never its identity', async () => {
    const sim = world();
    const adapter = await adapterOn(sim);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const ad = await firstReport(adapter);
      expect(ad.addressType).toBe('random');
      expect(isResolvablePrivateAddress(ad.address)).toBe(true);
      expect(rpaMatchesIrk(IRK, ad.address)).toBe(true);
      expect(ad.identity).toBeUndefined(); // not bonded: a stranger
      expect(ad.bonded).toBe(false);
      seen.add(ad.address);
      await sim.clock.delay(ROTATE_MS);
    }
    expect(seen.size).toBe(3);
    expect(seen.has(IDENTITY)).toBe(false);
  });

  test('pairing stores the bond under the identity; later RPAs resolve; connect by identity finds it and re-encrypts', async () => {
    const sim = world();
    const bonds = new MemoryBondStore();
    const adapter = await adapterOn(sim, bonds);
    const ad = await firstReport(adapter);
    const conn = await adapter.connect(ad, { timeout: 5000 });
    expect(conn.address).toBe(ad.address);
    expect(conn.identity).toBeUndefined();
    const state = await conn.pair();
    expect(state).toMatchObject({ encrypted: true, bonded: true });
    // The peer distributed its IRK and identity address (Vol 3, Part H, 3.6.4 / 3.6.5).
    expect(conn.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(conn.address).toBe(ad.address);
    const [bond] = await bonds.list();
    expect(bond!.identity).toEqual({ type: 1, address: IDENTITY });
    expect(bond!.peerIrk).toEqual(IRK);
    await conn.disconnect();

    // A new period: a new RPA, which the bond's IRK resolves.
    await sim.clock.delay(ROTATE_MS);
    const later = await firstReport(adapter);
    expect(later.address).not.toBe(ad.address);
    expect(later.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(later.bonded).toBe(true);
    expect(later.toJSON()['identity']).toEqual({ address: IDENTITY, addressType: 'random' });
    // A filter on the identity address matches the device under its RPA.
    const byId = await firstReport(adapter, { address: IDENTITY.toLowerCase() });
    expect(byId.address).toBe(later.address);
    expect(adapter.devices().find(d => d.address === later.address)?.identity).toEqual({ address: IDENTITY, addressType: 'random' });

    // Connect by identity, after another rotation so no fresh report names the new address.
    await sim.clock.delay(ROTATE_MS);
    const again = await adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
    expect(again.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    expect(isResolvablePrivateAddress(again.address)).toBe(true);
    expect(again.address).not.toBe(later.address);
    expect(rpaMatchesIrk(IRK, again.address)).toBe(true);
    // The bond is found through the identity: encryption with no pairing.
    const enc = await again.encrypt();
    expect(enc).toMatchObject({ encrypted: true, bonded: true });
    expect(sim.peripheral(IDENTITY).pairingStats.pairings).toBe(1);
  });

  test('repeated attempts (Vol 3, Part H, 2.3.6) follow the identity: a failed pairing still counts when the peer comes back on a new RPA', async () => {
    const pairing: { corruptConfirm?: boolean } = {};
    const rotateMs = 1_000; // rotates well inside the 2 s wait after a first failure
    const sim = createSimulator({ name: 'privacy-attempts', controller: { resolvingListSize: 0 }, peripherals: [{
      ...HEART_RATE_SENSOR, advertising: { ...HEART_RATE_SENSOR.advertising! }, notifications: [], privacy: { irk: { hex: IRK_MSO }, rotateMs }, pairing,
    }] });
    const adapter = await adapterOn(sim);
    const first = await adapter.connect(await firstReport(adapter), { timeout: 5000 });
    await first.pair(); // bonded: its IRK resolves its next RPAs
    expect(first.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    // Now the peer fails a pairing (its confirm value is wrong): Confirm Value Failed, a verification failure.
    pairing.corruptConfirm = true;
    const err = await first.pair().catch(e => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x04 });
    const failedOn = first.address;
    await first.disconnect();
    // Within the wait, on a fresh RPA that resolves to the same identity: refused without a Pairing Request.
    await sim.clock.delay(rotateMs);
    const ad = await firstReport(adapter);
    expect(ad.address).not.toBe(failedOn);
    expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
    const again = await adapter.connect(ad, { timeout: 5000 });
    expect(again.address).not.toBe(failedOn);
    const pairingsBefore = sim.peripheral(IDENTITY).pairingStats.pairings;
    const refused = await again.pair().catch(e => e);
    expect(refused).toMatchObject({ code: 'ESMP', reason: 0x09, reasonName: 'Repeated Attempts', by: 'local' });
    expect(sim.peripheral(IDENTITY).pairingStats.pairings).toBe(pairingsBefore);
    await again.disconnect();
  });

  test('the GATT cache keys a bonded peer by its identity: a link under its next RPA finds the database discovered under the last one', async () => {
    // The peer has Service Changed and no Database Hash: a bonded server keeps our cache right (Vol 3,
    // Part G, 2.5.2), so the tree discovered on a link encrypted from the bond is stored.
    const sim = world();
    const inner = new MemoryGattCache();
    const keys: string[] = [];
    const cache: GattCache = {
      load: id => { keys.push(`load ${id}`); return inner.load(id); },
      save: (id, db) => { keys.push(`save ${id}`); return inner.save(id, db); },
      clear: id => inner.clear(id),
    };
    const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: new MemoryBondStore(), gattCache: cache });
    open.push(adapter);
    const first = await adapter.connect(await firstReport(adapter), { timeout: 5000 });
    expect(await first.pair()).toMatchObject({ bonded: true });
    await first.disconnect();
    const peer = sim.peripheral(IDENTITY);
    const discovery = async (): Promise<{ address: string; requests: number }> => {
      await sim.clock.delay(ROTATE_MS); // a new RPA
      const conn = await adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
      expect(await conn.encrypt()).toMatchObject({ bonded: true });
      const before = peer.stats.attRequests;
      expect((await conn.services()).length).toBeGreaterThan(0);
      const requests = peer.stats.attRequests - before;
      await conn.disconnect();
      return { address: conn.address, requests };
    };
    const second = await discovery();
    const third = await discovery();
    expect(third.address).not.toBe(second.address);
    expect(rpaMatchesIrk(IRK, third.address)).toBe(true);
    const key = `${IDENTITY}/random`;
    expect(keys.filter(k => k.endsWith(key))).toEqual(expect.arrayContaining([`save ${key}`, `load ${key}`]));
    expect(keys.some(k => k.includes(second.address) || k.includes(third.address))).toBe(false);
    // The third link discovers nothing again: the cached tree (at most its validation) instead of a full discovery.
    expect(second.requests).toBeGreaterThan(third.requests);
  });

  test('an adapter opened on a bond store resolves from open; connect by identity times out when the device is gone', async () => {
    const bonds = await bondedInAnEarlierRun();

    // Another run (a new process would do the same): the bond store is all that carries over.
    const sim = world();
    await sim.clock.delay(ROTATE_MS);
    const second = await adapterOn(sim, bonds);
    const ad = await firstReport(second);
    expect(ad.identity?.address).toBe(IDENTITY);
    const link = await second.connect({ address: IDENTITY, type: 'random' }, { timeout: 5000 });
    expect(link.identity?.address).toBe(IDENTITY);
    await link.disconnect();

    // The device stops advertising: connect by identity ends with a typed timeout.
    sim.peripheral(IDENTITY).spec.advertising!.startMs = Number.MAX_SAFE_INTEGER;
    await expect(second.connect({ address: IDENTITY, type: 'random' }, { timeout: 2000 })).rejects.toBeInstanceOf(TimeoutError);
  });

  test('reports heard right after open are resolved: open() reads the bond list (a slow store) before it returns', async () => {
    const bonds = await bondedInAnEarlierRun();

    // A store whose list() answers after 50 ms of wall-clock time (a slow disk); the simulator's
    // virtual time runs far faster, so a list read in the background would miss the first reports.
    const slow = Object.assign(Object.create(bonds) as MemoryBondStore, {
      list: async () => { await new Promise(r => setTimeout(r, 50)); return bonds.list(); },
    });
    const sim = world();
    const second = await adapterOn(sim, slow);
    const seen: Advertisement[] = [];
    const session = second.scan({ duplicates: true, onAdvertisement: ad => seen.push(ad) });
    await sim.clock.delay(3 * ROTATE_MS); // three RPAs
    session.stop();
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen.map(a => a.address)).size).toBeGreaterThan(1);
    for (const ad of seen) {
      expect(isResolvablePrivateAddress(ad.address)).toBe(true);
      expect(ad.identity).toEqual({ address: IDENTITY, addressType: 'random' });
      expect(ad.bonded).toBe(true);
    }
  });

  test('an unbonded identity address is connected as given (no scan): it is not on the air, so the attempt times out', async () => {
    const sim = world();
    const adapter = await adapterOn(sim);
    await expect(adapter.connect({ address: IDENTITY, type: 'random' }, { timeout: 1000 })).rejects.toBeInstanceOf(TimeoutError);
    expect(sim.controller.commandLog).toContain('leExtendedCreateConnection');
  });
});
