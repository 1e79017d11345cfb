/**
 * GattClient: the GATT client of one LE link (Core Vol 3, Part G), over the link's ATT fixed channel.
 *
 * What drives it: user calls (discovery, reads, writes, subscriptions) and the bearer's events
 * (values from the peer, MTU, close). It owns, for this connection only:
 * - nothing of the bearer when it runs on a link (`LeLink.attachGatt`): the link owns the bearer,
 *   our server session on it and the 30 s timeout's disconnect; on a bare channel it builds its own
 *   bearer (one request at a time, 30 s timeout; a timeout calls `onTimeout`),
 * - the discovered tree (from full discovery, the validated cache, or targeted discovery),
 * - the subscription registry: value handle → sinks (callbacks and iterators), CCCD writes
 *   reference-counted per characteristic,
 * - the Service Changed / robust-caching state.
 * Nothing here outlives the link: on disconnect every pending operation rejects with
 * DisconnectedError, every subscription ends with it, and later calls reject at once. A new
 * connection gets a new GattClient with an empty registry, so callbacks can never pile up across
 * reconnects (Bleak's duplicate-callback bug).
 *
 * Caching (Vol 3, Part G, 2.5.2): with a cache and a peerId, services() first reads the Database
 * Hash by UUID (one round trip); when the stored tree may be used (`cacheRule`) → the cached tree,
 * no discovery. Else a full discovery, stored when a later connection could use it. Service Changed
 * indications rediscover the affected range; Database Out Of Sync (robust caching) re-validates the
 * hash.
 *
 * Link state is held in explicit state machines, never in a caller's promise (issue 8):
 * - `mtu`: idle → running → done | refused (an Error Response: ATT_MTU stays 23 and everything
 *   else works); a failure (malformed response) or a caller's deadline returns it to idle or leaves
 *   the request running, and a late response is applied by the bearer.
 * - `discovery`: a SharedWork (link-state.ts): each caller waits under its own deadline; only the
 *   installed tree is kept; a run nobody waits for any more is aborted.
 * - `setup` (robust caching, Service Changed CCCD): pending → running → done | failed; failed is
 *   tried again at the next services().
 * - `cccd`: per characteristic { confirmed, wanted, writing }: the last intent wins on the wire; a
 *   slot lives while it is non-zero or being written.
 * - `sc` (Service Changed / out of sync): pending ranges merged into one hull, at most one
 *   rediscovery running and starts at least REDISCOVERY_MIN_INTERVAL_MS apart (the storm bound).
 */
import { AttBearer, type AttServerRole, type AttValueEvent } from '../att/bearer.js';
import { ATT_TRANSACTION_TIMEOUT_MS, AttErrorCode } from '../att/constants.js';
import type { Clock, TimerId } from '../clock.js';
import { describeUuid, uuidOf, type Uuid } from '../codec/uuid.js';
import { ArgumentError, AttError, DisconnectedError, InvalidStateError, type TimeoutError } from '../errors.js';
import type { L2capChannel } from '../l2cap/channel.js';
import { equalBytes } from '../bytes/hex.js';
import { log } from '../log.js';
import type { GattCache } from './cache.js';
import { Cccd, ClientFeature, GattType } from './constants.js';
import { openAttBearer } from './local-db.js';
import {
  GattCharacteristic, GattService, NotFoundError, type GattOps, type SubscribeOptions, type Subscription,
} from './model.js';
import { SharedWork } from './link-state.js';
import { cccdValue, decodeGattValue, encodeGattValue, type GattValue } from './values.js';
import { raceAbort, runOp, within as withinScope, type OpOptions } from '../operation.js';
import * as proc from './procedures.js';
import type { ServiceData } from './procedures.js';
import type { GattServerLink } from './server-db.js';

export interface GattClientOptions {
  clock: Clock;
  /** Cache key: the peer's identity address (e.g. "C0:11:22:33:44:55/random"). Required for caching. */
  peerId?: string;
  cache?: GattCache;
  /** Our ATT receive MTU offered in Exchange MTU, default 517. */
  mtu?: number;
  /** Write Client Supported Features (robust caching) after discovery, default true (Vol 3, Part G, 2.5.2.1). */
  robustCaching?: boolean;
  /** Enable Service Changed indications after discovery, default true (Vol 3, Part G, 7.1). */
  serviceChanged?: boolean;
  /** Our own GAP/GATT server role on this bearer; default: localGattDatabase(); false: Request Not Supported. */
  server?: AttServerRole | false;
  /** Called when an ATT transaction timed out: the link must be disconnected (Vol 3, Part F, 3.3.3). */
  onTimeout?: (error: TimeoutError) => void;
  /**
   * Use a stored tree without any check (no Database Hash read): fast, and wrong if the device's
   * database changed since (Bleak's dangerous_use_bleak_cache). Only for devices you control.
   */
  trustCache?: boolean;
  /**
   * Whether we are bonded with this peer (SMP will set it; a function is asked at each use). A
   * bonded peer must indicate Service Changed when its database changed (Vol 3, Part G, 2.5.2,
   * 7.1), so its tree may be cached without a Database Hash (see `cacheRule`).
   */
  bonded?: boolean | (() => boolean);
}

/** Why a stored tree was used, or why not (`cacheRule`). */
export type CacheDecision =
  | { use: true; why: 'hash-equal' | 'bonded-service-changed' | 'trusted' }
  | { use: false; why: 'no-entry' | 'hash-differs' | 'no-hash-not-bonded' | 'no-service-changed' | 'hash-appeared' };

/**
 * When a stored tree may be used instead of discovery (Vol 3, Part G, 2.5.2), made explicit:
 * - `trusted`: the user said so (`trustCache`), no check at all;
 * - `hash-equal`: the peer has a Database Hash and it equals the stored one;
 * - `bonded-service-changed`: the peer has no Database Hash, we are bonded, and the stored tree has
 *   a Service Changed characteristic: a bonded server keeps its clients' caches in sync by
 *   indicating Service Changed, across reconnections too (2.5.2; BlueZ trusts such caches the same
 *   way). The stored entry must have been saved without a hash as well.
 * Otherwise full discovery. `saveable` says whether a fresh tree should be stored: with a hash, or
 * bonded with Service Changed.
 */
export function cacheRule(entry: { hash: Uint8Array | undefined; services: ServiceData[] } | undefined,
  current: Uint8Array | undefined, ctx: { bonded: boolean; trust: boolean }): CacheDecision {
  if (!entry) return { use: false, why: 'no-entry' };
  if (ctx.trust) return { use: true, why: 'trusted' };
  if (current) {
    if (!entry.hash) return { use: false, why: 'hash-appeared' };
    return equalBytes(entry.hash, current) ? { use: true, why: 'hash-equal' } : { use: false, why: 'hash-differs' };
  }
  if (!ctx.bonded) return { use: false, why: 'no-hash-not-bonded' };
  if (!hasServiceChanged(entry.services) || entry.hash) return { use: false, why: 'no-service-changed' };
  return { use: true, why: 'bonded-service-changed' };
}

/** May a tree discovered now be stored for later connections (see cacheRule)? */
export function cacheSaveable(services: ServiceData[], hash: Uint8Array | undefined, bonded: boolean): boolean {
  return hash !== undefined || (bonded && hasServiceChanged(services));
}

function hasServiceChanged(services: ServiceData[]): boolean {
  return services.some(s => s.uuid === GattType.GenericAttributeService && s.characteristics.some(c => c.uuid === GattType.ServiceChanged));
}

/**
 * The bound on Service Changed work (issue 15): however many indications arrive, pending ranges
 * are merged into one, at most one rediscovery runs at a time, and rediscoveries start at least
 * this many ms apart (injected clock). A storm of 100 indications/s therefore costs at most one
 * rediscovery per second, and memory for one pending range.
 */
export const REDISCOVERY_MIN_INTERVAL_MS = 1000;

type MtuPhase =
  | { tag: 'idle' }
  | { tag: 'running'; exchange: Promise<void> }
  | { tag: 'done' }
  | { tag: 'refused'; error: AttError };

type SetupPhase =
  | { tag: 'pending' }
  | { tag: 'running'; done: Promise<void> }
  | { tag: 'done' }
  | { tag: 'failed'; error: Error };

/** One characteristic's CCCD as written on the peer (confirmed) and as wanted by the subscriptions. */
interface CccdSlot {
  confirmed: number;
  wanted: number;
  writing: Promise<void> | undefined;
}

type RediscoveryPhase =
  | { tag: 'idle' }
  | { tag: 'waiting'; timer: TimerId }
  | { tag: 'running' };

type Listener<T> = (v: T) => void;

interface Sink {
  push(value: Uint8Array): void;
  end(error?: Error): void;
}

/** Round trips spent, by purpose (for `explore`, tests and the benchmark). */
export interface GattClientStats {
  /** Requests of the discovery procedures (including the hash read that validates a cache). */
  discoveryRequests: number;
  /** All ATT requests this client sent. */
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  /** Service Changed / out-of-sync rediscoveries started (bounded per interval, see REDISCOVERY_MIN_INTERVAL_MS). */
  rediscoveries: number;
}

export class GattClient implements GattOps {
  readonly bearer: AttBearer;
  private readonly clock: Clock;
  private readonly options: GattClientOptions;
  private readonly policy: Pick<GattClientOptions, 'trustCache' | 'bonded'>;
  private tree: GattService[] | undefined;
  private treeData: ServiceData[] | undefined;
  private hash: Uint8Array | undefined;
  private dead: Error | undefined;
  /** Value handle → its sinks. Each array is replaced, never mutated, so a value is delivered to a snapshot without copying. */
  private readonly sinks = new SinkTable();
  /** Value handle → its CCCD slot (at most one per characteristic with a CCCD). */
  private readonly cccd = new Map<number, CccdSlot>();
  private mtuPhase: MtuPhase = { tag: 'idle' };
  private readonly discovery: SharedWork<GattService[]>;
  private setupPhase: SetupPhase = { tag: 'pending' };
  private scPhase: RediscoveryPhase = { tag: 'idle' };
  /** The merged range still to rediscover (the hull of every request since the last start). */
  private scPending: { start: number; end: number; checkHash: boolean } | undefined;
  private lastRediscoveryAt = Number.NEGATIVE_INFINITY;
  private settledWaiters: Array<() => void> = [];
  private readonly serverLink: GattServerLink | undefined;
  private readonly servicesChangedListeners = new Set<Listener<{ start: number; end: number }>>();
  private readonly disconnectListeners = new Set<Listener<Error>>();
  readonly statsCounters = { cacheHits: 0, cacheMisses: 0, discoveryRequests: 0, rediscoveries: 0 };

  /**
   * On a link's bearer (`LeLink.attachGatt`, which the public Connection uses): the link owns the
   * bearer, its MTU offer, our server session on it and the reaction to a transaction timeout, so
   * `mtu`, `server` and `onTimeout` are not used. On a bare L2CAP channel (tests, tools): the client
   * builds a bearer of its own with those options, and our local database on it unless `server` says
   * otherwise.
   */
  constructor(channel: L2capChannel | AttBearer, options: GattClientOptions) {
    this.clock = options.clock;
    this.options = options;
    this.policy = { ...(options.trustCache !== undefined ? { trustCache: options.trustCache } : {}), ...(options.bonded !== undefined ? { bonded: options.bonded } : {}) };
    this.discovery = new SharedWork(options.clock, 'services', signal => this.loadTree(signal), 'when-unwanted');
    if (channel instanceof AttBearer) {
      this.bearer = channel;
    } else {
      ({ bearer: this.bearer, session: this.serverLink } = openAttBearer(channel, {
        clock: options.clock,
        ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
        ...(options.server !== undefined ? { server: options.server } : {}),
        ...(options.onTimeout ? { onTimeout: options.onTimeout } : {}),
      }));
    }
    // Notifications come without an event object (the receive fast path); indications as events.
    this.bearer.on('notification', (handle, value) => this.deliver(handle, value));
    this.bearer.on('indication', ev => this.onValue(ev));
    this.bearer.on('closed', reason => this.onClosed(reason));
  }

  // ---- state and events ---------------------------------------------------------------------------

  get mtu(): number {
    return this.bearer.mtu;
  }

  get stats(): GattClientStats {
    return { ...this.statsCounters, requests: this.bearer.stats.requestsSent };
  }

  on(event: 'mtu', fn: Listener<number>): () => void;
  on(event: 'servicesChanged', fn: Listener<{ start: number; end: number }>): () => void;
  on(event: 'disconnect', fn: Listener<Error>): () => void;
  on(event: 'mtu' | 'servicesChanged' | 'disconnect', fn: Listener<never>): () => void {
    if (event === 'mtu') return this.bearer.on('mtu', fn as Listener<number>);
    const set = (event === 'servicesChanged' ? this.servicesChangedListeners : this.disconnectListeners) as Set<unknown>;
    set.add(fn);
    return () => { set.delete(fn); };
  }

  checkAlive(operation: string): void {
    if (this.dead) {
      throw this.dead instanceof DisconnectedError ? new DisconnectedError(operation, this.dead.reason, this.dead.reasonName) : this.dead;
    }
  }

  /**
   * Several operations under one deadline: everything started inside `fn` rejects with TimeoutError
   * after `ms`, or with AbortError when `options.signal` fires.
   */
  within<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T> {
    return withinScope(this.clock, ms, fn, options);
  }

  /**
   * Exchange MTU once per link (default 517 offered). Skipped when the peer already ran its own
   * exchange, which fixed ATT_MTU at min(ours, theirs) for both directions (Vol 3, Part F, 3.4.2).
   * The exchange belongs to the link, not to the caller: a caller's deadline rejects that caller,
   * the request stays on the wire and its late response still sets ATT_MTU. A peer answering with
   * an Error Response (Request Not Supported is allowed) leaves ATT_MTU at 23: this resolves with
   * 23 and every later call does too. A malformed answer rejects, and the next call tries again.
   */
  async exchangeMtu(options?: OpOptions): Promise<number> {
    this.checkAlive('exchangeMtu');
    if (this.bearer.mtu > 23 || this.bearer.mtuExchangeState === 'done') {
      if (this.mtuPhase.tag !== 'refused') this.mtuPhase = { tag: 'done' };
      return this.bearer.mtu;
    }
    if (this.mtuPhase.tag === 'refused') return this.bearer.mtu;
    // Started inside runOp, so an already-aborted signal sends nothing.
    await runOp(this.clock, options, 'exchangeMtu', signal => raceAbort(this.mtuExchange(), signal, 'exchangeMtu'));
    return this.bearer.mtu;
  }

  /** The running exchange, or a new one: never rejects with a caller's deadline; settles the phase. */
  private mtuExchange(): Promise<void> {
    if (this.mtuPhase.tag === 'running') return this.mtuPhase.exchange;
    if (this.mtuPhase.tag !== 'idle') return Promise.resolve();
    let failure: unknown;
    const exchange = this.bearer.exchangeMtu().then(
      () => { this.mtuPhase = { tag: 'done' }; },
      (e: unknown) => {
        if (e instanceof AttError) {
          log.gatt('peer refused Exchange MTU (%s): ATT_MTU stays %d', e.errorName, this.bearer.mtu);
          this.mtuPhase = { tag: 'refused', error: e };
        } else {
          this.mtuPhase = { tag: 'idle' };
          failure = e;
        }
      },
    ).then(() => { if (failure !== undefined) throw failure; });
    exchange.catch(() => {}); // the waiters see a failure; with none left it is not unhandled
    this.mtuPhase = { tag: 'running', exchange };
    return exchange;
  }

  // ---- discovery ----------------------------------------------------------------------------------

  /**
   * The whole database: this connection's tree if known, else the cache validated by the
   * Database Hash (one round trip), else a full discovery (stored in the cache).
   */
  async services(options?: OpOptions): Promise<GattService[]> {
    this.checkAlive('services');
    if (this.tree) {
      if (this.setupPhase.tag === 'failed') this.startSetup();
      return this.tree;
    }
    return this.discovery.join(options);
  }

  /**
   * The first primary service with this UUID ('heart_rate', 0x180d, a 128-bit string). Uses the
   * known tree if there is one; otherwise a targeted Find By Type Value (Vol 3, Part G, 4.4.2).
   */
  async service(u: number | string, options?: OpOptions): Promise<GattService> {
    this.checkAlive('service');
    const want = uuidOf('service', u);
    if (this.tree) {
      const s = this.tree.find(x => x.uuid === want);
      if (!s) throw new NotFoundError('service', describeUuid(want));
      return s;
    }
    const found = await runOp(this.clock, options, 'service', signal => this.counted(() => proc.discoverPrimaryServicesByUuid(this.bearer, want, signal, true)));
    if (found.length === 0) throw new NotFoundError('service', describeUuid(want));
    return new GattService(this, found[0]!, false);
  }

  /** Shorthand: `service(s)` then `characteristic(c)`. */
  async characteristic(serviceUuid: number | string, characteristicUuid: number | string, options?: OpOptions): Promise<GattCharacteristic> {
    return (await this.service(serviceUuid, options)).characteristic(characteristicUuid, options);
  }

  /** @internal targeted characteristic + descriptor discovery of one service. */
  async discoverServiceCharacteristics(service: GattService, options?: OpOptions): Promise<void> {
    await runOp(this.clock, options, 'discoverCharacteristics', async signal => {
      const data: ServiceData = { uuid: service.uuid, primary: service.primary, start: service.start, end: service.end, includes: [], characteristics: [] };
      await this.counted(async () => {
        if (service.end > service.start) {
          const chars = await proc.discoverCharacteristics(this.bearer, service.start + 1, service.end, signal);
          proc.assignCharacteristics([data], chars);
          await proc.discoverAllDescriptors(this.bearer, [data], signal);
        }
      });
      service.setCharacteristics(data.characteristics);
    });
  }

  /** Forget this peer's cached database (and this connection's tree). */
  async clearCache(): Promise<void> {
    this.tree = undefined;
    this.treeData = undefined;
    if (this.options.cache && this.options.peerId) await this.options.cache.clear(this.options.peerId);
  }

  /** Resolves when the per-link setup after discovery (robust caching, Service Changed CCCD) is done. */
  get ready(): Promise<void> {
    return this.setupPhase.tag === 'running' ? this.setupPhase.done : Promise.resolve();
  }

  private async counted<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.bearer.stats.requestsSent;
    try {
      return await fn();
    } finally {
      this.statsCounters.discoveryRequests += this.bearer.stats.requestsSent - before;
    }
  }

  /**
   * Change how a stored tree is trusted for the next discovery (`trustCache`, `bonded`; see
   * cacheRule): the Adapter's per-connect options, and SMP once bonding completes.
   */
  setCachePolicy(policy: Pick<GattClientOptions, 'trustCache' | 'bonded'>): void {
    if (policy.trustCache !== undefined) this.policy.trustCache = policy.trustCache;
    if (policy.bonded !== undefined) this.policy.bonded = policy.bonded;
  }

  private bonded(): boolean {
    const b = this.policy.bonded;
    return typeof b === 'function' ? b() : b === true;
  }

  private async loadTree(signal: AbortSignal): Promise<GattService[]> {
    const { cache, peerId } = this.options;
    let hash: Uint8Array | undefined;
    if (cache && peerId) {
      const trust = this.policy.trustCache === true;
      const [cached, current] = await Promise.all([
        cache.load(peerId).catch((e: unknown) => {
          log.gatt('cache for %s ignored (miss): %s', peerId, e instanceof Error ? e.message : String(e));
          return undefined;
        }),
        trust ? Promise.resolve(undefined) : this.counted(() => proc.readDatabaseHash(this.bearer, signal)),
      ]);
      hash = current;
      const decision = cacheRule(cached, current, { bonded: this.bonded(), trust });
      if (cached && decision.use) {
        this.statsCounters.cacheHits++;
        log.gatt('cache hit for %s (%s)', peerId, decision.why);
        this.install(cached.services, decision.why === 'trusted' ? cached.hash : current);
        return this.tree!;
      }
      log.gatt('cache miss for %s (%s)', peerId, decision.why);
      this.statsCounters.cacheMisses++;
      if (trust) hash = await this.counted(() => proc.readDatabaseHash(this.bearer, signal));
    }
    const data = await this.counted(() => proc.discoverAll(this.bearer, signal));
    this.install(data, hash);
    if (cache && peerId && cacheSaveable(data, hash, this.bonded())) {
      await cache.save(peerId, { hash, services: data }).catch(e => log.gatt('cache save failed: %s', String(e)));
    }
    return this.tree!;
  }

  private install(data: ServiceData[], hash: Uint8Array | undefined): void {
    this.treeData = data;
    this.hash = hash;
    this.tree = data.map(s => new GattService(this, s, true));
    if (this.setupPhase.tag === 'pending' || this.setupPhase.tag === 'failed') this.startSetup();
  }

  private startSetup(): void {
    const done = this.linkSetup().then(
      () => { this.setupPhase = { tag: 'done' }; },
      (e: unknown) => {
        const error = e instanceof Error ? e : new Error(String(e));
        log.gatt('link setup failed (tried again at the next services()): %s', error.message);
        this.setupPhase = { tag: 'failed', error };
      },
    );
    this.setupPhase = { tag: 'running', done };
  }

  /** Robust caching and Service Changed indications, once per link, queued behind discovery. */
  private async linkSetup(): Promise<void> {
    const gatt = this.tree?.find(s => s.uuid === GattType.GenericAttributeService);
    if (!gatt) return;
    const chars = gatt.characteristics;
    const csf = chars.find(c => c.uuid === GattType.ClientSupportedFeatures);
    if ((this.options.robustCaching ?? true) && csf) {
      const value = encodeGattValue({ kind: 'clientSupportedFeatures', bits: Uint8Array.of(ClientFeature.robustCaching) });
      await this.bearer.request({ kind: 'writeReq', handle: csf.handle, value });
    }
    const sc = chars.find(c => c.uuid === GattType.ServiceChanged);
    if ((this.options.serviceChanged ?? true) && sc?.cccd) {
      await this.writeCccd(sc, Cccd.indication);
    }
  }

  // ---- reads and writes ---------------------------------------------------------------------------

  /** Read a value by handle; long values are read whole (Read Blob). */
  readValue(handle: number, options?: OpOptions): Promise<Uint8Array> {
    return this.op('read', options, signal => proc.readLong(this.bearer, handle, signal));
  }

  /** Write by handle: request (long when needed) or command (back-pressured). */
  writeValue(handle: number, value: Uint8Array, withResponse: boolean, options?: OpOptions): Promise<void> {
    // A write command has no ATT transaction timeout of its own; it waits for controller buffer credit
    // (back-pressure). A controller that never returns credit must not hold it forever: the same 30 s
    // as a transaction applies unless the caller sets its own timeout.
    if (!withResponse) {
      return this.op('writeWithoutResponse', { ...options, timeout: options?.timeout ?? ATT_TRANSACTION_TIMEOUT_MS },
        () => proc.writeWithoutResponse(this.bearer, handle, value));
    }
    return this.op('write', options, signal => proc.write(this.bearer, handle, value, signal));
  }

  /** Read Using Characteristic UUID over [start, end] (default: everything). */
  readByUuid(u: number | string, options: OpOptions & { start?: number; end?: number } = {}): Promise<Array<{ handle: number; value: Uint8Array }>> {
    const want = uuidOf('characteristic', u);
    return this.op('readByUuid', options, signal => proc.readByUuid(this.bearer, want, options.start ?? 1, options.end ?? 0xffff, signal));
  }

  /** Read Multiple: the values concatenated (the caller knows their lengths). */
  readMultiple(handles: number[], options?: OpOptions): Promise<Uint8Array> {
    return this.op('readMultiple', options, signal => proc.readMultiple(this.bearer, handles, signal));
  }

  /** Read Multiple Variable: one whole value per handle. */
  readMultipleVariable(handles: number[], options?: OpOptions): Promise<Uint8Array[]> {
    return this.op('readMultipleVariable', options, signal => proc.readMultipleVariable(this.bearer, handles, signal));
  }

  /** Reliable write of several values: all or none; echoes verified (Vol 3, Part G, 4.9.5). */
  reliableWrite(writes: Array<{ handle: number; value: Uint8Array }>, options?: OpOptions): Promise<void> {
    return this.op('reliableWrite', options, signal => proc.reliableWrite(this.bearer, writes, signal));
  }

  /** Signed Write Without Response with OUR CSRK (the one we distributed when bonding) and a SignCounter; without a CSRK rejects with InvalidStateError. conn.signedWrite() takes both from the bond. */
  signedWrite(handle: number, value: Uint8Array, key: { csrk?: Uint8Array; signCounter?: number } = {}): Promise<void> {
    return this.op('signedWrite', undefined, () => proc.signedWrite(this.bearer, handle, value, key));
  }

  private async op<T>(what: string, options: OpOptions | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.checkAlive(what);
    try {
      return await runOp(this.clock, options, what, fn);
    } catch (e) {
      // Robust caching: the server says our view is stale (Vol 3, Part G, 2.5.2.1). Re-validate
      // in the background; the caller still sees the error and may retry.
      if (e instanceof AttError && e.errorCode === AttErrorCode.DatabaseOutOfSync) this.scheduleRediscovery(0x0001, 0xffff, true);
      throw e;
    }
  }

  // ---- notifications and indications --------------------------------------------------------------

  async subscribeValue(ch: GattCharacteristic, callback: ((value: Uint8Array) => void) | undefined, options: SubscribeOptions = {}): Promise<Subscription> {
    this.checkAlive('subscribe');
    const canNotify = ch.has('notify');
    const canIndicate = ch.has('indicate');
    if (!canNotify && !canIndicate) throw new InvalidStateError(`gatt: ${describeUuid(ch.uuid)} supports neither notifications nor indications`);
    if (!ch.cccd) throw new InvalidStateError(`gatt: ${describeUuid(ch.uuid)} has no Client Characteristic Configuration descriptor`);
    const bit = (options.indicate && canIndicate) || !canNotify ? Cccd.indication : Cccd.notification;
    const buffer = options.buffer ?? SUBSCRIPTION_BUFFER_DEFAULT;
    if (!Number.isInteger(buffer) || buffer < 0 || buffer > SUBSCRIPTION_BUFFER_MAX) {
      // NaN or Infinity here made the iterator's backlog unbounded (a peer notifying faster than the
      // reader reads grew memory without limit).
      throw new ArgumentError(`subscribe: buffer must be an integer 0..${SUBSCRIPTION_BUFFER_MAX}, got ${String(buffer)}`);
    }
    const sub = new ValueSubscription(this, ch, callback, buffer);
    // Registered before the CCCD write so a value sent right after it is not lost.
    this.sinks.set(ch.handle, [...(this.sinks.get(ch.handle) ?? []), sub]);
    try {
      if ((this.cccd.get(ch.handle)?.confirmed ?? 0) !== bit || this.cccd.get(ch.handle)?.writing) {
        await this.op('subscribe', options, () => this.writeCccd(ch, bit));
      }
    } catch (e) {
      const list = this.sinks.get(ch.handle);
      if (list?.includes(sub)) this.sinks.set(ch.handle, list.filter(s => s !== sub));
      sub.end();
      throw e;
    }
    return sub;
  }

  /** @internal remove a sink; the last one out writes the CCCD back to 0. */
  async unsubscribeSink(ch: GattCharacteristic, sink: Sink, options?: OpOptions): Promise<void> {
    const list = this.sinks.get(ch.handle);
    if (!list?.includes(sink)) return;
    const left = list.filter(s => s !== sink);
    if (left.length > 0 || this.dead) {
      this.sinks.set(ch.handle, left);
      return;
    }
    this.sinks.delete(ch.handle);
    await this.op('unsubscribe', options, () => this.writeCccd(ch, 0));
  }

  /**
   * Set the CCCD of `ch` to `value`. Writes per characteristic are serialised and the last intent
   * wins on the wire: while a write is out, a new wish only updates `wanted`, and the writer loop
   * writes again once if the confirmed value differs. Resolves when the peer holds the value wanted
   * at the time the loop ends; a failed write rejects every waiter and leaves `confirmed` as it was.
   */
  private writeCccd(ch: GattCharacteristic, value: number): Promise<void> {
    let slot = this.cccd.get(ch.handle);
    if (!slot) {
      slot = { confirmed: 0, wanted: value, writing: undefined };
      this.cccd.set(ch.handle, slot);
    }
    slot.wanted = value;
    if (slot.writing) return slot.writing;
    const s = slot;
    const loop = async (): Promise<void> => {
      const cccd = ch.cccd!;
      while (s.confirmed !== s.wanted) {
        const v = s.wanted;
        await this.bearer.request({ kind: 'writeReq', handle: cccd.handle, value: cccdValue(v) });
        s.confirmed = v;
      }
    };
    s.writing = loop().finally(() => {
      s.writing = undefined;
      // Bound: a slot lives while the peer has a non-zero value or a write is out.
      if (s.confirmed === 0 && this.cccd.get(ch.handle) === s) this.cccd.delete(ch.handle);
    });
    return s.writing;
  }

  private onValue(ev: AttValueEvent): void {
    // Service Changed is indicated (Vol 3, Part G, 7.1), so notifications skip the tree lookup.
    if (ev.kind === 'indication' && ev.handle === this.serviceChangedHandle()) {
      // Service Changed: start and end handle of the affected range (Vol 3, Part G, 7.1).
      let sc: GattValue<'serviceChanged'> | undefined;
      try {
        sc = decodeGattValue('serviceChanged', ev.value);
      } catch {
        log.gatt('Service Changed indication of %d octets ignored', ev.value.length);
      }
      if (sc && sc.start !== 0 && sc.end >= sc.start) this.scheduleRediscovery(sc.start, sc.end, false);
    }
    this.deliver(ev.handle, ev.value);
  }

  private deliver(handle: number, value: Uint8Array): void {
    const list = this.sinks.lookup(handle);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) list[i]!.push(value);
  }

  private serviceChangedHandle(): number | undefined {
    const gatt = this.tree?.find(s => s.uuid === GattType.GenericAttributeService);
    if (!gatt) return undefined;
    try {
      return gatt.characteristics.find(c => c.uuid === GattType.ServiceChanged)?.handle;
    } catch {
      return undefined;
    }
  }

  /** Resolves when no Service Changed / out-of-sync rediscovery is pending or running. */
  get settled(): Promise<void> {
    if (this.scPhase.tag === 'idle' && !this.scPending) return Promise.resolve();
    return new Promise(resolve => { this.settledWaiters.push(resolve); });
  }

  /** Merge [start, end] into the pending range and make sure a rediscovery will run for it. */
  private scheduleRediscovery(start: number, end: number, checkHash: boolean): void {
    if (this.dead) return;
    const p = this.scPending;
    this.scPending = p
      ? { start: Math.min(p.start, start), end: Math.max(p.end, end), checkHash: p.checkHash && checkHash }
      : { start, end, checkHash };
    this.kickRediscovery();
  }

  private kickRediscovery(): void {
    if (this.scPhase.tag !== 'idle') return;
    if (!this.scPending || this.dead) {
      this.scPending = undefined;
      for (const fn of this.settledWaiters.splice(0)) fn();
      return;
    }
    const wait = this.lastRediscoveryAt + REDISCOVERY_MIN_INTERVAL_MS - this.clock.now();
    if (wait > 0) {
      const timer = this.clock.setTimeout(() => {
        this.scPhase = { tag: 'idle' };
        this.kickRediscovery();
      }, wait);
      this.scPhase = { tag: 'waiting', timer };
      return;
    }
    const { start, end, checkHash } = this.scPending;
    this.scPending = undefined;
    this.scPhase = { tag: 'running' };
    this.lastRediscoveryAt = this.clock.now();
    this.statsCounters.rediscoveries++;
    void this.rediscover(start, end, checkHash).catch((e: unknown) => {
      log.gatt('rediscovery failed: %s', e instanceof Error ? e.message : String(e));
    }).finally(() => {
      this.scPhase = { tag: 'idle' };
      this.kickRediscovery();
    });
  }

  private async rediscover(start: number, end: number, checkHash: boolean): Promise<void> {
    if (this.dead || !this.treeData) {
      this.tree = undefined;
      return;
    }
    const { cache, peerId } = this.options;
    let hash: Uint8Array | undefined;
    if (checkHash || (cache && peerId)) {
      hash = await this.counted(() => proc.readDatabaseHash(this.bearer, undefined));
      if (checkHash && hash && this.hash && equalBytes(hash, this.hash)) return; // nothing changed after all
    }
    // Widen the range to whole services it touches.
    let lo = start, hi = end;
    for (const s of this.treeData) if (s.end >= start && s.start <= end) { lo = Math.min(lo, s.start); hi = Math.max(hi, s.end); }
    const kept = this.treeData.filter(s => s.end < lo || s.start > hi);
    const fresh = await this.counted(() => proc.discoverAll(this.bearer, undefined, lo, hi));
    const data = [...kept, ...fresh.filter(s => s.start >= lo && s.end <= hi)].sort((a, b) => a.start - b.start);
    // Subscriptions inside the range refer to attributes that may be gone.
    for (const [handle, list] of [...this.sinks]) {
      if (handle >= lo && handle <= hi) {
        this.sinks.delete(handle);
        this.cccd.delete(handle);
        for (const s of list) s.end(new InvalidStateError(`gatt: handles ${lo}–${hi} changed on the peer (Service Changed); subscribe again`));
      }
    }
    this.treeData = data;
    this.hash = hash;
    this.tree = data.map(s => new GattService(this, s, true));
    if (cache && peerId && cacheSaveable(data, hash, this.bonded())) {
      await cache.save(peerId, { hash, services: data }).catch(e => log.gatt('cache save failed: %s', String(e)));
    }
    for (const fn of [...this.servicesChangedListeners]) fn({ start: lo, end: hi });
  }

  // ---- teardown -----------------------------------------------------------------------------------

  private onClosed(reason: Error): void {
    this.dead = reason;
    for (const list of this.sinks.values()) for (const s of list) s.end(reason);
    this.sinks.clear();
    this.cccd.clear();
    this.discovery.cancel(reason);
    if (this.scPhase.tag === 'waiting') this.clock.clearTimeout(this.scPhase.timer);
    if (this.scPhase.tag !== 'running') this.scPhase = { tag: 'idle' };
    this.scPending = undefined;
    for (const fn of this.settledWaiters.splice(0)) fn();
    for (const fn of [...this.disconnectListeners]) fn(reason);
  }
}

/**
 * Values one subscription keeps for its iterators that they have not read yet, by default; beyond it
 * the oldest is dropped (counted in `dropped`). The peer sets the rate (a notification per connection
 * event, up to 1 / 7.5 ms, Vol 6, Part B, 4.5.1), so only this bounds the backlog. A batch is what the
 * buffer holds when the loop takes it, so it is never longer than this either.
 */
export const SUBSCRIPTION_BUFFER_DEFAULT = 256;
/** The largest `buffer` a subscription may ask for (64 Ki values of at most ATT_MTU - 3 octets each). */
export const SUBSCRIPTION_BUFFER_MAX = 65_536;

/** One iterator of a subscription: `over` once it has reported the end (done, or the error once). */
interface IteratorState { over: boolean }
interface Waiter<T> { resolve(r: IteratorResult<T>): void; reject(e: Error): void; it: IteratorState }

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * One subscriber: a callback and/or a bounded buffer read by async iterators (values one at a time,
 * or batches).
 *
 * Bounds and back-pressure, all written down here: the buffer holds at most `limit` values
 * (SUBSCRIPTION_BUFFER_DEFAULT unless the subscriber chose 0..SUBSCRIPTION_BUFFER_MAX); a value
 * arriving when it is full pushes the oldest out, counted in `dropped`. Nothing slows the peer down
 * (notifications are not flow-controlled, Vol 3, Part F, 3.4.7.1). Waiting steps are one per
 * next() the application has called and not yet seen settle; end() settles every one of them (done,
 * or the subscription's error), so nothing is left pending when the subscription or the link ends,
 * and no timer is ever armed here (a batch is handed over in a microtask).
 */
/**
 * Value handle → its sinks: a Map that remembers the last handle looked up by deliver(), so a stream
 * of one characteristic's values costs no map lookup per value (issue 14: about 8 ns of a 20-byte
 * notification's 90). Any change forgets it; lists are replaced, never mutated, so the remembered
 * list is always the current one.
 */
class SinkTable {
  private readonly map = new Map<number, readonly Sink[]>();
  private lastHandle = -1;
  private lastList: readonly Sink[] | undefined;

  /** The sinks of `handle` for a value to deliver (remembers the handle, a miss too). */
  lookup(handle: number): readonly Sink[] | undefined {
    if (handle === this.lastHandle) return this.lastList;
    const list = this.map.get(handle);
    this.lastHandle = handle;
    this.lastList = list;
    return list;
  }

  get(handle: number): readonly Sink[] | undefined {
    return this.map.get(handle);
  }

  set(handle: number, list: readonly Sink[]): void {
    this.map.set(handle, list);
    this.forget();
  }

  delete(handle: number): void {
    this.map.delete(handle);
    this.forget();
  }

  clear(): void {
    this.map.clear();
    this.forget();
  }

  values(): IterableIterator<readonly Sink[]> {
    return this.map.values();
  }

  [Symbol.iterator](): IterableIterator<[number, readonly Sink[]]> {
    return this.map[Symbol.iterator]();
  }

  private forget(): void {
    this.lastHandle = -1;
    this.lastList = undefined;
  }
}

class ValueSubscription implements Subscription, Sink {
  /** Values not yet read; handed over whole to a batch step and replaced by a new array. */
  private queue: Uint8Array[] = [];
  /** next() calls of the value iterator waiting for a value, oldest first. */
  private readonly waiters: Array<Waiter<Uint8Array>> = [];
  /** next() calls of the batch iterator waiting for values, oldest first. */
  private readonly batchWaiters: Array<Waiter<Uint8Array[]>> = [];
  private flushQueued = false;
  private ended: { error?: Error } | undefined;
  /**
   * Values are buffered for an iterator: from the start when there is no callback, else from the
   * first `[Symbol.asyncIterator]()` / `batches()`. A callback subscription nobody iterates keeps no
   * values: it used to hold the last `limit` of them (each keeping its packet or reassembly buffer
   * alive long enough to be promoted to the old generation) and count every later one as dropped.
   */
  private buffering: boolean;
  dropped = 0;

  constructor(
    private readonly client: GattClient,
    private readonly ch: GattCharacteristic,
    private readonly callback: ((value: Uint8Array) => void) | undefined,
    private readonly limit: number,
  ) {
    this.buffering = callback === undefined;
  }

  get active(): boolean {
    return !this.ended;
  }

  push(value: Uint8Array): void {
    if (this.ended) return;
    if (this.callback) {
      try {
        this.callback(value);
      } catch (e) {
        log.gatt('notification callback threw: %s', e instanceof Error ? e.message : String(e));
      }
      if (!this.buffering) return;
    }
    if (this.waiters.length > 0) {
      this.waiters.shift()!.resolve({ value, done: false });
      return;
    }
    const q = this.queue;
    q.push(value);
    if (q.length > this.limit) {
      q.shift();
      this.dropped++;
    }
    // A batch step waiting: hand it everything that arrives in this turn, once the turn is over.
    if (this.batchWaiters.length > 0 && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  /** The oldest waiting batch step gets the buffer as it stands (one promise per batch, not per value). */
  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.queue.length === 0 || this.batchWaiters.length === 0) return;
    this.batchWaiters.shift()!.resolve({ value: this.takeQueue(), done: false });
  };

  /** The buffer, handed over whole (no copy): the subscription goes on with a new, empty one. */
  private takeQueue(): Uint8Array[] {
    const batch = this.queue;
    this.queue = [];
    return batch;
  }

  end(error?: Error): void {
    if (this.ended) return;
    this.ended = error ? { error } : {};
    for (const w of this.waiters.splice(0)) this.settleEnd(w);
    const batchWaiters = this.batchWaiters.splice(0);
    // Values that arrived in this turn, before the end, still reach a batch step waiting for them.
    if (batchWaiters.length > 0 && this.queue.length > 0) batchWaiters.shift()!.resolve({ value: this.takeQueue(), done: false });
    for (const w of batchWaiters) this.settleEnd(w);
  }

  /** A waiting step sees the end: done, or the error (once per iterator; its later steps are done). */
  private settleEnd<T>(w: Waiter<T>): void {
    const error = this.ended?.error;
    if (error === undefined || w.it.over) {
      w.it.over = true;
      w.resolve(DONE);
      return;
    }
    w.it.over = true;
    w.reject(error);
  }

  /** next() of an iterator finding nothing to take: the end if there is one, else a waiting step. */
  private wait<T>(it: IteratorState, waiters: Array<Waiter<T>>): Promise<IteratorResult<T>> {
    if (this.ended) {
      if (it.over || !this.ended.error) {
        it.over = true;
        return Promise.resolve(DONE);
      }
      it.over = true;
      return Promise.reject(this.ended.error);
    }
    return new Promise((resolve, reject) => { waiters.push({ resolve, reject, it }); });
  }

  /**
   * The values in batches: each next() resolves with everything that arrived since the last one (at
   * least one value; everything received in one turn of the event loop comes in one batch), so a busy
   * stream costs one promise per batch, not one per value. A batch is at most the buffer's size: the
   * oldest values beyond it were dropped (`dropped`), as for the value iterator. The array is the
   * subscription's own buffer handed over (the application may keep or change it).
   */
  batches(): AsyncIterableIterator<Uint8Array[]> {
    this.buffering = true;
    const state: IteratorState = { over: false };
    const it: AsyncIterableIterator<Uint8Array[]> = {
      next: () => {
        if (state.over) return Promise.resolve(DONE);
        if (this.queue.length > 0 && this.batchWaiters.length === 0) return Promise.resolve({ value: this.takeQueue(), done: false });
        return this.wait(state, this.batchWaiters);
      },
      ...this.iteratorEnds(state),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * return() and throw() of both iterators: unsubscribe, then end (return) or rethrow (throw: a
   * generator delegating to the iterator with `yield*` forwards its throw() here).
   */
  private iteratorEnds(state: IteratorState): { return(): Promise<IteratorReturnResult<undefined>>; throw(error?: unknown): Promise<never> } {
    return {
      return: async () => {
        state.over = true;
        await this.unsubscribe().catch(() => {});
        return DONE;
      },
      throw: async (error?: unknown) => {
        state.over = true;
        await this.unsubscribe().catch(() => {});
        throw error;
      },
    };
  }

  async unsubscribe(options?: OpOptions): Promise<void> {
    if (this.ended) {
      await this.client.unsubscribeSink(this.ch, this).catch(() => {});
      return;
    }
    this.end();
    await this.client.unsubscribeSink(this.ch, this, options);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.buffering = true;
    const state: IteratorState = { over: false };
    return {
      next: () => {
        if (state.over) return Promise.resolve(DONE);
        if (this.waiters.length === 0) {
          const v = this.queue.shift();
          if (v !== undefined) return Promise.resolve({ value: v, done: false });
        }
        return this.wait(state, this.waiters);
      },
      ...this.iteratorEnds(state),
    };
  }
}

export type { Uuid };
