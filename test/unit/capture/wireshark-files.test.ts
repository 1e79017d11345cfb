import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { toHex } from '../../../src/bytes/hex.js';
import { parseCapture } from '../../../src/capture/index.js';

const DATA = new URL('./data/', import.meta.url).pathname;
const CAPTURES = new URL('../../../captures/', import.meta.url).pathname;
const read = (p: string) => [...parseCapture(readFileSync(p))];
const view = (r: { frame: number; dir: string; timeUs: number; packet?: Uint8Array; adapter?: number; monitorOpcode?: number }) =>
  [r.frame, r.dir, r.timeUs, r.packet && toHex(r.packet), r.adapter, r.monitorOpcode];

// The files in data/ were made by Wireshark's editcap 4.0.17 from the reference captures
// (`editcap -F pcapng|pcap|nsecpcap [-r SRC 1-N]`): what Wireshark itself saves.
describe('files saved by Wireshark', () => {
  it('pcapng (LINKTYPE 201) holds exactly the records of the btsnoop it came from', () => {
    const original = read(CAPTURES + 'real/pixel6-init-extscan.btsnoop');
    const converted = read(DATA + 'pixel6-wireshark.pcapng');
    expect(converted.length).toBe(222);
    expect(converted.map(view)).toEqual(original.map(view));
  });

  it('pcapng (LINKTYPE 254) keeps monitor records, adapters and frame numbers', () => {
    const original = read(CAPTURES + 'emulated/noble-2.8.0-central.btsnoop').slice(0, 300);
    const converted = read(DATA + 'noble-monitor-1-300.pcapng');
    expect(converted.map(view)).toEqual(original.map(view));
    expect(converted.filter(r => r.packet).length).toBeGreaterThan(0);
  });

  it('pcap with µs and with ns timestamps', () => {
    const original = read(CAPTURES + 'real/pixel6-init-extscan.btsnoop');
    expect(read(DATA + 'pixel6-wireshark.pcap').map(view)).toEqual(original.slice(0, 100).map(view));
    const nsec = read(DATA + 'pixel6-nsec.pcap');
    expect(nsec.map(view)).toEqual(original.slice(0, 50).map(view));
    expect(nsec[49]!.timeUs).toBe(1674874116444475);
  });
});

/** Big-endian pcapng written by hand: SHB, IDB with ns resolution and if_name, EPB, SPB, an NRB. */
function bigEndianPcapng(): Uint8Array {
  const blocks: number[][] = [];
  const block = (type: number, body: number[]) => {
    const len = 12 + body.length;
    const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    blocks.push([...u32(type), ...u32(len), ...body, ...u32(len)]);
  };
  const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  const u16 = (v: number) => [(v >>> 8) & 255, v & 255];
  block(0x0a0d0d0a, [...u32(0x1a2b3c4d), ...u16(1), ...u16(0), ...u32(0xffffffff), ...u32(0xffffffff)]);
  // IDB: linktype 201, snaplen 0; options if_name "hci3" (code 2), if_tsresol 9 (code 9), end.
  block(1, [...u16(201), 0, 0, ...u32(0), ...u16(2), ...u16(4), 0x68, 0x63, 0x69, 0x33, ...u16(9), ...u16(1), 9, 0, 0, 0, 0, 0, 0, 0]);
  // EPB at 1_700_000_000.123456789 s in ns: 1700000000123456789 = 0x17975BA3_6B4E9F15
  const ns = 1_700_000_000_123_456_789n;
  const hi = Number(ns >> 32n), lo = Number(ns & 0xffffffffn);
  block(6, [...u32(0), ...u32(hi), ...u32(lo), ...u32(8), ...u32(8), 0, 0, 0, 1, 0x04, 0x0e, 0x01, 0x01]);
  block(4, [0, 0, 0, 0]); // Name Resolution Block: not a frame
  // SPB: original length 8, the same event again, direction word 1.
  block(3, [...u32(8), 0, 0, 0, 1, 0x04, 0x0e, 0x01, 0x02]);
  return Uint8Array.from(blocks.flat());
}

describe('pcapng details', () => {
  it('reads a big-endian section with ns resolution, named interfaces, simple packet blocks and skips other blocks', () => {
    const recs = [...parseCapture(bigEndianPcapng())];
    expect(recs.map(view)).toEqual([
      [1, 'rx', 1_700_000_000_123_456, '040e0101', 3, undefined],
      [2, 'rx', 0, '040e0102', 3, undefined],
    ]);
  });

  it('a trailing block length that disagrees is corruption at that block', () => {
    const bytes = bigEndianPcapng();
    bytes[bytes.length - 1] ^= 4; // the SPB's trailing length
    const got: number[] = [];
    expect(() => { for (const r of parseCapture(bytes)) got.push(r.frame); }).toThrow(/pcapng record 2 at offset \d+: trailing block length/);
    expect(got).toEqual([1]);
  });

  it('a packet for an interface that was never described is corruption', () => {
    const bytes = bigEndianPcapng();
    // Point the EPB (after the 28-byte SHB and the 40-byte IDB) at interface 5.
    bytes[28 + 40 + 11] = 5;
    expect(() => [...parseCapture(bytes)]).toThrow(/record 1 at offset 76: packet refers to interface 5, but only 1 are described/);
  });
});
