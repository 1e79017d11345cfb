// The child of `npm run bench -- gateway` that measures memory: plain Node on the compiled JavaScript
// (argv[2], a tsc output of src/), no TypeScript loader, no simulator — what an installed gateway
// loads. A gateway with the default configuration, on a transport that answers the init and scan
// commands like a plain controller, tracks `devices` distinct advertisers (LE Advertising Report events,
// five payload kinds) and publishes each to the broker at argv[3]; once all are delivered, after a full
// GC, it prints one JSON line: RSS and heap before and after the devices.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [dist, url, count] = process.argv.slice(2);
const devices = Number(count);
const load = p => import(pathToFileURL(join(dist, p)).href);
const { Gateway, resolveConfig, jsonLogger } = await load('apps/gateway/index.js');
const { encodeEvent } = await load('hci/packets.js');
const sleep = ms => new Promise(r => setTimeout(r, ms));

class FeedTransport {
  description = 'bench-feed';
  receiver;
  setReceiver(r) { this.receiver = r; }
  async close() {}
  send(p) {
    const opcode = p[1] | (p[2] << 8);
    // Reset, event masks, LE scan parameters / enable succeed; LE Read Buffer Size answers 251 x 8;
    // everything else is "Unknown HCI Command" (the host's capability model takes that).
    const ok = [0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2041, 0x2042, 0x0c63, 0x2005, 0x2027, 0x2029, 0x202d, 0x204e];
    let evt;
    if (opcode === 0x2002) evt = Uint8Array.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08);
    else if (ok.includes(opcode)) evt = Uint8Array.of(0x04, 0x0e, 0x04, 0x01, p[1], p[2], 0x00);
    else evt = Uint8Array.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1], p[2]);
    queueMicrotask(() => this.receiver.packet(evt));
  }
}

const h = s => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const PAYLOADS = [
  h('020106 0b16d2fc4002c40903bf13 0b09 6274 2d73656e736f72 3031'), // BTHome v2 + name
  h('020106 1bff9904 0512fc5394c37c0004fffc040cac364200cdcbb8334c884f'), // Ruuvi 5
  h('020106 1aff4c00 0215e2c56db5dffb48d2b060d0f5a71096e000010002c5'), // iBeacon
  h('020106 0303aafe 1316aafe 10ee03 676f6f2e676c2f417131387a46'), // Eddystone-URL
  h('020106 050f0f180a18 0909 706c61696e2d3031'), // plain: services + name
].map(b => Uint8Array.from(b));

const addr = i => [0xc4, 0x7c, 0x8d, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

const t = new FeedTransport();
const gateway = new Gateway(resolveConfig({ env: {}, flags: { id: 'rss', mqtt: { url }, transport: 'bench', commands: { enabled: false } } }), {
  transport: () => t, logger: jsonLogger('error', () => undefined),
});
await gateway.start();
while (!gateway.stats.adapterOpen || !gateway.mqttStats?.connected) await sleep(20);
await sleep(300);
globalThis.gc?.();
const base = process.memoryUsage();
for (let i = 0; i < devices; i++) {
  t.receiver.packet(encodeEvent({ kind: 'leAdvertisingReport', reports: [{ eventType: 3, addressType: 0, address: addr(100_000 + i), data: PAYLOADS[i % PAYLOADS.length], rssi: -50 - (i % 40) }] }));
  if (i % 500 === 499) await new Promise(r => setImmediate(r));
}
const until = Date.now() + 60_000;
while ((gateway.mqttStats.delivered < devices || gateway.mqttStats.buffered > 0) && Date.now() < until) await sleep(50);
globalThis.gc?.();
await sleep(200);
globalThis.gc?.();
const m = process.memoryUsage();
const s = gateway.stats;
if (process.env.BENCH_SNAPSHOT) (await import('node:v8')).writeHeapSnapshot(process.env.BENCH_SNAPSHOT);
if (process.env.BENCH_DEBUG) { const v8 = await import('node:v8'); console.error(JSON.stringify(m), JSON.stringify(v8.getHeapSpaceStatistics().map(s => [s.space_name, Math.round(s.space_size/1e6), Math.round(s.space_used_size/1e6)]))); }
process.stdout.write(JSON.stringify({ devices: s.devices, published: s.published, delivered: gateway.mqttStats.delivered, dropped: gateway.mqttStats.dropped,
  decoded: s.published, rssBefore: base.rss, rss: m.rss, heapUsed: m.heapUsed, heapBefore: base.heapUsed }) + '\n');
await gateway.stop();
process.exit(0);
