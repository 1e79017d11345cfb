// Browser page code, unchanged, on navigator.bluetooth over the simulator. Each program in
// test/fixtures/web-bluetooth-samples/ (written in the style of the public Chrome Web Bluetooth
// samples) runs in its own node:vm context, a separate realm like a page: its globals are what a
// browser gives a page (navigator.bluetooth, BluetoothUUID, TextDecoder, AbortController, setTimeout
// on the simulated clock) plus the sample's `log()` and input fields. Its typed arrays and option
// objects come from that realm. The test presses the page's buttons and reads its log.
import { afterEach, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, HEART_RATE_SENSOR, scenarioNamed, type Simulator } from '../../src/sim/index.js';
import type { SimPeripheral } from '../../src/sim/types.js';
import { createBluetooth, type Bluetooth } from '../../src/web-bluetooth/index.js';
import { loadPage, type WebPage } from '../helpers/web-page.js';

interface Page extends WebPage { sim: Simulator; bluetooth: Bluetooth; adapter: Adapter }
let pages: Page[] = [];

async function openPage(file: string, inputs: Record<string, string> = {}, peripherals?: SimPeripheral[]): Promise<Page> {
  const sim = createSimulator(peripherals ? { name: 'samples', seed: 5, peripherals } : scenarioNamed('demo')!);
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, bonds: false });
  const bluetooth = createBluetooth({ adapter, scanTime: 2000 });
  const page = { ...loadPage(file, bluetooth, { inputs, setTimeout: (fn, ms) => sim.clock.setTimeout(fn, ms) }), sim, bluetooth, adapter };
  pages.push(page);
  return page;
}

/** Press a button on the page. */
function click(page: Page, handler: string): void {
  page.click(handler);
}

/** Let simulated time run until the page logged a line matching `re` (at most `ms` of it). */
async function until(page: Page, re: RegExp, ms = 60_000): Promise<void> {
  const t0 = page.sim.clock.now();
  while (!page.logs.some(l => re.test(l))) {
    if (page.sim.clock.now() - t0 > ms) throw new Error(`no log line matching ${re} in ${ms} ms; the page logged:\n${page.logs.join('\n')}`);
    await page.sim.clock.delay(20);
  }
}

afterEach(async () => {
  for (const p of pages) {
    await p.bluetooth.close();
    await p.adapter.close();
    expect(p.sim.clock.pendingTimers).toBe(0);
  }
  pages = [];
});

test('battery-level.js: requestDevice by service, connect, read', async () => {
  const page = await openPage('battery-level.js');
  click(page, 'onButtonClick');
  await until(page, /Battery Level is|Argh/);
  expect(page.logs).toEqual([
    'Requesting Bluetooth Device...', 'Connecting to GATT Server...', 'Getting Battery Service...',
    'Getting Battery Level Characteristic...', 'Reading Battery Level...', '> Battery Level is 87%',
  ]);
});

test('device-info.js: optionalServices, every string read, the blocklisted serial number refused', async () => {
  const page = await openPage('device-info.js', { namePrefix: 'Pulse' });
  click(page, 'onButtonClick');
  await until(page, /Serial Number|Argh/);
  expect(page.logs.slice(4)).toEqual([
    '> Manufacturer Name String: Acme Sports', '> Model Number String: HR-7', '> Firmware Revision String: 1.4.2',
    '> Serial Number String: SecurityError',
  ]);
});

test('get-characteristics.js: a service given as a hex alias in the input field, properties by for…in', async () => {
  const page = await openPage('get-characteristics.js', { service: '0x180d', characteristic: '' });
  click(page, 'onButtonClick');
  await until(page, /> 0000|Argh/);
  expect(page.logs.filter(l => l.startsWith('> 0000'))).toEqual([
    '> 00002a37-0000-1000-8000-00805f9b34fb: [NOTIFY]',
    '> 00002a38-0000-1000-8000-00805f9b34fb: [READ]',
    '> 00002a39-0000-1000-8000-00805f9b34fb: [WRITE]',
  ]);
  const again = await openPage('get-characteristics.js', { service: 'heart_rate', characteristic: 'body_sensor_location' });
  click(again, 'onButtonClick');
  await until(again, /> 0000|Argh/);
  expect(again.logs.at(-1)).toBe('> 00002a38-0000-1000-8000-00805f9b34fb: [READ]');
});

test('read-descriptors.js: acceptAllDevices with optionalServices, CCCD and user description', async () => {
  const widget: SimPeripheral = {
    name: 'Knob', address: 'D4:1E:35:7A:00:50', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Knob' }, intervalMs: 50, rssi: -40 },
    gatt: [{ uuid: 0x180f, characteristics: [{ uuid: 0x2a19, properties: ['read', 'notify'], value: { hex: '10' },
      descriptors: [{ uuid: 0x2901, value: 'Main cell' }] }] }],
  };
  const page = await openPage('read-descriptors.js', { service: 'battery_service', characteristic: 'battery_level' }, [widget, HEART_RATE_SENSOR]);
  click(page, 'onButtonClick');
  await until(page, /Characteristic User Description|Argh/);
  expect(page.logs.slice(5)).toEqual([
    '> Client Characteristic Configuration:', '  > Notifications: OFF', '  > Indications: OFF',
    '> Characteristic User Description: Main cell',
  ]);
});

test('heart-rate-sensor.js: notifications parsed by the page, then stopped and disconnected', async () => {
  const page = await openPage('heart-rate-sensor.js');
  click(page, 'onStartButtonClick');
  await until(page, /Notifications started|Argh/);
  expect(page.logs).toContain('> Body Sensor Location: Chest');
  await page.sim.clock.delay(5000);
  const beats = page.logs.filter(l => l.startsWith('> Heart Rate: '));
  expect(beats.length).toBeGreaterThanOrEqual(4);
  for (const b of beats) {
    const bpm = Number(/Heart Rate: (\d+) bpm/.exec(b)![1]);
    expect(bpm).toBeGreaterThan(50);
    expect(bpm).toBeLessThan(100);
  }
  click(page, 'onStopButtonClick');
  await until(page, /Bluetooth Device disconnected/);
  const n = page.logs.filter(l => l.startsWith('> Heart Rate: ')).length;
  await page.sim.clock.delay(3000);
  expect(page.logs.filter(l => l.startsWith('> Heart Rate: ')).length).toBe(n);
  expect(page.logs.filter(l => l.startsWith('Argh'))).toEqual([]);
});

test('automatic-reconnect.js: the peer drops the link, the page reconnects with back-off', async () => {
  const flaky: SimPeripheral = { ...HEART_RATE_SENSOR, name: 'Flaky', advertising: { ...HEART_RATE_SENSOR.advertising!, data: { flags: 0x06, name: 'Flaky' }, scanResponse: undefined }, behaviour: { disconnectAfterMs: 4000 } };
  const page = await openPage('automatic-reconnect.js', { name: 'Flaky' }, [flaky]);
  click(page, 'onButtonClick');
  await until(page, /connected\. Try disconnect/);
  await page.sim.clock.delay(9000);
  const lines = page.logs.filter(l => /Bluetooth Device (connected|disconnected)/.test(l));
  expect(lines.slice(0, 4)).toEqual([
    '> Bluetooth Device connected. Try disconnect it now.', '> Bluetooth Device disconnected',
    '> Bluetooth Device connected. Try disconnect it now.', '> Bluetooth Device disconnected',
  ]);
  // The user closes the page: no more reconnects.
  page.eval("bluetoothDevice.removeEventListener('gattserverdisconnected', onDisconnected)");
});

test('watch-advertisements.js: advertisementreceived with name, RSSI, TX power, UUIDs; stopped by abort', async () => {
  const page = await openPage('watch-advertisements.js');
  click(page, 'onWatchAdvertisementsButtonClick');
  await until(page, /Watching advertisements|Argh/);
  expect(page.logs[1]).toBe('> Requested Pulse HR');
  await page.sim.clock.delay(500);
  expect(page.logs.filter(l => l === 'Advertisement received.').length).toBeGreaterThan(3);
  expect(page.logs).toContain('  Device Name: Pulse HR');
  expect(page.logs).toContain('  TX Power: 4');
  expect(page.logs).toContain('  UUIDs: 0000180d-0000-1000-8000-00805f9b34fb,0000180f-0000-1000-8000-00805f9b34fb');
  expect(page.logs.some(l => /^ {2}RSSI: -[45]\d$/.test(l))).toBe(true);
  click(page, 'onStopButtonClick');
  const n = page.logs.length;
  await page.sim.clock.delay(500);
  expect(page.logs.length).toBe(n);
});

test('sensor-dashboard.js: Device Name, Battery Level, a write read back, three heart beats, stop, disconnect', async () => {
  const TEST_SVC = '12345678-1234-5678-1234-56789abcdef0';
  const TEST_CHR = '12345678-1234-5678-1234-56789abcdef1';
  const sensor: SimPeripheral = { ...HEART_RATE_SENSOR, gatt: [...HEART_RATE_SENSOR.gatt!, { uuid: TEST_SVC, characteristics: [{ uuid: TEST_CHR, properties: ['read', 'write', 'writableAuxiliaries'], value: 'x' }] }] };
  const page = await openPage('sensor-dashboard.js', { testService: TEST_SVC, testCharacteristic: TEST_CHR, message: 'hello from a page' }, [sensor]);
  click(page, 'onConnectButtonClick');
  await until(page, /disconnected|Argh/, 30_000);
  expect(page.logs.filter(l => l.startsWith('>')).map(l => l.replace(/\d+ bpm/, 'N bpm'))).toEqual([
    '> Device Name: Pulse HR', '> Battery Level: 87%', '> Test characteristic: read write writableAuxiliaries',
    '> Read back: hello from a page', '> Notifications started',
    '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Notifications stopped', '> Pulse HR disconnected',
  ]);
});
