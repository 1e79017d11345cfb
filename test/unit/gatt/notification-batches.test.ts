// Pins notificationBatches() and subscription.batches() (issue 14): what arrives in one turn comes
// as one batch; back-pressure is the subscription's bounded buffer (the oldest dropped beyond it,
// counted); steps called without waiting queue in order; the subscription or the link ending settles
// every waiting step (values that arrived before the end first, then the error once, then done), so
// no promise is left pending and no timer is armed; the CCCD is written back when the loop ends.
import { describe, expect, test } from 'vitest';
import { DisconnectedError } from '../../../src/errors.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { encodeAtt } from '../../../src/att/pdus.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

async function setup() {
  const fp = fakePeripheral(new GattDatabase(bluezExampleServices()));
  const client = new GattClient(fp.pair.central, { clock: fp.clock, serviceChanged: false, robustCaching: false });
  const hrm = await client.characteristic('heart_rate', 'heart_rate_measurement');
  /**
   * Notifications of the heart-rate measurement sent back to back without waiting: the link delivers
   * them one microtask each, all before anything the loop does with the first (one turn's worth).
   */
  const burst = (...bpm: number[]): void => {
    for (const v of bpm) void fp.pair.peripheral.send(encodeAtt({ kind: 'handleValueNtf', handle: hrm.handle, value: Uint8Array.of(0, v) }));
  };
  return { ...fp, client, hrm, burst };
}

const bpms = (batch: Uint8Array[] | undefined): number[] => (batch ?? []).map(v => v[1]!);

describe('notification batches', () => {
  test("one turn's arrivals come as one batch to the waiting step; the next turn's as the next", async () => {
    const { link, hrm, burst, clock } = await setup();
    const it = hrm.notificationBatches();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    burst(60, 61, 62, 63, 64);
    expect(bpms((await first).value as Uint8Array[])).toEqual([60, 61, 62, 63, 64]);
    const second = it.next();
    burst(65, 66);
    expect(bpms((await second).value as Uint8Array[])).toEqual([65, 66]);
    expect(clock.pendingTimers).toBe(0);
    await it.return();
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
  });

  test('back-pressure: more arrivals between two steps than the buffer holds: the step gets the newest, the oldest are dropped and counted', async () => {
    const { link, hrm, burst } = await setup();
    const sub = await hrm.subscribe(undefined, { buffer: 4 });
    await link.cccdWritten(hrm.cccd!.handle, 1);
    const it = sub.batches();
    burst(70, 71, 72, 73, 74, 75, 76, 77, 78, 79);
    await link.cccdWritten(hrm.cccd!.handle, 1); // a round trip: everything above has been delivered
    expect(bpms((await it.next()).value)).toEqual([76, 77, 78, 79]);
    expect(sub.dropped).toBe(6);
    // The buffer starts empty again: a smaller burst comes whole and drops nothing more.
    burst(80, 81, 82);
    expect(bpms((await it.next()).value)).toEqual([80, 81, 82]);
    expect(sub.dropped).toBe(6);
    await sub.unsubscribe();
  });

  test('a batch is the buffer handed over: the loop may keep or change it, later values go to a new one', async () => {
    const { link, hrm, burst } = await setup();
    const sub = await hrm.subscribe();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    const it = sub.batches();
    burst(90, 91);
    const a = (await it.next()).value!;
    a.length = 0;
    burst(92);
    const b = (await it.next()).value!;
    expect(b).not.toBe(a);
    expect(bpms(b)).toEqual([92]);
    await sub.unsubscribe();
  });

  test('steps called without waiting queue in order; the link ending settles each: values first, then the error once, then done', async () => {
    const { pair, link, hrm, burst } = await setup();
    const it = hrm.notificationBatches();
    const steps = [it.next()];
    await link.cccdWritten(hrm.cccd!.handle, 1);
    steps.push(it.next(), it.next(), it.next());
    burst(100, 101);
    expect(bpms((await steps[0]!).value as Uint8Array[])).toEqual([100, 101]);
    // Values and the link's end in one turn: the waiting step gets the values, the next the error.
    burst(102, 103);
    queueMicrotask(() => pair.disconnect());
    const settled = await Promise.allSettled(steps.slice(1));
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { value: [Uint8Array.of(0, 102), Uint8Array.of(0, 103)], done: false } });
    expect(settled[1]!.status).toBe('rejected');
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(DisconnectedError);
    expect(settled[2]).toEqual({ status: 'fulfilled', value: { value: undefined, done: true } });
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('return() while steps wait: each resolves done, the CCCD is written back, nothing else arrives', async () => {
    const { link, hrm, burst, clock } = await setup();
    const it = hrm.notificationBatches();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    burst(110);
    await first;
    const waiting = [it.next(), it.next()];
    expect(await it.return()).toEqual({ value: undefined, done: true });
    expect(await Promise.all(waiting)).toEqual([{ value: undefined, done: true }, { value: undefined, done: true }]);
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(clock.pendingTimers).toBe(0);
  });

  test('return() before the subscribe completes: no step is left waiting and the CCCD ends at 0', async () => {
    const { link, hrm } = await setup();
    const it = hrm.notificationBatches();
    const first = it.next(); // starts the subscribe (CCCD write in flight)
    const ret = it.return();
    expect(await first).toEqual({ value: undefined, done: true });
    expect(await ret).toEqual({ value: undefined, done: true });
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
  });

  test('notifications(): steps called without waiting get successive values; break writes the CCCD back', async () => {
    const { link, hrm, burst } = await setup();
    const it = hrm.notifications();
    const steps = [it.next()];
    await link.cccdWritten(hrm.cccd!.handle, 1);
    steps.push(it.next(), it.next());
    burst(120, 121, 122, 123);
    expect((await Promise.all(steps)).map(r => r.value![1])).toEqual([120, 121, 122]);
    expect((await it.next()).value![1]).toBe(123);
    const got: number[] = [];
    burst(124, 125);
    for await (const v of it) { got.push(v[1]!); if (got.length === 2) break; }
    expect(got).toEqual([124, 125]);
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
  });
});
