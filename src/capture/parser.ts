import { DecodeError } from '../errors.js';
import { equalBytes } from '../bytes/hex.js';
import { H4 } from '../codec/h4.js';
import { monitorToRecord } from './monitor.js';
import type { CaptureRecord } from './types.js';

/**
 * Incremental capture-file parser shared by the in-memory reader (parseCapture) and the streaming
 * file reader (readCaptureFile). Bytes are pushed in whatever chunks arrive; next() hands out one
 * record at a time or undefined when it needs more bytes; end() says the input is over and throws if
 * it stopped in the middle of something. A file is a sequence of "units" (file header, records,
 * pcapng blocks); each format says how long the next unit is from its first few bytes and turns a
 * complete unit into a record (or nothing, for headers and pcapng blocks that are not packets).
 *
 * Memory: the parser holds at most one unfinished unit plus the current chunk. Units are capped at
 * MAX_UNIT bytes so a corrupt length field cannot make it buffer a whole file.
 *
 * Ownership (STYLE c.7): a chunk handed to push() must never be written again by the caller. With
 * `copy: false` packets are views of the chunk (parseCapture: the caller's bytes); with `copy: true`
 * every packet is its own allocation, so a retained packet does not pin a whole read chunk.
 */

/** The largest unit we accept: far above any HCI packet (ACL ≤ 65,539 + headers) or snapshot length. */
export const MAX_UNIT = 1 << 20;

/** 2000-01-01T00:00:00Z in btsnoop's µs-since-year-0 (Frontline btsnoop spec), minus 946,684,800 s. */
export const BTSNOOP_EPOCH_DELTA = 0x00dcddb30f2f8000n;
const DELTA_HI = 0x00dcddb3;
const DELTA_LO = 0x0f2f8000;
const TWO32 = 4294967296;

export const BTSNOOP_MAGIC = [0x62, 0x74, 0x73, 0x6e, 0x6f, 0x6f, 0x70, 0x00]; // "btsnoop\0"
export const BTSNOOP_DATALINK = { h1: 1001, h4: 1002, monitor: 2001 } as const;
export const LINKTYPE = { h4WithPhdr: 201, linuxMonitor: 254 } as const;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;

interface Failure { reason: string; at?: number }
const fail = (reason: string, at?: number): never => {
  throw { reason, at } satisfies Failure;
};

/** One capture format's view of its own units. */
interface FormatReader {
  readonly name: string;
  /** How many bytes unitLength() needs to see. */
  prefix(): number;
  /** Total length of the unit starting at `pos` (needs prefix() bytes there). */
  unitLength(buf: Uint8Array, pos: number): number;
  /** Turn a complete unit into a record, or undefined when it is not a packet. `copy`: packets must not alias `unit`. */
  decode(unit: Uint8Array, frame: number, copy: boolean): CaptureRecord | undefined;
}

const u32be = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const u32le = (b: Uint8Array, o: number): number => ((b[o + 3]! << 24) | (b[o + 2]! << 16) | (b[o + 1]! << 8) | b[o]!) >>> 0;
const u16be = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u16le = (b: Uint8Array, o: number): number => (b[o + 1]! << 8) | b[o]!;

function checkUnit(len: number, what: string, at: number): number {
  if (len > MAX_UNIT) fail(`${what} length ${len} is implausible (corrupt file?)`, at);
  return len;
}

// ---------------------------------------------------------------------------------------------------
// btsnoop (Frontline "btsnoop" format, as written by Android, BlueZ btmon -w and Bumble)

class BtsnoopReader implements FormatReader {
  readonly name = 'btsnoop';
  private datalink = 0;

  prefix(): number {
    return this.datalink === 0 ? 16 : 24;
  }
  unitLength(buf: Uint8Array, pos: number): number {
    if (this.datalink === 0) return 16;
    const incl = u32be(buf, pos + 4);
    return 24 + checkUnit(incl, 'included', 4);
  }
  decode(unit: Uint8Array, frame: number, copy: boolean): CaptureRecord | undefined {
    if (this.datalink === 0) {
      for (let i = 0; i < 8; i++) if (unit[i] !== BTSNOOP_MAGIC[i]) fail('bad btsnoop magic', i);
      const version = u32be(unit, 8);
      if (version !== 1) fail(`unsupported btsnoop version ${version} (only 1 exists)`, 8);
      const datalink = u32be(unit, 12);
      if (datalink !== BTSNOOP_DATALINK.h1 && datalink !== BTSNOOP_DATALINK.h4 && datalink !== BTSNOOP_DATALINK.monitor) {
        fail(`unsupported btsnoop datalink ${datalink} (supported: 1001 H1, 1002 H4, 2001 Linux monitor)`, 12);
      }
      this.datalink = datalink;
      return undefined;
    }
    const orig = u32be(unit, 0);
    const incl = unit.length - 24;
    if (incl > orig) fail(`included length ${incl} exceeds original length ${orig}`, 4);
    const flags = u32be(unit, 8);
    // µs since year 0 → µs since 1970, split in 32-bit halves so no precision is lost in a double.
    const timeUs = (u32be(unit, 16) - DELTA_HI) * TWO32 + (u32be(unit, 20) - DELTA_LO);
    const data = unit.subarray(24);
    let rec: CaptureRecord;
    if (this.datalink === BTSNOOP_DATALINK.h4) {
      rec = { frame, dir: flags & 1 ? 'rx' : 'tx', timeUs, packet: copy ? data.slice() : data };
    } else if (this.datalink === BTSNOOP_DATALINK.monitor) {
      // BlueZ doc/btsnoop.txt: for datalink 2001 the flags word is (controller index << 16) | opcode.
      const body = monitorToRecord(flags >>> 16, flags & 0xffff, data);
      rec = { frame, timeUs, ...body };
      if (body.monitorOpcode !== undefined && data.length) rec.monitorData = data.slice();
    } else {
      // H1 (1001) stores no indicator byte: flags bit 1 = command/event, bit 0 = received.
      const rx = (flags & 1) !== 0;
      const indicator = flags & 2 ? (rx ? H4.event : H4.command) : H4.acl;
      const packet = new Uint8Array(data.length + 1);
      packet[0] = indicator;
      packet.set(data, 1);
      rec = { frame, dir: rx ? 'rx' : 'tx', timeUs, packet };
    }
    if (incl < orig) rec.originalLength = orig + (this.datalink === BTSNOOP_DATALINK.h4 ? 0 : 1);
    return rec;
  }
}

// ---------------------------------------------------------------------------------------------------
// pcap (LINKTYPE 201 BLUETOOTH_HCI_H4_WITH_PHDR, LINKTYPE 254 BLUETOOTH_LINUX_MONITOR)

class PcapReader implements FormatReader {
  readonly name = 'pcap';
  private header = true;
  private le = false;
  private nanos = false;
  private linktype = 0;

  prefix(): number {
    return this.header ? 24 : 16;
  }
  unitLength(buf: Uint8Array, pos: number): number {
    if (this.header) return 24;
    const incl = this.le ? u32le(buf, pos + 8) : u32be(buf, pos + 8);
    return 16 + checkUnit(incl, 'captured', 8);
  }
  decode(unit: Uint8Array, frame: number, copy: boolean): CaptureRecord | undefined {
    const u32 = this.le ? u32le : u32be;
    if (this.header) {
      const magic = u32be(unit, 0);
      if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) this.le = false;
      else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) this.le = true;
      else fail('bad pcap magic', 0);
      this.nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
      // The top bits of the link-type word carry FCS information (pcap spec, LinkType and additional information).
      this.linktype = (this.le ? u32le : u32be)(unit, 20) & 0x0fffffff;
      if (this.linktype !== LINKTYPE.h4WithPhdr && this.linktype !== LINKTYPE.linuxMonitor) {
        fail(`unsupported pcap link type ${this.linktype} (supported: 201 BLUETOOTH_HCI_H4_WITH_PHDR, 254 BLUETOOTH_LINUX_MONITOR)`, 20);
      }
      this.header = false;
      return undefined;
    }
    const sub = u32(unit, 4);
    const timeUs = u32(unit, 0) * 1e6 + (this.nanos ? Math.floor(sub / 1000) : sub);
    const orig = u32(unit, 12);
    const rec = linkRecord(this.linktype, unit.subarray(16), frame, timeUs, copy);
    if (unit.length - 16 < orig) rec.originalLength = orig - 4 + (this.linktype === LINKTYPE.linuxMonitor ? 1 : 0);
    return rec;
  }
}

/** A packet of a pcap/pcapng link type we read, with its 4-byte pseudo-header still on. */
function linkRecord(linktype: number, data: Uint8Array, frame: number, timeUs: number, copy: boolean): CaptureRecord {
  if (data.length < 4) fail(`packet of ${data.length} byte(s) is shorter than the 4-byte pseudo-header`);
  if (linktype === LINKTYPE.h4WithPhdr) {
    // LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR: a 4-byte big-endian direction word, 0 sent, 1 received.
    const packet = data.subarray(4);
    return { frame, dir: u32be(data, 0) & 1 ? 'rx' : 'tx', timeUs, packet: copy ? packet.slice() : packet };
  }
  // LINKTYPE_BLUETOOTH_LINUX_MONITOR: big-endian adapter index, then monitor opcode.
  const payload = data.subarray(4);
  const body = monitorToRecord(u16be(data, 0), u16be(data, 2), payload);
  const rec: CaptureRecord = { frame, timeUs, ...body };
  if (body.monitorOpcode !== undefined && payload.length) rec.monitorData = payload.slice();
  return rec;
}

// ---------------------------------------------------------------------------------------------------
// pcapng (Section Header, Interface Description, Enhanced / Simple / obsolete Packet blocks)

interface PcapngInterface { linktype: number; snaplen: number; unitsPerSec: number; offsetSec: number; adapter?: number }

class PcapngReader implements FormatReader {
  readonly name = 'pcapng';
  private le = true;
  private interfaces: PcapngInterface[] = [];

  prefix(): number {
    return 12;
  }
  unitLength(buf: Uint8Array, pos: number): number {
    if (u32be(buf, pos) === PCAPNG_SHB) {
      // The SHB type is a byte palindrome; its byte-order magic decides the endianness of the section.
      const bom = u32be(buf, pos + 8);
      if (bom === PCAPNG_BOM) this.le = false;
      else if (bom === 0x4d3c2b1a) this.le = true;
      else fail('bad pcapng byte-order magic', 8);
    }
    const len = (this.le ? u32le : u32be)(buf, pos + 4);
    if (len < 12 || len % 4 !== 0) fail(`block length ${len} is not a multiple of 4 of at least 12`, 4);
    return checkUnit(len, 'block', 4);
  }
  decode(unit: Uint8Array, frame: number, copy: boolean): CaptureRecord | undefined {
    const u32 = this.le ? u32le : u32be;
    const u16 = this.le ? u16le : u16be;
    const type = u32(unit, 0);
    if (u32(unit, unit.length - 4) !== unit.length) fail('trailing block length does not match the leading one', unit.length - 4);
    switch (type) {
      case PCAPNG_SHB: {
        if (unit.length < 28) fail('section header block too short', 4);
        const major = u16(unit, 12);
        if (major !== 1) fail(`unsupported pcapng major version ${major}`, 12);
        this.interfaces = [];
        return undefined;
      }
      case 1: { // Interface Description Block
        if (unit.length < 20) fail('interface description block too short', 4);
        const iface: PcapngInterface = { linktype: u16(unit, 8), snaplen: u32(unit, 12), unitsPerSec: 1e6, offsetSec: 0 };
        this.readIdbOptions(unit, iface);
        this.interfaces.push(iface);
        return undefined;
      }
      case 6: { // Enhanced Packet Block
        if (unit.length < 32) fail('enhanced packet block too short', 4);
        const capLen = u32(unit, 20);
        if (28 + capLen > unit.length - 4) fail(`captured length ${capLen} overruns the block`, 20);
        return this.packet(u32(unit, 8), u32(unit, 12), u32(unit, 16), unit.subarray(28, 28 + capLen), u32(unit, 24), frame, copy);
      }
      case 3: { // Simple Packet Block: interface 0, no timestamp, captured length implied by the block
        if (unit.length < 16) fail('simple packet block too short', 4);
        const orig = u32(unit, 8);
        const iface = this.iface(0);
        const capLen = Math.min(orig, unit.length - 16, iface.snaplen || Infinity);
        return this.packet(0, 0, 0, unit.subarray(12, 12 + capLen), orig, frame, copy);
      }
      case 2: { // Packet Block (obsolete): 16-bit interface id and drops count
        if (unit.length < 32) fail('packet block too short', 4);
        const capLen = u32(unit, 20);
        if (28 + capLen > unit.length - 4) fail(`captured length ${capLen} overruns the block`, 20);
        return this.packet(u16(unit, 8), u32(unit, 12), u32(unit, 16), unit.subarray(28, 28 + capLen), u32(unit, 24), frame, copy);
      }
      default:
        // Name resolution, interface statistics, decryption secrets, custom blocks: not frames in Wireshark either.
        return undefined;
    }
  }

  private iface(id: number): PcapngInterface {
    const iface = this.interfaces[id];
    if (!iface) fail(`packet refers to interface ${id}, but only ${this.interfaces.length} are described`, 8);
    return iface!;
  }

  private packet(ifaceId: number, hi: number, lo: number, data: Uint8Array, orig: number, frame: number, copy: boolean): CaptureRecord {
    const iface = this.iface(ifaceId);
    if (iface.linktype !== LINKTYPE.h4WithPhdr && iface.linktype !== LINKTYPE.linuxMonitor) {
      fail(`unsupported link type ${iface.linktype} on interface ${ifaceId} (supported: 201, 254)`, 8);
    }
    let timeUs: number;
    if (iface.unitsPerSec === 1e6) timeUs = hi * TWO32 + lo;
    else timeUs = Number(((BigInt(hi) << 32n) | BigInt(lo)) * 1_000_000n / BigInt(iface.unitsPerSec));
    timeUs += iface.offsetSec * 1e6;
    const rec = linkRecord(iface.linktype, data, frame, timeUs, copy);
    if (rec.adapter === undefined && iface.adapter !== undefined) rec.adapter = iface.adapter;
    if (data.length < orig) rec.originalLength = orig - 4 + (iface.linktype === LINKTYPE.linuxMonitor ? 1 : 0);
    return rec;
  }

  private readIdbOptions(unit: Uint8Array, iface: PcapngInterface): void {
    const u16 = this.le ? u16le : u16be;
    const end = unit.length - 4;
    let o = 16;
    while (o + 4 <= end) {
      const code = u16(unit, o);
      const len = u16(unit, o + 2);
      if (code === 0) break;
      if (o + 4 + len > end) fail(`interface option ${code} overruns the block`, o);
      const v = unit.subarray(o + 4, o + 4 + len);
      if (code === 9 && len >= 1) {
        // if_tsresol: bit 7 clear → 10^-n s, set → 2^-n s (pcapng spec, if_tsresol).
        const r = v[0]!;
        iface.unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        if (!Number.isSafeInteger(iface.unitsPerSec) || iface.unitsPerSec === 0) fail(`unsupported if_tsresol ${r}`, o);
      } else if (code === 14 && len >= 8) {
        const dv = new DataView(v.buffer, v.byteOffset, 8);
        iface.offsetSec = Number(dv.getBigInt64(0, this.le));
      } else if (code === 2) {
        const m = /^(?:hci|bluetooth)(\d+)$/.exec(new TextDecoder().decode(v).replace(/\0+$/, ''));
        if (m) iface.adapter = Number(m[1]);
      }
      o += 4 + ((len + 3) & ~3);
    }
  }
}

// ---------------------------------------------------------------------------------------------------

/** Detect the format from the first bytes (8 for btsnoop, 4 for pcap/pcapng). */
export function detectFormat(head: Uint8Array): 'btsnoop' | 'pcap' | 'pcapng' | undefined {
  if (head.length >= 4) {
    const m = u32be(head, 0);
    if (m === PCAPNG_SHB) return 'pcapng';
    if (m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1) return 'pcap';
  }
  if (head.length >= 8 && equalBytes(head.subarray(0, 8), BTSNOOP_MAGIC)) return 'btsnoop';
  return undefined;
}

const EMPTY = new Uint8Array(0);

export class CaptureParser {
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  /** File offset of buf[0]. */
  private base = 0;
  private reader: FormatReader | undefined;
  private frame = 0;
  private failure: DecodeError | undefined;

  constructor(private readonly copy: boolean) {}

  get format(): string | undefined {
    return this.reader?.name;
  }

  /** Add bytes; the caller must not write into `chunk` afterwards. */
  push(chunk: Uint8Array): void {
    if (this.pos >= this.buf.length) {
      this.base += this.buf.length;
      this.buf = chunk;
      this.pos = 0;
      return;
    }
    // An unfinished unit straddles chunks: join its bytes and the new chunk into a fresh buffer
    // (never into one whose bytes were already handed out).
    const rest = this.buf.length - this.pos;
    const joined = new Uint8Array(rest + chunk.length);
    joined.set(this.buf.subarray(this.pos), 0);
    joined.set(chunk, rest);
    this.base += this.pos;
    this.buf = joined;
    this.pos = 0;
  }

  /** The next record, or undefined when more bytes are needed. Throws DecodeError on corrupt input. */
  next(): CaptureRecord | undefined {
    if (this.failure) throw this.failure;
    for (;;) {
      const avail = this.buf.length - this.pos;
      if (!this.reader) {
        if (avail < 8) return undefined;
        this.detect();
      }
      const reader = this.reader!;
      if (avail < reader.prefix()) return undefined;
      const at = this.base + this.pos;
      let rec: CaptureRecord | undefined;
      try {
        const len = reader.unitLength(this.buf, this.pos);
        if (avail < len) return undefined;
        const unit = this.buf.subarray(this.pos, this.pos + len);
        rec = reader.decode(unit, this.frame + 1, this.copy);
        this.pos += len;
      } catch (e) {
        throw this.fail(at, e);
      }
      if (rec) {
        this.frame++;
        return rec;
      }
    }
  }

  /** The input is complete: throws DecodeError if it ended inside a header or record. */
  end(): void {
    if (this.failure) throw this.failure;
    const avail = this.buf.length - this.pos;
    if (!this.reader) {
      if (avail === 0) throw this.setFailure(new DecodeError('capture', 'capture file', 0, 'the file is empty'));
      this.detect();
    }
    if (avail === 0) return;
    const reader = this.reader!;
    const at = this.base + this.pos;
    let reason: string;
    if (avail < reader.prefix()) {
      reason = `the file ends ${avail} byte(s) into a ${reader.prefix()}-byte header`;
    } else {
      let len: number;
      try {
        len = reader.unitLength(this.buf, this.pos);
      } catch (e) {
        throw this.fail(at, e);
      }
      reason = `truncated: the file ends after ${avail} of the ${len} bytes the record needs`;
    }
    throw this.fail(at, { reason } satisfies Failure);
  }

  private detect(): void {
    const head = this.buf.subarray(this.pos, this.pos + 8);
    const format = detectFormat(head);
    if (format === 'btsnoop') this.reader = new BtsnoopReader();
    else if (format === 'pcap') this.reader = new PcapReader();
    else if (format === 'pcapng') this.reader = new PcapngReader();
    else {
      const hex = Array.from(head, b => b.toString(16).padStart(2, '0')).join(' ');
      throw this.setFailure(new DecodeError('capture', 'capture file', 0,
        `not a btsnoop, pcap or pcapng file (starts with ${hex || 'nothing'})`));
    }
  }

  private fail(at: number, e: unknown): DecodeError {
    if (e instanceof DecodeError) return this.setFailure(e);
    if (typeof e === 'object' && e !== null && 'reason' in e) {
      const f = e as Failure;
      const name = this.reader?.name ?? 'capture';
      const what = this.frame === 0 && this.isHeaderPending() ? `${name} file header` : `${name} record ${this.frame + 1}`;
      return this.setFailure(new DecodeError('capture', what, at + (f.at ?? 0), f.reason));
    }
    throw e;
  }

  private isHeaderPending(): boolean {
    // Only meaningful for error messages: before any frame, the first unit is the file header.
    return this.base + this.pos === 0;
  }

  private setFailure(e: DecodeError): DecodeError {
    this.failure = e;
    return e;
  }
}
