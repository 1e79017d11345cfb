/**
 * GATT attribute values as a table (issue 8, section 3: "one codec discipline"): the values of the
 * declarations and descriptors GATT defines, and of the GATT service's characteristics, are rows of
 * one defineTable like every PDU, keyed by the 16-bit attribute type. Procedures, the client and the
 * server database decode and build them here instead of reading octets by hand.
 *
 * Each row's body is the whole attribute value (Vol 3, Part G, 3 and 7). Decoding rejects a value
 * of the wrong size with DecodeError (trailing octets included), so a hostile peer cannot slip a
 * short or long declaration past a procedure.
 */
import { ByteReader } from '../bytes/reader.js';
import { bytes, i8, rest, repeated, u8, x16 } from '../codec/field.js';
import { bare, defineTable, framedCodec, type PduOf } from '../codec/table.js';
import { uuidAny } from '../codec/uuid.js';
import { CCCD, CHARACTERISTIC_PROPERTIES, EXTENDED_PROPERTIES, SCCD } from './constants.js';

export const GATT_VALUE_TABLE = defineTable('gatt', {
  /** Primary Service declaration: the service UUID, 2 or 16 octets (Vol 3, Part G, 3.1). */
  primaryServiceDeclaration: { code: 0x2800, name: 'Primary Service Declaration', spec: 'Vol 3, Part G, 3.1', fields: { uuid: uuidAny } },
  /** Secondary Service declaration (Vol 3, Part G, 3.1). */
  secondaryServiceDeclaration: { code: 0x2801, name: 'Secondary Service Declaration', spec: 'Vol 3, Part G, 3.1', fields: { uuid: uuidAny } },
  /**
   * Include declaration: included service handle, end group handle, and the service UUID only when
   * it is 16-bit (so `uuid16` is 2 octets or none; Vol 3, Part G, 3.2, Table 3.2).
   */
  includeDeclaration: {
    code: 0x2802, name: 'Include Declaration', spec: 'Vol 3, Part G, 3.2',
    fields: { includedHandle: x16, endGroupHandle: x16, uuid16: rest },
  },
  /** Characteristic declaration: properties, value handle, UUID of 2 or 16 octets (Vol 3, Part G, 3.3.1). */
  characteristicDeclaration: {
    code: 0x2803, name: 'Characteristic Declaration', spec: 'Vol 3, Part G, 3.3.1',
    fields: { properties: CHARACTERISTIC_PROPERTIES, valueHandle: x16, uuid: uuidAny },
  },
  /** Characteristic Extended Properties: reliable write, writable auxiliaries (Vol 3, Part G, 3.3.3.1). */
  extendedProperties: { code: 0x2900, name: 'Characteristic Extended Properties', spec: 'Vol 3, Part G, 3.3.3.1', fields: { bits: EXTENDED_PROPERTIES } },
  /** Client Characteristic Configuration: notification 0x0001, indication 0x0002 (Vol 3, Part G, 3.3.3.3). */
  clientCharacteristicConfiguration: { code: 0x2902, name: 'Client Characteristic Configuration', spec: 'Vol 3, Part G, 3.3.3.3', fields: { bits: CCCD } },
  /** Server Characteristic Configuration: broadcast 0x0001 (Vol 3, Part G, 3.3.3.4). */
  serverCharacteristicConfiguration: { code: 0x2903, name: 'Server Characteristic Configuration', spec: 'Vol 3, Part G, 3.3.3.4', fields: { bits: SCCD } },
  /** Characteristic Presentation Format (Vol 3, Part G, 3.3.3.5, Table 3.16). */
  presentationFormat: {
    code: 0x2904, name: 'Characteristic Presentation Format', spec: 'Vol 3, Part G, 3.3.3.5',
    fields: { format: u8, exponent: i8, unit: x16, namespace: u8, description: x16 },
  },
  /** Characteristic Aggregate Format: the handles of Presentation Format descriptors (Vol 3, Part G, 3.3.3.6). */
  aggregateFormat: { code: 0x2905, name: 'Characteristic Aggregate Format', spec: 'Vol 3, Part G, 3.3.3.6', fields: { handles: repeated(x16) } },
  /** Service Changed: start and end of the affected handle range (Vol 3, Part G, 7.1). */
  serviceChanged: { code: 0x2a05, name: 'Service Changed', spec: 'Vol 3, Part G, 7.1', fields: { start: x16, end: x16 } },
  /** Client Supported Features: a bit field of any length, first octet first (Vol 3, Part G, 7.2). */
  clientSupportedFeatures: { code: 0x2b29, name: 'Client Supported Features', spec: 'Vol 3, Part G, 7.2', fields: { bits: rest } },
  /** Database Hash: 128 bits (Vol 3, Part G, 7.3). */
  databaseHash: { code: 0x2b2a, name: 'Database Hash', spec: 'Vol 3, Part G, 7.3', fields: { hash: bytes(16) } },
  /** Server Supported Features: a bit field (Vol 3, Part G, 7.4). */
  serverSupportedFeatures: { code: 0x2b3a, name: 'Server Supported Features', spec: 'Vol 3, Part G, 7.4', fields: { bits: rest } },
});

type Rows = typeof GATT_VALUE_TABLE.rows;
export type GattValueKind = keyof Rows & string;
export type GattValue<K extends GattValueKind = GattValueKind> = PduOf<Rows, K>;

/**
 * The table's one codec. An attribute value has no header of its own: its code is the attribute
 * type, known from the declaration or the request (bare framing).
 */
export const GATT_VALUE_CODEC = framedCodec<Rows, {}, never>(GATT_VALUE_TABLE, bare, { what: 'attribute value' });

/** Decode an attribute value of the given kind; DecodeError when it does not have the row's shape. */
export function decodeGattValue<K extends GattValueKind>(kind: K, value: Uint8Array): GattValue<K> {
  return GATT_VALUE_CODEC.decodeBody(GATT_VALUE_TABLE.codeOf(kind), new ByteReader(value, 'gatt', kind)) as GattValue<K>;
}

/** Encode an attribute value at its exact size. */
export function encodeGattValue(v: GattValue): Uint8Array {
  return GATT_VALUE_CODEC.encodeBody(v);
}

/** `kind field=value …` for logs. */
export function describeGattValue(v: GattValue): string {
  return GATT_VALUE_CODEC.describe(v);
}

/** A CCCD value (Vol 3, Part G, 3.3.3.3): the two octets for `bits`. */
export function cccdValue(bits: number): Uint8Array {
  return encodeGattValue({ kind: 'clientCharacteristicConfiguration', bits });
}

