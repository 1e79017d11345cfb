// The protocol layers in a browser: the browser build of blewire/web-bluetooth (tools/web/bundle.mjs,
// esbuild, the platform seam swapped for src/platform/browser/) loaded by an ordinary page in Debian's
// headless Chromium. The page's own JavaScript runs HCI, L2CAP, ATT, GATT and the Web Bluetooth facade;
// the only thing in Node is a WebSocket relay (src/tooling/websocket-relay.ts) forwarding H4 bytes to
// the simulator's controller, running in wall-clock time. The unchanged sensor-dashboard sample drives
// it through navigator.bluetooth, and the relay sees the page's host speak HCI: the commands that bring
// a controller up, scan and connect, and ACL both ways.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Chromium } from '../../src/platform/chromium.js';
import { createSimulator, HEART_RATE_SENSOR, type Simulator } from '../../src/sim/index.js';
import type { SimPeripheral } from '../../src/sim/types.js';
import { startWebSocketRelay, type WebSocketRelay } from '../../src/tooling/websocket-relay.js';
import { SAMPLES } from '../helpers/web-page.js';

const TEST_SVC = '12345678-1234-5678-1234-56789abcdef0';
const TEST_CHR = '12345678-1234-5678-1234-56789abcdef1';
const VAULT_SVC = '0000feed-0000-1000-8000-00805f9b34fb';
const VAULT_CHR = '0000beef-0000-1000-8000-00805f9b34fb';
const TYPES: Record<string, string> = { html: 'text/html', js: 'text/javascript' };

let dir: string;
let sim: Simulator;
let relay: WebSocketRelay;
let http: Server;
let origin: string;
let browser: Chromium | undefined;
let page: Awaited<ReturnType<typeof openPage>> | undefined;
let bundleBytes = 0;
const commands = new Set<number>();
const acl = { page: 0, controller: 0 };
/** SMP codes (Vol 3, Part H, 3.3) the page's host sent on CID 0x0006. */
const smpFromPage: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blewire-browser-stack-'));
  await promisify(execFile)(process.execPath, ['tools/web/bundle.mjs', '--outfile', join(dir, 'web-bluetooth.js')], { timeout: 120_000 });
  bundleBytes = (await readFile(join(dir, 'web-bluetooth.js'))).length;
  await writeFile(join(dir, 'sensor-dashboard.js'), await readFile(join(SAMPLES, 'sensor-dashboard.js'), 'utf8'));
  // The page's files over http (a WebSocket from a page carries its origin; the relay checks it).
  http = createServer((req, res) => {
    const name = (req.url ?? '/').slice(1) || 'index.html';
    if (!/^[a-z-]+\.(html|js)$/.test(name)) { res.writeHead(404).end(); return; }
    readFile(join(dir, name)).then(
      b => res.writeHead(200, { 'content-type': TYPES[name.split('.').pop()!]! }).end(b),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>(r => http.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const sensor: SimPeripheral = { ...HEART_RATE_SENSOR, gatt: [...HEART_RATE_SENSOR.gatt!, { uuid: TEST_SVC, characteristics: [{ uuid: TEST_CHR, properties: ['read', 'write', 'writableAuxiliaries'], value: 'x' }] }] };
  // A second device whose one characteristic needs an encrypted link (handles: service 0x20,
  // declaration 0x21, value 0x22): reading it makes the page's stack pair.
  const vault: SimPeripheral = {
    name: 'Vault', address: 'D4:1E:35:7A:00:50', addressType: 'random',
    advertising: { data: { flags: 0x06, name: 'Vault' }, intervalMs: 40, rssi: -60 },
    gatt: [{ uuid: VAULT_SVC, handle: 0x20, characteristics: [{ uuid: VAULT_CHR, properties: ['read'], value: { hex: '2a' } }] }],
    pairing: { protect: [{ opcode: 0x0a, handle: 0x22 }] },
  };
  sim = createSimulator({ name: 'browser-stack', seed: 5, peripherals: [sensor, vault] }, { speed: 1 });
  relay = await startWebSocketRelay({
    transport: sim.transport,
    origins: [origin],
    onPacket(direction, p) {
      if (direction === 'page' && p[0] === 0x01) commands.add(p[1]! | (p[2]! << 8));
      if (p[0] === 0x02) acl[direction]++;
      // ACL (H4 0x02): handle (2), length (2), then the L2CAP basic header: length (2), CID (2).
      if (direction === 'page' && p[0] === 0x02 && p.length > 9 && (p[7]! | (p[8]! << 8)) === 0x0006) smpFromPage.push(p[9]!);
    },
  });
  await writeFile(join(dir, 'index.html'), `<!doctype html><meta charset="utf-8"><title>sensor dashboard, stack in the page</title>
<input id="testService" value="${TEST_SVC}"><input id="testCharacteristic" value="${TEST_CHR}"><input id="message" value="hello from the page's own stack">
<pre id="log"></pre>
<script>function log(...parts) { const line = parts.join(' '); document.querySelector('#log').textContent += line + '\\n'; console.log(line); }</script>
<script src="sensor-dashboard.js"></script>
<script type="module">
  import { createBluetooth } from './web-bluetooth.js';
  Object.defineProperty(navigator, 'bluetooth', { configurable: true, value: createBluetooth({ transport: ${JSON.stringify(relay.url)}, scanTime: 1500 }) });
  window.stackReady = true;
</script>`);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await relay?.close();
  await new Promise<void>(r => (http ? http.close(() => r()) : r()));
  await rm(dir, { recursive: true, force: true });
});

/** A page in the browser: its console lines, and evaluate(). */
async function openPage(b: Chromium, url: string) {
  const lines: string[] = [];
  const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
  const { sessionId } = await b.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
  b.onEvent(e => {
    if (e.sessionId !== sessionId) return;
    if (e.method === 'Runtime.consoleAPICalled') {
      lines.push((e.params['args'] as Array<{ value?: unknown; description?: string }>).map(a => String(a.value ?? a.description)).join(' '));
    } else if (e.method === 'Runtime.exceptionThrown') {
      const d = e.params['exceptionDetails'] as { text?: string; exception?: { description?: string } };
      lines.push(`Uncaught ${d.exception?.description ?? d.text}`);
    }
  });
  await b.send('Runtime.enable', {}, sessionId);
  await b.send('Page.enable', {}, sessionId);
  await b.send('Page.navigate', { url }, sessionId);
  const evaluate = async (expression: string): Promise<unknown> => {
    const r = await b.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
    const ex = r['exceptionDetails'] as { exception?: { description?: string } } | undefined;
    if (ex) throw new Error(ex.exception?.description ?? 'evaluation failed');
    return (r['result'] as { value?: unknown }).value;
  };
  return { lines, evaluate };
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

test('sensor-dashboard.js, unchanged, with the whole stack running in headless Chromium over a WebSocket relay', async () => {
  browser = await Chromium.launch();
  page = await openPage(browser, `${origin}/index.html`);
  const p = page;
  await until(async () => (await p.evaluate('window.stackReady === true')) === true, 30_000, () => `the bundle to load; console:\n${p.lines.join('\n')}`);
  // navigator.bluetooth is the bundle's facade, made in the page's realm (not Chromium's own).
  expect(await p.evaluate('navigator.bluetooth.constructor.name')).toBe('Bluetooth');
  expect(await p.evaluate('typeof process')).toBe('undefined');
  const t0 = performance.now();
  await p.evaluate('onConnectButtonClick()');
  await until(() => p.lines.some(l => /disconnected$|Argh|Uncaught/.test(l)), 90_000, () => `the sample to finish; console:\n${p.lines.join('\n')}`);
  console.log(`browser-stack: bundle ${bundleBytes} octets; the page ran in ${((performance.now() - t0) / 1000).toFixed(1)} s wall; ` +
    `relay: ${relay.stats.toController} packets to the controller, ${relay.stats.toPage} to the page\n  ${p.lines.join('\n  ')}`);
  expect(p.lines.filter(l => l.startsWith('Argh') || l.startsWith('Uncaught'))).toEqual([]);
  expect(p.lines.filter(l => l.startsWith('>')).map(l => l.replace(/\d+ bpm/, 'N bpm'))).toEqual([
    '> Device Name: Pulse HR', '> Battery Level: 87%', '> Test characteristic: read write writableAuxiliaries',
    "> Read back: hello from the page's own stack", '> Notifications started',
    '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Heart Rate: N bpm', '> Notifications stopped', '> Pulse HR disconnected',
  ]);
  // The write reached the peripheral through the page's stack and the relay.
  const db = sim.peripheral('Pulse HR').db!;
  expect(new TextDecoder().decode(db.value(db.characteristic(TEST_CHR)!.valueHandle))).toBe("hello from the page's own stack");
  // The host that spoke HCI was the page's: Reset (Vol 4, Part E, 7.3.2), scanning (7.8.10/7.8.11 or
  // the extended 7.8.64/7.8.65), a connection (7.8.12 or 7.8.66), and ACL in both directions.
  expect(commands.has(0x0c03)).toBe(true);
  expect(commands.has(0x200c) || commands.has(0x2042)).toBe(true);
  expect(commands.has(0x200d) || commands.has(0x2043)).toBe(true);
  expect(acl.page).toBeGreaterThan(5);
  expect(acl.controller).toBeGreaterThan(5);
}, 180_000);

test('pairing in the page: an encrypted characteristic makes the page\'s own Security Manager pair (LE Secure Connections) and read', async () => {
  // The browser build computes P-256, AES-CMAC and AES-128 in JavaScript (src/platform/browser/crypto.ts).
  const r = await page!.evaluate(`(async () => {
    const device = await navigator.bluetooth.requestDevice({ filters: [{ name: 'Vault' }], optionalServices: ['${VAULT_SVC}'] });
    const server = await device.gatt.connect();
    const c = await (await server.getPrimaryService('${VAULT_SVC}')).getCharacteristic('${VAULT_CHR}');
    const v = (await c.readValue()).getUint8(0);
    server.disconnect();
    return v;
  })()`);
  expect(r).toBe(0x2a);
  // Pairing Request (0x01), the public key (0x0c), the confirm/random exchange and the DHKey check
  // (0x0d) came from the page's host, and then LE Enable Encryption (Vol 4, Part E, 7.8.24).
  expect(smpFromPage[0]).toBe(0x01);
  expect(smpFromPage).toContain(0x0c);
  expect(smpFromPage).toContain(0x0d);
  expect(commands.has(0x2019)).toBe(true);
  expect(page!.lines.filter(l => l.startsWith('Uncaught'))).toEqual([]);
}, 120_000);

test('the relay refuses a page from another origin and a second page while one is attached', async () => {
  const { WebSocket } = await import('ws');
  // The browser's page leaves first: closing Chromium ends its WebSocket.
  await browser?.close();
  browser = undefined;
  page = undefined;
  await until(() => !relay.attached, 10_000, () => 'the page to leave the relay');
  const bounded = <T>(p: Promise<T>, what: string): Promise<T> => Promise.race([p,
    new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000).unref())]);
  const opened = (ws: InstanceType<typeof WebSocket>): Promise<string> => bounded(new Promise(resolve => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
    ws.once('error', e => resolve(`error ${e.message}`));
  }), 'handshake');
  const closed = (ws: InstanceType<typeof WebSocket>): Promise<number> => bounded(new Promise(r => ws.once('close', c => r(c))), 'close');
  const refusedBefore = relay.stats.refused;
  expect(await opened(new WebSocket(relay.url, { origin: 'https://evil.example' }))).toBe('http 401');
  const first = new WebSocket(relay.url, { origin });
  expect(await opened(first)).toBe('open');
  const second = new WebSocket(relay.url, { origin });
  expect(await opened(second)).toBe('open');
  expect(await closed(second)).toBe(1013);
  // A page that sends a bad packet indicator is cut off before anything reaches the controller.
  const before = relay.stats.toController;
  first.send(Uint8Array.of(0x07, 0x00, 0x00));
  expect(await closed(first)).toBe(1002);
  expect(relay.stats.toController).toBe(before);
  expect(relay.stats.refused - refusedBefore).toBe(2);
}, 60_000);
