/**
 * Scanner throughput: the same stream of LE advertising report events (hundreds of advertisers,
 * realistic AD, ADV_IND + SCAN_RSP pairs, and an extended-report stream) through
 *   - blewire: HciHost (H4 decode through the event tables) → Scanner (registry, scan-response merge,
 *     duplicates: true so every report reaches the application as an Advertisement);
 *   - @stoprocent/noble's HCI layer: lib/hci-socket/hci.js + gap.js with a fake HCI socket injected in
 *     place of @stoprocent/bluetooth-hci-socket ('discover' events);
 *   - ble-host: BleManager over a fake transport that answers its init commands ('report' events).
 * Prints input reports per second for each and the ratios, then blewire's RSS after 10,000 distinct
 * advertisers. Figures only, never pass/fail (ARCHITECTURE "Test tiers").
 */
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { FakeHciSocket, loadNobleWithFakeSocket } from './noble-fake.js';
import { HciHost } from '../../src/hci/host.js';
import { encodeEvent } from '../../src/hci/packets.js';
import type { HciEvent } from '../../src/hci/events.js';
import { Scanner, type Advertisement } from '../../src/gap/scanner.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { FakeClock } from '../../src/clock.js';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Input: realistic advertising data.

let seed = 0x2545f491;
const rand = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
const hexAddr = (i: number, top = 0xc0) =>
  [top | (i >> 24 & 0x3f), (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0x5a, 0x11].map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

function advData(i: number): Uint8Array {
  const name = Buffer.from(`Sensor-${i.toString(16)}`);
  const kind = i % 3;
  const parts: number[][] = [[0x02, 0x01, 0x06]];
  if (kind === 0) parts.push([0x05, 0x03, 0x0d, 0x18, 0x0f, 0x18]); // HR + battery
  if (kind === 1) parts.push([0x0b, 0xff, 0x4c, 0x00, 0x10, 0x05, 0x01, 0x18, rand(256), rand(256), rand(256), rand(256)]); // Apple-ish
  if (kind === 2) parts.push([0x07, 0x16, 0xaa, 0xfe, 0x10, 0x00, rand(256), rand(256)]); // Eddystone-ish service data
  parts.push([name.length + 1, 0x08, ...name]);
  return Uint8Array.from(parts.flat().slice(0, 31));
}
function scanRspData(i: number): Uint8Array {
  const name = Buffer.from(`Sensor-${i.toString(16)}-long`);
  return Uint8Array.from([name.length + 1, 0x09, ...name, 0x02, 0x0a, 0x04].slice(0, 31));
}

function legacyReport(address: string, eventType: number, data: Uint8Array, rssi: number): HciEvent {
  return { kind: 'leAdvertisingReport', reports: [{ eventType, addressType: 1, address, data, rssi }] };
}
function extReport(address: string, data: Uint8Array, rssi: number): HciEvent {
  return { kind: 'leExtendedAdvertisingReport', reports: [{ eventType: 0x0001, addressType: 1, address, primaryPhy: 1,
    secondaryPhy: 2, advertisingSid: 1, txPower: 127, rssi, periodicAdvertisingInterval: 0, directAddressType: 0,
    directAddress: '00:00:00:00:00:00', data }] };
}

const ADVERTISERS = 500;
/** Legacy stream: ADV_IND then SCAN_RSP per advertiser visit, RSSI varying; 1 report per event as controllers send. */
function legacyStream(): Buffer[] {
  const out: Buffer[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < ADVERTISERS; i++) {
      const a = hexAddr(i);
      const rssi = -40 - rand(50);
      out.push(Buffer.from(encodeEvent(legacyReport(a, 0, advData(i), rssi))));
      out.push(Buffer.from(encodeEvent(legacyReport(a, 4, scanRspData(i), rssi))));
    }
  }
  return out;
}
function extendedStream(): Buffer[] {
  const out: Buffer[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < ADVERTISERS; i++) {
      const d = new Uint8Array([...advData(i), ...scanRspData(i), 0x09, 0xff, 0x59, 0x00, 1, 2, 3, 4, 5, 6]);
      out.push(Buffer.from(encodeEvent(extReport(hexAddr(i), d, -40 - rand(50)))));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Harness

/** Feed `stream` repeatedly for ~ms; reports per second (best of `rounds`). */
function measure(feed: (p: Buffer) => void, stream: Buffer[], ms = 700, rounds = 3): number {
  for (let i = 0; i < stream.length; i++) feed(stream[i]!); // warm-up
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      for (let i = 0; i < stream.length; i++) feed(stream[i]!);
      n += stream.length;
      t = performance.now();
    }
    best = Math.max(best, n / ((t - t0) / 1000));
  }
  return best;
}

/** A transport that answers commands like a plain controller and hands packets to the host synchronously. */
class BenchTransport implements HciTransport {
  readonly description = 'bench';
  receiver!: TransportReceiver;
  setReceiver(r: TransportReceiver): void { this.receiver = r; }
  async close(): Promise<void> {}
  send(p: Uint8Array): void {
    const opcode = p[1]! | (p[2]! << 8);
    // Everything the init and the scanner need succeeds; the informational reads answer "unknown"
    // (the capability model tolerates that), except LE Read Buffer Size.
    const ok = [0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2041, 0x2042];
    let evt: Uint8Array;
    if (opcode === 0x2002) evt = Uint8Array.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08);
    else if (ok.includes(opcode)) evt = Uint8Array.of(0x04, 0x0e, 0x04, 0x01, p[1]!, p[2]!, 0x00);
    else evt = Uint8Array.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1]!, p[2]!);
    queueMicrotask(() => this.receiver.packet(evt));
  }
}

async function blewireSetup(parse: boolean, capacity?: number) {
  const t = new BenchTransport();
  const clock = new FakeClock();
  const host = new HciHost(t, { clock });
  await host.init();
  const scanner = new Scanner(host, { clock, registryCapacity: capacity });
  let sink = 0;
  const session = scanner.scan({ duplicates: true, active: true, onAdvertisement: (ad: Advertisement) => {
    sink += ad.rssi + ad.address.length + ad.addressType.length + (ad.scanResponse?.length ?? 0);
    if (parse) sink += (ad.name?.length ?? 0) + ad.serviceUuids.length + ad.manufacturerData.size;
  } });
  await scanner.settle();
  return { feed: (p: Buffer) => t.receiver.packet(p), scanner, session, sink: () => sink };
}

function nobleSetup() {
  // Inject a fake HCI socket where noble loads @stoprocent/bluetooth-hci-socket.
  const { Hci } = loadNobleWithFakeSocket();
  const Gap = require('@stoprocent/noble/lib/hci-socket/gap.js');
  const hci = new Hci({});
  const gap = new Gap(hci);
  const socket = hci._socket as FakeHciSocket;
  socket.on('data', hci.onSocketData.bind(hci));
  gap._scanState = 'started';
  let sink = 0;
  gap.on('discover', (_s: number, address: string, addressType: string, _c: boolean, adv: { localName?: string }, rssi: number) => {
    sink += rssi + address.length + addressType.length + (adv.localName?.length ?? 0);
  });
  return { feed: (p: Buffer) => socket.emit('data', p), sink: () => sink };
}

async function bleHostSetup() {
  const BleManager = require('ble-host').BleManager;
  const transport = new (class extends EventEmitter {
    write(p: Buffer): void {
      const opcode = p[1]! | (p[2]! << 8);
      // Return parameter lengths ble-host's init reads (Vol 4, Part E, 7.x), zero-filled.
      const ret: Record<number, number[]> = {
        0x1009: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66], 0x200f: [8], 0x2002: [27, 0, 8], 0x1005: [27, 0, 0, 8, 0, 0, 0],
        0x201c: [0, 0, 0, 0, 0, 0, 0, 0], 0x1001: [9, 0, 0, 9, 0, 0, 0, 0], 0x2003: [0, 0, 0, 0, 0, 0, 0, 0],
      };
      const rp = ret[opcode] ?? [];
      const evt = Buffer.from([0x04, 0x0e, 4 + rp.length, 1, p[1]!, p[2]!, 0, ...rp]);
      queueMicrotask(() => this.emit('data', evt));
    }
  })();
  const manager = await new Promise<any>((resolve, reject) =>
    BleManager.create(transport, {}, (err: unknown, m: unknown) => (err ? reject(err) : resolve(m))));
  let sink = 0;
  const scanner = manager.startScan({ activeScan: true, filterDuplicates: false });
  scanner.on('report', (r: { address: string; addressType: string; rssi: number; parsedDataItems: { localName?: string } }) => {
    sink += r.rssi + r.address.length + r.addressType.length + (r.parsedDataItems.localName?.length ?? 0);
  });
  for (let i = 0; i < 5; i++) await new Promise(r => setImmediate(r)); // let scan enable complete
  return { feed: (p: Buffer) => transport.emit('data', p), sink: () => sink };
}

const fmt = (n: number) => (n / 1e6).toFixed(2) + ' M reports/s';

export async function bench(): Promise<void> {
  const legacy = legacyStream();
  const extended = extendedStream();
  console.log(`scanner: ${ADVERTISERS} advertisers; legacy stream ${legacy.length} events (ADV_IND + SCAN_RSP), extended ${extended.length}`);

  const bw = await blewireSetup(false);
  const bwLegacy = measure(bw.feed, legacy);
  const bwExt = measure(bw.feed, extended);
  bw.session.stop();
  const bwp = await blewireSetup(true);
  const bwLegacyParsed = measure(bwp.feed, legacy);
  const bwExtParsed = measure(bwp.feed, extended);
  bwp.session.stop();

  const noble = nobleSetup();
  const noLegacy = measure(noble.feed, legacy);
  const noExt = measure(noble.feed, extended);
  let bhLegacy = NaN;
  try {
    const bh = await bleHostSetup();
    bhLegacy = measure(bh.feed, legacy);
  } catch (e) {
    console.log(`  ble-host: could not run (${(e as Error).message})`);
  }

  console.log(`  blewire  legacy   ${fmt(bwLegacy)}   (name/services parsed on every report: ${fmt(bwLegacyParsed)})`);
  console.log(`  blewire  extended ${fmt(bwExt)}   (parsed on every report: ${fmt(bwExtParsed)})`);
  console.log(`  noble    legacy   ${fmt(noLegacy)}`);
  console.log(`  noble    extended ${fmt(noExt)}`);
  console.log(`  ble-host legacy   ${fmt(bhLegacy)}   (ble-host cannot take extended reports)`);
  console.log(`  ratio legacy   blewire/noble ${(bwLegacy / noLegacy).toFixed(1)}x (parsed ${(bwLegacyParsed / noLegacy).toFixed(1)}x), ` +
    `blewire/ble-host ${(bwLegacy / bhLegacy).toFixed(1)}x (parsed ${(bwLegacyParsed / bhLegacy).toFixed(1)}x)`);
  console.log(`  ratio extended blewire/noble ${(bwExt / noExt).toFixed(1)}x (parsed ${(bwExtParsed / noExt).toFixed(1)}x)`);

  // Memory: 10,000 distinct advertisers through the default (bounded) registry and an unbounded-enough one.
  for (const capacity of [undefined, 10_000]) {
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    const m = await blewireSetup(false, capacity);
    for (let i = 0; i < 10_000; i++) {
      const a = hexAddr(100_000 + i);
      m.feed(Buffer.from(encodeEvent(legacyReport(a, 0, advData(i), -50))));
      m.feed(Buffer.from(encodeEvent(legacyReport(a, 4, scanRspData(i), -50))));
    }
    globalThis.gc?.();
    const after = process.memoryUsage().rss;
    console.log(`  RSS after 10,000 distinct advertisers (registry capacity ${m.scanner.registry.capacity}, holds ` +
      `${m.scanner.registry.size}): ${(after / 2 ** 20).toFixed(1)} MiB (+${((after - before) / 2 ** 20).toFixed(1)} MiB)`);
    m.session.stop();
  }
  void bw.sink; void noble.sink;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  bench().catch(e => { console.error(e); process.exitCode = 1; });
}
