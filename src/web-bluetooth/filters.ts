/**
 * requestDevice() options as the spec converts, validates and matches them (Web Bluetooth 4.1,
 * "requestDevice", "request Bluetooth devices", "canonicalizing" BluetoothLEScanFilterInit and
 * BluetoothDataFilterInit, and "matches a filter"). Invalid combinations are TypeErrors; a blocklisted
 * service named in a filter is a SecurityError; blocklisted optional services are dropped silently.
 */
import { copyBufferSource } from './buffer.js';
import type { Blocklist } from './blocklist.js';
import { domError } from './errors.js';
import { BluetoothUUID, toUnsignedLong } from './uuid.js';

export interface DataFilter { prefix: Uint8Array<ArrayBuffer>; mask: Uint8Array<ArrayBuffer> }
export interface CanonicalFilter {
  services?: string[];
  name?: string;
  namePrefix?: string;
  manufacturerData?: Array<DataFilter & { companyIdentifier: number }>;
  serviceData?: Array<DataFilter & { service: string }>;
}
export interface CanonicalRequest {
  /** undefined for acceptAllDevices. */
  filters: CanonicalFilter[] | undefined;
  exclusionFilters: CanonicalFilter[];
  /** Services the page may use once the device is chosen (filters' services + optionalServices, minus the blocklist). */
  allowedServices: Set<string>;
  optionalManufacturerData: number[];
}

/** What the matcher looks at: the device as its latest advertisement shows it. */
export interface AdvertisedDevice {
  name: string | undefined;
  serviceUuids: readonly string[];
  serviceData: ReadonlyMap<string, Uint8Array>;
  manufacturerData: ReadonlyMap<number, Uint8Array>;
}

const MAX_NAME_OCTETS = 248; // Device Name: at most 248 octets (Core Vol 3, Part C, 12.1)
const utf8 = new TextEncoder();

function present(v: unknown): boolean { return v !== undefined; }

/** A WebIDL sequence<T> from any realm's iterable; TypeError for anything else. */
function sequence(v: unknown, what: string): unknown[] {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null || typeof (v as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${what} is not iterable (a sequence was expected).`);
  }
  return [...(v as Iterable<unknown>)];
}

function dictionary(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' && typeof v !== 'function') {
    throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${what} is not an object.`);
  }
  return v as Record<string, unknown>;
}

function dataFilter(d: Record<string, unknown>, what: string): DataFilter {
  const prefix = present(d.dataPrefix) ? copyBufferSource(d.dataPrefix, `${what}.dataPrefix`) : new Uint8Array(0);
  const mask = present(d.mask) ? copyBufferSource(d.mask, `${what}.mask`) : new Uint8Array(prefix.length).fill(0xff);
  if (mask.length !== prefix.length) {
    throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${what}: 'mask' size (${mask.length}) is different from 'dataPrefix' size (${prefix.length}).`);
  }
  return { prefix, mask };
}

function canonicalizeFilter(raw: unknown, blocklist: Blocklist, where: string): CanonicalFilter {
  const f = dictionary(raw, where);
  const out: CanonicalFilter = {};
  if (!present(f.services) && !present(f.name) && !present(f.namePrefix) && !present(f.manufacturerData) && !present(f.serviceData)) {
    throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where} has none of 'services', 'name', 'namePrefix', 'manufacturerData' or 'serviceData' (a filter must restrict the devices).`);
  }
  if (present(f.services)) {
    const list = sequence(f.services, `${where}.services`);
    if (list.length === 0) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.services is empty; leave it out to not filter on services.`);
    out.services = list.map(s => {
      const u = BluetoothUUID.getService(s as string | number);
      if (blocklist.blocked(u)) throw domError('SecurityError', `requestDevice(): ${where}.services names a blocklisted UUID: ${u}.`);
      return u;
    });
  }
  if (present(f.name)) {
    const name = String(f.name);
    if (utf8.encode(name).length > MAX_NAME_OCTETS) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.name is longer than ${MAX_NAME_OCTETS} UTF-8 octets.`);
    out.name = name;
  }
  if (present(f.namePrefix)) {
    const p = String(f.namePrefix);
    if (p.length === 0) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.namePrefix is empty; leave it out to not filter on names.`);
    if (utf8.encode(p).length > MAX_NAME_OCTETS) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.namePrefix is longer than ${MAX_NAME_OCTETS} UTF-8 octets.`);
    out.namePrefix = p;
  }
  if (present(f.manufacturerData)) {
    const list = sequence(f.manufacturerData, `${where}.manufacturerData`);
    if (list.length === 0) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.manufacturerData is empty.`);
    const seen = new Set<number>();
    out.manufacturerData = list.map((m, i) => {
      const d = dictionary(m, `${where}.manufacturerData[${i}]`);
      if (!present(d.companyIdentifier)) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.manufacturerData[${i}] has no companyIdentifier.`);
      const id = toUnsignedLong(d.companyIdentifier) & 0xffff;
      if (seen.has(id)) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.manufacturerData names company 0x${id.toString(16).padStart(4, '0')} twice.`);
      seen.add(id);
      return { companyIdentifier: id, ...dataFilter(d, `${where}.manufacturerData[${i}]`) };
    });
  }
  if (present(f.serviceData)) {
    const list = sequence(f.serviceData, `${where}.serviceData`);
    if (list.length === 0) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.serviceData is empty.`);
    out.serviceData = list.map((s, i) => {
      const d = dictionary(s, `${where}.serviceData[${i}]`);
      if (!present(d.service)) throw new TypeError(`Failed to execute 'requestDevice' on 'Bluetooth': ${where}.serviceData[${i}] has no service.`);
      const u = BluetoothUUID.getService(d.service as string | number);
      if (blocklist.blocked(u)) throw domError('SecurityError', `requestDevice(): ${where}.serviceData names a blocklisted UUID: ${u}.`);
      return { service: u, ...dataFilter(d, `${where}.serviceData[${i}]`) };
    });
  }
  return out;
}

/** Validate and canonicalize requestDevice()'s options (throws TypeError / SecurityError as the spec). */
/** A `filters` member of requestDevice() or requestLEScan(): a non-empty sequence of valid filters. */
function filterList(v: unknown, blocklist: Blocklist, method: 'requestDevice' | 'requestLEScan'): CanonicalFilter[] {
  const list = sequence(v, 'filters');
  if (list.length === 0) throw new TypeError(`Failed to execute '${method}' on 'Bluetooth': 'filters' member must be non-empty to find any devices.`);
  return list.map((f, i) => canonicalizeFilter(f, blocklist, `filters[${i}]`));
}

export function canonicalizeRequest(options: unknown, blocklist: Blocklist): CanonicalRequest {
  const o = dictionary(options, 'options');
  const acceptAll = Boolean(o.acceptAllDevices);
  if (present(o.exclusionFilters) && !present(o.filters)) {
    throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': 'exclusionFilters' needs 'filters' (it narrows them).");
  }
  if (present(o.filters) && acceptAll) {
    throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': Option 'filters' and 'acceptAllDevices' cannot be used together: use one of them.");
  }
  if (!present(o.filters) && !acceptAll) {
    throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': Either 'filters' should be present or 'acceptAllDevices' should be true, but not both.");
  }
  const filters = present(o.filters) ? filterList(o.filters, blocklist, 'requestDevice') : undefined;
  let exclusionFilters: CanonicalFilter[] = [];
  if (present(o.exclusionFilters)) {
    const list = sequence(o.exclusionFilters, 'exclusionFilters');
    if (list.length === 0) throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': 'exclusionFilters' member must be non-empty to exclude any devices.");
    exclusionFilters = list.map((f, i) => canonicalizeFilter(f, blocklist, `exclusionFilters[${i}]`));
  }
  const allowed = new Set<string>();
  for (const f of filters ?? []) for (const s of f.services ?? []) allowed.add(s);
  if (present(o.optionalServices)) {
    for (const s of sequence(o.optionalServices, 'optionalServices')) {
      const u = BluetoothUUID.getService(s as string | number);
      if (!blocklist.blocked(u)) allowed.add(u);
    }
  }
  const optionalManufacturerData = present(o.optionalManufacturerData)
    ? sequence(o.optionalManufacturerData, 'optionalManufacturerData').map(x => toUnsignedLong(x) & 0xffff)
    : [];
  return { filters, exclusionFilters, allowedServices: allowed, optionalManufacturerData };
}

/** BluetoothLEScanOptions (Web Bluetooth Scanning, "requestLEScan" steps 1-4), validated as requestDevice's are. */
export interface CanonicalScanRequest {
  filters: CanonicalFilter[] | undefined;
  keepRepeatedDevices: boolean;
  acceptAllAdvertisements: boolean;
}

export function canonicalizeScanRequest(options: unknown, blocklist: Blocklist): CanonicalScanRequest {
  const o = dictionary(options, 'options');
  const acceptAll = Boolean(o.acceptAllAdvertisements);
  const keep = Boolean(o.keepRepeatedDevices);
  if (present(o.filters) && acceptAll) {
    throw new TypeError("Failed to execute 'requestLEScan' on 'Bluetooth': 'filters' and 'acceptAllAdvertisements' cannot be used together: use one of them.");
  }
  if (!present(o.filters) && !acceptAll) {
    throw new TypeError("Failed to execute 'requestLEScan' on 'Bluetooth': either 'filters' should be present or 'acceptAllAdvertisements' should be true.");
  }
  const filters = present(o.filters) ? filterList(o.filters, blocklist, 'requestLEScan') : undefined;
  return { filters, keepRepeatedDevices: keep, acceptAllAdvertisements: acceptAll };
}

function dataMatches(data: Uint8Array | undefined, f: DataFilter): boolean {
  if (!data || data.length < f.prefix.length) return false;
  for (let i = 0; i < f.prefix.length; i++) if ((data[i]! & f.mask[i]!) !== (f.prefix[i]! & f.mask[i]!)) return false;
  return true;
}

/** "matches a filter": every member present must hold. A service counts when listed or in service data. */
export function matchesFilter(d: AdvertisedDevice, f: CanonicalFilter): boolean {
  if (f.name !== undefined && d.name !== f.name) return false;
  if (f.namePrefix !== undefined && !(d.name ?? '').startsWith(f.namePrefix)) return false;
  if (f.services && !f.services.every(s => d.serviceUuids.includes(s) || d.serviceData.has(s))) return false;
  if (f.manufacturerData && !f.manufacturerData.every(m => dataMatches(d.manufacturerData.get(m.companyIdentifier), m))) return false;
  if (f.serviceData && !f.serviceData.every(s => dataMatches(d.serviceData.get(s.service), s))) return false;
  return true;
}

/** A device is a candidate when it matches some filter (or all are accepted) and no exclusion filter. */
export function matchesRequest(d: AdvertisedDevice, r: CanonicalRequest): boolean {
  if (r.filters && !r.filters.some(f => matchesFilter(d, f))) return false;
  return !r.exclusionFilters.some(f => matchesFilter(d, f));
}
