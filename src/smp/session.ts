/**
 * The Security Manager's pairing state machine for one LE link (Core Vol 3, Part H, 2.3, 3.5, 3.6;
 * the message sequence charts of Appendix C), sans-IO: it reads no clock but the injected one, does no
 * I/O, and reports everything it wants done as `SmpAction`s through `emit`.
 *
 * Inputs: `receive(frame)` (an SMP PDU from L2CAP CID 0x0006), `pair()` (initiator) and
 * `requestSecurity()` (responder), the user's answers (`passkeyEntered`, `passkeyCancelled`,
 * `numericComparisonResult`), the controller's encryption events (`encryptionChanged`, and
 * `ltkRequest` on the responder), timer expiry on the injected clock, and `linkClosed()`.
 * Outputs: PDUs to send, a key to start encryption with (initiator: HCI LE Enable Encryption), what to
 * show or ask the user, and the outcome (`paired` with every key, or `failed` with a typed error).
 *
 * Both roles and every method: LE legacy Just Works / Passkey Entry / OOB, LE Secure Connections Just
 * Works / Numeric Comparison / Passkey Entry (20 rounds) / OOB. Values are kept most significant octet
 * first (the toolbox's order) and reversed on and off the wire (3.1). Keys in results are in wire /
 * HCI order (least significant octet first), ready for LE Enable Encryption and LTK Request Reply.
 */
import type { Clock, TimerId } from '../clock.js';
import { ArgumentError, DecodeError, DisconnectedError, InvalidStateError, SmpError, TimeoutError } from '../errors.js';
import { fromHex } from '../bytes/hex.js';
import { p256Generate, randomBytes as osRandom, type P256KeyPair } from '../platform/crypto.js';
import {
  SC_DEBUG_PUBLIC_KEY_X, SC_DEBUG_PUBLIC_KEY_Y, c1, f4, f5, f6, g2, linkKeyFromLtk, p256Ecdh, p256IsValidPublicKey, reversed, s1,
} from './crypto.js';
import { isAuthenticated, isPasskey, selectMethod, PAIRING_METHOD_NAMES, type PairingMethod } from './methods.js';
import {
  SMP_AUTH_REQ, SMP_BONDING, SMP_KEY_DIST, SMP_PAIRING_FAILED_NAMES, SmpIoCapability, SmpPairingFailedReason as R, authReqBonds, decodeSmp, encodeSmp,
  type SmpKind, type SmpPdu, type SmpPduOf,
} from './pdus.js';
import type { PairingAttempts } from './attempts.js';

/** An LE device address as used on the link: type 0 public, 1 random; "AA:BB:CC:DD:EE:FF". */
export interface SmpAddress {
  readonly type: 0 | 1;
  readonly address: string;
}

/** An LTK with its EDIV and Rand, as LE Enable Encryption takes them (wire order). */
export interface SmpLtk {
  readonly key: Uint8Array;
  readonly ediv: number;
  readonly rand: Uint8Array;
}

/** Keys one side distributed (3.6). All octet strings in wire order. */
export interface SmpDistributedKeys {
  ltk?: SmpLtk;
  irk?: Uint8Array;
  identity?: SmpAddress;
  csrk?: Uint8Array;
}

export interface PairingResult {
  readonly method: PairingMethod;
  readonly secureConnections: boolean;
  /** MITM protection (every method but Just Works). */
  readonly authenticated: boolean;
  readonly keySize: number;
  /** Both sides asked for bonding: the keys are meant to be stored. */
  readonly bonded: boolean;
  /**
   * The key that re-encrypts a later link with the same roles: the SC LTK (EDIV 0, Rand 0), or in
   * legacy pairing the LTK the responder distributed (absent when it distributed none).
   */
  readonly ltk?: SmpLtk;
  readonly local: SmpDistributedKeys;
  readonly peer: SmpDistributedKeys;
  /** BR/EDR link key derived from the SC LTK (2.4.2.4) when a LinkKey bit was negotiated. */
  readonly linkKey?: Uint8Array;
}

export type SmpAction =
  | { readonly kind: 'send'; readonly pdu: Uint8Array }
  /** Initiator: start (or refresh) encryption with this key (HCI LE Enable Encryption). */
  | { readonly kind: 'startEncryption'; readonly ltk: SmpLtk }
  | { readonly kind: 'displayPasskey'; readonly passkey: number }
  /** The user must type the six digits the other device shows; answer with passkeyEntered(). */
  | { readonly kind: 'requestPasskey' }
  /** Show the six digits and ask whether the other device shows the same; answer numericComparisonResult(). */
  | { readonly kind: 'numericComparison'; readonly value: number }
  /** Initiator: the peer sent a Security Request (3.6.7). */
  | { readonly kind: 'securityRequest'; readonly authReq: number }
  | { readonly kind: 'paired'; readonly result: PairingResult }
  | { readonly kind: 'failed'; readonly error: SmpError | TimeoutError | DisconnectedError }
  /** The link must be dropped (an encryption key shorter than allowed, a KNOB-style downgrade). */
  | { readonly kind: 'disconnect'; readonly reason: number };

export interface SmpSessionOptions {
  readonly role: 'initiator' | 'responder';
  /** Our address on this link and the peer's (ia/ra of c1, A/B of f5 and f6). */
  readonly local: SmpAddress;
  readonly peer: SmpAddress;
  readonly clock: Clock;
  readonly emit: (action: SmpAction) => void;
  /** IO capability (3.5.1); default NoInputNoOutput. */
  readonly io?: SmpIoCapability;
  /** Ask for bonding (default true). */
  readonly bond?: boolean;
  /** Ask for MITM protection (the MITM bit of AuthReq, 3.5.1; default false). */
  readonly mitm?: boolean;
  /**
   * Insist on MITM protection: when the IO capabilities allow only Just Works the pairing fails with
   * Authentication Requirements instead of giving an unauthenticated key (default false).
   */
  readonly requireMitm?: boolean;
  /** Offer LE Secure Connections (default true). */
  readonly secureConnections?: boolean;
  /** Refuse LE legacy pairing (default false). */
  readonly secureConnectionsOnly?: boolean;
  /** Set CT2 (h7 for cross-transport derivation, default true). */
  readonly ct2?: boolean;
  /**
   * Smallest encryption key size accepted, 7..16 (default 16). Below 16 an attacker who can
   * interfere with pairing can force a short, brute-forceable key; lower it only for old devices.
   */
  readonly minKeySize?: number;
  /** Largest key size offered (default 16). */
  readonly maxKeySize?: number;
  /**
   * Out-of-band data. `legacyTk`: the 128-bit TK both sides received out of band (MSO first), LE
   * legacy OOB. `peer`: the SC OOB data (r, c; MSO first) received from the peer. Our own SC OOB data
   * comes from `localOobData()`.
   */
  readonly oob?: { readonly legacyTk?: Uint8Array; readonly peer?: { readonly r: Uint8Array; readonly c: Uint8Array } };
  /**
   * Our SC OOB data as handed out before this session existed (2.3.5.6.4): the key pair and r it was
   * made from. The session pairs with that key pair, and `localOobData()` returns that r and c.
   */
  readonly localOob?: { readonly keyPair: P256KeyPair; readonly r: Uint8Array };
  /** What we distribute besides the LTK: our IRK with our identity address, our CSRK (wire order). */
  readonly keys?: { readonly irk?: Uint8Array; readonly identity?: SmpAddress; readonly csrk?: Uint8Array };
  /** Accept a peer presenting the SC debug key (2.3.5.6.1; anyone can decrypt such a link). Default false. */
  readonly allowDebugKeys?: boolean;
  /** Our P-256 key pair (default: a fresh one; tests pass a fixed one). */
  readonly keyPair?: P256KeyPair;
  /** Random octets (default: the OS CSPRNG; tests pass a seeded source). */
  readonly random?: (n: number) => Uint8Array;
  /** The SMP timeout, 30 s (3.4). */
  readonly timeoutMs?: number;
  /** Repeated-attempts back-off shared by every link of an adapter (2.3.6). */
  readonly attempts?: PairingAttempts;
  /**
   * The peer's identity address when known (a bond, or its RPA resolved with a bonded IRK):
   * the back-off is kept under it, so a known peer on a new RPA keeps its history (2.3.6, "a device
   * claiming the same identity"). Read at each check; absent or undefined: the address on the link.
   */
  readonly peerIdentity?: () => SmpAddress | undefined;
  /**
   * Initiator: a bonded key for this peer. A Security Request is then answered by encrypting with it
   * when it satisfies the request (MITM asked → the key must be authenticated), else by pairing.
   */
  readonly bondedKey?: SmpLtk & { readonly authenticated: boolean };
}

/** Which side the session's pairing features came from. */
interface Features {
  readonly ioCapability: number;
  readonly oobDataFlag: number;
  readonly authReq: number;
  readonly maxEncryptionKeySize: number;
  readonly initiatorKeyDistribution: number;
  readonly responderKeyDistribution: number;
}

type Step =
  | 'waitPasskey' | 'waitConfirm' | 'waitRandom' | 'waitPublicKey' | 'waitUser' | 'waitDhKeyCheck';

/** One pairing in progress: what phase 1 negotiated, and the values phase 2 builds up. */
interface Pairing {
  step: Step;
  readonly initiator: boolean;
  readonly preq: Uint8Array; // the 7-octet commands, MSO first (c1's order)
  readonly pres: Uint8Array;
  readonly req: Features;
  readonly res: Features;
  readonly sc: boolean;
  readonly method: PairingMethod;
  readonly keySize: number;
  readonly bonding: boolean;
  readonly initDist: number;
  readonly respDist: number;
  // addresses, MSO first
  readonly ia: Uint8Array; readonly iat: number;
  readonly ra: Uint8Array; readonly rat: number;
  // legacy
  tk?: Uint8Array;
  localRand?: Uint8Array;
  peerConfirm?: Uint8Array;
  stk?: Uint8Array;
  // SC
  passkey?: number;
  peerX?: Uint8Array; peerY?: Uint8Array;
  dhKey?: Uint8Array;
  round: number;
  na?: Uint8Array; nb?: Uint8Array;
  userOk: boolean;
  peerCheck?: Uint8Array;
  macKey?: Uint8Array;
  ltk?: Uint8Array; // wire order, masked
  // key distribution
  expect: SmpKind[];
  local: SmpDistributedKeys;
  peer: SmpDistributedKeys;
  pendingKeys: Uint8Array[];
  peerIrkSeen?: Uint8Array;
}

/** The session's states: a discriminated union on `phase`. */
type State =
  | { readonly phase: 'idle' }
  | { readonly phase: 'securityRequested' }
  | { readonly phase: 'reencrypting' }
  | { readonly phase: 'awaitPairingResponse'; readonly preq: Uint8Array; readonly req: Features }
  | { readonly phase: 'pairing'; readonly p: Pairing }
  | { readonly phase: 'encrypting'; readonly p: Pairing }
  | { readonly phase: 'keyDistribution'; readonly p: Pairing }
  | { readonly phase: 'dead' };

const SMP_TIMEOUT_MS = 30_000;
const ZERO16 = new Uint8Array(16);
/** Key distribution PDUs a side sends for its negotiated bits, in the order 3.6.1 requires. */
function distKinds(bits: number, sc: boolean): SmpKind[] {
  const k: SmpKind[] = [];
  if (SMP_KEY_DIST.has(bits, 'encKey') && !sc) k.push('encryptionInformation', 'centralIdentification');
  if (SMP_KEY_DIST.has(bits, 'idKey')) k.push('identityInformation', 'identityAddressInformation');
  if (SMP_KEY_DIST.has(bits, 'signKey')) k.push('signingInformation');
  return k;
}
/**
 * At most this many key-distribution PDUs are held while the initiator waits for Encryption Change:
 * a responder distributes at most five (Encryption Information, Central Identification, Identity
 * Information, Identity Address Information, Signing Information; Vol 3, Part H, 3.6.1), so a sixth
 * is not an early key but a protocol error (Pairing Failed, Unspecified Reason).
 */
const MAX_HELD_PDUS = 5;
/** Pairing failures that are verification failures: they count for the repeated-attempts back-off. */
const AUTH_FAILURES = new Set<number>([R.PasskeyEntryFailed, R.ConfirmValueFailed, R.DhKeyCheckFailed, R.NumericComparisonFailed]);

function addrBytes(a: SmpAddress): Uint8Array {
  return fromHex(a.address);
}
function eq(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
function featuresBytes(code: number, f: Features): Uint8Array {
  // The command as c1 wants it (2.2.3): most significant octet first, i.e. the wire octets reversed.
  return Uint8Array.of(f.responderKeyDistribution, f.initiatorKeyDistribution, f.maxEncryptionKeySize, f.authReq,
    f.oobDataFlag, f.ioCapability, code);
}
/** A 128-bit value holding n, MSO first (TK for legacy passkey, ra/rb for SC passkey). */
function u128(n: number): Uint8Array {
  const v = new Uint8Array(16);
  v[12] = n >>> 24; v[13] = (n >>> 16) & 0xff; v[14] = (n >>> 8) & 0xff; v[15] = n & 0xff;
  return v;
}
/** Keep the `size` least significant octets of an MSO-first key (2.3.4). */
function maskMso(key: Uint8Array, size: number): Uint8Array {
  const k = key.slice();
  k.fill(0, 0, 16 - size);
  return k;
}

/**
 * Out-of-band data that cannot work is an ArgumentError at once: a legacy TK is 128 bits (2.3.5.4),
 * SC OOB r and c are 128 bits each (2.3.5.6.4). A wrong-size TK used to reach c1 and fail the
 * pairing only at the SMP timeout, 30 s later.
 */
export function checkOob(oob: SmpSessionOptions['oob'] | undefined): ArgumentError | undefined {
  if (oob === undefined) return undefined;
  const is16 = (v: unknown): boolean => v instanceof Uint8Array && v.length === 16;
  if (oob.legacyTk !== undefined && !is16(oob.legacyTk)) {
    return new ArgumentError(`oob.legacyTk must be 16 octets (a 128-bit TK, Vol 3, Part H, 2.3.5.4); got ${describeBytes(oob.legacyTk)}`);
  }
  if (oob.peer !== undefined && !(is16(oob.peer?.r) && is16(oob.peer?.c))) {
    return new ArgumentError('oob.peer r and c must be 16 octets each (Vol 3, Part H, 2.3.5.6.4)');
  }
  return undefined;
}
function describeBytes(v: unknown): string {
  return v instanceof Uint8Array ? `${v.length} octets` : typeof v;
}

export class SmpSession {
  private state: State = { phase: 'idle' };
  private timer: TimerId | undefined;
  private readonly o: SmpSessionOptions;
  private readonly random: (n: number) => Uint8Array;
  private keyPairCache: P256KeyPair | undefined;
  private localOob: { r: Uint8Array; c: Uint8Array } | undefined;
  private peerOob: { readonly r: Uint8Array; readonly c: Uint8Array } | undefined;
  private readonly minKeySize: number;
  private readonly maxKeySize: number;

  constructor(options: SmpSessionOptions) {
    this.o = options;
    this.random = options.random ?? osRandom;
    this.minKeySize = options.minKeySize ?? 16;
    this.maxKeySize = options.maxKeySize ?? 16;
    this.peerOob = options.oob?.peer;
    if (options.localOob) {
      const { keyPair, r } = options.localOob;
      this.keyPairCache = keyPair;
      this.localOob = { r, c: f4(keyPair.x, keyPair.x, r, 0) };
    }
    if (!(this.minKeySize >= 7 && this.minKeySize <= 16) || !(this.maxKeySize >= this.minKeySize && this.maxKeySize <= 16)) {
      throw new ArgumentError('minKeySize must be 7..16 and maxKeySize minKeySize..16 (Vol 3, Part H, 2.3.4)');
    }
    if (options.secureConnectionsOnly && options.secureConnections === false) {
      throw new ArgumentError('secureConnectionsOnly needs secureConnections');
    }
    const bad = checkOob(options.oob);
    if (bad) throw bad;
  }

  /** The key size negotiated by the pairing in progress (2.3.4), while there is one. */
  get negotiatedKeySize(): number | undefined {
    const s = this.state;
    return s.phase === 'pairing' || s.phase === 'encrypting' || s.phase === 'keyDistribution' ? s.p.keySize : undefined;
  }

  /** The method of the pairing in progress, while there is one. */
  get method(): PairingMethod | undefined {
    const s = this.state;
    return s.phase === 'pairing' || s.phase === 'encrypting' || s.phase === 'keyDistribution' ? s.p.method : undefined;
  }

  /** The current phase, for diagnostics and tests. */
  get phase(): State['phase'] {
    return this.state.phase;
  }

  private get keyPair(): P256KeyPair {
    return (this.keyPairCache ??= this.o.keyPair ?? p256Generate());
  }

  /**
   * Our LE Secure Connections OOB data (2.3.5.6.4): a random r and c = f4(PKx, PKx, r, 0), MSO first,
   * to hand to the peer out of band before pairing. Generated once per session.
   */
  localOobData(): { r: Uint8Array; c: Uint8Array } {
    if (!this.localOob) {
      const r = this.random(16);
      this.localOob = { r, c: f4(this.keyPair.x, this.keyPair.x, r, 0) };
    }
    return this.localOob;
  }

  /** The peer's SC OOB data (r, c; MSO first), when it arrives after the session was made (e.g. NFC). */
  setPeerOobData(data: { readonly r: Uint8Array; readonly c: Uint8Array }): void {
    if (data.r.length !== 16 || data.c.length !== 16) throw new ArgumentError('OOB r and c are 16 octets each');
    this.peerOob = data;
  }

  // ----------------------------------------------------------------------------------------------
  // Inputs

  /** Initiator: start pairing with a Pairing Request (3.5.1). */
  pair(): void {
    if (this.o.role !== 'initiator') throw new InvalidStateError('smp: only the initiator (central) sends a Pairing Request; the responder calls requestSecurity()');
    this.assertAlive();
    if (this.state.phase !== 'idle' && this.state.phase !== 'reencrypting') throw new InvalidStateError(`smp: pairing already in progress (${this.state.phase})`);
    const wait = this.o.attempts?.blockedFor(this.attemptsKey()) ?? 0;
    if (wait > 0) {
      this.o.emit({ kind: 'failed', error: new SmpError(R.RepeatedAttempts, SMP_PAIRING_FAILED_NAMES[R.RepeatedAttempts]!, 'local',
        `a recent pairing with this peer failed; wait ${Math.ceil(wait / 1000)} s before trying again (Vol 3, Part H, 2.3.6)`) });
      return;
    }
    const req = this.localFeatures(undefined);
    const preq = featuresBytes(0x01, req);
    this.state = { phase: 'awaitPairingResponse', preq, req };
    this.send({ kind: 'pairingRequest', ...req });
  }

  /** Responder: ask the central to secure the link (Security Request, 3.6.7). */
  requestSecurity(): void {
    if (this.o.role !== 'responder') throw new InvalidStateError('smp: only the responder (peripheral) sends a Security Request');
    this.assertAlive();
    if (this.state.phase !== 'idle') return;
    // 2.3.6: no Security Request to a claimant still in its waiting interval either.
    const wait = this.o.attempts?.blockedFor(this.attemptsKey()) ?? 0;
    if (wait > 0) {
      this.o.emit({ kind: 'failed', error: new SmpError(R.RepeatedAttempts, SMP_PAIRING_FAILED_NAMES[R.RepeatedAttempts]!, 'local',
        `a recent pairing with this peer failed; wait ${Math.ceil(wait / 1000)} s before asking again (Vol 3, Part H, 2.3.6)`) });
      return;
    }
    this.state = { phase: 'securityRequested' };
    this.send({ kind: 'securityRequest', authReq: this.authReq() });
  }

  /** The user typed the passkey the other device shows (0..999999). */
  passkeyEntered(passkey: number): void {
    const s = this.state;
    if (s.phase !== 'pairing' || !isPasskey(s.p.method) || s.p.passkey !== undefined || this.displays(s.p)) return;
    if (!Number.isInteger(passkey) || passkey < 0 || passkey > 999_999) {
      this.fail(R.PasskeyEntryFailed, 'the passkey must be six digits, 000000-999999');
      return;
    }
    this.setPasskey(s.p, passkey);
    this.afterPasskey(s.p);
  }

  /** The user cancelled passkey entry: Pairing Failed, Passkey Entry Failed. */
  passkeyCancelled(): void {
    if (this.state.phase === 'pairing' && isPasskey(this.state.p.method)) this.fail(R.PasskeyEntryFailed, 'the user cancelled passkey entry');
  }

  /**
   * The application gave up on this pairing (pair()'s signal fired or its deadline passed, with no
   * other caller still waiting). A pairing under way ends with Pairing Failed, Unspecified Reason
   * (3.5.5: "no further communication for the current pairing procedure is to occur"), so the peer
   * does not wait out its own 30 s SMP timeout; the timer stops and the session is idle again, so a
   * later pair() on this link works. BlueZ does the same when a pairing is cancelled
   * (smp_cancel_and_remove_pairing: SMP_UNSPECIFIED unless complete). It is not an authentication
   * failure, so it does not count towards the repeated-attempts back-off (2.3.6). A Security Request
   * still unanswered just stops waiting (nothing to tell the central). Returns whether anything ended.
   */
  cancel(detail: string): boolean {
    const ph = this.state.phase;
    if (ph === 'securityRequested') {
      this.finishProcedure();
      return true;
    }
    if (ph !== 'awaitPairingResponse' && ph !== 'pairing' && ph !== 'encrypting' && ph !== 'keyDistribution') return false;
    const reason = R.UnspecifiedReason;
    this.o.emit({ kind: 'send', pdu: encodeSmp({ kind: 'pairingFailed', reason }) });
    this.stopTimer();
    this.state = { phase: 'idle' };
    this.o.emit({ kind: 'failed', error: new SmpError(reason, SMP_PAIRING_FAILED_NAMES[reason]!, 'local', detail) });
    return true;
  }

  /** The user's answer to numeric comparison (both devices show the same six digits?). */
  numericComparisonResult(match: boolean): void {
    const s = this.state;
    if (s.phase !== 'pairing' || s.p.method !== 'numericComparison' || s.p.userOk) return;
    if (!match) {
      this.fail(R.NumericComparisonFailed, 'the user said the six digits differ');
      return;
    }
    s.p.userOk = true;
    if (s.p.initiator) {
      if (s.p.step === 'waitUser') this.sendDhKeyCheck(s.p);
    } else if (s.p.peerCheck) {
      this.checkInitiatorDhKeyCheck(s.p);
    }
  }

  /**
   * The controller's Encryption Change (or Key Refresh Complete): `status` 0 on success, and the key
   * size read with HCI Read Encryption Key Size when known.
   */
  encryptionChanged(status: number, keySize?: number): void {
    const s = this.state;
    if (s.phase === 'reencrypting') {
      this.state = { phase: 'idle' };
      if (status !== 0) this.pair(); // the bond did not work (e.g. the peer lost it): pair afresh
      return;
    }
    if (s.phase === 'securityRequested') {
      // The central answered our Security Request by encrypting with a bond: the procedure is done.
      if (status === 0) this.finishProcedure();
      return;
    }
    if (s.phase !== 'encrypting') return;
    const p = s.p;
    if (status !== 0) {
      // Tell the peer (Pairing Failed, Unspecified Reason): its side of the pairing otherwise waits
      // for keys that never come until its own 30 s SMP timeout (3.4) — a controller that refuses LE
      // Enable Encryption or an Encryption Change with an error leaves the link up. On a link that
      // is gone the PDU is simply not sent.
      this.fail(R.UnspecifiedReason, `encryption with the new key failed (HCI status 0x${status.toString(16).padStart(2, '0')})`,
        true, 'encryption', status);
      return;
    }
    if (keySize !== undefined && keySize < p.keySize) {
      this.fail(R.EncryptionKeySize, `the controller reports a ${keySize}-octet key where ${p.keySize} was negotiated; the link is dropped`);
      this.o.emit({ kind: 'disconnect', reason: 0x05 });
      return;
    }
    this.startKeyDistribution(p);
  }

  /**
   * Responder: the controller asks for the LTK of EDIV/Rand (HCI LE Long Term Key Request). During
   * pairing (EDIV 0, Rand 0) the answer is the STK or the SC LTK; undefined means "not ours": the owner
   * looks in its bond store or sends a negative reply.
   */
  ltkRequest(ediv: number, rand: Uint8Array): Uint8Array | undefined {
    const s = this.state;
    if (s.phase !== 'encrypting' || s.p.initiator) return undefined;
    if (ediv !== 0 || !eq(rand, new Uint8Array(8))) return undefined;
    return s.p.sc ? s.p.ltk : s.p.stk;
  }

  /**
   * The link is gone: stop the timer; a pairing in progress fails with DisconnectedError, carrying
   * the link's HCI reason (and its name) when the caller knows it (the link's DisconnectedError).
   */
  linkClosed(cause?: { readonly reason?: number | undefined; readonly reasonName?: string | undefined }): void {
    const busy = this.state.phase !== 'idle' && this.state.phase !== 'dead';
    this.stopTimer();
    this.state = { phase: 'dead' };
    if (busy) this.o.emit({ kind: 'failed', error: new DisconnectedError('smp: pairing', cause?.reason, cause?.reasonName) });
  }

  /** An SMP PDU arrived on CID 0x0006. Any octets are acceptable input; none crashes or hangs. */
  receive(frame: Uint8Array): void {
    if (this.state.phase === 'dead' || frame.length === 0) return; // 3.4: no SMP after a timeout; nothing to answer
    let pdu: SmpPdu | { kind: 'unknown' };
    try {
      pdu = decodeSmp(frame) as SmpPdu | { kind: 'unknown' };
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // 3.3: a command of the wrong length is answered with Invalid Parameters.
      if (frame.length > 0 && frame[0] === 0x05) return; // a broken Pairing Failed is not answered
      this.failOrAnswer(R.InvalidParameters, `a malformed SMP PDU (${e.reason})`);
      return;
    }
    if (pdu.kind === 'unknown') {
      this.failOrAnswer(R.CommandNotSupported, `an SMP command with unknown code 0x${(frame[0] ?? 0).toString(16)}`);
      return;
    }
    this.dispatch(pdu as SmpPdu);
  }

  // ----------------------------------------------------------------------------------------------
  // Dispatch

  private dispatch(pdu: SmpPdu): void {
    const s = this.state;
    if (pdu.kind === 'pairingFailed') {
      if (s.phase === 'idle' || s.phase === 'reencrypting') return;
      const name = SMP_PAIRING_FAILED_NAMES[pdu.reason] ?? `reserved reason 0x${pdu.reason.toString(16)}`;
      this.end(new SmpError(pdu.reason, name, 'peer'), pdu.reason);
      return;
    }
    if (pdu.kind === 'pairingKeypressNotification') return; // informative only; we never set Keypress
    switch (s.phase) {
      case 'idle':
      case 'securityRequested':
        if (pdu.kind === 'pairingRequest') {
          if (this.o.role !== 'responder') this.answer(R.CommandNotSupported);
          else this.onPairingRequest(pdu);
        } else if (pdu.kind === 'securityRequest' && this.o.role === 'initiator' && s.phase === 'idle') {
          this.onSecurityRequest(pdu.authReq);
        }
        // Anything else outside a pairing is dropped: answering stray PDUs invites ping-pong.
        return;
      case 'reencrypting':
        return;
      case 'awaitPairingResponse':
        if (pdu.kind === 'securityRequest') return; // 3.6.7: ignored while pairing
        if (pdu.kind !== 'pairingResponse') return this.unexpected(pdu.kind);
        this.onPairingResponse(s.preq, s.req, pdu);
        return;
      case 'pairing':
        if (pdu.kind === 'securityRequest') return;
        this.onPhase2(s.p, pdu);
        return;
      case 'encrypting':
        if (pdu.kind === 'securityRequest') return;
        // The peer's keys can overtake our Encryption Change event (ACL data and events travel apart):
        // hold a few and replay them once encryption is on.
        if (distKinds(s.p.initiator ? s.p.respDist : s.p.initDist, s.p.sc).includes(pdu.kind) && s.p.pendingKeys.length < MAX_HELD_PDUS) {
          s.p.pendingKeys.push(encodeSmp(pdu));
          return;
        }
        this.unexpected(pdu.kind);
        return;
      case 'keyDistribution':
        if (pdu.kind === 'securityRequest') return;
        this.onKey(s.p, pdu);
        return;
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Phase 1: feature exchange and method selection (2.3.5.1)

  private authReq(): number {
    return SMP_AUTH_REQ.pack({
      bondingFlags: (this.o.bond ?? true) ? SMP_BONDING : 0, mitm: !!this.o.mitm,
      sc: this.o.secureConnections ?? true, ct2: this.o.ct2 ?? true,
    });
  }

  /** The key-distribution bits we can send. */
  private ourSendBits(): number {
    const k = this.o.keys;
    return SMP_KEY_DIST.pack({ encKey: true, idKey: !!(k?.irk && k.identity), signKey: !!k?.csrk, linkKey: true });
  }
  private static readonly RECEIVE_BITS = SMP_KEY_DIST.known;

  /** Our Pairing Request (initiator, `peer` undefined) or Response features. */
  private localFeatures(peer: Features | undefined): Features {
    // OOB flag: legacy TK known, or SC OOB data received from the peer (2.3.5.6.4; 3.5.1).
    const oob = this.o.oob?.legacyTk || this.peerOob ? 1 : 0;
    if (!peer) {
      return {
        ioCapability: this.o.io ?? SmpIoCapability.NoInputNoOutput, oobDataFlag: oob, authReq: this.authReq(),
        maxEncryptionKeySize: this.maxKeySize,
        initiatorKeyDistribution: (this.o.bond ?? true) ? this.ourSendBits() : 0,
        responderKeyDistribution: (this.o.bond ?? true) ? SmpSession.RECEIVE_BITS : 0,
      };
    }
    const bonding = (this.o.bond ?? true) && authReqBonds(peer.authReq);
    return {
      ioCapability: this.o.io ?? SmpIoCapability.NoInputNoOutput, oobDataFlag: oob, authReq: this.authReq(),
      maxEncryptionKeySize: this.maxKeySize,
      initiatorKeyDistribution: bonding ? peer.initiatorKeyDistribution & SmpSession.RECEIVE_BITS : 0,
      responderKeyDistribution: bonding ? peer.responderKeyDistribution & this.ourSendBits() : 0,
    };
  }

  /** Checks the peer's features; returns a failure reason and detail or undefined. */
  private checkFeatures(f: Features): [number, string] | undefined {
    if (f.ioCapability > 4) return [R.InvalidParameters, `reserved IO capability 0x${f.ioCapability.toString(16)}`];
    if (f.oobDataFlag > 1) return [R.InvalidParameters, `reserved OOB data flag 0x${f.oobDataFlag.toString(16)}`];
    if (f.maxEncryptionKeySize < 7 || f.maxEncryptionKeySize > 16) {
      return [R.InvalidParameters, `maximum encryption key size ${f.maxEncryptionKeySize} is outside 7..16`];
    }
    return undefined;
  }

  private onPairingRequest(pdu: SmpPduOf<'pairingRequest'>): void {
    const wait = this.o.attempts?.blockedFor(this.attemptsKey()) ?? 0;
    if (wait > 0) {
      this.startTimerIfIdle();
      this.fail(R.RepeatedAttempts, `a recent pairing with this peer failed; it may retry in ${Math.ceil(wait / 1000)} s (2.3.6)`);
      return;
    }
    const req: Features = pdu;
    const bad = this.checkFeatures(req);
    this.startTimerIfIdle();
    if (bad) return this.fail(bad[0], bad[1]);
    const res = this.localFeatures(req);
    const preq = featuresBytes(0x01, req);
    const pres = featuresBytes(0x02, res);
    const p = this.negotiate(preq, pres, req, res);
    if (!p) return;
    this.send({ kind: 'pairingResponse', ...res });
    this.beginPhase2(p);
  }

  private onPairingResponse(preq: Uint8Array, req: Features, pdu: SmpPduOf<'pairingResponse'>): void {
    const res: Features = pdu;
    const bad = this.checkFeatures(res);
    if (bad) return this.fail(bad[0], bad[1]);
    if ((res.initiatorKeyDistribution & ~req.initiatorKeyDistribution) || (res.responderKeyDistribution & ~req.responderKeyDistribution)) {
      return this.fail(R.InvalidParameters, 'the Pairing Response asks for keys the request did not offer (3.6.1)');
    }
    const p = this.negotiate(preq, featuresBytes(0x02, res), req, res);
    if (p) this.beginPhase2(p);
  }

  /** Method, key size and distribution from both sides' features, or a failure (then undefined). */
  private negotiate(preq: Uint8Array, pres: Uint8Array, req: Features, res: Features): Pairing | undefined {
    const initiator = this.o.role === 'initiator';
    const sc = SMP_AUTH_REQ.has(req.authReq & res.authReq, 'sc');
    if (this.o.secureConnectionsOnly && !sc) {
      this.fail(R.AuthenticationRequirements, 'the peer does not support LE Secure Connections and secureConnectionsOnly is set');
      return undefined;
    }
    const keySize = Math.min(req.maxEncryptionKeySize, res.maxEncryptionKeySize);
    if (keySize < this.minKeySize || (this.o.secureConnectionsOnly && keySize < 16)) {
      this.fail(R.EncryptionKeySize, `the peer offers at most a ${keySize}-octet key; at least ${this.minKeySize} is required`);
      return undefined;
    }
    const method = selectMethod(sc, req, res);
    if (this.o.requireMitm && !isAuthenticated(method)) {
      this.fail(R.AuthenticationRequirements, 'MITM protection is required but the IO capabilities allow only Just Works');
      return undefined;
    }
    // OOB needs the data the flags promise (2.3.5.6.4): SC: the peer has ours → we must have made it.
    const peerFlag = (initiator ? res : req).oobDataFlag === 1;
    if (method === 'oob') {
      if (!sc && !this.o.oob?.legacyTk) {
        this.fail(R.OobNotAvailable, 'legacy OOB pairing without a TK');
        return undefined;
      }
      if (sc && peerFlag && !this.localOob) {
        this.fail(R.OobNotAvailable, 'the peer has OOB data from us but this session made none (call localOobData() first)');
        return undefined;
      }
    }
    const bonding = authReqBonds(req.authReq & res.authReq);
    const local = this.o.local, peer = this.o.peer;
    const [I, Rr] = initiator ? [local, peer] : [peer, local];
    return {
      step: 'waitConfirm', initiator, preq, pres, req, res, sc, method, keySize, bonding,
      initDist: bonding ? res.initiatorKeyDistribution : 0, respDist: bonding ? res.responderKeyDistribution : 0,
      ia: addrBytes(I), iat: I.type, ra: addrBytes(Rr), rat: Rr.type,
      round: 0, userOk: method !== 'numericComparison', expect: [], local: {}, peer: {}, pendingKeys: [],
    };
  }

  /** Whether we display the passkey (the other side types it). */
  private displays(p: Pairing): boolean {
    return p.initiator ? p.method === 'passkeyInitiatorDisplays' : p.method === 'passkeyResponderDisplays';
  }

  private setPasskey(p: Pairing, n: number): void {
    p.passkey = n;
    if (!p.sc) p.tk = u128(n);
  }

  /** A uniformly distributed six-digit passkey (rejection sampling over 32 random bits). */
  private newPasskey(): number {
    for (;;) {
      const b = this.random(4);
      const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (v < 4_294_000_000) return v % 1_000_000;
    }
  }

  private beginPhase2(p: Pairing): void {
    this.state = { phase: 'pairing', p };
    if (isPasskey(p.method)) {
      if (this.displays(p)) {
        this.setPasskey(p, this.newPasskey());
        this.o.emit({ kind: 'displayPasskey', passkey: p.passkey! });
      } else {
        this.o.emit({ kind: 'requestPasskey' });
      }
    } else if (!p.sc) {
      p.tk = p.method === 'oob' ? this.o.oob!.legacyTk!.slice() : new Uint8Array(16);
    }
    if (this.state.phase !== 'pairing' || this.state.p !== p) return; // the emit handler may have answered or failed
    if (!p.sc) {
      if (p.initiator) {
        if (p.tk) this.sendLegacyConfirm(p);
        else p.step = 'waitPasskey';
      } else {
        p.step = 'waitConfirm';
      }
      return;
    }
    p.step = 'waitPublicKey';
    if (p.initiator) this.sendPublicKey();
  }

  /** The passkey became known (typed by the user). */
  private afterPasskey(p: Pairing): void {
    if (p.step !== 'waitPasskey') return;
    if (!p.sc) {
      if (p.initiator) this.sendLegacyConfirm(p);
      else this.sendLegacyResponderConfirm(p);
      return;
    }
    if (p.initiator) this.sendPasskeyRoundConfirm(p);
    else this.sendPasskeyRoundResponderConfirm(p);
  }

  // ----------------------------------------------------------------------------------------------
  // Phase 2

  private onPhase2(p: Pairing, pdu: SmpPdu): void {
    switch (pdu.kind) {
      case 'pairingConfirm': return this.onConfirm(p, reversed(pdu.confirmValue));
      case 'pairingRandom': return this.onRandom(p, reversed(pdu.randomValue));
      case 'pairingPublicKey': return this.onPublicKey(p, reversed(pdu.publicKeyX), reversed(pdu.publicKeyY));
      case 'pairingDhKeyCheck': return this.onDhKeyCheck(p, reversed(pdu.dhKeyCheck));
      default: return this.unexpected(pdu.kind);
    }
  }

  private sendLegacyConfirm(p: Pairing): void {
    p.localRand = this.random(16);
    const conf = c1(p.tk!, p.localRand, p.preq, p.pres, p.iat, p.rat, p.ia, p.ra);
    p.step = 'waitConfirm';
    this.send({ kind: 'pairingConfirm', confirmValue: reversed(conf) });
  }

  private sendLegacyResponderConfirm(p: Pairing): void {
    p.localRand = this.random(16);
    const conf = c1(p.tk!, p.localRand, p.preq, p.pres, p.iat, p.rat, p.ia, p.ra);
    p.step = 'waitRandom';
    this.send({ kind: 'pairingConfirm', confirmValue: reversed(conf) });
  }

  private onConfirm(p: Pairing, value: Uint8Array): void {
    if (p.step !== 'waitConfirm') return this.unexpected('pairingConfirm');
    p.peerConfirm = value;
    if (!p.sc) {
      if (p.initiator) {
        p.step = 'waitRandom';
        this.send({ kind: 'pairingRandom', randomValue: reversed(p.localRand!) });
      } else if (p.tk) {
        this.sendLegacyResponderConfirm(p);
      } else {
        p.step = 'waitPasskey';
      }
      return;
    }
    if (p.method === 'oob') return this.unexpected('pairingConfirm');
    if (isPasskey(p.method)) {
      if (p.initiator) {
        p.step = 'waitRandom';
        this.send({ kind: 'pairingRandom', randomValue: reversed(p.na!) });
      } else if (p.passkey !== undefined) {
        this.sendPasskeyRoundResponderConfirm(p);
      } else {
        p.step = 'waitPasskey';
      }
      return;
    }
    // Just Works / Numeric Comparison: only the initiator receives Cb (2.3.5.6.2).
    if (!p.initiator) return this.unexpected('pairingConfirm');
    p.na = this.random(16);
    p.step = 'waitRandom';
    this.send({ kind: 'pairingRandom', randomValue: reversed(p.na) });
  }

  private onRandom(p: Pairing, value: Uint8Array): void {
    if (p.step !== 'waitRandom') return this.unexpected('pairingRandom');
    if (!p.sc) return this.onLegacyRandom(p, value);
    const pkA = p.initiator ? this.keyPair.x : p.peerX!;
    const pkB = p.initiator ? p.peerX! : this.keyPair.x;
    if (isPasskey(p.method)) {
      const z = 0x80 | ((p.passkey! >>> p.round) & 1);
      if (p.initiator) {
        if (!eq(f4(pkB, pkA, value, z), p.peerConfirm)) return this.fail(R.ConfirmValueFailed, `the responder's confirm of passkey round ${p.round + 1} does not match`);
        p.nb = value;
        if (++p.round < 20) return this.sendPasskeyRoundConfirm(p);
        return this.sendDhKeyCheck(p);
      }
      if (!eq(f4(pkA, pkB, value, z), p.peerConfirm)) return this.fail(R.ConfirmValueFailed, `the initiator's confirm of passkey round ${p.round + 1} does not match`);
      p.na = value;
      this.send({ kind: 'pairingRandom', randomValue: reversed(p.nb!) });
      if (++p.round < 20) {
        p.step = 'waitConfirm';
      } else {
        p.step = 'waitDhKeyCheck';
      }
      return;
    }
    if (p.method === 'oob') {
      if (p.initiator) {
        p.nb = value;
        return this.sendDhKeyCheck(p);
      }
      p.na = value;
      p.nb = this.random(16);
      p.step = 'waitDhKeyCheck';
      this.send({ kind: 'pairingRandom', randomValue: reversed(p.nb) });
      return;
    }
    // Just Works / Numeric Comparison.
    if (p.initiator) {
      if (!eq(f4(pkB, pkA, value, 0), p.peerConfirm)) return this.fail(R.ConfirmValueFailed, "the responder's confirm value does not match its random");
      p.nb = value;
      if (p.method === 'numericComparison') {
        p.step = 'waitUser';
        this.o.emit({ kind: 'numericComparison', value: g2(pkA, pkB, p.na!, p.nb) % 1_000_000 });
        return;
      }
      return this.sendDhKeyCheck(p);
    }
    p.na = value;
    p.step = 'waitDhKeyCheck';
    this.send({ kind: 'pairingRandom', randomValue: reversed(p.nb!) });
    if (p.method === 'numericComparison') {
      this.o.emit({ kind: 'numericComparison', value: g2(pkA, pkB, p.na, p.nb!) % 1_000_000 });
    }
  }

  private onLegacyRandom(p: Pairing, value: Uint8Array): void {
    const expect = c1(p.tk!, value, p.preq, p.pres, p.iat, p.rat, p.ia, p.ra);
    if (!eq(expect, p.peerConfirm)) {
      return this.fail(R.ConfirmValueFailed, p.method === 'justWorks' ? 'the confirm value does not match its random'
        : 'the confirm value does not match: a wrong passkey or OOB key on one side?');
    }
    const [srand, mrand] = p.initiator ? [value, p.localRand!] : [p.localRand!, value];
    p.stk = reversed(maskMso(s1(p.tk!, srand, mrand), p.keySize));
    this.state = { phase: 'encrypting', p };
    if (p.initiator) {
      this.o.emit({ kind: 'startEncryption', ltk: { key: p.stk, ediv: 0, rand: new Uint8Array(8) } });
    } else {
      this.send({ kind: 'pairingRandom', randomValue: reversed(p.localRand!) });
    }
  }

  private sendPublicKey(): void {
    this.send({ kind: 'pairingPublicKey', publicKeyX: reversed(this.keyPair.x), publicKeyY: reversed(this.keyPair.y) });
  }

  private onPublicKey(p: Pairing, x: Uint8Array, y: Uint8Array): void {
    if (!p.sc || p.step !== 'waitPublicKey') return this.unexpected('pairingPublicKey');
    // Defences (each before any DHKey is computed).
    if (!p256IsValidPublicKey(x, y)) {
      return this.fail(R.DhKeyCheckFailed, 'the peer public key is not a point of P-256 (invalid-curve attack, CVE-2018-5383)');
    }
    if (eq(x, this.keyPair.x)) {
      return this.fail(R.DhKeyCheckFailed, 'the peer sent our own public key back (reflection attack, CVE-2020-26558)');
    }
    if (!this.o.allowDebugKeys && eq(x, SC_DEBUG_PUBLIC_KEY_X) && eq(y, SC_DEBUG_PUBLIC_KEY_Y)) {
      return this.fail(R.AuthenticationRequirements, 'the peer uses the LE Secure Connections debug key (2.3.5.6.1); set allowDebugKeys to accept');
    }
    p.peerX = x;
    p.peerY = y;
    p.dhKey = p256Ecdh(this.keyPair.privateKey, x, y);
    if (!p.initiator) this.sendPublicKey();
    const pkA = p.initiator ? this.keyPair.x : x;
    const pkB = p.initiator ? x : this.keyPair.x;
    if (p.method === 'oob') {
      // Check the peer's commitment when we hold its OOB data (our flag set).
      const theirs = this.peerOob;
      if (theirs) {
        const pk = p.initiator ? pkB : pkA;
        if (!eq(f4(pk, pk, theirs.r, 0), theirs.c)) return this.fail(R.ConfirmValueFailed, "the peer's OOB confirm value does not match its public key");
      }
      if (p.initiator) {
        p.na = this.random(16);
        p.step = 'waitRandom';
        this.send({ kind: 'pairingRandom', randomValue: reversed(p.na) });
      } else {
        p.step = 'waitRandom';
      }
      return;
    }
    if (isPasskey(p.method)) {
      if (p.initiator) {
        if (p.passkey !== undefined) this.sendPasskeyRoundConfirm(p);
        else p.step = 'waitPasskey';
      } else {
        p.step = 'waitConfirm';
      }
      return;
    }
    // Just Works / Numeric Comparison: the responder commits to Nb first (2.3.5.6.2).
    if (p.initiator) {
      p.step = 'waitConfirm';
      return;
    }
    p.nb = this.random(16);
    p.step = 'waitRandom';
    this.send({ kind: 'pairingConfirm', confirmValue: reversed(f4(pkB, pkA, p.nb, 0)) });
  }

  /** Initiator, passkey round p.round: Nai and Cai = f4(PKax, PKbx, Nai, 0x80 | bit). */
  private sendPasskeyRoundConfirm(p: Pairing): void {
    const z = 0x80 | ((p.passkey! >>> p.round) & 1);
    p.na = this.random(16);
    p.step = 'waitConfirm';
    this.send({ kind: 'pairingConfirm', confirmValue: reversed(f4(this.keyPair.x, p.peerX!, p.na, z)) });
  }

  /** Responder, passkey round p.round (after the initiator's Cai): Nbi and Cbi. */
  private sendPasskeyRoundResponderConfirm(p: Pairing): void {
    const z = 0x80 | ((p.passkey! >>> p.round) & 1);
    p.nb = this.random(16);
    p.step = 'waitRandom';
    this.send({ kind: 'pairingConfirm', confirmValue: reversed(f4(this.keyPair.x, p.peerX!, p.nb, z)) });
  }

  /** ra and rb of f6 (2.3.5.6.5), MSO first. */
  private checkInputs(p: Pairing): { ra: Uint8Array; rb: Uint8Array } {
    if (isPasskey(p.method)) {
      const r = u128(p.passkey!);
      return { ra: r, rb: r };
    }
    if (p.method === 'oob') {
      const local = this.localOob?.r, peer = this.peerOob?.r;
      // Our r counts when the peer's flag says it holds our data; theirs when ours says we hold it.
      const ourFlagged = (p.initiator ? p.req : p.res).oobDataFlag === 1;
      const peerFlagged = (p.initiator ? p.res : p.req).oobDataFlag === 1;
      const mine = peerFlagged && local ? local : ZERO16;
      const theirs = ourFlagged && peer ? peer : ZERO16;
      return p.initiator ? { ra: mine, rb: theirs } : { ra: theirs, rb: mine };
    }
    return { ra: ZERO16, rb: ZERO16 };
  }

  private deriveKeys(p: Pairing): { A: Uint8Array; B: Uint8Array; ioA: Uint8Array; ioB: Uint8Array } {
    const A = Uint8Array.of(p.iat, ...p.ia), B = Uint8Array.of(p.rat, ...p.ra);
    if (!p.macKey) {
      const { macKey, ltk } = f5(p.dhKey!, p.na!, p.nb!, A, B);
      p.macKey = macKey;
      p.ltk = reversed(maskMso(ltk, p.keySize));
    }
    const ioA = Uint8Array.of(p.req.authReq, p.req.oobDataFlag, p.req.ioCapability);
    const ioB = Uint8Array.of(p.res.authReq, p.res.oobDataFlag, p.res.ioCapability);
    return { A, B, ioA, ioB };
  }

  /** Initiator, authentication stage 2: Ea = f6(MacKey, Na, Nb, rb, IOcapA, A, B). */
  private sendDhKeyCheck(p: Pairing): void {
    const { A, B, ioA } = this.deriveKeys(p);
    const { rb } = this.checkInputs(p);
    p.step = 'waitDhKeyCheck';
    this.send({ kind: 'pairingDhKeyCheck', dhKeyCheck: reversed(f6(p.macKey!, p.na!, p.nb!, rb, ioA, A, B)) });
  }

  private onDhKeyCheck(p: Pairing, value: Uint8Array): void {
    if (!p.sc || p.step !== 'waitDhKeyCheck' || (!p.initiator && p.peerCheck)) return this.unexpected('pairingDhKeyCheck');
    if (p.initiator) {
      const { A, B, ioB } = this.deriveKeys(p);
      const { ra } = this.checkInputs(p);
      if (!eq(f6(p.macKey!, p.nb!, p.na!, ra, ioB, B, A), value)) return this.fail(R.DhKeyCheckFailed, "the responder's DHKey check value does not match");
      this.state = { phase: 'encrypting', p };
      this.o.emit({ kind: 'startEncryption', ltk: { key: p.ltk!, ediv: 0, rand: new Uint8Array(8) } });
      return;
    }
    p.peerCheck = value;
    if (p.userOk) this.checkInitiatorDhKeyCheck(p);
  }

  /** Responder: verify Ea, answer Eb = f6(MacKey, Nb, Na, ra, IOcapB, B, A). */
  private checkInitiatorDhKeyCheck(p: Pairing): void {
    const { A, B, ioA, ioB } = this.deriveKeys(p);
    const { ra, rb } = this.checkInputs(p);
    if (!eq(f6(p.macKey!, p.na!, p.nb!, rb, ioA, A, B), p.peerCheck)) return this.fail(R.DhKeyCheckFailed, "the initiator's DHKey check value does not match");
    this.state = { phase: 'encrypting', p };
    this.send({ kind: 'pairingDhKeyCheck', dhKeyCheck: reversed(f6(p.macKey!, p.nb!, p.na!, ra, ioB, B, A)) });
  }

  // ----------------------------------------------------------------------------------------------
  // Phase 3: key distribution (3.6)

  private startKeyDistribution(p: Pairing): void {
    this.state = { phase: 'keyDistribution', p };
    const respKinds = distKinds(p.respDist, p.sc), initKinds = distKinds(p.initDist, p.sc);
    const held = p.pendingKeys.splice(0);
    if (p.initiator) {
      p.expect = respKinds;
      if (p.expect.length === 0) return this.sendOurKeys(p, true);
    } else {
      p.expect = initKinds;
      this.sendOurKeys(p, initKinds.length === 0);
    }
    for (const f of held) {
      if (this.state.phase !== 'keyDistribution' || this.state.p !== p) return;
      this.receive(f);
    }
  }

  private sendOurKeys(p: Pairing, finish: boolean): void {
    const bits = p.initiator ? p.initDist : p.respDist;
    const k = this.o.keys;
    if (SMP_KEY_DIST.has(bits, 'encKey') && !p.sc) {
      const key = reversed(maskMso(this.random(16), p.keySize));
      const rb = this.random(10);
      const ediv = rb[0]! | (rb[1]! << 8);
      const rand = rb.slice(2);
      p.local.ltk = { key, ediv, rand };
      this.send({ kind: 'encryptionInformation', longTermKey: key });
      this.send({ kind: 'centralIdentification', ediv, rand });
    }
    if (SMP_KEY_DIST.has(bits, 'idKey') && k?.irk && k.identity) {
      p.local.irk = k.irk;
      p.local.identity = k.identity;
      this.send({ kind: 'identityInformation', identityResolvingKey: k.irk });
      this.send({ kind: 'identityAddressInformation', addrType: k.identity.type, bdAddr: k.identity.address.toUpperCase() });
    }
    if (SMP_KEY_DIST.has(bits, 'signKey') && k?.csrk) {
      p.local.csrk = k.csrk;
      this.send({ kind: 'signingInformation', signatureKey: k.csrk });
    }
    if (finish) this.complete(p);
  }

  private onKey(p: Pairing, pdu: SmpPdu): void {
    const want = p.expect[0];
    if (pdu.kind !== want) return this.unexpected(pdu.kind);
    p.expect.shift();
    switch (pdu.kind) {
      case 'encryptionInformation':
        p.peer.ltk = { key: pdu.longTermKey.slice(), ediv: 0, rand: new Uint8Array(8) };
        break;
      case 'centralIdentification':
        p.peer.ltk = { key: p.peer.ltk!.key, ediv: pdu.ediv, rand: pdu.rand.slice() };
        break;
      case 'identityInformation':
        p.peerIrkSeen = pdu.identityResolvingKey.slice();
        break;
      case 'identityAddressInformation': {
        const top = parseInt(pdu.bdAddr.slice(0, 2), 16) >> 6;
        if (pdu.addrType > 1 || (pdu.addrType === 1 && top !== 0b11)) {
          return this.fail(R.InvalidParameters, `the identity address ${pdu.bdAddr} (type ${pdu.addrType}) is neither public nor static random (3.6.5)`);
        }
        p.peer.irk = p.peerIrkSeen;
        p.peer.identity = { type: pdu.addrType as 0 | 1, address: pdu.bdAddr };
        break;
      }
      case 'signingInformation':
        p.peer.csrk = pdu.signatureKey.slice();
        break;
    }
    if (p.expect.length > 0) return;
    if (p.initiator) this.sendOurKeys(p, true);
    else this.complete(p);
  }

  private complete(p: Pairing): void {
    if (this.state.phase !== 'keyDistribution') return;
    this.finishProcedure();
    this.o.attempts?.succeeded(this.attemptsKey());
    if (p.peer.identity) this.o.attempts?.succeeded(p.peer.identity.address);
    const ltk: SmpLtk | undefined = p.sc ? { key: p.ltk!, ediv: 0, rand: new Uint8Array(8) } : p.initiator ? p.peer.ltk : p.local.ltk;
    const ct2 = SMP_AUTH_REQ.has(p.req.authReq & p.res.authReq, 'ct2');
    const linkKey = p.sc && SMP_KEY_DIST.has(p.initDist | p.respDist, 'linkKey') ? reversed(linkKeyFromLtk(reversed(p.ltk!), ct2)) : undefined;
    const result: PairingResult = {
      method: p.method, secureConnections: p.sc, authenticated: isAuthenticated(p.method), keySize: p.keySize, bonded: p.bonding,
      ...(ltk ? { ltk } : {}), local: p.local, peer: p.peer, ...(linkKey ? { linkKey } : {}),
    };
    this.o.emit({ kind: 'paired', result });
  }

  // ----------------------------------------------------------------------------------------------
  // Security Request (initiator side, 2.4.6 / 3.6.7)

  private onSecurityRequest(authReq: number): void {
    this.o.emit({ kind: 'securityRequest', authReq });
    if (this.state.phase !== 'idle') return; // the handler already acted (e.g. called pair())
    const bonded = this.o.bondedKey;
    if (bonded && (!SMP_AUTH_REQ.has(authReq, 'mitm') || bonded.authenticated)) {
      this.state = { phase: 'reencrypting' };
      this.o.emit({ kind: 'startEncryption', ltk: { key: bonded.key, ediv: bonded.ediv, rand: bonded.rand } });
      return;
    }
    // 2.3.6: a Security Request from a claimant in its waiting interval is answered with Pairing
    // Failed (Repeated Attempts) rather than left to the peer's SMP timeout; pair() reports it locally.
    if ((this.o.attempts?.blockedFor(this.attemptsKey()) ?? 0) > 0) this.answer(R.RepeatedAttempts);
    this.pair();
  }

  /** The back-off key (2.3.6): the peer's identity address when known, else its address on the link. */
  private attemptsKey(): string {
    return (this.o.peerIdentity?.() ?? this.o.peer).address;
  }

  // ----------------------------------------------------------------------------------------------
  // Sending, failing, timing

  private send(pdu: SmpPdu): void {
    // 3.4: the timer restarts whenever an SMP command is queued for transmission.
    this.restartTimer();
    this.o.emit({ kind: 'send', pdu: encodeSmp(pdu) });
  }

  private restartTimer(): void {
    this.stopTimer();
    const ms = this.o.timeoutMs ?? SMP_TIMEOUT_MS;
    this.timer = this.o.clock.setTimeout(() => this.onTimeout(ms), ms);
  }
  private startTimerIfIdle(): void {
    if (!this.timer) this.restartTimer();
  }
  private stopTimer(): void {
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
  private finishProcedure(): void {
    this.stopTimer();
    this.state = { phase: 'idle' };
  }

  private onTimeout(ms: number): void {
    this.timer = undefined;
    if (this.state.phase === 'idle' || this.state.phase === 'dead') return;
    this.state = { phase: 'dead' };
    this.o.emit({ kind: 'failed', error: new TimeoutError('smp', 'pairing', ms,
      'no further SMP runs on this link (Vol 3, Part H, 3.4); disconnect and reconnect to pair again') });
  }

  private assertAlive(): void {
    if (this.state.phase === 'dead') {
      throw new InvalidStateError('smp: the Security Manager timed out or the link closed; no SMP on this link any more (Vol 3, Part H, 3.4): reconnect to pair');
    }
  }

  /** Send Pairing Failed and end the pairing with a local SmpError. */
  private fail(reason: number, detail: string, send = true, by: 'local' | 'encryption' = 'local', hciStatus?: number): void {
    if (send) this.o.emit({ kind: 'send', pdu: encodeSmp({ kind: 'pairingFailed', reason }) });
    this.end(new SmpError(reason, SMP_PAIRING_FAILED_NAMES[reason] ?? 'Unspecified Reason', by, detail, hciStatus), reason);
  }

  private end(error: SmpError, reason: number): void {
    this.stopTimer();
    this.state = { phase: 'idle' };
    if (AUTH_FAILURES.has(reason)) this.o.attempts?.failed(this.attemptsKey());
    this.o.emit({ kind: 'failed', error });
  }

  /** An answer outside a pairing (no state to end), or a failure inside one. */
  private failOrAnswer(reason: number, detail: string): void {
    const ph = this.state.phase;
    if (ph === 'idle' || ph === 'securityRequested' || ph === 'reencrypting') this.answer(reason);
    else this.fail(reason, detail);
  }
  private answer(reason: number): void {
    this.o.emit({ kind: 'send', pdu: encodeSmp({ kind: 'pairingFailed', reason }) });
  }

  private unexpected(kind: string): void {
    this.fail(R.UnspecifiedReason, `unexpected ${kind} in ${this.describeState()}`);
  }

  private describeState(): string {
    const s = this.state;
    return s.phase === 'pairing' ? `${PAIRING_METHOD_NAMES[s.p.method]} (${s.p.sc ? 'LE Secure Connections' : 'LE legacy'}), ${s.p.step}` : s.phase;
  }
}
