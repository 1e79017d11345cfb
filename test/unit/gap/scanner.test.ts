// Pins the scanner on a scripted controller: scan commands on the wire (legacy and extended, active and
// passive, fallback), scan-response merge, extended fragment reassembly, host-side duplicate handling,
// every filter kind, session end by timeout / abort / stop, pausing for the scheduler, the bounded
// registry, and Hardware Error ending sessions.
import { describe, expect, test } from 'vitest';
import { FakeClock, systemClock } from '../../../src/clock.js';
import { fromHex } from '../../../src/bytes/hex.js';
import { AbortError } from '../../../src/errors.js';
import { HciHost } from '../../../src/hci/host.js';
import { MAX_FRAGMENTS_IN_PROGRESS, MAX_REASSEMBLED, Scanner, type Advertisement } from '../../../src/gap/scanner.js';
import { encodeEvent } from '../../../src/hci/packets.js';
import { commandMask, FakeController } from '../hci/host-fake-controller.js';

const A = 'C0:00:00:00:00:01';
const B = 'C0:00:00:00:00:02';
// Flags, 16-bit UUID list [0x180d, 0x180f], Complete Local Name "Polar H10"
const AD_HR = fromHex('020106 05030d180f18 0a09506f6c6172204831 30'.replace(/ /g, ''));
// Manufacturer data: company 0x004c, then 02 15 aa bb
const AD_MFR = fromHex('07ff4c000215aabb');
// Service data 0xfeaa: 10 20 30
const AD_SVC = fromHex('0616aafe102030');
const SR_NAME = fromHex('0708536e6f6f7079'); // Shortened Local Name "Snoopy"

function legacy(address: string, eventType: number, data: Uint8Array, rssi = -50, addressType = 1) {
  return { kind: 'leAdvertisingReport' as const, reports: [{ eventType, addressType, address, data, rssi }] };
}

function ext(address: string, eventType: number, data: Uint8Array, rssi = -60, sid = 1) {
  return {
    kind: 'leExtendedAdvertisingReport' as const,
    reports: [{
      eventType, addressType: 1, address, primaryPhy: 1, secondaryPhy: 2, advertisingSid: sid, txPower: 4, rssi,
      periodicAdvertisingInterval: 0, directAddressType: 0, directAddress: '00:00:00:00:00:00', data,
    }],
  };
}

async function setup(opts: { extended?: boolean; capacity?: number } = {}) {
  const ctl = new FakeController();
  if (opts.extended) ctl.supportedCommands = commandMask([[37, 5], [37, 6], [37, 7]]);
  const clock = new FakeClock();
  const host = new HciHost(ctl, { clock });
  await host.init();
  const scanner = new Scanner(host, { clock, registryCapacity: opts.capacity });
  return { ctl, clock, host, scanner };
}

function collect(s: { onAdvertisement(fn: (a: Advertisement) => void): unknown }): Advertisement[] {
  const out: Advertisement[] = [];
  s.onAdvertisement(a => out.push(a));
  return out;
}

describe('scanner', () => {
  test('legacy active scan: parameters and enable on the wire, controller duplicate filter off', async () => {
    const { ctl, scanner } = await setup();
    const s = scanner.scan({ interval: 100, window: 50 });
    await ctl.sent('leSetScanEnable');
    const n = ctl.wire.length;
    // LE Set Scan Parameters: active, interval 160 (100 ms), window 80 (50 ms), public, accept all
    expect(ctl.wire[n - 2]).toBe('010b2007' + '01' + 'a000' + '5000' + '00' + '00');
    expect(ctl.wire[n - 1]).toBe('010c2002' + '01' + '00');
    s.stop();
    await ctl.sent('leSetScanEnable');
    expect(ctl.wire[ctl.wire.length - 1]).toBe('010c20020000');
  });

  test('active: ADV_IND is held for its SCAN_RSP and reported merged, parsed lazily', async () => {
    const { ctl, scanner } = await setup();
    const s = scanner.scan({});
    const got = collect(s);
    await scanner.settle();
    ctl.inject(legacy(A, 0, AD_HR));
    ctl.inject(legacy(A, 4, SR_NAME));
    await scanner.settle();
    await Promise.resolve();
    expect(got.length).toBe(1);
    const ad = got[0]!;
    expect(ad.address).toBe(A);
    expect(ad.addressType).toBe('random');
    expect(ad.rssi).toBe(-50);
    expect(ad.connectable).toBe(true);
    expect(ad.name).toBe('Polar H10'); // the complete name wins over the scan response's shortened one
    expect(ad.parsed.structures.length).toBe(4); // three from ADV_IND, one from SCAN_RSP
    expect(ad.scanResponse).toEqual(SR_NAME);
    expect(ad.serviceUuids).toEqual(['0000180d-0000-1000-8000-00805f9b34fb', '0000180f-0000-1000-8000-00805f9b34fb']);
  });

  test('the stored AD is the device\'s own copy, not a view of the transport\'s chunk', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: false }));
    await scanner.settle();
    // As a socket transport delivers it: a Buffer that is a view into a larger read chunk, whose
    // slice() would be a view too and keep the whole chunk alive with the device.
    const event = encodeEvent(legacy(A, 0, AD_HR));
    const chunk = Buffer.alloc(4096, 0xee);
    chunk.set(event, 100);
    ctl.deliver(chunk.subarray(100, 100 + event.length));
    await scanner.settle();
    await Promise.resolve();
    expect(got.length).toBe(1);
    expect([...got[0]!.data]).toEqual([...AD_HR]);
    expect(got[0]!.data.buffer).not.toBe(chunk.buffer);
    expect(got[0]!.data.byteLength).toBe(AD_HR.length);
    expect(got[0]!.data.buffer.byteLength).toBeLessThanOrEqual(4096);
    chunk.fill(0); // the transport reuses its buffer: the device's data must not change
    expect([...got[0]!.data]).toEqual([...AD_HR]);
  });

  test('data, scan response and the parsed values are views of the device\'s one copy', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: true }));
    await scanner.settle();
    const data = fromHex('020106 06ff4c00070809'.replace(/ /g, ''));
    ctl.deliver(encodeEvent(legacy(A, 0, data)));
    ctl.deliver(encodeEvent(legacy(A, 4, SR_NAME)));
    await scanner.settle();
    await Promise.resolve();
    const ad = got[0]!;
    const copy = ad.data.buffer;
    expect(ad.scanResponse!.buffer).toBe(copy);
    expect(ad.manufacturerData.get(0x004c)!.buffer).toBe(copy);
    // In the copy, the scan response follows the data, and the value its structure's header.
    expect(ad.scanResponse!.byteOffset).toBe(ad.data.byteOffset + ad.data.length);
    const value = ad.manufacturerData.get(0x004c)!;
    expect([...value]).toEqual([7, 8, 9]);
    expect(value.byteOffset).toBe(ad.data.byteOffset + data.indexOf(0xff) + 3);
    expect([...ad.scanResponse!]).toEqual([...SR_NAME]);
  });

  test('a held advertisement is reported without scan response once the wait passes', async () => {
    const { ctl, scanner, clock } = await setup();
    const got = collect(scanner.scan({}));
    await scanner.settle();
    ctl.inject(legacy(A, 0, AD_HR));
    await Promise.resolve(); await Promise.resolve();
    expect(got.length).toBe(0);
    clock.advance(200);
    expect(got.length).toBe(1);
    expect(got[0]!.scanResponse).toBeUndefined();
  });

  test('passive scan reports at once and sends scan type 0', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: false }));
    const p = await ctl.sent('leSetScanParameters');
    expect(p).toMatchObject({ leScanType: 0 });
    await scanner.settle();
    ctl.inject(legacy(A, 3, AD_MFR, -70, 0));
    await scanner.settle();
    await Promise.resolve(); await Promise.resolve();
    expect(got.map(a => [a.addressType, a.connectable, a.manufacturerData.get(0x4c)])).toEqual([['public', false, fromHex('0215aabb')]]);
  });

  test('duplicates: reported again only on data change (or RSSI delta); duplicates:true reports all', async () => {
    const { ctl, scanner } = await setup();
    const dedup = collect(scanner.scan({ active: false }));
    const all = collect(scanner.scan({ active: false, duplicates: true }));
    const rssi = collect(scanner.scan({ active: false, rssiDelta: 10 }));
    await scanner.settle();
    ctl.inject(legacy(A, 3, AD_MFR, -50));
    ctl.inject(legacy(A, 3, AD_MFR, -55));
    ctl.inject(legacy(A, 3, AD_MFR, -65));
    ctl.inject(legacy(A, 3, AD_SVC, -65));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(dedup.map(a => a.rssi)).toEqual([-50, -65]);
    expect(all.map(a => a.rssi)).toEqual([-50, -55, -65, -65]);
    expect(rssi.map(a => a.rssi)).toEqual([-50, -65, -65]);
    expect(scanner.registry.get(A, 'random')!.rssi).toBe(-65);
    expect(scanner.registry.get(A, 'random')!.reports).toBe(4);
  });

  test('filters: services (list or service data), name, namePrefix, manufacturer mask, service data, address, rssi', async () => {
    const { ctl, scanner } = await setup();
    const mk = (f: object) => collect(scanner.scan({ active: false, duplicates: true, ...f }));
    const byService = mk({ services: ['heart_rate'] });
    const bySvcData = mk({ services: [0xfeaa] });
    const byName = mk({ name: 'Polar H10' });
    const byPrefix = mk({ namePrefix: 'Pol' });
    const byMfr = mk({ manufacturerData: [{ companyIdentifier: 0x4c, dataPrefix: Uint8Array.of(0x02, 0x10), mask: Uint8Array.of(0xff, 0xf0) }] });
    const byMfrMiss = mk({ manufacturerData: [{ companyIdentifier: 0x4c, dataPrefix: Uint8Array.of(0x03) }] });
    const bySd = mk({ serviceData: [{ service: 0xfeaa, dataPrefix: Uint8Array.of(0x10, 0x20) }] });
    const byAddr = mk({ address: 'c0-00-00-00-00-02' });
    const byRssi = mk({ rssi: -60 });
    const anyOf = mk({ filters: [{ name: 'nope' }, { services: ['0000feaa-0000-1000-8000-00805f9b34fb'] }] });
    await scanner.settle();
    ctl.inject(legacy(A, 3, AD_HR, -50));
    ctl.inject(legacy(B, 3, AD_SVC, -70));
    ctl.inject(legacy('C0:00:00:00:00:03', 3, AD_MFR, -40));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    const addrs = (l: Advertisement[]) => l.map(a => a.address.slice(-1));
    expect(addrs(byService)).toEqual(['1']);
    expect(addrs(bySvcData)).toEqual(['2']);
    expect(addrs(byName)).toEqual(['1']);
    expect(addrs(byPrefix)).toEqual(['1']);
    expect(addrs(byMfr)).toEqual(['3']);
    expect(addrs(byMfrMiss)).toEqual([]);
    expect(addrs(bySd)).toEqual(['2']);
    expect(addrs(byAddr)).toEqual(['2']);
    expect(addrs(byRssi)).toEqual(['1', '3']);
    expect(addrs(anyOf)).toEqual(['2']);
  });

  test('extended scanning: commands, fragment reassembly, truncated data, header TX power', async () => {
    const { ctl, scanner } = await setup({ extended: true });
    const got = collect(scanner.scan({ active: false, duplicates: true }));
    const p = await ctl.sent('leSetExtendedScanParameters');
    expect(p).toMatchObject({ ownAddressType: 0, scanningPhys: [{ phy: 1, scanType: 0, scanInterval: 96, scanWindow: 48 }] });
    await ctl.sent('leSetExtendedScanEnable');
    await scanner.settle();
    const long = new Uint8Array(300);
    long[0] = 0xff; long[1] = 0xff; long[2] = 0x59; long[3] = 0x00; // one manufacturer structure of 1 + 255 octets
    // Fragments: Data_Status 1 (more) twice, then 0 (complete): event type bits 5-6.
    ctl.inject(ext(A, 0x0020, long.subarray(0, 100)));
    ctl.inject(ext(B, 0x0000, AD_SVC));                   // another advertiser interleaves
    ctl.inject(ext(A, 0x0020, long.subarray(100, 200)));
    ctl.inject(ext(A, 0x0000, long.subarray(200, 256)));
    ctl.inject(ext(B, 0x0040, AD_MFR.subarray(0, 4), -60, 2)); // truncated
    await scanner.settle();
    for (let i = 0; i < 8; i++) await Promise.resolve();
    expect(got.map(a => [a.address.slice(-1), a.data.length, a.truncated])).toEqual([['2', 7, false], ['1', 256, false], ['2', 4, true]]);
    expect(got[1]!.manufacturerData.get(0x59)!.length).toBe(252); // 255 - type - company id
    expect(got[0]!.txPower).toBe(4);
  });

  test('fragments in progress are bounded: MAX_FRAGMENTS_IN_PROGRESS advertisers at once (oldest dropped), MAX_REASSEMBLED octets each', async () => {
    // Hostile advertisers start fragmented data (Data_Status 1, 7.7.65.13) and never finish it.
    const { ctl, scanner } = await setup({ extended: true });
    const got = collect(scanner.scan({ active: false, duplicates: true }));
    await ctl.sent('leSetExtendedScanEnable');
    await scanner.settle();
    const FLAGS = fromHex('020106');
    const addr = (i: number): string => `C0:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`.toUpperCase();
    for (let i = 0; i <= MAX_FRAGMENTS_IN_PROGRESS; i++) ctl.inject(ext(addr(0x100 + i), 0x0020, FLAGS));
    // The first advertiser's collection was dropped for the last one: its final fragment stands alone.
    // The second's and the last's were kept: flags + service data.
    ctl.inject(ext(addr(0x100), 0x0000, AD_SVC));
    ctl.inject(ext(addr(0x101), 0x0000, AD_SVC));
    ctl.inject(ext(addr(0x100 + MAX_FRAGMENTS_IN_PROGRESS), 0x0000, AD_SVC));
    // One advertiser sends more than MAX_REASSEMBLED octets in fragments: the collection is dropped
    // once it grows past, so the final fragment stands alone; another stops at exactly the limit.
    const chunk = new Uint8Array(200);
    for (let n = 0; n <= MAX_REASSEMBLED; n += chunk.length) ctl.inject(ext(addr(0x200), 0x0020, chunk));
    ctl.inject(ext(addr(0x200), 0x0000, AD_SVC));
    let n = 0;
    for (; n + chunk.length < MAX_REASSEMBLED; n += chunk.length) ctl.inject(ext(addr(0x201), 0x0020, chunk));
    ctl.inject(ext(addr(0x201), 0x0000, new Uint8Array(MAX_REASSEMBLED - n)));
    await scanner.settle();
    for (let i = 0; i < 8; i++) await Promise.resolve();
    expect(got.map(a => [a.address, a.data.length])).toEqual([
      [addr(0x100), AD_SVC.length],
      [addr(0x101), FLAGS.length + AD_SVC.length],
      [addr(0x100 + MAX_FRAGMENTS_IN_PROGRESS), FLAGS.length + AD_SVC.length],
      [addr(0x200), AD_SVC.length],
      [addr(0x201), MAX_REASSEMBLED],
    ]);
  });

  test('extended scan parameters answered Unknown Command fall back to legacy scanning', async () => {
    const { ctl, scanner, host } = await setup({ extended: true });
    ctl.on('leSetExtendedScanParameters', { status: 0x01 });
    scanner.scan({});
    await ctl.sent('leSetScanEnable');
    expect(host.info.extendedScanning).toBe(false);
  });

  test('timeout ends iteration normally; abort throws AbortError; the last session stops the scan', async () => {
    const { ctl, scanner, clock } = await setup();
    const s = scanner.scan({ timeout: 1000, active: false });
    await scanner.settle();
    ctl.inject(legacy(A, 3, AD_MFR));
    const seen: string[] = [];
    const loop = (async () => { for await (const a of s) seen.push(a.address); })();
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    clock.advance(1000);
    await loop;
    expect(seen).toEqual([A]);
    await scanner.settle();
    expect(ctl.wire[ctl.wire.length - 1]).toBe('010c20020000');

    const ac = new AbortController();
    const t = scanner.scan({ signal: ac.signal });
    const loop2 = (async () => { for await (const _ of t) void _; })();
    ac.abort();
    await expect(loop2).rejects.toBeInstanceOf(AbortError);
  });

  test('pause stops scanning for the scheduler and resume restarts it', async () => {
    const { ctl, scanner } = await setup();
    scanner.scan({});
    await scanner.settle();
    expect(scanner.scanning).toBe(true);
    await scanner.pause();
    expect(scanner.scanning).toBe(false);
    expect(ctl.wire[ctl.wire.length - 1]).toBe('010c20020000');
    scanner.resume();
    await scanner.settle();
    expect(scanner.scanning).toBe(true);
    expect(ctl.wire[ctl.wire.length - 1]).toBe('010c20020100');
  });

  test('the registry is bounded: devices not seen again are evicted first (second chance for recent ones)', async () => {
    const { ctl, scanner } = await setup({ capacity: 3 });
    scanner.scan({ active: false });
    await scanner.settle();
    for (const i of [1, 2, 3, 1, 4, 5]) ctl.inject(legacy(`C0:00:00:00:00:0${i}`, 3, AD_MFR));
    await scanner.settle();
    for (let i = 0; i < 8; i++) await Promise.resolve();
    expect(scanner.registry.size).toBe(3);
    // 1 was seen again before the registry filled, so 2 and 3 went first.
    expect([...scanner.registry.values()].map(e => e.address.slice(-1)).sort()).toEqual(['1', '4', '5']);
    expect(scanner.registry.evicted).toBe(2);
  });

  test('AD compared in place with the stored copy: every length change and one-octet change is new data; what was delivered stays as it was', async () => {
    const { ctl, scanner } = await setup();
    const dedup = collect(scanner.scan({ active: false }));
    await scanner.settle();
    const max = Uint8Array.from({ length: 31 }, (_, i) => i);
    const lastDiffers = max.slice(); lastDiffers[30] = 0xff;
    // Lengths 31, 0, 1, 31, a prefix of the stored copy, the stored copy plus zero padding, one octet off.
    const seq = [max, new Uint8Array(0), max.subarray(0, 1), max, max.subarray(0, 30), max, lastDiffers, lastDiffers,
      Uint8Array.of(0, 1, 2, 0, 0), Uint8Array.of(0, 1, 2)];
    for (const d of seq) ctl.inject(legacy(A, 3, d));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    // Every report but the repeated one (8th) brought new data.
    const want = seq.filter((_, i) => i !== 7);
    expect(dedup.map(a => [...a.data])).toEqual(want.map(d => [...d]));
    expect(dedup.every(a => a.scanResponse === undefined)).toBe(true);
  });

  test('AD compared in place: a one-octet change at any of 31 positions is new data, its repeat is not', async () => {
    const { ctl, scanner } = await setup();
    const dedup = collect(scanner.scan({ active: false }));
    await scanner.settle();
    const max = Uint8Array.from({ length: 31 }, (_, i) => i);
    const seq: Uint8Array[] = [];
    const want: Uint8Array[] = [];
    for (let k = 0; k < 31; k++) {
      const off = max.slice(); off[k] ^= 0x80;
      seq.push(max, off, off);
      want.push(max, off);
    }
    for (const d of seq) ctl.inject(legacy(A, 3, d));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(dedup.map(a => [...a.data])).toEqual(want.map(d => [...d]));
  });

  test('a device whose data changes keeps its address; its earlier name is taken again only while the octets spell it', async () => {
    const { ctl, scanner } = await setup();
    const seen: Array<[string, string | undefined]> = [];
    const ads: Advertisement[] = [];
    // The application reads each advertisement as it comes (what lets a changed copy start from the last one's reads).
    scanner.scan({ active: false, duplicates: true, onAdvertisement: a => { seen.push([a.address, a.name]); ads.push(a); } });
    await scanner.settle();
    const named = (nameHex: string, counter: number) => fromHex(`020106 05ff5900${counter.toString(16).padStart(2, '0')}01 ${(nameHex.length / 2 + 1).toString(16).padStart(2, '0')}09${nameHex}`.replace(/ /g, ''));
    const hex = (t: string) => Buffer.from(t, 'latin1').toString('hex');
    const seq = [
      named(hex('Beacon-1'), 0), named(hex('Beacon-1'), 1), // the counter changes, the name stays
      named(hex('Beacon-2'), 2), // another name of the same length
      named(hex('Beacon-2') + '00', 3), // NUL padding stripped: the same name
      named('c383c2a9', 4), // UTF-8 for 'Ã©': two characters, U+00C3 U+00A9
      named('c3a9', 5), // two octets equal to those two characters' codes, but UTF-8 for 'é'
      named('c3a9', 6), named(hex('B'), 7),
    ];
    for (const d of seq) ctl.inject(ext(A, 0x10, d)); // extended, legacy ADV_NONCONN_IND bits
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(seen).toEqual([[A, 'Beacon-1'], [A, 'Beacon-1'], [A, 'Beacon-2'], [A, 'Beacon-2'], [A, 'Ã©'], [A, 'é'], [A, 'é'], [A, 'B']]);
    // What was delivered stays as it was.
    expect(ads.map(a => a.name)).toEqual(seen.map(([, n]) => n));
    expect(ads.map(a => a.manufacturerData.get(0x0059)![0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('data and scan response are kept together: a change of one keeps the other; an empty scan response is one', async () => {
    const { ctl, scanner } = await setup();
    const all = collect(scanner.scan({ active: true, duplicates: true }));
    await scanner.settle();
    ctl.inject(legacy(A, 0, AD_HR));
    ctl.inject(legacy(A, 4, SR_NAME));
    ctl.inject(legacy(A, 0, AD_MFR));                 // new ADV data: the scan response stays
    ctl.inject(legacy(A, 4, new Uint8Array(0)));       // an empty SCAN_RSP replaces it
    ctl.inject(legacy(A, 0, AD_MFR));
    ctl.inject(legacy(A, 4, AD_SVC));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    const view = all.map(a => [[...a.data], a.scanResponse && [...a.scanResponse], a.name, a.manufacturerData.size, a.serviceData.size]);
    expect(view).toEqual([
      [[...AD_HR], [...SR_NAME], 'Polar H10', 0, 0],
      [[...AD_MFR], [...SR_NAME], 'Snoopy', 1, 0],
      [[...AD_MFR], [], undefined, 1, 0],
      [[...AD_MFR], [], undefined, 1, 0],
      [[...AD_MFR], [...AD_SVC], undefined, 1, 1],
    ]);
    // Each delivered advertisement still reads what it was delivered with.
    expect([...all[0]!.data]).toEqual([...AD_HR]);
    expect(all[0]!.parsed.structures.length).toBe(4);
  });

  test('an AD structure running past the advertising data reads into the scan response as the merged parse always did', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: true, duplicates: true }));
    await scanner.settle();
    ctl.inject(legacy(A, 0, fromHex('020106' + '05ff4c00')));   // 0x05 claims 4 octets after its type; 2 present
    ctl.inject(legacy(A, 4, fromHex('0203' + '0409414243')));   // 2 octets complete it, then a name
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(got.length).toBe(1);
    expect([...got[0]!.data]).toEqual([...fromHex('02010605ff4c00')]);
    expect([...got[0]!.scanResponse!]).toEqual([...fromHex('02030409414243')]);
    expect(got[0]!.manufacturerData.get(0x4c)).toEqual(fromHex('0203'));
    expect(got[0]!.name).toBe('ABC');
  });

  test('an evicted device takes its state with it: back again, it is new (no old scan response, reported again)', async () => {
    const { ctl, scanner, clock } = await setup({ capacity: 2 });
    const dedup = collect(scanner.scan({ active: true }));
    await scanner.settle();
    ctl.inject(legacy(A, 0, AD_HR));
    ctl.inject(legacy(A, 4, SR_NAME));
    ctl.inject(legacy(B, 0, AD_HR));   // held for its scan response
    ctl.inject(legacy('C0:00:00:00:00:03', 3, AD_MFR));
    ctl.inject(legacy('C0:00:00:00:00:04', 3, AD_MFR)); // evicts A and B (B's held advertisement goes with it)
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(scanner.registry.evicted).toBe(2);
    expect(scanner.registry.get(A, 'random')).toBeUndefined();
    ctl.inject(legacy(A, 0, AD_HR));   // A again: held (no scan response known), then reported without one
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    clock.advance(200);
    expect(dedup.map(a => [a.address.slice(-1), a.scanResponse && [...a.scanResponse]])).toEqual([
      ['1', [...SR_NAME]], ['3', undefined], ['4', undefined], ['1', undefined],
    ]);
  });

  test('the device\'s last reported advertisement keeps its own data while a newer one is held for its scan response', async () => {
    const { ctl, scanner, clock } = await setup();
    const got = collect(scanner.scan({ active: true, duplicates: true }));
    await scanner.settle();
    const slot = () => scanner.registry.get(A, 'random')!.slot;
    ctl.inject(legacy(A, 0, AD_HR));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(scanner.advertisementOf(slot())?.data).toEqual(AD_HR); // held: the held one
    clock.advance(200);                                             // no scan response came: reported as is
    expect(got.length).toBe(1);
    ctl.inject(legacy(A, 0, AD_MFR, -70));                          // new data, held again
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(got.length).toBe(1);
    const last = scanner.advertisementOf(slot())!;
    expect([[...last.data], last.rssi, last.scanResponse]).toEqual([[...AD_HR], -50, undefined]);
    ctl.inject(legacy(A, 4, SR_NAME, -71));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(got.map(a => [[...a.data], a.scanResponse && [...a.scanResponse]])).toEqual([[[...AD_HR], undefined], [[...AD_MFR], [...SR_NAME]]]);
    const now = scanner.advertisementOf(slot())!;
    expect([[...now.data], [...now.scanResponse!], now.rssi, now.name]).toEqual([[...AD_MFR], [...SR_NAME], -71, 'Snoopy']);
  });

  test('a held advertisement handed out before its scan response keeps its own data when the merged one is made', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: true, duplicates: true }));
    await scanner.settle();
    ctl.inject(legacy(A, 0, AD_HR));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    const held = scanner.advertisementOf(scanner.registry.get(A, 'random')!.slot)!;
    ctl.inject(legacy(A, 4, SR_NAME, -52));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(got.map(a => [[...a.data], a.scanResponse && [...a.scanResponse], a.name])).toEqual([[[...AD_HR], [...SR_NAME], 'Polar H10']]);
    // The merged copy did not take the held one's place: what was handed out reads as it was.
    expect([[...held.data], held.scanResponse, held.name, held.address]).toEqual([[...AD_HR], undefined, 'Polar H10', A]);
  });

  test('a held copy nobody saw makes room for its merged copy: consecutive devices\' merged copies lie back to back', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: true, duplicates: true }));
    await scanner.settle();
    const addresses = ['C0:00:00:00:01:01', 'C0:00:00:00:01:02', 'C0:00:00:00:01:03'];
    for (const a of addresses) {
      ctl.inject(legacy(a, 0, AD_HR));
      ctl.inject(legacy(a, 4, SR_NAME));
      await scanner.settle();
      for (let i = 0; i < 8; i++) await Promise.resolve();
    }
    expect(got.map(a => [a.address, [...a.data], [...a.scanResponse!]])).toEqual(addresses.map(a => [a, [...AD_HR], [...SR_NAME]]));
    // A copy: a 14-octet header, the advertising data, the scan response data. Without the reuse, each
    // held device's first copy (header and advertising data) would lie between two merged ones. Of two
    // gaps at most one crosses into a new arena chunk.
    const size = 14 + AD_HR.length + SR_NAME.length;
    let same = 0;
    for (let i = 1; i < got.length; i++) {
      const prev = got[i - 1]!.shared, cur = got[i]!.shared;
      if (cur.chunk !== prev.chunk) continue;
      same++;
      expect(cur.at - prev.at).toBe(size);
    }
    expect(same).toBeGreaterThan(0);
  });

  test('with the system clock, the events of one synchronous run (one transport read) share one time; FakeClock reads per event', async () => {
    const ctl = new FakeController();
    const host = new HciHost(ctl, { clock: systemClock });
    await host.init();
    const scanner = new Scanner(host, { clock: systemClock });
    const got = collect(scanner.scan({ active: false, duplicates: true }));
    await scanner.settle();
    // One "read": three events in one synchronous run.
    for (const a of [A, B, A]) ctl.inject(legacy(a, 3, AD_MFR));
    await new Promise(r => setTimeout(r, 5));
    ctl.inject(legacy(B, 3, AD_MFR));
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    const t = got.map(a => a.timestamp);
    expect(t.length).toBe(4);
    expect(new Set(t.slice(0, 3)).size).toBe(1);
    expect(t[3]).toBeGreaterThan(t[0]!);
    expect(scanner.registry.get(B, 'random')!.lastSeen).toBe(t[3]);
    scanner.dispose();
    host.close?.();

    const fake = await setup();
    const seen = collect(fake.scanner.scan({ active: false, duplicates: true }));
    await fake.scanner.settle();
    // The fake controller delivers each event on a microtask: the clock moves between the two.
    fake.ctl.inject(legacy(A, 3, AD_MFR));
    queueMicrotask(() => fake.clock.advance(3));
    fake.ctl.inject(legacy(A, 3, AD_MFR));
    await fake.scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(seen.map(a => a.timestamp)).toEqual([0, 3]);
  });

  test('Hardware Error ends running sessions with an error', async () => {
    const { ctl, scanner } = await setup();
    const s = scanner.scan({});
    await scanner.settle();
    ctl.inject({ kind: 'hardwareError', hardwareCode: 1 });
    await expect(s.done).rejects.toThrow(/Hardware Error/);
  });

  test('hostile reports never break scanning', async () => {
    const { ctl, scanner } = await setup();
    const got = collect(scanner.scan({ active: false, duplicates: true }));
    await scanner.settle();
    ctl.deliver(fromHex('043e0c02010301c0000000000001ff')); // length claims more than present
    ctl.inject(legacy(A, 3, fromHex('05ff4c'))); // AD structure running past the end
    await scanner.settle();
    for (let i = 0; i < 6; i++) await Promise.resolve();
    expect(got.length).toBe(1);
    expect(got[0]!.manufacturerData.size).toBe(0);
    expect(got[0]!.parsed.malformed.length).toBe(1);
  });
});
