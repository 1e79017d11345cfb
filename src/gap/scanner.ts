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
import type { Clock, TimerId } from '../clock.js';
import { concat, equalBytes, toHex } from '../bytes/hex.js';
import { AbortError, HardwareError, TransportError } from '../errors.js';
import { log } from '../log.js';
import type { Uuid } from '../codec/uuid.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import type { LeAdvertisingReport, LeExtendedAdvertisingReport } from '../hci/le-events.js';
import { EXT_ADV_EVENT_TYPE, ExtAdvDataStatus, legacyAdvEventBits } from '../hci/bit-fields.js';
import { parseAdvertisingData, type ParsedAd } from './ad.js';
import { compileFilters, filtersOf, type FilterPredicate, type ScanFilter } from './filters.js';
import type { PeerIdentity } from './privacy.js';
import { DeviceRegistry } from './registry.js';

export type AddressType = 'public' | 'random' | 'anonymous';

/** HCI address type (reports, 7.7.65.2 / 7.7.65.13) → API address type; identity types are resolved ones. */
export function addressTypeName(t: number): AddressType {
  return t === 0 || t === 2 ? 'public' : t === 0xff ? 'anonymous' : 'random';
}

const EMPTY = new Uint8Array(0);
const EMPTY_PARSED: ParsedAd = parseAdvertisingData(EMPTY);

/**
 * The parse of one (advertising data, scan response) pair, shared by every Advertisement of a device
 * until its data changes: a device that repeats itself is parsed once, not once per report.
 */
export interface ParseCache {
  parsed: ParsedAd | undefined;
}

/** One advertisement as the application sees it: immutable, parsed lazily on first access. */
export class Advertisement {
  private cache: ParseCache;

  constructor(
    readonly address: string,
    readonly addressType: AddressType,
    readonly rssi: number,
    /** Advertising data (AD structures), a view into the report. */
    readonly data: Uint8Array,
    /** Scan response data merged from the device's last SCAN_RSP, if any. */
    readonly scanResponse: Uint8Array | undefined,
    readonly connectable: boolean,
    readonly scannable: boolean,
    /** Legacy PDU type or extended event-type bits, as the controller reported them. */
    readonly eventType: number,
    readonly extended: boolean,
    /** Clock time (ms) the report arrived. */
    readonly timestamp: number,
    /** TX power from the extended report header (127 = not available), else undefined. */
    private readonly headerTxPower: number | undefined,
    readonly sid: number | undefined,
    /** Extended data arrived truncated (Data_Status 2). */
    readonly truncated = false,
    cache?: ParseCache,
    /**
     * The advertiser's identity when it is a bonded peer: its RPA resolved with the bond's IRK, its
     * identity address itself, or an identity the controller resolved (Vol 3, Part C, 10.7). `address`
     * stays the address on the air (the one to connect to now); undefined for strangers.
     */
    readonly identity?: PeerIdentity,
  ) {
    this.cache = cache ?? { parsed: undefined };
  }

  /** The parsed AD of advertising data followed by scan response data (the merged view). */
  get parsed(): ParsedAd {
    const c = this.cache;
    if (c.parsed) return c.parsed;
    const sr = this.scanResponse;
    let bytes = this.data;
    if (sr && sr.length > 0) {
      bytes = new Uint8Array(this.data.length + sr.length);
      bytes.set(this.data, 0);
      bytes.set(sr, this.data.length);
    }
    return (c.parsed = bytes.length === 0 ? EMPTY_PARSED : parseAdvertisingData(bytes));
  }

  get name(): string | undefined { return this.parsed.name; }
  get serviceUuids(): readonly Uuid[] { return this.parsed.serviceUuids; }
  get serviceData(): ReadonlyMap<Uuid, Uint8Array> { return this.parsed.serviceData; }
  get manufacturerData(): ReadonlyMap<number, Uint8Array> { return this.parsed.manufacturerData; }
  get txPower(): number | undefined {
    const ad = this.parsed.txPower;
    if (ad !== undefined) return ad;
    return this.headerTxPower !== undefined && this.headerTxPower !== 127 ? this.headerTxPower : undefined;
  }
  get flags(): number | undefined { return this.parsed.flags; }
  get appearance(): number | undefined { return this.parsed.appearance; }
  /** The advertiser is a bonded peer (its identity is known). */
  get bonded(): boolean { return this.identity !== undefined; }

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

interface DeviceState {
  data: Uint8Array;
  scanResponse: Uint8Array | undefined;
  /** Parse of (data, scanResponse); replaced whenever either changes. */
  cache: ParseCache;
  /** Bumped whenever data or scan response changes. */
  version: number;
  last: Advertisement | undefined;
  held: Advertisement | undefined;
  heldAt: number;
}

type SessionEnd = { tag: 'running' } | { tag: 'ended'; error: Error | undefined };

/** One scan: an async iterable of advertisements, with a callback form and stop(). */
export class ScanSession implements AsyncIterable<Advertisement> {
  /** Advertisements dropped because the iterator did not keep up. */
  dropped = 0;
  private readonly seen = new Map<string, { version: number; rssi: number }>();
  private readonly queue: Advertisement[] = [];
  private waiter: { resolve(r: IteratorResult<Advertisement>): void; reject(e: Error): void } | undefined;
  private endState: SessionEnd = { tag: 'running' };
  private readonly callbacks = new Set<(ad: Advertisement) => void>();
  private timer: TimerId | undefined;
  private onAbort: (() => void) | undefined;
  private readonly endWaiters: Array<() => void> = [];
  private iterated = false;
  readonly predicate: FilterPredicate | undefined;

  constructor(private readonly scanner: Scanner, readonly options: ScanOptions) {
    this.predicate = compileFilters(filtersOf(options));
    if (options.onAdvertisement) this.callbacks.add(options.onAdvertisement);
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
    this.callbacks.add(fn);
    return () => this.callbacks.delete(fn);
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
  offer(ad: Advertisement, key: string, version: number): void {
    if (this.endState.tag !== 'running') return;
    if (this.predicate && !this.predicate(ad)) return;
    if (!this.options.duplicates) {
      const prev = this.seen.get(key);
      const delta = this.options.rssiDelta;
      if (prev && prev.version === version && (delta === undefined || Math.abs(prev.rssi - ad.rssi) < delta)) return;
      if (prev) this.seen.delete(key);
      else if (this.seen.size >= this.scanner.registry.capacity) this.seen.delete(this.seen.keys().next().value as string);
      this.seen.set(key, { version, rssi: ad.rssi });
    }
    for (const fn of this.callbacks) {
      try {
        fn(ad);
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
  /** The identity of a bonded advertiser (privacy.ts AddressResolver.resolve), per report. */
  resolve?(address: string, hciType: number): PeerIdentity | undefined;
}

// Extended report Event_Type bits (Vol 4, Part E, 7.7.65.13), bound once from the table's field.
const extDataStatus = EXT_ADV_EVENT_TYPE.getter('dataStatus');
const extScanResponse = EXT_ADV_EVENT_TYPE.tester('scanResponse');
const extLegacy = EXT_ADV_EVENT_TYPE.tester('legacy');
const extConnectable = EXT_ADV_EVENT_TYPE.tester('connectable');
const extScannable = EXT_ADV_EVENT_TYPE.tester('scannable');

const MAX_FRAGMENTS_IN_PROGRESS = 64;
const MAX_REASSEMBLED = 1650; // Vol 4, Part E, 7.8.57: at most 1650 octets of advertising data

export class Scanner {
  readonly clock: Clock;
  readonly registry: DeviceRegistry<DeviceState>;
  private readonly sessions = new Set<ScanSession>();
  private readonly listeners = new Set<(ad: Advertisement) => void>();
  private paused = 0;
  /** The scan type last sent to the controller (true: active, scan requests go out). */
  private activeScan = false;
  private actual: ControllerScan = { enabled: false, active: false, interval: 0, window: 0 };
  private reconciling: Promise<void> | undefined;
  private useExtended: boolean | undefined;
  private readonly fragments = new Map<string, Uint8Array[]>();
  private held = 0;
  private sweep: TimerId | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  /** Reports received / dropped as malformed (stats for doctor and tests). */
  reports = 0;
  /** The last error the controller gave a scan command (also ends the sessions). */
  lastError: Error | undefined;

  constructor(readonly host: HciHost, private readonly opts: ScannerOptions) {
    this.clock = opts.clock;
    this.registry = new DeviceRegistry<DeviceState>(opts.registryCapacity ?? 4096);
    this.unsubscribe.push(
      host.on('leAdvertisingReport', e => { for (const r of e.reports) this.legacyReport(r); }),
      host.on('leExtendedAdvertisingReport', e => { for (const r of e.reports) this.extendedReport(r); }),
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
    this.kick();
    return s;
  }

  /** Every processed advertisement (before session filters and duplicate handling). */
  onAdvertisement(fn: (ad: Advertisement) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get scanning(): boolean {
    return this.actual.enabled;
  }

  removeSession(s: ScanSession): void {
    if (this.sessions.delete(s)) this.kick();
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

  private legacyReport(r: LeAdvertisingReport): void {
    this.reports++;
    // The legacy Event_Type (7.7.65.2) read through the extended report's bits (Table 7.1).
    const t = r.eventType;
    const bits = legacyAdvEventBits(t);
    this.process(r.address, r.addressType, r.rssi, r.data, extScanResponse(bits), extConnectable(bits), extScannable(bits), t,
      false, undefined, undefined, false);
  }

  private extendedReport(r: LeExtendedAdvertisingReport): void {
    this.reports++;
    const t = r.eventType;
    const status = extDataStatus(t);
    const isScanRsp = extScanResponse(t);
    let data = r.data;
    if (status === ExtAdvDataStatus.Incomplete || (status !== ExtAdvDataStatus.Complete && this.fragments.size > 0)) {
      // Data_Status 1: more fragments follow (Vol 4, Part E, 7.7.65.13); collect per advertiser, SID and PDU kind.
      const key = r.addressType + '/' + r.address + '/' + r.advertisingSid + (isScanRsp ? '/r' : '/a');
      let parts = this.fragments.get(key);
      if (status === ExtAdvDataStatus.Incomplete) {
        if (!parts) {
          if (this.fragments.size >= MAX_FRAGMENTS_IN_PROGRESS) this.fragments.delete(this.fragments.keys().next().value as string);
          this.fragments.set(key, (parts = []));
        }
        parts.push(r.data);
        let n = 0;
        for (const p of parts) n += p.length;
        if (n > MAX_REASSEMBLED) this.fragments.delete(key);
        return;
      }
      if (parts) {
        this.fragments.delete(key);
        parts.push(r.data);
        data = concat(parts);
      }
    } else if (status === ExtAdvDataStatus.Complete && this.fragments.size > 0) {
      const key = r.addressType + '/' + r.address + '/' + r.advertisingSid + (isScanRsp ? '/r' : '/a');
      const parts = this.fragments.get(key);
      if (parts) {
        this.fragments.delete(key);
        parts.push(r.data);
        data = concat(parts);
      }
    }
    if (extLegacy(t)) {
      // Legacy PDU reported through the extended event (bit 4): the other bits say which one.
      this.process(r.address, r.addressType, r.rssi, data, isScanRsp, extConnectable(t), extScannable(t), t, true,
        r.txPower, r.advertisingSid, false);
      return;
    }
    this.process(r.address, r.addressType, r.rssi, data, isScanRsp, extConnectable(t), extScannable(t), t, true,
      r.txPower, r.advertisingSid === 0xff ? undefined : r.advertisingSid, status === ExtAdvDataStatus.Truncated);
  }

  private process(
    address: string, hciType: number, rssi: number, data: Uint8Array, isScanRsp: boolean, connectable: boolean,
    scannable: boolean, eventType: number, extended: boolean, txPower: number | undefined, sid: number | undefined,
    truncated: boolean,
  ): void {
    const type = addressTypeName(hciType);
    const identity = this.opts.resolve?.(address, hciType);
    const now = this.clock.now();
    const entry = this.registry.touch(address, type, rssi, now);
    const key = entry.key;
    let st = entry.advertisement;
    if (!st) {
      st = { data: EMPTY, scanResponse: undefined, cache: { parsed: undefined }, version: 0, last: undefined, held: undefined, heldAt: 0 };
      entry.advertisement = st;
    }
    let ad: Advertisement;
    if (isScanRsp) {
      if (!st.scanResponse || !equalBytes(st.scanResponse, data)) {
        st.scanResponse = data;
        st.version++;
        st.cache = { parsed: undefined };
      }
      const base = st.held ?? st.last;
      if (st.held) {
        st.held = undefined;
        this.held--;
      }
      ad = new Advertisement(address, type, rssi, st.data, st.scanResponse, base?.connectable ?? connectable,
        base?.scannable ?? true, base?.eventType ?? eventType, extended, now, txPower, sid, truncated, st.cache, identity);
    } else {
      if (!equalBytes(st.data, data)) {
        st.data = data;
        st.version++;
        st.cache = { parsed: undefined };
      }
      // st.data equals data; using the stored array keeps the shared parse consistent with the bytes.
      ad = new Advertisement(address, type, rssi, st.data, st.scanResponse, connectable, scannable, eventType, extended, now,
        txPower, sid, truncated, st.cache, identity);
      if (scannable && st.scanResponse === undefined && this.activeScan) {
        // Hold for the SCAN_RSP that an active scan should bring (Vol 6, Part B, 4.4.3.2), bounded in time.
        if (st.held) this.emit(st.held, key, st.version); // a second ADV came first: report the first one as is
        else this.held++;
        st.held = ad;
        st.heldAt = now;
        this.armSweep();
        return;
      }
      if (st.held) {
        st.held = undefined;
        this.held--;
      }
    }
    st.last = ad;
    this.emit(ad, key, st.version);
  }

  private emit(ad: Advertisement, key: string, version: number): void {
    for (const fn of this.listeners) {
      try {
        fn(ad);
      } catch (e) {
        log.gap('advertisement listener threw: %O', e);
      }
    }
    for (const s of this.sessions) s.offer(ad, key, version);
  }

  private armSweep(): void {
    if (this.sweep !== undefined) return;
    const wait = this.opts.scanResponseWaitMs ?? 200;
    this.sweep = this.clock.setTimeout(() => {
      this.sweep = undefined;
      this.flushHeld(false);
      if (this.held > 0) this.armSweep();
    }, wait);
  }

  /** Report held advertisements whose scan response did not come in time (or all, when `all`). */
  private flushHeld(all: boolean): void {
    if (this.held === 0) return;
    const limit = this.clock.now() - (this.opts.scanResponseWaitMs ?? 200);
    const due: Array<[string, DeviceState]> = [];
    let still = 0;
    for (const e of this.registry.values()) {
      const st = e.advertisement;
      if (!st?.held) continue;
      if (all || st.heldAt <= limit) due.push([e.key, st]);
      else still++;
    }
    // Recount: devices evicted from the registry took their held advertisement with them.
    this.held = still;
    for (const [key, st] of due) {
      const ad = st.held!;
      st.held = undefined;
      st.last = ad;
      this.emit(ad, key, st.version);
    }
  }
}

