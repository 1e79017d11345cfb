// When a stored GATT tree may be used (issue 8, section 2): an empty or malformed Database Hash is
// no hash (plain discovery, never a ProtocolError); a peer without a hash is cacheable when bonded
// and it has Service Changed (cacheRule); `trustCache` uses the stored tree without any check; and
// the simulator computes a declared Database Hash that has no value (Vol 3, Part G, 7.3).
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../../src/api/adapter.js';
import { MemoryGattCache, type GattCache } from '../../../src/gatt/cache.js';
import { cacheRule, GattClient } from '../../../src/gatt/client.js';
import { GattDatabase, type ServiceDef } from '../../../src/gatt/server-db.js';
import { createSimulator, type Simulator } from '../../../src/sim/index.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

const PEER = 'AA:BB:CC:DD:EE:FF/public';

function connect(db: GattDatabase, cache: GattCache, opts: { bonded?: boolean; trustCache?: boolean } = {}) {
  const fp = fakePeripheral(db);
  const client = new GattClient(fp.pair.central, { clock: fp.clock, peerId: PEER, cache, serviceChanged: false, robustCaching: false, ...opts });
  return { ...fp, client };
}

/** The BlueZ example with the Database Hash characteristic's value replaced. */
function withHashValue(value: Uint8Array): GattDatabase {
  const services = bluezExampleServices();
  services[1]!.characteristics![2] = { uuid: 0x2b2a, properties: ['read'], value };
  return new GattDatabase(services);
}

const noHash = (sc: boolean): ServiceDef[] => [
  { uuid: 0x1801, characteristics: sc ? [{ uuid: 0x2a05, properties: ['indicate'] }] : [{ uuid: 0x2b3a, properties: ['read'], value: Uint8Array.of(0) }] },
  { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(80) }] },
];

describe('an unusable Database Hash is no hash', () => {
  for (const [what, value] of [['empty', new Uint8Array(0)], ['3 octets', Uint8Array.of(1, 2, 3)], ['17 octets', new Uint8Array(17)]] as const) {
    test(`${what}: services() discovers in full and stores nothing by hash`, async () => {
      const cache = new MemoryGattCache();
      const c = connect(withHashValue(value), cache);
      const services = await c.client.services();
      expect(services).toHaveLength(6);
      expect(c.client.stats).toMatchObject({ cacheMisses: 1, cacheHits: 0 });
      expect(await cache.load(PEER)).toBeUndefined();
      const again = connect(withHashValue(value), cache);
      await again.client.services();
      expect(again.client.stats.cacheHits).toBe(0);
    });
  }
});

describe('peers without a Database Hash', () => {
  test('bonded with Service Changed: stored, and trusted on the next connection (one failed hash read)', async () => {
    const cache = new MemoryGattCache();
    const db = new GattDatabase(noHash(true));
    await connect(db, cache, { bonded: true }).client.services();
    expect((await cache.load(PEER))?.hash).toBeUndefined();
    const again = connect(db, cache, { bonded: true });
    await again.client.services();
    expect(again.client.stats).toMatchObject({ cacheHits: 1, discoveryRequests: 1 });
    expect(again.link.requestLog).toEqual(['readByTypeReq']);
  });

  test('not bonded, or bonded without Service Changed: nothing stored, nothing trusted', async () => {
    const cache = new MemoryGattCache();
    await connect(new GattDatabase(noHash(true)), cache).client.services();
    expect(await cache.load(PEER)).toBeUndefined();
    await connect(new GattDatabase(noHash(false)), cache, { bonded: true }).client.services();
    expect(await cache.load(PEER)).toBeUndefined();
    // A bonded entry is not trusted by a connection that is not bonded.
    await connect(new GattDatabase(noHash(true)), cache, { bonded: true }).client.services();
    const unbonded = connect(new GattDatabase(noHash(true)), cache);
    await unbonded.client.services();
    expect(unbonded.client.stats.cacheHits).toBe(0);
  });

  test('the rule, spelled out', () => {
    const sc = [{ uuid: '00001801-0000-1000-8000-00805f9b34fb', primary: true, start: 1, end: 4, includes: [],
      characteristics: [{ uuid: '00002a05-0000-1000-8000-00805f9b34fb', declHandle: 2, valueHandle: 3, properties: 0x20, end: 4, descriptors: [] }] }];
    const h = new Uint8Array(16);
    const h2 = Uint8Array.of(...new Array(15).fill(0), 1);
    const ctx = { bonded: false, trust: false };
    expect(cacheRule(undefined, h, ctx)).toEqual({ use: false, why: 'no-entry' });
    expect(cacheRule({ hash: h, services: [] }, h, ctx)).toEqual({ use: true, why: 'hash-equal' });
    expect(cacheRule({ hash: h, services: [] }, h2, ctx)).toEqual({ use: false, why: 'hash-differs' });
    expect(cacheRule({ hash: undefined, services: sc }, h, { ...ctx, bonded: true })).toEqual({ use: false, why: 'hash-appeared' });
    expect(cacheRule({ hash: undefined, services: sc }, undefined, ctx)).toEqual({ use: false, why: 'no-hash-not-bonded' });
    expect(cacheRule({ hash: undefined, services: [] }, undefined, { ...ctx, bonded: true })).toEqual({ use: false, why: 'no-service-changed' });
    expect(cacheRule({ hash: h, services: sc }, undefined, { ...ctx, bonded: true })).toEqual({ use: false, why: 'no-service-changed' });
    expect(cacheRule({ hash: undefined, services: sc }, undefined, { ...ctx, bonded: true })).toEqual({ use: true, why: 'bonded-service-changed' });
    expect(cacheRule({ hash: h, services: [] }, h2, { ...ctx, trust: true })).toEqual({ use: true, why: 'trusted' });
  });
});

describe('trustCache', () => {
  test('uses the stored tree with no request at all, even when the device changed', async () => {
    const cache = new MemoryGattCache();
    await connect(new GattDatabase(bluezExampleServices()), cache).client.services();
    const changed = bluezExampleServices();
    changed[3]!.characteristics!.pop();
    const c = connect(new GattDatabase(changed), cache, { trustCache: true });
    const tree = await c.client.services();
    expect(c.link.requests).toBe(0);
    expect(c.client.stats.cacheHits).toBe(1);
    // The stale view is what the user asked for: the dropped characteristic is still listed.
    expect(tree.find(s => s.name === 'heart_rate')!.characteristics).toHaveLength(3);
  });

  test('without a stored tree it discovers, reads the hash and stores it', async () => {
    const cache = new MemoryGattCache();
    const c = connect(new GattDatabase(bluezExampleServices()), cache, { trustCache: true });
    await c.client.services();
    expect(c.client.stats.cacheMisses).toBe(1);
    expect((await cache.load(PEER))?.hash).toHaveLength(16);
  });
});

describe('the simulator computes a declared Database Hash without a value', () => {
  const sims: Simulator[] = [];
  const adapters: Adapter[] = [];
  afterEach(async () => { for (const a of adapters.splice(0)) await a.close(); sims.splice(0); });

  test('16 octets equal to the hash of its database, and a cache hit on reconnection', async () => {
    const gatt = [
      { uuid: 0x1801, characteristics: [{ uuid: 0x2a05, properties: ['indicate' as const] }, { uuid: 0x2b2a, properties: ['read' as const] }] },
      { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read' as const], value: { hex: '50' } }] },
    ];
    const sim = createSimulator({ peripherals: [{ address: 'D4:1E:35:7A:00:09', addressType: 'random', advertising: { data: { flags: 0x06 } }, gatt }] });
    sims.push(sim);
    const cache = new MemoryGattCache();
    const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, gattCache: cache });
    adapters.push(adapter);
    const target = { address: 'D4:1E:35:7A:00:09', addressType: 'random' as const };
    const conn = await adapter.connect(target, { timeout: 5000 });
    const hash = await (await conn.characteristic('generic_attribute', 'gatt.database_hash')).read();
    expect(hash).toHaveLength(16);
    expect(hash).toEqual(sim.peripheral('D4:1E:35:7A:00:09')!.db!.hash);
    await conn.services();
    await conn.disconnect();
    const again = await adapter.connect(target, { timeout: 5000 });
    await again.services();
    expect(again.gatt.stats).toMatchObject({ cacheHits: 1, discoveryRequests: 1 });
    await again.disconnect();
    // Adapter.connect's per-connection trustCache: the stored tree, not even the hash read.
    const trusting = await adapter.connect(target, { timeout: 5000, gatt: { trustCache: true } });
    await trusting.services();
    expect(trusting.gatt.stats).toMatchObject({ cacheHits: 1, discoveryRequests: 0 });
  });
});
