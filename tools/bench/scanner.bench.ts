/**
 * Advertising report → application, end to end through each stack's public API, on identical bytes
 * (tools/bench/adv-corpus.ts), with every parsed field read by the application:
 *   - blewire: Adapter.open over a transport that answers the init commands, adapter.scan({ active,
 *     duplicates: true, onAdvertisement }) — H4 decode, the scanner, the registry, the session;
 *   - noble (@stoprocent/noble): the whole stack, Noble over its hci-socket bindings with a fake HCI
 *     socket in place of the native one (noble-fake.ts), noble.startScanning([], true), 'discover'
 *     with its Peripheral;
 *   - ble-host: BleManager over a fake transport, manager.startScan(), the scanner's 'report' events;
 *   - floor: a hand-written loop (floor.ts) doing the same work with nothing in between.
 * The contenders run interleaved round by round (harness.ts), the corpus fed in chunks of 1000
 * events with a turn of the event loop between chunks (as socket reads arrive), CPU time per input
 * report. Each stack delivers what it delivers (noble and ble-host may merge ADV_IND + SCAN_RSP into
 * one event; blewire reports both after the first merge): the deliveries per pass are printed.
 * Then bytes allocated per report (apart, after the rounds). RSS is rss.bench.ts (fresh processes).
 * Each corpus runs in a process of its own (fresh stacks and fresh JIT state for every contender):
 * V8's optimised code and type feedback are per function, not per stack instance, so legacy rounds
 * run first in the same process leave every contender's shared report code tuned (inlining budget,
 * call frequencies) to legacy reports while it handles extended ones (issue 14, session 13: blewire
 * +30-50 ns per extended report, the floor +15-20; an application talks to one controller, which
 * reports one kind).
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventEmitter } from 'node:events';
import { FakeHciSocket, loadNobleWithFakeSocket } from './noble-fake.js';
import { Adapter } from '../../src/api/adapter.js';
import type { Advertisement } from '../../src/gap/scanner.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { interleave, sampledAllocation, machineLine, report, saveResults, turn, type Contender } from './harness.js';
import { ADVERTISERS, corpusBytes, extendedCorpus, legacyCorpus } from './adv-corpus.js';
import { advertisingFloor } from './floor.js';

const require = createRequire(import.meta.url);
const CHUNK = 1000;

/** A transport that answers commands like a plain controller and hands packets to the host synchronously. */
export class BenchTransport implements HciTransport {
  readonly description = 'bench';
  receiver!: TransportReceiver;
  setReceiver(r: TransportReceiver): void { this.receiver = r; }
  async close(): Promise<void> { this.receiver.closed(undefined); }
  send(p: Uint8Array): void {
    const opcode = p[1]! | (p[2]! << 8);
    // What init and the scanner need succeeds; informational reads answer "unknown" (the capability
    // model tolerates that), except LE Read Buffer Size.
    const ok = [0x0c03, 0x0c01, 0x2001, 0x200b, 0x200c, 0x2041, 0x2042, 0x2005];
    let evt: Uint8Array;
    if (opcode === 0x2002) evt = Uint8Array.of(0x04, 0x0e, 0x07, 0x01, 0x02, 0x20, 0x00, 0xfb, 0x00, 0x08);
    else if (ok.includes(opcode)) evt = Uint8Array.of(0x04, 0x0e, 0x04, 0x01, p[1]!, p[2]!, 0x00);
    else evt = Uint8Array.of(0x04, 0x0f, 0x04, 0x01, 0x01, p[1]!, p[2]!);
    queueMicrotask(() => this.receiver.packet(evt));
  }
}

/** Feeds a corpus in chunks of CHUNK events with a turn between chunks. */
export function feeder(feed: (p: Buffer) => void) {
  return async (corpus: Buffer[]): Promise<void> => {
    for (let i = 0; i < corpus.length;) {
      const end = Math.min(corpus.length, i + CHUNK);
      for (; i < end; i++) feed(corpus[i]!);
      await turn();
    }
  };
}

let sink = 0;

/** Every field an Advertisement offers, read (the parsed ones parse on first access). */
function readAll(ad: Advertisement): void {
  sink += ad.rssi + ad.address.length + ad.addressType.length + ad.timestamp + (ad.connectable ? 1 : 0) + (ad.scannable ? 2 : 0) +
    ad.data.length + (ad.scanResponse?.length ?? 0) + (ad.name?.length ?? 0) + ad.serviceUuids.length + ad.serviceData.size +
    ad.manufacturerData.size + (ad.txPower ?? 0) + (ad.flags ?? 0) + (ad.appearance ?? 0);
}

export async function blewireScanner(registryCapacity?: number) {
  const t = new BenchTransport();
  const adapter = await Adapter.open({ transport: t, bonds: false, registryCapacity });
  let n = 0;
  const session = adapter.scan({ duplicates: true, active: true, onAdvertisement: ad => { readAll(ad); n++; } });
  await adapter.scanner.settle();
  return { adapter, session, feed: feeder(p => t.receiver.packet(p)), delivered: () => n };
}

export async function nobleScanner() {
  // noble's whole stack: Noble ← hci-socket bindings ← hci.js/gap.js, the native socket replaced.
  loadNobleWithFakeSocket();
  const { withBindings } = require('@stoprocent/noble') as { withBindings(t: string, o: object): any };
  const noble = withBindings('hci', {});
  noble._initializeBindings();
  const bindings = noble._bindings;
  const hci = bindings._hci;
  // No device poll: the fake socket is always up.
  clearTimeout(hci._devUpPollTimer);
  hci._devUpPollTimer = 0;
  const socket = hci._socket as FakeHciSocket;
  bindings.onStateChange('poweredOn');
  let n = 0;
  noble.on('discover', (p: any) => {
    const a = p.advertisement;
    sink += p.rssi + p.address.length + p.addressType.length + (p.connectable ? 1 : 0) + (p.scannable ? 2 : 0) +
      (a.localName?.length ?? 0) + (a.serviceUuids?.length ?? 0) + (a.serviceData?.length ?? 0) +
      (a.manufacturerData?.length ?? 0) + (a.txPowerLevel ?? 0);
    n++;
  });
  noble.startScanning([], true);
  // LE Set Scan Enable's Command Complete: noble's gap moves to 'started'.
  socket.emit('data', Buffer.from([0x04, 0x0e, 0x04, 0x01, 0x0c, 0x20, 0x00]));
  await turn();
  return { noble, feed: feeder(p => socket.emit('data', p)), delivered: () => n,
    stop: () => { process.removeListener('exit', bindings._exitHandler); process.removeListener('SIGINT', bindings._sigIntHandler); } };
}

export async function bleHostScanner() {
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
  let n = 0;
  const scanner = manager.startScan({ activeScan: true, filterDuplicates: false });
  scanner.on('report', (r: any) => {
    const d = r.parsedDataItems;
    sink += r.rssi + r.address.length + r.addressType.length + (r.connectable ? 1 : 0) + (r.scannable ? 2 : 0) +
      (d.localName?.length ?? 0) + (d.serviceUuids?.length ?? 0) + (d.serviceData?.length ?? 0) +
      (d.manufacturerSpecificData?.length ?? 0) + (d.txPowerLevel ?? 0) + (d.appearance ?? 0) + (d.flags ? 1 : 0);
    n++;
  });
  for (let i = 0; i < 5; i++) await turn(); // let scan enable complete
  return { feed: feeder(p => transport.emit('data', p)), delivered: () => n };
}

export async function bench(): Promise<void> {
  const only = process.env.SCANNER_BENCH_CORPUS;
  if (only === undefined) {
    // One child process per corpus (see above), each printing its own table and machine line.
    const saved: Record<string, unknown> = {};
    for (const label of ['legacy', 'extended']) {
      const out = join(tmpdir(), `blewire-scanner-bench-${process.pid}-${label}.json`);
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)],
        { stdio: 'inherit', env: { ...process.env, SCANNER_BENCH_CORPUS: label, SCANNER_BENCH_OUT: out } });
      if (r.status !== 0) throw new Error(`scanner bench (${label}) exited with ${r.status ?? r.signal}`);
      saved[label] = JSON.parse(readFileSync(out, 'utf8'));
      rmSync(out, { force: true });
    }
    if (!process.env.BENCH_NO_SAVE) await saveResults('scanner', saved);
    return;
  }
  console.log(machineLine());
  const legacy = legacyCorpus();
  const extended = extendedCorpus();
  console.log(`scanner: ${ADVERTISERS} advertisers; legacy corpus ${legacy.length} events (ADV_IND + SCAN_RSP, ` +
    `${(corpusBytes(legacy) / 2 ** 20).toFixed(1)} MiB), extended ${extended.length} events ` +
    `(${(corpusBytes(extended) / 2 ** 20).toFixed(1)} MiB); fed in chunks of ${CHUNK}; every parsed field read`);

  const saved: Record<string, unknown> = {};
  const cleanup: Array<() => Promise<void> | void> = [];
  for (const [label, corpus] of ([['legacy', legacy], ['extended', extended]] as const).filter(([l]) => l === only)) {
    // Fresh stacks per corpus: noble keeps waiting for a scan response it saw once in the legacy stream.
    const bw = await blewireScanner();
    const no = await nobleScanner();
    cleanup.push(() => bw.session.stop(), () => bw.adapter.close(), no.stop);
    let bh: Awaited<ReturnType<typeof bleHostScanner>> | undefined;
    if (label === 'legacy') {
      try { bh = await bleHostScanner(); } catch (e) { console.log(`  ble-host: could not run (${(e as Error).message})`); }
    }
    const floor = advertisingFloor(feed => feeder(feed));
    const contenders: Array<Contender & { feed(c: Buffer[]): Promise<void> }> = [
      { name: 'blewire adapter.scan', feed: bw.feed, pass: () => bw.feed(corpus), delivered: bw.delivered, unit: 'advertisements' },
      { name: 'noble (whole stack)', feed: no.feed, pass: () => no.feed(corpus), delivered: no.delivered, unit: "'discover'" },
      ...(bh ? [{ name: 'ble-host startScan', feed: bh.feed, pass: () => bh!.feed(corpus), delivered: bh.delivered, unit: "'report'" }] : []),
      { name: 'floor', feed: floor.feed, pass: () => floor.feed(corpus), delivered: floor.delivered, unit: 'deliveries' },
    ];
    const results = await interleave(contenders, corpus.length);
    // Bytes allocated per report of a device already known whose data did not change: the first
    // visit of every advertiser fed again (harness.ts sampledAllocation), apart from the timed rounds.
    const batch = corpus.slice(0, label === 'legacy' ? 2 * ADVERTISERS : ADVERTISERS);
    for (let i = 0; i < results.length; i++) results[i]!.allocPerUnit = await sampledAllocation(() => contenders[i]!.feed(batch), batch.length);
    report(`${label} reports (alloc: per report of a known device, same data)`, results,
      { floor: 'floor', versus: ['noble (whole stack)', 'ble-host startScan'] });
    saved[label] = results;
  }
  writeFileSync(process.env.SCANNER_BENCH_OUT!, JSON.stringify(saved[only]));
  for (const c of cleanup) await c();
  if (sink === 0.5) console.log('');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  bench().catch(e => { console.error(e); process.exitCode = 1; });
}
