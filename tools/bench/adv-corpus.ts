/**
 * The advertising corpus every scanner figure is taken on (issue 14): legacy LE Advertising Report
 * events from 500 advertisers, each visit an ADV_IND followed by its SCAN_RSP, one report per event
 * as controllers send them, RSSI varying; and an extended stream (LE Extended Advertising Reports, the
 * same advertisers, advertising and scan response data in one report). A third of the advertisers
 * change their manufacturer data on every visit (a rolling counter, as beacons with a sequence number
 * or a sensor reading do): their reports bring new data that must be parsed again; the others repeat
 * themselves. Every packet is its own Buffer, as a transport's read hands them over; the corpus is
 * several times the L2 cache (its size is printed).
 */
import { encodeEvent } from '../../src/hci/packets.js';
import type { HciEvent } from '../../src/hci/events.js';

export const ADVERTISERS = 500;

let seed = 0x2545f491;
const rand = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };

export const hexAddr = (i: number, top = 0xc0): string =>
  [top | (i >> 24 & 0x3f), (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0x5a, 0x11]
    .map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

/** Flags, then 16-bit service UUIDs / Apple-style manufacturer data / Eddystone-style service data, then the name. */
export function advData(i: number, visit: number): Uint8Array {
  const name = Buffer.from(`Sensor-${i.toString(16)}`);
  const kind = i % 3;
  const parts: number[][] = [[0x02, 0x01, 0x06]];
  if (kind === 0) parts.push([0x05, 0x03, 0x0d, 0x18, 0x0f, 0x18]); // Heart Rate + Battery
  if (kind === 1) parts.push([0x0b, 0xff, 0x4c, 0x00, 0x10, 0x05, 0x01, 0x18, (i * 7) & 0xff, i & 0xff, visit & 0xff, (visit >> 8) & 0xff]);
  if (kind === 2) parts.push([0x07, 0x16, 0xaa, 0xfe, 0x10, 0x00, (i * 13) & 0xff, i & 0xff]);
  parts.push([name.length + 1, 0x08, ...name]);
  return Uint8Array.from(parts.flat().slice(0, 31));
}
export function scanRspData(i: number): Uint8Array {
  const name = Buffer.from(`Sensor-${i.toString(16)}-long`);
  return Uint8Array.from([name.length + 1, 0x09, ...name, 0x02, 0x0a, 0x04].slice(0, 31));
}

export function legacyEvent(address: string, eventType: number, data: Uint8Array, rssi: number): Buffer {
  const e: HciEvent = { kind: 'leAdvertisingReport', reports: [{ eventType, addressType: 1, address, data, rssi }] };
  return Buffer.from(encodeEvent(e));
}
export function extendedEvent(address: string, data: Uint8Array, rssi: number): Buffer {
  const e: HciEvent = { kind: 'leExtendedAdvertisingReport', reports: [{ eventType: 0x0001, addressType: 1, address, primaryPhy: 1,
    secondaryPhy: 2, advertisingSid: 1, txPower: 127, rssi, periodicAdvertisingInterval: 0, directAddressType: 0,
    directAddress: '00:00:00:00:00:00', data }] };
  return Buffer.from(encodeEvent(e));
}

/** `visits` rounds over the advertisers: ADV_IND then SCAN_RSP each (2 events per visit). */
export function legacyCorpus(visits = 100): Buffer[] {
  const out: Buffer[] = [];
  for (let v = 0; v < visits; v++) {
    for (let i = 0; i < ADVERTISERS; i++) {
      const a = hexAddr(i);
      const rssi = -40 - rand(50);
      out.push(legacyEvent(a, 0, advData(i, v), rssi));
      out.push(legacyEvent(a, 4, scanRspData(i), rssi));
    }
  }
  return out;
}

/**
 * `visits` rounds: one extended report per visit carrying advertising data, scan response and more.
 * `changes`: which reports bring new data ('third': the advertisers with a rolling counter, as above;
 * 'none': no report after each device's first; 'all': every report, by a counter in its last octet).
 */
export function extendedCorpus(visits = 100, changes: 'third' | 'none' | 'all' = 'third'): Buffer[] {
  const out: Buffer[] = [];
  for (let v = 0; v < visits; v++) {
    for (let i = 0; i < ADVERTISERS; i++) {
      const d = new Uint8Array([...advData(i, changes === 'none' ? 0 : v), ...scanRspData(i), 0x09, 0xff, 0x59, 0x00, 1, 2, 3, 4, 5,
        changes === 'all' ? v & 0xff : 6]);
      out.push(extendedEvent(hexAddr(i), d, -40 - rand(50)));
    }
  }
  return out;
}

/** Octets of packet data plus an estimate of the Buffer objects holding them (~ 96 B of heap each). */
export function corpusBytes(c: Buffer[]): number {
  let n = 0;
  for (const b of c) n += b.length + 96;
  return n;
}
