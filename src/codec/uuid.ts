import type { ByteReader } from '../bytes/reader.js';
import type { ByteWriter } from '../bytes/writer.js';
import { EncodeError, ArgumentError } from '../errors.js';
import type { Field } from './field.js';
import { UUID_NAMES, type UuidCategory, uuidByName } from './uuid-names.js';

/**
 * The one UUID representation used everywhere in blewire: the canonical lower-case 128-bit string
 * ("0000180d-0000-1000-8000-00805f9b34fb"), as in Web Bluetooth. A string compares with ===, works as
 * a Map key and prints without help; 16- and 32-bit SIG UUIDs are just UUIDs on the Bluetooth Base
 * UUID (Core Vol 3, Part B, 2.5.1), so there is exactly one spelling per UUID.
 *
 * On the wire UUIDs are little-endian: a 16-bit UUID is 2 octets, a 32-bit one 4, and a 128-bit one
 * the 16 octets of the string read from right to left (Vol 3, Part B, 2.5.1).
 */
export type Uuid = string;

/** The Bluetooth Base UUID's tail after the 32-bit prefix (Vol 3, Part B, 2.5.1). */
const BASE_TAIL = '-0000-1000-8000-00805f9b34fb';
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The 16-bit UUID strings made so far (AD parsing meets the same few again and again). A Map holding
 * only those met, not an array of all 65,536 slots: that array cost every process that imports the
 * package 512 KiB before it parsed a single UUID. Bounded by construction: at most 65,536 entries.
 */
const cache16 = new Map<number, string>();

/** The 128-bit string of a 16- or 32-bit SIG UUID. */
export function fromShort(n: number): Uuid {
  if (n >= 0 && n <= 0xffff && Number.isInteger(n)) {
    let u = cache16.get(n);
    if (u === undefined) cache16.set(n, (u = '0000' + HEX[n >>> 8] + HEX[n & 0xff] + BASE_TAIL));
    return u;
  }
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ArgumentError(`not a 16- or 32-bit UUID: ${n}`);
  return n.toString(16).padStart(8, '0') + BASE_TAIL;
}

/**
 * Any UUID spelling to the canonical string: a number (0x180d), a short hex string ("180d", "0x180d",
 * "0000180d"), a 128-bit string (any case, with or without dashes) or a well-known name
 * ("heart_rate", "heart_rate_measurement", "gatt.client_characteristic_configuration"), as Web
 * Bluetooth's BluetoothUUID.getService/getCharacteristic/getDescriptor accept. Throws TypeError on
 * anything else, naming the input.
 */
export function uuid(x: number | string): Uuid {
  if (typeof x === 'number') return fromShort(x);
  if (typeof x !== 'string') throw new ArgumentError(`not a UUID: ${String(x)}`);
  const s = x.trim().toLowerCase();
  const u = parseNumeric(s);
  if (u !== undefined) return u;
  const named = uuidByName(s);
  if (named !== undefined) return fromShort(named);
  throw new ArgumentError(`not a UUID or a known UUID name: ${JSON.stringify(x)}`);
}

/** uuid() restricted to one category of names (Web Bluetooth's getService / getCharacteristic / …). */
export function uuidOf(category: UuidCategory, x: number | string): Uuid {
  if (typeof x === 'number') return fromShort(x);
  const s = String(x).trim().toLowerCase();
  const u = parseNumeric(s);
  if (u !== undefined) return u;
  const n = uuidByName(s, category);
  if (n !== undefined) return fromShort(n);
  throw new ArgumentError(`not a UUID or a known ${category} name: ${JSON.stringify(x)}`);
}

/** The numeric spellings: canonical, 32 hex digits, 4 or 8 hex digits, or 0x-prefixed hex. */
function parseNumeric(s: string): Uuid | undefined {
  if (CANONICAL.test(s)) return s;
  const hex = s.startsWith('0x');
  const h = hex ? s.slice(2) : s;
  if (/^[0-9a-f]{1,8}$/.test(h) && (hex || h.length === 4 || h.length === 8)) return fromShort(parseInt(h, 16));
  if (/^[0-9a-f]{32}$/.test(h)) {
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  return undefined;
}

/** The 16- or 32-bit value when u is on the Bluetooth Base UUID, else undefined. */
export function shortUuid(u: Uuid): number | undefined {
  if (u.length !== 36 || !u.endsWith(BASE_TAIL)) return undefined;
  const n = parseInt(u.slice(0, 8), 16);
  return Number.isNaN(n) ? undefined : n;
}

/** True when u is a SIG 16-bit UUID (fits the 2-octet wire form). */
export function is16(u: Uuid): boolean {
  const n = shortUuid(u);
  return n !== undefined && n <= 0xffff;
}

/** The well-known name ("heart_rate") of a UUID, or undefined. */
export function uuidName(u: Uuid): string | undefined {
  const n = shortUuid(u);
  return n === undefined ? undefined : UUID_NAMES.get(n);
}

const ACRONYMS: Readonly<Record<string, string>> = {
  id: 'ID', tx: 'TX', hid: 'HID', pnp: 'PnP', uri: 'URI', http: 'HTTP', https: 'HTTPS', rsc: 'RSC', csc: 'CSC',
  cgm: 'CGM', plx: 'PLX', ln: 'LN', uv: 'UV', dst: 'DST', ots: 'OTS', tds: 'TDS', ieee: 'IEEE', br: 'BR', edr: 'EDR',
  es: 'ES', sc: 'SC', io: 'IO', '2d': '2D', '3d': '3D',
};

/** A human title for a named UUID ("Heart Rate Measurement", "Client Characteristic Configuration"). */
export function uuidTitle(u: Uuid): string | undefined {
  const name = uuidName(u);
  if (name === undefined) return undefined;
  const bare = name.slice(name.indexOf('.') + 1);
  return bare.split('_').map(w => ACRONYMS[w] ?? w.charAt(0).toUpperCase() + w.slice(1)).join(' ');
}

/** Short display form: "0x180d (heart_rate)", "0x0000fe95", or the full string for vendor UUIDs. */
export function describeUuid(u: Uuid): string {
  const n = shortUuid(u);
  if (n === undefined) return u;
  const name = UUID_NAMES.get(n);
  const h = '0x' + n.toString(16).padStart(n <= 0xffff ? 4 : 8, '0');
  return name ? `${h} (${name})` : h;
}

/** The 16 wire octets (little-endian) of a UUID. */
export function uuidToBytes128(u: Uuid): Uint8Array {
  const c = uuid(u);
  const out = new Uint8Array(16);
  let j = 15;
  for (let i = 0; i < 36; i += 2) {
    if (c.charCodeAt(i) === 45 /* - */) i++;
    out[j--] = parseInt(c.slice(i, i + 2), 16);
  }
  return out;
}

/** The wire form of a UUID at its shortest ATT-legal size: 2 octets if 16-bit, else 16 (Vol 3, Part F, 3.2.1). */
export function uuidToBytes(u: Uuid): Uint8Array {
  const n = shortUuid(uuid(u));
  if (n !== undefined && n <= 0xffff) return Uint8Array.of(n & 0xff, n >>> 8);
  return uuidToBytes128(u);
}

/** A UUID from its 2, 4 or 16 little-endian wire octets; undefined for any other length. */
export function uuidFromBytes(b: Uint8Array, offset = 0, length = b.length - offset): Uuid | undefined {
  if (length === 2) return fromShort(b[offset]! | (b[offset + 1]! << 8));
  if (length === 4) {
    return fromShort((b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0);
  }
  if (length !== 16) return undefined;
  const e = offset + 15;
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += HEX[b[e - i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}

function encodeShort(w: ByteWriter, v: Uuid, bits: 16 | 32): void {
  let n: number | undefined;
  try {
    n = shortUuid(uuid(v));
  } catch {
    n = undefined;
  }
  if (n === undefined || (bits === 16 && n > 0xffff)) {
    throw new EncodeError(w.layer, w.what, `${v} is not a ${bits}-bit Bluetooth UUID`);
  }
  if (bits === 16) w.u16(n);
  else w.u32(n);
}

function encode128(w: ByteWriter, v: Uuid): void {
  let b: Uint8Array;
  try {
    b = uuidToBytes128(v);
  } catch {
    throw new EncodeError(w.layer, w.what, `not a UUID: ${String(v)}`);
  }
  w.bytesOf(b);
}

const fmt = (u: Uuid): string => describeUuid(u);

/** A 16-bit UUID field (2 octets LE). Encoding a UUID that is not a 16-bit SIG UUID is an EncodeError. */
export const uuid16: Field<Uuid> = {
  read: (r: ByteReader) => fromShort(r.u16()),
  write: (w, v) => encodeShort(w, v, 16),
  size: () => 2,
  fixed: 2,
  fmt,
};

/** A 32-bit UUID field (4 octets LE, used in AD and SDP only, never in ATT PDUs). */
export const uuid32: Field<Uuid> = {
  read: (r: ByteReader) => fromShort(r.u32()),
  write: (w, v) => encodeShort(w, v, 32),
  size: () => 4,
  fixed: 4,
  fmt,
};

/** A 128-bit UUID field (16 octets LE, Vol 3, Part B, 2.5.1); base UUIDs are written in full too. */
export const uuid128: Field<Uuid> = {
  read: (r: ByteReader) => {
    r.need(16);
    const u = uuidFromBytes(r.bytes, r.offset, 16)!;
    r.offset += 16;
    return u;
  },
  write: encode128,
  size: () => 16,
  fixed: 16,
  fmt,
};

/**
 * A UUID that takes the rest of the PDU, its size telling its form: 2 or 16 octets (ATT attribute
 * types in Read By Type / Read By Group Type requests, Vol 3, Part F, 3.4.4.1). 32-bit UUIDs are not
 * allowed in ATT (Vol 3, Part F, 3.2.1), so they are rejected when decoding and written as 128-bit.
 * Encoding picks 2 octets for a 16-bit SIG UUID and 16 otherwise.
 */
export const uuidAny: Field<Uuid> = {
  read: (r: ByteReader) => {
    const n = r.remaining;
    if (n !== 2 && n !== 16) r.fail(`a UUID must be 2 or 16 octets, got ${n}`);
    const u = uuidFromBytes(r.bytes, r.offset, n)!;
    r.offset += n;
    return u;
  },
  write: (w, v) => {
    if (safeIs16(v)) encodeShort(w, v, 16);
    else encode128(w, v);
  },
  size: v => (safeIs16(v) ? 2 : 16),
  fixed: 2,
  fmt,
};

function safeIs16(v: Uuid): boolean {
  try {
    return is16(uuid(v));
  } catch {
    return false;
  }
}
