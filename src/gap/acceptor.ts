/**
 * Accepting (the connectable modes of Core Vol 3, Part C, 9.3): connections where we are the peripheral,
 * reported by LE (Enhanced) Connection Complete with Role 0x01 (Vol 4, Part E, 7.7.65.1). One room of
 * the GAP scheduler (`link/manager.ts`), next to initiating; the scheduler builds the link, the same
 * role-neutral link an initiated connection gets, and asks this room whether to keep it.
 *
 * This is the seam the peripheral role fills: the advertiser will register here to learn that its
 * connectable advertising produced a link (connectable advertising ends with its connection), and an
 * application may refuse peers. Until then every incoming link is accepted and announced as a
 * connection, as before.
 */
import type { AddressType } from './scanner.js';

/** What the acceptor knows of an incoming connection when it decides. */
export interface IncomingConnection {
  readonly handle: number;
  readonly address: string;
  readonly addressType: AddressType;
}

/** 'accept' keeps the link; 'refuse' disconnects it at once (Remote User Terminated Connection, 0x13). */
export type AcceptDecision = 'accept' | 'refuse';

export class Acceptor {
  private policy: ((c: IncomingConnection) => AcceptDecision) | undefined;
  private readonly listeners = new Set<(c: IncomingConnection) => void>();
  /** Incoming links accepted and refused so far. */
  readonly stats = { accepted: 0, refused: 0 };

  /** Decide about incoming links (default: accept every one). */
  setPolicy(policy: ((c: IncomingConnection) => AcceptDecision) | undefined): void {
    this.policy = policy;
  }

  /** Learn of every accepted incoming link (the advertiser: its connectable set produced one). */
  onAccepted(fn: (c: IncomingConnection) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** @internal The scheduler: a peripheral-role link completed. */
  decide(c: IncomingConnection): AcceptDecision {
    let d: AcceptDecision = 'accept';
    try {
      d = this.policy?.(c) ?? 'accept';
    } catch {
      d = 'refuse'; // a policy that throws cannot have meant to accept
    }
    if (d === 'refuse') {
      this.stats.refused++;
      return d;
    }
    this.stats.accepted++;
    for (const fn of this.listeners) {
      try { fn(c); } catch { /* a listener's failure is not the link's */ }
    }
    return d;
  }
}
