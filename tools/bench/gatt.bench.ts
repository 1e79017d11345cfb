/**
 * GATT discovery cost over the in-memory ATT channel (no radio): ATT round trips and wall time of a
 * full discovery of (a) the replica of BlueZ's example server (46 attributes) and (b) a synthetic
 * 30-service / 200-characteristic database, each at ATT_MTU 517 and 23; plus, for comparison, the
 * round trips of the naive strategy (characteristics one service at a time, Find Information for
 * every characteristic with room for descriptors — noble's shape) and of a cache hit.
 */
import { FakeClock } from '../../src/clock.js';
import { MemoryGattCache } from '../../src/gatt/cache.js';
import { GattClient } from '../../src/gatt/client.js';
import * as proc from '../../src/gatt/procedures.js';
import { GattDatabase, type ServiceDef } from '../../src/gatt/server-db.js';
import { bluezExampleServices, fakePeripheral, syntheticServices } from '../../test/helpers/fake-peripheral.js';

async function once(db: GattDatabase, mtu: number, strategy: 'blewire' | 'naive' | 'cache-hit', cache?: MemoryGattCache): Promise<{ requests: number; ms: number }> {
  const fp = fakePeripheral(db, { mtu, clock: new FakeClock() });
  const client = new GattClient(fp.pair.central, {
    clock: fp.clock, mtu, serviceChanged: false, robustCaching: false,
    ...(cache ? { cache, peerId: 'bench' } : {}),
  });
  await client.exchangeMtu();
  fp.link.requests = 0;
  const t0 = performance.now();
  if (strategy === 'naive') {
    const services = await proc.discoverPrimaryServices(client.bearer, undefined);
    for (const s of services) {
      const chars = await proc.discoverCharacteristics(client.bearer, s.start, s.end, undefined);
      proc.assignCharacteristics([s], chars);
      for (const c of s.characteristics) if (c.end > c.valueHandle) await proc.discoverDescriptors(client.bearer, c.valueHandle + 1, c.end, undefined);
    }
  } else {
    await client.services();
  }
  const ms = performance.now() - t0;
  const requests = fp.link.requests;
  fp.pair.disconnect();
  return { requests, ms };
}

async function measure(label: string, services: ServiceDef[]): Promise<void> {
  const db = new GattDatabase(services);
  const chars = db.layout.reduce((n, s) => n + s.characteristics.length, 0);
  console.log(`${label}: ${db.layout.length} services, ${chars} characteristics, ${db.server.attributes.length} attributes`);
  for (const mtu of [517, 23]) {
    const runs = 50;
    const times: number[] = [];
    let requests = 0;
    for (let i = 0; i < runs; i++) {
      const r = await once(db, mtu, 'blewire');
      times.push(r.ms);
      requests = r.requests;
    }
    times.sort((a, b) => a - b);
    const naive = await once(db, mtu, 'naive');
    const cache = new MemoryGattCache();
    await once(db, mtu, 'blewire', cache);
    const hit = await once(db, mtu, 'cache-hit', cache);
    console.log(`  ATT_MTU ${String(mtu).padStart(3)}: ${String(requests).padStart(3)} round trips (naive per-service: ${naive.requests}; cache hit: ${hit.requests}), ` +
      `wall ${times[runs >> 1]!.toFixed(2)} ms median / ${times[0]!.toFixed(2)} ms best of ${runs} (in-memory link, no air time)`);
  }
}

export async function bench(): Promise<void> {
  await measure("BlueZ example server replica", bluezExampleServices());
  // With a GATT service (Service Changed, Client Supported Features, Database Hash) so it can be cached.
  const gattService: ServiceDef = { uuid: 0x1801, characteristics: [
    { uuid: 0x2a05, properties: ['indicate'] }, { uuid: 0x2b29, properties: ['read', 'write'] }, { uuid: 0x2b2a, properties: ['read'] },
  ] };
  await measure('synthetic 30 services / 200 characteristics + GATT service', [gattService, ...syntheticServices(30, 200)]);
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
