/**
 * A virtual peripheral's Security Manager: the responder side of pairing (Core Vol 3, Part H) on one
 * link, run by the same sans-IO SmpSession the host uses, plus the peer's bonds, so a later link is
 * re-encrypted from them. The controller asks it for the key when the central starts encryption
 * (the LTK request of Vol 6, Part B, 5.1.3, answered by the peer's host) and compares it with the
 * central's, as btvirt does: same key, Encryption Change; no key, PIN or Key Missing; another key,
 * MIC failure.
 *
 * Faults (SimPairing): dropped PDUs, silence (the central's SMP timeout), a corrupted confirm value,
 * forgotten bonds, a key withheld mid-pairing, a short maximum key size, one PDU replaced by other
 * octets. Every timer is a simulator event, cancelled on close.
 */
import type { Clock } from '../clock.js';
import { log } from '../log.js';
import { SmpIoCapability } from '../smp/pdus.js';
import { isResolvablePrivateAddress, rpaMatchesIrk } from '../gap/privacy.js';
import { SmpSession, type SmpAddress, type SmpLtk } from '../smp/session.js';
import type { SimEvent } from './clock.js';
import type { SimPairing } from './types.js';
import { bytesOf, type Rng } from './util.js';

const IO: Readonly<Record<NonNullable<SimPairing['io']>, SmpIoCapability>> = {
  displayOnly: SmpIoCapability.DisplayOnly, displayYesNo: SmpIoCapability.DisplayYesNo, keyboardOnly: SmpIoCapability.KeyboardOnly,
  noInputNoOutput: SmpIoCapability.NoInputNoOutput, keyboardDisplay: SmpIoCapability.KeyboardDisplay,
};
/** The peer's user takes this long to type a passkey or confirm digits (virtual time, µs). */
const USER_DELAY_US = 500_000;

/** A key the peer keeps for a central (by the central's address). */
export interface PeerBond {
  readonly ltk: SmpLtk;
  readonly authenticated: boolean;
  readonly secureConnections: boolean;
  readonly keySize: number;
  /** The central's IRK (SMP order) when it distributed one: its later RPAs find this bond. */
  readonly irk?: Uint8Array;
}

/** What the peer's pairing needs of its link. */
export interface PeerPairingApi {
  readonly clock: Clock;
  /** The central's address on this link (its own address type). */
  readonly central: SmpAddress;
  readonly local: SmpAddress;
  /** Keys the peer distributes when bonding: its IRK (SMP order) and identity address (privacy). */
  readonly keys?: { readonly irk: Uint8Array; readonly identity: SmpAddress };
  send(pdu: Uint8Array): void;
  terminate(reason: number): void;
  schedule(us: number, fn: () => void): SimEvent;
}

export interface PeerPairingStats {
  pairings: number;
  failures: number;
  lastFailure?: string;
  /** The six digits the peer displayed last. */
  displayed?: number;
  /** The peer's LE Secure Connections OOB data for its latest link (`scOob`), r and c MSO first. */
  oob?: { r: Uint8Array; c: Uint8Array };
}

export class PeerPairing {
  private readonly session: SmpSession;
  private readonly timers: SimEvent[] = [];
  private encryptingWith: PeerBond | undefined;
  /** The link is encrypted, and with an authenticated key. */
  encrypted = false;
  authenticated = false;
  keySize = 0;

  constructor(private readonly spec: SimPairing, private readonly api: PeerPairingApi,
    private readonly bonds: Map<string, PeerBond>, private readonly stats: PeerPairingStats, rng: Rng) {
    if (spec.forgetBonds) bonds.clear();
    this.session = new SmpSession({
      role: 'responder', local: api.local, peer: api.central, clock: api.clock,
      emit: a => {
        switch (a.kind) {
          case 'send': return this.send(a.pdu);
          case 'displayPasskey':
            this.stats.displayed = a.passkey;
            try { spec.onPasskeyDisplay?.(a.passkey); } catch (e) { log.sim('onPasskeyDisplay threw: %O', e); }
            return;
          case 'requestPasskey':
            this.later(() => this.session.passkeyEntered(spec.passkey ?? this.stats.displayed ?? 0));
            return;
          case 'numericComparison':
            this.later(() => this.session.numericComparisonResult(spec.confirm ?? true));
            return;
          case 'paired': {
            this.stats.pairings++;
            const r = a.result;
            const ltk = r.secureConnections ? r.ltk : r.local.ltk;
            if (r.bonded && ltk) {
              // Kept under the central's identity when it gave one (with its IRK: its next RPA resolves).
              bonds.set(key(r.peer.identity ?? api.central), { ltk, authenticated: r.authenticated, secureConnections: r.secureConnections,
                keySize: r.keySize, ...(r.peer.irk ? { irk: r.peer.irk } : {}) });
            }
            return;
          }
          case 'failed':
            this.stats.failures++;
            this.stats.lastFailure = a.error.message;
            return;
          case 'disconnect':
            return api.terminate(a.reason);
          default:
            return;
        }
      },
      io: IO[spec.io ?? 'noInputNoOutput'],
      bond: spec.bond ?? true,
      mitm: spec.mitm ?? false,
      secureConnections: spec.secureConnections ?? true,
      secureConnectionsOnly: spec.secureConnectionsOnly ?? false,
      maxKeySize: spec.maxKeySize ?? 16,
      minKeySize: Math.min(7, spec.maxKeySize ?? 16),
      ...(spec.oobTk !== undefined ? { oob: { legacyTk: bytesOf(spec.oobTk) } } : {}),
      random: n => Uint8Array.from({ length: n }, () => rng.int(0, 255)),
      ...(api.keys ? { keys: api.keys } : {}),
    });
    if (spec.scOob) stats.oob = this.session.localOobData();
    if (spec.securityRequestAfterMs !== undefined) {
      this.timers.push(api.schedule(spec.securityRequestAfterMs * 1000, () => this.session.requestSecurity()));
    }
  }

  /** An SMP PDU from the central. */
  receive(pdu: Uint8Array): void {
    if (this.spec.silent) return;
    // Pairing Request (0x01) refused with Pairing Failed, Pairing Not Supported (Vol 3, Part H,
    // 3.5.5), as Linux answers while its adapter is not bondable.
    if (this.spec.notSupported && pdu[0] === 0x01) return this.api.send(Uint8Array.of(0x05, 0x05));
    this.session.receive(pdu);
  }

  /**
   * The central started encryption with EDIV/Rand (the peer's LTK request): the key the peer's host
   * gives its controller (the pairing's STK / LTK, else a bond for this central), or undefined.
   */
  ltkFor(ediv: number, rand: Uint8Array): { key: Uint8Array; keySize: number } | undefined {
    if (this.spec.withholdKey) return undefined;
    const fresh = this.session.ltkRequest(ediv, rand);
    if (fresh) {
      this.encryptingWith = undefined;
      return { key: fresh, keySize: this.session.negotiatedKeySize ?? 16 };
    }
    const bond = this.bonds.get(key(this.api.central)) ?? this.bondByIrk();
    if (bond && bond.ltk.ediv === ediv && bond.ltk.rand.every((b, i) => b === rand[i])) {
      this.encryptingWith = bond;
      return { key: bond.ltk.key, keySize: bond.keySize };
    }
    return undefined;
  }

  /** The bond whose IRK resolves the central's RPA (Vol 3, Part C, 10.7.1.1), if any. */
  private bondByIrk(): PeerBond | undefined {
    const c = this.api.central;
    if (c.type !== 1 || !isResolvablePrivateAddress(c.address)) return undefined;
    for (const b of this.bonds.values()) if (b.irk && rpaMatchesIrk(b.irk, c.address)) return b;
    return undefined;
  }

  /** The controller's Encryption Change on the peer's side. */
  encryptionChanged(status: number, keySize: number): void {
    if (status === 0) {
      this.encrypted = true;
      this.keySize = keySize;
      if (this.encryptingWith) this.authenticated = this.encryptingWith.authenticated;
      else if (this.session.negotiatedKeySize !== undefined) this.authenticated = this.pendingAuthenticated();
    }
    this.encryptingWith = undefined;
    this.session.encryptionChanged(status, status === 0 ? keySize : undefined);
  }

  closed(): void {
    for (const t of this.timers) t.cancel();
    this.session.linkClosed();
  }

  private pendingAuthenticated(): boolean {
    const m = this.session.method;
    return m !== undefined && m !== 'justWorks';
  }

  private replaced = false;

  private send(pdu: Uint8Array): void {
    if (this.spec.silent || this.spec.dropPdus?.includes(pdu[0] ?? -1)) return;
    const r = this.spec.replacePdu;
    if (r && !this.replaced && pdu[0] === r.code) {
      this.replaced = true;
      return this.api.send(bytesOf(r.with));
    }
    if (this.spec.corruptConfirm && pdu[0] === 0x03) {
      const bad = pdu.slice();
      bad[1] = bad[1]! ^ 0x01;
      return this.api.send(bad);
    }
    this.api.send(pdu);
  }

  private later(fn: () => void): void {
    this.timers.push(this.api.schedule(USER_DELAY_US, fn));
  }
}

function key(a: SmpAddress): string {
  return `${a.type}-${a.address.toUpperCase()}`;
}
