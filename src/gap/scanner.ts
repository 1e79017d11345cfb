/**
 * The scanner: controller scan state, report processing (scan-response merge, extended report
 * reassembly, host-side duplicate handling) and scan sessions (async iterator and callback form).
 *
 * Design overview
 * - Driven by scan sessions (`scan()` adds one, `stop()` / timeout / abort removes it), by the GAP
 *   scheduler (`pause()` / `resume()` around connection initiation: one scheduler serialises scanning
 *   and initiating, and scanning resumes afterwards, noble's failure #1) and by LE Advertising Report /
 *   LE Extended Advertising Report events from the host, handled synchronously.
 * - Controller state: `reconcile()` is the one place that sends scan commands, one at a time, until
 *   what the controller does equals what is wanted (enabled with parameters, or disabled). Legacy or
 *   extended commands are chosen from the capability model; an extended command answered "unknown"
 *   is recorded and the scan falls back to legacy (Vol 4, Part E, 3.1.1 forbids mixing them, so the
 *   choice is made before the first scan command and kept).
 * - Reports: the controller's duplicate filter stays off so RSSI and last-seen stay fresh; duplicates
 *   are handled here, per session: a device is reported when first seen, when its advertising or
 *   scan response data changed, and (option) when its RSSI moved by `rssiDelta`; `duplicates: true`
 *   reports everything. In active scanning a scannable advertisement of a device whose scan response
 *   we do not have yet is held up to `scanResponseWaitMs` for the SCAN_RSP and reported merged.
 *   Extended reports with Data_Status "incomplete, more" are reassembled per advertiser and SID
 *   (Vol 4, Part E, 7.7.65.13), bounded, "truncated" is reported with what arrived.
 * - The hot path parses nothing: an Advertisement holds the raw AD views and parses them on first
 *   access to a parsed property (name, serviceUuids, …), once.
 * - On transport loss or Hardware Error every session ends with that error.
 */
import { systemClock, type Clock, type TimerId } from '../clock.js';
import { concat, toHex } from '../bytes/hex.js';
import { AbortError, HardwareError, TransportError } from '../errors.js';
import { log } from '../log.js';
import type { Uuid } from '../codec/uuid.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import {
  advertisingReportInPlace, extendedAdvertisingReportInPlace, LE_META_TABLE, newAdvertisingReportView, type AdvertisingReportView,
} from '../hci/le-events.js';
import { EXT_ADV_EVENT_TYPE, ExtAdvDataStatus, legacyAdvEventBits } from '../hci/bit-fields.js';
import { parseAdIn, parseAdvertisingData, type ParsedAd } from './ad.js';
import { compileFilters, filtersOf, type FilterPredicate, type ScanFilter } from './filters.js';
import type { PeerIdentity } from './privacy.js';
import { addressString, DEFAULT_REGISTRY_CAPACITY, DeviceRegistry } from './registry.js';

const SUB_ADV_REPORT = LE_META_TABLE.codeOf('leAdvertisingReport');

export type AddressType = 'public' | 'random' | 'anonymous';

/** HCI address type (reports, 7.7.65.2 / 7.7.65.13) → API address type; identity types are resolved ones. */
export function addressTypeName(t: number): AddressType {
  return t === 0 || t === 2 ? 'public' : t === 0xff ? 'anonymous' : 'random';
}

const EMPTY = new Uint8Array(0);
const EMPTY_PARSED: ParsedAd = parseAdvertisingData(EMPTY);

/**
 * A device's copy in the arena (copyOf / store below), at `at` in its chunk: this header, then the
 * advertising data, then the scan response data, back to back. Compared in place with each new
 * report, parsed as one run, viewed only when the application asks.
 */
const H_TYPE = 0;      // the API address type's index (TYPE_NAMES)
const H_ADDRESS = 1;   // the 6 address octets as the HCI carries them (least significant first)
const H_EXT = 7;       // bit 0: H_TX holds the extended header's TX power; bit 1: H_SID holds its SID
const H_TX = 8;        // i8
const H_SID = 9;
const H_DATA = 10;     // u16: advertising data length
const H_SCAN_RSP = 12; // u16: scan response length, NO_SCAN_RSP for none yet
const HEADER = 14;
const NO_SCAN_RSP = 0xffff;
const TYPE_NAMES: readonly AddressType[] = ['public', 'random', 'anonymous'];
/** HCI address type (reports) → the index of its API type in TYPE_NAMES (and the registry's). */
const typeIndexOfHci = (t: number): number => (t === 0 || t === 2 ? 0 : t === 0xff ? 2 : 1);

/**
 * What every Advertisement of a device shares until its advertising data, scan response, identity or
 * extended header fields change: the copy (above) and the identity, immutable; and what is read from
 * it, made on first access and kept here (address string, parse, views). A device that repeats
 * itself costs one small Advertisement per report and is parsed once; a device nobody reads costs
 * this object and its copy.
 */
export interface AdvertisedData {
  readonly chunk: Uint8Array;
  /**
   * The chunk's ArrayBuffer (a chunk starts at its offset 0), kept beside it: the views of the copy
   * (data, scan response, the parse's service and manufacturer data) are made from it with
   * `new Uint8Array(buffer, offset, length)`. `subarray` costs about twice as much, and reading
   * `chunk.buffer` (a call into C++ on node 20) more than the view itself (issue 14).
   */
  readonly buffer: ArrayBuffer;
  readonly at: number;
  readonly identity: PeerIdentity | undefined;
  address: string | undefined;
  /** The name the device's previous copy parsed to: the parse takes it when the octets still spell it. */
  readonly priorName: string | undefined;
  parsed: ParsedAd | undefined;
  data: Uint8Array | undefined;
  /** The scan response's view; null: the copy has one, not viewed yet; undefined: it has none. */
  scanResponse: Uint8Array | null | undefined;
}

/**
 * AdvertisedData and ReportTime are made by constructors, not object literals: a literal's
 * allocation site carries V8's pretenuring feedback, and whether a per-device site is judged
 * long-lived (its objects then made in the old generation, where they die) depends on where the
 * scavenges happen to fall: with a 1 MiB young generation that made the scanner 1.5x slower
 * (issue 14). A class has no allocation site; its fields also start with their final
 * representation (a time is a double). The reads live in the same object as the copy's place:
 * one object per change instead of two, and one pointer fewer on every read.
 */
class Shared implements AdvertisedData {
  parsed: ParsedAd | undefined = undefined;
  data: Uint8Array | undefined = undefined;
  scanResponse: Uint8Array | null | undefined;
  constructor(
    readonly chunk: Uint8Array, readonly buffer: ArrayBuffer, readonly at: number, readonly identity: PeerIdentity | undefined,
    public address: string | undefined, readonly priorName: string | undefined,
  ) {
    this.scanResponse = scanResponseLengthOf(chunk, at) === NO_SCAN_RSP ? undefined : null;
  }
}
/**
 * A changed copy starts from the device's previous one: the same address string (the same device),
 * and its name for the parse to reuse. A beacon whose counter changes on every visit then costs no
 * address string and, while its name stays, no name string per change (issue 14).
 */
const changedFrom = (was: AdvertisedData, identity: PeerIdentity | undefined): Shared =>
  new Shared(storedChunk, storedBuffer, storedAt, identity, was.address, was.parsed !== undefined ? was.parsed.name : was.priorName);
/** The same octets under another header or identity: every read made so far still holds. */
function sameReads(n: Shared, was: AdvertisedData): Shared {
  n.parsed = was.parsed;
  n.data = was.data;
  n.scanResponse = was.scanResponse;
  return n;
}
/**
 * Time and Advertisement declare their fields (`declare`: nothing emitted) and assign them in the
 * constructor. A class field or parameter property is, under ES2022's define semantics, first defined
 * as undefined and then assigned, so V8 gives it a mutable field of any representation: a time or the
 * report bits then lose their number representation and every field its constness
 * (--trace-generalization). Assigned once, they keep both. Legacy reports, one Advertisement each,
 * 1.05-1.14x faster (tools/bench/ab-scan.ts, five runs; an A/A run 0.96-1.03), extended ones unchanged
 * (issue 14).
 */
class Time implements ReportTime {
  declare readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
}
/**
 * What an Advertisement's getters make on first access, out of line (below): each getter is then
 * small enough (V8 inlines a function of up to 27 bytecodes whatever its budget) to be inlined into
 * the application's callback. With the work inline, the getters that read everything (address,
 * addressType, data, scanResponse, parsed fields) came to more bytecode than TurboFan inlines into
 * one function (920), so four of them stayed calls in a callback that reads every field (issue 14).
 */
function addressOf(c: AdvertisedData): string {
  return (c.address = addressString(c.chunk, c.at + H_ADDRESS));
}
function dataOf(c: AdvertisedData): Uint8Array {
  return (c.data = new Uint8Array(c.buffer, c.at + HEADER, dataLengthOf(c.chunk, c.at)));
}
function scanResponseOf(c: AdvertisedData): Uint8Array {
  return (c.scanResponse = new Uint8Array(c.buffer, c.at + HEADER + dataLengthOf(c.chunk, c.at), scanResponseLengthOf(c.chunk, c.at)));
}
/** The extended header's TX power (undefined: absent or 127, not available). */
function headerTxPower(c: AdvertisedData): number | undefined {
  if ((c.chunk[c.at + H_EXT]! & 1) === 0) return undefined;
  const h = (c.chunk[c.at + H_TX]! << 24) >> 24;
  return h !== 127 ? h : undefined;
}
/** The parse of a copy's data followed by its scan response: one run, parsed in place, kept. */
function parseShared(c: AdvertisedData): ParsedAd {
  if (c.parsed !== undefined) return c.parsed;
  const sr = scanResponseLengthOf(c.chunk, c.at);
  const n = dataLengthOf(c.chunk, c.at) + (sr === NO_SCAN_RSP ? 0 : sr);
  const at = c.at + HEADER;
  // Parsed in place in the chunk: no view of the copy just for the parse (issue 14).
  return (c.parsed = n === 0 ? EMPTY_PARSED : parseAdIn(c.chunk, at, at + n, c.priorName, c.buffer));
}

const dataLengthOf = (c: Uint8Array, at: number): number => c[at + H_DATA]! | (c[at + H_DATA + 1]! << 8);
const scanResponseLengthOf = (c: Uint8Array, at: number): number => c[at + H_SCAN_RSP]! | (c[at + H_SCAN_RSP + 1]! << 8);

// An Advertisement's per-report bits: the event type (legacy PDU type or extended Event_Type bits) and flags.
const EVENT_TYPE_MASK = 0xffff;
const CONNECTABLE = 1 << 16;
const SCANNABLE = 1 << 17;
const EXTENDED = 1 << 18;
const TRUNCATED = 1 << 19;
/** RSSI (an i8, Vol 4, Part E, 7.7.65.2) in bits 20-27: the per-report state stays one small integer. */
const RSSI_SHIFT = 20;
const packRssi = (rssi: number): number => (rssi & 0xff) << RSSI_SHIFT;

/**
 * The clock time of a run of reports, shared by their Advertisements: a time passed as a number
 * through the scanner's calls and stored per Advertisement cost a 16-byte heap number per report
 * (a fifth of what a known device's report allocated, issue 14); one of these is made per clock read.
 */
export interface ReportTime { readonly ms: number }

/**
 * One advertisement as the application sees it: immutable, parsed lazily on first access. Per report
 * it holds RSSI, time and the event bits; the rest is the device's shared AdvertisedData.
 */
export class Advertisement {
  /** @internal */
  declare readonly shared: AdvertisedData;
  /** @internal the run's clock time */
  declare readonly time: ReportTime;
  /** @internal event type, flags and RSSI */
  declare readonly bits: number;
  /** @internal */
  constructor(shared: AdvertisedData, time: ReportTime, bits: number) {
    this.shared = shared;
    this.time = time;
    this.bits = bits;
  }

  /** Clock time (ms) the report arrived (read once per HCI event, or once per transport read with the system clock). */
  get timestamp(): number { return this.time.ms; }

  /** RSSI in dBm (127: not available). */
  get rssi(): number { return ((this.bits >>> RSSI_SHIFT) << 24) >> 24; }
  get address(): string {
    const c = this.shared;
    return c.address ?? addressOf(c);
  }
  get addressType(): AddressType {
    const c = this.shared;
    return TYPE_NAMES[c.chunk[c.at]!]!; // H_TYPE is 0: the header's first octet
  }
  /** Advertising data (AD structures). */
  get data(): Uint8Array {
    const c = this.shared;
    return c.data ?? dataOf(c);
  }
  /** Scan response data merged from the device's last SCAN_RSP, if any. */
  get scanResponse(): Uint8Array | undefined {
    const s = this.shared.scanResponse;
    return s !== null ? s : scanResponseOf(this.shared);
  }
  get connectable(): boolean { return (this.bits & CONNECTABLE) !== 0; }
  get scannable(): boolean { return (this.bits & SCANNABLE) !== 0; }
  /** Legacy PDU type or extended event-type bits, as the controller reported them. */
  get eventType(): number { return this.bits & EVENT_TYPE_MASK; }
  get extended(): boolean { return (this.bits & EXTENDED) !== 0; }
  /** Extended data arrived truncated (Data_Status 2). */
  get truncated(): boolean { return (this.bits & TRUNCATED) !== 0; }
  get sid(): number | undefined {
    const c = this.shared;
    return (c.chunk[c.at + H_EXT]! & 2) !== 0 ? c.chunk[c.at + H_SID]! : undefined;
  }
  /**
   * The advertiser's identity when it is a bonded peer: its RPA resolved with the bond's IRK, its
   * identity address itself, or an identity the controller resolved (Vol 3, Part C, 10.7). `address`
   * stays the address on the air (the one to connect to now); undefined for strangers.
   */
  get identity(): PeerIdentity | undefined { return this.shared.identity; }

  /** The parsed AD of advertising data followed by scan response data (the merged view). */
  get parsed(): ParsedAd {
    // Small enough to inline into the getters below: the parse is made once, by parseShared().
    const c = this.shared;
    return c.parsed ?? parseShared(c);
  }

  get name(): string | undefined { return this.parsed.name; }
  get serviceUuids(): readonly Uuid[] { return this.parsed.serviceUuids; }
  get serviceData(): ReadonlyMap<Uuid, Uint8Array> { return this.parsed.serviceData; }
  get manufacturerData(): ReadonlyMap<number, Uint8Array> { return this.parsed.manufacturerData; }
  get txPower(): number | undefined {
    const ad = this.parsed.txPower;
    return ad !== undefined ? ad : headerTxPower(this.shared);
  }
  get flags(): number | undefined { return this.parsed.flags; }
  get appearance(): number | undefined { return this.parsed.appearance; }
  /** The advertiser is a bonded peer (its identity is known). */
  get bonded(): boolean { return this.shared.identity !== undefined; }

  /** A plain object for JSON output (`blewire scan --json`). */
  toJSON(): Record<string, unknown> {
    const sd: Record<string, string> = {};
    for (const [k, v] of this.serviceData) sd[k] = toHex(v);
    const md: Record<string, string> = {};
    for (const [k, v] of this.manufacturerData) md['0x' + k.toString(16).padStart(4, '0')] = toHex(v);
    return {
      address: this.address, addressType: this.addressType,
      ...(this.identity ? { identity: { address: this.identity.address, addressType: this.identity.addressType } } : {}),
      rssi: this.rssi, name: this.name,
      serviceUuids: this.serviceUuids, serviceData: sd, manufacturerData: md, txPower: this.txPower,
      connectable: this.connectable, data: toHex(this.data),
      scanResponse: this.scanResponse ? toHex(this.scanResponse) : undefined, timestamp: this.timestamp,
    };
  }
}

/**
 * b[o, o + n) equals chunk[at, at + length), compared in place, one octet per step. Every report of
 * a known device runs this over its whole data when nothing changed. It is kept this small (53
 * bytecodes) so that TurboFan inlines it into process() within its budget: an eight-octets-per-test
 * version (XORs OR-ed, 279 bytecodes) was faster alone (62 octets 110 -> 75 ns in a micro-benchmark)
 * but stayed a call; in the flow, this loop inlined made extended reports 1.13-1.21x and legacy ones
 * 1.08-1.11x faster (issue 14, tools/bench/ab-scan.ts).
 */
function sameBytes(chunk: Uint8Array, at: number, length: number, b: Uint8Array, o: number, n: number): boolean {
  if (length !== n) return false;
  for (let i = 0; i < n; i++) if (chunk[at + i] !== b[o + i]) return false;
  return true;
}

/** The H_EXT / H_TX / H_SID octets of an extended report's TX power and SID (undefined: absent) as one number. */
const extOf = (txPower: number | undefined, sid: number | undefined): number =>
  (txPower === undefined ? 0 : 1 | ((txPower & 0xff) << 8)) | (sid === undefined ? 0 : 2 | (sid << 16));
const extAt = (c: Uint8Array, at: number): number => {
  const e = c[at + H_EXT]!;
  return ((e & 1) !== 0 ? 1 | (c[at + H_TX]! << 8) : 0) | ((e & 2) !== 0 ? 2 | (c[at + H_SID]! << 16) : 0);
};

/**
 * The devices' copies live in shared chunks (one arena): a Uint8Array of its own costs ~250 bytes of
 * heap per copy (typed array, backing store and array buffer objects), a view ~100; a device's
 * AdvertisedData holds only its chunk and offset. Bounded: a chunk stays alive while any copy in it
 * does, so the worst case is one chunk per AdvertisedData still referenced (the current and last one
 * of each of the registry's devices, a held one, and any the application keeps); the usual case is
 * the octets themselves. Copies longer than ARENA_LARGE (extended advertising, up to 2 × 1650 octets)
 * get their own array.
 */
const ARENA_CHUNK = 4096;
const ARENA_LARGE = 256;
let arena = new Uint8Array(0);
let arenaBuffer = arena.buffer as ArrayBuffer;
let arenaAt = 0;
/** Where the last store() put its copy (module-level, so a copy allocates no result object). */
let storedChunk: Uint8Array = arena;
let storedBuffer = arenaBuffer;
let storedAt = 0;

/** Room for n octets: sets storedChunk / storedAt. */
function reserve(n: number): void {
  if (n > ARENA_LARGE) {
    storedChunk = new Uint8Array(n);
    storedBuffer = storedChunk.buffer as ArrayBuffer;
    storedAt = 0;
    return;
  }
  if (arenaAt + n > arena.length) {
    arena = new Uint8Array(ARENA_CHUNK);
    arenaBuffer = arena.buffer as ArrayBuffer;
    arenaAt = 0;
  }
  storedChunk = arena;
  storedBuffer = arenaBuffer;
  storedAt = arenaAt;
  arenaAt += n;
}

/**
 * The device's own copy (storedChunk at storedAt): the header (address octets p[addressAt, +6), its
 * type index, the extended fields `ext` as extOf packs them), then a[ao, ao + an) as advertising data
 * and b[bo, bo + bn) as scan response data (bn NO_SCAN_RSP: none). Not a view of the report: the
 * transports hand us Buffers, so a view would keep the transport's whole read chunk (or a shared pool
 * slab) alive for as long as the device stays in the registry, and change when the transport reuses
 * its buffer.
 */
function store(p: Uint8Array, addressAt: number, type: number, ext: number,
  a: Uint8Array, ao: number, an: number, b: Uint8Array, bo: number, bn: number): void {
  const sr = bn === NO_SCAN_RSP ? 0 : bn;
  reserve(HEADER + an + sr);
  const c = storedChunk, at = storedAt;
  c[at + H_TYPE] = type;
  for (let i = 0; i < 6; i++) c[at + H_ADDRESS + i] = p[addressAt + i]!;
  c[at + H_EXT] = ext & 3;
  c[at + H_TX] = (ext >> 8) & 0xff;
  c[at + H_SID] = (ext >> 16) & 0xff;
  c[at + H_DATA] = an & 0xff;
  c[at + H_DATA + 1] = an >> 8;
  c[at + H_SCAN_RSP] = bn & 0xff;
  c[at + H_SCAN_RSP + 1] = bn >> 8;
  const d = at + HEADER;
  for (let i = 0; i < an; i++) c[d + i] = a[ao + i]!;
  for (let i = 0; i < sr; i++) c[d + an + i] = b[bo + i]!;
}

/** An own copy of b[o, o + n) as its own array (extended advertising fragments). */
function copyOf(b: Uint8Array, o: number, n: number): Uint8Array {
  const c = new Uint8Array(n);
  for (let i = 0; i < n; i++) c[i] = b[o + i]!;
  return c;
}

const sameIdentity = (a: PeerIdentity | undefined, b: PeerIdentity | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.address === b.address && a.addressType === b.addressType);

export interface ScanOptions extends ScanFilter {
  /** Any of these filters may match (Web Bluetooth's `filters`); top-level filter fields narrow each. */
  filters?: ScanFilter[];
  /** Send scan requests for scan responses (default true). */
  active?: boolean;
  /** Report every advertisement, not only new or changed ones (default false). */
  duplicates?: boolean;
  /** With duplicates off: report again when RSSI moved by at least this many dB. */
  rssiDelta?: number;
  /** Scan interval and window in ms (default 60 / 30; 2.5 ms – 10.24 s, Vol 4, Part E, 7.8.10). */
  interval?: number;
  window?: number;
  /** End the scan after this many ms (alias: duration). */
  timeout?: number;
  duration?: number;
  signal?: AbortSignal;
  /** Per advertisement, instead of (or besides) iterating. */
  onAdvertisement?: (ad: Advertisement) => void;
  /** Advertisements buffered for a slow iterator before the oldest are dropped (default 1024). */
  bufferSize?: number;
}

/**
 * The scanner's per-device state, by registry slot (registry.ts), in arrays that grow with the
 * registry's slots: no object per device beyond its current AdvertisedData.
 */
class DeviceStates {
  slots = 0;
  /** What the device's Advertisements share; replaced whenever any of it changes (undefined: no device). */
  shared: Array<AdvertisedData | undefined> = [];
  /** The bits and time of the device's last reported Advertisement (bits -1: none). */
  lastBits = new Int32Array(0);
  lastTime = new Float64Array(0);
  /** Its AdvertisedData, kept here only while it is not `shared` (a newer one is held): rare, so a Map. */
  lastShared = new Map<number, AdvertisedData>();
  /** Scannable advertisements held for their scan response (Vol 6, Part B, 4.4.3.2): few at a time. */
  held = new Map<number, Advertisement>();
  /** The scanner-wide change number of the device's data (new device or changed data: a new number). */
  version = new Float64Array(0);
  /** The resolver generation the identity in `shared` was resolved at. */
  identityGeneration = new Int32Array(0);

  grow(n: number): void {
    const shared = new Array<AdvertisedData | undefined>(n).fill(undefined);
    for (let i = 0; i < this.slots; i++) shared[i] = this.shared[i];
    this.shared = shared;
    const f64 = (a: Float64Array) => { const b = new Float64Array(n); b.set(a); return b; };
    const i32 = (a: Int32Array) => { const b = new Int32Array(n); b.set(a); return b; };
    this.lastBits = i32(this.lastBits);
    this.lastTime = f64(this.lastTime);
    this.version = f64(this.version);
    this.identityGeneration = i32(this.identityGeneration);
    this.slots = n;
  }

  /** The device left its slot. */
  clear(slot: number): void {
    if (slot >= this.slots) return;
    this.shared[slot] = undefined;
    this.lastShared.delete(slot);
    this.held.delete(slot);
    this.lastBits[slot] = -1;
  }

  /** The device's last reported Advertisement, else the one held for its scan response. */
  advertisement(slot: number): Advertisement | undefined {
    if (slot >= this.slots) return undefined;
    const bits = this.lastBits[slot]!;
    const sh = this.lastShared.get(slot) ?? this.shared[slot];
    if (sh !== undefined && bits >= 0) return new Advertisement(sh, new Time(this.lastTime[slot]!), bits);
    return this.held.get(slot);
  }
}

type SessionEnd = { tag: 'running' } | { tag: 'ended'; error: Error | undefined };

/** One scan: an async iterable of advertisements, with a callback form and stop(). */
export class ScanSession implements AsyncIterable<Advertisement> {
  /** Advertisements dropped because the iterator did not keep up. */
  dropped = 0;
  /**
   * Per registry slot, what this session last reported: the device's change number (0: nothing yet)
   * and RSSI. Sized to the registry's slots, so bounded by its capacity.
   */
  private seenVersion = new Float64Array(0);
  private seenRssi = new Int8Array(0);
  private readonly queue: Advertisement[] = [];
  private waiter: { resolve(r: IteratorResult<Advertisement>): void; reject(e: Error): void } | undefined;
  private endState: SessionEnd = { tag: 'running' };
  /** Copied on change, so a callback that adds or removes one does not disturb the loop. */
  private callbacks: Array<(ad: Advertisement) => void> = [];
  private timer: TimerId | undefined;
  private onAbort: (() => void) | undefined;
  private readonly endWaiters: Array<() => void> = [];
  private iterated = false;
  readonly predicate: FilterPredicate | undefined;

  constructor(private readonly scanner: Scanner, readonly options: ScanOptions) {
    this.predicate = compileFilters(filtersOf(options));
    if (options.onAdvertisement) this.callbacks = [options.onAdvertisement];
    const ms = options.timeout ?? options.duration;
    if (ms !== undefined) this.timer = scanner.clock.setTimeout(() => { this.timer = undefined; this.end(undefined); }, ms);
    const signal = options.signal;
    if (signal) {
      this.onAbort = () => this.end(new AbortError('scan', signal.reason));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  get active(): boolean { return this.options.active ?? true; }
  get running(): boolean { return this.endState.tag === 'running'; }

  /** Call `fn` for each advertisement this session reports. */
  onAdvertisement(fn: (ad: Advertisement) => void): () => void {
    if (!this.callbacks.includes(fn)) this.callbacks = [...this.callbacks, fn];
    return () => {
      const had = this.callbacks.includes(fn);
      this.callbacks = this.callbacks.filter(f => f !== fn);
      return had;
    };
  }

  /** Resolves when the session ended (stop, timeout, abort, error); rejects with the error if any. */
  get done(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const s = this.endState;
        if (s.tag === 'ended') (s.error ? reject(s.error) : resolve());
      };
      if (this.endState.tag === 'ended') check();
      else this.endWaiters.push(check);
    });
  }

  stop(): void {
    this.end(undefined);
  }

  /** Offered one advertisement by the scanner (device state already updated). */
  offer(ad: Advertisement, slot: number, version: number): void {
    if (this.endState.tag !== 'running') return;
    if (this.predicate && !this.predicate(ad)) return;
    if (!this.options.duplicates) {
      if (slot >= this.seenVersion.length) this.growSeen();
      const delta = this.options.rssiDelta;
      if (this.seenVersion[slot] === version && (delta === undefined || Math.abs(this.seenRssi[slot]! - ad.rssi) < delta)) return;
      this.seenVersion[slot] = version;
      this.seenRssi[slot] = ad.rssi;
    }
    const callbacks = this.callbacks;
    for (let i = 0; i < callbacks.length; i++) {
      try {
        callbacks[i]!(ad);
      } catch (e) {
        log.gap('advertisement callback threw: %O', e);
      }
    }
    if (!this.iterated) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: ad, done: false });
      return;
    }
    if (this.queue.length >= (this.options.bufferSize ?? 1024)) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(ad);
  }

  private growSeen(): void {
    const n = this.scanner.registry.allocated;
    const v = new Float64Array(n), r = new Int8Array(n);
    v.set(this.seenVersion);
    r.set(this.seenRssi);
    this.seenVersion = v;
    this.seenRssi = r;
  }

  end(error: Error | undefined): void {
    if (this.endState.tag !== 'running') return;
    this.endState = { tag: 'ended', error };
    if (this.timer !== undefined) this.scanner.clock.clearTimeout(this.timer);
    if (this.onAbort) this.options.signal?.removeEventListener('abort', this.onAbort);
    this.scanner.removeSession(this);
    if (this.waiter && this.queue.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
    for (const fn of this.endWaiters.splice(0)) fn();
  }

  [Symbol.asyncIterator](): AsyncIterator<Advertisement> {
    this.iterated = true;
    return {
      next: () => {
        const ad = this.queue.shift();
        if (ad) return Promise.resolve({ value: ad, done: false });
        const s = this.endState;
        if (s.tag === 'ended') return s.error ? Promise.reject(s.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
      },
      return: () => {
        this.end(undefined);
        this.queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

interface ControllerScan {
  enabled: boolean;
  active: boolean;
  interval: number;
  window: number;
}

export interface ScannerOptions {
  clock: Clock;
  registryCapacity?: number;
  /** Own_Address_Type for scan requests: 0 public, 1 random (default: public). */
  ownAddressType?(): number;
  /** How long to hold a scannable advertisement for its scan response (default 200 ms). */
  scanResponseWaitMs?: number;
  /**
   * The identity of a bonded advertiser (privacy.ts AddressResolver.resolveValue), per report: the
   * address as its 48-bit value (no string work on the hot path) and, for the identity address types
   * 2 and 3 (the controller resolved it) only, as a string ('' otherwise).
   */
  resolve?(bits: number, hciType: number, address: string): PeerIdentity | undefined;
  /**
   * The resolver's generation (AddressResolver.generation), which changes whenever a bond is added
   * or removed. With it, a device's answer is kept on its registry entry and reused while the
   * generation is the same: a report from an advertiser heard before costs the registry's one lookup
   * and no resolver call at all. Without it, resolve() is asked per report.
   */
  resolverGeneration?(): number;
}

// Extended report Event_Type bits (Vol 4, Part E, 7.7.65.13), bound once from the table's field.
const extDataStatus = EXT_ADV_EVENT_TYPE.getter('dataStatus');
const extScanResponse = EXT_ADV_EVENT_TYPE.tester('scanResponse');
const extLegacy = EXT_ADV_EVENT_TYPE.tester('legacy');
const extConnectable = EXT_ADV_EVENT_TYPE.tester('connectable');
const extScannable = EXT_ADV_EVENT_TYPE.tester('scannable');

/**
 * Extended advertising data in fragments (Data_Status 1, Vol 4, Part E, 7.7.65.13) is collected per
 * advertiser, SID and PDU kind: at most MAX_FRAGMENTS_IN_PROGRESS such collections at once (a new one
 * beyond it drops the oldest started), each at most MAX_REASSEMBLED octets (dropped when it grows
 * past). Hostile advertisers can start collections they never complete: 64 × 1650 octets is the most
 * they hold.
 */
export const MAX_FRAGMENTS_IN_PROGRESS = 64;
/** Vol 4, Part E, 7.8.57: a controller holds at most 1650 octets of advertising data for one set. */
export const MAX_REASSEMBLED = 1650;

export class Scanner {
  /**
   * @internal One Advertisement alive for as long as the module: V8 reaches the map of an
   * instance with its three fields only through a weak transition, so a major GC that found no
   * advertisement alive (between two transport reads, or two scans) let the map die, and all the
   * optimised code that embedded it was thrown away ("weak objects": process(), report(), the
   * getters, the application's callback) and compiled again for the next map. Extended bench
   * children saw 17-34 such deoptimisations each; the four with 23-34 ran blewire's extended path at
   * 1.7-2.2x the floor, the six with 17-21 at 1.3-1.6x (issue 14, session 15).
   */
  static readonly keepsAdvertisementMap = ((c: Uint8Array) =>
    new Advertisement(new Shared(c, c.buffer as ArrayBuffer, 0, undefined, undefined, undefined), new Time(Number.NaN), 0))(new Uint8Array(HEADER));
  readonly clock: Clock;
  readonly registry: DeviceRegistry;
  /** Per-device state by registry slot. */
  private readonly devices = new DeviceStates();
  /** The last change number handed out (DeviceStates.version). */
  private changes = 0;
  private readonly sessions = new Set<ScanSession>();
  private readonly listeners = new Set<(ad: Advertisement) => void>();
  /** The same two sets as arrays for the hot path, rebuilt when they change. */
  private sessionList: ScanSession[] = [];
  private listenerList: Array<(ad: Advertisement) => void> = [];
  /**
   * The system clock is read once per synchronous run of reports (reportTime) and kept until the
   * next microtask checkpoint; `timeValid` says whether `time` is of this run.
   */
  private readonly coarseTime: boolean;
  private time: ReportTime = new Time(Number.NaN); // a double from the start; read only once set
  private timeValid = false;
  private readonly timeEnds = (): void => { this.timeValid = false; };
  /** The one view every report is read into (hci/le-events.ts). */
  private readonly view = newAdvertisingReportView();
  private paused = 0;
  /** The scan type last sent to the controller (true: active, scan requests go out). */
  private activeScan = false;
  private actual: ControllerScan = { enabled: false, active: false, interval: 0, window: 0 };
  private reconciling: Promise<void> | undefined;
  private useExtended: boolean | undefined;
  private readonly fragments = new Map<string, Uint8Array[]>();
  /**
   * The copy of a scannable advertisement held for its scan response while nothing else can see it:
   * made for this advertisement (its bytes are its own), the held Advertisement neither reported nor
   * handed out (advertisementOf). When the SCAN_RSP comes and the copy is still the arena's last one
   * (no scanner stored anything since), the merged copy is written over it instead of after it: with
   * active scanning every new device's first copy (header and advertising data, ~40 octets) would
   * otherwise stay in its chunk as long as the chunk lives (issue 14: 0.36 MB with 10,000 advertisers).
   */
  private unseenHeld: AdvertisedData | undefined;
  private sweep: TimerId | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  /** Reports received / dropped as malformed (stats for doctor and tests). */
  reports = 0;
  /** The last error the controller gave a scan command (also ends the sessions). */
  lastError: Error | undefined;

  constructor(readonly host: HciHost, private readonly opts: ScannerOptions) {
    this.clock = opts.clock;
    this.coarseTime = opts.clock === systemClock;
    this.registry = new DeviceRegistry(opts.registryCapacity ?? DEFAULT_REGISTRY_CAPACITY);
    this.registry.onRemove = slot => this.devices.clear(slot);
    this.unsubscribe.push(
      host.onAdvertisingReports((p, subevent, count, at) => this.reportsInPlace(p, subevent, count, at)),
      host.onHardwareError(code => this.failAll(new HardwareError(code, 'scan'))),
      host.onClose(e => this.failAll(e ?? new TransportError('scan: the adapter was closed', 'ECLOSED'))),
    );
  }

  // ------------------------------------------------------------------------------------------------
  // Sessions and controller state

  scan(options: ScanOptions = {}): ScanSession {
    const s = new ScanSession(this, options);
    if (options.signal?.aborted) {
      s.end(new AbortError('scan', options.signal.reason));
      return s;
    }
    this.sessions.add(s);
    this.sessionList = [...this.sessions];
    this.kick();
    return s;
  }

  /** Every processed advertisement (before session filters and duplicate handling). */
  onAdvertisement(fn: (ad: Advertisement) => void): () => void {
    this.listeners.add(fn);
    this.listenerList = [...this.listeners];
    return () => {
      const had = this.listeners.delete(fn);
      this.listenerList = [...this.listeners];
      return had;
    };
  }

  get scanning(): boolean {
    return this.actual.enabled;
  }

  removeSession(s: ScanSession): void {
    if (!this.sessions.delete(s)) return;
    this.sessionList = [...this.sessions];
    this.kick();
  }

  /** Stop scanning for the scheduler (e.g. while initiating); resolves when the controller stopped. */
  async pause(): Promise<void> {
    this.paused++;
    await this.settle();
  }

  /** Undo one pause(); scanning resumes if sessions are still running. */
  resume(): void {
    if (this.paused > 0) this.paused--;
    this.kick();
  }

  /** Resolves once the controller's scan state matches what is wanted. */
  async settle(): Promise<void> {
    this.kick();
    while (this.reconciling) await this.reconciling;
  }

  private wanted(): ControllerScan {
    if (this.paused > 0 || this.sessions.size === 0 || this.host.state !== 'ready') {
      return { enabled: false, active: false, interval: 0, window: 0 };
    }
    let active = false;
    let interval = Infinity;
    let window = 0;
    for (const s of this.sessions) {
      active ||= s.active;
      interval = Math.min(interval, s.options.interval ?? 60);
      window = Math.max(window, s.options.window ?? 30);
    }
    return { enabled: true, active, interval, window: Math.min(window, interval) };
  }

  private kick(): void {
    if (this.reconciling) return;
    this.reconciling = this.reconcile().finally(() => { this.reconciling = undefined; });
  }

  private async reconcile(): Promise<void> {
    for (let guard = 0; guard < 8; guard++) {
      const want = this.wanted();
      const have = this.actual;
      const same = want.enabled === have.enabled &&
        (!want.enabled || (want.active === have.active && want.interval === have.interval && want.window === have.window));
      if (same) return;
      try {
        if (have.enabled) {
          await this.setEnable(false);
          this.actual = { ...have, enabled: false };
          this.flushHeld(true);
          continue;
        }
        if (want.enabled) {
          await this.setParameters(want);
          // Reports can arrive before the enable's Command Complete (btvirt sends them at once).
          this.activeScan = want.active;
          await this.setEnable(true);
          this.actual = want;
        }
      } catch (e) {
        this.lastError = e as Error;
        log.gap('scan command failed: %s', (e as Error).message);
        if (this.host.state !== 'ready') return; // host-level failure ends sessions via its own events
        // The controller refused: end the sessions that asked for it, with the typed error.
        this.failAll(e as Error);
        return;
      }
    }
  }

  private chooseExtended(): boolean {
    if (this.useExtended === undefined) this.useExtended = this.host.info.extendedScanning;
    return this.useExtended;
  }

  private async setParameters(w: ControllerScan): Promise<void> {
    // Interval and window in units of 0.625 ms, 0x0004–0x4000 (Vol 4, Part E, 7.8.10).
    const units = (ms: number) => Math.min(0x4000, Math.max(4, Math.round(ms / 0.625)));
    const own = this.opts.ownAddressType?.() ?? 0;
    if (this.chooseExtended()) {
      try {
        await this.host.command({ kind: 'leSetExtendedScanParameters', ownAddressType: own, scanningFilterPolicy: 0,
          scanningPhys: [{ phy: 1, scanType: w.active ? 1 : 0, scanInterval: units(w.interval), scanWindow: units(w.window) }] });
        return;
      } catch (e) {
        if (!isUnknownCommand(e)) throw e;
        this.host.info.markUnsupported('leSetExtendedScanParameters');
        this.useExtended = false;
      }
    }
    await this.host.command({ kind: 'leSetScanParameters', leScanType: w.active ? 1 : 0, leScanInterval: units(w.interval),
      leScanWindow: units(w.window), ownAddressType: own, scanningFilterPolicy: 0 });
  }

  private async setEnable(enable: boolean): Promise<void> {
    // Controller duplicate filtering stays off: the host handles duplicates and keeps RSSI fresh.
    if (this.useExtended) {
      await this.host.command({ kind: 'leSetExtendedScanEnable', enable: enable ? 1 : 0, filterDuplicates: 0, duration: 0, period: 0 });
    } else {
      await this.host.command({ kind: 'leSetScanEnable', enable: enable ? 1 : 0, filterDuplicates: 0 });
    }
  }

  private failAll(error: Error): void {
    for (const s of [...this.sessions]) s.end(error);
    this.actual = { enabled: false, active: false, interval: 0, window: 0 };
    this.fragments.clear();
    this.flushHeld(true);
  }

  /** Stop everything and detach from the host. */
  dispose(): void {
    for (const s of [...this.sessions]) s.end(undefined);
    for (const u of this.unsubscribe) u();
    if (this.sweep !== undefined) this.clock.clearTimeout(this.sweep);
  }

  // ------------------------------------------------------------------------------------------------
  // Reports (hot path)

  /**
   * One LE Advertising Report or LE Extended Advertising Report event, read in place (hci/host.ts
   * checked that its `count` reports fill it exactly): one clock read per event, the reports read
   * into one reused view through the table's in-place readers.
   */
  private reportsInPlace(p: Uint8Array, subevent: number, count: number, at: number): void {
    const time = this.reportTime();
    const v = this.view;
    const legacy = subevent === SUB_ADV_REPORT;
    const read = legacy ? advertisingReportInPlace().read : extendedAdvertisingReportInPlace().read;
    let o = at;
    for (let k = 0; k < count; k++) {
      o = read(p, o, v as unknown as Record<string, number>);
      this.reports++;
      if (legacy) this.legacyReport(p, v, time);
      else this.extendedReport(p, v, time);
    }
  }

  /**
   * The arrival time of a report event. With the system clock: read at the first event of a
   * synchronous run and kept until the next microtask checkpoint. A transport hands over what one
   * read of its socket (or pipe, or serial port) brought in one synchronous run, and Node drains the
   * microtasks after each such callback, so every event of one read gets the time of that read:
   * one clock read per transport read instead of per event. Any other clock (FakeClock in tests and
   * the simulator, whose time moves within a synchronous run) is read per event.
   */
  private reportTime(): ReportTime {
    if (!this.coarseTime) return new Time(this.clock.now());
    if (this.timeValid) return this.time;
    this.timeValid = true;
    queueMicrotask(this.timeEnds);
    return (this.time = new Time(this.clock.now()));
  }

  private legacyReport(p: Uint8Array, r: AdvertisingReportView, time: ReportTime): void {
    // The legacy Event_Type (7.7.65.2) read through the extended report's bits (Table 7.1).
    const t = r.eventType;
    const bits = legacyAdvEventBits(t);
    this.process(p, r.addressAt, r.addressType, r.rssi, p, r.dataAt, r.dataLength, extScanResponse(bits), extConnectable(bits),
      extScannable(bits), t, false, undefined, undefined, false, time);
  }

  private extendedReport(p: Uint8Array, r: AdvertisingReportView, time: ReportTime): void {
    const t = r.eventType;
    const status = extDataStatus(t);
    const isScanRsp = extScanResponse(t);
    let data: Uint8Array = p;
    let dataAt = r.dataAt;
    let dataLength = r.dataLength;
    if (this.fragments.size > 0 || status === ExtAdvDataStatus.Incomplete) {
      // Data_Status 1: more fragments follow (Vol 4, Part E, 7.7.65.13); collect per advertiser, SID and PDU kind.
      const key = r.addressType + '/' + addressString(p, r.addressAt) + '/' + r.advertisingSid + (isScanRsp ? '/r' : '/a');
      let parts = this.fragments.get(key);
      const fragment = copyOf(p, r.dataAt, r.dataLength);
      if (status === ExtAdvDataStatus.Incomplete) {
        if (!parts) {
          if (this.fragments.size >= MAX_FRAGMENTS_IN_PROGRESS) this.fragments.delete(this.fragments.keys().next().value as string);
          this.fragments.set(key, (parts = []));
        }
        parts.push(fragment);
        let n = 0;
        for (const x of parts) n += x.length;
        if (n > MAX_REASSEMBLED) this.fragments.delete(key);
        return;
      }
      if (parts) {
        this.fragments.delete(key);
        parts.push(fragment);
        data = concat(parts);
        dataAt = 0;
        dataLength = data.length;
      }
    }
    if (extLegacy(t)) {
      // Legacy PDU reported through the extended event (bit 4): the other bits say which one.
      this.process(p, r.addressAt, r.addressType, r.rssi, data, dataAt, dataLength, isScanRsp, extConnectable(t), extScannable(t), t,
        true, r.txPower, r.advertisingSid, false, time);
      return;
    }
    this.process(p, r.addressAt, r.addressType, r.rssi, data, dataAt, dataLength, isScanRsp, extConnectable(t), extScannable(t), t, true,
      r.txPower, r.advertisingSid === 0xff ? undefined : r.advertisingSid, status === ExtAdvDataStatus.Truncated, time);
  }

  private process(
    p: Uint8Array, addressAt: number, hciType: number, rssi: number, d: Uint8Array, dataAt: number, dataLength: number,
    isScanRsp: boolean, connectable: boolean, scannable: boolean, eventType: number, extended: boolean,
    txPower: number | undefined, sid: number | undefined, truncated: boolean, time: ReportTime,
  ): void {
    const type = typeIndexOfHci(hciType);
    const registry = this.registry;
    const slot = registry.touchAt(p, addressAt, type, rssi, time.ms);
    const dev = this.devices;
    if (slot >= dev.slots) dev.grow(registry.allocated);
    let sh = dev.shared[slot];
    let identity: PeerIdentity | undefined;
    const resolve = this.opts.resolve;
    if (resolve !== undefined) {
      const generation = this.opts.resolverGeneration?.() ?? -1;
      if (sh !== undefined && generation >= 0 && dev.identityGeneration[slot] === generation) identity = sh.identity;
      else {
        // The string only for the identity types (2, 3), the one case the resolver names it.
        identity = resolve(registry.bitsOf(slot), hciType, hciType === 2 || hciType === 3 ? registry.addressOf(slot) : '');
        dev.identityGeneration[slot] = generation;
      }
    }
    const ext = extOf(txPower, sid);
    /** This call made new bytes for the device (new device, new data or new extended header fields). */
    let stored = true;
    if (sh === undefined) {
      // A new device (or a new one in an evicted device's slot): its first copy.
      if (isScanRsp) store(p, addressAt, type, ext, EMPTY, 0, 0, d, dataAt, dataLength);
      else store(p, addressAt, type, ext, d, dataAt, dataLength, EMPTY, 0, NO_SCAN_RSP);
      sh = new Shared(storedChunk, storedBuffer, storedAt, identity, undefined, undefined);
      dev.version[slot] = ++this.changes;
    } else {
      // The data compared in place with the device's copy; a new copy is made only when it changed.
      const c = sh.chunk, at = sh.at;
      const dataLen = dataLengthOf(c, at), srLen = scanResponseLengthOf(c, at);
      const srAt = at + HEADER + dataLen;
      if (isScanRsp ? srLen === NO_SCAN_RSP || !sameBytes(c, srAt, srLen, d, dataAt, dataLength)
        : !sameBytes(c, at + HEADER, dataLen, d, dataAt, dataLength)) {
        if (isScanRsp && sh === this.unseenHeld) {
          // The first scan response of a held advertisement nobody saw: its copy is dropped with it,
          // so when it is still the arena's last one the merged copy takes its place.
          if (c === arena && at + HEADER + dataLen === arenaAt) arenaAt = at;
          this.unseenHeld = undefined;
        }
        if (isScanRsp) store(p, addressAt, c[at + H_TYPE]!, ext, c, at + HEADER, dataLen, d, dataAt, dataLength);
        else store(p, addressAt, c[at + H_TYPE]!, ext, d, dataAt, dataLength, c, srAt, srLen);
        sh = changedFrom(sh, identity);
        dev.version[slot] = ++this.changes;
      } else if (extAt(c, at) !== ext) {
        // Same data, other extended header fields: a copy with the new header (rare).
        store(p, addressAt, c[at + H_TYPE]!, ext, c, at + HEADER, dataLen, c, srAt, srLen);
        sh = sameReads(new Shared(storedChunk, storedBuffer, storedAt, identity, sh.address, sh.priorName), sh);
      } else {
        stored = false;
        if (!sameIdentity(sh.identity, identity)) sh = sameReads(new Shared(c, sh.buffer, at, identity, sh.address, sh.priorName), sh);
      }
    }
    const was = dev.shared[slot];
    dev.shared[slot] = sh;
    const flags = (extended ? EXTENDED : 0) | (truncated ? TRUNCATED : 0) | packRssi(rssi);
    let ad: Advertisement;
    const heldMap = dev.held;
    const held = heldMap.size === 0 ? undefined : heldMap.get(slot);
    if (isScanRsp) {
      const baseBits = held !== undefined ? held.bits : dev.lastBits[slot]!;
      if (held !== undefined) heldMap.delete(slot);
      const kept = baseBits >= 0 ? baseBits & (EVENT_TYPE_MASK | CONNECTABLE | SCANNABLE)
        : (eventType & EVENT_TYPE_MASK) | (connectable ? CONNECTABLE : 0) | SCANNABLE;
      ad = new Advertisement(sh, time, kept | flags);
    } else {
      ad = new Advertisement(sh, time,
        (eventType & EVENT_TYPE_MASK) | (connectable ? CONNECTABLE : 0) | (scannable ? SCANNABLE : 0) | flags);
      if (scannable && scanResponseLengthOf(sh.chunk, sh.at) === NO_SCAN_RSP && this.activeScan) {
        // Hold for the SCAN_RSP that an active scan should bring (Vol 6, Part B, 4.4.3.2), bounded in time.
        if (held !== undefined) this.report(held, slot); // a second ADV came first: report the first one as is
        // The last reported one keeps its own data while this one waits.
        else if (was !== undefined && was !== sh && dev.lastBits[slot]! >= 0 && !dev.lastShared.has(slot)) dev.lastShared.set(slot, was);
        heldMap.set(slot, ad);
        this.unseenHeld = stored ? sh : undefined;
        this.armSweep();
        return;
      }
      if (held !== undefined) heldMap.delete(slot);
    }
    this.report(ad, slot);
  }

  /** The device's last Advertisement becomes `ad`, and it goes out. */
  private report(ad: Advertisement, slot: number): void {
    if (ad.shared === this.unseenHeld) this.unseenHeld = undefined;
    const dev = this.devices;
    if (ad.shared !== dev.shared[slot]) dev.lastShared.set(slot, ad.shared);
    else if (dev.lastShared.size > 0) dev.lastShared.delete(slot);
    dev.lastBits[slot] = ad.bits;
    dev.lastTime[slot] = ad.timestamp;
    this.emit(ad, slot, dev.version[slot]!);
  }

  /** The device's last reported Advertisement, else the one held for its scan response (adapter.devices()). */
  advertisementOf(slot: number): Advertisement | undefined {
    this.unseenHeld = undefined; // a held one handed out is seen
    return this.registry.has(slot) ? this.devices.advertisement(slot) : undefined;
  }

  private emit(ad: Advertisement, slot: number, version: number): void {
    // One pass over arrays rebuilt when a listener or session comes or goes (no iterator per report).
    const listeners = this.listenerList;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(ad);
      } catch (e) {
        log.gap('advertisement listener threw: %O', e);
      }
    }
    const sessions = this.sessionList;
    for (let i = 0; i < sessions.length; i++) sessions[i]!.offer(ad, slot, version);
  }

  private armSweep(): void {
    if (this.sweep !== undefined) return;
    const wait = this.opts.scanResponseWaitMs ?? 200;
    this.sweep = this.clock.setTimeout(() => {
      this.sweep = undefined;
      this.flushHeld(false);
      if (this.devices.held.size > 0) this.armSweep();
    }, wait);
  }

  /** Report held advertisements whose scan response did not come in time (or all, when `all`), oldest first. */
  private flushHeld(all: boolean): void {
    const held = this.devices.held;
    if (held.size === 0) return;
    const limit = this.clock.now() - (this.opts.scanResponseWaitMs ?? 200);
    const due: number[] = [];
    for (const [slot, ad] of held) if (all || ad.timestamp <= limit) due.push(slot);
    for (const slot of due) {
      const ad = held.get(slot);
      // A listener called for an earlier one may have stopped the scan and cleared the device.
      if (ad === undefined) continue;
      held.delete(slot);
      this.report(ad, slot);
    }
  }
}

