// The advertiser against the simulated controller: the HCI commands it sends (legacy and extended
// families), what the controller holds afterwards (parameters, data, enable state), fragmentation of
// long data, name shortening and the EADTOOLONG error, several sets at once, update / stop / dispose,
// and the ends of a set (duration, Advertising Set Terminated).
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../../src/api/adapter.js';
import { parseAd } from '../../../src/gap/ad.js';
import { AdvProps } from '../../../src/gap/advertiser.js';
import { AdTooLongError, ArgumentError, InvalidStateError } from '../../../src/errors.js';
import { createSimulator } from '../../../src/sim/index.js';

async function open(controller: { extended?: boolean; numAdvertisingSets?: number } = {}, randomAddress?: string) {
  const sim = createSimulator({ name: 'adv', peripherals: [], controller });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, ...(randomAddress ? { randomAddress } : {}) });
  return { sim, adapter, ctl: sim.controller };
}

describe('advertiser on an extended controller', () => {
  test('legacy PDUs through the extended commands: parameters, AD from the table, enable', async () => {
    const { adapter, ctl } = await open();
    const set = await adapter.advertise({ name: 'blewire-test', services: [0x180d], interval: 100 });
    const s = ctl.advSets.get(set.handle)!;
    expect(s.enabled).toBe(true);
    // ADV_IND as a legacy PDU: connectable | scannable | legacy (Vol 4, Part E, 7.8.53).
    expect(s.params!.advertisingEventProperties).toBe(AdvProps.connectable | AdvProps.scannable | AdvProps.legacy);
    expect(s.params!.primaryAdvertisingIntervalMin).toBe(160); // 100 ms / 0.625
    expect(s.params!.ownAddressType).toBe(0);
    const ad = parseAd(s.data);
    expect(ad.name).toBe('blewire-test');
    expect(ad.flags).toBe(0x06);
    expect(ad.serviceUuids).toEqual(['0000180d-0000-1000-8000-00805f9b34fb']);
    expect(ctl.commandLog.filter(k => k.startsWith('leSetAdvertising') || k === 'leSetAdvertisingParameters')).toEqual([]);
    await adapter.close();
  });

  test('several sets at once, each with its handle; stop removes one, dispose the other', async () => {
    const { adapter, ctl } = await open({ numAdvertisingSets: 2 });
    const a = await adapter.advertise({ name: 'a' });
    const b = await adapter.advertise({ name: 'b', connectable: false });
    expect([a.handle, b.handle]).toEqual([0, 1]);
    expect(ctl.advSets.get(1)!.params!.advertisingEventProperties).toBe(AdvProps.legacy); // ADV_NONCONN_IND
    await expect(adapter.advertise({ name: 'c' })).rejects.toBeInstanceOf(InvalidStateError);
    await a.stop();
    expect(ctl.advSets.has(0)).toBe(false);
    expect(adapter.advertising.map(s => s.handle)).toEqual([1]);
    await b[Symbol.asyncDispose]();
    expect(ctl.advSets.size).toBe(0);
    await adapter.close();
  });

  test('data longer than one command is sent in fragments of 251 octets (first / intermediate / last)', async () => {
    const { adapter, ctl } = await open();
    const big = new Uint8Array(600).map((_, i) => i & 0xff);
    const set = await adapter.advertise({ manufacturerData: [[0xffff, big.subarray(0, 240)], [0x0059, big.subarray(240, 480)], [0x004c, big.subarray(480)]], connectable: false });
    expect(set.legacy).toBe(false);
    const s = ctl.advSets.get(set.handle)!;
    expect(s.params!.advertisingEventProperties & AdvProps.legacy).toBe(0);
    expect(ctl.commandLog.filter(k => k === 'leSetExtendedAdvertisingData')).toHaveLength(3);
    expect(s.data).toEqual(set.advertisingData);
    expect(s.data.length).toBe(3 + 4 + 240 + 4 + 240 + 4 + 120 - 3); // no flags: non-connectable, non-scannable
    expect(parseAd(s.data).manufacturerData.get(0x004c)).toEqual(big.subarray(480));
    await adapter.close();
  });

  test('a name that does not fit is shortened; data that cannot fit says by how much', async () => {
    const { adapter, ctl } = await open();
    const set = await adapter.advertise({ name: 'a very long device name indeed', services: ['0000aaaa-1111-2222-3333-444455556666'], legacy: true });
    const ad = parseAd(ctl.advSets.get(set.handle)!.data);
    expect(ad.nameComplete).toBe(false);
    expect(ctl.advSets.get(set.handle)!.data.length).toBe(31);
    expect('a very long device name indeed'.startsWith(ad.name!)).toBe(true);
    await set.stop();
    const err = await adapter.advertise({ legacy: true, manufacturerData: [[0x0059, new Uint8Array(30)]] }).then(() => undefined, (e: unknown) => e as AdTooLongError);
    expect(err).toBeInstanceOf(AdTooLongError);
    expect(err!.code).toBe('EADTOOLONG');
    expect(err!.excess).toBe(3 + 4 + 30 - 31);
    expect(err!.message).toMatch(/6 more than the 31 available/);
    await adapter.close();
  });

  test('update() changes the data of an advertising set in place; parameters re-enable it', async () => {
    const { adapter, ctl } = await open();
    const set = await adapter.advertise({ name: 'one' });
    ctl.commandLog.length = 0;
    await set.update({ name: 'two' });
    expect(ctl.commandLog).toEqual(['leSetExtendedAdvertisingData']);
    expect(parseAd(ctl.advSets.get(set.handle)!.data).name).toBe('two');
    ctl.commandLog.length = 0;
    await set.update({ interval: 500 });
    expect(ctl.commandLog).toEqual(['leSetExtendedAdvertisingEnable', 'leSetExtendedAdvertisingParameters',
      'leSetExtendedAdvertisingData', 'leSetExtendedScanResponseData', 'leSetExtendedAdvertisingEnable']);
    expect(ctl.advSets.get(set.handle)!.params!.primaryAdvertisingIntervalMin).toBe(800);
    expect(ctl.advSets.get(set.handle)!.enabled).toBe(true);
    await adapter.close();
  });

  test('duration: the controller ends the set with Advertising Set Terminated (0x3C) and the handle says timeout', async () => {
    const { adapter, sim } = await open();
    const set = await adapter.advertise({ name: 'short', duration: 1000, txPower: 5, includeTxPower: true });
    expect(set.txPower).toBe(5);
    expect(parseAd(set.advertisingData).txPower).toBe(5);
    const ended = new Promise(resolve => set.onEnd(resolve));
    await new Promise(r => sim.clock.setTimeout(() => r(undefined), 1100));
    expect(await ended).toBe('timeout');
    expect(set.enabled).toBe(false);
    expect(adapter.advertising).toEqual([]);
    await adapter.close();
  });

  test('own address type random uses the adapter address for the set (7.8.52); bad options are ArgumentErrors', async () => {
    const { adapter, ctl } = await open({}, 'C1:02:03:04:05:06');
    const set = await adapter.advertise({ name: 'r' });
    expect(ctl.advSets.get(set.handle)!.randomAddress).toBe('C1:02:03:04:05:06');
    expect(ctl.advSets.get(set.handle)!.params!.ownAddressType).toBe(1);
    await expect(adapter.advertise({ interval: 5 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(adapter.advertise({ connectable: false, directed: { address: 'C0:00:00:00:00:01' } })).rejects.toBeInstanceOf(ArgumentError);
    await adapter.close();
  });
});

describe('advertiser on a legacy controller', () => {
  test('legacy commands, one set at a time, scan response', async () => {
    const { adapter, ctl } = await open({ extended: false });
    const set = await adapter.advertise({ name: 'legacy', scanResponse: { manufacturerData: [[0xffff, 'hi']] } });
    // A Core 5 controller whose mask does not say is tried with the extended command once (Unknown HCI Command).
    expect(ctl.commandLog.filter(k => k.startsWith('leSet') && k.includes('dvertis') || k === 'leSetScanResponseData')).toEqual([
      'leSetExtendedAdvertisingParameters', 'leSetAdvertisingParameters', 'leSetAdvertisingData', 'leSetScanResponseData', 'leSetAdvertisingEnable']);
    expect(ctl.legacyAdvertising.enabled).toBe(true);
    expect((ctl.legacyAdvertising.params as { advertisingType: number }).advertisingType).toBe(0);
    expect(parseAd(ctl.legacyAdvertising.scanRsp).manufacturerData.get(0xffff)).toEqual(new TextEncoder().encode('hi'));
    await expect(adapter.advertise({ name: 'second' })).rejects.toBeInstanceOf(InvalidStateError);
    await expect(set.update({ legacy: false })).rejects.toBeInstanceOf(ArgumentError);
    await set.stop();
    expect(ctl.legacyAdvertising.enabled).toBe(false);
    await adapter.close();
  });
});
