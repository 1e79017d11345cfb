import { closeSync, openSync, writeSync } from 'node:fs';
import { extname } from 'node:path';
import { EncodeError } from '../errors.js';
import { H4 } from '../codec/h4.js';
import { MONITOR_NO_INDEX, MONITOR_OPCODE, h4ToMonitorOpcode } from './monitor.js';
import { BTSNOOP_DATALINK, BTSNOOP_EPOCH_DELTA, BTSNOOP_MAGIC, LINKTYPE } from './parser.js';
import type { CaptureFormat, CaptureRecordInput } from './types.js';

/**
 * Capture writers. Each record is encoded into one allocation and handed to the sink synchronously,
 * header first, so a file being written can be tailed live (`tail -c +1 -f f.pcap | wireshark -k -i -`)
 * and a crash loses at most the record being written. Writers copy: the caller's packet is never kept.
 *
 * H4 formats (btsnoop 1002, LINKTYPE 201) cannot carry monitor records without a packet; those are
 * skipped (write() returns false). The monitor formats (btsnoop 2001, LINKTYPE 254) carry everything.
 */

export interface CaptureSink {
  write(bytes: Uint8Array): void;
  close?(): void;
}

export interface CaptureWriterOptions {
  format: CaptureFormat;
  /** Linux monitor encoding (btsnoop 2001 / LINKTYPE 254) instead of H4 (1002 / 201). Default false. */
  monitor?: boolean;
}

export interface CaptureWriter {
  readonly format: CaptureFormat;
  /** Write one record; false when the format cannot represent it (a packet-less record in an H4 format). */
  write(record: CaptureRecordInput): boolean;
  /** Records written so far. */
  readonly count: number;
  close(): void;
}

const SNAPLEN = 262144;

/** [monitor opcode, payload] for a record, or undefined when it has neither packet nor opcode. */
function monitorParts(rec: CaptureRecordInput): [number, Uint8Array] | undefined {
  if (rec.packet) {
    const op = rec.packet.length ? h4ToMonitorOpcode(rec.packet[0]!, rec.dir) : undefined;
    if (op === undefined) throw new EncodeError('capture', 'packet', `indicator ${rec.packet[0]} is not an H4 packet type`);
    return [op, rec.packet.subarray(1)];
  }
  if (rec.monitorOpcode === undefined) return undefined;
  if (rec.monitorData) return [rec.monitorOpcode, rec.monitorData];
  const text = new TextEncoder().encode((rec.note ?? '') + '\0');
  if (rec.monitorOpcode === MONITOR_OPCODE.systemNote) return [rec.monitorOpcode, text];
  if (rec.monitorOpcode === MONITOR_OPCODE.userLogging) {
    // BlueZ monitor/bt.h struct monitor_user_logging: priority (6 = info), ident length, ident, message.
    const ident = new TextEncoder().encode('blewire\0');
    const out = new Uint8Array(2 + ident.length + text.length);
    out[0] = 6;
    out[1] = ident.length;
    out.set(ident, 2);
    out.set(text, 2 + ident.length);
    return [rec.monitorOpcode, out];
  }
  return [rec.monitorOpcode, new Uint8Array(0)];
}

function checkPacket(rec: CaptureRecordInput): void {
  if (rec.packet && rec.packet.length > SNAPLEN - 8) {
    throw new EncodeError('capture', 'packet', `${rec.packet.length} bytes is more than a capture record holds`);
  }
  if (!Number.isFinite(rec.timeUs) || rec.timeUs < 0) throw new EncodeError('capture', 'timeUs', `${rec.timeUs} is not a time after 1970`);
}

abstract class BaseWriter implements CaptureWriter {
  abstract readonly format: CaptureFormat;
  count = 0;
  private closed = false;
  protected readonly sink: CaptureSink;

  constructor(sink: CaptureSink | ((bytes: Uint8Array) => void)) {
    this.sink = typeof sink === 'function' ? { write: sink } : sink;
  }
  write(rec: CaptureRecordInput): boolean {
    if (this.closed) throw new EncodeError('capture', 'record', 'the capture writer is closed');
    checkPacket(rec);
    const bytes = this.encode(rec);
    if (!bytes) return false;
    this.sink.write(bytes);
    this.count++;
    return true;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close?.();
  }
  protected abstract encode(rec: CaptureRecordInput): Uint8Array | undefined;
}

class BtsnoopWriter extends BaseWriter {
  readonly format = 'btsnoop' as const;
  constructor(sink: CaptureSink | ((bytes: Uint8Array) => void), private readonly monitor: boolean) {
    super(sink);
    const h = new Uint8Array(16);
    h.set(BTSNOOP_MAGIC, 0);
    const dv = new DataView(h.buffer);
    dv.setUint32(8, 1);
    dv.setUint32(12, monitor ? BTSNOOP_DATALINK.monitor : BTSNOOP_DATALINK.h4);
    this.sink.write(h);
  }
  protected encode(rec: CaptureRecordInput): Uint8Array | undefined {
    let flags: number;
    let data: Uint8Array;
    if (this.monitor) {
      const parts = monitorParts(rec);
      if (!parts) return undefined;
      // BlueZ doc/btsnoop.txt: datalink 2001 flags = (controller index << 16) | opcode.
      flags = (((rec.adapter ?? MONITOR_NO_INDEX) & 0xffff) << 16 | parts[0]) >>> 0;
      data = parts[1];
    } else {
      if (!rec.packet) return undefined;
      data = rec.packet;
      // Frontline btsnoop: bit 0 = received (controller → host), bit 1 = command or event.
      const t = data[0];
      flags = (rec.dir === 'rx' ? 1 : 0) | (t === H4.command || t === H4.event ? 2 : 0);
    }
    const out = new Uint8Array(24 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    dv.setUint32(4, data.length);
    dv.setUint32(8, flags);
    dv.setUint32(12, 0);
    dv.setBigUint64(16, BigInt(Math.round(rec.timeUs)) + BTSNOOP_EPOCH_DELTA);
    out.set(data, 24);
    return out;
  }
}

class PcapWriter extends BaseWriter {
  readonly format = 'pcap' as const;
  constructor(sink: CaptureSink | ((bytes: Uint8Array) => void), private readonly monitor: boolean) {
    super(sink);
    // Classic pcap, big-endian µs variant (the magic tells readers the byte order).
    const h = new Uint8Array(24);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, 0xa1b2c3d4);
    dv.setUint16(4, 2);
    dv.setUint16(6, 4);
    dv.setUint32(16, SNAPLEN);
    dv.setUint32(20, monitor ? LINKTYPE.linuxMonitor : LINKTYPE.h4WithPhdr);
    this.sink.write(h);
  }
  protected encode(rec: CaptureRecordInput): Uint8Array | undefined {
    const payload = linkPayload(rec, this.monitor);
    if (!payload) return undefined;
    const out = new Uint8Array(16 + payload.length);
    const dv = new DataView(out.buffer);
    const t = Math.round(rec.timeUs);
    dv.setUint32(0, Math.floor(t / 1e6));
    dv.setUint32(4, t % 1e6);
    dv.setUint32(8, payload.length);
    dv.setUint32(12, payload.length);
    out.set(payload, 16);
    return out;
  }
}

/** The packet with its 4-byte pseudo-header (LINKTYPE 201 direction word, or 254 index + opcode). */
function linkPayload(rec: CaptureRecordInput, monitor: boolean): Uint8Array | undefined {
  if (monitor) {
    const parts = monitorParts(rec);
    if (!parts) return undefined;
    const out = new Uint8Array(4 + parts[1].length);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, (rec.adapter ?? MONITOR_NO_INDEX) & 0xffff);
    dv.setUint16(2, parts[0]);
    out.set(parts[1], 4);
    return out;
  }
  if (!rec.packet) return undefined;
  const out = new Uint8Array(4 + rec.packet.length);
  // LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR: big-endian direction, 0 = sent, 1 = received.
  out[3] = rec.dir === 'rx' ? 1 : 0;
  out.set(rec.packet, 4);
  return out;
}

/**
 * pcapng as Wireshark writes it: little-endian, one Section Header Block, Interface Description Blocks
 * and Enhanced Packet Blocks with µs timestamps (the default if_tsresol). In H4 mode each controller
 * index gets its own interface named "hciN" (described on first use; records without an index share
 * one named "blewire"), so multi-adapter captures keep
 * their adapter numbers; in monitor mode one "bluetooth-monitor" interface carries all of them.
 */
class PcapngWriter extends BaseWriter {
  readonly format = 'pcapng' as const;
  private readonly interfaces = new Map<number, number>();

  constructor(sink: CaptureSink | ((bytes: Uint8Array) => void), private readonly monitor: boolean) {
    super(sink);
    const app = options(new Map([[4, 'blewire']])); // shb_userappl
    const shb = new Uint8Array(28 + app.length);
    const dv = new DataView(shb.buffer);
    dv.setUint32(0, 0x0a0d0d0a, true);
    dv.setUint32(4, shb.length, true);
    dv.setUint32(8, 0x1a2b3c4d, true);
    dv.setUint16(12, 1, true);
    dv.setUint16(14, 0, true);
    dv.setBigInt64(16, -1n, true); // section length not known
    shb.set(app, 24);
    dv.setUint32(shb.length - 4, shb.length, true);
    this.sink.write(shb);
  }

  private interfaceFor(adapter: number | undefined): number {
    const key = this.monitor ? -1 : adapter ?? -2;
    let id = this.interfaces.get(key);
    if (id !== undefined) return id;
    id = this.interfaces.size;
    this.interfaces.set(key, id);
    // Records without an adapter go to an interface whose name the reader does not map to an index.
    const name = this.monitor ? 'bluetooth-monitor' : adapter === undefined ? 'blewire' : `hci${adapter}`;
    const opts = options(new Map([[2, name]])); // if_name
    const idb = new Uint8Array(20 + opts.length);
    const dv = new DataView(idb.buffer);
    dv.setUint32(0, 1, true);
    dv.setUint32(4, idb.length, true);
    dv.setUint16(8, this.monitor ? LINKTYPE.linuxMonitor : LINKTYPE.h4WithPhdr, true);
    dv.setUint32(12, SNAPLEN, true);
    idb.set(opts, 16);
    dv.setUint32(idb.length - 4, idb.length, true);
    this.sink.write(idb);
    return id;
  }

  protected encode(rec: CaptureRecordInput): Uint8Array | undefined {
    const payload = linkPayload(rec, this.monitor);
    if (!payload) return undefined;
    const iface = this.interfaceFor(rec.adapter);
    const padded = (payload.length + 3) & ~3;
    const out = new Uint8Array(32 + padded);
    const dv = new DataView(out.buffer);
    const t = Math.round(rec.timeUs);
    dv.setUint32(0, 6, true);
    dv.setUint32(4, out.length, true);
    dv.setUint32(8, iface, true);
    dv.setUint32(12, Math.floor(t / 4294967296), true);
    dv.setUint32(16, t % 4294967296, true);
    dv.setUint32(20, payload.length, true);
    dv.setUint32(24, payload.length, true);
    out.set(payload, 28);
    dv.setUint32(out.length - 4, out.length, true);
    return out;
  }
}

/** pcapng option list (code → UTF-8 string), padded, ending with opt_endofopt. */
function options(opts: Map<number, string>): Uint8Array {
  const parts = [...opts].map(([code, text]) => [code, new TextEncoder().encode(text)] as const);
  const len = parts.reduce((n, [, v]) => n + 4 + ((v.length + 3) & ~3), 4);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const [code, v] of parts) {
    dv.setUint16(o, code, true);
    dv.setUint16(o + 2, v.length, true);
    out.set(v, o + 4);
    o += 4 + ((v.length + 3) & ~3);
  }
  return out; // the last 4 bytes are zero: opt_endofopt
}

/** A writer for any sink: a function, or an object with write() (and optionally close()). */
export function createCaptureWriter(sink: CaptureSink | ((bytes: Uint8Array) => void), options: CaptureWriterOptions): CaptureWriter {
  const monitor = options.monitor ?? false;
  switch (options.format) {
    case 'btsnoop': return new BtsnoopWriter(sink, monitor);
    case 'pcap': return new PcapWriter(sink, monitor);
    case 'pcapng': return new PcapngWriter(sink, monitor);
    default: throw new EncodeError('capture', 'format', `unknown capture format ${String(options.format)} (btsnoop, pcap or pcapng)`);
  }
}

/** The format a file name asks for: .btsnoop/.log/.cfa → btsnoop, .pcap, .pcapng; undefined otherwise. */
export function formatFromPath(path: string): CaptureFormat | undefined {
  switch (extname(path).toLowerCase()) {
    case '.btsnoop': case '.log': case '.cfa': case '.snoop': return 'btsnoop';
    case '.pcap': return 'pcap';
    case '.pcapng': return 'pcapng';
    default: return undefined;
  }
}

/**
 * Create (truncate) a capture file and write records to it synchronously, one write() system call per
 * record, so another process can follow it live. The format comes from the extension unless given.
 */
export function openCaptureFile(path: string, options: Partial<CaptureWriterOptions> = {}): CaptureWriter {
  const format = options.format ?? formatFromPath(path);
  if (!format) {
    throw new EncodeError('capture', path, 'cannot tell the capture format from the file name: use .btsnoop, .log, .cfa, .pcap or .pcapng');
  }
  const fd = openSync(path, 'w');
  const sink: CaptureSink = {
    write: bytes => {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    },
    close: () => closeSync(fd),
  };
  return createCaptureWriter(sink, { format, monitor: options.monitor ?? false });
}
