/**
 * Fixed field layouts, the table form most advertising formats fit: one row per field with its
 * offset, integer type and byte order, optional bit field, scale, offset and "not available" raw value.
 * decodeLayout() turns bytes into named values; a decoder is then a list of rows plus a length check.
 */
import type { SensorValue } from './types.js';

export type IntType = 'u8' | 's8' | 'u16be' | 's16be' | 'u16le' | 's16le' | 'u24le' | 'u32be' | 'u32le' | 's32le';
export type FieldType = IntType | 'hex' | 'uuid';

export interface LayoutField {
  name: string;
  offset: number;
  type: FieldType;
  /** Byte length for 'hex' (uuid is 16). */
  length?: number;
  /** Bit field of the integer: (raw >>> shift) & ((1 << bits) - 1). */
  shift?: number;
  bits?: number;
  /** Raw integer meaning "not available" (the value is null). */
  na?: number;
  /** value = raw * scale + add, rounded to the scale's decimals. */
  scale?: number;
  add?: number;
  unit?: string;
}

const SIZE: Record<IntType, number> = { u8: 1, s8: 1, u16be: 2, s16be: 2, u16le: 2, s16le: 2, u24le: 3, u32be: 4, u32le: 4, s32le: 4 };

export function intSize(t: IntType): number {
  return SIZE[t];
}

/** Read an integer of type `t` at `o` (the caller checked the length). */
export function readInt(b: Uint8Array, o: number, t: IntType): number {
  switch (t) {
    case 'u8': return b[o]!;
    case 's8': return (b[o]! << 24) >> 24;
    case 'u16be': return (b[o]! << 8) | b[o + 1]!;
    case 's16be': return (((b[o]! << 8) | b[o + 1]!) << 16) >> 16;
    case 'u16le': return b[o]! | (b[o + 1]! << 8);
    case 's16le': return ((b[o]! | (b[o + 1]! << 8)) << 16) >> 16;
    case 'u24le': return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
    case 'u32be': return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    case 'u32le': return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
    case 's32le': return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
  }
}

/** Decimal places a scale carries (0.005 → 3, 0.0025 → 4, 0.35 → 2, 1 → 0). */
export function decimalsOf(scale: number): number {
  const s = String(scale);
  const i = s.indexOf('.');
  if (s.includes('e-')) return Number(s.split('e-')[1]);
  return i < 0 ? 0 : s.length - i - 1;
}

/** raw * scale + add, without binary floating-point noise (2430 * 0.01 → 24.3). */
export function scaled(raw: number, scale = 1, add = 0): number {
  const d = Math.max(decimalsOf(scale), decimalsOf(add));
  return d === 0 ? raw * scale + add : Number((raw * scale + add).toFixed(d));
}

export function toHexString(b: Uint8Array, from = 0, to = b.length): string {
  let s = '';
  for (let i = from; i < to; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

export function formatUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The bytes a layout needs. */
export function layoutLength(fields: readonly LayoutField[]): number {
  let n = 0;
  for (const f of fields) {
    const size = f.type === 'hex' ? f.length ?? 0 : f.type === 'uuid' ? 16 : SIZE[f.type];
    n = Math.max(n, f.offset + size);
  }
  return n;
}

/** Decode every field of the layout; `undefined` when the bytes are shorter than the layout. */
export function decodeLayout(b: Uint8Array, fields: readonly LayoutField[]): { values: Record<string, SensorValue>; units: Record<string, string> } | undefined {
  if (b.length < layoutLength(fields)) return undefined;
  const values: Record<string, SensorValue> = {};
  const units: Record<string, string> = {};
  for (const f of fields) {
    if (f.unit) units[f.name] = f.unit;
    if (f.type === 'hex') { values[f.name] = toHexString(b, f.offset, f.offset + (f.length ?? 0)); continue; }
    if (f.type === 'uuid') { values[f.name] = formatUuid(toHexString(b, f.offset, f.offset + 16)); continue; }
    let raw = readInt(b, f.offset, f.type);
    if (f.bits !== undefined) raw = Math.floor(raw / 2 ** (f.shift ?? 0)) % 2 ** f.bits;
    values[f.name] = f.na !== undefined && raw === f.na ? null : scaled(raw, f.scale, f.add);
  }
  return { values, units };
}
