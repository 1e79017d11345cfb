/**
 * BTHome v2 (https://bthome.io/format, https://bthome.io/encryption): service data of UUID 0xFCD2, a
 * device information byte (bit 0 encrypted, bit 2 trigger based, bits 5-7 version = 2), then objects
 * (id, value) in the order of the table below; a receiver stops at the first id it does not know.
 * Encrypted payloads are AES-128-CCM with a 4-byte MIC: ciphertext, counter (uint32 LE), MIC; the
 * nonce is MAC (6) + UUID (D2 FC) + device information byte + counter (bytes as sent).
 * The object table is the spec's "Sensor data", "Binary sensor data", "Events", "Device" and "Misc"
 * tables, one row each. A name used by two ids gets a postfix on repetition in one payload
 * (temperature, temperature_2, …), as the spec says.
 */
import { ccmDecrypt } from './ccm.js';
import { intSize, readInt, scaled, toHexString, type IntType } from './layout.js';
import type { Decoded, DecodeContext, SensorDecoder, SensorValue } from './types.js';

export const BTHOME_UUID = 0xfcd2;

type Kind =
  | { t: IntType; factor?: number; unit?: string }              // number
  | { t: 'bool' }                                                // binary sensor (uint8 0/1)
  | { t: 'text' | 'raw' }                                        // length-prefixed
  | { t: 'timestamp' }                                           // uint32 seconds since the epoch → ISO text
  | { t: 'version3' | 'version4' }                               // firmware version (uint24 / uint32)
  | { t: 'button' }                                              // event: uint8 event id
  | { t: 'dimmer' };                                             // event: uint8 event id + uint8 steps

/** [object id, value name, kind]: the spec's tables. */
const OBJECTS: ReadonlyArray<readonly [number, string, Kind]> = [
  // Misc data
  [0x00, 'packet_id', { t: 'u8' }],
  // Sensor data
  [0x01, 'battery', { t: 'u8', factor: 1, unit: '%' }],
  [0x02, 'temperature', { t: 's16le', factor: 0.01, unit: '°C' }],
  [0x03, 'humidity', { t: 'u16le', factor: 0.01, unit: '%' }],
  [0x04, 'pressure', { t: 'u24le', factor: 0.01, unit: 'hPa' }],
  [0x05, 'illuminance', { t: 'u24le', factor: 0.01, unit: 'lx' }],
  [0x06, 'mass', { t: 'u16le', factor: 0.01, unit: 'kg' }],
  [0x07, 'mass', { t: 'u16le', factor: 0.01, unit: 'lb' }],
  [0x08, 'dewpoint', { t: 's16le', factor: 0.01, unit: '°C' }],
  [0x09, 'count', { t: 'u8' }],
  [0x0a, 'energy', { t: 'u24le', factor: 0.001, unit: 'kWh' }],
  [0x0b, 'power', { t: 'u24le', factor: 0.01, unit: 'W' }],
  [0x0c, 'voltage', { t: 'u16le', factor: 0.001, unit: 'V' }],
  [0x0d, 'pm2_5', { t: 'u16le', unit: 'µg/m³' }],
  [0x0e, 'pm10', { t: 'u16le', unit: 'µg/m³' }],
  // Binary sensor data (names that would clash with a sensor get a suffix)
  [0x0f, 'generic_boolean', { t: 'bool' }],
  [0x10, 'power_on', { t: 'bool' }],
  [0x11, 'opening', { t: 'bool' }],
  [0x12, 'co2', { t: 'u16le', unit: 'ppm' }],
  [0x13, 'tvoc', { t: 'u16le', unit: 'µg/m³' }],
  [0x14, 'moisture', { t: 'u16le', factor: 0.01, unit: '%' }],
  [0x15, 'battery_low', { t: 'bool' }],
  [0x16, 'battery_charging', { t: 'bool' }],
  [0x17, 'carbon_monoxide', { t: 'bool' }],
  [0x18, 'cold', { t: 'bool' }],
  [0x19, 'connectivity', { t: 'bool' }],
  [0x1a, 'door', { t: 'bool' }],
  [0x1b, 'garage_door', { t: 'bool' }],
  [0x1c, 'gas_detected', { t: 'bool' }],
  [0x1d, 'heat', { t: 'bool' }],
  [0x1e, 'light', { t: 'bool' }],
  [0x1f, 'lock', { t: 'bool' }],
  [0x20, 'moisture_detected', { t: 'bool' }],
  [0x21, 'motion', { t: 'bool' }],
  [0x22, 'moving', { t: 'bool' }],
  [0x23, 'occupancy', { t: 'bool' }],
  [0x24, 'plug', { t: 'bool' }],
  [0x25, 'presence', { t: 'bool' }],
  [0x26, 'problem', { t: 'bool' }],
  [0x27, 'running', { t: 'bool' }],
  [0x28, 'safety', { t: 'bool' }],
  [0x29, 'smoke', { t: 'bool' }],
  [0x2a, 'sound', { t: 'bool' }],
  [0x2b, 'tamper', { t: 'bool' }],
  [0x2c, 'vibration', { t: 'bool' }],
  [0x2d, 'window', { t: 'bool' }],
  [0x2e, 'humidity', { t: 'u8', unit: '%' }],
  [0x2f, 'moisture', { t: 'u8', unit: '%' }],
  // Events
  [0x3a, 'button', { t: 'button' }],
  [0x3c, 'dimmer', { t: 'dimmer' }],
  // Sensor data (continued)
  [0x3d, 'count', { t: 'u16le' }],
  [0x3e, 'count', { t: 'u32le' }],
  [0x3f, 'rotation', { t: 's16le', factor: 0.1, unit: '°' }],
  [0x40, 'distance', { t: 'u16le', unit: 'mm' }],
  [0x41, 'distance', { t: 'u16le', factor: 0.1, unit: 'm' }],
  [0x42, 'duration', { t: 'u24le', factor: 0.001, unit: 's' }],
  [0x43, 'current', { t: 'u16le', factor: 0.001, unit: 'A' }],
  [0x44, 'speed', { t: 'u16le', factor: 0.01, unit: 'm/s' }],
  [0x45, 'temperature', { t: 's16le', factor: 0.1, unit: '°C' }],
  [0x46, 'uv_index', { t: 'u8', factor: 0.1 }],
  [0x47, 'volume', { t: 'u16le', factor: 0.1, unit: 'L' }],
  [0x48, 'volume', { t: 'u16le', unit: 'mL' }],
  [0x49, 'volume_flow_rate', { t: 'u16le', factor: 0.001, unit: 'm³/h' }],
  [0x4a, 'voltage', { t: 'u16le', factor: 0.1, unit: 'V' }],
  [0x4b, 'gas', { t: 'u24le', factor: 0.001, unit: 'm³' }],
  [0x4c, 'gas', { t: 'u32le', factor: 0.001, unit: 'm³' }],
  [0x4d, 'energy', { t: 'u32le', factor: 0.001, unit: 'kWh' }],
  [0x4e, 'volume', { t: 'u32le', factor: 0.001, unit: 'L' }],
  [0x4f, 'water', { t: 'u32le', factor: 0.001, unit: 'L' }],
  [0x50, 'timestamp', { t: 'timestamp' }],
  [0x51, 'acceleration', { t: 'u16le', factor: 0.001, unit: 'm/s²' }],
  [0x52, 'gyroscope', { t: 'u16le', factor: 0.001, unit: '°/s' }],
  [0x53, 'text', { t: 'text' }],
  [0x54, 'raw', { t: 'raw' }],
  [0x55, 'volume_storage', { t: 'u32le', factor: 0.001, unit: 'L' }],
  [0x56, 'conductivity', { t: 'u16le', unit: 'µS/cm' }],
  [0x57, 'temperature', { t: 's8', unit: '°C' }],
  [0x58, 'temperature', { t: 's8', factor: 0.35, unit: '°C' }],
  [0x59, 'count', { t: 's8' }],
  [0x5a, 'count', { t: 's16le' }],
  [0x5b, 'count', { t: 's32le' }],
  [0x5c, 'power', { t: 's32le', factor: 0.01, unit: 'W' }],
  [0x5d, 'current', { t: 's16le', factor: 0.001, unit: 'A' }],
  [0x5e, 'direction', { t: 'u16le', factor: 0.01, unit: '°' }],
  [0x5f, 'precipitation', { t: 'u16le', factor: 0.1, unit: 'mm' }],
  [0x60, 'channel', { t: 'u8' }],
  [0x61, 'rotational_speed', { t: 'u16le', unit: 'rpm' }],
  [0x62, 'speed', { t: 's32le', factor: 0.000001, unit: 'm/s' }],
  [0x63, 'acceleration', { t: 's32le', factor: 0.000001, unit: 'm/s²' }],
  [0x64, 'light_level', { t: 'u8' }],
  [0x65, 'settings_revision', { t: 'u8' }],
  // Device
  [0xf0, 'device_type_id', { t: 'u16le' }],
  [0xf1, 'firmware_version', { t: 'version4' }],
  [0xf2, 'firmware_version', { t: 'version3' }],
];

const TABLE: ReadonlyMap<number, { name: string; kind: Kind }> = new Map(OBJECTS.map(([id, name, kind]) => [id, { name, kind }]));

/** Event ids of the button device type (0x3A) and the dimmer (0x3C), from the spec's Events table. */
const BUTTON_EVENTS = ['none', 'press', 'double_press', 'triple_press', 'long_press', 'long_double_press', 'long_triple_press'];
const DIMMER_EVENTS = ['none', 'rotate_left', 'rotate_right'];

/** Bytes an object's value takes at offset `o` (after the id), or -1 when it cannot be known. */
function valueSize(kind: Kind, b: Uint8Array, o: number): number {
  switch (kind.t) {
    case 'bool': case 'button': return 1;
    case 'dimmer': return 2;
    case 'text': case 'raw': return o < b.length ? 1 + b[o]! : -1;
    case 'timestamp': case 'version4': return 4;
    case 'version3': return 3;
    default: return intSize(kind.t);
  }
}

function readValue(kind: Kind, b: Uint8Array, o: number, out: Record<string, SensorValue>, name: string): SensorValue {
  switch (kind.t) {
    case 'bool': return b[o] !== 0;
    case 'button': return BUTTON_EVENTS[b[o]!] ?? (b[o] === 0x80 ? 'hold_press' : `event_0x${b[o]!.toString(16)}`);
    case 'dimmer': {
      out[`${name}_steps`] = b[o + 1]!;
      return DIMMER_EVENTS[b[o]!] ?? `event_0x${b[o]!.toString(16)}`;
    }
    case 'text': return new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(o + 1, o + 1 + b[o]!));
    case 'raw': return toHexString(b, o + 1, o + 1 + b[o]!);
    case 'timestamp': return new Date(readInt(b, o, 'u32le') * 1000).toISOString();
    case 'version4': return `${b[o + 3]}.${b[o + 2]}.${b[o + 1]}.${b[o]}`;
    case 'version3': return `${b[o + 2]}.${b[o + 1]}.${b[o]}`;
    default: return scaled(readInt(b, o, kind.t), kind.factor ?? 1);
  }
}

/** Objects → values; stops at the first unknown id or a truncated object (reported in `error`). */
export function decodeBthomeObjects(b: Uint8Array, out: Decoded): void {
  let o = 0;
  const seen = new Map<string, number>();
  while (o < b.length) {
    const id = b[o]!;
    const row = TABLE.get(id);
    if (!row) {
      out.error = `unknown object id 0x${id.toString(16).padStart(2, '0')} at offset ${o}: parsing stopped there`;
      return;
    }
    const size = valueSize(row.kind, b, o + 1);
    if (size < 0 || o + 1 + size > b.length) {
      out.error = `object 0x${id.toString(16).padStart(2, '0')} (${row.name}) truncated at offset ${o}`;
      return;
    }
    const n = (seen.get(row.name) ?? 0) + 1;
    seen.set(row.name, n);
    const key = n === 1 ? row.name : `${row.name}_${n}`;
    out.values[key] = readValue(row.kind, b, o + 1, out.values, key);
    if ('unit' in row.kind && row.kind.unit) out.units[key] = row.kind.unit;
    o += 1 + size;
  }
}

/** "AA:BB:CC:DD:EE:FF" → its 6 bytes in written order (the nonce's MAC field). */
export function macBytes(address: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i.exec(address);
  return m ? Uint8Array.from(m.slice(1).map(h => parseInt(h, 16))) : undefined;
}

/** The CCM nonce: MAC + UUID (D2 FC as sent) + device information byte + counter bytes as sent. */
export function bthomeNonce(mac: Uint8Array, info: number, counter: Uint8Array): Uint8Array {
  const n = new Uint8Array(13);
  n.set(mac, 0);
  n[6] = BTHOME_UUID & 0xff;
  n[7] = BTHOME_UUID >> 8;
  n[8] = info;
  n.set(counter, 9);
  return n;
}

export function decodeBthome(b: Uint8Array, ctx: DecodeContext): Decoded | undefined {
  const out: Decoded = { format: 'bthome', values: {}, units: {} };
  if (b.length < 1) return { ...out, error: 'no device information byte' };
  const info = b[0]!;
  const version = info >> 5;
  if (version !== 2) return { ...out, error: `BTHome version ${version} is not supported (only version 2)` };
  if (info & 0x04) out.values['trigger_based'] = true;
  if (!(info & 0x01)) {
    decodeBthomeObjects(b.subarray(1), out);
    return out;
  }
  out.encrypted = true;
  // info, ciphertext (≥ 1), counter (4), MIC (4)
  if (b.length < 1 + 1 + 4 + 4) return { ...out, error: 'encrypted payload too short' };
  const counterBytes = b.subarray(b.length - 8, b.length - 4);
  out.counter = readInt(b, b.length - 8, 'u32le');
  if (!ctx.key) return { ...out, error: 'encrypted: no key configured for this device (keys in the gateway config)' };
  const mac = macBytes(ctx.address);
  if (!mac) return { ...out, error: `encrypted: cannot build the nonce from address ${ctx.address}` };
  const plain = ccmDecrypt(ctx.key, bthomeNonce(mac, info, counterBytes), b.subarray(1, b.length - 8), b.subarray(b.length - 4));
  if (!plain) return { ...out, error: 'encrypted: the MIC does not verify (wrong key, or corrupted data)' };
  decodeBthomeObjects(plain, out);
  return out;
}

export const bthome: SensorDecoder = {
  name: 'bthome',
  serviceData: BTHOME_UUID,
  spec: 'BTHome v2, https://bthome.io/format and https://bthome.io/encryption',
  decode: decodeBthome,
};
