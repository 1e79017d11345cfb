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
 * The identical packets go to @stoprocent/noble's whole stack (fake HCI socket in place of the native
 * one, as in scanner.bench.ts): Noble over its hci-socket bindings, the link created by its own LE
 * Connection Complete handler, the heart-rate characteristic put where its discovery leaves it, the
 * application listening to the Characteristic's 'data' event; to ble-host's whole stack (BleManager,
 * set up through the same simulator with its own connect, discovery and CCCD write; the application
 * listening to the characteristic's 'change' event); and to the floor (floor.ts), a hand-written loop.
 * Contenders interleaved round by round, CPU time per notification, min / median / max (harness.ts);
 * bytes allocated per notification counted apart (sampling heap profiler); then the async iterators,
 * first beside the callback subscriber, then alone.
 *
 *   npm run bench -- notify
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { loadNobleWithFakeSocket } from './noble-fake.js';
import { interleave, sampledAllocation, machineLine, report, saveResults, turn, type Contender, type Result } from './harness.js';
import { notificationFloor, notificationStreamFloor } from './floor.js';
import { fileURLToPath } from 'node:url';
import { Adapter } from '../../src/api/adapter.js';
import type { GattCharacteristic } from '../../src/gatt/model.js';
import { createSimulator, type Scenario } from '../../src/sim/index.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { H4Framer } from '../../src/transport/h4-framer.js';
import { ReceiverSlot } from '../../src/transport/receiver-slot.js';

const require = createRequire(import.meta.url);

const PEER = 'D4:1E:35:7A:00:01';
/** LE default ACL payload without Data Length Extension (Vol 6, Part B, 4.5.10: 27 octets). */
const ACL_DATA = 27;
/** Notifications fed per turn of the event loop (callback passes). */
const CHUNK = 1000;

// ---------------------------------------------------------------------------------------------
// Input

let seed = 0x5eed1234;
const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };

/** Heart Rate Measurement (GATT Specification Supplement 3.113): flags (u8 HR, RR present), HR, 9 RR intervals = 20 octets. */
export function heartRateValue(): Uint8Array {
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

export function bulkValue(n: number): Uint8Array {
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

export interface Stream {
  label: string;
  /** Packets grouped per notification. */
  perNotification: Buffer[][];
  valueBytes: number;
  wireBytes: number;
  packets: number;
}

export function stream(label: string, connHandle: number, valueHandle: number, make: () => Uint8Array, count: number): Stream {
  const perNotification: Buffer[][] = [];
  let valueBytes = 0, wireBytes = 0, packets = 0;
  for (let i = 0; i < count; i++) {
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
// Measurement: harness.ts (interleaved rounds, CPU time, min / median / max)

export type Feed = (p: Buffer) => void;

/** Feeds a stream in chunks of CHUNK notifications with a turn of the event loop between chunks. */
export function chunked(feed: Feed, s: Stream) {
  return async (): Promise<void> => {
    const per = s.perNotification;
    for (let i = 0; i < per.length;) {
      const end = Math.min(per.length, i + CHUNK);
      for (; i < end; i++) { const ps = per[i]!; for (let k = 0; k < ps.length; k++) feed(ps[k]!); }
      await turn();
    }
  };
}

/**
 * An async-iterator consumer: the producer hands `perTurn` notifications to the host, then waits
 * (one promise) until the `for await` loop took them all, as a socket read followed by the
 * application's turn would. perTurn 1 is a live stream; larger turns exercise the buffer / batches.
 */
export function iteratorPass(feed: Feed, it: AsyncIterator<Uint8Array | Uint8Array[]>, s: Stream, perTurn: number) {
  let got = 0, want = 0;
  let wake: (() => void) | undefined;
  let stopping = false;
  let n = 0;
  const consumer = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      if (stopping) { await it.return?.(); return; }
      const v = r.value;
      if (Array.isArray(v)) { for (const x of v) sink += x[0]!; got += v.length; } else { sink += v[0]!; got++; }
      if (got >= want) { const w = wake; wake = undefined; w?.(); }
    }
  })();
  const turnOnce = async (): Promise<void> => {
    want = got + perTurn;
    const done = new Promise<void>(r => { wake = r; });
    for (let k = 0; k < perTurn; k++) {
      for (const p of s.perNotification[n]!) feed(p);
      n = n + 1 === s.perNotification.length ? 0 : n + 1;
    }
    await done;
  };
  return {
    pass: async (): Promise<void> => { for (let k = 0; k < s.perNotification.length / perTurn; k++) await turnOnce(); },
    delivered: () => got,
    stop: async (): Promise<void> => { stopping = true; for (const p of s.perNotification[0]!) feed(p); await consumer; },
  };
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

export async function blewireSetup(mtu: number) {
  const sim = createSimulator(scenario());
  const tap = new TapTransport(sim.transport);
  const adapter = await Adapter.open({ transport: tap, clock: sim.clock, mtu, gatt: { robustCaching: false, serviceChanged: false } });
  const conn = await adapter.connect({ address: PEER, addressType: 'random' } as never, { timeout: 5000 });
  const ch = await conn.characteristic('heart_rate', 'heart_rate_measurement'); // exchanges MTU first
  let count = 0;
  const sub = await ch.subscribe(v => { sink += v[v.length - 1]!; count++; });
  const feed: Feed = p => tap.receiver.packet(p);
  // The same host as StreamTransport wires it to a byte stream: H4Framer → ReceiverSlot → the host's receiver.
  const slot = new ReceiverSlot();
  slot.set(tap.receiver);
  const framer = new H4Framer({
    packet: p => slot.packet(p),
    packetAt: (b, start, end, buffer, base) => slot.packetAt(b, start, end, buffer, base),
    error: e => { throw e; },
  });
  const push = (chunk: Uint8Array): void => framer.push(chunk);
  return { adapter, conn, ch, sub, feed, push, mtu: conn.mtu, handle: conn.handle, valueHandle: ch.handle, count: () => count };
}

/**
 * The stream as a byte-stream transport reads it: the packets of CHUNK notifications concatenated
 * into one read (ending on a packet boundary), each read its own Buffer as net hands them over.
 */
export function streamReads(s: Stream): Buffer[] {
  const reads: Buffer[] = [];
  for (let i = 0; i < s.perNotification.length; i += CHUNK) reads.push(Buffer.concat(s.perNotification.slice(i, i + CHUNK).flat()));
  return reads;
}

/** Feeds reads to a byte-stream consumer, one read per turn of the event loop (the chunks of chunked()). */
export function readPass(push: (chunk: Uint8Array) => void, reads: Buffer[]) {
  return async (): Promise<void> => {
    for (const r of reads) { push(r); await turn(); }
  };
}

// ---------------------------------------------------------------------------------------------
// noble, the whole stack: Noble ← hci-socket bindings ← hci.js → acl-stream.js → gatt.js, the native
// socket replaced (noble-fake.ts); the link and the characteristic put in place the way its own
// connection complete and discovery leave them; the application listens to the Characteristic's 'data'.

function nobleSetup(connHandle: number, valueHandle: number, mtu: number) {
  loadNobleWithFakeSocket();
  const { withBindings } = require('@stoprocent/noble') as { withBindings(t: string, o: object): any };
  const noble = withBindings('hci', {});
  noble._initializeBindings();
  const bindings = noble._bindings;
  const hci = bindings._hci;
  clearTimeout(hci._devUpPollTimer);
  hci._devUpPollTimer = 0;
  hci.address = 'c0:00:00:00:00:01'; // what Read BD_ADDR would have told it
  hci.addressType = 'random';
  bindings.onStateChange('poweredOn');
  const peer = PEER.toLowerCase();
  // LE Connection Complete as noble's bindings take it (it simulates the discovery of an unknown peer).
  bindings.onLeConnComplete(0, connHandle, 0, 'random', peer, 24, 0, 400, 0);
  const id = bindings.addressToId(peer);
  const gatt = bindings._gatts[connHandle];
  gatt._mtu = mtu;
  // What noble's discovery leaves behind for the heart-rate service and its measurement characteristic.
  gatt._services['180d'] = { uuid: '180d', startHandle: valueHandle - 2, endHandle: valueHandle + 1 };
  gatt.addCharacteristics('180d', [{ uuid: '2a37', startHandle: valueHandle - 1, properties: 0x10, valueHandle, endHandle: valueHandle + 1 }]);
  noble._onServicesDiscover(id, ['180d']);
  noble._onCharacteristicsDiscover(id, '180d', [{ uuid: '2a37', properties: ['notify'] }]);
  const ch = noble._characteristics[id]['180d']['2a37'];
  let count = 0;
  ch.on('data', (data: Buffer) => { sink += data[data.length - 1]!; count++; });
  const socket = hci._socket;
  const feed: Feed = p => socket.emit('data', p);
  return { feed, count: () => count,
    stop: () => { process.removeListener('exit', bindings._exitHandler); process.removeListener('SIGINT', bindings._sigIntHandler); } };
}

// ---------------------------------------------------------------------------------------------
// ble-host, the whole stack: BleManager over a transport object (its documented `write` + 'data'
// interface) that reaches the same simulated controller and heart-rate sensor as blewire's setup.
// ble-host initialises the controller, connects, discovers the service and characteristic and
// writes the CCCD through the simulator, with its own code throughout; then the bench's packets go
// to the transport's 'data' event, and the application listens to the characteristic's 'change'.

export async function bleHostSetup(connHandle: number, valueHandle: number, mtu: number) {
  const sim = createSimulator(scenario());
  const transport = new EventEmitter() as InstanceType<typeof EventEmitter> & { write(p: Buffer): void };
  transport.write = (p: Buffer): void => sim.transport.send(p);
  sim.transport.setReceiver({ packet: (p: Uint8Array) => { transport.emit('data', Buffer.from(p)); }, closed: () => undefined } as never);
  const { BleManager } = require('ble-host') as { BleManager: any };
  // One callback-style step as a promise, bounded in time; `fail` rejects it.
  const step = <T>(f: (done: (v: T) => void, fail: (why: string) => void) => void, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`ble-host setup: no ${what} in 10 s`)), 10_000);
      f(v => { clearTimeout(t); resolve(v); }, why => { clearTimeout(t); reject(new Error(`ble-host setup: ${what}: ${why}`)); });
    });
  const manager = await step<any>((done, fail) =>
    BleManager.create(transport, {}, (err: unknown, m: unknown) => (err ? fail(String(err)) : done(m))), 'init');
  const conn = await step<any>(done => manager.connect('random', PEER, {}, done), 'connection');
  if (mtu > 23) await step<unknown>(done => conn.gatt.exchangeMtu(done), 'MTU exchange');
  const [service] = await step<any[]>(done => conn.gatt.discoverServicesByUuid(0x180d, 1, done), 'service');
  if (!service) throw new Error('ble-host setup: heart rate service not found');
  const chars = await step<any[]>(done => service.discoverCharacteristics(done), 'characteristics');
  const ch = chars.find(c => c.uuid.startsWith('00002A37'));
  if (!ch || ch.valueHandle !== valueHandle) throw new Error(`ble-host setup: measurement value at handle ${ch?.valueHandle}, blewire's at ${valueHandle}`);
  await step<unknown>(done => ch.writeCCCD(true, false, done), 'CCCD write');
  let count = 0;
  ch.on('change', (value: Buffer) => { sink += value[value.length - 1]!; count++; });
  const feed: Feed = p => transport.emit('data', p);
  // The bench's packets carry blewire's connection handle (ble-host does not expose its own): the same
  // simulator gives both stacks the same one, which one notification in the corpus's shape proves.
  for (const p of notificationPackets(connHandle, valueHandle, bulkValue(mtu - 3), ACL_DATA)) feed(p);
  if (count !== 1) throw new Error('ble-host setup: a notification on blewire\'s connection handle did not reach the characteristic');
  return { feed, count: () => count, stop: () => sim.clock.stop() };
}

// ---------------------------------------------------------------------------------------------

export async function bench(): Promise<void> {
  console.log(machineLine());
  console.log(`notify: ACL → L2CAP → ATT → GATT subscription → application, prebuilt controller packets fed in chunks of ${CHUNK} ` +
    'notifications, a turn between chunks; CPU per notification');
  const saved: Record<string, unknown> = {};
  for (const shape of [
    { key: 'n20', mtu: 23, value: heartRateValue, count: 100_000, what: '20-byte heart-rate values, ATT_MTU 23, 1 ACL packet each' },
    { key: 'n244', mtu: 247, value: () => bulkValue(244), count: 20_000, what: '244-byte values, ATT_MTU 247, 10 ACL packets of ≤ 27 octets each' },
  ]) {
    const bw = await blewireSetup(shape.mtu);
    if (bw.mtu !== shape.mtu) throw new Error(`bench setup: ATT_MTU ${bw.mtu}, expected ${shape.mtu}`);
    const s = stream(shape.what, bw.handle, bw.valueHandle, shape.value, shape.count);
    let bytes = 0;
    for (const ps of s.perNotification) for (const p of ps) bytes += p.length + 96;
    console.log(`${s.label}: ${shape.count} notifications, ${s.packets / shape.count} packets and ` +
      `${(s.wireBytes / shape.count).toFixed(0)} H4 octets each (corpus ≈ ${(bytes / 2 ** 20).toFixed(1)} MiB)`);
    const no = nobleSetup(bw.handle, bw.valueHandle, shape.mtu);
    // As in the scanner bench: a ble-host that cannot be set up is reported, and the others still run.
    let bh: Awaited<ReturnType<typeof bleHostSetup>> | undefined;
    try { bh = await bleHostSetup(bw.handle, bw.valueHandle, shape.mtu); } catch (e) { console.log(`  ble-host: could not run (${(e as Error).message})`); }
    let floorCount = 0, streamFloorCount = 0;
    const floorFeed = notificationFloor(bw.valueHandle, v => { sink += v[v.length - 1]!; floorCount++; });
    const batch: Stream = { ...s, perNotification: s.perNotification.slice(0, CHUNK) };
    const contenders: Array<Contender & { allocPass: () => Promise<void> }> = [
      { name: 'blewire subscribe(cb)', pass: chunked(bw.feed, s), allocPass: chunked(bw.feed, batch), delivered: bw.count, unit: 'callbacks' },
      { name: 'noble (whole stack) data', pass: chunked(no.feed, s), allocPass: chunked(no.feed, batch), delivered: no.count, unit: "'data'" },
      ...(bh ? [{ name: 'ble-host (whole stack)', pass: chunked(bh.feed, s), allocPass: chunked(bh.feed, batch), delivered: bh.count, unit: "'change'" }] : []),
      { name: 'floor', pass: chunked(floorFeed, s), allocPass: chunked(floorFeed, batch), delivered: () => floorCount, unit: 'callbacks' },
    ];
    const packetRows = contenders.length; // the packets the user channel hands over; the stream rows follow
    // The 20-byte values again as an H4 byte stream (btvirt's unix socket, TCP, a UART): the same packets,
    // CHUNK notifications per read, through blewire's H4 framer, and the stream's own floor. noble has
    // no byte-stream transport. (Not for the 244-byte values: the stream floor handles no fragments.)
    if (shape.key === 'n20') {
      const reads = streamReads(s), batchReads = streamReads(batch);
      const streamFloor = notificationStreamFloor(bw.valueHandle, v => { sink += v[v.length - 1]!; streamFloorCount++; });
      contenders.push(
        { name: 'blewire subscribe(cb), H4 stream', pass: readPass(bw.push, reads), allocPass: readPass(bw.push, batchReads), delivered: bw.count, unit: 'callbacks' },
        { name: 'floor, H4 stream', pass: readPass(streamFloor, reads), allocPass: readPass(streamFloor, batchReads), delivered: () => streamFloorCount, unit: 'callbacks' },
      );
    }
    const results = await interleave(contenders, shape.count);
    // Counted by V8's sampling heap profiler (harness.ts sampledAllocation): a heapUsed delta read 339 B per
    // value on the stream path in one run and 160 B in another, where the profiler counts 97 B, the floor's.
    for (let i = 0; i < results.length; i++) results[i]!.allocPerUnit = await sampledAllocation(contenders[i]!.allocPass, CHUNK);
    report(s.label + ', one packet per read (user channel)', results.slice(0, packetRows), { floor: 'floor', versus: ['noble (whole stack) data', 'ble-host (whole stack)'] });
    if (results.length > packetRows) report(s.label + ', H4 byte stream, ' + CHUNK + ' notifications per read', results.slice(packetRows), { floor: 'floor, H4 stream' });
    no.stop();
    bh?.stop();

    // Iterators: the callback subscriber stays (both receive every value): the difference is the iterator's own.
    const iters: Array<{ name: string; it: () => AsyncIterator<Uint8Array | Uint8Array[]>; perTurn: number }> = [
      { name: 'blewire for await (1/turn)', it: () => bw.ch.notifications()[Symbol.asyncIterator](), perTurn: 1 },
      { name: 'blewire for await (16/turn)', it: () => bw.ch.notifications()[Symbol.asyncIterator](), perTurn: 16 },
      { name: 'blewire batches (16/turn)', it: () => bw.ch.notificationBatches()[Symbol.asyncIterator](), perTurn: 16 },
      { name: 'blewire batches (256/turn)', it: () => bw.ch.notificationBatches()[Symbol.asyncIterator](), perTurn: 256 },
    ];
    const itResults: Result[] = [];
    for (const x of iters) {
      const ip = iteratorPass(bw.feed, x.it(), s, x.perTurn);
      await turn();
      const [r] = await interleave([{ name: x.name, pass: ip.pass, delivered: ip.delivered, unit: 'values' }], shape.count, 5);
      itResults.push(r!);
      await ip.stop();
    }
    report(`${s.label}, iterators (beside the callback)`, itResults);
    // The same iterators with the callback subscriber gone: each figure is then the iterator's whole
    // cost per value (issue 14's target for batches is an amortised cost per value).
    await bw.sub.unsubscribe();
    const alone: Result[] = [];
    for (const x of iters) {
      const ip = iteratorPass(bw.feed, x.it(), s, x.perTurn);
      await turn();
      const [r] = await interleave([{ name: x.name.replace('blewire', 'alone:'), pass: ip.pass, delivered: ip.delivered, unit: 'values' }], shape.count, 5);
      alone.push(r!);
      await ip.stop();
    }
    report(`${s.label}, iterators alone (no callback subscriber)`, alone);
    saved[shape.key] = [...results, ...itResults, ...alone];
    const stats = bw.conn.gatt.bearer.stats;
    if (stats.undecodable !== 0 || bw.conn.l2cap.stats.dropped !== 0) {
      console.log(`  WARNING: blewire dropped input (undecodable ${stats.undecodable}, l2cap dropped ${bw.conn.l2cap.stats.dropped})`);
    }
    await bw.sub.unsubscribe().catch(() => undefined);
    await bw.adapter.close();
  }
  if (!process.env.BENCH_NO_SAVE) await saveResults('notify', saved);
  if (sink === 0.5) console.log('');
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  await bench();
}
