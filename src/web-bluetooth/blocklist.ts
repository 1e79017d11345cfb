/**
 * The GATT blocklist of Web Bluetooth (WebBluetoothCG registries, gatt_blocklist.txt; spec 3.3
 * "The GATT Blocklist"): UUIDs a page may never reach (`exclude`), or may not read (`exclude-reads`)
 * or write (`exclude-writes`). Kept as data; `blocklist` lets a test or an embedder pass its own.
 */
export type BlocklistToken = 'exclude' | 'exclude-reads' | 'exclude-writes';

export const GATT_BLOCKLIST: ReadonlyMap<string, BlocklistToken> = new Map<string, BlocklistToken>([
  // Services. HID: a page could become a key logger.
  ['00001812-0000-1000-8000-00805f9b34fb', 'exclude'],
  // Firmware update services that do not check signatures (Nordic legacy DFU, TI OAD, Cypress bootloader).
  ['00001530-1212-efde-1523-785feabcd123', 'exclude'],
  ['f000ffc0-0451-4000-b000-000000000000', 'exclude'],
  ['00060000-0000-1000-8000-00805f9b34fb', 'exclude'],
  // FIDO (U2F over BLE, 0xFFF9, and the pairingless FIDO service 0xFDE2).
  ['0000fffd-0000-1000-8000-00805f9b34fb', 'exclude'],
  ['0000fff9-0000-1000-8000-00805f9b34fb', 'exclude'],
  ['0000fde2-0000-1000-8000-00805f9b34fb', 'exclude'],
  // Characteristics: Peripheral Privacy Flag (no writes), Reconnection Address, Serial Number String.
  ['00002a02-0000-1000-8000-00805f9b34fb', 'exclude-writes'],
  ['00002a03-0000-1000-8000-00805f9b34fb', 'exclude'],
  ['00002a25-0000-1000-8000-00805f9b34fb', 'exclude'],
  // Descriptors: the CCCD and SCCD are written by the UA (startNotifications), never by the page.
  ['00002902-0000-1000-8000-00805f9b34fb', 'exclude-writes'],
  ['00002903-0000-1000-8000-00805f9b34fb', 'exclude-writes'],
]);

export class Blocklist {
  constructor(private readonly table: ReadonlyMap<string, BlocklistToken> = GATT_BLOCKLIST) {}
  /** "blocklisted": excluded entirely. */
  blocked(uuid: string): boolean { return this.table.get(uuid) === 'exclude'; }
  /** "blocklisted for reads": excluded, or exclude-reads. */
  blockedForReads(uuid: string): boolean { const t = this.table.get(uuid); return t === 'exclude' || t === 'exclude-reads'; }
  /** "blocklisted for writes": excluded, or exclude-writes. */
  blockedForWrites(uuid: string): boolean { const t = this.table.get(uuid); return t === 'exclude' || t === 'exclude-writes'; }
}
