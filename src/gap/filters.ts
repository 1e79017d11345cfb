/**
 * Scan filters in Web Bluetooth's vocabulary (Web Bluetooth, "BluetoothLEScanFilterInit"): services,
 * name, namePrefix, manufacturerData {companyIdentifier, dataPrefix, mask}, serviceData {service,
 * dataPrefix, mask}; plus address and an RSSI threshold, which the Web API leaves to the browser.
 *
 * Semantics (as Web Bluetooth's "matches a filter"): every condition in one filter must hold; a list
 * of filters matches when any one does; no filters match everything. A service counts as advertised
 * when it is in the service UUID lists or is the key of a Service Data element. Filters are compiled
 * once (UUIDs normalised, prefixes checked) so that matching on the hot path does no parsing of its own.
 */
import { uuid, type Uuid } from '../codec/uuid.js';
import { ArgumentError } from '../errors.js';

export interface DataFilter {
  /** The advertised data must start with these bytes (after masking). */
  dataPrefix?: Uint8Array;
  /** Bit mask applied to both the data and dataPrefix (same length as dataPrefix). */
  mask?: Uint8Array;
}

export interface ManufacturerDataFilter extends DataFilter {
  companyIdentifier: number;
}

export interface ServiceDataFilter extends DataFilter {
  service: string | number;
}

export interface ScanFilter {
  /** All of these services must be advertised (UUID lists or service data keys). */
  services?: Array<string | number>;
  /** Exact local name (complete or shortened). */
  name?: string;
  namePrefix?: string;
  manufacturerData?: ManufacturerDataFilter[];
  serviceData?: ServiceDataFilter[];
  /**
   * BD_ADDR, any case, with or without colons: the address on the air, or the identity address of a
   * bonded peer (whose resolvable private address then matches, Vol 3, Part C, 10.7).
   */
  address?: string;
  /** Minimum RSSI in dBm (reports weaker than this are ignored). */
  rssi?: number;
}

/** What a filter looks at; the scanner's Advertisement implements it with lazily parsed fields. */
export interface Filterable {
  readonly address: string;
  /** A bonded advertiser's identity (privacy.ts). */
  readonly identity?: { readonly address: string } | undefined;
  readonly rssi: number;
  readonly name: string | undefined;
  readonly serviceUuids: readonly Uuid[];
  readonly serviceData: ReadonlyMap<Uuid, Uint8Array>;
  readonly manufacturerData: ReadonlyMap<number, Uint8Array>;
}

interface CompiledData {
  key: number | Uuid;
  prefix: Uint8Array | undefined;
  mask: Uint8Array | undefined;
}

interface CompiledFilter {
  services: Uuid[];
  name: string | undefined;
  namePrefix: string | undefined;
  manufacturer: CompiledData[];
  serviceData: CompiledData[];
  address: string | undefined;
  rssi: number | undefined;
}

export type FilterPredicate = (ad: Filterable) => boolean;

function compileData(key: number | Uuid, f: DataFilter, what: string): CompiledData {
  const prefix = f.dataPrefix;
  const mask = f.mask;
  if (mask && (!prefix || mask.length !== prefix.length)) {
    // Web Bluetooth: "If mask is present, its length must equal dataPrefix's length" (TypeError).
    throw new ArgumentError(`${what}: mask must have the same length as dataPrefix`);
  }
  return { key, prefix, mask };
}

export function normaliseAddress(a: string): string {
  const hex = a.replace(/[:-]/g, '').toUpperCase();
  if (!/^[0-9A-F]{12}$/.test(hex)) throw new ArgumentError(`not a Bluetooth address: ${JSON.stringify(a)}`);
  return hex.match(/../g)!.join(':');
}

export function compileFilter(f: ScanFilter): CompiledFilter {
  return {
    services: (f.services ?? []).map(s => uuid(s)),
    name: f.name,
    namePrefix: f.namePrefix,
    manufacturer: (f.manufacturerData ?? []).map(m => compileData(m.companyIdentifier, m, 'manufacturerData')),
    serviceData: (f.serviceData ?? []).map(s => compileData(uuid(s.service), s, 'serviceData')),
    address: f.address === undefined ? undefined : normaliseAddress(f.address),
    rssi: f.rssi,
  };
}

function dataMatches(data: Uint8Array | undefined, c: CompiledData): boolean {
  if (data === undefined) return false;
  const p = c.prefix;
  if (!p) return true;
  if (data.length < p.length) return false;
  const m = c.mask;
  for (let i = 0; i < p.length; i++) {
    const k = m ? m[i]! : 0xff;
    if ((data[i]! & k) !== (p[i]! & k)) return false;
  }
  return true;
}

function matchesOne(f: CompiledFilter, ad: Filterable): boolean {
  // Cheap, unparsed fields first so most non-matching reports never parse their AD.
  if (f.address !== undefined && ad.address !== f.address && ad.identity?.address !== f.address) return false;
  if (f.rssi !== undefined && ad.rssi < f.rssi) return false;
  if (f.name !== undefined && ad.name !== f.name) return false;
  if (f.namePrefix !== undefined && !(ad.name ?? '').startsWith(f.namePrefix)) return false;
  if (f.services.length > 0) {
    const listed = ad.serviceUuids;
    const data = ad.serviceData;
    for (const s of f.services) if (!listed.includes(s) && !data.has(s)) return false;
  }
  for (const m of f.manufacturer) if (!dataMatches(ad.manufacturerData.get(m.key as number), m)) return false;
  for (const s of f.serviceData) if (!dataMatches(ad.serviceData.get(s.key as Uuid), s)) return false;
  return true;
}

/** One predicate for a list of filters (any may match); undefined when there is nothing to check. */
export function compileFilters(filters: readonly ScanFilter[]): FilterPredicate | undefined {
  const compiled = filters.map(compileFilter).filter(c =>
    c.services.length || c.name !== undefined || c.namePrefix !== undefined || c.manufacturer.length ||
    c.serviceData.length || c.address !== undefined || c.rssi !== undefined);
  if (compiled.length === 0) return undefined;
  if (compiled.length === 1) {
    const only = compiled[0]!;
    return ad => matchesOne(only, ad);
  }
  return ad => compiled.some(c => matchesOne(c, ad));
}

/** The filters an options object names: its own top-level filter fields plus its `filters` list. */
export function filtersOf(o: ScanFilter & { filters?: ScanFilter[] }): ScanFilter[] {
  const own: ScanFilter = {};
  if (o.services) own.services = o.services;
  if (o.name !== undefined) own.name = o.name;
  if (o.namePrefix !== undefined) own.namePrefix = o.namePrefix;
  if (o.manufacturerData) own.manufacturerData = o.manufacturerData;
  if (o.serviceData) own.serviceData = o.serviceData;
  if (o.address !== undefined) own.address = o.address;
  if (o.rssi !== undefined) own.rssi = o.rssi;
  const list = [...(o.filters ?? [])];
  if (Object.keys(own).length > 0) {
    // Top-level fields narrow every listed filter (e.g. { rssi: -70, filters: [...] }).
    if (list.length === 0) list.push(own);
    else for (let i = 0; i < list.length; i++) list[i] = { ...list[i], ...own };
  }
  return list;
}
