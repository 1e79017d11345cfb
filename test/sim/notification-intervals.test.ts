// Notification sources with per-value delays (NotificationSource.intervalsMs): value i leaves the
// peer intervalsMs[i % length] after value i − 1, the first after the CCCD enable; the index pairs
// value and delay across cycles and resubscription; the host sees each at the next connection event.
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator } from '../../src/sim/index.js';
import type { NotificationSource } from '../../src/sim/types.js';

async function stream(source: Omit<NotificationSource, 'characteristic' | 'next'>, counts: number[]) {
  const emitted: Array<{ i: number; atMs: number }> = [];
  const sim = createSimulator({ name: 'intervals', peripherals: [{
    name: 'Ticker', address: 'C1:00:00:00:00:07', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Ticker' }, intervalMs: 20 },
    gatt: [{ uuid: 0xfff0, characteristics: [{ uuid: 0xfff1, properties: ['notify'] }] }],
    notifications: [{ ...source, characteristic: 0xfff1, next: (i, atMs) => { emitted.push({ i, atMs }); return Uint8Array.of(i); } }],
  }] });
  const adapter = await Adapter.open({ transport: sim.transport });
  const received: Array<{ value: number; atMs: number }[]> = [];
  try {
    const conn = await adapter.connect({ address: 'C1:00:00:00:00:07', addressType: 'random' }, { timeout: 5_000, intervalMin: 7.5, intervalMax: 7.5 });
    const c = await conn.characteristic(0xfff0, 0xfff1);
    for (const n of counts) { // one subscription per entry, unsubscribing in between
      const got: Array<{ value: number; atMs: number }> = [];
      for await (const v of c.notifications()) {
        got.push({ value: v[0]!, atMs: sim.now() });
        if (got.length === n) break;
      }
      received.push(got);
    }
    await conn.disconnect();
  } finally {
    await adapter.close();
  }
  return { emitted, received };
}

const gaps = (t: number[]): number[] => t.slice(1).map((x, i) => Math.round((x - t[i]!) * 1000) / 1000);

describe('NotificationSource.intervalsMs', () => {
  test('each value after its own delay, cycling with the values; 0 means the same instant', async () => {
    // 8 values: the 8th shares its instant with the 7th, so neither outruns the unsubscribe.
    const { emitted, received } = await stream({ everyMs: 1000, intervalsMs: [100, 0, 250.5] }, [8]);
    expect(emitted.map(e => e.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gaps(emitted.map(e => e.atMs))).toEqual([0, 250.5, 100, 0, 250.5, 100, 0]);
    expect(received[0]!.map(r => r.value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Values emitted at the same instant reach the host in the same connection event.
    expect(received[0]![1]!.atMs).toBe(received[0]![0]!.atMs);
    for (const [k, r] of received[0]!.entries()) {
      expect(r.atMs - emitted[k]!.atMs).toBeGreaterThanOrEqual(0);
      expect(r.atMs - emitted[k]!.atMs).toBeLessThanOrEqual(7.5);
    }
  });

  test('resubscribing goes on with the next value and its own delay', async () => {
    const { emitted } = await stream({ everyMs: 1000, intervalsMs: [100, 200, 300] }, [2, 2]);
    expect(emitted.map(e => e.i)).toEqual([0, 1, 2, 3]);
    expect(gaps(emitted.map(e => e.atMs)).slice(0, 1)).toEqual([200]);
    // After resubscribing: value 2 (its delay 300 ms counts from the new CCCD write, so the gap from
    // value 1 is longer), then value 3 100 ms later: delay i stays with value i.
    expect(gaps(emitted.map(e => e.atMs))[1]).toBeGreaterThan(300);
    expect(gaps(emitted.map(e => e.atMs))[2]).toBe(100);
  });

  test('an empty list means everyMs', async () => {
    const { emitted } = await stream({ everyMs: 40, intervalsMs: [] }, [3]);
    expect(gaps(emitted.map(e => e.atMs))).toEqual([40, 40]);
  });
});
