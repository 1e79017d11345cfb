/**
 * HCI decode throughput (issue 2, "Speed"): LE Advertising Report and LE Extended Advertising Report
 * streams with realistic AD, then every packet of each real capture. Prints reports/s, packets/s,
 * MB/s and approximate bytes allocated per packet. Figures only, never pass/fail.
 *
 *   npx tsx tools/bench/hci-decode.bench.ts            (allocation figures need: node --expose-gc)
 *   node --expose-gc --import tsx tools/bench/hci-decode.bench.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCapture } from '../../src/capture/index.js';
import { decodeHciPacket, encodeEvent } from '../../src/hci/packets.js';
import type { HciEvent } from '../../src/hci/events.js';

const CAPTURES = fileURLToPath(new URL('../../captures/real/', import.meta.url));

/** Deterministic PRNG so every run decodes the same stream. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 0x100000000);
}

function address(rand: () => number): string {
  return Array.from({ length: 6 }, () => Math.floor(rand() * 256).toString(16).padStart(2, '0')).join(':');
}

/** Realistic AD: flags, a 16-bit UUID list, a short name, manufacturer data (≈ 20–31 bytes). */
function adPayload(rand: () => number, max: number): Uint8Array {
  const name = 'Sensor-' + Math.floor(rand() * 10000);
  const parts: number[] = [0x02, 0x01, 0x06, 0x03, 0x03, 0x0d, 0x18, name.length + 1, 0x09, ...Buffer.from(name)];
  const mfr = Math.floor(rand() * 8) + 2;
  parts.push(mfr + 3, 0xff, 0x4c, 0x00, ...Array.from({ length: mfr }, () => Math.floor(rand() * 256)));
  return Uint8Array.from(parts.slice(0, max));
}

function legacyStream(n: number): Uint8Array[] {
  const rand = rng(1);
  return Array.from({ length: n }, () => encodeEvent({
    kind: 'leAdvertisingReport',
    reports: [{ eventType: 0, addressType: 1, address: address(rand), data: adPayload(rand, 31), rssi: -40 - Math.floor(rand() * 50) }],
  } as HciEvent));
}

function extendedStream(n: number): Uint8Array[] {
  const rand = rng(2);
  return Array.from({ length: n }, () => encodeEvent({
    kind: 'leExtendedAdvertisingReport',
    reports: [{
      eventType: 0x0013, addressType: 1, address: address(rand), primaryPhy: 1, secondaryPhy: 0, advertisingSid: 0xff,
      txPower: 127, rssi: -40 - Math.floor(rand() * 50), periodicAdvertisingInterval: 0, directAddressType: 0,
      directAddress: '00:00:00:00:00:00', data: adPayload(rand, 31),
    }],
  } as HciEvent));
}

// A module-local binding: some loaders turn imported bindings into getter calls.
const decode = decodeHciPacket;

interface Figures { perSec: number; mbPerSec: number; wallPerSec: number; bytesPerPacket: number | undefined }

/**
 * Throughput per second of this process's CPU time (user + system, process.cpuUsage), the median of
 * several trials. The machine is shared by many busy processes, so wall-clock rates mostly measure
 * the scheduler; CPU time measures what one core does. Trials are long enough (300 ms of CPU) that
 * tick-based CPU accounting does not skew them, and the median is reported, not the best. GC helper
 * threads also count as CPU time, which makes the figure slightly conservative.
 */
function run(packets: Uint8Array[], itemsPerPacket: number[], trials = 5, trialMs = 300): Figures {
  let bytes = 0, items = 0;
  for (let i = 0; i < packets.length; i++) { bytes += packets[i]!.length; items += itemsPerPacket[i]!; }
  let sink = 0;
  for (let w = 0; w < 3; w++) for (const p of packets) sink += decode(p).type.length; // warm up
  const rates: number[] = [];
  const walls: number[] = [];
  for (let t = 0; t < trials; t++) {
    let rounds = 0;
    const w0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    let cpuMs = 0;
    do {
      for (let i = 0; i < packets.length; i++) sink += decode(packets[i]!).type.length;
      rounds++;
      const c = process.cpuUsage(c0);
      cpuMs = (c.user + c.system) / 1000;
    } while (cpuMs < trialMs);
    rates.push(rounds / (cpuMs / 1000));
    walls.push(rounds / (Number(process.hrtime.bigint() - w0) / 1e9));
  }
  const med = (v: number[]): number => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const median = med(rates);
  if (sink === 0) console.log('');
  return { perSec: items * median, mbPerSec: (bytes * median) / 1e6, wallPerSec: items * med(walls), bytesPerPacket: allocPerPacket(packets) };
}

/**
 * Approximate bytes allocated per decoded packet: heap growth across a batch small enough that no
 * scavenge runs in between (results are dropped at once). Needs --expose-gc; undefined without it.
 */
function allocPerPacket(packets: Uint8Array[]): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const batch = Math.min(packets.length, 2000);
  const samples: number[] = [];
  for (let k = 0; k < 5; k++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < batch; i++) decodeHciPacket(packets[i]!);
    const after = process.memoryUsage().heapUsed;
    if (after > before) samples.push((after - before) / batch);
  }
  samples.sort((a, b) => a - b);
  return samples.length ? samples[Math.floor(samples.length / 2)] : undefined;
}

const fmt = (n: number): string => n >= 1e6 ? (n / 1e6).toFixed(2) + ' M' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : n.toFixed(0) + ' ';
const alloc = (b: number | undefined): string => b === undefined ? 'n/a (run with --expose-gc)' : `${b.toFixed(0)} B/packet`;

export async function bench(): Promise<void> {
  console.log('hci-decode: decodeHciPacket, rates per CPU-second of one core (median of 5 trials)');
  const legacy = legacyStream(4096);
  const l = run(legacy, legacy.map(() => 1));
  console.log(`  legacy advertising reports:   ${fmt(l.perSec)}reports/s  ${l.mbPerSec.toFixed(1)} MB/s  alloc ≈ ${alloc(l.bytesPerPacket)}  (wall clock: ${fmt(l.wallPerSec)}/s)`);
  const ext = extendedStream(4096);
  const e = run(ext, ext.map(() => 1));
  console.log(`  extended advertising reports: ${fmt(e.perSec)}reports/s  ${e.mbPerSec.toFixed(1)} MB/s  alloc ≈ ${alloc(e.bytesPerPacket)}  (wall clock: ${fmt(e.wallPerSec)}/s)`);
  for (const f of readdirSync(CAPTURES).filter(n => n.endsWith('.btsnoop')).sort()) {
    const packets: Uint8Array[] = [];
    for (const rec of parseCapture(readFileSync(join(CAPTURES, f)))) if (rec.packet) packets.push(rec.packet);
    const c = run(packets, packets.map(() => 1), 3);
    console.log(`  ${f.padEnd(34)} ${String(packets.length).padStart(5)} packets  ${fmt(c.perSec)}packets/s  ` +
      `${c.mbPerSec.toFixed(1)} MB/s  alloc ≈ ${alloc(c.bytesPerPacket)}  (wall clock: ${fmt(c.wallPerSec)}/s)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  await bench();
}
