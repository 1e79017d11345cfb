import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../../src/bytes/hex.js';
import { DecodeError, EncodeError } from '../../../src/errors.js';
import {
  createCaptureWriter, formatFromPath, openCaptureFile, parseCapture, readCaptureFile, MONITOR_OPCODE,
  type CaptureFormat, type CaptureRecordInput,
} from '../../../src/capture/index.js';
import { SESSION } from './session.js';

const FORMATS: CaptureFormat[] = ['btsnoop', 'pcap', 'pcapng'];

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

function writeAll(format: CaptureFormat, records: CaptureRecordInput[], monitor = false): { bytes: Uint8Array; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  const w = createCaptureWriter(c => chunks.push(c), { format, monitor });
  for (const r of records) w.write(r);
  w.close();
  return { bytes: concat(chunks), chunks };
}

const view = (r: { dir: string; timeUs: number; packet?: Uint8Array; adapter?: number }) =>
  ({ dir: r.dir, timeUs: r.timeUs, packet: r.packet && toHex(r.packet), adapter: r.adapter });

describe('capture writers round-trip through the readers', () => {
  for (const format of FORMATS) {
    it(`${format}: H4 packets, directions and µs timestamps survive`, () => {
      const { bytes } = writeAll(format, SESSION);
      const back = [...parseCapture(bytes)];
      expect(back.map(r => r.frame)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(back.map(view)).toEqual(SESSION.map(r => view(r)));
    });

    it(`${format} (Linux monitor): adapters, notes and packets survive`, () => {
      const records: CaptureRecordInput[] = [
        { dir: 'rx', timeUs: 1_600_000_000_000_000, monitorOpcode: MONITOR_OPCODE.systemNote, note: 'blewire test' },
        ...SESSION.map((r, i) => ({ ...r, adapter: i % 2 })),
        { dir: 'rx', timeUs: 1_700_000_002_000_000, adapter: 1, monitorOpcode: MONITOR_OPCODE.userLogging, note: 'hello' },
      ];
      const back = [...parseCapture(writeAll(format, records, true).bytes)];
      expect(back.length).toBe(records.length);
      expect(back[0]).toMatchObject({ frame: 1, monitorOpcode: 12, note: 'blewire test' });
      expect(back[0]!.packet).toBeUndefined();
      expect(back.slice(1, -1).map(view)).toEqual(records.slice(1, -1).map(r => view(r)));
      expect(back.at(-1)).toMatchObject({ adapter: 1, monitorOpcode: 13, note: 'blewire: hello' });
    });
  }

  it('pcapng keeps adapters in H4 mode by giving each its own hciN interface', () => {
    const records = SESSION.map((r, i) => ({ ...r, adapter: i < 3 ? 2 : 0 }));
    const back = [...parseCapture(writeAll('pcapng', records).bytes)];
    expect(back.map(r => r.adapter)).toEqual([2, 2, 2, 0, 0, 0]);
  });

  it('btsnoop writes the exact bytes of the Frontline format (flags, µs since year 0)', () => {
    const { chunks } = writeAll('btsnoop', SESSION.slice(0, 2));
    expect(toHex(chunks[0]!)).toBe('6274736e6f6f7000' + '00000001' + '000003ea');
    // orig 4, incl 4, flags 2 (command, sent), drops 0, 1.7e15 µs + 0x00DCDDB30F2F8000.
    const ts = (1_700_000_000_000_000n + 0x00dcddb30f2f8000n).toString(16).padStart(16, '0');
    expect(toHex(chunks[1]!)).toBe('00000004' + '00000004' + '00000002' + '00000000' + ts + '01030c00');
    expect(toHex(chunks[2]!.subarray(8, 12))).toBe('00000003'); // event, received
  });

  it('pcap writes LINKTYPE 201 with a big-endian direction word', () => {
    const { chunks } = writeAll('pcap', SESSION.slice(1, 2));
    expect(toHex(chunks[0]!)).toBe('a1b2c3d4' + '0002' + '0004' + '00000000' + '00000000' + '00040000' + '000000c9');
    expect(toHex(chunks[1]!)).toBe('6553f100' + '000000fa' + '0000000b' + '0000000b' + '00000001' + '040e0401030c00');
  });

  it('H4 formats skip records without a packet and say so', () => {
    const w = createCaptureWriter(() => {}, { format: 'btsnoop' });
    expect(w.write({ dir: 'rx', timeUs: 0, monitorOpcode: MONITOR_OPCODE.systemNote, note: 'x' })).toBe(false);
    expect(w.write(SESSION[0]!)).toBe(true);
    expect(w.count).toBe(1);
  });

  it('rejects what it cannot encode instead of writing a broken file', () => {
    const w = createCaptureWriter(() => {}, { format: 'pcap', monitor: true });
    expect(() => w.write({ dir: 'tx', timeUs: 0, packet: Uint8Array.of(0x09, 0x00) })).toThrow(EncodeError);
    expect(() => w.write({ dir: 'tx', timeUs: -1, packet: SESSION[0]!.packet! })).toThrow(EncodeError);
    w.close();
    expect(() => w.write(SESSION[0]!)).toThrow(/closed/);
  });

  it('the writer copies: changing a packet after write() does not change the file', () => {
    const chunks: Uint8Array[] = [];
    const w = createCaptureWriter(c => chunks.push(c), { format: 'pcapng' });
    const packet = Uint8Array.from(SESSION[0]!.packet!);
    w.write({ dir: 'tx', timeUs: 1, packet });
    packet.fill(0xee);
    expect(toHex([...parseCapture(concat(chunks))][0]!.packet!)).toBe('01030c00');
  });

  it('openCaptureFile picks the format from the extension and writes synchronously', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blewire-cap-'));
    try {
      for (const [name, magic] of [['a.btsnoop', '6274736e'], ['b.log', '6274736e'], ['c.cfa', '6274736e'], ['d.pcap', 'a1b2c3d4'], ['e.pcapng', '0a0d0d0a']] as const) {
        const path = join(dir, name);
        const w = openCaptureFile(path);
        w.write(SESSION[0]!);
        // Already on disk before close(): a live capture can be tailed.
        expect([...parseCapture(readFileSync(path))].length).toBe(1);
        w.write(SESSION[1]!);
        w.close();
        expect(toHex(readFileSync(path).subarray(0, 4))).toBe(magic);
        const recs = [];
        for await (const r of readCaptureFile(path)) recs.push(r);
        expect(recs.map(view)).toEqual(SESSION.slice(0, 2).map(r => view(r)));
      }
      expect(formatFromPath('x.txt')).toBeUndefined();
      expect(() => openCaptureFile(join(dir, 'x.txt'))).toThrow(/\.btsnoop/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('truncated and corrupt files', () => {
  for (const format of FORMATS) {
    for (const monitor of [false, true]) {
      it(`${format}${monitor ? ' (monitor)' : ''}: cut at every byte → every whole record, then a DecodeError naming record and offset`, () => {
        const records = SESSION.map((r, i) => ({ ...r, adapter: i % 2 }));
        const chunks: Uint8Array[] = [];
        // Remember where each record starts and how many records precede it.
        const starts: { at: number; end: number; record?: number }[] = [];
        let offset = 0;
        let count = 0;
        const w = createCaptureWriter(c => {
          chunks.push(c);
          starts.push({ at: offset, end: offset + c.length });
          offset += c.length;
        }, { format, monitor });
        starts[0]!.record = 0;
        for (const r of records) {
          w.write(r);
          starts.at(-1)!.record = ++count; // the record itself is the last chunk of each write()
        }
        const bytes = concat(chunks);
        for (let cut = 0; cut < bytes.length; cut++) {
          const got: number[] = [];
          let error: unknown;
          try {
            for (const r of parseCapture(bytes.subarray(0, cut))) got.push(r.frame);
          } catch (e) {
            error = e;
          }
          const whole = starts.filter(s => s.end <= cut && s.record !== undefined && s.record > 0).length;
          expect(got).toEqual(Array.from({ length: whole }, (_, i) => i + 1));
          const inside = starts.find(s => s.at <= cut && cut < s.end)!;
          if (inside.at === cut && cut > 0) {
            expect(error).toBeUndefined();
            continue;
          }
          expect(error).toBeInstanceOf(DecodeError);
          const e = error as DecodeError;
          expect(e.layer).toBe('capture');
          expect(e.offset).toBe(inside.at);
          if (inside.at > 0) expect(e.what).toMatch(new RegExp(`record ${whole + 1}$`));
        }
      });
    }
  }

  it('a corrupt length in the middle: the good records first, then the error at that record', () => {
    const { bytes, chunks } = writeAll('btsnoop', SESSION);
    const bad = Uint8Array.from(bytes);
    const third = chunks[0]!.length + chunks[1]!.length + chunks[2]!.length;
    new DataView(bad.buffer).setUint32(third + 4, 0xfffffff0);
    const got: number[] = [];
    expect(() => { for (const r of parseCapture(bad)) got.push(r.frame); }).toThrow(
      `capture: cannot decode btsnoop record 3 at offset ${third + 4}: included length 4294967280 is implausible (corrupt file?)`);
    expect(got).toEqual([1, 2]);
  });

  it('names what is wrong with a bad header', () => {
    const first = (b: Uint8Array) => () => [...parseCapture(b)];
    expect(first(new Uint8Array(0))).toThrow(/empty/);
    expect(first(new TextEncoder().encode('hello world, not a capture'))).toThrow(/not a btsnoop, pcap or pcapng file \(starts with 68 65 6c/);
    const v2 = Uint8Array.from(writeAll('btsnoop', []).bytes);
    v2[11] = 2;
    expect(first(v2)).toThrow(/btsnoop version 2/);
    const h1003 = Uint8Array.from(writeAll('btsnoop', []).bytes);
    h1003[15] = 0xeb;
    expect(first(h1003)).toThrow(/datalink 1003/);
    const ether = Uint8Array.from(writeAll('pcap', []).bytes);
    ether[23] = 1;
    expect(first(ether)).toThrow(/link type 1 /);
  });

  it('an included length above the original length is corrupt; a shorter one is a snapshot, kept with originalLength', () => {
    const { bytes, chunks } = writeAll('btsnoop', SESSION.slice(0, 1));
    const at = chunks[0]!.length;
    const snap = Uint8Array.from(bytes);
    new DataView(snap.buffer).setUint32(at, 40);
    expect([...parseCapture(snap)][0]).toMatchObject({ originalLength: 40 });
    const bad = Uint8Array.from(bytes);
    new DataView(bad.buffer).setUint32(at, 2);
    expect(() => [...parseCapture(bad)]).toThrow(/record 1 at offset 20: included length 4 exceeds original length 2/);
  });
});
