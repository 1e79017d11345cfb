/**
 * Per-device publish rate limits, so that a crowded room does not flood the broker:
 *   - a device whose advertising changed is published at once, but not more often than every
 *     `minIntervalMs` (a change inside that window is held and published when the window ends: the
 *     last state always gets out);
 *   - a device that keeps advertising the same data is published again every `maxIntervalMs` (a
 *     heartbeat with fresh RSSI and last-seen).
 * Pure logic on caller-supplied times (ms), no timers: the gateway calls `due()` from its tick.
 */
export interface RateLimits {
  /** Shortest time between two publications of one device (ms, default 1000). */
  minIntervalMs: number;
  /** Publish an unchanged device again after this long (ms, default 60 000). */
  maxIntervalMs: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { minIntervalMs: 1000, maxIntervalMs: 60_000 };

export interface RateState {
  /** Time of the last publication (ms), or -Infinity when never published. */
  lastPublished: number;
  /** A change is waiting for the window to end. */
  pending: boolean;
}

export type RateDecision = 'publish' | 'hold' | 'skip';

export function newRateState(): RateState {
  return { lastPublished: -Infinity, pending: false };
}

/**
 * Generic over the state's type so that a caller can keep the two fields inside its own per-device
 * record (the gateway does: no separate state object and no state → record map per device).
 */
export class RateLimiter<S extends RateState = RateState> {
  /** States with a held change, in the order they were held (a Set keeps the order). */
  private readonly held = new Set<S>();

  constructor(readonly limits: RateLimits = DEFAULT_RATE_LIMITS) {}

  /** One report of a device: publish now, hold it (a change inside the window), or skip it. */
  offer(state: S, changed: boolean, now: number): RateDecision {
    const since = now - state.lastPublished;
    if (changed || state.pending) {
      if (since >= this.limits.minIntervalMs) return 'publish';
      if (!state.pending) {
        state.pending = true;
        this.held.add(state);
      }
      return 'hold';
    }
    return since >= this.limits.maxIntervalMs ? 'publish' : 'skip';
  }

  /** Record a publication (clears a held change). */
  published(state: S, now: number): void {
    state.lastPublished = now;
    if (state.pending) {
      state.pending = false;
      this.held.delete(state);
    }
  }

  /** Held changes whose window has ended, oldest first; the caller publishes them (and calls published()). */
  due(now: number): S[] {
    const out: S[] = [];
    for (const s of this.held) if (now - s.lastPublished >= this.limits.minIntervalMs) out.push(s);
    return out;
  }

  /**
   * Take a held change off the list without publishing it: its owner keeps the report to publish
   * itself (the gateway's backlog while the broker is busy); published() later records the publication.
   */
  release(state: S): void {
    if (state.pending) {
      state.pending = false;
      this.held.delete(state);
    }
  }

  /** Forget a state (its device was evicted). */
  forget(state: S): void {
    this.held.delete(state);
  }

  get heldCount(): number {
    return this.held.size;
  }
}
