/**
 * Adapter: the application's handle on one controller. Opens the transport (optionally recording a
 * capture), brings the controller up, and offers scanning, `find()`, connecting and the device
 * registry. One Adapter owns one HciHost, one Scanner and one ConnectionManager; on a Hardware Error
 * it re-initialises the controller itself (links are reported lost) and emits 'reset'.
 *
 * Every awaitable takes `{ timeout, signal }` (open in its options, reset and close as their last
 * parameter; connect, find and scan in theirs). An already-aborted signal rejects before anything is
 * sent. A deadline or abort during open or reset rejects at once; HCI commands still queued in the
 * host are withdrawn, one already with the controller cannot be (it answers into the void), and a
 * failed open closes the transport it opened.
 */
import { systemClock, type Clock } from '../clock.js';
import { AbortError, ArgumentError, InvalidStateError, TimeoutError } from '../errors.js';
import { log } from '../log.js';
import { envVar } from '../platform/env.js';
import { EventEmitter } from '../platform/events.js';
import type { ControllerInfo } from '../hci/controller.js';
import { HciHost } from '../hci/host.js';
import type { HciTransport } from '../transport/types.js';
import type { ConnectOptions, ConnectTarget, DisconnectReason } from '../gap/connections.js';
import type { LeLink } from '../link/link.js';
import { ConnectionManager } from '../link/manager.js';
import { abortedError, deadline, guarded, type OperationOptions } from '../operation.js';
import type { ScanFilter } from '../gap/filters.js';
import { Advertisement, Scanner, type AddressType, type ScanOptions, type ScanSession } from '../gap/scanner.js';
import { Connection } from './connection.js';
import type { AdvertiseOptions, AdvertisingSet } from '../gap/advertiser.js';
import { IncomingQueue } from './incoming.js';
import { FileGattCache, type GattCache } from '../gatt/cache.js';
import { CocRegistry, type ChannelListener, type ListenOptions } from '../l2cap/coc.js';
import type { GattClientOptions } from '../gatt/client.js';
import { checkPolicy, type PairingEntropy, type PairingPolicy, type SecurityContext } from '../link/pairing.js';
import { PairingAttempts } from '../smp/attempts.js';
import { FileBondStore, MemoryBondStore, type Bond, type BondStore, type LocalIdentityKeys } from '../smp/bonds.js';
import { GattServer, type GapIdentity, type ServedService, type ServeOptions } from '../gatt/server/server.js';
import {
  AddressResolver, DEFAULT_RPA_INTERVAL_MS, generateRpa, LocalPrivacy, newLocalIdentity, RPA_INTERVAL_RANGE_S, staticRandomAddress,
  type PeerIdentity,
} from '../gap/privacy.js';
import type { SmpAddress } from '../smp/session.js';
import { normaliseAddress } from '../gap/filters.js';
import { ControllerResolvingList, LOCAL_ENTRY } from '../gap/resolving-list.js';

export interface AdapterOpenOptions {
  /** A transport spec ('hci0', 'unix:/path', 'sim', …; default env BLEWIRE_TRANSPORT) or an open transport. */
  transport?: string | HciTransport;
  /** Record every packet to this capture file (btsnoop / pcap by extension; default env BLEWIRE_CAPTURE). */
  capture?: string;
  clock?: Clock;
  /** Use a static random address: a given one, or `true` for a fresh one. */
  randomAddress?: string | true;
  /**
   * LE privacy for our own address (Core Vol 3, Part C, 10.7): scan, initiate and advertise from a
   * resolvable private address made from our IRK, a new one every `rotateSeconds` (default 900, as
   * BlueZ and Zephyr; 1-41400, the range of Vol 4, Part E, 7.8.45), and give bonding peers our IRK
   * and identity address so they can recognise us. The IRK and a static random address are made once
   * and kept in the bond store (`local-identity.json` of the file store).
   */
  privacy?: boolean | PrivacyOptions;
  /** HCI command timeout in ms (default 5000). */
  commandTimeout?: number;
  /** Devices the registry keeps (least recently seen are evicted; default 4096). */
  registryCapacity?: number;
  /** Re-initialise after a Hardware Error (default true). */
  recover?: boolean;
  /** Our ATT receive MTU offered in Exchange MTU (default 517, the largest a value needs). */
  mtu?: number;
  /**
   * Persistent GATT cache validated by each peer's Database Hash: a directory for the file store, a
   * GattCache, or false for none (default: none; the CLI uses ~/.cache/blewire/gatt).
   */
  gattCache?: string | GattCache | false;
  /**
   * Per-link GATT behaviour: robust caching (write Client Supported Features, default true), Service
   * Changed subscription (default true), our own GAP/GATT server (default ours; false answers Request
   * Not Supported), and `trustCache` (use a stored tree with no Database Hash check at all: fast,
   * and wrong if the device changed; only for devices you control, like Bleak's
   * dangerous_use_bleak_cache).
   */
  gatt?: Pick<GattClientOptions, 'robustCaching' | 'serviceChanged' | 'server' | 'trustCache'>;
  /**
   * Pairing: the default policy and handlers of every link (io, bond, mitm, secureConnectionsOnly,
   * minKeySize, onPasskeyDisplay / onPasskeyRequest / onNumericComparison, what a Security Request
   * does), or false to refuse pairing (Pairing Not Supported). Each conn.pair() call may override it.
   */
  pairing?: PairingPolicy | false;
  /**
   * Where bonds are kept: a directory for the file store, a BondStore, or false for memory only
   * (default: files under $XDG_STATE_HOME/blewire/bonds, else ~/.local/state/blewire/bonds).
   */
  bonds?: string | BondStore | false;
  /**
   * FOR TESTS AND REPLAY ONLY: where pairing takes its random values and P-256 key pairs, and (with
   * `privacy`) the random part of our RPAs (default the OS CSPRNG). A recorded pairing replays byte for byte only when both runs draw the same values
   * (src/tooling/entropy.ts makes a seeded source for scenarios). Whoever knows the source knows the
   * keys of every pairing made with it: never set this on a device people use.
   */
  pairingEntropy?: PairingEntropy;
  /**
   * Give up on opening the transport and bringing the controller up after this many ms
   * (TimeoutError). Default: no overall limit; each HCI command still has `commandTimeout`
   * (HCI_Reset at least 10 s), so open() always ends.
   */
  timeout?: number;
  signal?: AbortSignal;
}

export interface PrivacyOptions {
  /** Seconds between our RPAs (default 900, T_GAP(private_addr_int), Vol 3, Part C, Appendix A). */
  rotateSeconds?: number;
}

/** Our privacy as the application sees it (adapter.privacy). */
export interface LocalPrivacyInfo {
  /** The resolvable private address the controller uses now (Vol 6, Part B, 1.3.2.2). */
  readonly address: string;
  /** Our identity address, which bonding peers receive (Vol 3, Part H, 3.6.5). */
  readonly identity: PeerIdentity;
  /** Our IRK, least significant octet first (as Identity Information carries it). */
  readonly irk: Uint8Array;
  readonly rotateSeconds: number;
  /** Addresses applied so far (the first included). */
  readonly rotations: number;
  /** Change the address now (between connection attempts) and restart the period; resolves with it. */
  rotate(): Promise<string>;
  /**
   * Who makes the address undirected advertising goes out from: 'controller' when it claims LL Privacy
   * and holds our IRK in its resolving list (Own_Address_Type 0x03; it makes a new RPA every
   * `rotateSeconds` by itself, Vol 4, Part E, 7.8.45), else 'host' (`address`, LE Set Random Address).
   */
  readonly advertisingRpa: 'controller' | 'host';
  /**
   * The RPA undirected advertising uses now: the controller's (LE Read Local Resolvable Address for
   * our entry, Vol 4, Part E, 7.8.43) when it makes it; else the set's own RPA for an extended set (each
   * gets one, LE Set Advertising Set Random Address, 7.8.52), and `address` for a legacy one or no set.
   */
  advertisingAddress(set?: AdvertisingSet): Promise<string>;
}

/**
 * A resolved report younger than this names a bonded device's current RPA for connect-by-identity
 * (an RPA lives 15 min by default, Vol 3, Part C, Appendix A; a device may rotate sooner).
 */
const RPA_REPORT_FRESH_MS = 5_000;

/** How long close() waits for scanning to stop and links to go down before closing the transport. */
const CLOSE_GRACE_MS = 2000;
const BOND_STORE_HINT = 'the bond store (option `bonds`) did not answer';
const OPEN_HINT = 'is the controller powered and answering HCI commands? `blewire doctor` checks the transport';

export interface FindOptions extends ScanFilter {
  filters?: ScanFilter[];
  /** Give up after this many ms and resolve undefined (default 10 s). */
  timeout?: number;
  signal?: AbortSignal;
  active?: boolean;
}

/** One entry of the device registry. */
export interface DeviceInfo {
  address: string;
  addressType: AddressType;
  /** RSSI of the last report (dBm). */
  rssi: number;
  /** Clock ms of the last / first report. */
  lastSeen: number;
  firstSeen: number;
  reports: number;
  /** The last advertisement reported for it (merged with its scan response). */
  advertisement: Advertisement | undefined;
  /** A bonded device's identity address (its RPA resolved with the bond's IRK), else undefined. */
  identity: PeerIdentity | undefined;
}

export interface AdapterEvents {
  advertisement: [ad: Advertisement];
  connection: [conn: Connection];
  disconnect: [conn: Connection, reason: DisconnectReason];
  hardwareError: [code: number];
  reset: [info: ControllerInfo];
  close: [error: Error | undefined];
}

export { staticRandomAddress };

/** The RPA period in ms from the options, or ArgumentError. */
function rotateMsOf(p: AdapterOpenOptions['privacy']): number {
  if (typeof p !== 'object' || p.rotateSeconds === undefined) return DEFAULT_RPA_INTERVAL_MS;
  const s = p.rotateSeconds;
  if (typeof s !== 'number' || !Number.isFinite(s) || s < RPA_INTERVAL_RANGE_S.min || s > RPA_INTERVAL_RANGE_S.max) {
    throw new ArgumentError(`privacy.rotateSeconds ${String(s)} is outside ${RPA_INTERVAL_RANGE_S.min}..${RPA_INTERVAL_RANGE_S.max} (Vol 4, Part E, 7.8.45)`);
  }
  return Math.round(s * 1000);
}

function bondStoreOf(opts: AdapterOpenOptions): BondStore {
  return typeof opts.bonds === 'string' ? new FileBondStore(opts.bonds)
    : opts.bonds === false ? new MemoryBondStore() : opts.bonds ?? new FileBondStore();
}

/** Our privacy keys from the bond store, made and saved there the first time. */
async function localIdentityOf(store: BondStore): Promise<LocalIdentityKeys> {
  const kept = await store.loadLocalIdentity?.();
  if (kept) return kept;
  const fresh = newLocalIdentity();
  await store.saveLocalIdentity?.(fresh);
  return fresh;
}

const ZERO_ADDRESS = '00:00:00:00:00:00';

export class Adapter extends EventEmitter<AdapterEvents> {
  readonly scanner: Scanner;
  readonly connectionManager: ConnectionManager;
  private readonly conns = new Map<number, Connection>();
  /** The static random address of the options, if any. */
  private readonly staticAddress: string | undefined;
  /** Our RPA and its rotation, when opened with privacy. */
  private readonly localPrivacy: LocalPrivacy | undefined;
  /** The RPA the controller has now (set when LE Set Random Address succeeds). */
  private rpa: string | undefined;

  private readonly gattCache: GattCache | undefined;
  /** The PSMs we listen on for credit-based channels, shared by every link of either role. */
  private readonly channelRegistry: CocRegistry;
  /** Incoming (peripheral-role) connections for accept() iterators. */
  private readonly incoming = new IncomingQueue<Connection>();
  /** Our GATT server: GAP, GATT and the services given to serve(). */
  private readonly gattServer: GattServer<Connection>;
  /** The bond store of every link of this adapter. */
  readonly bondStore: BondStore;
  /**
   * Bonded identities and their IRKs: resolves the resolvable private addresses of bonded peers in scan
   * reports, incoming and outgoing connections and connect-by-identity (gap/privacy.ts). Loaded from
   * the bond store at open, kept in step with every bond stored or removed through this adapter.
   */
  readonly resolver = new AddressResolver();
  /**
   * The controller's resolving list (gap/resolving-list.ts): the bonded IRKs (as many as fit) given to
   * a controller that has one, so it resolves those peers' RPAs itself; the resolver above covers the rest.
   */
  readonly resolvingList: ControllerResolvingList;
  private readonly bondsLoaded: Promise<void>;
  /**
   * The chain of read-modify-writes of stored bonds (CCCD values, SignCounters; updateBond): one at a
   * time, so none saves a bond another has changed since it read it (a SignCounter must never go back).
   * Never rejects.
   */
  private bondWrites: Promise<void> = Promise.resolve();
  /** Bond saves started by pairing, settled or not (each bond update waits for those begun before it). */
  private bondSaves: Promise<unknown> = Promise.resolve();
  private pairingPolicy: PairingPolicy;
  /**
   * The scanner listener that emits 'advertisement', subscribed only while that event has listeners:
   * asking EventEmitter per report whether anyone listens cost about 8 ns of a report's 0.5 µs
   * (issue 14). Kept in step by 'newListener' / 'removeListener' (watchAdvertisementListeners).
   */
  private advertisementFeed: (() => void) | undefined;

  /** Hooks that keep advertisementFeed in step with the 'advertisement' listeners. */
  private watchAdvertisementListeners(): void {
    const events = this as EventEmitter;
    events.on('newListener', (name: string | symbol) => {
      // Emitted before the listener is added: there will be one.
      if (name === 'advertisement') this.syncAdvertisementFeed(true);
    });
    events.on('removeListener', (name: string | symbol) => { if (name === 'advertisement') this.syncAdvertisementFeed(); });
    this.syncAdvertisementFeed();
  }

  /** Subscribe or unsubscribe the feed to match the listeners (`coming`: one is about to be added). */
  private syncAdvertisementFeed(coming = false): void {
    const want = coming || this.listenerCount('advertisement') > 0;
    if (want && this.advertisementFeed === undefined) {
      this.advertisementFeed = this.scanner.onAdvertisement(ad => { this.emit('advertisement', ad); });
    } else if (!want && this.advertisementFeed !== undefined) {
      this.advertisementFeed();
      this.advertisementFeed = undefined;
    }
  }

  /** EventEmitter's, then the hooks it removed with everything else are put back (the feed follows the listeners). */
  override removeAllListeners(eventName?: keyof AdapterEvents): this {
    // EventEmitter tells "all" from an event named undefined by the number of arguments.
    if (eventName === undefined) {
      super.removeAllListeners();
      this.watchAdvertisementListeners();
    } else {
      super.removeAllListeners(eventName);
      this.syncAdvertisementFeed();
    }
    return this;
  }

  private constructor(readonly host: HciHost, readonly clock: Clock, private readonly opts: AdapterOpenOptions,
    bondStore: BondStore, private readonly localKeys: LocalIdentityKeys | undefined, initialBonds?: readonly Bond[]) {
    super();
    this.gattCache = typeof opts.gattCache === 'string' ? new FileGattCache(opts.gattCache) : opts.gattCache || undefined;
    this.staticAddress = opts.randomAddress === true ? staticRandomAddress() : opts.randomAddress;
    if (localKeys) {
      this.localPrivacy = new LocalPrivacy({
        irk: localKeys.irk, clock, intervalMs: rotateMsOf(opts.privacy),
        // A recorded session's RPAs replay only when their prand comes from its seed (tests and replay only).
        ...(opts.pairingEntropy?.random ? { random: opts.pairingEntropy.random } : {}),
        // Between connection attempts, scanning paused, legacy advertising off (Vol 4, Part E, 7.8.4).
        apply: rpa => this.connectionManager.initiator.exclusive(() => this.connectionManager.advertiser.readdress(rpa, async () => {
          await this.host.command({ kind: 'leSetRandomAddress', randomAddress: rpa });
          this.rpa = rpa;
        })),
      });
      this.rpa = this.localPrivacy.address;
    }
    // Own_Address_Type (Vol 4, Part E, 7.8.10 / 7.8.12): with our privacy and a controller with LL
    // Privacy resolving for us, 0x03 (the controller makes our RPA for a listed peer from our IRK, else
    // uses the random address we set, our current RPA); else 0x01 for a random address, 0x00 for the public one.
    const own = () => (this.randomAddress === undefined ? 0 : this.localPrivacy && this.resolvingList.resolves ? 3 : 1);
    this.resolvingList = new ControllerResolvingList(host, {
      quiet: fn => this.connectionManager.initiator.exclusive(() => this.connectionManager.advertiser.whileStopped(fn)),
      localIrk: () => localKeys?.irk,
      ...(localKeys ? { rpaTimeoutSeconds: rotateMsOf(opts.privacy) / 1000 } : {}),
    });
    this.channelRegistry = new CocRegistry(clock);
    this.bondStore = bondStore;
    this.pairingPolicy = opts.pairing || {};
    // Bonded identities and IRKs for the resolver: open() reads the list before the transport opens
    // (a transport with virtual time would run on during file I/O, and reports heard before the list
    // is in could not be resolved); without it, read in the background (connect() by identity waits).
    this.bondsLoaded = (initialBonds ? Promise.resolve(initialBonds) : this.bondStore.list()).then(bonds => {
      for (const b of bonds) {
        if (!this.resolver.bonded(b.identity.address, b.identity.type === 0 ? 'public' : 'random')) this.resolver.add(b);
        // What each bonded client subscribed to on our GATT server, back for its next encrypted link.
        if (b.cccds) this.gattServer.preload(identityKey(b.identity), b.cccds);
      }
    }, e => log.smp('bond store not listed: %s', (e as Error).message));
    // The store as pairing sees it: a new bond starts with no subscriptions at once (not when its save
    // completes, which would erase what the client subscribed to meanwhile), and its save is awaited
    // by the CCCD writer below.
    const store = this.bondStore;
    const pairingStore: BondStore = {
      load: id => store.load(id),
      save: bond => {
        this.gattServer.forget(identityKey(bond.identity));
        // After the bond updates already queued (one that read the old bond must not save over the new one).
        const saving = this.bondWrites.then(() => store.save(bond));
        this.bondSaves = Promise.allSettled([this.bondSaves, saving]);
        return saving;
      },
      remove: id => store.remove(id),
      list: () => store.list(),
      ...(store.loadLocalIdentity ? { loadLocalIdentity: () => store.loadLocalIdentity!() } : {}),
      ...(store.saveLocalIdentity ? { saveLocalIdentity: (keys: LocalIdentityKeys) => store.saveLocalIdentity!(keys) } : {}),
    };
    const security: SecurityContext | undefined = opts.pairing === false ? undefined : {
      bonds: pairingStore,
      attempts: new PairingAttempts(clock),
      policy: () => this.pairingPolicy,
      // Our address on the air when the link was made (an RPA with privacy): c1, f5 and f6 take it.
      localAddress: link => link.local ?? (this.randomAddress !== undefined
        ? { type: 1, address: this.randomAddress }
        : { type: 0, address: this.host.info.address ?? ZERO_ADDRESS }),
      // With privacy, bonding gives the peer our IRK and identity (Vol 3, Part H, 3.6.4 / 3.6.5).
      ...(localKeys ? { localKeys: () => ({ irk: localKeys.irk, identity: this.identityAddress() }) } : {}),
      // A new bond's IRK resolves the peer's next RPA at once; a new bond starts with no subscriptions.
      // The link's address resolves at once: an RPA becomes the one directed advertising aims at
      // (resolver.lastRpaOf) until the peer is seen under another.
      onBond: (bond, seen) => { this.resolver.add(bond); this.resolver.resolve(seen.address, seen.hciType); void this.syncResolvingList(); },
      onBondRemoved: identity => { this.resolver.remove(identity); this.gattServer.forget(identityKey(identity)); void this.syncResolvingList(); },
      updateBond: (identity, fn) => this.updateBond(identity, fn),
      ...(opts.pairingEntropy ? { entropy: opts.pairingEntropy } : {}),
    };
    this.scanner = new Scanner(host, { clock, registryCapacity: opts.registryCapacity, ownAddressType: own,
      resolve: (bits, hciType, address) => this.resolver.resolveValue(bits, hciType, address),
      resolverGeneration: () => this.resolver.generation });
    // Every link, whichever role opened it, gets our MTU offer and our GATT server on its bearer:
    // the adapter's GattServer (GAP, GATT and what serve() adds) unless the options name another.
    // Bonded clients' CCCD values are kept in their bond (Vol 3, Part G, 3.3.3.3): written when their
    // link closes, into the bond that exists then (none: nothing is written, the bond is gone).
    // One write at a time, awaited by removeBond() (a write that read the bond before its removal must
    // not bring the file back) and by close().
    this.gattServer = new GattServer<Connection>({ clock, persist: {
      save: (identity, cccds) => {
        const id = parseIdentityKey(identity);
        if (!id) return;
        // A bond made on this link may still be on its way to the store (pairing reports it bonded
        // before the save completes): updateBond waits for it, and the CCCD values go into it.
        this.updateBond(id, bond => (bond && this.gattServer.remembers(identity) ? { ...bond, cccds } : undefined))
          .catch(e => log.smp('CCCD values of %s not stored with its bond: %s', identity, (e as Error).message));
      },
    } });
    const served = this.gattServer;
    const conns = this.conns;
    this.connectionManager = new ConnectionManager(host, this.scanner, clock, own, {
      ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
      server: opts.gatt?.server !== undefined ? opts.gatt.server : (link: LeLink) => served.attach({
        get connection() { return conns.get(link.handle); },
        get security() { return link.security; },
        get settling() { return link.pairing?.settling; },
        get name() { return link.address; },
        get identity() {
          const id = link.identity;
          return identityKey(id ?? { type: link.addressType === 'public' ? 0 : 1, address: link.address });
        },
        // Signed writes are checked against the peer's CSRK in its bond (none without pairing: dropped).
        verifySignature: (header, value, signature) => (link.pairing
          ? link.pairing.acceptSignature(header, value, signature) : Promise.resolve({ ok: false, reason: 'noKey' } as const)),
      }),
      channels: this.channelRegistry,
    }, () => this.randomAddress, security, (address, hciType) => this.resolver.resolve(address, hciType));
    // A connect() to an identity the controller resolves names it as such (Peer_Address_Type 0x02 / 0x03).
    this.connectionManager.initiator.controllerResolves = (address, type) => this.resolvingList.has(address, type);
    // Directed advertising to a bonded peer (gap/advertiser.ts, DirectedTarget): a controller that
    // resolves it makes TargetA from its IRK; else the host aims at the RPA it saw the peer under last.
    this.connectionManager.advertiser.directedTarget = (address, type) => {
      if (this.resolvingList.has(address, type)) return { by: 'controller' };
      const rpa = this.resolver.lastRpaOf(address, type === 0 ? 'public' : 'random');
      return rpa === undefined ? undefined : { by: 'host', rpa };
    };
    // Each extended advertising set gets an RPA of its own (LE Set Advertising Set Random Address, 7.8.52),
    // and a new one at every rotation: sets cannot be linked by their address (Vol 3, Part C, 10.7).
    if (localKeys) this.connectionManager.advertiser.setRpa = () => generateRpa(localKeys.irk, opts.pairingEntropy?.random);
    this.watchAdvertisementListeners();
    this.connectionManager.onConnection(link => {
      const conn = this.newConnection(link);
      this.conns.set(link.handle, conn);
      link.onDisconnect(reason => {
        if (this.conns.get(link.handle) === conn) this.conns.delete(link.handle);
        this.emit('disconnect', conn, reason);
      });
      this.emit('connection', conn);
      if (link.role === 'peripheral') this.incoming.push(conn);
    });
    host.onHardwareError(code => {
      this.emit('hardwareError', code);
      if (opts.recover ?? true) {
        host.init({ randomAddress: this.randomAddress }).then(
          info => { this.resolvingList.reset(); void this.syncResolvingList(); this.emit('reset', info); },
          e => log.gap('re-initialisation after Hardware Error failed: %s', (e as Error).message),
        );
      }
    });
    host.onClose(e => { this.localPrivacy?.stop(); this.incoming.close(); this.emit('close', e); });
  }

  /**
   * One read-modify-write of a stored bond (see bondWrites): after the writes queued before it and the
   * bond saves begun before it (taken now, so a save begun later, which waits for this, is not awaited).
   */
  private updateBond(identity: SmpAddress, fn: (bond: Bond | undefined) => Bond | undefined): Promise<Bond | undefined> {
    const before = this.bondSaves;
    const job = this.bondWrites.then(async () => {
      await before;
      const next = fn(await this.bondStore.load(identity));
      if (next) await this.bondStore.save(next);
      return next;
    });
    this.bondWrites = job.then(() => undefined, () => undefined);
    return job;
  }

  /**
   * Give the controller's resolving list the bonded IRKs the resolver holds now (no-op without a list;
   * failures are logged inside and leave the host-side resolver in charge). Never rejects.
   */
  private syncResolvingList(): Promise<void> {
    return this.resolvingList.sync(this.resolver.irkBonds()).catch(e => log.gap('resolving list: %s', (e as Error).message));
  }

  /** The address the controller uses for the random own address type: our RPA with privacy, else the static one given. */
  get randomAddress(): string | undefined {
    return this.localPrivacy ? this.rpa : this.staticAddress;
  }

  /** Our identity address (privacy): the static random address given, else the controller's public one, else our kept static one. */
  private identityAddress(): SmpAddress {
    if (this.staticAddress !== undefined) return { type: 1, address: this.staticAddress.toUpperCase() };
    const pub = this.host.info.address;
    if (pub && pub !== ZERO_ADDRESS) return { type: 0, address: pub.toUpperCase() };
    return { type: 1, address: this.localKeys!.staticAddress };
  }

  /** Our privacy (open with `privacy`): the current RPA, identity, IRK and rotation; undefined without it. */
  get privacy(): LocalPrivacyInfo | undefined {
    const p = this.localPrivacy, keys = this.localKeys;
    if (!p || !keys) return undefined;
    const id = this.identityAddress();
    return {
      address: this.rpa ?? p.address,
      identity: { address: id.address, addressType: id.type === 0 ? 'public' : 'random' },
      irk: Uint8Array.from(keys.irk),
      rotateSeconds: p.intervalMs / 1000,
      rotations: p.rotations,
      rotate: () => p.rotate(),
      advertisingRpa: this.resolvingList.ownRpaByController ? 'controller' : 'host',
      advertisingAddress: async (set?: AdvertisingSet) => {
        if (!this.resolvingList.ownRpaByController) return set?.address ?? this.rpa ?? p.address;
        const r = await this.host.command({ kind: 'leReadLocalResolvableAddress',
          peerIdentityAddressType: LOCAL_ENTRY.type, peerIdentityAddress: LOCAL_ENTRY.address });
        return r.localResolvableAddress.toUpperCase();
      },
    };
  }

  /** Open a transport, reset and initialise the controller (`timeout` and `signal` in the options). */
  static async open(opts: AdapterOpenOptions = {}): Promise<Adapter> {
    if (opts.privacy) rotateMsOf(opts.privacy); // a bad period fails before anything opens
    // The bond store first, under a deadline of its own in real time: its reads are file I/O, and a
    // transport with virtual time (simulator, replay) would run its clock on meanwhile, so inside the
    // controller's deadline they could use it up before Reset is sent. Our IRK and every bonded IRK
    // are in before the transport opens: the resolver has them for the first report.
    const { bondStore, localKeys, initialBonds } = await guarded(systemClock, opts,
      { layer: 'smp', operation: 'open', hint: BOND_STORE_HINT }, async () => {
        const bondStore = bondStoreOf(opts);
        const localKeys = opts.privacy ? await localIdentityOf(bondStore) : undefined;
        // A store that cannot be listed is logged and the adapter opens with no bonds.
        const initialBonds = await bondStore.list().catch((e: unknown) => {
          log.smp('bond store not listed: %s', (e as Error).message);
          return [] as Bond[];
        });
        return { bondStore, localKeys, initialBonds };
      });
    // The controller's deadline runs on the clock we can know before the transport is open: the
    // caller's, or that of a transport object with its own time (simulator, replay); a transport
    // spec opens in real time.
    const early = opts.clock ?? (typeof opts.transport === 'object' ? opts.transport.clock : undefined) ?? systemClock;
    return guarded(early, opts, { layer: 'hci', operation: 'open', hint: OPEN_HINT }, async signal => {
      const transport = await resolveTransport(opts);
      if (signal.aborted) {
        // The deadline passed while the transport was opening: nobody will use it.
        await transport.close().catch(() => undefined);
        throw signal.reason as Error;
      }
      // A transport with its own time (simulator, replay) drives the host's timers unless told otherwise.
      const clock = opts.clock ?? transport.clock ?? systemClock;
      const host = new HciHost(transport, { clock, commandTimeoutMs: opts.commandTimeout });
      // On a deadline or abort, close at once: every command timer goes before open() rejects.
      const onAbort = (): void => { void host.close().catch(() => undefined); };
      signal.addEventListener('abort', onAbort, { once: true });
      const adapter = new Adapter(host, clock, opts, bondStore, localKeys, initialBonds);
      try {
        await host.init({ randomAddress: adapter.randomAddress, signal });
        if (signal.aborted) throw signal.reason as Error;
        // The first RPA went to the controller with init; rotation runs from now on.
        await adapter.localPrivacy?.start({ applied: true });
        // The bonded IRKs to the controller's resolving list, before anything scans or connects.
        await adapter.bondsLoaded;
        await adapter.syncResolvingList();
        if (signal.aborted) throw signal.reason as Error;
      } catch (e) {
        await host.close().catch(() => undefined);
        throw e;
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      return adapter;
    });
  }

  /** What the controller is and can do (read at init). */
  get controller(): ControllerInfo {
    return this.host.info;
  }

  /** Live connections. */
  get connections(): Connection[] {
    return [...this.conns.values()];
  }

  /** Devices heard so far (bounded; see registryCapacity), most recently seen first. */
  devices(): DeviceInfo[] {
    const out: DeviceInfo[] = [];
    for (const e of this.scanner.registry.values()) {
      out.push({ address: e.address, addressType: e.addressType as AddressType, rssi: e.rssi, lastSeen: e.lastSeen,
        firstSeen: e.firstSeen, reports: e.reports, advertisement: this.scanner.advertisementOf(e.slot),
        identity: this.resolver.resolve(e.address, e.addressType === 'public' ? 0 : 1) });
    }
    return out.sort((a, b) => b.lastSeen - a.lastSeen);
  }

  /**
   * Listen for L2CAP credit-based channels on `psm` (LE_PSM 0x0001–0x00FF; dynamic ones are
   * 0x0080–0x00FF), on every link of either role, LE and enhanced mode (Core Vol 3, Part A, 4.22 /
   * 4.25). Iterate it with `for await` (leaving the loop stops listening) or call `accept()`; each
   * channel is an async iterable of SDUs with `write()`, whose back-pressure is the credits
   * (`channel.handle` names its connection). `mtu` / `mps` / `initialCredits` are what we announce
   * (default 2048 / 247 / 16); `encrypted` / `authenticated` / `keySize` refuse links that do not
   * meet them with the spec's result; `backlog` channels (default 16) wait to be accepted, beyond
   * that a request gets "No resources available". Close it to stop listening.
   */
  listen(psm: number, options: ListenOptions = {}): ChannelListener {
    return this.channelRegistry.listen(psm, options);
  }

  /** Start a scan: iterate it with `for await`, or pass `onAdvertisement`; `stop()` or leave the loop to end it. */
  scan(options: ScanOptions = {}): ScanSession {
    return this.scanner.scan(options);
  }

  /** Scan until the first advertisement matching the filter; undefined when the timeout passes first. */
  async find(filter: FindOptions = {}): Promise<Advertisement | undefined> {
    const { timeout = 10_000, ...rest } = filter;
    const session = this.scanner.scan({ ...rest, timeout });
    for await (const ad of session) {
      session.stop();
      return ad;
    }
    return undefined;
  }

  /**
   * Connect to a scanned device or a bare address (+ type; default public). The identity address of
   * a bonded peer that uses resolvable private addresses (its bond holds an IRK) connects to whatever
   * RPA it advertises under now: a report heard in the last RPA_REPORT_FRESH_MS, else a scan for the
   * first report that resolves to it, within the connect timeout (Vol 3, Part C, 10.7). The
   * connection's `address` is then the RPA, its `identity` the identity address.
   */
  async connect(target: Advertisement | ConnectTarget, opts: ConnectOptions & { gatt?: Pick<GattClientOptions, 'trustCache'> } = {}): Promise<Connection> {
    let t: ConnectTarget = target instanceof Advertisement
      ? { address: target.address, addressType: target.addressType }
      : target;
    if (!(target instanceof Advertisement)) t = await this.byIdentity(t, opts);
    const link = await this.connectionManager.connect(t, opts);
    const conn = this.conns.get(link.handle) ?? this.newConnection(link);
    // The connection exists from the link's first event; a per-connect choice applies before any discovery.
    if (opts.gatt?.trustCache !== undefined) conn.gatt.setCachePolicy({ trustCache: opts.gatt.trustCache });
    return conn;
  }

  /**
   * A bonded identity with an IRK is reached at its current RPA: the freshest resolved report in the
   * registry, else the first one a scan hears (bounded by the connect timeout, default 10 s). Any other
   * target is returned as it is.
   */
  private async byIdentity(t: ConnectTarget, opts: ConnectOptions): Promise<ConnectTarget> {
    const type = t.addressType ?? t.type ?? 'public';
    if (type === 'anonymous') return t;
    let address: string;
    try {
      address = normaliseAddress(t.address);
    } catch {
      return t; // the initiator reports the bad address
    }
    await this.bondsLoaded;
    if (!this.resolver.hasIrk(address, type)) return t;
    const now = this.clock.now();
    let best: { address: string; addressType: AddressType; lastSeen: number } | undefined;
    for (const e of this.scanner.registry.values()) {
      const ad = this.scanner.advertisementOf(e.slot);
      if (!ad?.connectable || now - e.lastSeen > RPA_REPORT_FRESH_MS) continue;
      const id = ad.identity;
      if (id?.address !== address || id.addressType !== type) continue;
      if (!best || e.lastSeen > best.lastSeen) best = { address: e.address, addressType: e.addressType as AddressType, lastSeen: e.lastSeen };
    }
    if (best) return { address: best.address, addressType: best.addressType };
    const session = this.scanner.scan({ address, timeout: opts.timeout ?? 10_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    try {
      for await (const ad of session) {
        if (!ad.connectable || ad.identity?.addressType !== type) continue;
        return { address: ad.address, addressType: ad.addressType };
      }
    } finally {
      session.stop();
    }
    throw new TimeoutError('gap', `connect to ${address}`, opts.timeout ?? 10_000,
      'the bonded device was not heard advertising under an address its IRK resolves (is it advertising and connectable?)');
  }

  private newConnection(link: LeLink): Connection {
    return new Connection(link, {
      ...(this.opts.gatt?.robustCaching !== undefined ? { robustCaching: this.opts.gatt.robustCaching } : {}),
      ...(this.opts.gatt?.serviceChanged !== undefined ? { serviceChanged: this.opts.gatt.serviceChanged } : {}),
      clock: this.clock,
      ...(this.gattCache ? { cache: this.gattCache } : {}),
    });
  }

  /** Change the default pairing policy and handlers (applies to the next pairing of every link). */
  setPairingPolicy(policy: PairingPolicy): void {
    const bad = checkPolicy(policy);
    if (bad) throw bad;
    this.pairingPolicy = { ...policy };
  }

  /** Every stored bond (unreadable bond files are reported in the log and left out). */
  bonds(): Promise<Bond[]> {
    return this.bondStore.list();
  }

  /**
   * Forget the bond of a peer (its identity address, or the address it bonded from; a bare string
   * tries both address types). A link to it that is up stays up and encrypted until it ends.
   */
  async removeBond(peer: string | { address: string; type?: AddressType | 0 | 1 }): Promise<boolean> {
    const address = (typeof peer === 'string' ? peer : peer.address).toUpperCase();
    const t = typeof peer === 'string' ? undefined : peer.type;
    const types: Array<0 | 1> = t === undefined ? [0, 1] : [t === 'public' || t === 0 ? 0 : 1];
    let removed = false;
    await this.bondWrites;
    for (const type of types) {
      const id = { type, address };
      if (await this.bondStore.load(id)) {
        await this.bondStore.remove(id);
        this.resolver.remove(id);
        this.gattServer.forget(identityKey(id));
        removed = true;
      }
    }
    // The controller stops resolving it too (its resolving list is written again without it).
    if (removed) await this.syncResolvingList();
    return removed;
  }

  /**
   * Advertise (legacy or extended; see AdvertiseOptions): resolves with the set once the controller
   * advertises. `set.update(options)`, `set.stop()`, or `await using set = await adapter.advertise(…)`.
   * Centrals that connect arrive as connections with `role: 'peripheral'` (the 'connection' event
   * and `accept()`); connectable advertising resumes after each connection unless `resume: false`.
   */
  /**
   * Serve GATT services to every connected client (our GAP and GATT services come first):
   * characteristics with static values or async onRead / onWrite handlers, security per access,
   * notify / indicate to subscribers (src/gatt/server/server.ts). Clients already connected get the
   * new database with a Service Changed indication; a second call replaces the services the same way.
   * `options.authorize` answers for every attribute declared `authorize: true` (the 'authorized'
   * permission: Insufficient Authorization 0x08 when it refuses); `options.name` / `options.appearance`
   * set the Device Name and Appearance our GAP service answers with (default 'blewire', 0).
   * Resolves with the server (`notify`, `indicate`, `update`, `close`, `onSubscription`).
   */
  async serve(services: ServedService<Connection>[], options: ServeOptions<Connection> & GapIdentity = {}): Promise<GattServer<Connection>> {
    if (this.opts.gatt?.server !== undefined) {
      throw new InvalidStateError('adapter.serve(): this adapter was opened with its own gatt.server; serve() needs the built-in one');
    }
    await this.gattServer.update(services, options);
    return this.gattServer;
  }

  advertise(options: AdvertiseOptions = {}): Promise<AdvertisingSet> {
    return this.connectionManager.advertiser.advertise(options);
  }

  /** Advertising sets that are live. */
  get advertising(): AdvertisingSet[] {
    return this.connectionManager.advertiser.active;
  }

  /**
   * Incoming connections (we are the peripheral), from now on, as an async iterator: `for await
   * (const conn of adapter.accept()) …`. Ends when the signal aborts, the loop is left, or the
   * adapter closes. Connections that arrive while the loop body runs wait in a queue of at most
   * ACCEPT_QUEUE_LIMIT (older ones beyond it are still live and were announced by 'connection').
   */
  accept(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<Connection> {
    return this.incoming.iterate(options.signal);
  }

  /**
   * Re-initialise the controller (HCI Reset); live links are reported lost. Default deadline: none of
   * its own, each HCI command has the command timeout. After a timeout or abort the controller is in
   * an unknown state: call reset() again (or close()) before using it.
   */
  async reset(options?: OperationOptions): Promise<ControllerInfo> {
    const info = await guarded(this.clock, options, { layer: 'hci', operation: 'reset', hint: OPEN_HINT },
      signal => this.host.init({ randomAddress: this.randomAddress, signal }));
    this.resolvingList.reset();
    await this.syncResolvingList();
    this.emit('reset', info);
    return info;
  }

  /**
   * Stop scans, drop links and close the transport. `timeout` (default 2 s) bounds how long close
   * waits for the scan to stop and for each link's Disconnection Complete; after it the transport
   * closes anyway and close() resolves: a silent controller must not keep an application from
   * ending. An abort while waiting closes the transport at once and rejects with AbortError; an
   * already-aborted signal rejects before anything is sent and the adapter stays open.
   */
  async close(options?: OperationOptions): Promise<void> {
    if (this.host.isClosed) return;
    const early = abortedError('close', options?.signal);
    if (early) throw early;
    this.scanner.dispose();
    this.incoming.close();
    this.localPrivacy?.stop();
    const ready = this.host.state === 'ready';
    let aborted: Error | undefined;
    if (ready) {
      const d = deadline(this.clock, options, { layer: 'gap', operation: 'close', defaultMs: CLOSE_GRACE_MS });
      const graceful = (async () => {
        await this.scanner.settle().catch(() => undefined);
        await this.connectionManager.advertiser.stopAll();
        // The close deadline also ends each disconnect's wait (and its 40 s timer). Each link gets its
        // own signal, all aborted by one listener on the deadline: N links on one signal would add N
        // listeners (MaxListenersExceededWarning past 10).
        const links = this.connections.map(c => ({ c, ac: new AbortController() }));
        const fan = (): void => { for (const l of links) l.ac.abort(d.signal.reason); };
        if (d.signal.aborted) fan();
        else d.signal.addEventListener('abort', fan, { once: true });
        try {
          await Promise.all(links.map(({ c, ac }) => c.disconnect(undefined, { signal: ac.signal }).catch(() => undefined)));
        } finally {
          d.signal.removeEventListener('abort', fan);
        }
      })();
      try {
        await untilAborted(graceful, d.signal);
      } finally {
        d.done();
      }
      const reason: unknown = d.signal.reason;
      if (reason instanceof AbortError) aborted = reason;
    }
    await this.host.close();
    // The links' CCCD values reach their bond files before close() resolves.
    await this.bondWrites;
    if (aborted) throw aborted;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Resolves when `p` settles or `signal` aborts, whichever comes first (never rejects). */
function untilAborted(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>(resolve => {
    const on = (): void => resolve();
    signal.addEventListener('abort', on, { once: true });
    p.then(() => undefined, () => undefined).then(() => { signal.removeEventListener('abort', on); resolve(); });
  });
}

async function resolveTransport(opts: AdapterOpenOptions): Promise<HciTransport> {
  if (opts.signal?.aborted) throw new AbortError('open', opts.signal.reason);
  const capture = opts.capture ?? envVar('BLEWIRE_CAPTURE');
  // An open transport with nothing to record needs no module loading: a transport with virtual time
  // (simulator, replay) would see its clock run on, and open()'s deadline pass, while an import loads.
  if (typeof opts.transport === 'object' && !capture) return opts.transport;
  const { openTransport, openRecordingFile, recordTransport } = await import('../transport/index.js');
  if (typeof opts.transport === 'object') {
    return capture ? recordTransport(opts.transport, openRecordingFile(capture)) : opts.transport;
  }
  const spec = opts.transport ?? envVar('BLEWIRE_TRANSPORT');
  // The simulator and replay sit above this layer: the package entry and the CLI register them
  // (src/transports.ts), each loaded on first use, so a gateway on hci0 never pays for them.
  return openTransport(spec, capture ? { capture } : {});
}

/** How the GATT server names a peer identity: "0/AA:BB:…" (public) or "1/…" (random). */
function identityKey(id: { type: number | string; address: string }): string {
  return `${id.type === 0 || id.type === 'public' ? 0 : 1}/${id.address.toUpperCase()}`;
}

function parseIdentityKey(key: string): { type: 0 | 1; address: string } | undefined {
  const m = /^([01])\/([0-9A-F]{2}(?::[0-9A-F]{2}){5})$/.exec(key);
  return m ? { type: m[1] === '0' ? 0 : 1, address: m[2]! } : undefined;
}
