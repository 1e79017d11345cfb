/**
 * The gateway daemon: one adapter, one broker. Scans continuously (passive unless configured
 * active), keeps a bounded table of devices, publishes one JSON document per device under the
 * per-device rate limits, a retained availability status (with the Last Will for `offline`), a
 * periodic summary, optional Home Assistant discovery, and answers commands (commands.ts).
 *
 * Runs for months:
 * - broker loss: MqttLink reconnects with backoff and buffers (bounded, oldest dropped and counted);
 * - adapter loss (the transport ends): the adapter is reopened with backoff; a Hardware Error is
 *   recovered by the Adapter itself ('reset') and scanning restarts; a scan that keeps failing
 *   closes the adapter so that it is reopened from scratch;
 * - stop(): scanning stops, the adapter closes (bounded wait), `offline` is published, MQTT ends.
 * Every bound is in the config (config.ts) with its default; logs are JSON lines (log.ts).
 *
 * Built on the public API only (src/index.ts): Adapter, Advertisement, Connection.
 */
import {
  Adapter, systemClock, type Advertisement, type BondStore, type Clock, type Connection, type HciTransport,
} from '../../index.js';
import { CommandRunner, errorAnswer, parseCommand, validTopic, type Answer } from './commands.js';
import { topicsOf, type ResolvedConfig } from './config.js';
import { decodeAll, DECODERS, type Decoded, type SensorDecoder } from './decoders/index.js';
import { buildDocument } from './document.js';
import { GatewayError } from './errors.js';
import { discoveryMessages } from './homeassistant.js';
import { jsonLogger, type Logger } from './log.js';
import { loadMqtt, MqttLink, type MqttModule } from './mqtt.js';
import { RateLimiter, type RateState } from './rate.js';

/** How often the gateway's tick runs (held changes, expiry, summary), ms. */
const TICK_MS = 250;
/** Consecutive scan failures after which the adapter is closed and reopened. */
const MAX_SCAN_FAILURES = 3;
/** Deadline of one adapter open (transport, Reset, initialisation), ms; stop() aborts an open under way. */
const OPEN_TIMEOUT_MS = 30_000;
/** Bound on waiting for the adapter to close when stopping, ms. */
const CLOSE_TIMEOUT_MS = 3000;

export interface GatewayDeps {
  /** The MQTT.js module (default: loaded lazily). */
  mqtt?: MqttModule;
  /** Overrides config.transport: a spec, or a factory for a fresh transport per (re)open. */
  transport?: string | (() => HciTransport | Promise<HciTransport>);
  /** Timers and monotonic time (default systemClock). */
  clock?: Clock;
  /** Wall-clock time for documents (default Date.now). */
  now?: () => number;
  logger?: Logger;
  /** Extra decoders, run after the built-in ones. */
  decoders?: readonly SensorDecoder[];
  /** The bond store (overrides config.bonds): bonds made by `pair`, IRKs that resolve RPAs. */
  bonds?: BondStore;
}

/**
 * One tracked device, kept small because a gateway tracks up to maxDevices of them (10 000 in the
 * memory bench): the record is its own rate-limit state (RateState's two fields), and it holds the
 * last Advertisement (with the parsed AD the adapter caches on it) only while a change is held for
 * the next tick. To tell a change it keeps a fingerprint of the AD last published (fingerprint()
 * below: three small integers), not the octets: a copy or a view of them cost ~200 bytes of heap per
 * device (two typed-array objects) and a view kept the scanner's 4 KB AD chunk alive after the
 * scanner's registry had forgotten the device.
 */
interface DeviceRecord extends RateState {
  /** The key: the identity address of a bonded device (resolved RPA), else the address on the air. */
  address: string;
  /** The type of `address` (the identity's type when resolved). */
  addressType: 'public' | 'random' | 'anonymous';
  firstSeen: number;
  lastSeen: number;
  /** Monotonic time of the last report (expiry). */
  lastSeenMono: number;
  reports: number;
  /** The report to publish while a change is held (the rate limiter's window), else undefined. */
  ad: Advertisement | undefined;
  /** Fingerprint of the AD and scan response last published (fpLength -1: never published). */
  fpLength: number;
  fpHashA: number;
  fpHashB: number;
  /** Last BTHome encryption counter accepted (replay protection). */
  counter: number | undefined;
  /** In the backlog: due for publication while the broker link was busy (Gateway.waiting). */
  waiting: boolean;
}

export interface GatewayStats {
  devices: number;
  reports: number;
  published: number;
  held: number;
  /** Devices due for publication waiting for room on a busy broker link (the backlog; at most one per device). */
  waiting: number;
  evicted: number;
  adapterOpens: number;
  adapterOpen: boolean;
  commandsOk: number;
  commandsFailed: number;
}

/**
 * The fingerprint of a report's AD and scan response: their lengths (exact, < 2^22: each is at most
 * 1650 octets) and two independent 30-bit hashes (FNV-1a and a multiply-rotate hash with another
 * seed) over both, kept within V8's small-integer range so the record holds them inline. Two different
 * payloads of the same lengths look the same with a chance of about 2^-60 per change; such a change
 * would go out with the next heartbeat (publish.maxIntervalMs) instead of at once.
 */
let fpA = 0;
let fpB = 0;
function fingerprint(data: Uint8Array, scan: Uint8Array | undefined): number {
  let a = 0x811c9dc5 | 0;
  let b = 0x2f1b3c5d | 0;
  const sl = scan?.length ?? 0;
  // The data's octets, a marker (so that (AB, C) and (A, BC) differ), the scan response's octets.
  for (let i = 0, n = data.length + 1 + sl; i < n; i++) {
    const v = i < data.length ? data[i]! : i === data.length ? 0x100 : scan![i - data.length - 1]!;
    a = Math.imul(a ^ v, 0x01000193);
    b = Math.imul(((b ^ v) + 0x9e3779b9) | 0, 0x85ebca6b);
    b = (b << 13) | (b >>> 19);
  }
  fpA = a & 0x3fffffff;
  fpB = (b ^ (b >>> 16)) & 0x3fffffff;
  return data.length + sl * 2048;
}

export class Gateway {
  readonly topics: ReturnType<typeof topicsOf>;
  readonly clock: Clock;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly limiter: RateLimiter<DeviceRecord>;
  private readonly devices = new Map<string, DeviceRecord>();
  /**
   * The backlog: devices due for publication while the broker link was busy (connected, its in-flight
   * window full or its buffer draining), oldest first. A document is built only when it can go out at
   * once, so a burst of reports ahead of a slow broker (10 000 first-seen devices in a second) costs
   * a flag and a set entry per device, holding its newest report, instead of 10 000 JSON documents
   * built ahead in the buffer. Bounded by the device table (maxDevices): a device is in it at most once,
   * and leaves it when published, evicted or expired. Drained by MqttLink's onRoom.
   */
  private readonly waiting = new Set<DeviceRecord>();
  private readonly keys = new Map<string, Uint8Array>();
  private readonly decoders: readonly SensorDecoder[];
  private readonly conns = new Map<string, Connection>();
  private readonly commands: CommandRunner;
  private mqtt: MqttLink | undefined;
  private adapter: Adapter | undefined;
  private scanRunning = false;
  private scanFailures = 0;
  private stopping = false;
  private tickTimer: TimerId | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private startedAt = 0;
  private lastSummaryAt = 0;
  private lastSummary = { reports: 0, delivered: 0 };
  private seq = 0;
  private stats_ = { reports: 0, published: 0, evicted: 0, adapterOpens: 0 };

  constructor(readonly config: ResolvedConfig, private readonly deps: GatewayDeps = {}) {
    this.topics = topicsOf(config);
    this.clock = deps.clock ?? systemClock;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger ?? jsonLogger(config.logLevel, undefined, this.now, { gateway: config.id });
    this.limiter = new RateLimiter<DeviceRecord>({ minIntervalMs: config.publish.minIntervalMs, maxIntervalMs: config.publish.maxIntervalMs });
    for (const [a, k] of Object.entries(config.keys)) this.keys.set(a.toUpperCase(), Uint8Array.from(Buffer.from(k, 'hex')));
    this.decoders = [...DECODERS, ...(deps.decoders ?? [])];
    this.commands = new CommandRunner({
      knownDevice: a => { const t = this.devices.get(a)?.addressType; return t === 'public' || t === 'random' ? t : undefined; },
      connect: (a, t, o) => this.connectDevice(a, t, o),
      connection: a => this.conns.get(a),
      removeBond: async a => {
        const adapter = this.adapter;
        if (!adapter) throw new GatewayError('EGW_ADAPTER_DOWN', 'the adapter is not open (it is being reopened); try again');
        const t = this.devices.get(a)?.addressType;
        return adapter.removeBond(t === 'public' || t === 'random' ? { address: a, type: t } : a);
      },
      publishValue: (a, s, c, v) => this.mqtt?.publish(this.topics.characteristic(a, s, c),
        JSON.stringify({ value: Buffer.from(v).toString('hex'), time: new Date(this.now()).toISOString() }), this.config.mqtt.qos),
      clock: this.clock as CommandRunnerClock,
    }, config.commands);
  }

  get stats(): GatewayStats {
    return {
      devices: this.devices.size, reports: this.stats_.reports, published: this.stats_.published, held: this.limiter.heldCount,
      waiting: this.waiting.size, evicted: this.stats_.evicted, adapterOpens: this.stats_.adapterOpens, adapterOpen: this.adapter !== undefined,
      commandsOk: this.commands.ok, commandsFailed: this.commands.failed,
    };
  }

  get mqttStats() {
    return this.mqtt?.stats;
  }

  /** Connect to the broker (in the background) and start the adapter loop; resolves once both are under way. */
  async start(): Promise<void> {
    const mod = this.deps.mqtt ?? await loadMqtt();
    this.startedAt = this.clock.now();
    this.lastSummaryAt = this.startedAt;
    const c = this.config;
    this.mqtt = new MqttLink(mod, {
      url: c.mqtt.url,
      statusTopic: this.topics.status,
      buffer: c.buffer,
      backoff: c.backoff,
      logger: this.log,
      clock: this.clock,
      client: {
        clientId: c.mqtt.clientId ?? `blewire-${c.id}`,
        protocolVersion: c.mqtt.protocolVersion,
        keepalive: c.mqtt.keepalive,
        connectTimeout: 10_000,
        rejectUnauthorized: c.mqtt.rejectUnauthorized,
        ...(c.mqtt.username !== undefined ? { username: c.mqtt.username } : {}),
        ...(c.mqtt.password !== undefined ? { password: c.mqtt.password } : {}),
        ...(c.tls.ca !== undefined ? { ca: c.tls.ca } : {}),
        ...(c.tls.cert !== undefined ? { cert: c.tls.cert } : {}),
        ...(c.tls.key !== undefined ? { key: c.tls.key } : {}),
        ...(c.tls.passphrase !== undefined ? { passphrase: c.tls.passphrase } : {}),
      },
    });
    if (c.commands.enabled) {
      this.mqtt.subscribe(this.topics.command, 1);
      this.mqtt.onMessage((topic, payload, packet) => {
        if (topic === this.topics.command) void this.onCommand(payload, packet.properties);
      });
    }
    this.mqtt.onConnect(() => { this.announced.clear(); });
    this.mqtt.onRoom(() => this.drainWaiting());
    this.mqtt.start();
    this.log.info('gateway starting', { mqtt: c.mqtt.url.replace(/\/\/[^@/]*@/, '//***@'), transport: typeof this.deps.transport === 'function' ? '(factory)' : this.deps.transport ?? c.transport, active: c.scan.active,
      // The V8 flags in force (blewire-gateway sets the memory ones): operators and the tests can see them.
      execArgv: process.execArgv });
    this.loop = this.adapterLoop();
    this.scheduleTick();
  }

  /** Home Assistant: discovery topics sent since the last (re)connect. */
  private readonly announced = new Set<string>();

  // ---- adapter ------------------------------------------------------------------------------------

  /**
   * Open the adapter under `signal`, which stop() aborts: a controller that does not answer would
   * otherwise hold stop() for the open's whole 30 s deadline, twice the systemd unit's TimeoutStopSec
   * (15 s), and the service manager's SIGKILL would cost the clean `offline`. A transport factory that
   * has not settled is not waited for either; a transport it yields after the abort is closed.
   */
  private async openAdapter(signal: AbortSignal): Promise<Adapter> {
    const t = this.deps.transport ?? this.config.transport;
    let transport: string | HciTransport;
    if (typeof t === 'function') {
      const made = Promise.resolve().then(t);
      transport = await new Promise<HciTransport>((resolve, reject) => {
        const onAbort = (): void => {
          reject(signal.reason as Error);
          made.then(late => late.close(), () => undefined).catch(() => undefined);
        };
        if (signal.aborted) { onAbort(); return; }
        signal.addEventListener('abort', onAbort, { once: true });
        made.then(
          tr => { signal.removeEventListener('abort', onAbort); resolve(tr); },
          e => { signal.removeEventListener('abort', onAbort); reject(e as Error); },
        );
      });
    } else {
      transport = t;
    }
    // The gateway keeps its own device table (maxDevices); the adapter's registry only has to merge a
    // scan response with its advertisement and cache parsed AD: scan.registryCapacity (config.ts) bounds
    // it, 1024 by default. Sizing it to maxDevices as well held every device twice (about 1.2 KB each).
    const bonds = this.deps.bonds ?? this.config.bonds;
    return Adapter.open({ transport, timeout: OPEN_TIMEOUT_MS, signal, registryCapacity: this.config.scan.registryCapacity, ...(bonds !== undefined ? { bonds } : {}) });
  }

  /** Aborts the adapter open under way (stop() calls it). */
  private opening: AbortController | undefined;

  /** Ends the adapter loop's wait for the open adapter's close (stop() calls it). */
  private adapterDone: (() => void) | undefined;

  private async adapterLoop(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      let adapter: Adapter | undefined;
      const opening = new AbortController();
      this.opening = opening;
      try {
        adapter = await this.openAdapter(opening.signal);
      } catch (e) {
        // Aborted by stop(): the loop ends below, nothing failed.
        if (!this.stopping) this.log.warn('adapter open failed', { error: e, attempt: attempt + 1 });
      } finally {
        this.opening = undefined;
      }
      if (this.stopping && !adapter) break;
      if (adapter) {
        if (this.stopping) { await adapter.close().catch(() => undefined); break; }
        attempt = 0;
        this.stats_.adapterOpens++;
        this.adapter = adapter;
        // Ends on the adapter's close event, or when stop() has closed it: a close that failed or
        // timed out may never emit the event, and stop() waits for this loop.
        const ended = new Promise<void>(resolve => { this.adapterDone = resolve; adapter!.once('close', () => resolve()); });
        adapter.on('hardwareError', code => this.log.warn('controller Hardware Error; the adapter re-initialises it', { code }));
        adapter.on('reset', () => { this.log.info('controller re-initialised; scanning again'); this.scanRunning = false; this.startScan(); });
        adapter.on('disconnect', (conn, reason) => {
          // Links are kept under the address the command named (an identity address for a bonded
          // device that uses RPAs, where conn.address is the RPA of the moment).
          for (const [a, c] of this.conns) {
            if (c !== conn) continue;
            this.conns.delete(a);
            this.commands.dropDevice(a);
          }
          this.commands.dropDevice(conn.address);
          this.log.info('device disconnected', { address: conn.address, reason: reason.name ?? reason });
        });
        const ctl = adapter.controller;
        this.log.info('adapter open', { controller: ctl.address, version: ctl.version?.coreVersion, manufacturer: ctl.version?.manufacturer });
        this.scanFailures = 0;
        this.startScan();
        await ended;
        this.adapterDone = undefined;
        this.adapter = undefined;
        this.scanRunning = false;
        for (const a of this.conns.keys()) this.commands.dropDevice(a);
        this.conns.clear();
        if (this.stopping) break;
        this.log.warn('adapter lost (transport closed); reopening');
      }
      const { minMs, maxMs } = this.config.backoff;
      const delay = Math.round(Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20)) * (0.8 + 0.4 * Math.random()));
      attempt++;
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const t = this.clock.setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { this.clock.clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }

  private startScan(): void {
    const adapter = this.adapter;
    if (!adapter || this.scanRunning || this.stopping) return;
    this.scanRunning = true;
    const s = this.config.scan;
    let session;
    try {
      session = adapter.scan({
        active: s.active, duplicates: true,
        ...(s.interval !== undefined ? { interval: s.interval } : {}), ...(s.window !== undefined ? { window: s.window } : {}),
        onAdvertisement: ad => this.ingest(ad),
      });
    } catch (e) {
      this.scanRunning = false;
      this.scanFailed(adapter, e);
      return;
    }
    session.done.then(
      () => { if (this.adapter === adapter) this.scanRunning = false; },
      e => {
        if (this.adapter !== adapter) return;
        this.scanRunning = false;
        this.scanFailed(adapter, e);
      },
    );
  }

  private scanFailed(adapter: Adapter, e: unknown): void {
    if (this.stopping || this.adapter !== adapter) return;
    this.scanFailures++;
    this.log.warn('scan ended with an error', { error: e, failures: this.scanFailures });
    if (this.scanFailures >= MAX_SCAN_FAILURES) {
      this.log.warn('scan keeps failing; closing the adapter to reopen it');
      void adapter.close().catch(() => undefined);
      return;
    }
    // A Hardware Error is followed by 'reset' (which restarts the scan); otherwise retry after a pause.
    const t = this.clock.setTimeout(() => {
      if (this.adapter === adapter && !this.scanRunning) this.startScan();
    }, this.config.backoff.minMs);
    void t;
  }

  private async connectDevice(address: string, addressType: 'public' | 'random', o: { timeout: number; signal: AbortSignal }): Promise<Connection> {
    const adapter = this.adapter;
    if (!adapter) throw new GatewayError('EGW_ADAPTER_DOWN', 'the adapter is not open (it is being reopened); try again');
    if (this.conns.size >= this.config.commands.maxConnections) {
      throw new GatewayError('EGW_BUSY', `${this.conns.size} links are open (commands.maxConnections); disconnect one first`);
    }
    const conn = await adapter.connect({ address, addressType }, { timeout: o.timeout, signal: o.signal });
    this.conns.set(address, conn);
    // The scan pauses while initiating; make sure it runs again.
    if (!this.scanRunning) this.startScan();
    return conn;
  }

  // ---- advertisements -----------------------------------------------------------------------------

  /** One advertising report (public for benchmarks and tests that feed reports directly). */
  ingest(ad: Advertisement): void {
    this.stats_.reports++;
    // A bonded device is keyed by its identity (Vol 3, Part C, 10.7): one record, one topic, one
    // document stream however often its resolvable private address changes.
    const identity = ad.identity;
    const key = identity ? identity.address : ad.address;
    const mono = this.clock.now();
    const wall = this.now();
    let d = this.devices.get(key);
    if (d) {
      // Keep the map in least-recently-heard order: eviction takes the first entry.
      this.devices.delete(key);
      this.devices.set(key, d);
      d.ad = ad;
      d.lastSeen = wall;
      d.lastSeenMono = mono;
      d.reports++;
    } else {
      if (this.devices.size >= this.config.maxDevices) this.evictOldest();
      d = { address: key, addressType: identity ? identity.addressType : ad.addressType, firstSeen: wall, lastSeen: wall, lastSeenMono: mono, reports: 1, ad,
        fpLength: -1, fpHashA: 0, fpHashB: 0, counter: undefined, waiting: false, lastPublished: -Infinity, pending: false };
      this.devices.set(key, d);
    }
    d.addressType = identity ? identity.addressType : ad.addressType;
    const length = fingerprint(ad.data, ad.scanResponse);
    const changed = length !== d.fpLength || fpA !== d.fpHashA || fpB !== d.fpHashB;
    const decision = this.limiter.offer(d, changed, mono);
    if (decision === 'publish') this.publishDevice(d, mono);
    // Neither held nor waiting: drop the report (the next one that matters arrives with its own).
    else if (decision === 'skip' && !d.pending && !d.waiting) d.ad = undefined;
  }

  private evictOldest(): void {
    const first = this.devices.values().next().value as DeviceRecord | undefined;
    if (!first) return;
    this.forget(first);
    this.stats_.evicted++;
  }

  private forget(d: DeviceRecord): void {
    this.devices.delete(d.address);
    this.limiter.forget(d);
    this.unwait(d);
    d.ad = undefined;
  }

  /** Out of the backlog (published, evicted or expired). */
  private unwait(d: DeviceRecord): void {
    if (!d.waiting) return;
    d.waiting = false;
    this.waiting.delete(d);
  }

  /** The broker link has room: publish the backlog, oldest first, while it lasts. */
  private drainWaiting(): void {
    if (this.waiting.size === 0) return;
    const mono = this.clock.now();
    for (const d of this.waiting) {
      if (this.mqtt?.busy) return;
      this.publishDevice(d, mono);
    }
  }

  private decode(d: DeviceRecord, ad: Advertisement): Decoded[] {
    // The address on the air goes into BTHome's nonce; a key may be configured under either address.
    const decoded = decodeAll({ address: ad.address, serviceData: ad.serviceData, manufacturerData: ad.manufacturerData },
      a => this.keys.get(d.address) ?? this.keys.get(a), this.decoders);
    for (const r of decoded) {
      if (r.counter === undefined || r.error) continue;
      // BTHome replay protection: an encrypted payload must carry a larger counter than the last accepted.
      if (d.counter !== undefined && r.counter <= d.counter && d.counter - r.counter < 0x8000_0000) {
        r.values = {};
        r.error = `replayed or stale encryption counter ${r.counter} (last accepted ${d.counter})`;
        continue;
      }
      d.counter = r.counter;
    }
    return decoded;
  }

  private publishDevice(d: DeviceRecord, mono: number): void {
    const ad = d.ad;
    if (!ad) return;
    if (this.mqtt?.busy) {
      // Into the backlog with its newest report (d.ad, replaced by every report until it goes out).
      this.limiter.release(d);
      if (!d.waiting) {
        d.waiting = true;
        this.waiting.add(d);
      }
      return;
    }
    this.unwait(d);
    d.ad = undefined;
    this.limiter.published(d, mono);
    d.fpLength = fingerprint(ad.data, ad.scanResponse);
    d.fpHashA = fpA;
    d.fpHashB = fpB;
    const decoded = this.decode(d, ad);
    const doc = buildDocument(this.config.id, ad, decoded, d, d.reports, ++this.seq);
    const topic = this.topics.device(d.address);
    this.mqtt?.publish(topic, JSON.stringify(doc), this.config.mqtt.qos, this.config.publish.retain);
    this.stats_.published++;
    if (this.config.homeAssistant.enabled) this.announce(d, ad, decoded, topic);
  }

  private announce(d: DeviceRecord, ad: Advertisement, decoded: readonly Decoded[], stateTopic: string): void {
    for (const r of decoded) {
      for (const m of discoveryMessages({ discoveryPrefix: this.config.homeAssistant.discoveryPrefix, gateway: this.config.id,
        statusTopic: this.topics.status, stateTopic, address: d.address, ...(ad.name ? { name: ad.name } : {}) }, r)) {
        if (this.announced.has(m.topic)) continue;
        this.announced.add(m.topic);
        this.mqtt?.publish(m.topic, m.payload, 1, true);
      }
    }
  }

  // ---- periodic work ------------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.stopping) return;
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = undefined;
      try {
        this.tick();
      } catch (e) {
        this.log.error('tick failed', { error: e });
      }
      this.scheduleTick();
    }, TICK_MS);
  }

  private tick(): void {
    const mono = this.clock.now();
    for (const d of this.limiter.due(mono)) {
      if (this.devices.get(d.address) === d) this.publishDevice(d, mono);
      else this.limiter.forget(d);
    }
    // Expiry: the map is in least-recently-heard order, so stop at the first fresh entry.
    for (const d of this.devices.values()) {
      if (mono - d.lastSeenMono < this.config.deviceTtlMs) break;
      this.forget(d);
    }
    const every = this.config.summaryIntervalMs;
    if (every > 0 && mono - this.lastSummaryAt >= every) this.publishSummary(mono);
  }

  /** The summary document (also published periodically on `<prefix>/<gateway>/summary`, retained). */
  summary(mono = this.clock.now()): Record<string, unknown> {
    const m = this.mqtt?.stats;
    const secs = Math.max(0.001, (mono - this.lastSummaryAt) / 1000);
    const ctl = this.adapter?.controller;
    return {
      gateway: this.config.id,
      time: new Date(this.now()).toISOString(),
      uptimeS: Math.round((mono - this.startedAt) / 1000),
      adapter: this.adapter ? 'open' : 'closed',
      controller: ctl ? { address: ctl.address, version: ctl.version?.coreVersion, manufacturer: ctl.version?.manufacturer } : null,
      devices: this.devices.size,
      reports: this.stats_.reports,
      reportsPerSecond: Math.round((this.stats_.reports - this.lastSummary.reports) / secs),
      published: this.stats_.published,
      messagesPerSecond: Math.round(((m?.delivered ?? 0) - this.lastSummary.delivered) / secs),
      delivered: m?.delivered ?? 0,
      buffered: m?.buffered ?? 0,
      waiting: this.waiting.size,
      dropped: m?.dropped ?? 0,
      evicted: this.stats_.evicted,
      connections: this.conns.size,
      subscriptions: this.commands.subscriptions.size,
      commands: { ok: this.commands.ok, failed: this.commands.failed },
      mqtt: { connected: m?.connected ?? false, connects: m?.connects ?? 0, disconnects: m?.disconnects ?? 0 },
    };
  }

  private publishSummary(mono: number): void {
    const s = this.summary(mono);
    this.lastSummaryAt = mono;
    this.lastSummary = { reports: this.stats_.reports, delivered: this.mqtt?.stats.delivered ?? 0 };
    this.mqtt?.publish(this.topics.summary, JSON.stringify(s), 1, true);
    this.log.info('summary', s);
  }

  // ---- commands -----------------------------------------------------------------------------------

  private async onCommand(payload: Buffer, props: { responseTopic?: string; correlationData?: Buffer } | undefined): Promise<void> {
    let answer: Answer;
    let replyTo = props?.responseTopic && validTopic(props.responseTopic) ? props.responseTopic : undefined;
    try {
      if (this.stopping) throw new GatewayError('EGW_STOPPED', 'the gateway is stopping');
      if (payload.length > this.config.commands.maxPayload) {
        throw new GatewayError('EGW_TOO_LARGE', `command is ${payload.length} bytes; the limit is ${this.config.commands.maxPayload} (commands.maxPayload)`);
      }
      const cmd = parseCommand(payload.toString('utf8'));
      replyTo ??= cmd.responseTopic;
      this.log.info('command', { op: cmd.op, address: cmd.address, id: cmd.id });
      answer = await this.commands.run(cmd);
    } catch (e) {
      answer = { ok: false, error: errorAnswer(e) };
      // A payload we could not parse may still say where to answer and its id (best effort).
      if (payload.length <= this.config.commands.maxPayload) {
        try {
          const o = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
          if (o && typeof o === 'object') {
            if (typeof o['id'] === 'string' || typeof o['id'] === 'number') answer.id = o['id'];
            if (typeof o['op'] === 'string') answer.op = o['op'].slice(0, 40);
            if (!replyTo && typeof o['responseTopic'] === 'string' && validTopic(o['responseTopic'])) replyTo = o['responseTopic'];
          }
        } catch { /* not JSON: answer without an id */ }
      }
    }
    if (!answer.ok) this.log.info('command failed', { op: answer.op, id: answer.id, error: answer['error'] });
    const properties = props?.correlationData ? { correlationData: props.correlationData } : undefined;
    this.mqtt?.publish(replyTo ?? this.topics.response, JSON.stringify(answer), 1, false, properties);
  }

  // ---- stop ---------------------------------------------------------------------------------------

  /** Stop scanning, close the adapter (bounded), publish `offline`, end MQTT. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return this.loop?.then(() => undefined);
    this.stopping = true;
    this.log.info('gateway stopping');
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    this.wake?.();
    this.opening?.abort(new GatewayError('EGW_STOPPED', 'the gateway is stopping'));
    const adapter = this.adapter;
    if (adapter) await adapter.close({ timeout: CLOSE_TIMEOUT_MS }).catch(e => this.log.warn('adapter close failed', { error: e }));
    this.adapterDone?.();
    await this.loop?.catch(() => undefined);
    await this.mqtt?.stop().catch(e => this.log.warn('mqtt stop failed', { error: e }));
    this.log.info('gateway stopped', { reports: this.stats_.reports, published: this.stats_.published });
  }
}

type TimerId = ReturnType<Clock['setTimeout']>;
type CommandRunnerClock = { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(id: never): void };
