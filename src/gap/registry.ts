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
 * different devices (Core Vol 6, Part B, 1.3), and no key string is built per report.
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
  /** CLOCK bit: seen since the eviction hand last passed. */
  recent: boolean;
}

export class DeviceRegistry<A> {
  private readonly maps = new Map<string, Map<string, RegistryEntry<A>>>();
  private count = 0;
  evicted = 0;

  constructor(readonly capacity = 4096) {
    if (!(capacity >= 1)) throw new ArgumentError(`registry capacity must be at least 1, got ${capacity}`);
  }

  get size(): number {
    return this.count;
  }

  static keyOf(address: string, addressType: string): string {
    return addressType + '/' + address;
  }

  private mapOf(addressType: string): Map<string, RegistryEntry<A>> {
    let m = this.maps.get(addressType);
    if (!m) this.maps.set(addressType, (m = new Map()));
    return m;
  }

  get(address: string, addressType: string): RegistryEntry<A> | undefined {
    return this.maps.get(addressType)?.get(address);
  }

  /** Record one report; returns the entry (new or existing). */
  touch(address: string, addressType: string, rssi: number, now: number): RegistryEntry<A> {
    const m = this.mapOf(addressType);
    let entry = m.get(address);
    if (entry) {
      entry.recent = true;
    } else {
      if (this.count >= this.capacity) this.evictOne();
      entry = {
        key: DeviceRegistry.keyOf(address, addressType), address, addressType, lastSeen: now, firstSeen: now, rssi,
        reports: 0, advertisement: undefined, recent: false,
      };
      m.set(address, entry);
      this.count++;
    }
    entry.lastSeen = now;
    entry.rssi = rssi;
    entry.reports++;
    return entry;
  }

  private evictOne(): void {
    // Sweep the per-type maps from their oldest entries; second chance for recently seen ones.
    for (;;) {
      let oldest: RegistryEntry<A> | undefined;
      let from: Map<string, RegistryEntry<A>> | undefined;
      for (const m of this.maps.values()) {
        const first = m.values().next().value as RegistryEntry<A> | undefined;
        if (first && (!oldest || first.lastSeen < oldest.lastSeen || (first.lastSeen === oldest.lastSeen && !first.recent))) {
          oldest = first;
          from = m;
        }
      }
      if (!oldest || !from) return;
      from.delete(oldest.address);
      if (oldest.recent) {
        oldest.recent = false;
        from.set(oldest.address, oldest);
        continue;
      }
      this.count--;
      this.evicted++;
      return;
    }
  }

  /** Every entry (roughly least recently seen first per address type). */
  *values(): IterableIterator<RegistryEntry<A>> {
    for (const m of this.maps.values()) yield* m.values();
  }

  /** Drop devices not heard since `before` (clock ms). */
  prune(before: number): number {
    let n = 0;
    for (const m of this.maps.values()) {
      for (const [k, e] of m) {
        if (e.lastSeen >= before) continue;
        m.delete(k);
        n++;
      }
    }
    this.count -= n;
    return n;
  }

  clear(): void {
    this.maps.clear();
    this.count = 0;
  }
}
