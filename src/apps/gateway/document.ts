/**
 * The per-device JSON document published on `<prefix>/<gateway>/devices/<address>`:
 *
 *   { "gateway", "address", "addressType", "name"?, "rssi", "txPower"?, "connectable",
 *     "serviceUuids", "manufacturerData": { "0x004c": hex }, "serviceData": { "fcd2": hex },
 *     "decoded": { "<format>": { values } }, "units": { "<format>": { value: unit } },
 *     "decodeErrors"?: { "<format>": text }, "firstSeen", "lastSeen" (ISO 8601), "reports", "seq" }
 *
 * `seq` counts this gateway's device documents (1, 2, …): a consumer can see what it missed.
 * `address` / `addressType` are the address on the air, as the controller reported it. A bonded
 * device's document also carries `identity` { address, addressType }: its resolvable private address
 * resolved with the bond's IRK (Core Vol 3, Part C, 10.7), or its identity address itself; the gateway
 * then keys the device, its topic and its Home Assistant entities by that identity, so a device whose
 * RPA rotates stays one device.
 */
import { shortUuid, type Advertisement } from '../../index.js';
import { toHexString } from './decoders/layout.js';
import type { Decoded, SensorValue } from './decoders/types.js';

export interface DeviceDocument {
  gateway: string;
  address: string;
  addressType: string;
  identity?: { address: string; addressType: 'public' | 'random' };
  name?: string;
  rssi: number;
  txPower?: number;
  connectable: boolean;
  serviceUuids: string[];
  manufacturerData: Record<string, string>;
  serviceData: Record<string, string>;
  decoded: Record<string, Record<string, SensorValue>>;
  units: Record<string, Record<string, string>>;
  decodeErrors?: Record<string, string>;
  firstSeen: string;
  lastSeen: string;
  reports: number;
  seq: number;
}

/** A UUID as short as it can be written: "fcd2" for SIG 16-bit ones, else the 128-bit form. */
export function shortName(u: string): string {
  const n = shortUuid(u);
  return n !== undefined && n <= 0xffff ? n.toString(16).padStart(4, '0') : u;
}

export function buildDocument(gateway: string, ad: Advertisement, decoded: readonly Decoded[],
  times: { firstSeen: number; lastSeen: number }, reports: number, seq: number): DeviceDocument {
  const md: Record<string, string> = {};
  for (const [k, v] of ad.manufacturerData) md['0x' + k.toString(16).padStart(4, '0')] = toHexString(v);
  const sd: Record<string, string> = {};
  for (const [k, v] of ad.serviceData) sd[shortName(k)] = toHexString(v);
  const doc: DeviceDocument = {
    gateway,
    address: ad.address,
    addressType: ad.addressType,
    rssi: ad.rssi,
    connectable: ad.connectable,
    serviceUuids: ad.serviceUuids.map(shortName),
    manufacturerData: md,
    serviceData: sd,
    decoded: {},
    units: {},
    firstSeen: new Date(times.firstSeen).toISOString(),
    lastSeen: new Date(times.lastSeen).toISOString(),
    reports,
    seq,
  };
  if (ad.identity) doc.identity = { address: ad.identity.address, addressType: ad.identity.addressType };
  const name = ad.name;
  if (name !== undefined) doc.name = name;
  const tx = ad.txPower;
  if (tx !== undefined) doc.txPower = tx;
  for (const d of decoded) {
    if (Object.keys(d.values).length > 0) {
      doc.decoded[d.format] = d.values;
      if (Object.keys(d.units).length > 0) doc.units[d.format] = d.units;
    }
    if (d.error) (doc.decodeErrors ??= {})[d.format] = d.error;
  }
  return doc;
}
