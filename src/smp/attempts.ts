/**
 * Repeated attempts (Core Vol 3, Part H, 2.3.6). The section asks three things of the verifier:
 * - after a failed pairing, a waiting interval passes before it sends a new Pairing Request or Security
 *   Request to the same claimant, or answers one from a device claiming the same identity;
 * - each further failure makes the interval grow exponentially, up to an implementation maximum;
 * - the interval comes back down exponentially, to a minimum, once no failure has happened for a while.
 *
 * Here the interval after the n-th failure in a row is `initialMs * 2^(n-1)`, at most `maxMs` (2 s, 4 s,
 * ... 32 s, 60 s by default). Every `decayMs` without a failure after the wait has run out takes one
 * step back down (the interval halves); after n quiet periods the peer is forgotten and its next
 * failure waits `initialMs` again. A success forgets it at once. Only verification failures are
 * counted (the session decides which: a confirm, DHKey check, passkey or comparison failure).
 *
 * Why the decay does not help a brute-force attacker: with `decayMs >= maxMs` (the defaults: 60 s and
 * 60 s), a claimant that keeps failing can at best hold its level by waiting `wait + decayMs` between
 * attempts, so it never gets more than one attempt per `maxMs` on average, the same as at the cap.
 *
 * Keys: the session passes the peer's identity address when it is known (a bonded peer whose RPA was
 * resolved, or one that gave its identity), else the address on the link; so a known peer on a fresh
 * resolvable private address keeps its history. An unresolvable peer that changes its RPA at every
 * attempt is a new claimant each time: nothing per peer can stop that.
 *
 * Bounded: at most `maxPeers` claimants (default 256) are remembered; when one more fails, the fully
 * decayed ones are dropped first, then the least recently failed. One instance serves every link of an
 * adapter. It reads the injected clock only when asked and sets no timers, so it keeps no process alive.
 */
import type { Clock } from '../clock.js';
import { ArgumentError } from '../errors.js';

export interface PairingAttemptsOptions {
  /** The wait after the first failure: the minimum interval (default 2 s). */
  readonly initialMs?: number;
  /** The wait never grows beyond this (default 60 s). */
  readonly maxMs?: number;
  /** A quiet period this long after the wait ran out halves the interval again (default 60 s). */
  readonly decayMs?: number;
  /** Claimants remembered; the least recently failed is forgotten first (default 256). */
  readonly maxPeers?: number;
}

interface Entry {
  /** Failures in a row, after decay up to `since` (1 → initialMs, capped at the level reaching maxMs). */
  level: number;
  /** When the current wait ends; the decay clock starts here. */
  until: number;
}

export class PairingAttempts {
  private readonly peers = new Map<string, Entry>();
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly decayMs: number;
  private readonly maxPeers: number;
  /** The level whose interval first reaches maxMs: growing beyond it would only slow the decay. */
  private readonly maxLevel: number;

  constructor(private readonly clock: Clock, options: PairingAttemptsOptions = {}) {
    this.initialMs = options.initialMs ?? 2_000;
    this.maxMs = options.maxMs ?? 60_000;
    this.decayMs = options.decayMs ?? 60_000;
    this.maxPeers = options.maxPeers ?? 256;
    for (const [k, v] of Object.entries({ initialMs: this.initialMs, maxMs: this.maxMs, decayMs: this.decayMs, maxPeers: this.maxPeers })) {
      if (!Number.isFinite(v) || v < 1) throw new ArgumentError(`PairingAttempts: ${k} must be a positive number (got ${v})`);
    }
    if (this.maxMs < this.initialMs) throw new ArgumentError('PairingAttempts: maxMs must be at least initialMs');
    this.maxLevel = 1 + Math.ceil(Math.log2(this.maxMs / this.initialMs));
  }

  /** Claimants currently remembered, not yet fully decayed (at most maxPeers). */
  get size(): number {
    this.sweep();
    return this.peers.size;
  }

  /** Milliseconds still to wait before pairing with this claimant (0: go ahead). */
  blockedFor(peer: string): number {
    const e = this.current(peer.toUpperCase());
    return e ? Math.max(0, e.until - this.clock.now()) : 0;
  }

  /** The interval the next failure of this claimant would impose (decay applied), in ms. */
  nextWaitMs(peer: string): number {
    const level = this.current(peer.toUpperCase())?.level ?? 0;
    return this.waitFor(Math.min(this.maxLevel, level + 1));
  }

  /** A pairing with this claimant failed its verification: the wait doubles (from its decayed value). */
  failed(peer: string): void {
    const key = peer.toUpperCase();
    const level = Math.min(this.maxLevel, (this.current(key)?.level ?? 0) + 1);
    this.peers.delete(key); // re-inserted last: Map order is the LRU order
    this.peers.set(key, { level, until: this.clock.now() + this.waitFor(level) });
    if (this.peers.size > this.maxPeers) this.evict();
  }

  /** A pairing with this claimant succeeded: no wait any more. */
  succeeded(peer: string): void {
    this.peers.delete(peer.toUpperCase());
  }

  private waitFor(level: number): number {
    return level <= 0 ? 0 : Math.min(this.maxMs, this.initialMs * 2 ** (level - 1));
  }

  /** The entry with the decay up to now applied (and saved); undefined once fully decayed. */
  private current(key: string): Entry | undefined {
    const e = this.peers.get(key);
    if (!e) return undefined;
    const now = this.clock.now();
    if (now <= e.until) return e;
    const steps = Math.floor((now - e.until) / this.decayMs);
    if (steps <= 0) return e;
    if (steps >= e.level) {
      this.peers.delete(key);
      return undefined;
    }
    // Keep the entry's place in the LRU order; move the decay origin on by the periods used up.
    e.level -= steps;
    e.until += steps * this.decayMs;
    return e;
  }

  /** Drops the fully decayed (at most maxPeers + 1 entries: cheap). */
  private sweep(): void {
    for (const key of [...this.peers.keys()]) this.current(key);
  }

  private evict(): void {
    this.sweep();
    while (this.peers.size > this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
  }
}
