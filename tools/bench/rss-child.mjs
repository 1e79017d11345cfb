// One fresh process per measurement (rss.bench.ts starts it): `node --expose-gc rss-child.mjs STACK N`.
// STACK: bare (node alone), blewire-import (import of the built package, nothing else), blewire,
// noble, ble-host; the last three track N distinct advertisers (ADV_IND + SCAN_RSP each, legacy
// reports built here by hand, so no other stack's code is loaded into the process). Prints one JSON
// line: RSS and heap after start, after the import, after the advertisers (after a full GC each), and
// V8's young generation at the end (`young`: the new space's size, both semi-spaces; node:v8 is loaded
// only after the last measurement, so it is in none of the figures). V8 doubles the semi-spaces
// (1 -> 2 -> 4 MiB each) whenever the bytes that survived scavenges (and full GCs) since the last
// growth exceed a semi-space, and a full GC does not shrink them: a few hundred KB more survival can
// add 4 MiB of RSS.
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';

const [stack, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 10000);
const require = createRequire(import.meta.url);
const mem = () => { globalThis.gc(); const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed, external: m.external }; };
const tick = () => new Promise(r => setImmediate(r));
const start = mem();

function legacyEvent(i, eventType, data, rssi) {
  const addr = [0x11, 0x5a, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, 0xc0 | ((i >> 24) & 0x3f)];
  const body = [0x02, 0x01, eventType, 0x01, ...addr, data.length, ...data, rssi & 0xff];
  return Buffer.from([0x04, 0x3e, body.length, ...body]);
}
function advData(i) {
  const name = Buffer.from(`Sensor-${i.toString(16)}`);
  return [0x02, 0x01, 0x06, 0x05, 0x03, 0x0d, 0x18, 0x0f, 0x18, name.length + 1, 0x08, ...name].slice(0, 31);
}
function scanRsp(i) {
  const name = Buffer.from(`Sensor-${i.toString(16)}-long`);
  return [name.length + 1, 0x09, ...name, 0x02, 0x0a, 0x04].slice(0, 31);
}
async function feedAll(feed) {
  for (let i = 0; i < N; i++) {
    feed(legacyEvent(i, 0, advData(i), -50));
    feed(legacyEvent(i, 4, scanRsp(i), -50));
    if (i % 1000 === 999) await tick();
  }
}

class FakeHciSocket extends EventEmitter {
  write() {} setFilter() {} bindRaw() {} bindUser() {} start() {} stop() {} isDevUp() { return true; }
}

let imported, tracked = 0;
if (stack === 'bare') {
  imported = mem();
} else if (stack === 'blewire-import' || stack === 'blewire') {
  const { Adapter } = await import(fileURLToPath(new URL('../../dist/index.js', import.meta.url)));
  imported = mem();
  if (stack === 'blewire') {
    const transport = {
      description: 'rss', receiver: undefined,
      setReceiver(r) { this.receiver = r; }, async close() { this.receiver.closed(undefined); },
      send(p) {
        const op = p[1] | (p[2] << 8);
        const ok = [0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2005];
        const evt = op === 0x2002 ? Uint8Array.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08)
          : ok.includes(op) ? Uint8Array.of(0x04, 0x0e, 0x04, 0x01, p[1], p[2], 0x00) : Uint8Array.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1], p[2]);
        queueMicrotask(() => this.receiver.packet(evt));
      },
    };
    const adapter = await Adapter.open({ transport, bonds: false, registryCapacity: N });
    adapter.scan({ active: true, onAdvertisement: () => { tracked++; } });
    await adapter.scanner.settle();
    await feedAll(p => transport.receiver.packet(p));
    tracked = adapter.scanner.registry.size;
    globalThis.keep = adapter;
  }
} else if (stack === 'noble') {
  const benchRequire = createRequire(fileURLToPath(new URL('./package.json', import.meta.url)));
  const hciPath = benchRequire.resolve('@stoprocent/noble/lib/hci-socket/hci.js');
  const socketPath = createRequire(hciPath).resolve('@stoprocent/bluetooth-hci-socket');
  require.cache[socketPath] = { id: socketPath, filename: socketPath, loaded: true, exports: { loadDriver: () => FakeHciSocket } };
  const { withBindings } = benchRequire('@stoprocent/noble');
  imported = mem();
  const noble = withBindings('hci', {});
  noble._initializeBindings();
  const hci = noble._bindings._hci;
  clearTimeout(hci._devUpPollTimer);
  hci._devUpPollTimer = 0;
  noble._bindings.onStateChange('poweredOn');
  noble.on('discover', () => { tracked++; });
  noble.startScanning([], false);
  hci._socket.emit('data', Buffer.from([0x04, 0x0e, 0x04, 0x01, 0x0c, 0x20, 0x00]));
  await tick();
  await feedAll(p => hci._socket.emit('data', p));
  tracked = noble._peripherals.size;
  globalThis.keep = noble;
  process.removeAllListeners('exit');
  process.removeAllListeners('SIGINT');
} else if (stack === 'ble-host') {
  const benchRequire = createRequire(fileURLToPath(new URL('./package.json', import.meta.url)));
  const { BleManager } = benchRequire('ble-host');
  imported = mem();
  const transport = new (class extends EventEmitter {
    write(p) {
      const ret = { 0x1009: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66], 0x200f: [8], 0x2002: [27, 0, 8], 0x1005: [27, 0, 0, 8, 0, 0, 0],
        0x201c: [0, 0, 0, 0, 0, 0, 0, 0], 0x1001: [9, 0, 0, 9, 0, 0, 0, 0], 0x2003: [0, 0, 0, 0, 0, 0, 0, 0] };
      const rp = ret[p[1] | (p[2] << 8)] ?? [];
      const evt = Buffer.from([0x04, 0x0e, 4 + rp.length, 1, p[1], p[2], 0, ...rp]);
      queueMicrotask(() => this.emit('data', evt));
    }
  })();
  const manager = await new Promise((res, rej) => BleManager.create(transport, {}, (e, m) => (e ? rej(e) : res(m))));
  // ble-host keeps no registry: the application does (one object per advertiser, its last report).
  const seen = new Map();
  manager.startScan({ activeScan: true, filterDuplicates: false }).on('report', r => { seen.set(r.address, r); });
  for (let i = 0; i < 5; i++) await tick();
  await feedAll(p => transport.emit('data', p));
  tracked = seen.size;
  globalThis.keep = [manager, seen];
} else {
  throw new Error(`unknown stack ${stack}`);
}
const end = mem();
const { getHeapSpaceStatistics } = await import('node:v8');
end.young = getHeapSpaceStatistics().find(s => s.space_name === 'new_space')?.space_size ?? 0;
console.log(JSON.stringify({ stack, n: N, tracked, start, imported, end }));
process.exit(0);
