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
}

/**
 * Advertisers the registry keeps by default (the adapter's; `Adapter.open({ registryCapacity })`
 * where offered). Every report of a new address adds one, so a crowded hall or a peer cycling random
 * addresses feeds it; beyond it the CLOCK hand evicts one (counted in `evicted`).
 */
export const DEFAULT_REGISTRY_CAPACITY = 4096;

export class DeviceRegistry<A> {
  /** Insertion order is the CLOCK hand's order. */
  private readonly map = new Map<number, RegistryEntry<A>>();
  evicted = 0;

  constructor(readonly capacity = DEFAULT_REGISTRY_CAPACITY) {
    if (!(capacity >= 1)) throw new ArgumentError(`registry capacity must be at least 1, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  static keyOf(address: string, addressType: string): string {
    return addressType + '/' + address;
  }

  get(address: string, addressType: string): RegistryEntry<A> | undefined {
    const entry = this.map.get(registryKey(address, addressType));
    // A key that is no BD_ADDR (NaN) finds nothing; one that is finds its own entry.
    return entry;
  }

  /** Record one report, by address string; returns the entry (new or existing). */
  touch(address: string, addressType: string, rssi: number, now: number): RegistryEntry<A> {
    const id = registryKey(address, addressType);
    let entry = Number.isNaN(id) ? undefined : this.map.get(id);
    if (entry === undefined) entry = this.insert(Number.isNaN(id) ? -1 - this.map.size : id, address, addressType, now, rssi);
    else entry.recent = true;
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    return entry;
  }

  /**
   * Record one report whose address is the 6 HCI octets at b[o] (read in place): no string is made
   * unless the device is new. `addressType` is the API type ('public' | 'random' | 'anonymous').
   */
  touchAt(b: Uint8Array, o: number, addressType: string, rssi: number, now: number): RegistryEntry<A> {
    const id = TYPE_INDEX[addressType]! * TWO_48 + addressBits(b, o);
    let entry = this.map.get(id);
    if (entry === undefined) entry = this.insert(id, addressString(b, o), addressType, now, rssi);
    else entry.recent = true;
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    return entry;
  }

  private insert(id: number, address: string, addressType: string, now: number, rssi: number): RegistryEntry<A> {
    if (this.map.size >= this.capacity) this.evictOne();
    const entry: RegistryEntry<A> = {
      key: DeviceRegistry.keyOf(address, addressType), address, addressType, lastSeen: now, firstSeen: now, rssi,
      reports: 0, advertisement: undefined, recent: false, id,
    };
    this.map.set(id, entry);
    return entry;
  }

  private evictOne(): void {
    // From the oldest insertion; second chance (to the back) for recently seen ones.
    for (;;) {
      const first = this.map.values().next().value as RegistryEntry<A> | undefined;
      if (!first) return;
      this.map.delete(first.id);
      if (first.recent) {
        first.recent = false;
        this.map.set(first.id, first);
        continue;
      }
      this.evicted++;
      return;
    }
  }

  /** Every entry (roughly least recently seen first). */
  values(): IterableIterator<RegistryEntry<A>> {
    return this.map.values();
  }

  /** Drop devices not heard since `before` (clock ms). */
  prune(before: number): number {
    let n = 0;
    for (const [k, e] of this.map) {
      if (e.lastSeen >= before) continue;
      this.map.delete(k);
      n++;
    }
    return n;
  }

  clear(): void {
    this.map.clear();
  }
}
