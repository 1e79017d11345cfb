import { ArgumentError } from '../errors.js';
/**
 * The device registry: every advertiser the scanner has heard, with last-seen time, RSSI and its most
 * recent advertisement, bounded so a day in a crowded hall cannot grow memory without limit.
 *
 * Eviction is CLOCK (second chance), an approximation of least-recently-seen: a report only sets the
 * entry's `recent` bit (no Map mutation on the hot path: delete + re-insert per report cost a third of
 * the scanner's time); when the registry is full, entries are taken from the insertion-ordered front,
 * and one with the bit set gets it cleared and moves to the back instead of being evicted.
 * Devices are kept per address type: a public and a random address with the same 48 bits are
 * different devices (Core Vol 6, Part B, 1.3). The key is a number, the 48 address bits plus the type
 * above them: a report read in place (hci/host.ts, scanner.ts) finds its device from the address
 * octets with no string built; the address string is made once, when the device is first heard, and
 * kept on the entry.
 */

/** The registry key's address-type part, above the 48 address bits. */
const TYPE_INDEX: Record<string, number> = { public: 0, random: 1, anonymous: 2 };
const TWO_48 = 2 ** 48;

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

/** The registry key of an address string and its API address type; NaN for a string that is no BD_ADDR. */
export function registryKey(address: string, addressType: string): number {
  const hex = address.replace(/[:-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) return NaN;
  return (TYPE_INDEX[addressType] ?? 3) * TWO_48 + parseInt(hex, 16);
}

/**
 * The slot of a registry key: a 32-bit integer, so the hot path's Map lookup takes a small integer
 * (V8 boxes the 50-bit key in a fresh 16-byte heap number for every lookup). Keys that share a slot
 * are chained on the entry (`next`). The mix is seeded per process, so a hostile advertiser cannot
 * choose addresses that pile into one chain; by chance, 10,000 devices share a slot about once in a
 * hundred runs. `lo` is the address's low 32 bits, `hi` its high 16 bits with the type above them.
 */
const SEED = (Math.random() * 0x100000000) | 0;
function slotOf(lo: number, hi: number, seed: number): number {
  return (lo ^ Math.imul(hi ^ seed, 0x9e3779b1)) | 0;
}
function slotOfKey(id: number, seed: number): number {
  return slotOf((id % 4294967296) | 0, Math.floor(id / 4294967296) | 0, seed);
}

export interface RegistryEntry<A> {
  readonly key: string;
  readonly address: string;
  readonly addressType: string;
  /** Clock time (ms) of the last report. */
  lastSeen: number;
  /** Clock time (ms) of the first report. */
  firstSeen: number;
  rssi: number;
  /** Reports received (including suppressed duplicates). */
  reports: number;
  advertisement: A | undefined;
  /** CLOCK bit: seen since the eviction hand last passed. */
  recent: boolean;
  /** The registry's numeric key (48 address bits and the type). */
  readonly id: number;
  /** @internal The next entry whose key shares this one's slot (rare). */
  next: RegistryEntry<A> | undefined;
}

/**
 * Advertisers the registry keeps by default (the adapter's; `Adapter.open({ registryCapacity })`
 * where offered). Every report of a new address adds one, so a crowded hall or a peer cycling random
 * addresses feeds it; beyond it the CLOCK hand evicts one (counted in `evicted`).
 */
export const DEFAULT_REGISTRY_CAPACITY = 4096;

export class DeviceRegistry<A> {
  /** Slot → the first entry of that slot. Insertion order is the CLOCK hand's order. */
  private readonly map = new Map<number, RegistryEntry<A>>();
  private count = 0;
  evicted = 0;

  /** `seed`: the slot mix's seed, random per process (a test passes one to make keys share a slot). */
  constructor(readonly capacity = DEFAULT_REGISTRY_CAPACITY, private readonly seed = SEED) {
    if (!(capacity >= 1)) throw new ArgumentError(`registry capacity must be at least 1, got ${capacity}`);
  }

  get size(): number {
    return this.count;
  }

  static keyOf(address: string, addressType: string): string {
    return addressType + '/' + address;
  }

  private find(slot: number, id: number): RegistryEntry<A> | undefined {
    let e = this.map.get(slot);
    while (e !== undefined && e.id !== id) e = e.next;
    return e;
  }

  get(address: string, addressType: string): RegistryEntry<A> | undefined {
    const id = registryKey(address, addressType);
    // A key that is no BD_ADDR (NaN) finds nothing; one that is finds its own entry.
    return Number.isNaN(id) ? undefined : this.find(slotOfKey(id, this.seed), id);
  }

  /** Record one report, by address string; returns the entry (new or existing). */
  touch(address: string, addressType: string, rssi: number, now: number): RegistryEntry<A> {
    let id = registryKey(address, addressType);
    let entry: RegistryEntry<A> | undefined;
    if (Number.isNaN(id)) id = -1 - this.count;
    else entry = this.find(slotOfKey(id, this.seed), id);
    if (entry === undefined) entry = this.insert(slotOfKey(id, this.seed), id, address, addressType, now, rssi);
    else entry.recent = true;
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    return entry;
  }

  /**
   * Record one report whose address is the 6 HCI octets at b[o] (read in place): no string is made
   * unless the device is new, and no number is boxed. `addressType` is the API type ('public' |
   * 'random' | 'anonymous').
   */
  touchAt(b: Uint8Array, o: number, addressType: string, rssi: number, now: number): RegistryEntry<A> {
    const type = TYPE_INDEX[addressType]!;
    const lo = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
    const slot = slotOf(lo, (type << 16) | (b[o + 5]! << 8) | b[o + 4]!, this.seed);
    // The key stays an unboxed double in a register here: it is only compared, never passed on.
    const id = type * TWO_48 + addressBits(b, o);
    let entry = this.map.get(slot);
    while (entry !== undefined && entry.id !== id) entry = entry.next;
    if (entry === undefined) entry = this.insert(slot, id, addressString(b, o), addressType, now, rssi);
    else entry.recent = true;
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    return entry;
  }

  private insert(slot: number, id: number, address: string, addressType: string, now: number, rssi: number): RegistryEntry<A> {
    if (this.count >= this.capacity) this.evictOne();
    const entry: RegistryEntry<A> = {
      key: DeviceRegistry.keyOf(address, addressType), address, addressType, lastSeen: now, firstSeen: now, rssi,
      reports: 0, advertisement: undefined, recent: false, id, next: undefined,
    };
    const head = this.map.get(slot);
    if (head === undefined) this.map.set(slot, entry);
    else {
      let tail = head;
      while (tail.next !== undefined) tail = tail.next;
      tail.next = entry;
    }
    this.count++;
    return entry;
  }

  /** Unlink `entry` from its slot's chain (the slot leaves the map when it was alone). */
  private unlink(slot: number, entry: RegistryEntry<A>): void {
    const head = this.map.get(slot);
    if (head === entry) {
      if (entry.next === undefined) this.map.delete(slot);
      else this.map.set(slot, entry.next); // keeps the slot's place in the hand's order
    } else {
      let e = head;
      while (e !== undefined && e.next !== entry) e = e.next;
      if (e !== undefined) e.next = entry.next;
    }
    entry.next = undefined;
    this.count--;
  }

  private evictOne(): void {
    // From the oldest insertion; second chance (to the back) for recently seen ones. A slot's chain
    // goes to the back as one; of a chain with none recent, the first entry is evicted.
    for (;;) {
      const first = this.map.entries().next().value as [number, RegistryEntry<A>] | undefined;
      if (!first) return;
      const [slot, head] = first;
      let recent = false;
      for (let e: RegistryEntry<A> | undefined = head; e !== undefined; e = e.next) {
        if (e.recent) recent = true;
        e.recent = false;
      }
      if (recent) {
        this.map.delete(slot);
        this.map.set(slot, head);
        continue;
      }
      this.unlink(slot, head);
      this.evicted++;
      return;
    }
  }

  /** Every entry (roughly least recently seen first). */
  *values(): IterableIterator<RegistryEntry<A>> {
    for (const head of this.map.values()) {
      for (let e: RegistryEntry<A> | undefined = head; e !== undefined;) {
        const next: RegistryEntry<A> | undefined = e.next;
        yield e;
        e = next;
      }
    }
  }

  /** Drop devices not heard since `before` (clock ms). */
  prune(before: number): number {
    let n = 0;
    for (const [slot, head] of [...this.map]) {
      for (let e: RegistryEntry<A> | undefined = head; e !== undefined;) {
        const next: RegistryEntry<A> | undefined = e.next;
        if (e.lastSeen < before) {
          this.unlink(slot, e);
          n++;
        }
        e = next;
      }
    }
    return n;
  }

  clear(): void {
    this.map.clear();
    this.count = 0;
  }
}
