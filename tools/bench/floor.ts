/**
 * The floor: hand-written loops that do the work a stack must do for the same input and nothing
 * more, so every figure can be read as "× floor" too (issue 14). No tables, no layers, no checks
 * beyond what keeps them correct on the benchmark's well-formed input; they are not a stack.
 *
 * Advertising: per HCI packet, one clock read; per report, the address read as a 48-bit integer,
 * an integer-keyed Map of devices (the address string made once per device), the data compared in
 * place against the stored copy (a copy kept only when it changed, the parse dropped), and one object
 * delivered to a callback that reads every field, parsing (with blewire's AD parser, the same work
 * the stacks do) only when the data changed.
 *
 * Notifications: per ACL packet, the headers read in place and one Uint8Array view of the value
 * delivered; fragmented values reassembled into one region sized from the L2CAP length, one copy per
 * fragment. The view is made with `new Uint8Array(buffer, offset, length)`, not `subarray`: on a Node
 * Buffer subarray makes a Buffer through JavaScript, which costs more. Regions are cut from 8 KiB
 * slabs as blewire's reassembler does (a 252-octet Uint8Array of its own costs about 0.5 µs): the
 * floor keeps the cheapest way known to do the work, whichever side found it.
 */
import { parseAd, type ParsedAd } from '../../src/gap/ad.js';

interface FloorDevice {
  address: string;
  addressType: number;
  data: Uint8Array | undefined;
  scanResponse: Uint8Array | undefined;
  parsed: ParsedAd | undefined;
  rssi: number;
  lastSeen: number;
}

interface FloorAdvert { device: FloorDevice; rssi: number; time: number; eventType: number }

let sink = 0;

/** Eight octets per test, as blewire's scanner compares (the cheapest way known, whichever side found it). */
function sameBytes(stored: Uint8Array | undefined, p: Uint8Array, at: number, len: number): boolean {
  if (stored === undefined || stored.length !== len) return false;
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const y = at + i;
    if (((stored[i]! ^ p[y]!) | (stored[i + 1]! ^ p[y + 1]!) | (stored[i + 2]! ^ p[y + 2]!) | (stored[i + 3]! ^ p[y + 3]!) |
      (stored[i + 4]! ^ p[y + 4]!) | (stored[i + 5]! ^ p[y + 5]!) | (stored[i + 6]! ^ p[y + 6]!) | (stored[i + 7]! ^ p[y + 7]!)) !== 0) return false;
  }
  for (; i < len; i++) if (stored[i] !== p[at + i]) return false;
  return true;
}

function parsedOf(d: FloorDevice): ParsedAd {
  if (d.parsed) return d.parsed;
  const a = d.data ?? new Uint8Array(0), s = d.scanResponse;
  let all = a;
  if (s) { all = new Uint8Array(a.length + s.length); all.set(a); all.set(s, a.length); }
  return (d.parsed = parseAd(all));
}

function readAll(ad: FloorAdvert): void {
  const d = ad.device, p = parsedOf(d);
  sink += ad.rssi + ad.time + ad.eventType + d.address.length + d.addressType + (d.data?.length ?? 0) + (d.scanResponse?.length ?? 0) +
    (p.name?.length ?? 0) + p.serviceUuids.length + p.serviceData.size + p.manufacturerData.size + (p.txPower ?? 0) +
    (p.flags ?? 0) + (p.appearance ?? 0);
}

const hex = (b: number): string => (b < 16 ? '0' : '') + b.toString(16).toUpperCase();

export function advertisingFloor<F>(wrap: (feed: (p: Buffer) => void) => F): { feed: F; delivered: () => number } {
  const devices = new Map<number, FloorDevice>();
  let n = 0;
  const onReport = (p: Uint8Array, now: number, eventType: number, addrType: number, a: number, dataAt: number, len: number, rssi: number,
    scanRsp: boolean): void => {
    const key = addrType * 2 ** 48 + (p[a + 5]! * 2 ** 40) + (p[a + 4]! * 2 ** 32) + ((p[a + 3]! << 24) >>> 0) + (p[a + 2]! << 16) + (p[a + 1]! << 8) + p[a]!;
    let d = devices.get(key);
    if (!d) {
      let s = '';
      for (let i = 5; i >= 0; i--) s += hex(p[a + i]!) + (i ? ':' : '');
      d = { address: s, addressType: addrType, data: undefined, scanResponse: undefined, parsed: undefined, rssi, lastSeen: now };
      devices.set(key, d);
    }
    if (scanRsp) {
      if (!sameBytes(d.scanResponse, p, dataAt, len)) { d.scanResponse = p.slice(dataAt, dataAt + len); d.parsed = undefined; }
    } else if (!sameBytes(d.data, p, dataAt, len)) { d.data = p.slice(dataAt, dataAt + len); d.parsed = undefined; }
    d.rssi = rssi;
    d.lastSeen = now;
    readAll({ device: d, rssi, time: now, eventType });
    n++;
  };
  const feed = (p: Buffer): void => {
    if (p[0] !== 0x04 || p[1] !== 0x3e) return;
    const now = Date.now();
    const sub = p[3];
    let o = 5;
    const count = p[4]!;
    if (sub === 0x02) {
      for (let k = 0; k < count; k++) {
        const et = p[o]!, len = p[o + 8]!;
        onReport(p, now, et, p[o + 1]!, o + 2, o + 9, len, (p[o + 9 + len]! << 24) >> 24, et === 4);
        o += 10 + len;
      }
    } else if (sub === 0x0d) {
      for (let k = 0; k < count; k++) {
        const et = p[o]! | (p[o + 1]! << 8), len = p[o + 23]!;
        onReport(p, now, et, p[o + 2]!, o + 3, o + 24, len, (p[o + 13]! << 24) >> 24, (et & 0x08) !== 0);
        o += 24 + len;
      }
    }
  };
  return { feed: wrap(feed), delivered: () => n };
}

/** One notification callback per ATT_HANDLE_VALUE_NTF on CID 4, one view of the value each. */
export function notificationFloor(valueHandle: number, cb: (v: Uint8Array) => void): (p: Buffer) => void {
  const SLAB = 8192;
  let slab = new Uint8Array(0), used = 0;
  // The PDU being gathered: slab[base, base + size), `filled` octets in; size 0 when none.
  let base = 0, size = 0, filled = 0;
  const deliver = (f: Uint8Array, at: number, len: number): void => {
    if ((f[at + 2]! | (f[at + 3]! << 8)) !== 4 || f[at + 4] !== 0x1b) return;
    if ((f[at + 5]! | (f[at + 6]! << 8)) !== valueHandle) return;
    // As blewire's bearer does: byteOffset read only when f does not span its buffer (it then starts it).
    const ab = f.buffer;
    cb(new Uint8Array(ab, (ab.byteLength === f.length ? 0 : f.byteOffset) + at + 7, len - 3));
  };
  return (p: Buffer): void => {
    const pb = (p[2]! >> 4) & 3;
    const n = p[3]! | (p[4]! << 8);
    if (pb !== 1) {
      const len = p[5]! | (p[6]! << 8);
      if (n - 4 === len) { size = 0; deliver(p, 5, len); return; }
      size = 4 + len;
      if (slab.length - used < size) { slab = new Uint8Array(SLAB); used = 0; }
      base = used;
      used += size;
      for (let i = 0; i < n; i++) slab[base + i] = p[5 + i]!;
      filled = n;
      return;
    }
    if (size === 0) return;
    if (filled + n > size) { size = 0; return; }
    for (let i = 0; i < n; i++) slab[base + filled + i] = p[5 + i]!;
    filled += n;
    if (filled === size) { size = 0; deliver(slab, base, filled - 4); }
  };
}

/**
 * notificationFloor for an H4 byte stream (unix socket, TCP, UART): each read framed (ACL and event
 * headers) and every complete single-packet notification of ours viewed from the read's buffer and
 * byteOffset, read once per read. Reads must end on packet boundaries and fragmented PDUs are skipped
 * (the notify bench's stream corpus has neither): the hand-written lower bound, not a framer.
 */
export function notificationStreamFloor(valueHandle: number, cb: (v: Uint8Array) => void): (chunk: Uint8Array) => void {
  return (c: Uint8Array): void => {
    const ab = c.buffer, off = c.byteOffset, n = c.length;
    for (let i = 0; i < n;) {
      const t = c[i];
      if (t === 4) { i += 3 + c[i + 2]!; continue; }
      if (t !== 2) throw new Error(`stream floor: packet indicator ${t} at ${i}`);
      const total = 5 + (c[i + 3]! | (c[i + 4]! << 8));
      if (((c[i + 2]! >> 4) & 3) !== 1 && total - 9 === (c[i + 5]! | (c[i + 6]! << 8)) && c[i + 7] === 4 && c[i + 8] === 0 &&
        c[i + 9] === 0x1b && (c[i + 10]! | (c[i + 11]! << 8)) === valueHandle) cb(new Uint8Array(ab, off + i + 12, total - 12));
      i += total;
    }
  };
}
