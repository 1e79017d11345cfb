// Pins subscriptions (CCCD on the wire, iterator and callback, unsubscribe when the loop ends, dead
// with the link, no duplicates across reconnects), Service Changed rediscovery, and GATT caching
// (one round trip on a hit, rediscovery on a changed hash, atomic file store).
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { DisconnectedError } from '../../../src/errors.js';
import { FileGattCache, MemoryGattCache, type GattCache } from '../../../src/gatt/cache.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

function connect(db: GattDatabase, opts: { cache?: GattCache; serviceChanged?: boolean; robustCaching?: boolean; clock?: FakeClock } = {}) {
  const fp = fakePeripheral(db, opts.clock ? { clock: opts.clock } : {});
  const client = new GattClient(fp.pair.central, {
    clock: fp.clock, peerId: 'AA:BB:CC:DD:EE:FF/public',
    ...(opts.cache ? { cache: opts.cache } : {}),
    serviceChanged: opts.serviceChanged ?? false, robustCaching: opts.robustCaching ?? false,
  });
  return { ...fp, client };
}

describe('notifications', () => {
  test('iterator and callback both get values; leaving the loop writes the CCCD back', async () => {
    const db = new GattDatabase(bluezExampleServices());
    const { client, link } = connect(db);
    const hrm = await client.characteristic('heart_rate', 'heart_rate_measurement');
    const seen: number[] = [];
    const sub = await hrm.subscribe(v => seen.push(v[1]!));
    expect(link.cccd(0x18)).toBe(1); // notifications enabled on the peer
    const got: number[] = [];
    const loop = (async () => {
      for await (const v of hrm.notifications()) {
        got.push(v[1]!);
        if (got.length === 3) break;
      }
    })();
    await client.ready;
    for (let bpm = 60; bpm < 63; bpm++) {
      // notify() returns once the value is on the wire; the loop gets it a microtask later.
      await link.notify(0x2a37, Uint8Array.of(0, bpm));
    }
    await loop;
    expect(got).toEqual([60, 61, 62]);
    expect(link.cccd(0x18)).toBe(1); // the callback subscription still holds it
    await sub.unsubscribe();
    expect(link.cccd(0x18)).toBe(0);
    expect(seen).toEqual([60, 61, 62]);
  });

  test('a callback subscription keeps no values until it is iterated, then buffers from there on', async () => {
    const db = new GattDatabase(bluezExampleServices());
    const { client, link } = connect(db);
    const hrm = await client.characteristic('heart_rate', 'heart_rate_measurement');
    const seen: number[] = [];
    const sub = await hrm.subscribe(v => seen.push(v[1]!), { buffer: 4 });
    // More values than the buffer holds, nobody iterating: the callback has each, nothing is dropped.
    for (let bpm = 60; bpm < 70; bpm++) await link.notify(0x2a37, Uint8Array.of(0, bpm));
    expect(seen).toEqual([60, 61, 62, 63, 64, 65, 66, 67, 68, 69]);
    expect(sub.dropped).toBe(0);
    // Iterated from here: the values after this point, bounded by the buffer.
    const it = sub[Symbol.asyncIterator]();
    for (let bpm = 70; bpm < 76; bpm++) await link.notify(0x2a37, Uint8Array.of(0, bpm));
    const got: number[] = [];
    for (let k = 0; k < 4; k++) got.push((await it.next()).value![1]!);
    expect(got).toEqual([72, 73, 74, 75]);
    expect(sub.dropped).toBe(2);
    expect(seen.length).toBe(16);
    await sub.unsubscribe();
  });

  test('indications are confirmed and delivered', async () => {
    const db = new GattDatabase([{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['indicate'] }] }]);
    const { client, link } = connect(db);
    const c = await client.characteristic(0xfff0, 0xfff1);
    const it = c.notifications()[Symbol.asyncIterator]();
    const first = it.next();
    // The CCCD write happens on the first next(); wait for the peer to see it.
    await link.cccdWritten(c.cccd!.handle, 2);
    expect(await link.indicate(0xfff1, Uint8Array.of(7))).toBe(true); // resolved by our confirmation
    expect((await first).value).toEqual(Uint8Array.of(7));
    await it.return!();
    expect(link.cccd(c.cccd!.handle)).toBe(0);
  });

  test('subscriptions die with the link; a new connection starts with none', async () => {
    const db = new GattDatabase(bluezExampleServices());
    const a = connect(db);
    const hrm = await a.client.characteristic('heart_rate', 'heart_rate_measurement');
    const calls: string[] = [];
    await hrm.subscribe(() => calls.push('old'));
    const iter = hrm.notifications()[Symbol.asyncIterator]();
    const pending = iter.next();
    await a.link.cccdWritten(0x18, 1);
    a.pair.disconnect();
    await expect(pending).rejects.toBeInstanceOf(DisconnectedError);
    await expect(hrm.subscribe(() => {})).rejects.toBeInstanceOf(DisconnectedError);

    const b = connect(db);
    const hrm2 = await b.client.characteristic('heart_rate', 'heart_rate_measurement');
    await hrm2.subscribe(() => calls.push('new'));
    await b.link.notify(0x2a37, Uint8Array.of(0, 70));
    await b.client.readValue(0x1a); // a round trip: the notification has been handled
    expect(calls).toEqual(['new']);
  });

  test('a characteristic without notify/indicate cannot be subscribed', async () => {
    const { client } = connect(new GattDatabase(bluezExampleServices()));
    const bsl = await client.characteristic('heart_rate', 'body_sensor_location');
    await expect(bsl.subscribe()).rejects.toThrow(/neither notifications nor indications/);
  });
});

describe('Service Changed', () => {
  test('an indication invalidates the range, rediscovers it and ends subscriptions in it', async () => {
    const db1 = new GattDatabase(bluezExampleServices());
    const { client, link } = connect(db1, { serviceChanged: true });
    await client.services();
    await client.ready; // Service Changed indications enabled
    expect(link.cccd(0x0b)).toBe(2);
    const bat = await client.characteristic('battery_service', 'battery_level');
    const it = bat.notifications()[Symbol.asyncIterator]();
    const pending = it.next();
    await link.cccdWritten(0x20, 1);

    const changed = new Promise<{ start: number; end: number }>(r => client.on('servicesChanged', r));
    const services2 = bluezExampleServices();
    services2[4] = { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(50) }], endHandle: 0x20 };
    const db2 = new GattDatabase(services2);
    expect(await link.changeDatabase(db2, 0x1d, 0x20)).toBe(true);
    expect(await changed).toEqual({ start: 0x1d, end: 0x20 });
    await expect(pending).rejects.toThrow(/Service Changed/);
    const battery = (await client.services()).find(s => s.name === 'battery_service')!;
    expect(battery.characteristics.map(c => [c.name, c.properties])).toEqual([['battery_level', ['read']]]);
    expect(await battery.characteristics[0]!.read()).toEqual(Uint8Array.of(50));
  });
});

describe('robust caching', () => {
  test('Database Out Of Sync rejects the operation and triggers a re-validation and rediscovery', async () => {
    const db1 = new GattDatabase(bluezExampleServices());
    const { client, link } = connect(db1, { robustCaching: true });
    await client.services();
    await client.ready;
    expect(link.clientFeatures).toEqual(Uint8Array.of(1));
    const changed = bluezExampleServices();
    changed[4] = { uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'], value: Uint8Array.of(42) }], endHandle: 0x20 };
    expect(await link.changeDatabase(new GattDatabase(changed))).toBe(false); // no Service Changed subscription
    const seen = new Promise(r => client.on('servicesChanged', r));
    await expect(client.readValue(0x1f)).rejects.toMatchObject({ errorCode: 0x12, errorName: 'Database Out Of Sync' });
    expect(await seen).toEqual({ start: 1, end: 0xffff });
    const bat = (await client.services()).find(s => s.name === 'battery_service')!;
    expect(bat.characteristics[0]!.properties).toEqual(['read']);
    expect(await bat.characteristics[0]!.read()).toEqual(Uint8Array.of(42));
  });
});

describe('caching', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });

  test('a reconnect to an unchanged peer spends one ATT round trip on discovery', async () => {
    const cache = new MemoryGattCache();
    const db = new GattDatabase(bluezExampleServices());
    const first = connect(db, { cache });
    await first.client.exchangeMtu();
    first.link.requests = 0;
    const tree1 = await first.client.services();
    expect(first.link.requests).toBe(15); // the hash read + the 14 of a full discovery
    expect(first.client.stats).toMatchObject({ cacheMisses: 1, cacheHits: 0 });
    first.pair.disconnect();

    const second = connect(db, { cache });
    await second.client.exchangeMtu();
    second.link.requests = 0;
    const tree2 = await second.client.services();
    expect(second.link.requestLog.slice(-1)).toEqual(['readByTypeReq']);
    expect(second.link.requests).toBe(1);
    expect(second.client.stats).toMatchObject({ cacheHits: 1, discoveryRequests: 1 });
    expect(JSON.stringify(tree2)).toEqual(JSON.stringify(tree1));
    // The cached tree works: read through it.
    expect(new TextDecoder().decode(await (await second.client.characteristic('generic_access', 'gap.device_name')).read())).toBe('BlueZ 5.66');
  });

  test('robust caching and Service Changed setup cost two writes after discovery, off the discovery path', async () => {
    const cache = new MemoryGattCache();
    const db = new GattDatabase(bluezExampleServices());
    await connect(db, { cache }).client.services();
    const again = connect(db, { cache, serviceChanged: true, robustCaching: true });
    await again.client.services();
    expect(again.client.stats.discoveryRequests).toBe(1);
    await again.client.ready;
    expect(again.link.requestLog).toEqual(['readByTypeReq', 'writeReq', 'writeReq']);
    expect(again.link.clientFeatures).toEqual(Uint8Array.of(1));
    expect(again.link.cccd(0x0b)).toBe(2);
  });

  test('a changed Database Hash means a full rediscovery', async () => {
    const cache = new MemoryGattCache();
    await connect(new GattDatabase(bluezExampleServices()), { cache }).client.services();
    const changed = bluezExampleServices();
    changed[3]!.characteristics!.pop(); // drop Heart Rate Control Point
    const c = connect(new GattDatabase(changed), { cache });
    const services = await c.client.services();
    expect(c.client.stats).toMatchObject({ cacheHits: 0, cacheMisses: 1 });
    expect(services.find(s => s.name === 'heart_rate')!.characteristics.map(x => x.name)).toEqual(['heart_rate_measurement', 'body_sensor_location']);
    expect(c.link.requests).toBeGreaterThan(10);
  });

  test('file cache: atomic writes (no temp files left), survives restarts, corrupt file is a miss, explicit clear', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'blewire-gatt-cache-'));
    dirs.push(dir);
    const db = new GattDatabase(bluezExampleServices());
    await connect(db, { cache: new FileGattCache(dir) }).client.services();
    expect(await readdir(dir)).toEqual(['aa_bb_cc_dd_ee_ff_public.json']);
    const stored = JSON.parse(await readFile(join(dir, 'aa_bb_cc_dd_ee_ff_public.json'), 'utf8'));
    expect(stored.services).toHaveLength(6);

    const hit = connect(db, { cache: new FileGattCache(dir) }); // a new process, same directory
    await hit.client.services();
    expect(hit.link.requests).toBe(1);

    await writeFile(join(dir, 'aa_bb_cc_dd_ee_ff_public.json'), '{"format":1,"hash":"zz"');
    const miss = connect(db, { cache: new FileGattCache(dir) });
    await miss.client.services();
    expect(miss.client.stats.cacheMisses).toBe(1);

    await miss.client.clearCache();
    expect(await readdir(dir)).toEqual([]);
  });

  test('without a Database Hash on the peer nothing is cached', async () => {
    const cache = new MemoryGattCache();
    const db = new GattDatabase([{ uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read'] }] }]);
    await connect(db, { cache }).client.services();
    expect(await cache.load('AA:BB:CC:DD:EE:FF/public')).toBeUndefined();
  });
});
