import { ArgumentError } from '../errors.js';
/**
 * The device registry: every advertiser the scanner has heard, with first / last-seen time, RSSI and
 * report count, bounded so a day in a crowded hall cannot grow memory without limit.
 *
 * Storage (issue 14): a device is a slot, an index into typed arrays (address bits, times, RSSI,
 * counts) that grow by doubling up to `capacity` and never beyond. No object per device: a scavenge
 * has nothing of the registry's to copy, and 10,000 devices cost about 60 bytes each here. The
 * address string is made only when asked for (addressOf) and then kept in its slot.
 *
 * Lookup: an open-addressed table of slot numbers (linear probing, at most half full) keyed by a
 * seeded 32-bit mix of the address, so a report read in place (hci/host.ts, scanner.ts) finds its
 * device from the 6 address octets with no string made and no number boxed. The mix is seeded per
 * process, so a hostile advertiser cannot choose addresses that pile into one probe run.
 *
 * Devices are kept per address type: a public and a random address with the same 48 bits are
 * different devices (Core Vol 6, Part B, 1.3).
 *
 * Eviction is CLOCK (second chance), an approximation of least-recently-seen: a report sets the
 * slot's `recent` bit; when the registry is full, the hand walks the slots, clearing set bits, and
 * the first slot found clear is evicted and reused for the new device.
 */

/** The registry's address-type index (bits 16-17 of `hi`), by API address type. */
export const ADDRESS_TYPE_INDEX: Readonly<Record<string, number>> = { public: 0, random: 1, anonymous: 2 };
const TYPE_INDEX = ADDRESS_TYPE_INDEX;
const TYPE_NAMES = ['public', 'random', 'anonymous'] as const;
const TWO_48 = 2 ** 48;
/** `hi` of a slot that holds no device. */
const FREE = -1;

/** The 48-bit value of a BD_ADDR as the HCI carries it: 6 octets, least significant first, at b[o]. */
export function addressBits(b: Uint8Array, o: number): number {
  return (b[o + 5]! * 256 + b[o + 4]!) * 4294967296 + ((b[o + 3]! << 24) >>> 0) + (b[o + 2]! << 16) + (b[o + 1]! << 8) + b[o]!;
}

const HEX = Array.from({ length: 16 }, (_, i) => i.toString(16).toUpperCase().charCodeAt(0));
/** 'AA:BB:CC:DD:EE:FF' (most significant octet first) from the 6 HCI octets at b[o]. */
export function addressString(b: Uint8Array, o: number): string {
  const a5 = b[o + 5]!, a4 = b[o + 4]!, a3 = b[o + 3]!, a2 = b[o + 2]!, a1 = b[o + 1]!, a0 = b[o]!;
  return String.fromCharCode(HEX[a5 >> 4]!, HEX[a5 & 15]!, 58, HEX[a4 >> 4]!, HEX[a4 & 15]!, 58, HEX[a3 >> 4]!, HEX[a3 & 15]!, 58,
    HEX[a2 >> 4]!, HEX[a2 & 15]!, 58, HEX[a1 >> 4]!, HEX[a1 & 15]!, 58, HEX[a0 >> 4]!, HEX[a0 & 15]!);
}

/** The same string from the address's low 32 and high 16 bits. */
export function addressFromBits(lo: number, hi16: number): string {
  const a5 = (hi16 >> 8) & 0xff, a4 = hi16 & 0xff, a3 = (lo >>> 24) & 0xff, a2 = (lo >>> 16) & 0xff, a1 = (lo >>> 8) & 0xff, a0 = lo & 0xff;
  return String.fromCharCode(HEX[a5 >> 4]!, HEX[a5 & 15]!, 58, HEX[a4 >> 4]!, HEX[a4 & 15]!, 58, HEX[a3 >> 4]!, HEX[a3 & 15]!, 58,
    HEX[a2 >> 4]!, HEX[a2 & 15]!, 58, HEX[a1 >> 4]!, HEX[a1 & 15]!, 58, HEX[a0 >> 4]!, HEX[a0 & 15]!);
}

/** The registry key of an address string and its API address type; NaN for a string that is no BD_ADDR. */
export function registryKey(address: string, addressType: string): number {
  const hex = address.replace(/[:-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) return NaN;
  return (TYPE_INDEX[addressType] ?? 3) * TWO_48 + parseInt(hex, 16);
}

/**
 * The probe start of an address: a 32-bit mix of `lo` (its low 32 bits) and `hi` (its high 16 bits
 * with the type above them), seeded per process. By chance, 10,000 devices share a mix about once in
 * a hundred runs; sharing one only lengthens a probe run.
 */
const SEED = (Math.random() * 0x100000000) | 0;
function mixOf(lo: number, hi: number, seed: number): number {
  return (lo ^ Math.imul(hi ^ seed, 0x9e3779b1)) | 0;
}
/** Spread the mix's bits over the table's low bits (Murmur3's finaliser). */
function spread(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A snapshot of one device (values(), get()): made when asked for, never on the report path. */
export interface RegistryEntry {
  /** The device's slot: valid until the device is evicted or pruned. */
  readonly slot: number;
  readonly address: string;
  readonly addressType: string;
  /** The registry's numeric key (48 address bits and the type above them). */
  readonly id: number;
  /** Clock time (ms) of the last report. */
  readonly lastSeen: number;
  /** Clock time (ms) of the first report. */
  readonly firstSeen: number;
  readonly rssi: number;
  /** Reports received (including suppressed duplicates). */
  readonly reports: number;
}

/**
 * Advertisers the registry keeps by default (the adapter's; `Adapter.open({ registryCapacity })`
 * where offered). Every report of a new address adds one, so a crowded hall or a peer cycling random
 * addresses feeds it; beyond it the CLOCK hand evicts one (counted in `evicted`).
 */
export const DEFAULT_REGISTRY_CAPACITY = 4096;
/** The largest capacity accepted: about 64 MB of slots when every one is used. */
export const MAX_REGISTRY_CAPACITY = 1 << 20;
/** Slots allocated at first (then doubled as devices arrive, up to the capacity). */
const INITIAL_SLOTS = 64;

export class DeviceRegistry {
  private slots = 0;
  /** Address bits per slot: the low 32, and the high 16 with the type index above them (FREE: empty). */
  private lo = new Int32Array(0);
  private hi = new Int32Array(0);
  private last = new Float64Array(0);
  private first = new Float64Array(0);
  private counts = new Float64Array(0);
  private rssis = new Int8Array(0);
  /** CLOCK bit: seen since the hand last passed. */
  private recent = new Uint8Array(0);
  /** Address strings, made on first request (snapshots, a resolved identity) and kept: a Map, as most devices never need one. */
  private strings = new Map<number, string>();
  /** Probe table: slot + 1 per used cell, 0 empty; its length a power of two, at least twice `slots`. */
  private table = new Int32Array(0);
  private mask = 0;
  /** Slots in use; slots [0, used) have been handed out at least once. */
  private count = 0;
  private used = 0;
  /** Freed slots (prune) waiting for reuse. */
  private freeList: number[] = [];
  private hand = 0;
  evicted = 0;
  /** Called when a device leaves its slot (eviction, prune, clear), before the slot is reused. */
  onRemove: ((slot: number) => void) | undefined;

  /** `seed`: the mix's seed, random per process (a test passes one to make addresses share a mix). */
  constructor(readonly capacity = DEFAULT_REGISTRY_CAPACITY, private readonly seed = SEED) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_REGISTRY_CAPACITY) {
      throw new ArgumentError(`registry capacity must be an integer from 1 to ${MAX_REGISTRY_CAPACITY}, got ${capacity}`);
    }
    this.grow();
  }

  get size(): number {
    return this.count;
  }

  /** Slots allocated so far (per-slot state kept beside the registry is sized from it). */
  get allocated(): number {
    return this.slots;
  }

  /** Find the slot of (lo, hi), or -1. */
  private find(lo: number, hi: number): number {
    const mask = this.mask, table = this.table;
    for (let i = spread(mixOf(lo, hi, this.seed)) & mask; ; i = (i + 1) & mask) {
      const s = table[i]! - 1;
      if (s < 0) return -1;
      if (this.lo[s] === lo && this.hi[s] === hi) return s;
    }
  }

  /** The slot of an address string and API address type, or -1. */
  slotOf(address: string, addressType: string): number {
    const id = registryKey(address, addressType);
    if (Number.isNaN(id) || id >= 3 * TWO_48) return -1;
    return this.find((id % 4294967296) | 0, Math.floor(id / 4294967296) | 0);
  }

  /** A snapshot of the device with this address and type, if known. */
  get(address: string, addressType: string): RegistryEntry | undefined {
    const s = this.slotOf(address, addressType);
    return s < 0 ? undefined : this.entry(s);
  }

  /**
   * Record one report whose address is the 6 HCI octets at b[o] (read in place): no string and no
   * object is made. `type` is the API address type's index (ADDRESS_TYPE_INDEX: public 0, random 1,
   * anonymous 2). Returns the device's slot (a new device may take the slot of an evicted one:
   * onRemove said so first).
   */
  touchAt(b: Uint8Array, o: number, type: number, rssi: number, now: number): number {
    const lo = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
    const hi = ((type & 3) << 16) | (b[o + 5]! << 8) | b[o + 4]!;
    let s = this.find(lo, hi);
    if (s < 0) s = this.insert(lo, hi, now);
    else this.recent[s] = 1;
    this.last[s] = now;
    this.rssis[s] = rssi;
    this.counts[s]!++;
    return s;
  }

  /** Per-slot readers (slot from touchAt, slotOf or an entry). */
  lastSeenOf(slot: number): number { return this.last[slot]!; }
  /** The registry's numeric key of the slot's address (48 address bits, the type above). */
  idOf(slot: number): number { return (this.hi[slot]! >>> 16) * TWO_48 + (this.hi[slot]! & 0xffff) * 4294967296 + (this.lo[slot]! >>> 0); }
  /** The slot's 48 address bits. */
  bitsOf(slot: number): number { return (this.hi[slot]! & 0xffff) * 4294967296 + (this.lo[slot]! >>> 0); }
  /** The address's low 32 bits and high 16 bits. */
  loOf(slot: number): number { return this.lo[slot]!; }
  hiOf(slot: number): number { return this.hi[slot]! & 0xffff; }
  typeOf(slot: number): string { return TYPE_NAMES[this.hi[slot]! >>> 16]!; }
  /** 'AA:BB:CC:DD:EE:FF', made once per device and kept. */
  addressOf(slot: number): string {
    let a = this.strings.get(slot);
    if (a === undefined) this.strings.set(slot, (a = addressFromBits(this.lo[slot]!, this.hi[slot]! & 0xffff)));
    return a;
  }
  /** The slot holds a device. */
  has(slot: number): boolean { return slot >= 0 && slot < this.used && this.hi[slot] !== FREE; }

  private entry(s: number): RegistryEntry {
    return { slot: s, address: this.addressOf(s), addressType: this.typeOf(s), id: this.idOf(s), lastSeen: this.last[s]!,
      firstSeen: this.first[s]!, rssi: this.rssis[s]!, reports: this.counts[s]! };
  }

  /** Double the slots (up to the capacity) and rebuild the probe table. */
  private grow(): void {
    const n = Math.min(this.capacity, Math.max(INITIAL_SLOTS, this.slots * 2));
    const widen = <T extends Int32Array | Float64Array | Int8Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.lo = widen(this.lo, k => new Int32Array(k));
    this.hi = widen(this.hi, k => new Int32Array(k).fill(FREE));
    this.last = widen(this.last, k => new Float64Array(k));
    this.first = widen(this.first, k => new Float64Array(k));
    this.counts = widen(this.counts, k => new Float64Array(k));
    this.rssis = widen(this.rssis, k => new Int8Array(k));
    this.recent = widen(this.recent, k => new Uint8Array(k));
    this.slots = n;
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let s = 0; s < this.used; s++) if (this.hi[s] !== FREE) this.place(s);
  }

  /** Put slot `s` into the probe table. */
  private place(s: number): void {
    const mask = this.mask, table = this.table;
    let i = spread(mixOf(this.lo[s]!, this.hi[s]!, this.seed)) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = s + 1;
  }

  private insert(lo: number, hi: number, now: number): number {
    let s: number;
    if (this.freeList.length > 0) s = this.freeList.pop()!;
    else if (this.used < this.capacity) {
      if (this.used === this.slots) this.grow();
      s = this.used++;
    } else {
      s = this.victim();
      this.remove(s);
      this.freeList.pop(); // remove() offered s for reuse: it is taken here
      this.evicted++;
    }
    this.lo[s] = lo;
    this.hi[s] = hi;
    this.first[s] = now;
    this.counts[s] = 0;
    this.recent[s] = 0;
    this.place(s);
    this.count++;
    return s;
  }

  /** The CLOCK hand's next slot without its bit set (it clears the bits it passes). */
  private victim(): number {
    for (;;) {
      const s = this.hand;
      this.hand = s + 1 === this.used ? 0 : s + 1;
      if (this.hi[s] === FREE) continue;
      if (this.recent[s] === 0) return s;
      this.recent[s] = 0;
    }
  }

  /** Take slot `s` out of the probe table (backward-shift deletion keeps every probe run unbroken) and free it. */
  private remove(s: number): void {
    const mask = this.mask, table = this.table;
    let i = spread(mixOf(this.lo[s]!, this.hi[s]!, this.seed)) & mask;
    while (table[i] !== s + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const t = table[j]! - 1;
      const home = spread(mixOf(this.lo[t]!, this.hi[t]!, this.seed)) & mask;
      // Move t back into the hole at i unless its home lies cyclically in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
    this.onRemove?.(s);
    this.hi[s] = FREE;
    if (this.strings.size > 0) this.strings.delete(s);
    this.freeList.push(s);
    this.count--;
  }

  /** The slots in use, in the hand's order (roughly least recently seen first). */
  *slotsInUse(): IterableIterator<number> {
    const used = this.used;
    for (let k = 0; k < used; k++) {
      const s = (this.hand + k) % used;
      if (this.hi[s] !== FREE) yield s;
    }
  }

  /** A snapshot of every device (roughly least recently seen first). */
  *values(): IterableIterator<RegistryEntry> {
    for (const s of this.slotsInUse()) yield this.entry(s);
  }

  /** Drop devices not heard since `before` (clock ms). */
  prune(before: number): number {
    let n = 0;
    for (let s = 0; s < this.used; s++) {
      if (this.hi[s] !== FREE && this.last[s]! < before) {
        this.remove(s);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    for (let s = 0; s < this.used; s++) if (this.hi[s] !== FREE) this.onRemove?.(s);
    this.hi.fill(FREE);
    this.table.fill(0);
    this.strings.clear();
    this.freeList = [];
    this.count = 0;
    this.used = 0;
    this.hand = 0;
  }
}
