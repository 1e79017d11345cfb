/**
 * LE privacy on the host (Core Vol 3, Part C, 10.7; Vol 6, Part B, 1.3.2): resolvable private
 * addresses (RPAs) of bonded peers resolved with their IRKs, and our own RPA made from our IRK.
 *
 * Address kinds (Vol 6, Part B, 1.3): a random address's two most significant bits say what it is:
 * 0b11 static, 0b01 resolvable private, 0b00 non-resolvable private (0b10 is reserved). An RPA is
 * prand (24 bits, the top two 0b01, the other 22 random, not all 0 nor all 1) followed by
 * hash = ah(IRK, prand) (Vol 6, Part B, 1.3.2.2; ah is Vol 3, Part H, 2.2.2). Resolving it with an IRK
 * is computing ah(IRK, prand) and comparing with the hash (1.3.2.3).
 *
 * Byte orders: an address string prints the most significant octet first ("70:81:94:0D:FB:AA" has
 * prand 0x708194 and hash 0x0DFBAA). IRKs are kept as SMP carries them and the bond store writes them
 * (least significant octet first, the Identity Information PDU's order, Vol 3, Part H, 3.6.4); ah
 * takes the key most significant octet first, so the resolver reverses each IRK once when it is added.
 *
 * `AddressResolver` (the scanner, the GAP scheduler and connect-by-identity use one per adapter):
 * - holds the bonded identities with their IRKs (one AES key schedule each, built once) and the bonded
 *   identities without one (a peer that always uses its identity address is still "bonded");
 * - `resolve(address, hciType)` answers the identity an advertiser or a connection belongs to: report
 *   address types 0x02 / 0x03 are identities the controller already resolved (Vol 4, Part E,
 *   7.7.65.2); a bonded identity is itself; an RPA is looked up in the cache, else tried against every
 *   IRK (one AES block each) and the answer, a match or "foreign", is cached;
 * - the cache is keyed by the address's 48-bit value and bounded (MAX_RESOLUTION_CACHE addresses,
 *   CLOCK eviction, an approximation of least recently used: an RPA seen before costs one Map lookup
 *   and no Map mutation, and a crowd of strangers rotating their RPAs cannot grow memory);
 *   adding an IRK forgets the cached "foreign" answers (one of them may be the new peer's), removing a
 *   bond forgets the answers that named it.
 *
 * `LocalPrivacy` is our side: our IRK, our current RPA and its rotation timer (see there).
 */
import type { Clock, TimerId } from '../clock.js';
import { ArgumentError } from '../errors.js';
import { log } from '../log.js';
import { aes128ExpandKey, aes128Low24OfPrand } from '../platform/aes-table.js';
import { aes128Encryptor, randomBytes } from '../platform/crypto.js';
import type { SmpAddress } from '../smp/session.js';
import type { LocalIdentityKeys } from '../smp/bonds.js';

/** The identity of a peer as the API shows it. */
export interface PeerIdentity {
  readonly address: string;
  readonly addressType: 'public' | 'random';
}

/** What a random address is, from its two most significant bits (Vol 6, Part B, 1.3, Table 1.2). */
export type RandomAddressKind = 'static' | 'resolvable' | 'nonResolvable' | 'reserved';
const KIND_BY_TOP_BITS: readonly RandomAddressKind[] = ['nonResolvable', 'resolvable', 'reserved', 'static'];

/** Addresses whose resolution (identity or foreign) is remembered; least recently used go first. */
export const MAX_RESOLUTION_CACHE = 4096;

/** The RPA rotation period GAP recommends, T_GAP(private_addr_int) (Vol 3, Part C, Appendix A): 15 min. */
export const DEFAULT_RPA_INTERVAL_MS = 15 * 60_000;

const HEX = /^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/;
const HEX_ANY_CASE = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

function octet(address: string, i: number): number {
  return parseInt(address.slice(3 * i, 3 * i + 2), 16);
}

/** The kind of a random address "AA:BB:CC:DD:EE:FF" (most significant octet first). */
export function randomAddressKind(address: string): RandomAddressKind {
  return KIND_BY_TOP_BITS[octet(address, 0) >> 6]!;
}

/** True for a resolvable private address: random (HCI type 1) with top bits 0b01. */
export function isResolvablePrivateAddress(address: string, hciType: number = 1): boolean {
  return hciType === 1 && address.length === 17 && (octet(address, 0) >> 6) === 0b01;
}

/** The spec's order of an IRK (most significant octet first) from the SMP / bond-store order. */
function irkSpecOrder(irkWire: Uint8Array): Uint8Array {
  if (!(irkWire instanceof Uint8Array) || irkWire.length !== 16) throw new ArgumentError('an IRK is 16 octets');
  return Uint8Array.from(irkWire).reverse();
}

/** ah under a bound AES context (Vol 3, Part H, 2.2.2): r' = 13 zero octets || prand; the low 24 bits. */
function hashOf(encrypt: (b: Uint8Array) => Uint8Array, p0: number, p1: number, p2: number): number {
  const block = new Uint8Array(16);
  block[13] = p0;
  block[14] = p1;
  block[15] = p2;
  const e = encrypt(block);
  return (e[13]! << 16) | (e[14]! << 8) | e[15]!;
}

/**
 * Whether `address` is an RPA made with this IRK (Vol 6, Part B, 1.3.2.3). `irk` is in the order SMP
 * carries it (least significant octet first), as bonds keep it.
 */
export function rpaMatchesIrk(irk: Uint8Array, address: string): boolean {
  const a = address.toUpperCase();
  if (!HEX.test(a) || !isResolvablePrivateAddress(a)) return false;
  const enc = aes128Encryptor(irkSpecOrder(irk));
  const hash = (octet(a, 3) << 16) | (octet(a, 4) << 8) | octet(a, 5);
  return hashOf(enc, octet(a, 0), octet(a, 1), octet(a, 2)) === hash;
}

/**
 * A fresh RPA of this IRK (SMP order) (Vol 6, Part B, 1.3.2.2): prand's top bits 0b01, the other 22
 * random and neither all 0 nor all 1. `random` (tests) supplies the random octets.
 */
export function generateRpa(irk: Uint8Array, random: (n: number) => Uint8Array = randomBytes): string {
  const enc = aes128Encryptor(irkSpecOrder(irk));
  for (;;) {
    const r = random(3);
    const p0 = (r[0]! & 0x3f) | 0x40, p1 = r[1]!, p2 = r[2]!;
    const low = ((p0 & 0x3f) << 16) | (p1 << 8) | p2;
    if (low === 0 || low === 0x3fffff) continue;
    const h = hashOf(enc, p0, p1, p2);
    return [p0, p1, p2, h >> 16, (h >> 8) & 0xff, h & 0xff].map(x => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
  }
}

/** The API form of an SMP identity (type 0 public, 1 random static). */
export function peerIdentity(id: SmpAddress): PeerIdentity {
  return { address: id.address.toUpperCase(), addressType: id.type === 0 ? 'public' : 'random' };
}

interface KnownIrk {
  readonly id: number;
  readonly identity: PeerIdentity;
  /** The IRK's AES-128 key schedule (platform/aes-table.ts), built once when the bond is added. */
  readonly schedule: Uint32Array;
  /** The IRK as the bond keeps it (SMP order), for the controller's resolving list. */
  readonly irk: Uint8Array;
  /**
   * The 48 bits of the RPA of this peer looked up last (NaN before any): where directed advertising
   * aims when the controller does not resolve (lastRpaOf). Written on every answer naming this peer.
   */
  lastRpa: number;
}

/** What a bond tells the resolver. */
export interface ResolvableBond {
  readonly identity: SmpAddress;
  readonly peerIrk?: Uint8Array;
}

const TWO_24 = 2 ** 24;
const TWO_40 = 2 ** 40;
const TWO_48 = 2 ** 48;

/** The 48-bit value of "AA:BB:CC:DD:EE:FF" (most significant octet first); NaN for anything else. */
export function addressValue(address: string): number {
  if (typeof address !== 'string' || address.length !== 17 || !HEX_ANY_CASE.test(address)) return NaN;
  return parseInt(address.replace(/:/g, ''), 16);
}

/** An identity's key in the resolver: the 48 address bits, plus 2^48 for a random one. */
const idOf = (bits: number, random: boolean): number => (random ? TWO_48 : 0) + bits;

/** One cached answer; `recent` is the CLOCK bit (set on a hit, no Map mutation). */
interface CacheSlot {
  /** The bonded peer whose IRK makes the address, or null for a foreign one. */
  readonly known: KnownIrk | null;
  recent: boolean;
}

export class AddressResolver {
  private readonly irks: KnownIrk[] = [];
  /** Bonded identities (with or without an IRK), by idOf(address bits, random). */
  private readonly identities = new Map<number, PeerIdentity>();
  /**
   * RPA (its 48 bits) → identity, or null for "no bonded IRK makes it". Eviction is CLOCK (second
   * chance, as the device registry): a hit only sets the slot's bit; when full, slots are taken from
   * the insertion-ordered front and one with the bit set is cleared and moved to the back instead.
   */
  private readonly cache = new Map<number, CacheSlot>();
  /** Counters: lookups asked for an RPA, answered from the cache, and ah computations. */
  readonly stats = { rpaLookups: 0, cacheHits: 0, ahComputed: 0, evicted: 0 };
  /**
   * Bumped whenever an answer may change (a bond added or removed): a caller that keeps answers
   * (the scanner, per registry entry) reuses them only while this is the same.
   */
  generation = 0;

  constructor(readonly cacheCapacity = MAX_RESOLUTION_CACHE) {
    if (!(cacheCapacity >= 1)) throw new ArgumentError('the resolution cache holds at least one address');
  }

  /** Bonded identities known (IRK or not). */
  get size(): number {
    return this.identities.size;
  }

  /** Bonded identities that have an IRK (their RPAs resolve). */
  get irkCount(): number {
    return this.irks.length;
  }

  /** Replace everything with these bonds. */
  setBonds(bonds: Iterable<ResolvableBond>): void {
    this.irks.length = 0;
    this.identities.clear();
    this.cache.clear();
    this.generation++;
    for (const b of bonds) this.add(b);
  }

  /** Add (or replace) one bond's identity and IRK. A bond with a malformed IRK is logged and kept without it. */
  add(bond: ResolvableBond): void {
    const identity = peerIdentity(bond.identity);
    const bits = addressValue(identity.address);
    if (Number.isNaN(bits)) {
      log.gap('bond identity %s is no address: not resolvable', identity.address);
      return;
    }
    const id = idOf(bits, identity.addressType === 'random');
    this.remove(bond.identity);
    this.generation++;
    this.identities.set(id, identity);
    if (!bond.peerIrk) return;
    let schedule: Uint32Array;
    try {
      schedule = aes128ExpandKey(irkSpecOrder(bond.peerIrk));
    } catch (e) {
      log.gap('IRK of %s not usable: %s', identity.address, (e as Error).message);
      return;
    }
    this.irks.push({ id, identity, schedule, irk: Uint8Array.from(bond.peerIrk), lastRpa: NaN });
    // A cached "foreign" answer may be this peer's RPA.
    for (const [a, v] of this.cache) if (v.known === null) this.cache.delete(a);
  }

  /** Forget one identity (its IRK and every cached answer that named it). */
  remove(identity: SmpAddress): void {
    const pid = peerIdentity(identity);
    const id = idOf(addressValue(pid.address), pid.addressType === 'random');
    const known = this.identities.get(id);
    if (!known || !this.identities.delete(id)) return;
    this.generation++;
    const i = this.irks.findIndex(k => k.id === id);
    if (i >= 0) this.irks.splice(i, 1);
    for (const [a, v] of this.cache) if (v.known?.identity === known) this.cache.delete(a);
  }

  /** The bonded identity with this address and type, if any. */
  bonded(address: string, addressType: 'public' | 'random'): PeerIdentity | undefined {
    return this.identities.get(idOf(addressValue(address), addressType === 'random'));
  }

  /** The bonds with an IRK, oldest first (what the controller's resolving list is given, resolving-list.ts). */
  irkBonds(): ResolvableBond[] {
    return this.irks.map(k => ({ identity: { type: k.identity.addressType === 'public' ? 0 : 1, address: k.identity.address },
      peerIrk: k.irk }));
  }

  /** Whether this identity's RPAs can be resolved (a bond with its IRK). */
  hasIrk(address: string, addressType: 'public' | 'random'): boolean {
    const id = idOf(addressValue(address), addressType === 'random');
    return this.irks.some(k => k.id === id);
  }

  /**
   * The RPA this bonded identity was last seen under (the last one resolve() named it for: an
   * advertising report, a connection, the link it bonded on), or undefined when none has been seen
   * since the bond was added. A host whose controller does not resolve aims directed advertising at
   * it (Vol 6, Part B, 6.4 asks the link layer to make TargetA from the peer's IRK; without that, the
   * peer's own current RPA is the only TargetA its controller accepts). It goes stale when the peer
   * rotates its address unseen.
   */
  lastRpaOf(address: string, addressType: 'public' | 'random'): string | undefined {
    const id = idOf(addressValue(address), addressType === 'random');
    const k = this.irks.find(x => x.id === id);
    if (!k || Number.isNaN(k.lastRpa)) return undefined;
    return k.lastRpa.toString(16).toUpperCase().padStart(12, '0').replace(/(..)(?=.)/g, '$1:');
  }

  /**
   * The identity behind an address as HCI reports it (`hciType`: 0 public, 1 random, 2 / 3 identity
   * addresses the controller resolved, Vol 4, Part E, 7.7.65.2), or undefined when it is no bonded peer.
   */
  resolve(address: string, hciType: number): PeerIdentity | undefined {
    const bits = addressValue(address);
    if (Number.isNaN(bits)) return undefined;
    return this.resolveValue(bits, hciType, address);
  }

  /**
   * resolve() for the scanner's hot path: the address as its 48-bit value (the registry has it from
   * the report's octets) and its string (used only to name an identity the controller resolved).
   * A stranger's public or static address, and an RPA seen before, cost one Map lookup each and
   * allocate nothing; a new RPA costs one AES block per bonded IRK (platform/aes-table.ts).
   */
  resolveValue(bits: number, hciType: number, address: string): PeerIdentity | undefined {
    if (hciType === 2 || hciType === 3) {
      return this.identities.get(idOf(bits, hciType === 3)) ??
        { address: address.toUpperCase(), addressType: hciType === 2 ? 'public' : 'random' };
    }
    if (this.identities.size === 0) return undefined;
    // Random with top bits 0b01: an RPA (Vol 6, Part B, 1.3); anything else is its own identity or nobody.
    if (hciType !== 1 || Math.floor(bits / TWO_40) >> 6 !== 0b01) return this.identities.get(idOf(bits, hciType === 1));
    if (this.irks.length === 0) return undefined;
    this.stats.rpaLookups++;
    const slot = this.cache.get(bits);
    if (slot !== undefined) {
      this.stats.cacheHits++;
      slot.recent = true;
      const k = slot.known;
      if (k === null) return undefined;
      k.lastRpa = bits;
      return k.identity;
    }
    const found = this.search(bits);
    if (this.cache.size >= this.cacheCapacity) this.evictOne();
    this.cache.set(bits, { known: found ?? null, recent: false });
    if (found === undefined) return undefined;
    found.lastRpa = bits;
    return found.identity;
  }

  private evictOne(): void {
    // Bounded: each pass clears bits, so within cacheCapacity + 1 steps a slot without one comes up.
    for (;;) {
      const [a, slot] = this.cache.entries().next().value as [number, CacheSlot];
      this.cache.delete(a);
      if (!slot.recent) break;
      slot.recent = false;
      this.cache.set(a, slot);
    }
    this.stats.evicted++;
  }

  /** ah(IRK, prand) against each IRK (Vol 6, Part B, 1.3.2.3); prand is the top 24 bits, hash the low. */
  private search(bits: number): KnownIrk | undefined {
    const prand = Math.floor(bits / TWO_24);
    const hash = bits - prand * TWO_24;
    for (const k of this.irks) {
      this.stats.ahComputed++;
      if (aes128Low24OfPrand(k.schedule, prand) === hash) return k;
    }
    return undefined;
  }

  /** Addresses in the resolution cache now (bounded by cacheCapacity). */
  get cached(): number {
    return this.cache.size;
  }
}

/** A fresh IRK from the OS CSPRNG (Vol 3, Part H, 2.4.2.1 allows any random 128-bit value). */
export function generateIrk(): Uint8Array {
  return randomBytes(16);
}

/** A static random address: two most significant bits 1 (Vol 6, Part B, 1.3.2.1), rest random, not all 0/1. */
export function staticRandomAddress(random: (n: number) => Uint8Array = randomBytes): string {
  for (;;) {
    const b = random(6);
    b[0] = b[0]! | 0xc0;
    const rest = [b[0]! & 0x3f, ...b.subarray(1)];
    if (rest.every(x => x === 0) || (rest[0] === 0x3f && rest.slice(1).every(x => x === 0xff))) continue;
    return [...b].map(x => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
  }
}

/**
 * Our own privacy keys, made once and then kept with the bonds (every peer that bonded with us holds
 * this IRK: a new one would make us a stranger to all of them): a fresh IRK and a static random
 * address, our identity address when the controller has no public one (Vol 3, Part C, 10.8).
 */
export function newLocalIdentity(): LocalIdentityKeys {
  return { irk: generateIrk(), staticAddress: staticRandomAddress() };
}

/**
 * The range of the RPA period in seconds: that of LE Set Resolvable Private Address Timeout,
 * 0x0001-0xA1B8 (Vol 4, Part E, 7.8.45), which a controller that rotates by itself accepts.
 */
export const RPA_INTERVAL_RANGE_S = { min: 1, max: 0xa1b8 } as const;

export interface LocalPrivacyOptions {
  readonly irk: Uint8Array;
  readonly clock: Clock;
  /** Rotation period (default 15 min, T_GAP(private_addr_int)). */
  readonly intervalMs?: number;
  /** Apply a new RPA to the controller (LE Set Random Address and each set's address). */
  readonly apply: (rpa: string) => Promise<void>;
  /** Random octets (tests); default the OS CSPRNG. */
  readonly random?: (n: number) => Uint8Array;
}

/**
 * Our RPA (Vol 3, Part C, 10.7.1.2; Vol 6, Part B, 1.3.2.2): made from our IRK, replaced every
 * `intervalMs` on the injected clock. `start()` makes the first and arms the timer; each expiry makes
 * a new address and hands it to `apply` (the adapter pauses scanning and initiating around LE Set
 * Random Address, which a controller refuses while they run, Vol 4, Part E, 7.8.4). A failed apply is
 * logged and retried at the next expiry; the old address stays in use meanwhile. `stop()` clears the
 * one timer. At most one apply runs at a time; an expiry during one is skipped (the next comes).
 */
export class LocalPrivacy {
  private rpa: string;
  private timer: TimerId | undefined;
  private applying = false;
  private stopped = true;
  /** Rotations applied (the first address included). */
  rotations = 0;

  constructor(private readonly o: LocalPrivacyOptions) {
    this.rpa = generateRpa(o.irk, o.random);
  }

  /** Our current RPA. */
  get address(): string {
    return this.rpa;
  }

  get intervalMs(): number {
    return this.o.intervalMs ?? DEFAULT_RPA_INTERVAL_MS;
  }

  /**
   * Rotate from now on. The current address is applied first, unless `applied` says the caller has
   * already given it to the controller (the adapter does, with LE Set Random Address at init).
   */
  async start(options: { applied?: boolean } = {}): Promise<void> {
    this.stopped = false;
    if (!options.applied) await this.o.apply(this.rpa);
    this.rotations++;
    this.arm();
  }

  /** A new address now (and the period restarts). */
  async rotate(): Promise<string> {
    if (this.applying) return this.rpa;
    this.applying = true;
    const next = generateRpa(this.o.irk, this.o.random);
    try {
      await this.o.apply(next);
      this.rpa = next;
      this.rotations++;
    } finally {
      this.applying = false;
      if (!this.stopped) this.arm();
    }
    return this.rpa;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.rotate().catch(e => log.gap('RPA rotation failed (the old address stays until the next try): %s', (e as Error).message));
    }, this.intervalMs);
  }
}
