/**
 * Characteristic values as people read them, next to the hex: `87 %` for a Battery Level, the fields
 * of a Heart Rate Measurement, strings, and any value whose characteristic has a Characteristic
 * Presentation Format descriptor (0x2904). Unknown formats give undefined (the hex stands alone);
 * a value too short for its format is said to be so, never thrown.
 *
 * Formats: GATT Specification Supplement (GSS) for the characteristics; the Presentation Format
 * descriptor is Core Vol 3, Part G, 3.3.3.5; its Format and Unit codes are in Assigned Numbers
 * (2.4.1 Characteristic Presentation Format types, 3.5 Units).
 */
import { shortUuid, type Uuid } from '../codec/uuid.js';

/** What a value means: `text` for a line, `fields` for --json. */
export interface DecodedValue {
  text: string;
  fields: Record<string, unknown>;
}

/** Core Vol 3, Part G, 3.3.3.5: format (1), exponent (1, signed), unit (2), namespace (1), description (2). */
export interface PresentationFormat {
  format: number;
  exponent: number;
  unit: number;
  namespace: number;
  description: number;
}

export function parsePresentationFormat(v: Uint8Array): PresentationFormat | undefined {
  if (v.length < 7) return undefined;
  return { format: v[0]!, exponent: (v[1]! << 24) >> 24, unit: v[2]! | (v[3]! << 8), namespace: v[4]!, description: v[5]! | (v[6]! << 8) };
}

/** Assigned Numbers 3.5: the units people meet on small sensors. */
const UNITS: Record<number, string> = {
  0x2700: '', 0x2701: 'm', 0x2702: 'kg', 0x2703: 's', 0x2704: 'A', 0x2705: 'K', 0x2713: 'm/s²', 0x2724: 'Pa',
  0x2728: 'V', 0x272f: '°C', 0x2780: 'bar', 0x2781: 'mmHg', 0x27ac: '°F', 0x27ad: '%',
};

const text = new TextDecoder('utf-8', { fatal: false });
const view = (v: Uint8Array): DataView => new DataView(v.buffer, v.byteOffset, v.byteLength);

/** Assigned Numbers 2.4.1 format codes → how to read them (little-endian, Vol 3, Part G, 3.3.3.5.2). */
function readFormat(format: number, v: Uint8Array): number | string | boolean | undefined {
  const d = view(v);
  const need = (n: number): boolean => v.length >= n;
  switch (format) {
    case 0x01: return need(1) ? (v[0]! & 1) === 1 : undefined;              // boolean
    case 0x04: return need(1) ? v[0]! : undefined;                          // uint8
    case 0x06: return need(2) ? d.getUint16(0, true) : undefined;           // uint16
    case 0x07: return need(3) ? v[0]! | (v[1]! << 8) | (v[2]! << 16) : undefined; // uint24
    case 0x08: return need(4) ? d.getUint32(0, true) : undefined;           // uint32
    case 0x0c: return need(1) ? d.getInt8(0) : undefined;                   // sint8
    case 0x0e: return need(2) ? d.getInt16(0, true) : undefined;            // sint16
    case 0x10: return need(4) ? d.getInt32(0, true) : undefined;            // sint32
    case 0x14: return need(4) ? d.getFloat32(0, true) : undefined;          // float32
    case 0x15: return need(8) ? d.getFloat64(0, true) : undefined;          // float64
    case 0x19: return text.decode(v);                                       // utf8s
    case 0x1a: return String.fromCharCode(...Array.from({ length: v.length >> 1 }, (_, i) => d.getUint16(2 * i, true))); // utf16s
    default: return undefined;
  }
}

/** A number with a decimal exponent, without binary noise: 2345 × 10^-2 → "23.45". */
function scaled(n: number, exponent: number): string {
  if (exponent >= 0) return String(n * 10 ** exponent);
  return (n / 10 ** -exponent).toFixed(-exponent);
}

/** IEEE 11073-20601 32-bit FLOAT (GSS "medfloat32"): 24-bit signed mantissa, 8-bit signed exponent. */
function medfloat32(v: Uint8Array, at: number): number | undefined {
  if (v.length < at + 4) return undefined;
  let m = v[at]! | (v[at + 1]! << 8) | (v[at + 2]! << 16);
  if (m === 0x7fffff || m === 0x800000 || m === 0x7ffffe || m === 0x800002 || m === 0x800001) return undefined; // NaN, NRes, ±INFINITY, reserved
  if (m & 0x800000) m -= 0x1000000;
  const e = (v[at + 3]! << 24) >> 24;
  return Number((m * 10 ** e).toFixed(Math.max(0, -e)));
}

/** GSS 3.113 Heart Rate Measurement. */
function heartRate(v: Uint8Array): DecodedValue {
  if (v.length < 2) return { text: 'too short for a Heart Rate Measurement', fields: { error: 'short' } };
  const flags = v[0]!;
  const wide = (flags & 0x01) !== 0;
  let at = 1;
  if (wide && v.length < 3) return { text: 'too short for a Heart Rate Measurement', fields: { error: 'short' } };
  const bpm = wide ? v[1]! | (v[2]! << 8) : v[1]!;
  at += wide ? 2 : 1;
  const fields: Record<string, unknown> = { bpm };
  const parts = [`${bpm} bpm`];
  if (flags & 0x04) { // Sensor Contact Supported; bit 1 says whether contact is detected
    fields['contact'] = (flags & 0x02) !== 0;
    parts.push((flags & 0x02) ? 'contact' : 'no contact');
  }
  if (flags & 0x08 && v.length >= at + 2) {
    const kj = v[at]! | (v[at + 1]! << 8);
    at += 2;
    fields['energyKj'] = kj;
    parts.push(`energy ${kj} kJ`);
  }
  if (flags & 0x10) {
    const rr: number[] = [];
    for (; at + 1 < v.length; at += 2) rr.push(Math.round(((v[at]! | (v[at + 1]! << 8)) * 1000) / 1024)); // units of 1/1024 s
    fields['rrMs'] = rr;
    if (rr.length) parts.push(`RR ${rr.join(' ')} ms`);
  }
  return { text: parts.join(', '), fields };
}

/** GSS 3.216 Temperature Measurement. */
function temperature(v: Uint8Array): DecodedValue | undefined {
  if (v.length < 5) return undefined;
  const t = medfloat32(v, 1);
  if (t === undefined) return { text: 'temperature not available', fields: { temperature: null } };
  const unit = v[0]! & 0x01 ? '°F' : '°C';
  return { text: `${t} ${unit}`, fields: { temperature: t, unit } };
}

const STRINGS = new Set([0x2a00, 0x2a24, 0x2a25, 0x2a26, 0x2a27, 0x2a28, 0x2a29, 0x2a87, 0x2a8a, 0x2a90, 0x2abe]);

/** The value decoded where its format is known; `format` is the characteristic's 0x2904 descriptor. */
export function decodeValue(uuid: Uuid, v: Uint8Array, format?: PresentationFormat): DecodedValue | undefined {
  if (format) {
    const raw = readFormat(format.format, v);
    if (raw !== undefined) {
      const unit = UNITS[format.unit];
      const value = typeof raw === 'number' && format.exponent !== 0 ? scaled(raw, format.exponent) : raw;
      const shown = typeof value === 'string' && format.format >= 0x19 ? JSON.stringify(value) : String(value);
      return {
        text: `${shown}${unit ? ` ${unit}` : unit === undefined ? ` (unit 0x${format.unit.toString(16)})` : ''}`,
        fields: { value: typeof value === 'string' && format.format < 0x19 ? Number(value) : value, unit: unit ?? `0x${format.unit.toString(16)}`, format: format.format },
      };
    }
  }
  const short = shortUuid(uuid);
  if (short === undefined) return undefined;
  if (short === 0x2a19) return v.length >= 1 ? { text: `${v[0]} %`, fields: { percent: v[0] } } : undefined; // GSS 3.27 Battery Level
  if (short === 0x2a37) return heartRate(v);
  if (short === 0x2a1c) return temperature(v);
  if (short === 0x2a6e && v.length >= 2) { // GSS Temperature: sint16, 0.01 °C
    const c = view(v).getInt16(0, true);
    return c === -32768 ? { text: 'temperature not known', fields: { celsius: null } } : { text: `${scaled(c, -2)} °C`, fields: { celsius: c / 100 } };
  }
  if (short === 0x2a6f && v.length >= 2) { // GSS Humidity: uint16, 0.01 %
    const h = view(v).getUint16(0, true);
    return { text: `${scaled(h, -2)} %`, fields: { percent: h / 100 } };
  }
  if (STRINGS.has(short)) {
    const s = text.decode(v);
    return { text: JSON.stringify(s), fields: { string: s } };
  }
  return undefined;
}
