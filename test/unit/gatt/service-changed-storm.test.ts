// Service Changed storm (issue 15): a peer indicating Service Changed 100 times a second must not
// queue a rediscovery per indication. Pending ranges merge into one, one rediscovery runs at a time,
// and they start at least REDISCOVERY_MIN_INTERVAL_MS apart; counted in ATT requests on the fake clock.
import { expect, test } from 'vitest';
import { FakeClock } from '../../../src/clock.js';
import { GattClient, REDISCOVERY_MIN_INTERVAL_MS } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

const SC_VALUE = 0x000a; // Service Changed value handle of the BlueZ example (CCCD 0x000b)
const range = (s: number, e: number): Uint8Array => Uint8Array.of(s & 0xff, s >> 8, e & 0xff, e >> 8);
const flush = async (): Promise<void> => { for (let i = 0; i < 50; i++) await Promise.resolve(); };

async function setup() {
  const clock = new FakeClock();
  const fp = fakePeripheral(new GattDatabase(bluezExampleServices()), { clock });
  const client = new GattClient(fp.pair.central, { clock, serviceChanged: true, robustCaching: false });
  await client.services();
  await client.ready;
  expect(fp.link.cccd(0x0b)).toBe(2);
  return { ...fp, clock, client };
}

test('one indication: one rediscovery of the affected services', async () => {
  const { link, client } = await setup();
  const before = link.requests;
  await link.bearer.indicate(SC_VALUE, range(0x15, 0x20));
  await client.settled;
  expect(client.stats.rediscoveries).toBe(1);
  expect(link.requests - before).toBeGreaterThan(0);
});

test('100 indications/s for 20 s: at most one rediscovery per interval, merged ranges, done soon after', async () => {
  const { link, client, clock } = await setup();
  // What one rediscovery of the hull of the storm's ranges costs.
  const probe = await setup();
  const p0 = probe.link.requests;
  await probe.link.bearer.indicate(SC_VALUE, range(0x12, 0x20));
  await probe.client.settled;
  const perRediscovery = probe.link.requests - p0;

  const before = link.requests;
  const heap0 = process.memoryUsage().heapUsed;
  const seconds = 20;
  for (let i = 0; i < 100 * seconds; i++) {
    // Overlapping ranges: Heart Rate, Battery, and both (and Device Information now and then).
    const r = i % 3 === 0 ? range(0x15, 0x1c) : i % 3 === 1 ? range(0x1d, 0x20) : range(0x12, 0x20);
    await link.bearer.indicate(SC_VALUE, r);
    await flush();
    clock.advance(10);
  }
  const rediscoveries = client.stats.rediscoveries;
  expect(rediscoveries).toBeLessThanOrEqual(seconds * 1000 / REDISCOVERY_MIN_INTERVAL_MS + 1);
  expect(rediscoveries).toBeGreaterThanOrEqual(seconds - 1);
  expect(link.requests - before).toBeLessThanOrEqual(rediscoveries * perRediscovery);
  // The storm is over: what is pending runs within one interval, then nothing more.
  const settled = client.settled;
  clock.advance(REDISCOVERY_MIN_INTERVAL_MS);
  await flush();
  await settled;
  const after = link.requests;
  clock.advance(10 * REDISCOVERY_MIN_INTERVAL_MS);
  await flush();
  expect(link.requests).toBe(after);
  expect(clock.pendingTimers).toBe(0);
  expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(32 * 1024 * 1024);
  // The tree is whole and usable.
  const names = (await client.services()).map(s => s.name);
  expect(names).toEqual(['generic_access', 'generic_attribute', 'device_information', 'heart_rate', 'battery_service', undefined]);
  expect(await (await client.characteristic('battery_service', 'battery_level')).read()).toEqual(Uint8Array.of(100));
});

test('a disconnect during a storm drops what is pending and leaves no timer', async () => {
  const { link, client, clock, pair } = await setup();
  for (let i = 0; i < 10; i++) {
    await link.bearer.indicate(SC_VALUE, range(0x15, 0x20));
    await flush();
  }
  expect(clock.pendingTimers).toBe(1); // the next start, one interval after the first
  pair.disconnect();
  await flush();
  await client.settled;
  expect(clock.pendingTimers).toBe(0);
});
