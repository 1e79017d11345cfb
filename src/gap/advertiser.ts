/**
 * Advertising (Core Vol 3, Part C, 9.1-9.3; Vol 4, Part E, 7.8.5-7.8.9 legacy, 7.8.52-7.8.60 extended;
 * Vol 6, Part B, 4.4.2): one room of the GAP scheduler (`link/manager.ts`) next to initiating and
 * accepting. An application asks for advertising with `adapter.advertise(options)` and gets an
 * AdvertisingSet handle (`update()`, `stop()`, async dispose).
 *
 * - Command family: the same as the scanner's and the initiator's (a controller refuses to mix legacy
 *   and extended advertising / scanning / initiating commands until Reset, Vol 4, Part E, 3.1.1). A
 *   controller with extended advertising gets extended sets only, legacy PDUs included (event
 *   property bit 4, 7.8.53); a controller without it gets the legacy commands and one set at a time.
 * - Extended sets: several at once up to LE Read Number of Supported Advertising Sets; data and scan
 *   response longer than one command are sent in fragments of at most 251 octets (Operation first /
 *   intermediate / last, 7.8.54-7.8.55), with advertising disabled meanwhile (only a complete
 *   operation is allowed on an enabled set).
 * - The AD is built from the AD table (`buildAd`): a name that does not fit is shortened, and data
 *   that cannot fit fails with AdTooLongError (EADTOOLONG) saying by how many octets.
 * - Ending: a connection ends connectable advertising (Vol 6, Part B, 4.4.2.3). An extended set says
 *   so with LE Advertising Set Terminated (7.7.65.18, Status 0 and the connection handle), a legacy
 *   one only by the connection itself (the acceptor's onAccepted); duration and event limits end a set
 *   with status 0x3C / 0x43, legacy high duty directed advertising with LE Connection Complete 0x3C.
 *   After a connection, a set with `resume` (default true for connectable advertising) is enabled
 *   again, by policy, like a device that stays discoverable for its next central.
 * - Every change to one set runs in order (a per-set queue of HCI command sequences), so update() and
 *   stop() called back to back end in the state of the last call.
 */
import type { Clock, TimerId } from '../clock.js';
import { ArgumentError, HciStatusError, InvalidStateError } from '../errors.js';
import { isUnknownCommand } from '../hci/controller.js';
import type { HciHost } from '../hci/host.js';
import { statusName } from '../hci/status.js';
import { log } from '../log.js';
import { uuid as toUuid, type Uuid } from '../codec/uuid.js';
import { AdFlags, buildAd, EXTENDED_AD_MAX, LEGACY_AD_MAX, type AdContent } from './ad.js';
import type { Acceptor, IncomingConnection } from './acceptor.js';
import { normaliseAddress } from './filters.js';

/** Octets of data one LE Set Extended Advertising / Scan Response Data command carries (255 − 4 header octets, 7.8.54). */
export const EXT_AD_FRAGMENT = 251;

/** Advertising event properties (Vol 4, Part E, 7.8.53). */
export const AdvProps = {
  connectable: 1 << 0,
  scannable: 1 << 1,
  directed: 1 << 2,
  highDutyDirected: 1 << 3,
  legacy: 1 << 4,
  anonymous: 1 << 5,
  includeTxPower: 1 << 6,
} as const;

/** Legacy Advertising_Type (Vol 4, Part E, 7.8.5). */
export const LegacyAdvType = { advInd: 0, directHighDuty: 1, scanInd: 2, nonconnInd: 3, directLowDuty: 4 } as const;

/** Status of LE Advertising Set Terminated / LE Connection Complete that end advertising (Vol 1, Part F). */
const ADVERTISING_TIMEOUT = 0x3c;
const LIMIT_REACHED = 0x43;

export type UuidLike = number | string;
export type BytesLike = Uint8Array | string;

/** What to say: AD content built with the AD table, or raw AD bytes. */
export interface AdvertisingContent {
  /** Local name (written complete, or shortened when it does not fit). */
  name?: string;
  /** Service UUIDs (16-bit numbers, names or UUID strings). */
  services?: UuidLike[];
  serviceData?: Array<[UuidLike, BytesLike]> | Record<string, BytesLike>;
  /** Manufacturer data: [company ID, bytes]. */
  manufacturerData?: Array<[number, BytesLike]>;
  appearance?: number;
  /** Write the TX power the controller selected into the AD (Tx Power Level, Supplement, Part A, 1.5). */
  includeTxPower?: boolean;
  /** Flags (default LE General Discoverable + BR/EDR Not Supported for connectable or scannable legacy advertising; none for non-connectable). */
  flags?: number;
  /** Raw AD bytes instead of the fields above. */
  raw?: Uint8Array;
}

export interface AdvertiseOptions extends AdvertisingContent {
  /** Scan response content (makes the advertising scannable). */
  scanResponse?: AdvertisingContent;
  /** Accept connections (default true). */
  connectable?: boolean;
  /** Answer scan requests (default: when there is a scan response). */
  scannable?: boolean;
  /** Directed advertising to one central (connectable only). */
  directed?: { address: string; addressType?: 'public' | 'random'; highDuty?: boolean };
  /**
   * Legacy PDUs (ADV_IND, ADV_SCAN_IND, ADV_NONCONN_IND, ADV_DIRECT_IND; 31-octet data). Default:
   * legacy unless the data needs more, then extended PDUs (extended controllers only).
   */
  legacy?: boolean;
  /** Advertising interval in ms, or a range (default 100–150 ms; 20 ms – 10.24 s legacy). */
  interval?: number | { min: number; max: number };
  /** Requested TX power in dBm (extended sets; the controller picks at most this). */
  txPower?: number;
  /** Own address type (default: the adapter's: random when it has a static random address). */
  ownAddressType?: 'public' | 'random';
  /** Primary / secondary PHY of extended PDUs (default 1M / 1M). */
  primaryPhy?: '1m' | 'coded';
  secondaryPhy?: '1m' | '2m' | 'coded';
  /** Advertising SID of an extended set (0-15, default the set's handle). */
  sid?: number;
  /** Stop after this many ms (extended: the controller's Duration; legacy: a host timer). */
  duration?: number;
  /** Stop after this many advertising events (extended only). */
  maxEvents?: number;
  /** Enable again after a connection ended the advertising (default: true when connectable). */
  resume?: boolean;
}

export type AdvertisingEndReason = 'stopped' | 'connected' | 'timeout' | 'limit' | 'reset' | 'closed';

/**
 * Where directed advertising to a bonded peer aims (`Advertiser.directedTarget`, the adapter's privacy):
 * - 'controller': the controller's resolving list holds the identity and it does LL Privacy: the
 *   identity goes in Peer_Address with Own_Address_Type 0x02 / 0x03, and the link layer makes TargetA,
 *   an RPA from the peer's IRK (Vol 4, Part E, 7.8.5 / 7.8.53; Vol 6, Part B, 6.4);
 * - 'host': the host resolves; the peer's RPA seen last goes in Peer_Address (type 0x01), as BlueZ's
 *   kernel does (it swaps the identity for the IRK's last resolved RPA before advertising directed);
 * - 'identity': neither (no bond with an IRK, or none of its RPAs seen yet): the address as given.
 */
export interface DirectedTarget {
  readonly by: 'controller' | 'host' | 'identity';
  /** Peer_Address_Type and Peer_Address given to the controller. */
  readonly addressType: 'public' | 'random';
  readonly address: string;
}

/** Settings the advertiser derives from options (what goes on the wire). */
interface Plan {
  legacy: boolean;
  props: number;
  legacyType: number;
  intervalMin: number;
  intervalMax: number;
  ownAddressType: number;
  peerAddressType: number;
  peerAddress: string;
  targetBy: DirectedTarget['by'];
  txPower: number;
  primaryPhy: number;
  secondaryPhy: number;
  sid: number;
  duration: number;
  maxEvents: number;
  includeTxPower: boolean;
}

const PHY = { '1m': 1, '2m': 2, coded: 3 } as const;
const PHY_NAME: Record<number, string> = { 1: '1M', 2: '2M', 3: 'Coded' };
const ZERO = '00:00:00:00:00:00';

/** The host side of advertising: owns the sets of one adapter. */
export class Advertiser {
  private readonly sets = new Map<number, AdvertisingSet>();
  private readonly unsubscribe: Array<() => void> = [];
  /** LE Read Number of Supported Advertising Sets was asked after bring-up (advertise()). */
  private askedSets = false;
  /** Advertising starts, connections received from advertising, resumes (for tests and doctor). */
  readonly stats = { started: 0, connections: 0, resumed: 0 };
  /**
   * How to aim directed advertising at this address (the adapter's resolving list and resolver):
   * 'controller' (identity, Own_Address_Type | 0x02) or 'host' (the RPA to put in Peer_Address);
   * undefined: the address as given.
   */
  directedTarget: (address: string, type: 0 | 1) => { by: 'controller' } | { by: 'host'; rpa: string } | undefined = () => undefined;
  /**
   * A new RPA of our IRK for one extended set (with our privacy; undefined without): each set that
   * advertises from a random address gets its own, from LE Set Advertising Set Random Address
   * (Vol 4, Part E, 7.8.52), and a new one at every rotation, so sets cannot be linked by address.
   */
  setRpa: (() => string) | undefined;
  /**
   * A connection came from an extended set that advertised from its own random address (LE Advertising
   * Set Terminated, 7.7.65.18, names the set): our address on that link is the set's (for SMP's c1 / f5 / f6).
   */
  onSetConnection: ((connectionHandle: number, address: string) => void) | undefined;

  constructor(readonly host: HciHost, readonly clock: Clock, acceptor: Acceptor,
    private readonly ownAddress: () => { type: number; randomAddress: string | undefined }) {
    this.unsubscribe.push(
      host.on('leAdvertisingSetTerminated', e => this.setTerminated(e.status, e.advertisingHandle, e.connectionHandle)),
      acceptor.onAccepted(c => this.accepted(c)),
      host.onClose(() => this.ended('closed')),
      host.onHardwareError(() => this.ended('reset')),
    );
  }

  /** Does this controller get extended advertising commands (the scanner's family choice)? */
  get extended(): boolean {
    const info = this.host.info;
    if (info.isRefused('leSetExtendedAdvertisingParameters')) return false;
    return info.hasLeFeature('extendedAdvertising') || info.inMask('leSetExtendedAdvertisingParameters') ||
      (info.version?.hciVersion ?? 0) >= 9;
  }

  /** Live advertising sets. */
  get active(): AdvertisingSet[] {
    return [...this.sets.values()];
  }

  /** Start advertising; resolves once the controller advertises (or rejects with its error). */
  async advertise(options: AdvertiseOptions = {}): Promise<AdvertisingSet> {
    // A second extended set on a controller whose mask and features did not let bring-up ask how many
    // sets it has (btvirt 5.66 answers 3 with both empty): ask now, once (7.8.58; a refusal means 1).
    if (this.extended && this.sets.size > 0 && this.host.info.numAdvertisingSets === undefined && !this.askedSets) {
      this.askedSets = true;
      const r = await this.host.command({ kind: 'leReadNumberOfSupportedAdvertisingSets' }).catch((e: unknown) => {
        if (e instanceof HciStatusError) return undefined;
        throw e;
      });
      if (r) this.host.info.numAdvertisingSets = r.numSupportedAdvertisingSets;
    }
    const handle = this.freeHandle();
    const set = new AdvertisingSet(this, handle, options);
    this.sets.set(handle, set);
    try {
      await set.start();
    } catch (e) {
      this.sets.delete(handle);
      throw e;
    }
    this.stats.started++;
    return set;
  }

  private freeHandle(): number {
    if (!this.extended) {
      if (this.sets.size > 0) {
        throw new InvalidStateError('advertise: this controller has legacy advertising only, which is one set at a time; stop the current one first');
      }
      return 0;
    }
    const max = Math.min(this.host.info.numAdvertisingSets ?? 1, 0xf0);
    for (let h = 0; h < max; h++) if (!this.sets.has(h)) return h;
    throw new InvalidStateError(`advertise: the controller supports ${max} advertising set(s) and all are in use; stop one first`);
  }

  /** @internal */
  release(set: AdvertisingSet): void {
    if (this.sets.get(set.handle) === set) this.sets.delete(set.handle);
  }

  /** @internal The adapter's own address choice. */
  own(): { type: number; randomAddress: string | undefined } {
    return this.ownAddress();
  }

  private setTerminated(status: number, handle: number, connectionHandle: number): void {
    const set = this.sets.get(handle);
    if (!set) return;
    if (status === 0) {
      this.stats.connections++;
      if (set.address !== undefined && (set.ownAddressType & 1) === 1) this.onSetConnection?.(connectionHandle, set.address);
      set.connected(connectionHandle);
    } else {
      set.ended(status === ADVERTISING_TIMEOUT ? 'timeout' : status === LIMIT_REACHED ? 'limit' : 'stopped', status);
    }
  }

  /** A peripheral-role link: on a legacy controller it ended our (only) connectable set. */
  private accepted(c: IncomingConnection): void {
    if (this.extended) return; // extended sets say which one with LE Advertising Set Terminated
    const set = this.sets.get(0);
    if (!set || !set.connectable) return;
    this.stats.connections++;
    set.connected(c.handle);
  }

  /** @internal LE Connection Complete with Advertising Timeout: legacy high duty directed advertising ended (7.8.9). */
  directedTimeout(): void {
    if (this.extended) return;
    this.sets.get(0)?.ended('timeout', ADVERTISING_TIMEOUT);
  }

  private ended(reason: AdvertisingEndReason): void {
    for (const s of [...this.sets.values()]) s.ended(reason);
  }

  /**
   * Our random address changes (an RPA rotation, Vol 3, Part C, 10.7.1.2): `setAddress` sends LE Set
   * Random Address, which a controller refuses while legacy advertising is enabled (Vol 4, Part E,
   * 7.8.4), so the legacy set is disabled around it and enabled again; an extended set does not
   * use that address but its own (7.8.52), so each one advertising with a random address is given
   * `address` the same way (disabled, LE Set Advertising Set Random Address, enabled again).
   */
  async readdress(address: string, setAddress: () => Promise<void>): Promise<void> {
    if (!this.extended) {
      const set = this.sets.get(0);
      await (set ? set.readdress({ setAddress }) : setAddress());
      return;
    }
    await setAddress();
    for (const set of [...this.sets.values()]) await set.readdress({ address: this.setRpa?.() ?? address });
  }

  /**
   * Run `fn` with every set's advertising disabled, each enabled again afterwards as it was (the
   * controller's resolving list may be changed only then, Vol 4, Part E, 7.8.38 / 7.8.44). Each set
   * is held in its own order of changes, the first set outermost.
   */
  async whileStopped(fn: () => Promise<void>): Promise<void> {
    // fn's failure is held until every set is enabled again (a set's readdress stops at a throw).
    let failure: { error: unknown } | undefined;
    const held = async (): Promise<void> => {
      try { await fn(); } catch (error) { failure = { error }; }
    };
    const run = [...this.sets.values()].reduceRight<() => Promise<void>>((inner, set) => () => set.readdress({ setAddress: inner }), held);
    await run();
    if (failure) throw failure.error;
  }

  /** Stop every set (adapter close). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.sets.values()].map(s => s.stop().catch(() => undefined)));
  }

  dispose(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

/** One advertising set: a handle on what the controller advertises for it. */
export class AdvertisingSet {
  private options: AdvertiseOptions;
  private plan!: Plan;
  private queue: Promise<void> = Promise.resolve();
  private enabledFlag = false;
  private endedReason: AdvertisingEndReason | undefined;
  private durationTimer: TimerId | undefined;
  private readonly endListeners = new Set<(reason: AdvertisingEndReason) => void>();
  private readonly connectionListeners = new Set<(connectionHandle: number) => void>();
  /** TX power the controller selected (extended: from LE Set Extended Advertising Parameters; legacy: LE Read Advertising Physical Channel Tx Power). */
  txPower: number | undefined;
  /** The AD and scan response bytes last given to the controller. */
  advertisingData: Uint8Array = new Uint8Array(0);
  scanResponseData: Uint8Array = new Uint8Array(0);
  /** Connections this set produced. */
  connections = 0;
  /** The random address this extended set was given (7.8.52): with privacy an RPA of its own; undefined for none. */
  address: string | undefined;

  constructor(private readonly owner: Advertiser, readonly handle: number, options: AdvertiseOptions) {
    this.options = options;
  }

  /** Where directed advertising goes (Peer_Address as given to the controller, and why); undefined when undirected. */
  get directedTarget(): DirectedTarget | undefined {
    if ((this.plan.props & AdvProps.directed) === 0) return undefined;
    return { by: this.plan.targetBy, addressType: this.plan.peerAddressType === 1 ? 'random' : 'public', address: this.plan.peerAddress };
  }

  /** @internal Own_Address_Type this set advertises with. */
  get ownAddressType(): number {
    return this.plan.ownAddressType;
  }

  /** Is the controller advertising this set now? */
  get enabled(): boolean {
    return this.enabledFlag;
  }

  get legacy(): boolean {
    return this.plan.legacy;
  }

  get connectable(): boolean {
    return (this.plan.props & AdvProps.connectable) !== 0;
  }

  /** Why the set ended, once it has (it may still resume after 'connected'). */
  get endReason(): AdvertisingEndReason | undefined {
    return this.endedReason;
  }

  /** Called when advertising stops for good ('connected' only when it will not resume). */
  onEnd(fn: (reason: AdvertisingEndReason) => void): () => void {
    this.endListeners.add(fn);
    return () => this.endListeners.delete(fn);
  }

  /** Called with the connection handle of every connection this set produced. */
  onConnection(fn: (connectionHandle: number) => void): () => void {
    this.connectionListeners.add(fn);
    return () => this.connectionListeners.delete(fn);
  }

  /** @internal */
  async start(): Promise<void> {
    this.plan = planOf(this.options, this.owner, this.handle);
    try {
      await this.run(async () => {
        await this.configure();
        await this.enable(true);
      });
    } catch (e) {
      // A Core 5 controller whose mask and features say nothing (emulators) is tried with the extended
      // commands first; Unknown HCI Command means legacy advertising only, from now on.
      // A PHY the controller does not have is refused with the same 0x11: that is not a legacy controller.
      const phyRefused = e instanceof HciStatusError && e.status === 0x11 &&
        (this.plan.primaryPhy !== PHY['1m'] || (!this.plan.legacy && this.plan.secondaryPhy !== PHY['1m']));
      if (!isUnknownCommand(e) || phyRefused || !this.owner.extended || this.handle !== 0) throw e;
      this.owner.host.info.markUnsupported('leSetExtendedAdvertisingParameters');
      this.plan = planOf(this.options, this.owner, this.handle);
      await this.run(async () => {
        await this.configure();
        await this.enable(true);
      });
    }
  }

  /**
   * Change what is advertised (content and / or parameters). Content-only changes of a set whose
   * data fits one command are applied while it advertises; anything else disables it, applies, and
   * enables it again.
   */
  update(options: AdvertiseOptions): Promise<void> {
    if (this.endedReason !== undefined && this.endedReason !== 'connected') {
      return Promise.reject(new InvalidStateError(`advertise: this set has ended (${this.endedReason}); call adapter.advertise() again`));
    }
    const next = { ...this.options, ...options };
    let plan: Plan;
    try {
      plan = planOf(next, this.owner, this.handle);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return this.run(async () => {
      const sameParams = JSON.stringify(plan) === JSON.stringify(this.plan);
      const { adv, rsp } = this.buildData(next, plan);
      this.options = next;
      this.plan = plan;
      if (sameParams && this.enabledFlag && (plan.legacy || (adv.length <= EXT_AD_FRAGMENT && rsp.length <= EXT_AD_FRAGMENT))) {
        await this.writeData(adv, rsp);
        return;
      }
      const was = this.enabledFlag || this.endedReason === 'connected';
      if (this.enabledFlag) await this.enable(false);
      await this.configure();
      if (was) await this.enable(true);
    });
  }

  /** Stop advertising and free the set. Idempotent. */
  stop(): Promise<void> {
    return this.run(async () => {
      if (this.endedReason === 'stopped') return;
      if (this.enabledFlag) await this.enable(false).catch(e => { if (!(e instanceof HciStatusError)) throw e; });
      if (this.owner.extended && this.owner.host.state === 'ready') {
        await this.owner.host.command({ kind: 'leRemoveAdvertisingSet', advertisingHandle: this.handle }).catch(() => undefined);
      }
      this.ended('stopped');
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * @internal A new own address (Advertiser.readdress), in this set's order of changes: a legacy set
   * is disabled while `setAddress` runs; an extended set with a random own address gets `address`.
   * A set that cannot be enabled again afterwards has ended ('reset'), logged, and the rotation goes on.
   */
  readdress(change: { setAddress?: () => Promise<void>; address?: string }): Promise<void> {
    return this.run(async () => {
      // An extended set advertising from our public address keeps it (Own_Address_Type 0x00 / 0x02);
      // 0x03 falls back to the set's random address where the controller has no RPA of ours to use.
      if (change.address !== undefined && (this.plan.ownAddressType & 1) === 0) return;
      const was = this.enabledFlag;
      if (was) await this.enable(false);
      if (change.setAddress) await change.setAddress();
      if (change.address !== undefined) {
        await this.owner.host.command({ kind: 'leSetAdvertisingSetRandomAddress', advertisingHandle: this.handle, randomAddress: change.address });
        this.address = change.address;
      }
      if (!was) return;
      try {
        await this.enable(true);
      } catch (e) {
        log.gap('advertising set %d could not resume after the address changed: %s', this.handle, (e as Error).message);
        this.ended('reset');
      }
    });
  }

  // ---- controller ------------------------------------------------------------------------------

  private run(fn: () => Promise<void>): Promise<void> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private buildData(o: AdvertiseOptions, plan: Plan): { adv: Uint8Array; rsp: Uint8Array } {
    const max = plan.legacy ? LEGACY_AD_MAX : Math.min(this.owner.host.info.maxAdvertisingDataLength ?? EXTENDED_AD_MAX, EXTENDED_AD_MAX);
    const discoverable = (plan.props & (AdvProps.connectable | AdvProps.scannable)) !== 0;
    // Flags go in the advertising data of discoverable advertising (Vol 3, Part C, 11.1.3 / 9.2.4);
    // a non-connectable, non-scannable extended PDU may carry none.
    const flags = o.flags ?? (discoverable || plan.legacy ? AdFlags.LeGeneralDiscoverable | AdFlags.BrEdrNotSupported : undefined);
    const adv = contentBytes(o, max, flags, plan.includeTxPower ? this.txPower : undefined);
    const rsp = o.scanResponse ? contentBytes(o.scanResponse, max, undefined, o.scanResponse.includeTxPower ? this.txPower : undefined) : new Uint8Array(0);
    return { adv, rsp };
  }

  private async configure(): Promise<void> {
    const host = this.owner.host;
    const p = this.plan;
    const own = this.owner.own();
    if (p.legacy && !this.owner.extended) {
      await host.command({
        kind: 'leSetAdvertisingParameters', advertisingIntervalMin: p.intervalMin, advertisingIntervalMax: p.intervalMax,
        advertisingType: p.legacyType, ownAddressType: p.ownAddressType, peerAddressType: p.peerAddressType,
        peerAddress: p.peerAddress, advertisingChannelMap: 0x07, advertisingFilterPolicy: 0,
      });
      if (this.txPower === undefined) {
        const r = await host.command({ kind: 'leReadAdvertisingPhysicalChannelTxPower' }).catch(() => undefined);
        this.txPower = r?.txPowerLevel;
      }
    } else {
      const r = await host.command({
        kind: 'leSetExtendedAdvertisingParameters', advertisingHandle: this.handle, advertisingEventProperties: p.props,
        primaryAdvertisingIntervalMin: p.intervalMin, primaryAdvertisingIntervalMax: p.intervalMax,
        primaryAdvertisingChannelMap: 0x07, ownAddressType: p.ownAddressType, peerAddressType: p.peerAddressType,
        peerAddress: p.peerAddress, advertisingFilterPolicy: 0, advertisingTxPower: p.txPower,
        primaryAdvertisingPhy: p.primaryPhy, secondaryAdvertisingMaxSkip: 0, secondaryAdvertisingPhy: p.secondaryPhy,
        advertisingSid: p.sid, scanRequestNotificationEnable: 0,
      }).catch((e: unknown) => {
        // Unsupported Feature or Parameter Value (0x11): the controller has no such PHY (7.8.53).
        if (e instanceof HciStatusError && e.status === 0x11 && (p.primaryPhy !== 1 || p.secondaryPhy !== 1)) {
          throw new HciStatusError(e.status, e.statusName, e.command, e.opcode,
            `this controller does not advertise on the ${PHY_NAME[p.primaryPhy]} primary / ${PHY_NAME[p.secondaryPhy]} secondary PHY; ask for primaryPhy '1m' / secondaryPhy '1m'`);
        }
        throw e;
      });
      this.txPower = r.selectedTxPower;
      // A set advertising with a random address needs its own (7.8.52): with our privacy an RPA of its
      // own (kept until the next rotation, also across update()), else the adapter's static address. With
      // 0x03 it is the fallback for a peer the resolving list does not hold (7.8.53).
      if ((p.ownAddressType & 1) === 1 && own.randomAddress) {
        const address = this.address ?? this.owner.setRpa?.() ?? own.randomAddress;
        await host.command({ kind: 'leSetAdvertisingSetRandomAddress', advertisingHandle: this.handle, randomAddress: address });
        this.address = address;
      }
    }
    const { adv, rsp } = this.buildData(this.options, p);
    await this.writeData(adv, rsp, true);
  }

  /** Advertising and scan response data; `all` also sends empty data (after new parameters). */
  private async writeData(adv: Uint8Array, rsp: Uint8Array, all = false): Promise<void> {
    const host = this.owner.host;
    const scannable = (this.plan.props & AdvProps.scannable) !== 0;
    if (!this.owner.extended) {
      if (all || !equal(adv, this.advertisingData)) await host.command({ kind: 'leSetAdvertisingData', advertisingData: adv });
      if (all || !equal(rsp, this.scanResponseData)) await host.command({ kind: 'leSetScanResponseData', scanResponseData: rsp });
    } else {
      // Directed and connectable extended PDUs carry no scan response; a legacy directed PDU no data at all.
      const directedLegacy = this.plan.legacy && (this.plan.props & AdvProps.directed) !== 0;
      if (!directedLegacy && (all || !equal(adv, this.advertisingData))) {
        await this.fragments(adv, (operation, data) => host.command({
          kind: 'leSetExtendedAdvertisingData', advertisingHandle: this.handle, operation, fragmentPreference: 1, advertisingData: data,
        }));
      }
      if (scannable && (all || !equal(rsp, this.scanResponseData))) {
        await this.fragments(rsp, (operation, data) => host.command({
          kind: 'leSetExtendedScanResponseData', advertisingHandle: this.handle, operation, fragmentPreference: 1, scanResponseData: data,
        }));
      }
    }
    this.advertisingData = adv;
    this.scanResponseData = rsp;
  }

  /** Operation 3 complete, or 1 first / 0 intermediate / 2 last fragments of ≤ 251 octets (7.8.54). */
  private async fragments(data: Uint8Array, send: (operation: number, d: Uint8Array) => Promise<unknown>): Promise<void> {
    if (data.length <= EXT_AD_FRAGMENT) {
      await send(3, data);
      return;
    }
    for (let o = 0; o < data.length; o += EXT_AD_FRAGMENT) {
      const end = Math.min(data.length, o + EXT_AD_FRAGMENT);
      await send(o === 0 ? 1 : end === data.length ? 2 : 0, data.subarray(o, end));
    }
  }

  private async enable(on: boolean): Promise<void> {
    const host = this.owner.host;
    if (!this.owner.extended) {
      await host.command({ kind: 'leSetAdvertisingEnable', enable: on ? 1 : 0 });
      this.clearDuration();
      if (on && this.plan.duration > 0) {
        // Legacy advertising has no controller duration: a host timer stops it (except high duty
        // directed, which the controller ends itself after 1.28 s, Vol 4, Part E, 7.8.9).
        this.durationTimer = this.owner.clock.setTimeout(() => {
          this.durationTimer = undefined;
          void this.run(async () => {
            if (!this.enabledFlag) return;
            await this.enable(false).catch(() => undefined);
            this.ended('timeout');
          });
        }, this.plan.duration);
      }
    } else {
      await host.command({
        kind: 'leSetExtendedAdvertisingEnable', enable: on ? 1 : 0,
        sets: [{ advertisingHandle: this.handle, duration: on ? this.plan.duration : 0, maxExtendedAdvertisingEvents: on ? this.plan.maxEvents : 0 }],
      });
    }
    this.enabledFlag = on;
    if (on) this.endedReason = undefined;
  }

  private clearDuration(): void {
    if (this.durationTimer !== undefined) this.owner.clock.clearTimeout(this.durationTimer);
    this.durationTimer = undefined;
  }

  /** @internal A connection ended this set's advertising: resume it by policy. */
  connected(connectionHandle: number): void {
    this.enabledFlag = false;
    this.clearDuration();
    this.connections++;
    for (const fn of [...this.connectionListeners]) {
      try { fn(connectionHandle); } catch (e) { log.gap('advertising connection listener threw: %O', e); }
    }
    const resume = this.options.resume ?? this.connectable;
    if (!resume || this.endedReason === 'stopped') {
      this.ended('connected');
      return;
    }
    this.endedReason = 'connected';
    void this.run(async () => {
      if (this.endedReason !== 'connected' || this.owner.host.state !== 'ready') return;
      await this.enable(true);
      this.owner.stats.resumed++;
    }).catch(e => {
      // A controller that cannot advertise while connected (Command Disallowed) keeps the set idle.
      log.gap('advertising set %d could not resume after a connection: %s', this.handle, (e as Error).message);
      this.ended('connected');
    });
  }

  /** @internal */
  ended(reason: AdvertisingEndReason, status?: number): void {
    this.enabledFlag = false;
    this.clearDuration();
    if (this.endedReason !== undefined && this.endedReason !== 'connected') return;
    this.endedReason = reason;
    this.owner.release(this);
    if (status !== undefined) log.gap('advertising set %d ended: %s (%s)', this.handle, reason, statusName(status));
    for (const fn of [...this.endListeners]) {
      try { fn(reason); } catch (e) { log.gap('advertising end listener threw: %O', e); }
    }
  }
}

// ---- option checks and encoding ---------------------------------------------------------------------

const utf8 = new TextEncoder();
const bytesOf = (v: BytesLike): Uint8Array => (typeof v === 'string' ? utf8.encode(v) : v);
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function uuidsOf(list: UuidLike[] | undefined, what: string): Uuid[] {
  return (list ?? []).map(u => {
    try {
      return toUuid(u);
    } catch {
      throw new ArgumentError(`advertise: ${what} ${JSON.stringify(u)} is not a UUID (a 16-bit number, a known name or a 128-bit UUID)`);
    }
  });
}

/** The AD bytes of one content block, within `max` octets (AdTooLongError when it cannot fit). */
function contentBytes(c: AdvertisingContent, max: number, flags: number | undefined, txPower: number | undefined): Uint8Array {
  if (c.raw) {
    if (c.raw.length > max) throw new ArgumentError(`advertise: raw advertising data of ${c.raw.length} octets is ${c.raw.length - max} more than the ${max} available`);
    return c.raw;
  }
  const sd = c.serviceData === undefined ? [] : Array.isArray(c.serviceData) ? c.serviceData : Object.entries(c.serviceData);
  const content: AdContent = {
    ...(flags !== undefined ? { flags } : {}),
    ...(c.name !== undefined ? { name: c.name } : {}),
    ...(c.services?.length ? { serviceUuids: uuidsOf(c.services, 'service') } : {}),
    ...(txPower !== undefined ? { txPower } : {}),
    ...(c.appearance !== undefined ? { appearance: c.appearance } : {}),
    ...(sd.length ? { serviceData: sd.map(([u, d]) => [uuidsOf([u], 'service data UUID')[0]!, bytesOf(d)] as [Uuid, Uint8Array]) } : {}),
    ...(c.manufacturerData?.length ? { manufacturerData: c.manufacturerData.map(([id, d]) => [id, bytesOf(d)] as [number, Uint8Array]) } : {}),
  };
  return buildAd(content, { maxLength: max });
}

/** Rough AD size of the content without a name (to pick legacy or extended PDUs by default). */
function fitsLegacy(o: AdvertiseOptions): boolean {
  try {
    contentBytes({ ...o, ...(o.name !== undefined ? { name: o.name.slice(0, 1) } : {}) }, LEGACY_AD_MAX, 0x06, o.includeTxPower ? 0 : undefined);
    if (o.scanResponse) contentBytes(o.scanResponse, LEGACY_AD_MAX, undefined, undefined);
    return true;
  } catch {
    return false;
  }
}

function intervalUnits(ms: number, what: string, max: number): number {
  const u = Math.round(ms / 0.625);
  if (!Number.isFinite(ms) || u < 0x20 || u > max) {
    throw new ArgumentError(`advertise: ${what} ${ms} ms is outside 20 ms – ${(max * 0.625).toFixed(0)} ms (Vol 4, Part E, 7.8.5 / 7.8.53)`);
  }
  return u;
}

function planOf(o: AdvertiseOptions, owner: Advertiser, handle: number): Plan {
  const extendedController = owner.extended;
  const connectable = o.connectable ?? true;
  const directed = o.directed;
  if (directed && !connectable) throw new ArgumentError('advertise: directed advertising is connectable; drop connectable: false');
  const hasRsp = o.scanResponse !== undefined;
  // A secondary PHY or the Coded primary PHY exists only for extended PDUs (Vol 4, Part E, 7.8.53).
  const phyAsked = o.secondaryPhy !== undefined || (o.primaryPhy ?? '1m') !== '1m';
  if (o.primaryPhy !== undefined && o.primaryPhy !== '1m' && o.primaryPhy !== 'coded') throw new ArgumentError(`advertise: primaryPhy ${String(o.primaryPhy)} is not '1m' or 'coded' (Vol 4, Part E, 7.8.53)`);
  if (o.secondaryPhy !== undefined && !(o.secondaryPhy in PHY)) throw new ArgumentError(`advertise: secondaryPhy ${String(o.secondaryPhy)} is not '1m', '2m' or 'coded' (Vol 4, Part E, 7.8.53)`);
  if (phyAsked && o.legacy === true) {
    throw new ArgumentError('advertise: legacy PDUs go on the 1M PHY and have no secondary PHY; drop legacy: true to advertise extended PDUs (Vol 4, Part E, 7.8.53)');
  }
  if (phyAsked && !extendedController) {
    throw new ArgumentError('advertise: primaryPhy / secondaryPhy need extended advertising (Core 5.0), which this controller does not have');
  }
  const legacy = o.legacy ?? (!extendedController || (!phyAsked && fitsLegacy(o)));
  if (!legacy && !extendedController) {
    throw new ArgumentError('advertise: this controller has no extended advertising (Core 5.0); keep the data within 31 octets or use legacy: true');
  }
  let scannable = o.scannable ?? hasRsp;
  if (!legacy && connectable && scannable) {
    // Extended PDUs are connectable or scannable, not both (Vol 4, Part E, 7.8.53).
    if (o.scannable) throw new ArgumentError('advertise: extended advertising cannot be both connectable and scannable; put the scan response data in the advertising data');
    scannable = false;
  }
  if (legacy && connectable && !directed) scannable = true; // ADV_IND is always scannable
  if (hasRsp && !scannable) throw new ArgumentError('advertise: a scan response needs scannable advertising');
  let props = (connectable ? AdvProps.connectable : 0) | (scannable ? AdvProps.scannable : 0) | (legacy ? AdvProps.legacy : 0);
  if (directed) props = (props & ~AdvProps.scannable) | AdvProps.directed | (directed.highDuty ? AdvProps.highDutyDirected : 0);
  const legacyType = directed
    ? (directed.highDuty ? LegacyAdvType.directHighDuty : LegacyAdvType.directLowDuty)
    : connectable ? LegacyAdvType.advInd : scannable ? LegacyAdvType.scanInd : LegacyAdvType.nonconnInd;
  const range = typeof o.interval === 'number' ? { min: o.interval, max: o.interval } : o.interval ?? { min: 100, max: 150 };
  const limit = legacy && !extendedController ? 0x4000 : 0xffffff;
  const intervalMin = intervalUnits(range.min, 'interval', limit);
  const intervalMax = intervalUnits(range.max, 'interval', limit);
  if (intervalMin > intervalMax) throw new ArgumentError(`advertise: interval min ${range.min} ms is above max ${range.max} ms`);
  const own = owner.own();
  const ownAddressType = o.ownAddressType === undefined ? own.type : o.ownAddressType === 'random' ? 1 : 0;
  if ((ownAddressType & 1) === 1 && !own.randomAddress) {
    throw new ArgumentError('advertise: ownAddressType random needs a random address: open the adapter with randomAddress');
  }
  // Directed to a bonded peer that uses privacy (see DirectedTarget): its identity for a controller
  // that resolves it, else its RPA seen last.
  let peerAddressType = directed?.addressType === 'random' ? 1 : 0;
  let peerAddress = directed ? normaliseAddress(directed.address) : ZERO;
  let ownType = ownAddressType;
  let targetBy: DirectedTarget['by'] = 'identity';
  const aim = directed ? owner.directedTarget(peerAddress, peerAddressType as 0 | 1) : undefined;
  if (aim?.by === 'controller') {
    ownType = ownAddressType | 2;
    targetBy = 'controller';
  } else if (aim?.by === 'host') {
    peerAddressType = 1;
    peerAddress = aim.rpa.toUpperCase();
    targetBy = 'host';
  }
  if (o.txPower !== undefined && (!Number.isInteger(o.txPower) || o.txPower < -127 || o.txPower > 20)) {
    throw new ArgumentError(`advertise: txPower ${o.txPower} dBm is outside -127..20 (Vol 4, Part E, 7.8.53)`);
  }
  if (o.sid !== undefined && (!Number.isInteger(o.sid) || o.sid < 0 || o.sid > 15)) throw new ArgumentError(`advertise: sid ${o.sid} is outside 0..15`);
  // High duty cycle directed advertising lasts at most 1.28 s (Vol 6, Part B, 4.4.2.4.3): a legacy
  // controller ends it itself; an extended set must say so in its Duration, 1..128 × 10 ms (7.8.56).
  const highDuty = directed?.highDuty === true;
  if (highDuty && o.duration !== undefined && !(o.duration > 0 && o.duration <= 1280)) {
    throw new ArgumentError(`advertise: high duty directed advertising lasts at most 1.28 s (Vol 6, Part B, 4.4.2.4.3); duration ${o.duration} ms`);
  }
  const duration = highDuty
    ? (extendedController ? Math.ceil((o.duration ?? 1280) / 10) : 0)
    : o.duration === undefined ? 0 : extendedController ? Math.ceil(o.duration / 10) : o.duration;
  if (extendedController && (duration < 0 || duration > 0xffff)) throw new ArgumentError(`advertise: duration ${o.duration} ms is outside 10 ms – 655.35 s`);
  if (o.maxEvents !== undefined && (!extendedController || o.maxEvents < 0 || o.maxEvents > 255)) {
    throw new ArgumentError('advertise: maxEvents is 0..255 and needs extended advertising');
  }
  if (legacy && (o.primaryPhy ?? '1m') !== '1m') throw new ArgumentError('advertise: legacy PDUs go on the 1M PHY only');
  return {
    legacy, props, legacyType, intervalMin, intervalMax, ownAddressType: ownType,
    peerAddressType, peerAddress, targetBy,
    txPower: o.txPower ?? 127,
    primaryPhy: PHY[o.primaryPhy ?? '1m'],
    secondaryPhy: legacy ? 1 : PHY[o.secondaryPhy ?? '1m'],
    sid: o.sid ?? (handle & 0x0f),
    duration,
    maxEvents: o.maxEvents ?? 0,
    includeTxPower: o.includeTxPower ?? false,
  };
}

