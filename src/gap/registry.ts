/**
 * The device registry: every advertiser the scanner has heard, with last-seen time, RSSI and its most
 * recent advertisement, bounded by least-recently-seen eviction so a day in a crowded hall cannot grow
 * memory without limit.
 *
 * A JavaScript Map iterates in insertion order, so "touch" (delete + set) keeps the least recently seen
 * device first and eviction is O(1). The key is address + address type: a public and a random address
 * with the same 48 bits are different devices (Core Vol 6, Part B, 1.3).
 */

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
}

export class DeviceRegistry<A> {
  private readonly map = new Map<string, RegistryEntry<A>>();
  evicted = 0;

  constructor(readonly capacity = 4096) {
    if (!(capacity >= 1)) throw new RangeError('registry capacity must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  static keyOf(address: string, addressType: string): string {
    return addressType + '/' + address;
  }

  get(address: string, addressType: string): RegistryEntry<A> | undefined {
    return this.map.get(DeviceRegistry.keyOf(address, addressType));
  }

  getByKey(key: string): RegistryEntry<A> | undefined {
    return this.map.get(key);
  }

  /** Record one report; returns the entry (new or existing), moved to the most-recently-seen end. */
  touch(key: string, address: string, addressType: string, rssi: number, now: number): { entry: RegistryEntry<A>; fresh: boolean } {
    let entry = this.map.get(key);
    let fresh = false;
    if (entry) {
      this.map.delete(key);
    } else {
      fresh = true;
      entry = { key, address, addressType, lastSeen: now, firstSeen: now, rssi, reports: 0, advertisement: undefined };
      if (this.map.size >= this.capacity) {
        const oldest = this.map.keys().next().value as string;
        this.map.delete(oldest);
        this.evicted++;
      }
    }
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    this.map.set(key, entry);
    return { entry, fresh };
  }

  /** Entries, least recently seen first. */
  values(): IterableIterator<RegistryEntry<A>> {
    return this.map.values();
  }

  /** Drop devices not heard since `before` (clock ms). */
  prune(before: number): number {
    let n = 0;
    for (const [k, e] of this.map) {
      if (e.lastSeen >= before) break; // ordered by last seen
      this.map.delete(k);
      n++;
    }
    return n;
  }

  clear(): void {
    this.map.clear();
  }
}
