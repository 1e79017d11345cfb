/**
 * Repeated attempts (Core Vol 3, Part H, 2.3.6): after a pairing with a peer fails its verification
 * (a confirm, DHKey check, passkey or comparison failure), a waiting interval must pass before we start
 * or accept another pairing with the same peer, and each further failure makes the interval grow
 * exponentially; a success resets it. One instance serves every link of an adapter. It reads the
 * injected clock only when asked and sets no timers, so it can never keep a process alive.
 */
import type { Clock } from '../clock.js';

export interface PairingAttemptsOptions {
  /** The wait after the first failure (default 2 s). */
  readonly initialMs?: number;
  /** The wait never grows beyond this (default 60 s). */
  readonly maxMs?: number;
  /** Peers remembered; the least recently failed is forgotten first (default 256). */
  readonly maxPeers?: number;
}

export class PairingAttempts {
  private readonly peers = new Map<string, { failures: number; until: number }>();
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly maxPeers: number;

  constructor(private readonly clock: Clock, options: PairingAttemptsOptions = {}) {
    this.initialMs = options.initialMs ?? 2_000;
    this.maxMs = options.maxMs ?? 60_000;
    this.maxPeers = options.maxPeers ?? 256;
  }

  /** Milliseconds still to wait before pairing with this peer (0: go ahead). */
  blockedFor(peer: string): number {
    const e = this.peers.get(peer.toUpperCase());
    return e ? Math.max(0, e.until - this.clock.now()) : 0;
  }

  /** A pairing with this peer failed its verification: the wait doubles. */
  failed(peer: string): void {
    const key = peer.toUpperCase();
    const prev = this.peers.get(key);
    const failures = (prev?.failures ?? 0) + 1;
    const wait = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(failures - 1, 30));
    this.peers.delete(key);
    this.peers.set(key, { failures, until: this.clock.now() + wait });
    if (this.peers.size > this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
  }

  /** A pairing with this peer succeeded: no wait any more. */
  succeeded(peer: string): void {
    this.peers.delete(peer.toUpperCase());
  }
}
