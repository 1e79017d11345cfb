// Unchanged Web Bluetooth pages in a real browser: Debian's Chromium, headless, runs the sample page
// with blewire as its navigator.bluetooth (src/web-bluetooth/bridge.ts over the DevTools pipe), on the
// simulator running in wall-clock time. The page's code runs in Chromium's engine: its DataViews,
// TextEncoder, events and promises are the browser's own; every Bluetooth operation crosses the pipe
// to the facade in this process.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';
import type { SimPeripheral } from '../../src/sim/types.js';
import { createBluetooth, type Bluetooth } from '../../src/web-bluetooth/index.js';
import { openBrowserPage, type BrowserPage } from '../../src/web-bluetooth/bridge.js';
import { SAMPLES } from '../helpers/web-page.js';

const TEST_SVC = '12345678-1234-5678-1234-56789abcdef0';
const TEST_CHR = '12345678-1234-5678-1234-56789abcdef1';

let dir: string;
let sim: Simulator;
let adapter: Adapter;
let bluetooth: Bluetooth;
let page: BrowserPage | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blewire-chromium-page-'));
  const sample = await readFile(join(SAMPLES, 'sensor-dashboard.js'), 'utf8');
  // The sample's page: its inputs, a log() that prints to the console, and the sample's script as is.
  await writeFile(join(dir, 'index.html'), `<!doctype html><meta charset="utf-8"><title>sensor dashboard</title>
<input id="testService" value="${TEST_SVC}"><input id="testCharacteristic" value="${TEST_CHR}"><input id="message" value="hello from chromium">
<pre id="log"></pre>
<script>function log(...parts) { const line = parts.join(' '); document.querySelector('#log').textContent += line + '\\n'; console.log(line); }</script>
<script src="sensor-dashboard.js"></script>`);
  await writeFile(join(dir, 'sensor-dashboard.js'), sample);
  const sensor: SimPeripheral = { ...HEART_RATE_SENSOR, gatt: [...HEART_RATE_SENSOR.gatt!, { uuid: TEST_SVC, characteristics: [{ uuid: TEST_CHR, properties: ['read', 'write', 'writableAuxiliaries'], value: 'x' }] }] };
  sim = createSimulator({ name: 'chromium', seed: 5, peripherals: [sensor] }, { speed: 1 });
  adapter = await Adapter.open({ transport: sim.transport, bonds: false });
  bluetooth = createBluetooth({ adapter, scanTime: 1500 });
}, 60_000);

afterAll(async () => {
  await page?.close();
  await bluetooth?.close();
  await adapter?.close();
  await rm(dir, { recursive: true, force: true });
});

async function until(re: RegExp, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!page!.console.some(l => re.test(l))) {
    if (Date.now() - t0 > ms) throw new Error(`no console line matching ${re} in ${ms} ms; the page printed:\n${page!.console.join('\n')}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

test('sensor-dashboard.js in headless Chromium: name, battery, a write read back, three heart beats, stop, disconnect', async () => {
  page = await openBrowserPage(pathToFileURL(join(dir, 'index.html')).href, { bluetooth });
  // The page's navigator.bluetooth is the bridge's, in the browser's own realm.
  expect(await page.evaluate('typeof navigator.bluetooth.requestDevice')).toBe('function');
  expect(await page.evaluate('typeof __blewire')).toBe('undefined'); // the binding is not left to page code
  const t0 = performance.now();
  await page.evaluate('onConnectButtonClick()');
  await until(/disconnected$|Argh/, 60_000);
  console.log(`web-bluetooth-chromium: the page ran in ${((performance.now() - t0) / 1000).toFixed(1)} s wall\n  ${page.console.join('\n  ')}`);
  expect(page.console.filter(l => l.startsWith('Argh') || l.startsWith('Uncaught'))).toEqual([]);
  expect(page.console.filter(l => l.startsWith('>')).map(l => l.replace(/\d+ bpm/, 'N bpm'))).toEqual([
    '> Device Name: Pulse HR', '> Battery Level: 87%', '> Test characteristic: read write writableAuxiliaries',
    '> Read back: hello from chromium', '> Notifications started',
    '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Notifications stopped', '> Pulse HR disconnected',
  ]);
  // The write reached the peripheral through the stack.
  const db = sim.peripheral('Pulse HR').db!;
  expect(new TextDecoder().decode(db.value(db.characteristic(TEST_CHR)!.valueHandle))).toBe('hello from chromium');
}, 120_000);

test('the browser side keeps object identity, the spec\'s errors, and getDevices()', async () => {
  const r = await page!.evaluate(`(async () => {
    const out = {};
    out.typeError = await navigator.bluetooth.requestDevice({}).then(() => 'resolved', e => e.name + ' ' + (e instanceof TypeError));
    const [device] = await navigator.bluetooth.getDevices();
    out.name = device.name;
    out.connected = device.gatt.connected;
    const server = await device.gatt.connect();
    out.sameServer = server === device.gatt;
    const s1 = await server.getPrimaryService('battery_service');
    const s2 = await server.getPrimaryService('battery_service');
    out.sameService = s1 === s2 && s1.device === device;
    const c = await s1.getCharacteristic('battery_level');
    out.sameCharacteristic = c === await s1.getCharacteristic('battery_level') && c.service === s1;
    const v = await c.readValue();
    out.value = v instanceof DataView ? v.getUint8(0) : 'not a DataView';
    out.valueKept = c.value === v;
    out.security = await server.getPrimaryService('0000abcd-0000-1000-8000-00805f9b34fb').then(() => 'resolved', e => e.name);
    out.blocked = await server.getPrimaryService('human_interface_device').then(() => 'resolved', e => e.name);
    out.tooLong = await c.writeValue(new Uint8Array(513)).then(() => 'resolved', e => e.name);
    device.gatt.disconnect();
    return out;
  })()`);
  expect(r).toEqual({
    typeError: 'TypeError true', name: 'Pulse HR', connected: false, sameServer: true, sameService: true, sameCharacteristic: true,
    value: 87, valueKept: true, security: 'SecurityError', blocked: 'SecurityError', tooLong: 'InvalidModificationError',
  });
}, 60_000);

test('blewire browse: a page, a button pressed with --eval, ended by --until; usage mistakes exit 2', async () => {
  const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'browse', ...args], { timeout: 120_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  };
  await writeFile(join(dir, 'battery.html'), `<!doctype html><meta charset="utf-8">
<script>function log(...parts) { console.log(parts.join(' ')); }</script><script src="battery-level.js"></script>`);
  await writeFile(join(dir, 'battery-level.js'), await readFile(join(SAMPLES, 'battery-level.js'), 'utf8'));
  const ok = await run([join(dir, 'battery.html'), '--transport', 'sim', '--scan-time', '1500', '--eval', 'onButtonClick()', '--until', 'Battery Level is|Argh', '--timeout', '90000']);
  expect(ok.stderr).toBe('');
  expect(ok.stdout.split('\n').filter(Boolean)).toEqual([
    'Requesting Bluetooth Device...', 'Connecting to GATT Server...', 'Getting Battery Service...',
    'Getting Battery Level Characteristic...', 'Reading Battery Level...', '> Battery Level is 87%',
  ]);
  expect(ok.code).toBe(0);
  const missing = await run([join(dir, 'nope.html'), '--transport', 'sim']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('no such page');
  expect(missing.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect((await run([])).code).toBe(2);
}, 240_000);
