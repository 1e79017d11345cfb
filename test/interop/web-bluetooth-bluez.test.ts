/**
 * Web Bluetooth page code against BlueZ 5.66 in the qemu guest: the sample program
 * test/fixtures/web-bluetooth-samples/sensor-dashboard.js runs unchanged in a node:vm realm whose
 * navigator.bluetooth is blewire/web-bluetooth over the bridged H4 socket to a btvirt controller in
 * the guest, where the real bluetoothd serves its example GATT server and advertisement. The page
 * requests a device by the Heart Rate service (BlueZ's advertisement declares it), reads the Device
 * Name and Battery Level, writes the example's 128-bit test characteristic and reads it back, takes
 * three Heart Rate notifications, stops them and disconnects (gattserverdisconnected).
 *
 * The expectations come from BlueZ: the GAP name `btmgmt info` printed in the guest, the example
 * server's heart-rate format (flags 0x06, bpm 90-130, helpers' truth) and its battery range, and
 * what a write stores. The CCCD written by startNotifications() and by stopNotifications() is checked
 * in the capture, as the ATT Write Requests on the wire.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createBluetooth, type Bluetooth } from '../../src/web-bluetooth/index.js';
import { loadPage } from '../helpers/web-page.js';
import { useBlueZGuest, keepCapturesAndClean, type BlueZGuestInfo } from './helpers/bluez-guest.js';
import { openBridgedAdapter } from './helpers/bluez-peer.js';
import { GuestControl } from './helpers/guest-control.js';

const TEST_SVC = '12345678-1234-5678-1234-56789abcdef0';
const TEST_CHR = '12345678-1234-5678-1234-56789abcdef1';

/** Wall-clock polling: the peer runs in real time. */
async function until(logs: string[], re: RegExp, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!logs.some(l => re.test(l))) {
    if (performance.now() - t0 > ms) throw new Error(`no log line matching ${re} in ${ms} ms; the page logged:\n${logs.join('\n')}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

describe('Web Bluetooth page code against BlueZ 5.66 in the qemu guest', () => {
  let guest: BlueZGuestInfo;
  let release: () => Promise<void> = async () => undefined;
  let adapter: Adapter | undefined;
  let bluetooth: Bluetooth | undefined;
  let tmp: string;
  let capture: string;

  beforeAll(async () => {
    ({ guest, release } = await useBlueZGuest());
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'blewire-webbt-bluez-'));
    capture = path.join(tmp, 'web-bluetooth-bluez.btsnoop');
    adapter = await openBridgedAdapter(guest, { capture, randomAddress: true, bonds: false });
    bluetooth = createBluetooth({ adapter, scanTime: 4000 });
  }, 900_000);

  afterAll(async () => {
    await bluetooth?.close().catch(() => undefined);
    await adapter?.close().catch(() => undefined);
    await release();
    keepCapturesAndClean(tmp, [capture]);
  });

  it('sensor-dashboard.js: requestDevice by service, reads, a write read back, notifications, disconnect', async () => {
    const message = `hello from a page ${process.pid}`;
    const page = loadPage('sensor-dashboard.js', bluetooth!, { inputs: { testService: TEST_SVC, testCharacteristic: TEST_CHR, message } });
    const t0 = performance.now();
    page.click('onConnectButtonClick');
    await until(page.logs, /disconnected$|Argh/, 90_000);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`web-bluetooth-bluez: the page ran in ${seconds} s wall (4 s of it the requestDevice scan)\n  ${page.logs.join('\n  ')}`);
    const failed = page.logs.filter(l => l.startsWith('Argh'));
    if (failed.length > 0) {
      // Say what the wire saw (CI once lost the link between connect() and discovery, cause unknown):
      // the last 60 frames as tshark reads them, with who sent the Disconnect and its reason.
      await adapter!.close().catch(() => undefined);
      const { stdout: tail } = await promisify(execFile)('tshark', ['-r', capture, '-T', 'fields', '-E', 'separator=|',
        '-e', 'frame.number', '-e', 'frame.time_relative', '-e', 'hci_h4.direction', '-e', '_ws.col.Info'], { maxBuffer: 1 << 24 }).catch(e => ({ stdout: String(e) }));
      // And the guest's side: is bluetoothd alive, what did it and the kernel say about the link.
      const guestSide = await GuestControl.open(guest.ctlSocket).then(async ctl => {
        try {
          return (await ctl.run(['sh', '-c', 'echo "bluetoothd pid: $(pidof bluetoothd)"; tail -n 60 /tmp/bluetoothd.log; dmesg | tail -n 30'], 30_000)).stdout;
        } finally { ctl.close(); }
      }).catch(e => `(no guest control: ${(e as Error).message})`);
      expect(failed, `the page logged:\n  ${page.logs.join('\n  ')}\nthe capture's last frames:\n${tail.split('\n').slice(-60).join('\n')}\nthe guest:\n${guestSide}`).toEqual([]);
    }
    const out = page.logs.filter(l => l.startsWith('>'));
    expect(out[0]).toBe(`> Device Name: ${guest.peripheralName}`);
    // example-gatt-server: the battery starts at 100 and drops by 2 every 5 s.
    const battery = Number(/^> Battery Level: (\d+)%$/.exec(out[1]!)?.[1]);
    expect(battery).toBeGreaterThanOrEqual(0);
    expect(battery).toBeLessThanOrEqual(100);
    // The example declares the test characteristic with Flags read, write, writable-auxiliaries; bluetoothd
    // turns the last into the Extended Properties descriptor (bit 1), which the facade reads.
    expect(out[2]).toBe('> Test characteristic: read write writableAuxiliaries');
    expect(out[3]).toBe(`> Read back: ${message}`);
    expect(out[4]).toBe('> Notifications started');
    // example-gatt-server: bpm randint(90, 130).
    const beats = out.slice(5, 8).map(l => Number(/^> Heart Rate: (\d+) bpm$/.exec(l)?.[1]));
    for (const b of beats) { expect(b).toBeGreaterThanOrEqual(90); expect(b).toBeLessThanOrEqual(130); }
    expect(out.slice(8)).toEqual(['> Notifications stopped', expect.stringMatching(/^> .* disconnected$/)]);
    const [device] = await bluetooth!.getDevices();
    expect(device!.gatt!.connected).toBe(false);
    // The device's name is what BlueZ advertised for it.
    expect(out[9]).toBe(`> ${device!.name} disconnected`);

    // On the wire, as tshark decodes the capture: the page's value in a Write Request to the test
    // characteristic, and a CCCD written 01 00 by startNotifications() then 00 00 by stopNotifications()
    // (Vol 3, Part G, 3.3.3.3), both on the same handle, after it.
    await adapter!.close();
    const { stdout } = await promisify(execFile)('tshark', ['-r', capture, '-Y', 'btatt.opcode == 0x12 && hci_h4.direction == 0x00',
      '-T', 'fields', '-E', 'separator=|', '-e', 'btatt.handle', '-e', 'btatt.value']);
    const writes = stdout.split('\n').filter(Boolean).map(l => { const [h, v] = l.split('|'); return { handle: h!, value: (v ?? '').replace(/:/g, '') }; });
    const messageAt = writes.findIndex(w => w.value === Buffer.from(message).toString('hex'));
    expect(messageAt, JSON.stringify(writes)).toBeGreaterThanOrEqual(0);
    const on = writes.findIndex((w, i) => i > messageAt && w.value === '0100');
    expect(on, JSON.stringify(writes)).toBeGreaterThan(messageAt);
    const off = writes.findIndex((w, i) => i > on && w.handle === writes[on]!.handle && w.value === '0000');
    expect(off, JSON.stringify(writes)).toBeGreaterThan(on);
  }, 180_000);
});
