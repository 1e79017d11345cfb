/**
 * Notification receive path, end to end: a stream of HCI ACL packets carrying ATT Handle Value
 * Notifications, fed to a connected blewire Adapter as the controller would hand them over, through
 * HciHost (ACL header) → L2capLink (reassembly) → AttBearer (ATT decode) → GattClient (subscription
 * registry) → the application's `characteristic.subscribe(callback)` and `for await (… of
 * ch.notifications())`. Two realistic shapes:
 *   - heart-rate-like 20-byte values at ATT_MTU 23: one ACL packet per notification (27 octets of ACL
 *     data, the LE default without Data Length Extension);
 *   - 244-byte values at ATT_MTU 247 cut into 27-octet ACL packets (10 per notification), as a
 *     controller without DLE delivers them: first PB 0b10, the rest 0b01 (Vol 4, Part E, 5.4.2).
 * The connection is set up on the simulator (connect, MTU exchange, targeted discovery, CCCD write);
 * after that the bench hands prebuilt packets straight to the host's transport receiver, so only the
 * receive path is measured, not the simulator or the setup.
 *
 * The identical packets go to @stoprocent/noble: its hci.js (fake HCI socket in place of
 * @stoprocent/bluetooth-hci-socket, as in scanner.bench.ts) reassembles ACL, its bindings' ACL
 * routing (NobleBindings.prototype.onAclDataPkt) pushes into the connection's acl-stream.js, and its
 * gatt.js emits 'notification' for the characteristic whose value handle matches (the characteristic
 * is registered with gatt.addCharacteristics, as discovery would). noble's top-level Peripheral /
 * Characteristic objects above gatt.js are not included: they need a whole connected Noble instance,
 * and the per-notification work above gatt.js ('read' event → characteristic 'data') is two more
 * event emits.
 *
 * Prints notifications/s and MB/s of values per CPU-second of this process (median of trials;
 * process.cpuUsage, like hci-decode.bench.ts) and per wall-clock second, bytes allocated per
 * notification (needs --expose-gc, which `npm run bench` passes), and the blewire/noble ratio.
 * Figures only, never pass/fail.
 *
 *   npm run bench -- notify
 */
import { createRequire } from 'node:module';
import { loadNobleWithFakeSocket } from './noble-fake.js';
import { fileURLToPath } from 'node:url';
import { Adapter } from '../../src/api/adapter.js';
import type { GattCharacteristic } from '../../src/gatt/model.js';
import { createSimulator, type Scenario } from '../../src/sim/index.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';

const require = createRequire(import.meta.url);

const PEER = 'D4:1E:35:7A:00:01';
/** LE default ACL payload without Data Length Extension (Vol 6, Part B, 4.5.10: 27 octets). */
const ACL_DATA = 27;
/** Notifications in the prebuilt stream (one pass of the stream). */
const STREAM = 2048;

// ---------------------------------------------------------------------------------------------
// Input

let seed = 0x5eed1234;
const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };

/** Heart Rate Measurement (GATT Specification Supplement 3.113): flags (u8 HR, RR present), HR, 9 RR intervals = 20 octets. */
function heartRateValue(): Uint8Array {
  const v = new Uint8Array(20);
  v[0] = 0x10;
  v[1] = 60 + rand(40);
  for (let i = 0; i < 9; i++) {
    const rr = 800 + rand(300); // 1/1024 s
    v[2 + 2 * i] = rr & 0xff;
    v[3 + 2 * i] = rr >> 8;
  }
  return v;
}

function bulkValue(n: number): Uint8Array {
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = rand(256);
  return v;
}

/**
 * One notification as the controller hands it to the host: an L2CAP B-frame on CID 0x0004 holding
 * ATT_HANDLE_VALUE_NTF (0x1b, handle, value), cut into H4 ACL packets of at most `aclData` octets.
 */
function notificationPackets(connHandle: number, valueHandle: number, value: Uint8Array, aclData: number): Buffer[] {
  const att = Buffer.alloc(3 + value.length);
  att[0] = 0x1b;
  att.writeUInt16LE(valueHandle, 1);
  att.set(value, 3);
  const frame = Buffer.alloc(4 + att.length);
  frame.writeUInt16LE(att.length, 0);
  frame.writeUInt16LE(0x0004, 2);
  frame.set(att, 4);
  const out: Buffer[] = [];
  for (let o = 0; o < frame.length; o += aclData) {
    const chunk = frame.subarray(o, Math.min(frame.length, o + aclData));
    const p = Buffer.alloc(5 + chunk.length);
    p[0] = 0x02;
    // Controller → host: the first fragment is PB 0b10 (first automatically flushable), the rest 0b01.
    p.writeUInt16LE(connHandle | ((o === 0 ? 0b10 : 0b01) << 12), 1);
    p.writeUInt16LE(chunk.length, 3);
    p.set(chunk, 5);
    out.push(p);
  }
  return out;
}

interface Stream {
  label: string;
  /** Packets grouped per notification. */
  perNotification: Buffer[][];
  valueBytes: number;
  wireBytes: number;
  packets: number;
}

function stream(label: string, connHandle: number, valueHandle: number, make: () => Uint8Array): Stream {
  const perNotification: Buffer[][] = [];
  let valueBytes = 0, wireBytes = 0, packets = 0;
  for (let i = 0; i < STREAM; i++) {
    const v = make();
    const ps = notificationPackets(connHandle, valueHandle, v, ACL_DATA);
    perNotification.push(ps);
    valueBytes += v.length;
    for (const p of ps) wireBytes += p.length;
    packets += ps.length;
  }
  return { label, perNotification, valueBytes, wireBytes, packets };
}

// ---------------------------------------------------------------------------------------------
// Measurement

type Feed = (p: Buffer) => void;

interface Figures { cpuRate: number; wallRate: number; allocPerNtf: number | undefined }

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

/**
 * Synchronous feeding (callback subscribers): whole passes over the stream until `trialMs` of CPU
 * time; notifications per CPU-second and per wall second, the medians of `trials`.
 */
function measureSync(feed: Feed, s: Stream, trials = 5, trialMs = 300): Figures {
  const flat = s.perNotification.flat();
  for (let w = 0; w < 3; w++) for (let i = 0; i < flat.length; i++) feed(flat[i]!); // warm up
  const cpu: number[] = [], wall: number[] = [];
  for (let t = 0; t < trials; t++) {
    let rounds = 0, cpuMs = 0;
    const w0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    do {
      for (let i = 0; i < flat.length; i++) feed(flat[i]!);
      rounds++;
      const c = process.cpuUsage(c0);
      cpuMs = (c.user + c.system) / 1000;
    } while (cpuMs < trialMs);
    cpu.push((rounds * STREAM) / (cpuMs / 1000));
    wall.push((rounds * STREAM) / (Number(process.hrtime.bigint() - w0) / 1e9));
  }
  return { cpuRate: median(cpu), wallRate: median(wall), allocPerNtf: allocSync(feed, s) };
}

/**
 * Bytes allocated per notification: heap growth over a batch small enough that no scavenge runs in
 * between (values are dropped at once by the subscriber). Median of 5; undefined without --expose-gc.
 */
function allocSync(feed: Feed, s: Stream): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const batch = Math.min(STREAM, 1000);
  const samples: number[] = [];
  for (let k = 0; k < 5; k++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < batch; i++) for (const p of s.perNotification[i]!) feed(p);
    const after = process.memoryUsage().heapUsed;
    samples.push(Math.max(0, after - before) / batch);
  }
  return median(samples);
}

/**
 * Async iterator consumer: the producer hands `perTurn` notifications to the host, then waits (on
 * one promise) until the `for await` loop has taken them all, as a socket read followed by the
 * application's turn would. perTurn 1 is a live stream (the consumer is always waiting: every value
 * settles the waiting next()); larger turns exercise the subscription's buffer.
 */
async function measureIterator(feed: Feed, ch: GattCharacteristic, s: Stream, perTurn: number, trials = 5, trialMs = 300):
  Promise<Figures> {
  let got = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  let stopping = false;
  const it = ch.notifications()[Symbol.asyncIterator]();
  // The subscription (CCCD write) happens on the first next(); with the CCCD already enabled by the
  // callback subscriber, no request goes out. Pump once so the consumer is waiting.
  const consumer = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      // Leaving the loop: return() is queued behind a pending next(), so the loop ends itself on a value.
      if (stopping) { await it.return?.(); return; }
      sink += r.value[0]!;
      if (++got === want) { const w = wake; wake = undefined; w?.(); }
    }
  })();
  await new Promise(r => setImmediate(r));
  let n = 0;
  const turn = async (): Promise<void> => {
    want = got + perTurn;
    const done = new Promise<void>(r => { wake = r; });
    for (let k = 0; k < perTurn; k++) {
      for (const p of s.perNotification[n]!) feed(p);
      n = n + 1 === STREAM ? 0 : n + 1;
    }
    await done;
  };
  for (let w = 0; w < (3 * STREAM) / perTurn; w++) await turn(); // warm up
  const cpu: number[] = [], wall: number[] = [];
  for (let t = 0; t < trials; t++) {
    let turns = 0, cpuMs = 0;
    const w0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    do {
      for (let k = 0; k < 256; k++) await turn();
      turns += 256;
      const c = process.cpuUsage(c0);
      cpuMs = (c.user + c.system) / 1000;
    } while (cpuMs < trialMs);
    cpu.push((turns * perTurn) / (cpuMs / 1000));
    wall.push((turns * perTurn) / (Number(process.hrtime.bigint() - w0) / 1e9));
  }
  let allocPerNtf: number | undefined;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    const samples: number[] = [];
    const turns = Math.max(1, Math.floor(1000 / perTurn));
    for (let k = 0; k < 5; k++) {
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < turns; i++) await turn();
      const after = process.memoryUsage().heapUsed;
      samples.push(Math.max(0, after - before) / (turns * perTurn));
    }
    allocPerNtf = median(samples);
  }
  stopping = true;
  for (const p of s.perNotification[0]!) feed(p);
  await consumer;
  return { cpuRate: median(cpu), wallRate: median(wall), allocPerNtf };
}

let sink = 0;

// ---------------------------------------------------------------------------------------------
// blewire: a connection set up on the simulator, then packets straight into the host's receiver.

/** Passes everything through to the simulator's transport and keeps the host's receiver for the bench. */
class TapTransport implements HciTransport {
  receiver!: TransportReceiver;
  constructor(private readonly inner: HciTransport) {}
  get clock() { return this.inner.clock; }
  get description(): string { return `tap(${this.inner.description})`; }
  send(p: Uint8Array): void { this.inner.send(p); }
  setReceiver(r: TransportReceiver): void { this.receiver = r; this.inner.setReceiver(r); }
  close(): Promise<void> { return this.inner.close(); }
}

function scenario(): Scenario {
  // The heart-rate sensor without its notification source: the bench is the only source of values.
  return {
    name: 'notify-bench',
    peripherals: [{
      name: 'Pulse HR', address: PEER, addressType: 'random',
      advertising: { data: { flags: 0x06, serviceUuids: [0x180d], name: 'Pulse HR' }, intervalMs: 20 },
      gatt: [{ uuid: 0x180d, characteristics: [{ uuid: 0x2a37, properties: ['notify'] }] }],
    }],
  };
}

async function blewireSetup(mtu: number) {
  const sim = createSimulator(scenario());
  const tap = new TapTransport(sim.transport);
  const adapter = await Adapter.open({ transport: tap, clock: sim.clock, mtu, gatt: { robustCaching: false, serviceChanged: false } });
  const conn = await adapter.connect({ address: PEER, addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic('heart_rate', 'heart_rate_measurement'); // exchanges MTU first
  let count = 0;
  const sub = await ch.subscribe(v => { sink += v[v.length - 1]!; count++; });
  const feed: Feed = p => tap.receiver.packet(p);
  return { adapter, conn, ch, sub, feed, mtu: conn.mtu, handle: conn.handle, valueHandle: ch.handle, count: () => count };
}

// ---------------------------------------------------------------------------------------------
// noble: hci.js + acl-stream.js + gatt.js over a fake HCI socket.

function nobleSetup(connHandle: number, valueHandle: number, mtu: number) {
  const { Hci } = loadNobleWithFakeSocket();
  const AclStream = require('@stoprocent/noble/lib/hci-socket/acl-stream.js');
  const Gatt = require('@stoprocent/noble/lib/hci-socket/gatt.js');
  const Bindings = require('@stoprocent/noble/lib/hci-socket/bindings.js');
  const hci = new Hci({});
  const peer = PEER.toLowerCase();
  const aclStream = new AclStream(hci, connHandle, 'random', 'c0:00:00:00:00:01', 'random', peer);
  const gatt = new Gatt(peer, aclStream, mtu);
  gatt._mtu = mtu;
  // What noble's discovery leaves behind for the heart-rate service and its measurement characteristic.
  gatt._services['180d'] = { uuid: '180d', startHandle: valueHandle - 2, endHandle: valueHandle + 1 };
  gatt.addCharacteristics('180d', [{ uuid: '2a37', startHandle: valueHandle - 1, properties: 0x10, valueHandle, endHandle: valueHandle + 1 }]);
  // The bindings' ACL routing, per connection handle.
  hci.on('aclDataPkt', Bindings.prototype.onAclDataPkt.bind({ _aclStreams: { [connHandle]: aclStream } }));
  let count = 0;
  gatt.on('notification', (_address: string, _service: string, _characteristic: string, data: Buffer) => {
    sink += data[data.length - 1]!;
    count++;
  });
  const feed: Feed = p => hci.onSocketData(p);
  return { feed, count: () => count };
}

// ---------------------------------------------------------------------------------------------

const fmtRate = (n: number): string => n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`;
const fmtAlloc = (b: number | undefined): string => b === undefined ? 'n/a (run with --expose-gc)' : `${b.toFixed(0)} B`;

function line(who: string, s: Stream, f: Figures): string {
  const mb = (f.cpuRate * s.valueBytes) / STREAM / 1e6;
  return `  ${who.padEnd(26)} ${fmtRate(f.cpuRate).padStart(7)} ntf/s  ${mb.toFixed(1).padStart(6)} MB/s of values  ` +
    `alloc ≈ ${fmtAlloc(f.allocPerNtf).padStart(6)}/ntf  (wall ${fmtRate(f.wallRate)} ntf/s)`;
}

export async function bench(): Promise<void> {
  console.log('notify: ACL → L2CAP → ATT → GATT subscription, prebuilt controller packets; rates per CPU-second (median of 5)');
  for (const shape of [{ mtu: 23, value: heartRateValue, what: '20-byte heart-rate values, ATT_MTU 23, 1 ACL packet each' },
    { mtu: 247, value: () => bulkValue(244), what: '244-byte values, ATT_MTU 247, 10 ACL packets of ≤ 27 octets each' }]) {
    const bw = await blewireSetup(shape.mtu);
    if (bw.mtu !== shape.mtu) throw new Error(`bench setup: ATT_MTU ${bw.mtu}, expected ${shape.mtu}`);
    const s = stream(shape.what, bw.handle, bw.valueHandle, shape.value);
    console.log(`${s.label} (${s.packets / STREAM} packets, ${(s.wireBytes / STREAM).toFixed(0)} H4 octets per notification)`);

    const before = bw.count();
    const cb = measureSync(bw.feed, s);
    const delivered = bw.count() - before;
    if (delivered === 0) throw new Error('bench: blewire delivered no notifications');
    console.log(line('blewire subscribe(cb)', s, cb));
    // The iterator runs beside the callback subscriber (both receive every value), so the callback's
    // small cost is included; the difference between the lines is the iterator's own.
    const it1 = await measureIterator(bw.feed, bw.ch, s, 1);
    console.log(line('blewire for await (1/turn)', s, it1));
    const it16 = await measureIterator(bw.feed, bw.ch, s, 16);
    console.log(line('blewire for await (16/turn)', s, it16));

    const noble = nobleSetup(bw.handle, bw.valueHandle, shape.mtu);
    const nb = measureSync(noble.feed, s);
    if (noble.count() === 0) throw new Error('bench: noble delivered no notifications');
    console.log(line('noble gatt "notification"', s, nb));
    console.log(`  ratio blewire/noble: callback ${(cb.cpuRate / nb.cpuRate).toFixed(1)}×, for await ${(it1.cpuRate / nb.cpuRate).toFixed(1)}× (1/turn), ` +
      `${(it16.cpuRate / nb.cpuRate).toFixed(1)}× (16/turn)`);
    const stats = bw.conn.gatt.bearer.stats;
    if (stats.undecodable !== 0 || bw.conn.l2cap.stats.dropped !== 0) {
      console.log(`  WARNING: blewire dropped input (undecodable ${stats.undecodable}, l2cap dropped ${bw.conn.l2cap.stats.dropped})`);
    }
    await bw.sub.unsubscribe().catch(() => undefined);
    await bw.adapter.close();
  }
  if (sink === 0.5) console.log('');
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  await bench();
}
