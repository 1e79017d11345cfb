/**
 * Seed inputs of the stream fuzzer: real traffic from the reference captures (captures/: real
 * phones and dongles, btvirt, BlueZ and noble as centrals, our simulator), split by layer, plus
 * synthetic templates for what the captures lack (every SMP and signalling code, every ATT opcode).
 * The mutations start from these, so most inputs get past the first length check into the layer.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCapture } from '../../src/capture/index.js';
import type { CaptureRecord } from '../../src/capture/index.js';
import { createCaptureWriter } from '../../src/capture/writer.js';
import { ATT_PDUS } from '../../src/att/pdus.js';
import { SIGNALLING_COMMANDS } from '../../src/l2cap/signalling.js';
import { SMP_PDUS } from '../../src/smp/pdus.js';
import { BlewireError } from '../../src/errors.js';
import { Rng } from './mutate.js';

export interface Corpus {
  /** Whole H4 event packets (0x04 …), advertising reports excluded. */
  events: Uint8Array[];
  /** AD payloads (the data of advertising reports). */
  ad: Uint8Array[];
  /** Whole L2CAP frames (basic header + payload) of any channel. */
  l2cap: Uint8Array[];
  /** ATT PDUs a server sends (responses, notifications, indications, errors): what our client receives. */
  attToClient: Uint8Array[];
  /** ATT PDUs a client sends (requests, commands, confirmations): what our server receives. */
  attToServer: Uint8Array[];
  signalling: Uint8Array[];
  smp: Uint8Array[];
  /** Small capture files (≤ 48 records each) in btsnoop, pcap and pcapng. */
  captureFiles: Uint8Array[];
}

const ROOT = new URL('../../captures/', import.meta.url);

function captureFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...captureFilesUnder(p));
    else if (/\.(btsnoop|pcap|pcapng)$/.test(name)) out.push(p);
  }
  return out.sort();
}

/**
 * ATT PDUs a server sends have odd opcodes (Vol 3, Part F, 3.4.8): Error Response, every response,
 * Handle Value Notification / Indication, Multiple Handle Value Notification; a client's requests,
 * commands and Handle Value Confirmation are even.
 */
function serverToClient(opcode: number): boolean {
  return (opcode & 1) === 1;
}

let cached: Corpus | undefined;

export function loadCorpus(): Corpus {
  if (cached) return cached;
  const c: Corpus = { events: [], ad: [], l2cap: [], attToClient: [], attToServer: [], signalling: [], smp: [], captureFiles: [] };
  const seen = new Map<Uint8Array[], Set<string>>();
  const add = (list: Uint8Array[], b: Uint8Array, cap: number): void => {
    if (list.length >= cap) return;
    let set = seen.get(list);
    if (!set) seen.set(list, (set = new Set()));
    const key = Buffer.from(b).toString('hex');
    if (set.has(key)) return;
    set.add(key);
    list.push(Uint8Array.from(b));
  };
  const rng = new Rng(0xc0ffee);
  for (const file of captureFilesUnder(ROOT.pathname)) {
    const bytes = new Uint8Array(readFileSync(file));
    let records: CaptureRecord[];
    try {
      records = [...parseCapture(bytes)];
    } catch (e) {
      if (e instanceof BlewireError) continue;
      throw e;
    }
    for (const r of records) {
      const p = r.packet;
      if (!p || p.length < 2) continue;
      if (p[0] === 0x04) {
        // LE Advertising Report (Vol 4, Part E, 7.7.65.2): one report per event in practice.
        if (p[1] === 0x3e && p[3] === 0x02 && p.length > 14) {
          const len = p[13]!;
          add(c.ad, p.subarray(14, 14 + len), 4000);
        } else if (p[1] === 0x3e && p[3] === 0x0d && p.length > 29) {
          const len = p[29]!;
          add(c.ad, p.subarray(30, 30 + len), 4000);
        } else {
          add(c.events, p, 4000);
        }
      } else if (p[0] === 0x02 && p.length >= 9) {
        const pb = (p[2]! >> 4) & 3;
        const len = p[5]! | (p[6]! << 8);
        if (pb !== 2 || len !== p.length - 9) continue; // whole single-fragment PDUs only
        const frame = p.subarray(5);
        add(c.l2cap, frame, 4000);
        const cid = frame[2]! | (frame[3]! << 8);
        const sdu = frame.subarray(4);
        if (sdu.length === 0) continue;
        if (cid === 0x0004) add(serverToClient(sdu[0]!) ? c.attToClient : c.attToServer, sdu, 4000);
        else if (cid === 0x0005) add(c.signalling, sdu, 2000);
        else if (cid === 0x0006) add(c.smp, sdu, 2000);
      }
    }
    // Small files of every format from this capture's records: 48-record slices, a few per file.
    for (let k = 0; k < 6 && records.length > 0; k++) {
      const start = rng.int(records.length);
      const slice = records.slice(start, start + 48);
      for (const format of ['btsnoop', 'pcap', 'pcapng'] as const) {
        const chunks: Uint8Array[] = [];
        const w = createCaptureWriter(b => chunks.push(Uint8Array.from(b)), { format, monitor: rng.chance(0.3) });
        for (const r of slice) {
          try { w.write(r); } catch (e) { if (!(e instanceof BlewireError)) throw e; }
        }
        w.close();
        c.captureFiles.push(Buffer.concat(chunks));
      }
    }
  }
  // Synthetic templates: every code of each table with a plausible body.
  for (const row of Object.values(ATT_PDUS) as Array<{ code: number }>) {
    for (const len of [0, 2, 4, 6, 18]) {
      const b = Uint8Array.of(row.code, ...rng.bytes(len));
      if (len >= 2) { b[1] = 1 + rng.int(0x30); b[2] = 0; } // a small handle, as real databases have
      add(serverToClient(row.code) ? c.attToClient : c.attToServer, b, 6000);
    }
  }
  for (const row of Object.values(SIGNALLING_COMMANDS) as Array<{ code: number }>) {
    for (const len of [0, 2, 4, 8, 10]) {
      add(c.signalling, Uint8Array.of(row.code, 1 + rng.int(255), len, 0, ...rng.bytes(len)), 3000);
    }
  }
  const SMP_SIZES: Record<number, number> = { 1: 6, 2: 6, 3: 16, 4: 16, 5: 1, 6: 16, 7: 10, 8: 16, 9: 7, 10: 16, 11: 1, 12: 64, 13: 16, 14: 1 };
  for (const row of Object.values(SMP_PDUS) as Array<{ code: number }>) {
    for (let k = 0; k < 4; k++) {
      const body = rng.bytes(SMP_SIZES[row.code] ?? 0);
      if (row.code === 1 || row.code === 2) { body[0] = rng.int(5); body[1] = rng.int(2); body[2] = rng.u32() & 0x2d; body[3] = 7 + rng.int(10); body[4] &= 0x0f; body[5] &= 0x0f; }
      add(c.smp, Uint8Array.of(row.code, ...body), 3000);
    }
  }
  for (const s of c.signalling) add(c.l2cap, Uint8Array.of(s.length & 0xff, s.length >> 8, 0x05, 0x00, ...s), 8000);
  for (const s of c.smp) add(c.l2cap, Uint8Array.of(s.length & 0xff, s.length >> 8, 0x06, 0x00, ...s), 8000);
  if (c.ad.length === 0) c.ad.push(Uint8Array.of(2, 1, 6, 5, 9, 0x61, 0x62, 0x63, 0x64));
  cached = c;
  return c;
}
