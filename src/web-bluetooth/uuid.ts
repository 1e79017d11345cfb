/**
 * BluetoothUUID (Web Bluetooth, "Standardized UUIDs"): canonicalUUID(alias) and the three resolvers
 * getService / getCharacteristic / getDescriptor, which accept a 32-bit alias (a number), a valid
 * UUID (lower-case 128-bit text, exactly as the spec's "valid UUID"), or a name of the GATT assigned
 * numbers registry (`heart_rate`, `gap.device_name`, `gatt.client_characteristic_configuration`).
 * Anything else is a TypeError. Upper-case UUID text is not a valid UUID in the spec: rejected too.
 */
import { CHARACTERISTIC_NAMES, DESCRIPTOR_NAMES, SERVICE_NAMES } from '../api/surface.js';

/** "valid UUID": 36 characters, lower-case hex in 8-4-4-4-12 groups. */
const VALID_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** WebIDL `unsigned long` conversion (ToNumber, non-finite → 0, truncate, modulo 2^32). */
export function toUnsignedLong(v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n)) return 0;
  const t = Math.trunc(n) % 2 ** 32;
  return t < 0 ? t + 2 ** 32 : t;
}

function exactNames(table: ReadonlyMap<number, string>): ReadonlyMap<string, number> {
  return new Map([...table].map(([n, name]) => [name, n]));
}

type Kind = 'Service' | 'Characteristic' | 'Descriptor';
const TABLES: Record<Kind, { names: ReadonlyMap<string, number>; example: string; registry: string }> = {
  Service: { names: exactNames(SERVICE_NAMES), example: 'alert_notification', registry: 'services' },
  Characteristic: { names: exactNames(CHARACTERISTIC_NAMES), example: 'aerobic_heart_rate_lower_limit', registry: 'characteristics' },
  Descriptor: { names: exactNames(DESCRIPTOR_NAMES), example: 'gatt.characteristic_presentation_format', registry: 'descriptors' },
};

export function canonicalUUID(alias: number): string {
  return toUnsignedLong(alias).toString(16).padStart(8, '0') + '-0000-1000-8000-00805f9b34fb';
}

/** ResolveUUIDName (Web Bluetooth 4.1.1): a (DOMString or unsigned long) to a valid UUID, or TypeError. */
function resolve(kind: Kind, name: unknown): string {
  if (typeof name === 'number') return canonicalUUID(name);
  const s = String(name);
  if (VALID_UUID.test(s)) return s;
  const t = TABLES[kind];
  const n = t.names.get(s);
  if (n !== undefined) return canonicalUUID(n);
  const hint = /^(0x)?[0-9a-fA-F]{4,8}$/.test(s) ? ` (a 16- or 32-bit alias is a number: ${s.startsWith('0x') ? s : '0x' + s}, not a string)`
    : VALID_UUID.test(s.toLowerCase()) ? ' (UUIDs must be lower case)' : '';
  throw new TypeError(`Failed to execute 'get${kind}' on 'BluetoothUUID': Invalid ${kind} name: '${s}'${hint}. ` +
    `It must be a valid UUID alias (e.g. 0x1234), UUID (lowercase hex characters e.g. '00001234-0000-1000-8000-00805f9b34fb'), ` +
    `or recognized standard name from the GATT assigned ${t.registry} e.g. '${t.example}'.`);
}

/** The spec's BluetoothUUID namespace object (static members only, as in a browser). */
export class BluetoothUUID {
  private constructor() { /* a namespace: not constructible */ }
  static getService(name: string | number): string { return resolve('Service', name); }
  static getCharacteristic(name: string | number): string { return resolve('Characteristic', name); }
  static getDescriptor(name: string | number): string { return resolve('Descriptor', name); }
  static canonicalUUID(alias: number): string { return canonicalUUID(alias); }
}
