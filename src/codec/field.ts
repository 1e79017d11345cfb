import { ByteReader } from '../bytes/reader.js';
import { ByteWriter } from '../bytes/writer.js';
import { EncodeError } from '../errors.js';
import { hex16, hex8, toHex } from '../bytes/hex.js';

/**
 * Field descriptors: each knows how to read, write, size and describe one value. PDU tables are
 * records of these, and every codec behaviour (decode, encode, exact size, minimum length,
 * describe(), the TypeScript type) is derived from them.
 */
export interface Field<T> {
  read(r: ByteReader): T;
  write(w: ByteWriter, v: T): void;
  size(v: T): number;
  /** The size when it does not depend on the value (used for minimum lengths). */
  readonly fixed?: number;
  /** One-line rendering for describe(). */
  fmt?(v: T): string;
  /**
   * In-place read of a value that occupies exactly b[o, o + n): no reader, no allocation (for the
   * hot paths generated from a table, e.g. the advertising data view). Returns undefined when n
   * octets are not a valid size for this field. Only fields with a cheap fixed layout have it.
   */
  at?(b: Uint8Array, o: number, n: number): T | undefined;
  /**
   * For a length-prefixed byte string (lengthPrefixed()): the field of its length prefix, so in-place
   * readers (codec/compile.ts inPlaceReader) can find the bytes without making a view.
   */
  readonly lengthPrefix?: Field<number>;
  /** For fields of repeated fixed-size elements: the element size (values are whole multiples). */
  readonly unit?: number;
}

export type Fields = Record<string, Field<any>>;
export type Infer<F extends Fields> = { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/** Little-endian unsigned integer of n (1..4) octets at b[o]. */
export function leUint(b: Uint8Array, o: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + b[o + i]!;
  return v;
}

const num = (read: (r: ByteReader) => number, write: (w: ByteWriter, v: number) => void, n: number,
  fmt?: (v: number) => string, signed = false): Field<number> => ({
  read, write, size: () => n, fixed: n, ...(fmt ? { fmt } : {}),
  at: inPlace(n, signed),
});

/** In-place readers specialised per width (this is the per-structure work of the AD view). */
function inPlace(n: number, signed: boolean): (b: Uint8Array, o: number, len: number) => number | undefined {
  switch (n) {
    case 1: return signed ? (b, o, len) => (len === 1 ? (b[o]! << 24) >> 24 : undefined) : (b, o, len) => (len === 1 ? b[o]! : undefined);
    case 2: return signed
      ? (b, o, len) => (len === 2 ? ((b[o]! | (b[o + 1]! << 8)) << 16) >> 16 : undefined)
      : (b, o, len) => (len === 2 ? b[o]! | (b[o + 1]! << 8) : undefined);
    default: return signed
      ? (b, o, len) => (len === n ? (leUint(b, o, n) << (32 - 8 * n)) >> (32 - 8 * n) : undefined)
      : (b, o, len) => (len === n ? leUint(b, o, n) : undefined);
  }
}

export const u8 = num(r => r.u8(), (w, v) => w.u8(v), 1);
export const i8 = num(r => r.i8(), (w, v) => w.i8(v), 1, undefined, true);
export const u16 = num(r => r.u16(), (w, v) => w.u16(v), 2);
export const i16 = num(r => r.i16(), (w, v) => w.i16(v), 2, undefined, true);
export const u24 = num(r => r.u24(), (w, v) => w.u24(v), 3);
export const u32 = num(r => r.u32(), (w, v) => w.u32(v), 4);
/** u8 shown as hex (opcodes, status codes, bit masks). */
export const x8 = num(r => r.u8(), (w, v) => w.u8(v), 1, hex8);
/** u16 shown as hex (handles, opcodes). */
export const x16 = num(r => r.u16(), (w, v) => w.u16(v), 2, hex16);
export const x24 = num(r => r.u24(), (w, v) => w.u24(v), 3, v => '0x' + v.toString(16).padStart(6, '0'));
export const x32 = num(r => r.u32(), (w, v) => w.u32(v), 4, v => '0x' + v.toString(16).padStart(8, '0'));
export const u64: Field<bigint> = {
  read: r => r.u64(), write: (w, v) => w.u64(v), size: () => 8, fixed: 8,
  fmt: v => '0x' + v.toString(16).padStart(16, '0'),
};

export const bool8: Field<boolean> = {
  read: r => r.u8() !== 0, write: (w, v) => w.u8(v ? 1 : 0), size: () => 1, fixed: 1,
};

/** Exactly n bytes, a view into the frame. */
export function bytes(n: number): Field<Uint8Array> {
  return {
    read: r => r.view(n),
    write: (w, v) => {
      if (v.length !== n) throw new EncodeError(w.layer, w.what, `expected ${n} bytes, got ${v.length}`);
      w.bytesOf(v);
    },
    size: () => n,
    fixed: n,
    fmt: v => toHex(v),
  };
}

/** Everything to the end of the PDU (must be the last field). */
export const rest: Field<Uint8Array> = {
  read: r => r.rest(), write: (w, v) => w.bytesOf(v), size: v => v.length, fixed: 0, fmt: v => toHex(v),
};

/** A length-prefixed byte string. */
export function lengthPrefixed(len: Field<number>): Field<Uint8Array> {
  const n = len.fixed ?? 1;
  return {
    read: r => r.view(len.read(r)),
    write: (w, v) => { len.write(w, v.length); w.bytesOf(v); },
    size: v => n + v.length,
    fixed: n,
    lengthPrefix: len,
    fmt: v => toHex(v),
  };
}

const ZERO_ADDRESS = '00:00:00:00:00:00';
/** Char codes of the upper-case hex digits. */
const HEXC = Array.from({ length: 16 }, (_, i) => i.toString(16).toUpperCase().charCodeAt(0));

/**
 * BD_ADDR: 6 bytes little-endian on the wire, shown most significant byte first
 * ("C0:11:22:33:44:55"), Core Vol 2 Part B 1.2.
 */
export const bdAddr: Field<string> = {
  read: r => {
    r.need(6);
    const b = r.bytes, o = r.offset;
    r.offset += 6;
    // One flat string from char codes: about 4x faster than concatenating 11 pieces (which builds a
    // rope that is flattened on first use), and this runs twice per extended advertising report.
    const a5 = b[o + 5]!, a4 = b[o + 4]!, a3 = b[o + 3]!, a2 = b[o + 2]!, a1 = b[o + 1]!, a0 = b[o]!;
    // The all-zero address (unused Direct_Address / RPA fields) is the most common value: no new string.
    if ((a5 | a4 | a3 | a2 | a1 | a0) === 0) return ZERO_ADDRESS;
    return String.fromCharCode(
      HEXC[a5 >> 4]!, HEXC[a5 & 15]!, 58, HEXC[a4 >> 4]!, HEXC[a4 & 15]!, 58, HEXC[a3 >> 4]!, HEXC[a3 & 15]!, 58,
      HEXC[a2 >> 4]!, HEXC[a2 & 15]!, 58, HEXC[a1 >> 4]!, HEXC[a1 & 15]!, 58, HEXC[a0 >> 4]!, HEXC[a0 & 15]!);
  },
  write: (w, v) => w.bytesOf(addressToBytes(v, w)),
  size: () => 6,
  fixed: 6,
};

export function addressToBytes(address: string, w?: ByteWriter): Uint8Array {
  const m = /^([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})$/
    .exec(address);
  if (!m) throw new EncodeError(w?.layer ?? 'hci', w?.what ?? 'address', `not a BD_ADDR: ${address}`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[5 - i] = parseInt(m[i + 1]!, 16);
  return out;
}

/** A nested structure (e.g. one element of an array of reports). */
export function struct<F extends Fields>(fields: F): Field<Infer<F>> {
  const entries = Object.entries(fields);
  let fixed: number | undefined = 0;
  for (const [, f] of entries) fixed = fixed !== undefined && f.fixed !== undefined ? fixed + f.fixed : undefined;
  return {
    read: r => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < entries.length; i++) o[entries[i]![0]] = entries[i]![1].read(r);
      return o as Infer<F>;
    },
    write: (w, v) => { for (const [k, f] of entries) f.write(w, (v as Record<string, unknown>)[k]); },
    size: v => { let n = 0; for (const [k, f] of entries) n += f.size((v as Record<string, unknown>)[k]); return n; },
    ...(fixed !== undefined ? { fixed } : {}),
    fmt: v => '{' + entries.map(([k, f]) => `${k}=${fmtValue(f, (v as Record<string, unknown>)[k])}`).join(' ') + '}',
  };
}

/** A count (of the given width) followed by that many elements. */
export function arrayOf<T>(count: Field<number>, element: Field<T>): Field<T[]> {
  return {
    read: r => {
      const n = count.read(r);
      // A hostile count cannot make us allocate more than the bytes could hold.
      if (element.fixed) r.need(n * element.fixed);
      const out: T[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = element.read(r);
      return out;
    },
    write: (w, v) => { count.write(w, v.length); for (const e of v) element.write(w, e); },
    size: v => { let n = count.fixed ?? 1; for (const e of v) n += element.size(e); return n; },
    fixed: count.fixed ?? 1,
    fmt: v => '[' + v.map(e => fmtValue(element, e)).join(', ') + ']',
  };
}

/** Elements repeated to the end of the PDU (no count on the wire). */
export function repeated<T>(element: Field<T>): Field<T[]> {
  return {
    read: r => {
      const out: T[] = [];
      while (r.remaining > 0) out.push(element.read(r));
      return out;
    },
    write: (w, v) => { for (const e of v) element.write(w, e); },
    size: v => { let n = 0; for (const e of v) n += element.size(e); return n; },
    fixed: 0,
    ...(element.fixed ? { unit: element.fixed } : {}),
    fmt: v => '[' + v.map(e => fmtValue(element, e)).join(', ') + ']',
  };
}

/** A field that names its values (status codes, enums): decodes to the number, describes by name. */
export function named(base: Field<number>, names: Readonly<Record<number, string>>): Field<number> {
  return { ...base, fmt: v => names[v] ?? (base.fmt ? base.fmt(v) : String(v)) };
}

/** Derive a field that maps a wire value to a richer type. */
export function mapped<W, T>(base: Field<W>, from: (w: W) => T, to: (t: T) => W, fmt?: (t: T) => string): Field<T> {
  return {
    read: r => from(base.read(r)),
    write: (w, v) => base.write(w, to(v)),
    size: v => base.size(to(v)),
    ...(base.fixed !== undefined ? { fixed: base.fixed } : {}),
    ...(fmt ? { fmt } : {}),
  };
}

export function fmtValue(f: Field<any> | undefined, v: unknown): string {
  if (f?.fmt) return f.fmt(v);
  if (v instanceof Uint8Array) return toHex(v);
  if (typeof v === 'bigint') return '0x' + v.toString(16);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(x => fmtValue(undefined, x)).join(', ') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.entries(v).map(([k, x]) => `${k}=${fmtValue(undefined, x)}`).join(' ') + '}';
  }
  return String(v);
}
