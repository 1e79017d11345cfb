import { fromShort } from '../codec/uuid.js';
import { bitfield } from '../codec/bits.js';
import { x16, x8 } from '../codec/field.js';
import { hex16 } from '../bytes/hex.js';

/**
 * GATT numbers (Core Vol 3, Part G): attribute types of declarations and descriptors, characteristic
 * property bits, CCCD bits, and the GATT service's characteristics used for caching.
 */

/** Attribute types of the GATT declarations (Vol 3, Part G, 3.1–3.3; Assigned Numbers 3.5). */
export const GattType = {
  PrimaryService: fromShort(0x2800),
  SecondaryService: fromShort(0x2801),
  Include: fromShort(0x2802),
  Characteristic: fromShort(0x2803),
  ExtendedProperties: fromShort(0x2900),
  UserDescription: fromShort(0x2901),
  ClientCharacteristicConfiguration: fromShort(0x2902),
  ServerCharacteristicConfiguration: fromShort(0x2903),
  PresentationFormat: fromShort(0x2904),
  AggregateFormat: fromShort(0x2905),
  /** GATT service (0x1801) characteristics (Vol 3, Part G, 7). */
  GenericAccessService: fromShort(0x1800),
  GenericAttributeService: fromShort(0x1801),
  DeviceName: fromShort(0x2a00),
  Appearance: fromShort(0x2a01),
  ServiceChanged: fromShort(0x2a05),
  ClientSupportedFeatures: fromShort(0x2b29),
  DatabaseHash: fromShort(0x2b2a),
  ServerSupportedFeatures: fromShort(0x2b3a),
} as const;

/** Characteristic property bits of the declaration (Vol 3, Part G, 3.3.1.1, Table 3.5). */
export const CharacteristicProperty = {
  broadcast: 0x01,
  read: 0x02,
  writeWithoutResponse: 0x04,
  write: 0x08,
  notify: 0x10,
  indicate: 0x20,
  authenticatedSignedWrites: 0x40,
  extendedProperties: 0x80,
} as const;

/** Bits of the Characteristic Extended Properties descriptor (Vol 3, Part G, 3.3.3.1, Table 3.10). */
export const ExtendedProperty = {
  reliableWrite: 0x0001,
  writableAuxiliaries: 0x0002,
} as const;

/**
 * The bit-field field types of the declaration and descriptor values (codec/bits.ts): the GATT value
 * table decodes with them, callers test bits by name (`CCCD.has(v, 'indication')`) instead of masks,
 * and describe() prints `0x0002(indication)`.
 */
export const CHARACTERISTIC_PROPERTIES = bitfield(x8, CharacteristicProperty);
export const EXTENDED_PROPERTIES = bitfield(x16, ExtendedProperty, hex16);

/** The property names a characteristic may have (declaration bits plus the extended ones). */
export type CharacteristicPropertyName = Exclude<keyof typeof CharacteristicProperty, 'extendedProperties'> | keyof typeof ExtendedProperty;

/** CCCD value bits (Vol 3, Part G, 3.3.3.3, Table 3.11). */
export const Cccd = { notification: 0x0001, indication: 0x0002 } as const;

/** Client Supported Features bits (Vol 3, Part G, 7.2, Table 7.6). */
export const ClientFeature = { robustCaching: 0x01, eatt: 0x02, multipleHandleValueNotifications: 0x04 } as const;

/** The CCCD value as a bit field (Vol 3, Part G, 3.3.3.3, Table 3.11); bits 2-15 are reserved. */
export const CCCD = bitfield(x16, Cccd, hex16);
/** The Server Characteristic Configuration value (Vol 3, Part G, 3.3.3.4, Table 3.13). */
export const SCCD = bitfield(x16, { broadcast: 0x0001 }, hex16);
/** The first octet of Client Supported Features (Vol 3, Part G, 7.2, Table 7.6). */
export const CLIENT_FEATURES = bitfield(x8, ClientFeature);

/** Decode a declaration's property byte (+ extended bits) into names. */
export function propertyNames(props: number, ext = 0): CharacteristicPropertyName[] {
  const out: CharacteristicPropertyName[] = [];
  for (const k of Object.keys(CharacteristicProperty) as Array<keyof typeof CharacteristicProperty>) {
    if (k !== 'extendedProperties' && CHARACTERISTIC_PROPERTIES.has(props, k)) out.push(k);
  }
  for (const k of Object.keys(ExtendedProperty) as Array<keyof typeof ExtendedProperty>) if (EXTENDED_PROPERTIES.has(ext, k)) out.push(k);
  return out;
}
