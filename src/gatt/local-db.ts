import { GattDatabase } from './server-db.js';

/**
 * Our own small GAP/GATT database, served on every link's ATT bearer so a peer that discovers us
 * (BlueZ as a peripheral does) gets real answers (Core Vol 3, Part C, 12 and Part G, 7): Device
 * Name, Appearance, Service Changed (+CCCD), Client Supported Features and Database Hash.
 */
export function localGattDatabase(options: { name?: string; appearance?: number } = {}): GattDatabase {
  const appearance = options.appearance ?? 0;
  return new GattDatabase([
    { uuid: 0x1800, characteristics: [
      { uuid: 0x2a00, properties: ['read'], value: options.name ?? 'blewire' },
      { uuid: 0x2a01, properties: ['read'], value: Uint8Array.of(appearance & 0xff, appearance >> 8) },
    ] },
    { uuid: 0x1801, characteristics: [
      { uuid: 0x2a05, properties: ['indicate'] },
      { uuid: 0x2b29, properties: ['read', 'write'] },
      { uuid: 0x2b2a, properties: ['read'] },
    ] },
  ]);
}
