// Queue bounds a peer feeds (issue 15, "audit every other queue"): a subscription's backlog for an
// iterator that does not read is SUBSCRIPTION_BUFFER_DEFAULT values, or the caller's `buffer`, which
// must be an integer 0..SUBSCRIPTION_BUFFER_MAX (before, NaN or Infinity made it unbounded); callers
// waiting on one pairing are at most MAX_PAIR_WAITERS.
import { afterEach, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { ArgumentError, InvalidStateError } from '../../src/errors.js';
import { MAX_PAIR_WAITERS } from '../../src/link/pairing.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { SUBSCRIPTION_BUFFER_DEFAULT, SUBSCRIPTION_BUFFER_MAX } from '../../src/gatt/client.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';

const open: Adapter[] = [];
afterEach(async () => { for (const a of open.splice(0)) await a.close(); });

async function up(): Promise<{ sim: Simulator; adapter: Adapter }> {
  const sim = createSimulator({ name: 'bounds', peripherals: [{
    name: 'Fast', address: 'D4:1E:35:7A:00:0B', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Fast' }, intervalMs: 50, rssi: -50 },
    gatt: [{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }],
    notifications: [{ characteristic: 0xfff1, everyMs: 10, generator: { kind: 'counter', bytes: 2 } }],
  }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock });
  open.push(adapter);
  return { sim, adapter };
}

test('a subscription buffer that is not an integer 0..SUBSCRIPTION_BUFFER_MAX is an ArgumentError, nothing written', async () => {
  const { adapter } = await up();
  const conn = await adapter.connect({ address: 'D4:1E:35:7A:00:0B', addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic(0xfff0, 0xfff1);
  for (const buffer of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, SUBSCRIPTION_BUFFER_MAX + 1]) {
    await expect(ch.subscribe(undefined, { buffer }), String(buffer)).rejects.toBeInstanceOf(ArgumentError);
  }
  expect(SUBSCRIPTION_BUFFER_DEFAULT).toBeLessThanOrEqual(SUBSCRIPTION_BUFFER_MAX);
});

test.each([[4], [undefined]])('an iterator that does not read keeps at most its buffer (%s), the newest, and counts the rest', async buffer => {
  const { sim, adapter } = await up();
  const conn = await adapter.connect({ address: 'D4:1E:35:7A:00:0B', addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic(0xfff0, 0xfff1);
  const sub = await ch.subscribe(undefined, buffer === undefined ? {} : { buffer });
  const limit = buffer ?? SUBSCRIPTION_BUFFER_DEFAULT;
  await sim.clock.delay(10 * (limit + 100)); // more than `limit` notifications arrive unread
  expect(sub.dropped).toBeGreaterThan(0);
  const it = sub[Symbol.asyncIterator]();
  const kept: number[] = [];
  for (let i = 0; i < limit; i++) {
    const r = await it.next();
    kept.push(r.value![0]! | (r.value![1]! << 8));
  }
  // The kept values are consecutive: the oldest were dropped, not the newest.
  for (let i = 1; i < kept.length; i++) expect((kept[i]! - kept[i - 1]! + 0x10000) % 0x10000).toBe(1);
  await sub.unsubscribe();
});

test('at most MAX_PAIR_WAITERS callers wait on one pairing; the next is refused at once, the others all get its outcome', async () => {
  const sim = createSimulator({ name: 'pair-waiters', peripherals: [{ ...HEART_RATE_SENSOR, notifications: [], pairing: {} }] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: new MemoryBondStore() });
  open.push(adapter);
  const conn = await adapter.connect({ address: HEART_RATE_SENSOR.address, type: 'random' } as never, { timeout: 5000 });
  const waiting = Array.from({ length: MAX_PAIR_WAITERS }, () => conn.pair());
  await expect(conn.pair()).rejects.toBeInstanceOf(InvalidStateError);
  const states = await Promise.all(waiting);
  for (const s of states) expect(s).toMatchObject({ encrypted: true, bonded: true });
});
