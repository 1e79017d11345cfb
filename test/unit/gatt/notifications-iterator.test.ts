// Pins characteristic.notifications() ending every way an async generator can end: break (return),
// throw() from the consumer, and the link dropping while next() waits. Each leaves the peer's CCCD as
// it should be and no subscriber behind.
import { describe, expect, test } from 'vitest';
import { DisconnectedError } from '../../../src/errors.js';
import { GattClient } from '../../../src/gatt/client.js';
import { GattDatabase } from '../../../src/gatt/server-db.js';
import { bluezExampleServices, fakePeripheral } from '../../helpers/fake-peripheral.js';

async function setup() {
  const fp = fakePeripheral(new GattDatabase(bluezExampleServices()));
  const client = new GattClient(fp.pair.central, { clock: fp.clock, serviceChanged: false, robustCaching: false });
  const hrm = await client.characteristic('heart_rate', 'heart_rate_measurement');
  return { ...fp, client, hrm };
}

describe('notifications() iterator', () => {
  test('values in order; return() writes the CCCD back and ends the iterator', async () => {
    const { link, hrm } = await setup();
    const it = hrm.notifications();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    await link.notify(0x2a37, Uint8Array.of(0, 61));
    await link.notify(0x2a37, Uint8Array.of(0, 62));
    expect((await first).value).toEqual(Uint8Array.of(0, 61));
    expect((await it.next()).value).toEqual(Uint8Array.of(0, 62));
    expect(await it.return()).toEqual({ value: undefined, done: true });
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('throw() rejects with the thrown error, writes the CCCD back and ends the iterator', async () => {
    const { link, hrm } = await setup();
    const it = hrm.notifications();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    await link.notify(0x2a37, Uint8Array.of(0, 70));
    expect((await first).value).toEqual(Uint8Array.of(0, 70));
    const boom = new Error('consumer gave up');
    await expect(it.throw(boom)).rejects.toBe(boom);
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('the link dropping while next() waits rejects it with DisconnectedError', async () => {
    const { pair, link, hrm } = await setup();
    const it = hrm.notifications();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    await link.notify(0x2a37, Uint8Array.of(0, 80));
    expect((await first).value).toEqual(Uint8Array.of(0, 80));
    const waiting = it.next();
    pair.disconnect();
    await expect(waiting).rejects.toBeInstanceOf(DisconnectedError);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('notificationBatches(): what arrived since the last step comes as one batch, in order; a waiting step takes the next arrivals; return() writes the CCCD back', async () => {
    const { link, hrm } = await setup();
    const it = hrm.notificationBatches();
    const first = it.next();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    await link.notify(0x2a37, Uint8Array.of(0, 90));
    expect((await first).value).toEqual([Uint8Array.of(0, 90)]);
    // Nobody waiting: three values queue up and the next step takes them together.
    await link.notify(0x2a37, Uint8Array.of(0, 91));
    await link.notify(0x2a37, Uint8Array.of(0, 92));
    await link.notify(0x2a37, Uint8Array.of(0, 93));
    expect((await it.next()).value).toEqual([Uint8Array.of(0, 91), Uint8Array.of(0, 92), Uint8Array.of(0, 93)]);
    expect(await it.return()).toEqual({ value: undefined, done: true });
    expect(link.cccd(hrm.cccd!.handle)).toBe(0);
  });

  test("a subscription's batches end with the link: a waiting step rejects with DisconnectedError, once; the iterator is done afterwards", async () => {
    const { pair, link, hrm } = await setup();
    const sub = await hrm.subscribe();
    await link.cccdWritten(hrm.cccd!.handle, 1);
    const batches = sub.batches();
    const waiting = batches.next();
    pair.disconnect();
    await expect(waiting).rejects.toBeInstanceOf(DisconnectedError);
    expect(await batches.next()).toEqual({ value: undefined, done: true });
    // A new iterator of the ended subscription reports the end once too.
    const again = sub.batches();
    await expect(again.next()).rejects.toBeInstanceOf(DisconnectedError);
    expect(await again.next()).toEqual({ value: undefined, done: true });
    expect(sub.active).toBe(false);
  });
});
