/**
 * GATT client procedures (Core Vol 3, Part G, 4) as plain async functions over the ATT bearer.
 *
 * The four looping procedures (primary services, services by UUID, Read By Type, Find Information)
 * are records run by one range iterator, `iterateRange`, which owns the exit conditions
 * (NimBLE-grade): it stops on Attribute Not Found, at the end of the range or at 0xFFFF, and it
 * requires every response to make progress (entries inside the range, handles strictly increasing
 * across the whole run, a group's end ≥ its start, no empty response); anything else is a
 * ProtocolError, never an endless loop. Attribute values (declarations, descriptors) are decoded by
 * the table in values.ts. The bearer enforces one request at a time; nothing here pipelines.
 *
 * Round trips are the currency. Full discovery (discoverAll) spends: Read By Group Type until done;
 * one Read By Type for includes over the whole range; Read By Type for characteristics over the
 * whole range (not one per service); Find Information only where a characteristic has room for
 * descriptors, skipping a one-handle gap after a notify/indicate characteristic (it must be the
 * CCCD, Vol 3, Part G, 3.3.3.3), and merging neighbouring gaps into one request when the
 * attributes between them cannot break the response's UUID format. On BlueZ's example server this
 * is 14 requests, the floor.
 */
import { concat, equalBytes, hex16 } from '../bytes/hex.js';
import { AttBearer } from '../att/bearer.js';
import { ATT_MAX_VALUE_LENGTH, AttErrorCode } from '../att/constants.js';
import type { AttPdu, AttPduOf, RequestKind, ResponseFor } from '../att/pdus.js';
import { is16, uuid as toUuid, uuidFromBytes, uuidToBytes, type Uuid } from '../codec/uuid.js';
import { AttError, DisconnectedError, InvalidStateError, ProtocolError, ArgumentError } from '../errors.js';
import { CHARACTERISTIC_PROPERTIES, GattType } from './constants.js';
import { attSignature } from './signing.js';
import { decodeGattValue, type GattValue, type GattValueKind } from './values.js';
import { log } from '../log.js';

/** The discovered database as plain data (what the cache stores). */
export interface ServiceData {
  uuid: Uuid;
  primary: boolean;
  start: number;
  end: number;
  includes: IncludeData[];
  characteristics: CharacteristicData[];
}
export interface IncludeData { handle: number; start: number; end: number; uuid: Uuid }
export interface CharacteristicData {
  uuid: Uuid;
  declHandle: number;
  valueHandle: number;
  properties: number;
  /** Last handle of the characteristic's range (before the next declaration or the service end). */
  end: number;
  descriptors: DescriptorData[];
}
export interface DescriptorData { handle: number; uuid: Uuid }

type Signal = AbortSignal | undefined;

function violation(what: string): ProtocolError {
  return new ProtocolError('gatt', what);
}

// ---- the range iterator -------------------------------------------------------------------------

/** One entry of a response: the first handle it covers, the last (a group's end), and what it yields. */
interface RangeEntry<Item> { handle: number; last: number; item: Item }

/**
 * A looping procedure as a record: the request for [from, end] and the entries of its response.
 * `once` stops after the first response (the first service with a UUID, the Database Hash).
 */
export interface RangeProcedure<K extends RequestKind, Item> {
  readonly what: string;
  request(from: number, end: number): AttPduOf<K>;
  entries(rsp: ResponseFor<K>): Iterable<RangeEntry<Item>>;
  readonly once?: boolean;
}

/**
 * Run a range procedure over [start, end]: the one loop with the exit and progress rules (see the
 * module comment). `check` sees every entry as it arrives, before the next request, so a hostile
 * response is refused before more is asked.
 */
export async function iterateRange<K extends RequestKind, Item>(bearer: AttBearer, p: RangeProcedure<K, Item>, start: number, end: number,
  signal: Signal, check?: (item: Item, handle: number) => void): Promise<Item[]> {
  const out: Item[] = [];
  let from = start;
  let covered = start - 1; // the last handle a previous entry covered
  while (from <= end) {
    let rsp: ResponseFor<K>;
    try {
      rsp = await bearer.request(p.request(from, end), { signal });
    } catch (e) {
      // Attribute Not Found is the normal end of every range procedure (Vol 3, Part G, 4.4–4.7).
      if (e instanceof AttError && e.errorCode === AttErrorCode.AttributeNotFound) break;
      throw e;
    }
    let last = -1;
    for (const e of p.entries(rsp)) {
      if (e.handle < from || e.handle > end) throw violation(`${p.what} at ${hex16(e.handle)} is outside the requested ${hex16(from)}–${hex16(end)}`);
      if (e.handle <= covered) throw violation(`${p.what} at ${hex16(e.handle)} overlaps the previous one ending ${hex16(covered)}`);
      if (e.last < e.handle) throw violation(`${p.what} at ${hex16(e.handle)} ends before it starts (${hex16(e.last)})`);
      check?.(e.item, e.handle);
      out.push(e.item);
      covered = last = e.last;
    }
    if (last < 0) throw violation(`${p.what}: a response without entries`);
    if (p.once || last >= end || last >= 0xffff) break;
    from = last + 1;
  }
  return out;
}

/** Discover All Primary Services (Vol 3, Part G, 4.4.1): Read By Group Type of «Primary Service». */
const primaryServices: RangeProcedure<'readByGroupTypeReq', ServiceData> = {
  what: 'service',
  request: (from, end) => ({ kind: 'readByGroupTypeReq', startingHandle: from, endingHandle: end, attributeGroupType: GattType.PrimaryService }),
  *entries(rsp) {
    for (const g of rsp.attributeDataList) {
      const u = uuidFromBytes(g.value);
      if (!u) throw violation(`service UUID of ${g.value.length} octets`);
      yield { handle: g.handle, last: g.endGroupHandle, item: { uuid: u, primary: true, start: g.handle, end: g.endGroupHandle, includes: [], characteristics: [] } };
    }
  },
};

/** Discover Primary Service by Service UUID (Vol 3, Part G, 4.4.2): Find By Type Value. */
function primaryServicesByUuid(serviceUuid: Uuid, once: boolean): RangeProcedure<'findByTypeValueReq', ServiceData> {
  const value = uuidToBytes(serviceUuid);
  const u = toUuid(serviceUuid);
  return {
    what: 'service',
    once,
    request: (from, end) => ({ kind: 'findByTypeValueReq', startingHandle: from, endingHandle: end, attributeType: GattType.PrimaryService, attributeValue: value }),
    *entries(rsp) {
      for (const h of rsp.handlesInformationList) {
        yield { handle: h.foundAttributeHandle, last: h.groupEndHandle, item: { uuid: u, primary: true, start: h.foundAttributeHandle, end: h.groupEndHandle, includes: [], characteristics: [] } };
      }
    },
  };
}

/** Read By Type of one attribute type: every (handle, value) (Vol 3, Part F, 3.4.4.1). */
function byType(type: Uuid, what: string, once = false): RangeProcedure<'readByTypeReq', { handle: number; value: Uint8Array }> {
  return {
    what,
    once,
    request: (from, end) => ({ kind: 'readByTypeReq', startingHandle: from, endingHandle: end, attributeType: type }),
    *entries(rsp) {
      for (const a of rsp.attributeDataList) yield { handle: a.handle, last: a.handle, item: { handle: a.handle, value: a.value } };
    },
  };
}

/** Find Information: every (handle, type) (Vol 3, Part G, 4.7.1). */
const descriptors: RangeProcedure<'findInformationReq', DescriptorData> = {
  what: 'descriptor',
  request: (from, end) => ({ kind: 'findInformationReq', startingHandle: from, endingHandle: end }),
  *entries(rsp) {
    for (const d of rsp.informationData) yield { handle: d.handle, last: d.handle, item: { handle: d.handle, uuid: d.uuid } };
  },
};

// ---- primary services ---------------------------------------------------------------------------

/** Discover All Primary Services (Vol 3, Part G, 4.4.1) within [start, end]. */
export function discoverPrimaryServices(bearer: AttBearer, signal: Signal, start = 0x0001, end = 0xffff): Promise<ServiceData[]> {
  return iterateRange(bearer, primaryServices, start, end, signal);
}

/** Discover Primary Service by Service UUID (Vol 3, Part G, 4.4.2): Find By Type Value. `first` stops after the first hit. */
export function discoverPrimaryServicesByUuid(bearer: AttBearer, serviceUuid: Uuid, signal: Signal, first = false): Promise<ServiceData[]> {
  return iterateRange(bearer, primaryServicesByUuid(serviceUuid, first), 0x0001, 0xffff, signal);
}

// ---- includes, characteristics, descriptors -------------------------------------------------------

/** Find Included Services (Vol 3, Part G, 4.5.1) over [start, end]; 128-bit includes cost one Read each. */
export async function findIncludedServices(bearer: AttBearer, start: number, end: number, signal: Signal): Promise<IncludeData[]> {
  const out: IncludeData[] = [];
  const decls: Array<{ handle: number; decl: GattValue<'includeDeclaration'> }> = [];
  await readByTypeAll(bearer, GattType.Include, start, end, signal, 'include', (handle, value) => {
    const decl = declaration('includeDeclaration', handle, value);
    // The UUID is there only when it is 16-bit (Vol 3, Part G, 3.2).
    if (decl.uuid16.length !== 0 && decl.uuid16.length !== 2) throw violation(`include declaration at ${hex16(handle)} has ${value.length} octets`);
    if (decl.includedHandle === 0 || decl.endGroupHandle < decl.includedHandle) {
      throw violation(`include at ${hex16(handle)} names the range ${hex16(decl.includedHandle)}–${hex16(decl.endGroupHandle)}`);
    }
    decls.push({ handle, decl });
  });
  for (const { handle, decl } of decls) {
    let u: Uuid | undefined;
    if (decl.uuid16.length === 2) u = uuidFromBytes(decl.uuid16);
    else {
      const rsp = await bearer.request({ kind: 'readReq', handle: decl.includedHandle }, { signal });
      if (rsp.value.length !== 16) throw violation(`included service declaration at ${hex16(decl.includedHandle)} is not a 128-bit UUID`);
      u = uuidFromBytes(rsp.value);
    }
    out.push({ handle, start: decl.includedHandle, end: decl.endGroupHandle, uuid: u! });
  }
  return out;
}

/** Every Read By Type hit in [start, end], looping until Attribute Not Found or the end. */
export function readByTypeAll(bearer: AttBearer, type: Uuid, start: number, end: number, signal: Signal, what = 'attribute',
  check?: (handle: number, value: Uint8Array) => void): Promise<Array<{ handle: number; value: Uint8Array }>> {
  return iterateRange(bearer, byType(type, what), start, end, signal, check ? (a, h) => check(h, a.value) : undefined);
}

/** Decode a declaration's value with the GATT value table; a malformed one is the peer's protocol error. */
function declaration<K extends GattValueKind>(kind: K, handle: number, value: Uint8Array): GattValue<K> {
  try {
    return decodeGattValue(kind, value);
  } catch (e) {
    throw new ProtocolError('gatt', `${kind} at ${hex16(handle)} has ${value.length} octets`, { cause: e });
  }
}

/**
 * Discover All Characteristics (Vol 3, Part G, 4.6.1) over [start, end] in as few requests as the
 * responses allow. Returns the declarations; ends are filled in by the caller per service.
 */
export async function discoverCharacteristics(bearer: AttBearer, start: number, end: number, signal: Signal): Promise<CharacteristicData[]> {
  const out: CharacteristicData[] = [];
  let prevValue = 0;
  await readByTypeAll(bearer, GattType.Characteristic, start, end, signal, 'characteristic', (handle, value) => {
    // Declaration value: properties (1), value handle (2), UUID (2 or 16) (Vol 3, Part G, 3.3.1).
    const decl = declaration('characteristicDeclaration', handle, value);
    if (decl.valueHandle <= handle || decl.valueHandle > end) {
      throw violation(`characteristic at ${hex16(handle)} has its value at ${hex16(decl.valueHandle)}, not after it within ${hex16(end)}`);
    }
    if (handle <= prevValue) throw violation(`characteristic at ${hex16(handle)} overlaps the previous one`);
    prevValue = decl.valueHandle;
    out.push({ uuid: decl.uuid, declHandle: handle, valueHandle: decl.valueHandle, properties: decl.properties, end, descriptors: [] });
  });
  return out;
}

/** Discover All Characteristic Descriptors (Vol 3, Part G, 4.7.1) in [start, end]. */
export function discoverDescriptors(bearer: AttBearer, start: number, end: number, signal: Signal): Promise<DescriptorData[]> {
  return iterateRange(bearer, descriptors, start, end, signal);
}

/** Put characteristics into their services and compute each one's end handle. */
export function assignCharacteristics(services: ServiceData[], chars: CharacteristicData[]): void {
  const sorted = [...services].sort((a, b) => a.start - b.start);
  for (const s of sorted) s.characteristics = [];
  let si = 0;
  for (const c of chars) {
    while (si < sorted.length && sorted[si]!.end < c.declHandle) si++;
    const s = sorted[si];
    if (!s || c.declHandle <= s.start) continue; // outside every service: not ours to show
    if (c.valueHandle > s.end) throw violation(`characteristic at ${hex16(c.declHandle)} has its value beyond its service's end ${hex16(s.end)}`);
    s.characteristics.push({ ...c, end: s.end });
  }
  for (const s of sorted) {
    const cs = s.characteristics;
    for (let i = 0; i < cs.length; i++) cs[i]!.end = i + 1 < cs.length ? cs[i + 1]!.declHandle - 1 : s.end;
  }
}

/**
 * Fill in the descriptors of every characteristic with the fewest Find Information requests:
 * no request for an empty range; the one-handle range after a notify/indicate characteristic is its
 * CCCD; neighbouring ranges are merged into one request when everything between them has 16-bit
 * types (so the response's single UUID format cannot cut it short) and the merged span fits one
 * response.
 */
export async function discoverAllDescriptors(bearer: AttBearer, services: ServiceData[], signal: Signal): Promise<void> {
  interface Gap { start: number; end: number; char: CharacteristicData }
  const gaps: Gap[] = [];
  for (const s of services) {
    for (const c of s.characteristics) {
      c.descriptors = [];
      if (c.end <= c.valueHandle) continue;
      const notifies = CHARACTERISTIC_PROPERTIES.has(c.properties, 'notify') || CHARACTERISTIC_PROPERTIES.has(c.properties, 'indicate');
      if (notifies && c.end === c.valueHandle + 1) {
        // Vol 3, Part G, 3.3.3.3: a notify/indicate characteristic has a CCCD; one free handle must be it.
        c.descriptors.push({ handle: c.end, uuid: GattType.ClientCharacteristicConfiguration });
        continue;
      }
      gaps.push({ start: c.valueHandle + 1, end: c.end, char: c });
    }
  }
  gaps.sort((a, b) => a.start - b.start);
  // Handles whose attribute type we already know and that are 16-bit: declarations of services,
  // includes and characteristics, 16-bit values, inferred CCCDs. A merged Find Information may
  // step over these without its single-format response being cut short.
  const known16 = new Set<number>();
  for (const s of services) {
    known16.add(s.start);
    for (const inc of s.includes) known16.add(inc.handle);
    for (const c of s.characteristics) {
      known16.add(c.declHandle);
      if (is16(c.uuid)) known16.add(c.valueHandle);
      for (const d of c.descriptors) known16.add(d.handle);
    }
  }
  const bridgeable = (from: number, to: number): boolean => {
    for (let h = from; h <= to; h++) if (!known16.has(h)) return false;
    return true;
  };
  const perResponse = Math.floor((bearer.mtu - 2) / 4);
  let i = 0;
  while (i < gaps.length) {
    let j = i;
    while (j + 1 < gaps.length) {
      const next = gaps[j + 1]!;
      if (next.end - gaps[i]!.start + 1 > perResponse || !bridgeable(gaps[j]!.end + 1, next.start - 1)) break;
      j++;
    }
    const found = await discoverDescriptors(bearer, gaps[i]!.start, gaps[j]!.end, signal);
    for (let k = i; k <= j; k++) {
      const g = gaps[k]!;
      for (const d of found) if (d.handle >= g.start && d.handle <= g.end) g.char.descriptors.push(d);
    }
    i = j + 1;
  }
}

/**
 * Full discovery: services, includes (and the secondary services they name), characteristics,
 * descriptors, over [start, end] (the whole database by default; a Service Changed range otherwise).
 */
export async function discoverAll(bearer: AttBearer, signal: Signal, start = 0x0001, end = 0xffff): Promise<ServiceData[]> {
  const services = await discoverPrimaryServices(bearer, signal, start, end);
  if (services.length === 0) return services;
  const lo = services[0]!.start;
  const hi = Math.min(end, services.at(-1)!.end);
  const includes = await findIncludedServices(bearer, lo, hi, signal);
  for (const inc of includes) {
    const owner = services.find(s => inc.handle > s.start && inc.handle <= s.end);
    owner?.includes.push(inc);
    // A service reached only through an include is a secondary service (Vol 3, Part G, 2.6).
    if (!services.some(s => s.start === inc.start)) {
      services.push({ uuid: inc.uuid, primary: false, start: inc.start, end: inc.end, includes: [], characteristics: [] });
    }
  }
  services.sort((a, b) => a.start - b.start);
  const spanEnd = Math.max(...services.map(s => s.end));
  const chars = await discoverCharacteristics(bearer, services[0]!.start, Math.min(spanEnd, 0xffff), signal);
  assignCharacteristics(services, chars);
  await discoverAllDescriptors(bearer, services, signal);
  return services;
}

// ---- reads --------------------------------------------------------------------------------------

/** Read Characteristic Value, continuing with Read Blob while responses are full (Vol 3, Part G, 4.8.1 and 4.8.3). */
export async function readLong(bearer: AttBearer, handle: number, signal: Signal): Promise<Uint8Array> {
  const first = await bearer.request({ kind: 'readReq', handle }, { signal });
  const full = bearer.mtu - 1;
  if (first.value.length < full) return first.value;
  const parts: Uint8Array[] = [first.value];
  let offset = first.value.length;
  for (;;) {
    // An attribute value is at most 512 octets (Vol 3, Part F, 3.2.9): never ask past that. A server
    // that ignores Value_Offset (BlueZ's example server does) would otherwise be read until 65535.
    if (offset === ATT_MAX_VALUE_LENGTH) break;
    if (offset > ATT_MAX_VALUE_LENGTH) throw violation(`long read of ${hex16(handle)} returned ${offset} octets, more than the 512 an attribute value may hold`);
    let rsp;
    try {
      rsp = await bearer.request({ kind: 'readBlobReq', handle, valueOffset: offset }, { signal });
    } catch (e) {
      // The value was exactly one full response long (Vol 3, Part F, 3.4.4.5).
      if (e instanceof AttError && (e.errorCode === AttErrorCode.AttributeNotLong || e.errorCode === AttErrorCode.InvalidOffset) && parts.length >= 1) break;
      throw e;
    }
    if (rsp.value.length > 0) parts.push(rsp.value);
    offset += rsp.value.length;
    if (rsp.value.length < full) break;
  }
  return concat(parts);
}

/** Read Using Characteristic UUID (Vol 3, Part G, 4.8.2) over [start, end]. */
export function readByUuid(bearer: AttBearer, u: Uuid, start: number, end: number, signal: Signal): Promise<Array<{ handle: number; value: Uint8Array }>> {
  return readByTypeAll(bearer, u, start, end, signal, 'value');
}

/** Read Multiple Characteristic Values (Vol 3, Part G, 4.8.4): the concatenated values. */
export async function readMultiple(bearer: AttBearer, handles: number[], signal: Signal): Promise<Uint8Array> {
  if (handles.length < 2) throw new ArgumentError('Read Multiple needs at least two handles');
  const rsp = await bearer.request({ kind: 'readMultipleReq', setOfHandles: handles }, { signal });
  return rsp.setOfValues;
}

/**
 * Read Multiple Variable Length Characteristic Values (Vol 3, Part G, 4.8.5). Values the response
 * had to cut (ATT_MTU) or leave out are completed with long reads, so every value is whole.
 */
export async function readMultipleVariable(bearer: AttBearer, handles: number[], signal: Signal): Promise<Uint8Array[]> {
  if (handles.length < 2) throw new ArgumentError('Read Multiple Variable needs at least two handles');
  const rsp = await bearer.request({ kind: 'readMultipleVariableReq', setOfHandles: handles }, { signal });
  const list = rsp.lengthValueTupleList;
  if (list.length > handles.length) throw violation(`${list.length} values for ${handles.length} handles`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < handles.length; i++) {
    const t = list[i];
    out.push(t && t.value.length === t.length ? t.value : await readLong(bearer, handles[i]!, signal));
  }
  return out;
}

// ---- writes -------------------------------------------------------------------------------------

/** Write Characteristic Value (Vol 3, Part G, 4.9.3), or Write Long (4.9.4) when it does not fit. */
export async function write(bearer: AttBearer, handle: number, value: Uint8Array, signal: Signal): Promise<void> {
  if (value.length <= bearer.mtu - 3) {
    await bearer.request({ kind: 'writeReq', handle, value }, { signal });
    return;
  }
  await reliableWrite(bearer, [{ handle, value }], signal, 'long write');
}

/** Write Without Response (Vol 3, Part G, 4.9.1): resolves when the link took it (back-pressure). */
export async function writeWithoutResponse(bearer: AttBearer, handle: number, value: Uint8Array): Promise<void> {
  if (value.length > bearer.mtu - 3) {
    throw new ArgumentError(`write without response carries at most ATT_MTU - 3 = ${bearer.mtu - 3} octets, got ${value.length}`);
  }
  await bearer.command({ kind: 'writeCmd', handle, value });
}

/**
 * Prepare every part, checking each echo, then execute (Vol 3, Part G, 4.9.4 long write and 4.9.5
 * reliable write). A differing echo cancels the whole queue (Execute Write, flags 0x00) and rejects
 * with ProtocolError; an error mid-way cancels too. A Prepare Write refused for security is retried
 * by the bearer after pairing (the refused part was not queued). An Execute Write refused for security
 * (a server that checks permissions only when it writes) is never sent again alone, since the server
 * may have emptied its queue: once the link's security is raised the queue is cancelled (flags 0x00,
 * harmless on an empty one) and the whole write is prepared and executed again, once.
 */
export async function reliableWrite(bearer: AttBearer, writes: Array<{ handle: number; value: Uint8Array }>, signal: Signal, what = 'reliable write'): Promise<void> {
  await prepareAll(bearer, writes, signal, what);
  try {
    await bearer.request({ kind: 'executeWriteReq', flags: 1 }, { signal });
    return;
  } catch (e) {
    if (!(e instanceof AttError) || signal?.aborted || bearer.isClosed) throw e;
    let raised: boolean;
    try {
      raised = await bearer.raiseSecurity(e.errorCode);
    } catch (failure) {
      if (failure instanceof DisconnectedError) throw failure;
      throw e.withSecurityFailure(failure);
    }
    if (!raised) throw e;
  }
  await bearer.request({ kind: 'executeWriteReq', flags: 0 }).catch(() => {});
  await prepareAll(bearer, writes, signal, what);
  await bearer.request({ kind: 'executeWriteReq', flags: 1 }, { signal });
}

async function prepareAll(bearer: AttBearer, writes: Array<{ handle: number; value: Uint8Array }>, signal: Signal, what: string): Promise<void> {
  const chunk = bearer.mtu - 5;
  let prepared = false;
  try {
    for (const w of writes) {
      if (w.value.length > 512) throw new ArgumentError(`${what}: an attribute value is at most 512 octets, got ${w.value.length}`);
      let offset = 0;
      do {
        const part = w.value.subarray(offset, offset + chunk);
        prepared = true;
        const echo = await bearer.request({ kind: 'prepareWriteReq', handle: w.handle, valueOffset: offset, value: part }, { signal });
        if (echo.handle !== w.handle || echo.valueOffset !== offset || !equalBytes(echo.value, part)) {
          throw new ProtocolError('gatt', `${what}: the server echoed ${hex16(echo.handle)}@${echo.valueOffset} differently from what was sent to ${hex16(w.handle)}@${offset}; cancelled`);
        }
        offset += part.length;
      } while (offset < w.value.length);
    }
  } catch (e) {
    if (prepared && !bearer.isClosed) {
      await bearer.request({ kind: 'executeWriteReq', flags: 0 }).catch(() => {});
    }
    throw e;
  }
}

/**
 * Signed Write Without Response (Vol 3, Part G, 4.9.2; signature Vol 3, Part H, 2.4.5): only on an
 * unencrypted link with a CSRK from bonding. The 12-octet signature is SignCounter (LE) followed by
 * the 64 most significant bits of AES-CMAC(CSRK, opcode ‖ handle ‖ value ‖ SignCounter) in LE order.
 */
export async function signedWrite(bearer: AttBearer, handle: number, value: Uint8Array, key: { csrk?: Uint8Array; signCounter?: number } = {}): Promise<void> {
  if (!key.csrk) {
    throw new InvalidStateError('gatt: a signed write needs the CSRK distributed during bonding (Vol 3, Part C, 10.4.1); this link has none — pair and bond first, or use a write request');
  }
  if (value.length > bearer.mtu - 15) throw new ArgumentError(`a signed write carries at most ATT_MTU - 15 = ${bearer.mtu - 15} octets`);
  const counter = key.signCounter ?? 0;
  const signature = attSignature(key.csrk, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), value, counter);
  await bearer.command({ kind: 'signedWriteCmd', handle, value, authenticationSignature: signature });
}

/** The ATT authentication signature (Vol 3, Part H, 2.4.5): see src/smp/signing.ts. */
export { attSignature };

/**
 * Read the Database Hash by UUID (Vol 3, Part G, 7.3): one request. Undefined when the peer has none
 * (Attribute Not Found, Read Not Permitted) or serves one that is not 16 octets (an empty or
 * malformed value cannot validate a cache: the caller falls back to plain discovery, and says so in
 * the debug log).
 */
export async function readDatabaseHash(bearer: AttBearer, signal: Signal): Promise<Uint8Array | undefined> {
  let found: Array<{ handle: number; value: Uint8Array }>;
  try {
    found = await iterateRange(bearer, byType(GattType.DatabaseHash, 'Database Hash', true), 0x0001, 0xffff, signal);
  } catch (e) {
    if (e instanceof AttError && e.errorCode === AttErrorCode.ReadNotPermitted) return undefined;
    throw e;
  }
  const v = found[0]?.value;
  if (v === undefined) return undefined;
  try {
    return decodeGattValue('databaseHash', v).hash;
  } catch {
    log.gatt('Database Hash of %d octets is unusable: plain discovery, nothing cached by hash', v.length);
    return undefined;
  }
}

export type { AttPdu };
