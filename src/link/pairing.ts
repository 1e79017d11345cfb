/**
 * Pairing and encryption of one link: the SMP session (smp/session.ts, sans-IO) wired to the link's
 * SMP channel, the controller's encryption commands and events, the bond store and the user's handlers.
 *
 * What drives it:
 * - SMP PDUs from the peer (`receive`, installed on the link's SmpHook for CID 0x0006);
 * - the application: `pair()` (central: Pairing Request; peripheral: Security Request, Vol 3, Part H,
 *   3.6.7), `encrypt()` (central: LE Enable Encryption with the bonded LTK, no SMP at all);
 * - the controller's events for this connection, routed by the GAP scheduler (link/manager.ts):
 *   Encryption Change [v1] / [v2] (Vol 4, Part E, 7.7.8 / 7.7.8.v2), Encryption Key Refresh Complete
 *   (7.7.39), LE Long Term Key Request (7.7.65.5, peripheral role);
 * - the link's end (`linkClosed`).
 * What it does: builds one SmpSession per link on demand (central: initiator, peripheral: responder)
 * with our and the peer's addresses and types (c1, f5, f6 need them), sends what the session emits
 * through `link.smp.send`, starts encryption (HCI LE Enable Encryption, 7.8.24) or answers the LTK
 * request (LE Long Term Key Request Reply / Negative Reply, 7.8.25 / 7.8.26), reads the encryption
 * key size (HCI Read Encryption Key Size, 7.5.7) after every Encryption Change, drops the link when
 * the key is shorter than the minimum (KNOB-style downgrade), stores the bond, and keeps the link's
 * security state (`link.security`) true.
 *
 * The SMP timeout (30 s, Vol 3, Part H, 3.4) runs on the injected clock inside the session; after it
 * no SMP runs on this link (a new pair() fails at once with InvalidStateError).
 *
 * Bounds: one session per link; at most MAX_PAIR_WAITERS callers wait on one pairing, one encrypt()
 * at a time (later callers join it); the session holds at most 5 early key-distribution PDUs; frames
 * that arrive while a bond is being looked up are not queued (only the Security Request is handled
 * that way, and a second one while busy is dropped, 3.6.7).
 */
import type { Clock } from '../clock.js';
import {
  ArgumentError, DisconnectedError, HciStatusError, InvalidStateError, SmpError, TimeoutError, type BlewireError,
} from '../errors.js';
import { statusName } from '../hci/status.js';
import { log } from '../log.js';
import { abortedError, canAbort, deadline, type OperationOptions } from '../operation.js';
import { p256Generate, randomBytes, type P256KeyPair } from '../platform/crypto.js';
import { f4 } from '../smp/crypto.js';
import type { PairingAttempts } from '../smp/attempts.js';
import { bondFromPairing, type Bond, type BondStore } from '../smp/bonds.js';
import { isAuthenticated, type PairingMethod } from '../smp/methods.js';
import { signatureCounter, verifyAttSignature } from '../gatt/signing.js';
import { decodeSmp, SmpAuthReq, SmpIoCapability } from '../smp/pdus.js';
import {
  checkOob, SmpSession, type PairingResult, type SmpAction, type SmpAddress, type SmpLtk, type SmpSessionOptions,
} from '../smp/session.js';
import type { SmpHandler } from './smp.js';

/** IO capabilities by name (Vol 3, Part H, 2.3.2, Table 2.4). */
export type IoCapabilityName = 'displayOnly' | 'displayYesNo' | 'keyboardOnly' | 'noInputNoOutput' | 'keyboardDisplay';
const IO_CAPABILITY: Readonly<Record<IoCapabilityName, SmpIoCapability>> = {
  displayOnly: SmpIoCapability.DisplayOnly, displayYesNo: SmpIoCapability.DisplayYesNo,
  keyboardOnly: SmpIoCapability.KeyboardOnly, noInputNoOutput: SmpIoCapability.NoInputNoOutput,
  keyboardDisplay: SmpIoCapability.KeyboardDisplay,
};
export const IO_CAPABILITY_NAMES: readonly IoCapabilityName[] = Object.keys(IO_CAPABILITY) as IoCapabilityName[];

/** What the user's handlers are told about the pairing they answer for. */
export interface PairingPrompt {
  /** The peer as it is connected (address "AA:BB:…" and type). */
  readonly address: string;
  readonly addressType: 'public' | 'random' | 'anonymous';
}

/** The user side of pairing: show a passkey, type one, compare six digits. */
export interface PairingHandlers {
  /** Show these six digits to the user (they type them on the peer). */
  onPasskeyDisplay?: (passkey: number, peer: PairingPrompt) => void;
  /** The peer shows six digits: return what the user typed (reject or throw to cancel). */
  onPasskeyRequest?: (peer: PairingPrompt) => number | Promise<number>;
  /** Both devices show `value`: return whether the user confirms they match. */
  onNumericComparison?: (value: number, peer: PairingPrompt) => boolean | Promise<boolean>;
}

/** How we pair: the adapter's default policy, and each pair() call's options on top of it. */
export interface PairingPolicy extends PairingHandlers {
  /** Our IO capability (default 'noInputNoOutput': Just Works, unauthenticated). */
  io?: IoCapabilityName;
  /** Ask for bonding: keep the keys in the bond store (default true). */
  bond?: boolean;
  /** Require MITM protection: fail rather than accept Just Works (default false). */
  mitm?: boolean;
  /** Refuse LE legacy pairing (default false). */
  secureConnectionsOnly?: boolean;
  /**
   * Offer LE Secure Connections (default true). false clears the SC bit in our AuthReq (Vol 3, Part H,
   * 3.5.1), so the pairing is LE legacy: weaker (a passive listener can recover a Just Works or Passkey
   * key), for peers and tests that need legacy pairing only.
   */
  secureConnections?: boolean;
  /**
   * Smallest encryption key size accepted, 7..16 octets (default 16). Lower it only for old devices:
   * a short key can be forced by an attacker and brute-forced (KNOB).
   */
  minKeySize?: number;
  /** Out-of-band data (legacy TK, or the peer's SC OOB r and c), as SmpSessionOptions takes it. */
  oob?: SmpSessionOptions['oob'];
  /** Accept a peer using the SC debug key (anyone can decrypt that link; default false). */
  allowDebugKeys?: boolean;
  /**
   * Distribute a CSRK when bonding (Signing Information, Vol 3, Part H, 3.6.6; a new random key per bond,
   * 2.4.2.2), so the peer can check our signed writes (Vol 3, Part C, 10.4; conn.signedWrite()).
   * Default false.
   */
  signing?: boolean;
  /**
   * What a Security Request from a peripheral does when no usable bond exists: 'pair' (default) or
   * 'ignore'. With a bond the link is re-encrypted from it either way.
   */
  onSecurityRequest?: 'pair' | 'ignore';
  /**
   * An ATT request answered Insufficient Authentication (0x05), Insufficient Encryption (0x0F) or
   * Insufficient Encryption Key Size (0x0C): raise the link's security (encrypt from the bond, else
   * pair) and send the request once more (default true); false lets the AttError reach the caller.
   */
  retryOnSecurityError?: boolean;
}

/** conn.pair() options: a policy for this pairing plus the operation's deadline and signal. */
export interface PairOptions extends PairingPolicy, OperationOptions {}

/** Pairing progress, as the 'pairing' event of a Connection reports it. */
export type PairingProgress =
  | { readonly stage: 'securityRequest'; readonly authReq: number }
  | { readonly stage: 'started'; readonly role: 'initiator' | 'responder' }
  | { readonly stage: 'passkeyDisplay'; readonly passkey: number }
  | { readonly stage: 'passkeyRequest' }
  | { readonly stage: 'numericComparison'; readonly value: number }
  | { readonly stage: 'encrypting'; readonly fromBond: boolean }
  | { readonly stage: 'encrypted'; readonly keySize: number }
  | { readonly stage: 'paired'; readonly method: PairingMethod; readonly secureConnections: boolean;
    readonly authenticated: boolean; readonly bonded: boolean; readonly keySize: number }
  | { readonly stage: 'failed'; readonly error: BlewireError };

/**
 * The link's security (LE security mode 1, Vol 3, Part C, 10.2.1): level 1 no security, 2 encrypted
 * with an unauthenticated key, 3 encrypted with an authenticated key, 4 authenticated LE Secure
 * Connections with a 16-octet key.
 */
export interface SecurityState {
  level: 1 | 2 | 3 | 4;
  encrypted: boolean;
  /** Encryption key size in octets (7..16) once encrypted, else 0. */
  keySize: number;
  /** The key was made with MITM protection. */
  authenticated: boolean;
  /** LE Secure Connections pairing made the key. */
  secureConnections: boolean;
  /** Keys for this peer are stored (a bond). */
  bonded: boolean;
}

export function securityLevel(s: Omit<SecurityState, 'level'>): 1 | 2 | 3 | 4 {
  if (!s.encrypted) return 1;
  if (!s.authenticated) return 2;
  return s.secureConnections && s.keySize === 16 ? 4 : 3;
}

/** What every link of an adapter shares: the bond store, the back-off, the default policy, our keys. */
export interface SecurityContext {
  readonly bonds: BondStore;
  readonly attempts: PairingAttempts;
  /** The adapter's default policy and handlers (read at each pairing, so changes apply to the next). */
  policy(): PairingPolicy;
  /** Our address on a link (the initiator's / responder's address of c1, f5 and f6). */
  localAddress(link: PairingLink): SmpAddress;
  /** Keys we distribute when bonding (our IRK + identity address, our CSRK): the privacy layer's. */
  localKeys?(): SmpSessionOptions['keys'];
  /** A bond was stored (after a bonding pairing); `seen` is the address the peer has on this link. */
  onBond?(bond: Bond, seen: { address: string; hciType: 0 | 1 }): void;
  /** A bond was removed (conn.unpair()). */
  onBondRemoved?(identity: SmpAddress): void;
  /**
   * Read-modify-write of a stored bond, one at a time with every other such write and after the bond
   * saves begun before it (the adapter's; SignCounters must never go back). `fn` gets the bond (or
   * undefined) and returns the bond to save, or undefined to save nothing; resolves with what was saved.
   * Without it: a plain load and save.
   */
  updateBond?(identity: SmpAddress, fn: (bond: Bond | undefined) => Bond | undefined): Promise<Bond | undefined>;
  /** Where each session's random values and P-256 key pair come from (tests and replay only; default the OS CSPRNG). */
  readonly entropy?: PairingEntropy;
}

/**
 * What LinkPairing.acceptSignature found: accepted (the counter saved; whether the bond that gave the
 * CSRK is authenticated), or why not: no bond with the peer's CSRK, a MAC that does not match, a
 * SignCounter below the next one accepted (a replay), or the bond store failing to save the counter.
 */
export type SignatureVerdict =
  | { readonly ok: true; readonly authenticated: boolean; readonly signCounter: number }
  | { readonly ok: false; readonly reason: 'noKey' | 'badSignature' | 'replayed' | 'storeFailed'; readonly signCounter?: number };

/**
 * A deterministic source of pairing's secrets, FOR TESTS AND REPLAY ONLY: every random value SMP makes
 * (Pairing Random, confirm values' nonces, passkeys, legacy LTK / EDIV / Rand; Vol 3, Part H, 2.3) and
 * our P-256 key pair (2.3.5.6) come from it, so a recorded pairing replays byte for byte. Anyone who
 * knows the source knows the keys: a real device must never use one.
 */
export interface PairingEntropy {
  /** `n` random octets (replaces the OS CSPRNG). */
  readonly random?: (n: number) => Uint8Array;
  /** Our key pair for the next pairing session (called once as each pairing's session is made). */
  readonly keyPair?: () => P256KeyPair;
}

/** What pairing needs of its link (LeLink has this shape). */
export interface PairingLink {
  readonly handle: number;
  readonly role: 'central' | 'peripheral';
  readonly address: string;
  readonly addressType: 'public' | 'random' | 'anonymous';
  /** The peer's identity address once known (a bond, or the privacy layer's resolution of its RPA). */
  readonly identity: SmpAddress | undefined;
  /** Our own address on this link, as the peer saw it when the link was made (c1, f5, f6 need it). */
  readonly local?: SmpAddress | undefined;
  /** The peer distributed its identity address (Vol 3, Part H, 3.6.5): bonds go under it from now on. */
  attachIdentity?(identity: SmpAddress): void;
  readonly security: SecurityState;
  readonly connected: boolean;
  readonly clock: Clock;
  command(cmd: EncryptionCommand): Promise<unknown>;
  sendSmp(frame: Uint8Array): Promise<void>;
  disconnect(reason: number): Promise<unknown>;
  securityChanged(): void;
}

/** The HCI commands pairing sends (Vol 4, Part E, 7.8.24-7.8.26, 7.5.7). */
export type EncryptionCommand =
  | { kind: 'leEnableEncryption'; connectionHandle: number; randomNumber: Uint8Array; encryptedDiversifier: number; longTermKey: Uint8Array }
  | { kind: 'leLongTermKeyRequestReply'; connectionHandle: number; longTermKey: Uint8Array }
  | { kind: 'leLongTermKeyRequestNegativeReply'; connectionHandle: number }
  | { kind: 'readEncryptionKeySize'; connectionHandle: number };

/** Callers waiting on one pairing at a time; more are refused with InvalidStateError. */
export const MAX_PAIR_WAITERS = 16;
/** LE Enable Encryption's deadline: the LL procedure response timeout (Vol 6, Part B, 5.2). */
const ENCRYPT_TIMEOUT_MS = 40_000;
/** Authentication Failure (Vol 1, Part F, 2.5): the disconnect reason for a key too short. */
const AUTHENTICATION_FAILURE = 0x05;
const ZERO8 = new Uint8Array(8);

interface Waiter {
  resolve(s: SecurityState): void;
  reject(e: Error): void;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class LinkPairing implements SmpHandler {
  private session: SmpSession | undefined;
  private policyInUse: PairingPolicy = {};
  /** Callers of pair() waiting for the pairing in progress. */
  private waiters: Waiter[] = [];
  /** Callers of encrypt() waiting for Encryption Change. */
  private encryptWaiters: Waiter[] = [];
  /** The bond whose key encryption is being started with (central: encrypt(); peripheral: LTK reply). */
  private encryptingWith: Bond | undefined;
  /** A pairing (or the re-encryption answering a Security Request) is under way. */
  private busy = false;
  /** The SMP timeout fired: no further SMP on this link (Vol 3, Part H, 3.4). */
  private dead = false;
  private readonly listeners = new Set<(p: PairingProgress) => void>();
  private lastResult: PairingResult | undefined;
  /** Counters for tests and diagnostics. */
  readonly stats = { smpReceived: 0, encryptionsStarted: 0, ltkRequests: 0, ltkNegativeReplies: 0, keySizeDrops: 0 };

  constructor(private readonly link: PairingLink, private readonly ctx: SecurityContext) {}

  /** Pairing progress of this link. */
  onProgress(fn: (p: PairingProgress) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The last successful pairing on this link (keys included), if any. */
  get result(): PairingResult | undefined {
    return this.lastResult;
  }

  /** The bond of this peer, by identity (when known) else by the connected address. */
  async bond(): Promise<Bond | undefined> {
    try {
      return await this.ctx.bonds.load(this.bondIdentity());
    } catch (e) {
      log.smp('bond lookup for %s failed: %s', this.link.address, (e as Error).message);
      return undefined;
    }
  }

  /**
   * The CSRK we distributed to this peer and the SignCounter for our next signed write (Vol 3, Part H,
   * 2.4.5; Part C, 10.4.1): the bond is saved with the counter moved on BEFORE the write is signed, so a
   * counter is never used twice, even if the process dies in between. InvalidStateError without a bond
   * that holds our CSRK (pair with `signing: true`) or once the 32-bit counter is used up.
   */
  async nextSignature(): Promise<{ csrk: Uint8Array; signCounter: number }> {
    let out: { csrk: Uint8Array; signCounter: number } | undefined;
    let refusal: string | undefined;
    await this.updateBond(bond => {
      if (!bond?.localCsrk) {
        refusal = 'signedWrite: no bond with this peer holds a CSRK of ours; pair with { signing: true } (Signing Information, Vol 3, Part H, 3.6.6)';
        return undefined;
      }
      const signCounter = bond.localSignCounter ?? 0;
      if (signCounter >= 0xffffffff) {
        refusal = 'signedWrite: the SignCounter of this bond is used up (pair again for a new CSRK)';
        return undefined;
      }
      out = { csrk: bond.localCsrk, signCounter };
      return { ...bond, localSignCounter: signCounter + 1 };
    });
    if (!out) throw new InvalidStateError(refusal ?? 'signedWrite: no bond with this peer');
    return out;
  }

  /**
   * Authenticate a Signed Write Command from this peer (Vol 3, Part C, 10.4.2; Part F, 3.4.5.4): the MAC
   * of `header ‖ value` (opcode, handle, value as received) under the CSRK the peer distributed when
   * bonding (Signing Information, Vol 3, Part H, 3.6.6), then its SignCounter, which must not be below
   * the bond's peerSignCounter (one more than the last accepted). An accepted counter is saved with the
   * bond BEFORE this resolves, in one read-modify-write with the other bond updates: if the process dies
   * after the save the write is lost, never replayable. Never rejects; the verdict says why not.
   */
  async acceptSignature(header: Uint8Array, value: Uint8Array, signature: Uint8Array): Promise<SignatureVerdict> {
    const signCounter = signatureCounter(signature);
    let verdict: SignatureVerdict = { ok: false, reason: 'noKey' };
    try {
      await this.updateBond(bond => {
        if (!bond?.peerCsrk) return undefined;
        if (!verifyAttSignature(bond.peerCsrk, header, value, signature)) {
          verdict = { ok: false, reason: 'badSignature', signCounter };
          return undefined;
        }
        if (signCounter < (bond.peerSignCounter ?? 0)) {
          verdict = { ok: false, reason: 'replayed', signCounter };
          return undefined;
        }
        verdict = { ok: true, authenticated: bond.authenticated, signCounter };
        return { ...bond, peerSignCounter: signCounter + 1 };
      });
    } catch (e) {
      log.smp('SignCounter of %s not saved: %s', this.link.address, (e as Error).message);
      return { ok: false, reason: 'storeFailed', signCounter };
    }
    return verdict;
  }

  /** One read-modify-write of this peer's bond (the context's, serialized; else load and save). */
  private async updateBond(fn: (bond: Bond | undefined) => Bond | undefined): Promise<Bond | undefined> {
    const id = this.bondIdentity();
    if (this.ctx.updateBond) return this.ctx.updateBond(id, fn);
    const next = fn(await this.ctx.bonds.load(id));
    if (next) await this.ctx.bonds.save(next);
    return next;
  }

  /** Remove this peer's bond from the store (the link's keys in use stay until it ends). */
  async forgetBond(bond: Bond): Promise<void> {
    await this.ctx.bonds.remove(bond.identity);
    try { this.ctx.onBondRemoved?.(bond.identity); } catch (e) { log.smp('onBondRemoved threw: %O', e); }
    this.link.security.bonded = false;
    this.changed();
  }

  private bondIdentity(): SmpAddress {
    return this.link.identity ?? { type: this.link.addressType === 'public' ? 0 : 1, address: this.link.address };
  }

  // ---- the application's side ---------------------------------------------------------------------

  /**
   * Pair (central: Pairing Request; peripheral: Security Request, the central decides). Resolves
   * with the link's security once encrypted with the new key and the keys are distributed; rejects
   * with SmpError (either side's Pairing Failed), TimeoutError (SMP timeout, 30 s, or `timeout`),
   * AbortError (`signal`) or DisconnectedError. When the last waiting caller gives up (signal or
   * timeout) the pairing is cancelled: Pairing Failed, Unspecified Reason (SmpSession.cancel).
   */
  pair(options: PairOptions = {}): Promise<SecurityState> {
    const { timeout, signal, ...policy } = options;
    // A signal aborted before the call: nothing is sent (before, the wait rejected but the Pairing
    // Request still went out and the pairing ran on with nobody waiting).
    const aborted = abortedError(`pair ${this.link.address}`, signal);
    if (aborted) return Promise.reject(aborted);
    if (!this.link.connected) return Promise.reject(new DisconnectedError(`pair ${this.link.address}`));
    if (this.dead) return Promise.reject(this.deadError());
    const merged = { ...this.ctx.policy(), ...stripUndefined(policy) };
    const bad = checkPolicy(merged);
    if (bad) return Promise.reject(bad);
    if (this.waiters.length >= MAX_PAIR_WAITERS) {
      return Promise.reject(new InvalidStateError(`pair: ${MAX_PAIR_WAITERS} callers already wait for the pairing of ${this.link.address}`));
    }
    const p = this.wait(this.waiters, { timeout, signal }, 'pair');
    if (!this.busy) this.startPairing(merged);
    return p;
  }

  /**
   * Central: encrypt the link with the bonded key (HCI LE Enable Encryption; no SMP PDU). Resolves
   * with the link's security; rejects with InvalidStateError when there is no bond, HciStatusError
   * when the peer refused the key (e.g. 0x06 PIN or Key Missing: it lost the bond).
   */
  async encrypt(options: OperationOptions = {}): Promise<SecurityState> {
    if (this.link.role !== 'central') throw new InvalidStateError('encrypt: only the central starts encryption (Vol 6, Part B, 5.1.3); the peripheral calls pair() to send a Security Request');
    if (!this.link.connected) throw new DisconnectedError(`encrypt ${this.link.address}`);
    const bond = await this.bond();
    if (!bond?.ltk) throw new InvalidStateError(`encrypt: no bond with a key for ${this.link.address}; pair() first`);
    if (this.encryptWaiters.length >= MAX_PAIR_WAITERS) throw new InvalidStateError(`encrypt: too many callers wait on ${this.link.address}`);
    const p = this.wait(this.encryptWaiters, { timeout: options.timeout ?? ENCRYPT_TIMEOUT_MS, signal: options.signal }, 'encrypt');
    if (this.encryptWaiters.length === 1) this.startBondEncryption(bond);
    return p;
  }

  private wait(list: Waiter[], options: OperationOptions, what: string): Promise<SecurityState> {
    return new Promise<SecurityState>((resolve, reject) => {
      const d = deadline(this.link.clock, options, { layer: 'smp', operation: `${what} ${this.link.address}` });
      // The abort listener goes when the wait settles: without a timeout or signal the deadline's
      // signal is one shared never-firing signal, and each pair() / encrypt() left a listener (and its
      // waiter) on it for the life of the process (MaxListenersExceededWarning after 10 pairings).
      const onAbort = (): void => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
        w.reject(d.signal.reason as Error);
        // The last caller of pair() gave up (its signal or its deadline): stop the pairing itself
        // (Pairing Failed, Unspecified Reason; no SMP timer left) rather than let it run on unwatched.
        // A pairing someone else still waits for (another pair(), an ATT retry) goes on.
        if (i >= 0 && list === this.waiters && this.waiters.length === 0 && this.busy) {
          this.session?.cancel(`${what} abandoned by its caller: ${(d.signal.reason as Error)?.message ?? 'aborted'}`);
        }
      };
      const w: Waiter = {
        resolve: s => { d.signal.removeEventListener('abort', onAbort); d.done(); resolve(s); },
        reject: e => { d.signal.removeEventListener('abort', onAbort); d.done(); reject(e); },
      };
      if (d.signal.aborted) return reject(d.signal.reason as Error);
      // Nor is the never-firing signal listened to at all: MAX_PAIR_WAITERS concurrent callers with
      // no deadline put 16 listeners on that one signal (MaxListenersExceededWarning past 10).
      if (canAbort(d.signal)) d.signal.addEventListener('abort', onAbort, { once: true });
      list.push(w);
    });
  }

  private settle(list: 'waiters' | 'encryptWaiters', outcome: SecurityState | Error): void {
    const ws = this[list];
    this[list] = [];
    for (const w of ws) {
      if (outcome instanceof Error) w.reject(outcome);
      else w.resolve(outcome);
    }
  }

  private deadError(): InvalidStateError {
    return new InvalidStateError('smp: the Security Manager timed out on this link; no SMP runs on it any more (Vol 3, Part H, 3.4): reconnect to pair');
  }

  /**
   * The bearer's answer to a security error response (0x05 / 0x0F / 0x0C): raise the security of
   * the link and say whether the request is worth sending again. A failed pairing rejects.
   */
  async raiseSecurity(errorCode: number): Promise<boolean> {
    if ((this.ctx.policy().retryOnSecurityError ?? true) === false || !this.link.connected || this.dead) return false;
    const before = { ...this.link.security };
    // Several requests refused at once (a client's Service Changed CCCD write beside the app's own)
    // each come here. While one raise is in its bond lookup another may pair and encrypt the link: a
    // lookup answered after that (a file store on a busy machine) said "no bond" and a second pairing
    // followed. Whatever raised the link's security since this refusal, the request is retried, once
    // the pairing that raised it (if still under way: keys to distribute, the bond to store) is over,
    // as pair() resolves: a caller that retried at encryption could finish and close the link before
    // the bond was stored.
    const risen = (): boolean => {
      const now = this.link.security;
      return (now.encrypted && !before.encrypted) || (now.authenticated && !before.authenticated) || now.keySize > before.keySize;
    };
    const afterRise = async (): Promise<boolean> => {
      if (this.busy) await this.pair(); // joins it
      return this.link.connected;
    };
    if (!before.encrypted && this.link.role === 'central') {
      const bond = await this.bond();
      if (risen()) return afterRise();
      if (bond?.ltk && (errorCode !== 0x05 || bond.authenticated || !(this.ctx.policy().mitm ?? false))) {
        try {
          await this.encrypt();
          return true;
        } catch (e) {
          log.smp('re-encryption for ATT error 0x%s failed: %s; pairing', errorCode.toString(16), (e as Error).message);
          if (!this.link.connected) return false;
          if (risen()) return afterRise();
        }
      }
      await this.pair();
      return true;
    }
    if (!before.encrypted) {
      await this.pair(); // peripheral: Security Request
      return this.link.security.encrypted;
    }
    // Encrypted already: only an authenticated key (0x05) or a longer one (0x0C) can help.
    if (errorCode === 0x0f || (errorCode === 0x05 && before.authenticated)) return false;
    const after = await this.pair(errorCode === 0x05 ? { mitm: true } : {});
    return after.authenticated !== before.authenticated || after.keySize > before.keySize;
  }

  // ---- the session ---------------------------------------------------------------------------------

  /** Our SC OOB data handed out for the next pairing on this link (its key pair and r), until a session takes it. */
  private oobSeed: { keyPair: P256KeyPair; r: Uint8Array } | undefined;

  /**
   * Our LE Secure Connections OOB data for the next pairing on this link (Vol 3, Part H, 2.3.5.6.4):
   * r and c = f4(PKx, PKx, r, 0), MSO first, to give the peer out of band (NFC, a QR code…). The next
   * pairing uses the key pair it was made from; each pairing takes it once (call again for the next).
   */
  localOobData(): { r: Uint8Array; c: Uint8Array } {
    this.oobSeed ??= {
      keyPair: this.ctx.entropy?.keyPair?.() ?? p256Generate(),
      r: (this.ctx.entropy?.random ?? randomBytes)(16),
    };
    const { keyPair, r } = this.oobSeed;
    return { r: r.slice(), c: f4(keyPair.x, keyPair.x, r, 0) };
  }

  /** `pairing`: the session is made for a pairing starting now (it takes our handed-out OOB data). */
  private newSession(policy: PairingPolicy, pairing = true): SmpSession {
    const oobSeed = pairing ? this.oobSeed : undefined;
    this.policyInUse = policy;
    // Our CSRK for this bond (only asked for with `signing`): random, from the session's source.
    const csrk = policy.signing && (policy.bond ?? true) ? (this.ctx.entropy?.random ?? randomBytes)(16) : undefined;
    const local = this.ctx.localKeys?.();
    const keys = csrk ? { ...local, csrk } : local;
    const s = new SmpSession({
      role: this.link.role === 'central' ? 'initiator' : 'responder',
      local: this.ctx.localAddress(this.link),
      peer: { type: this.link.addressType === 'public' ? 0 : 1, address: this.link.address },
      clock: this.link.clock,
      emit: a => this.onAction(s, a),
      io: IO_CAPABILITY[policy.io ?? 'noInputNoOutput'],
      bond: policy.bond ?? true,
      // MITM is asked for whenever our IO capability allows an authenticated method (2.3.5.1: with
      // neither side asking, Just Works is used whatever the IO); `mitm: true` also insists on it.
      mitm: policy.mitm ?? (policy.io !== undefined && policy.io !== 'noInputNoOutput'),
      requireMitm: policy.mitm ?? false,
      secureConnectionsOnly: policy.secureConnectionsOnly ?? false,
      secureConnections: policy.secureConnections ?? true,
      minKeySize: policy.minKeySize ?? 16,
      attempts: this.ctx.attempts,
      peerIdentity: () => this.link.identity,
      ...(policy.oob ? { oob: policy.oob } : {}),
      ...(keys ? { keys } : {}),
      ...(policy.allowDebugKeys ? { allowDebugKeys: true } : {}),
      ...(this.ctx.entropy?.random ? { random: this.ctx.entropy.random } : {}),
      ...(this.ctx.entropy?.keyPair && !oobSeed ? { keyPair: this.ctx.entropy.keyPair() } : {}),
      ...(oobSeed ? { localOob: oobSeed } : {}),
    });
    if (oobSeed) this.oobSeed = undefined;
    this.session = s;
    return s;
  }

  private startPairing(policy: PairingPolicy): void {
    // A session that finished (idle) is replaced, so this pairing runs with this call's policy.
    const s = this.session?.phase === 'idle' || !this.session ? this.newSession(policy) : this.session;
    this.busy = true;
    this.progress({ stage: 'started', role: this.link.role === 'central' ? 'initiator' : 'responder' });
    try {
      if (this.link.role === 'central') s.pair();
      else s.requestSecurity();
    } catch (e) {
      this.failed(e as Error);
    }
  }

  /** SmpHandler: one SMP PDU from the peer. */
  receive(frame: Uint8Array): void {
    this.stats.smpReceived++;
    if (this.dead) return; // 3.4: nothing after the SMP timeout
    if (this.link.role === 'central' && frame[0] === 0x0b) {
      // Security Request: handled here (bond lookup first), never by the session; ignored while a
      // pairing or an encryption is under way (3.6.7).
      if (this.busy || this.encryptWaiters.length > 0) return;
      let authReq: number;
      try {
        const pdu = decodeSmp(frame);
        if (pdu.kind !== 'securityRequest') return;
        authReq = pdu.authReq;
      } catch {
        return; // a malformed Security Request is dropped: answering it invites ping-pong
      }
      this.onSecurityRequest(authReq);
      return;
    }
    if (!this.session || (this.session.phase === 'idle' && frame[0] === 0x01 && this.link.role === 'peripheral')) {
      // The peer starts a pairing (or sends something outside one): a session with the adapter's policy.
      if (frame[0] === 0x01 && this.link.role === 'peripheral') {
        this.busy = true;
        this.newSession(this.ctx.policy());
        this.progress({ stage: 'started', role: 'responder' });
      } else if (!this.session) {
        this.newSession(this.ctx.policy(), false);
      }
    }
    this.session!.receive(frame);
  }

  /**
   * SmpHandler: the link is gone. Waiters get a DisconnectedError carrying the link's reason
   * (supervision timeout 0x08, MIC failure 0x3D, the peer's 0x13…): without it a pairing that died
   * of a wrong key and one that died of radio loss looked the same.
   */
  linkClosed(cause?: DisconnectedError): void {
    this.session?.linkClosed(cause);
    const err = new DisconnectedError(`pairing with ${this.link.address}`, cause?.reason, cause?.reasonName);
    this.busy = false;
    this.settle('waiters', err);
    this.settle('encryptWaiters', err);
  }

  /** Central: the peripheral asks for security (Vol 3, Part H, 2.4.6, 3.6.7). */
  private onSecurityRequest(authReq: number): void {
    this.progress({ stage: 'securityRequest', authReq });
    const wantMitm = (authReq & SmpAuthReq.Mitm) !== 0;
    const sec = this.link.security;
    if (sec.encrypted && (sec.authenticated || !wantMitm)) return; // already as secure as asked
    this.busy = true;
    void (async () => {
      const bond = await this.bond();
      if (!this.link.connected) return;
      if (bond?.ltk && (bond.authenticated || !wantMitm)) {
        try {
          this.busy = false;
          await this.encrypt();
          return;
        } catch (e) {
          // The peer lost the bond (PIN or Key Missing) or refused it: pair afresh below, per policy.
          log.smp('re-encryption with the bond of %s failed (%s): pairing', this.link.address, (e as Error).message);
          if (!this.link.connected || this.busy) return;
          this.busy = true;
        }
      }
      const policy = this.ctx.policy();
      if ((policy.onSecurityRequest ?? 'pair') === 'ignore') {
        this.busy = false;
        return;
      }
      this.startPairing({ ...policy, ...(wantMitm && !policy.mitm && policy.io !== undefined && policy.io !== 'noInputNoOutput' ? { mitm: true } : {}) });
    })().catch(e => log.smp('security request from %s: %s', this.link.address, (e as Error).message));
  }

  private onAction(s: SmpSession, a: SmpAction): void {
    if (s !== this.session) return; // a replaced session's late output
    const who: PairingPrompt = { address: this.link.address, addressType: this.link.addressType };
    switch (a.kind) {
      case 'send':
        this.link.sendSmp(a.pdu).catch(e => log.smp('SMP PDU to %s not sent: %s', this.link.address, (e as Error).message));
        return;
      case 'startEncryption':
        this.startEncryption(a.ltk, false);
        return;
      case 'displayPasskey':
        this.progress({ stage: 'passkeyDisplay', passkey: a.passkey });
        try { this.policyInUse.onPasskeyDisplay?.(a.passkey, who); } catch (e) { log.smp('onPasskeyDisplay threw: %O', e); }
        return;
      case 'requestPasskey': {
        this.progress({ stage: 'passkeyRequest' });
        const ask = this.policyInUse.onPasskeyRequest;
        if (!ask) {
          s.passkeyCancelled();
          return;
        }
        void (async () => ask(who))().then(n => s.passkeyEntered(n), e => {
          log.smp('passkey entry cancelled: %s', (e as Error)?.message);
          s.passkeyCancelled();
        });
        return;
      }
      case 'numericComparison': {
        this.progress({ stage: 'numericComparison', value: a.value });
        const ask = this.policyInUse.onNumericComparison;
        if (!ask) {
          s.numericComparisonResult(false);
          return;
        }
        void (async () => ask(a.value, who))().then(ok => s.numericComparisonResult(ok === true), () => s.numericComparisonResult(false));
        return;
      }
      case 'securityRequest':
        return; // handled before the session (receive)
      case 'paired':
        this.paired(a.result);
        return;
      case 'failed':
        if (a.error instanceof TimeoutError) this.dead = true;
        this.failed(a.error);
        return;
      case 'disconnect':
        this.stats.keySizeDrops++;
        this.link.disconnect(a.reason).catch(() => undefined);
        return;
    }
  }

  private paired(result: PairingResult): void {
    this.lastResult = result;
    const sec = this.link.security;
    sec.authenticated = result.authenticated;
    sec.secureConnections = result.secureConnections;
    sec.keySize = Math.min(sec.keySize || result.keySize, result.keySize);
    // A peer that paired from a resolvable private address and gave its identity (3.6.5): the link
    // (its bond lookups, its GATT cache key) knows the peer by that identity from now on.
    if (result.peer.identity) this.link.attachIdentity?.({ type: result.peer.identity.type, address: result.peer.identity.address.toUpperCase() });
    const bond = bondFromPairing(result, { type: this.link.addressType === 'public' ? 0 : 1, address: this.link.address });
    sec.bonded = bond !== undefined;
    this.changed();
    // 'paired' once the bond is stored (or its save failed), as pair() resolves: the responder has no
    // pair() to await, so its 'paired' is how a listener knows the bond is in the store, and `bonded`
    // says whether the store took it. (It came before the save: a listener that read the store on it
    // found nothing on a busy machine, the save being queued behind earlier bond writes.)
    // Busy until then: a pair() in that window joins this pairing and gets its outcome. (busy went false
    // before the save, so such a call started a second pairing while done() below settled it with the
    // first one's result: the request was retried and a needless pairing ran on behind it.)
    const done = (): void => {
      this.busy = false;
      this.progress({ stage: 'paired', method: result.method, secureConnections: result.secureConnections,
        authenticated: result.authenticated, bonded: sec.bonded, keySize: sec.keySize });
      this.settle('waiters', { ...this.link.security });
    };
    if (!bond) return done();
    this.ctx.bonds.save(bond).then(() => {
      try { this.ctx.onBond?.(bond, { address: this.link.address, hciType: this.link.addressType === 'public' ? 0 : 1 }); } catch (e) { log.smp('onBond threw: %O', e); }
    }, e => {
      log.smp('bond with %s not stored: %s', this.link.address, (e as Error).message);
      sec.bonded = false;
      this.changed();
    }).finally(done);
  }

  private failed(error: Error): void {
    this.busy = false;
    this.progress({ stage: 'failed', error: error as BlewireError });
    this.settle('waiters', error);
  }

  // ---- encryption ----------------------------------------------------------------------------------

  private startBondEncryption(bond: Bond): void {
    this.encryptingWith = bond;
    this.startEncryption(bond.ltk!, true);
  }

  /** Central: HCI LE Enable Encryption (Vol 4, Part E, 7.8.24); the outcome comes as Encryption Change. */
  private startEncryption(ltk: SmpLtk, fromBond: boolean): void {
    if (!fromBond) this.encryptingWith = undefined;
    this.stats.encryptionsStarted++;
    this.progress({ stage: 'encrypting', fromBond });
    this.link.command({
      kind: 'leEnableEncryption', connectionHandle: this.link.handle, randomNumber: ltk.rand,
      encryptedDiversifier: ltk.ediv, longTermKey: ltk.key,
    }).catch(e => {
      // Refused at once (Command Status): no Encryption Change will follow.
      const status = e instanceof HciStatusError ? e.status : 0x1f;
      this.encryptionFailed(status, e as Error);
    });
  }

  /** Peripheral: HCI LE Long Term Key Request (Vol 4, Part E, 7.7.65.5). */
  ltkRequest(ediv: number, rand: Uint8Array): void {
    this.stats.ltkRequests++;
    const handle = this.link.handle;
    const fromSession = this.session?.ltkRequest(ediv, rand);
    const reply = (key: Uint8Array | undefined): void => {
      const cmd: EncryptionCommand = key
        ? { kind: 'leLongTermKeyRequestReply', connectionHandle: handle, longTermKey: key }
        : { kind: 'leLongTermKeyRequestNegativeReply', connectionHandle: handle };
      if (!key) this.stats.ltkNegativeReplies++;
      this.link.command(cmd).catch(e => log.smp('LTK request answer on 0x%s: %s', handle.toString(16), (e as Error).message));
    };
    if (fromSession) {
      this.encryptingWith = undefined;
      return reply(fromSession);
    }
    // A re-encryption from a bond: SC keys have EDIV 0 and Rand 0; a legacy key is found by the EDIV
    // and Rand we distributed with it (Vol 3, Part H, 2.4.2).
    void this.bond().then(bond => {
      if (!this.link.connected) return;
      let key: Uint8Array | undefined;
      if (bond?.secureConnections && bond.ltk && ediv === 0 && sameBytes(rand, ZERO8)) key = bond.ltk.key;
      else if (bond?.localLtk && bond.localLtk.ediv === ediv && sameBytes(bond.localLtk.rand, rand)) key = bond.localLtk.key;
      this.encryptingWith = key ? bond : undefined;
      reply(key);
    });
  }

  /** Encryption Change (7.7.8), [v2] with the key size, or Encryption Key Refresh Complete (7.7.39, enabled). */
  encryptionChanged(status: number, enabled: boolean, reportedKeySize?: number): void {
    if (status !== 0) return this.encryptionFailed(status, new HciStatusError(status, statusName(status), 'leEnableEncryption'));
    const sec = this.link.security;
    if (!enabled) {
      // Encryption off (not done on LE, but a controller may say so): nothing is protected any more.
      Object.assign(sec, { encrypted: false, keySize: 0, authenticated: false, secureConnections: false });
      this.changed();
      return;
    }
    // Until the key size is known the link's state lags the controller's: requests the peer sends on
    // the freshly encrypted link (BlueZ retries its refused ATT request at once) wait on `settling`.
    let done!: () => void;
    const settling = new Promise<void>(r => { done = r; });
    this.settlingNow = settling;
    void this.keySize(reportedKeySize).then(size => this.encrypted(size)).finally(() => {
      if (this.settlingNow === settling) this.settlingNow = undefined;
      done();
    });
  }

  private settlingNow: Promise<void> | undefined;
  /**
   * Pending while an Encryption Change is being taken in (the key size read, Vol 4, Part E, 7.5.7):
   * the link's security state is up to date once it resolves. Undefined when nothing is pending.
   */
  get settling(): Promise<void> | undefined {
    return this.settlingNow;
  }

  /** The key size: [v2]'s, else HCI Read Encryption Key Size (7.5.7), else the negotiated one. */
  private async keySize(reported: number | undefined): Promise<number | undefined> {
    if (reported !== undefined) return reported;
    try {
      const r = await this.link.command({ kind: 'readEncryptionKeySize', connectionHandle: this.link.handle }) as { keySize: number };
      return r.keySize;
    } catch (e) {
      // Controllers without the command (btvirt's LE-only one): the size SMP negotiated stands.
      log.smp('Read Encryption Key Size on 0x%s: %s', this.link.handle.toString(16), (e as Error).message);
      return undefined;
    }
  }

  private encrypted(size: number | undefined): void {
    if (!this.link.connected) return;
    const sec = this.link.security;
    const bond = this.encryptingWith;
    this.encryptingWith = undefined;
    const keySize = size ?? bond?.keySize ?? this.session?.negotiatedKeySize ?? 16;
    const min = this.policyInUse.minKeySize ?? this.ctx.policy().minKeySize ?? 16;
    if (keySize < min) {
      // A key shorter than we accept (KNOB-style downgrade): nothing may be sent on it; the link goes.
      this.stats.keySizeDrops++;
      const err = new SmpError(0x06, 'Encryption Key Size', 'encryption',
        `the controller reports a ${keySize}-octet key, below the minimum of ${min}; the link is dropped`);
      this.session?.encryptionChanged(0, keySize);
      this.settle('encryptWaiters', err);
      if (this.busy) this.failed(err);
      this.link.disconnect(AUTHENTICATION_FAILURE).catch(() => undefined);
      return;
    }
    sec.encrypted = true;
    sec.keySize = keySize;
    if (bond) {
      sec.authenticated = bond.authenticated;
      sec.secureConnections = bond.secureConnections;
      sec.bonded = true;
    } else if (this.session?.method !== undefined) {
      // Encrypted by the pairing in progress: the key is authenticated when its method gave MITM
      // protection (Vol 3, Part C, 10.3.1; Part H, 2.3.5.6), known now, before key distribution ends.
      sec.authenticated = isAuthenticated(this.session.method);
    }
    this.changed();
    this.progress({ stage: 'encrypted', keySize });
    this.session?.encryptionChanged(0, keySize);
    if (bond) this.settle('encryptWaiters', { ...sec });
    // A peripheral whose Security Request the central answered from a bond: its pair() is done.
    if (bond && this.link.role === 'peripheral' && this.busy && this.session?.phase === 'idle') {
      this.busy = false;
      this.settle('waiters', { ...sec });
    }
  }

  private encryptionFailed(status: number, error: Error): void {
    const bond = this.encryptingWith;
    this.encryptingWith = undefined;
    this.session?.encryptionChanged(status);
    if (bond || this.encryptWaiters.length > 0) this.settle('encryptWaiters', error);
  }

  private changed(): void {
    const sec = this.link.security;
    sec.level = securityLevel(sec);
    this.link.securityChanged();
  }

  private progress(p: PairingProgress): void {
    for (const fn of this.listeners) {
      try { fn(p); } catch (e) { log.smp('pairing progress listener threw: %O', e); }
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** A policy that cannot work is an ArgumentError before anything is sent. */
export function checkPolicy(p: PairingPolicy): ArgumentError | undefined {
  if (p.io !== undefined && !(p.io in IO_CAPABILITY)) {
    return new ArgumentError(`pair: io must be one of ${IO_CAPABILITY_NAMES.join(', ')}`);
  }
  if (p.minKeySize !== undefined && !(Number.isInteger(p.minKeySize) && p.minKeySize >= 7 && p.minKeySize <= 16)) {
    return new ArgumentError('pair: minKeySize must be 7..16 (Vol 3, Part H, 2.3.4)');
  }
  if (p.secureConnectionsOnly && p.secureConnections === false) {
    return new ArgumentError('pair: secureConnectionsOnly needs secureConnections');
  }
  const oob = checkOob(p.oob);
  if (oob) return oob;
  const io = p.io ?? 'noInputNoOutput';
  if ((io === 'keyboardOnly' || io === 'keyboardDisplay') && !p.onPasskeyRequest) {
    return new ArgumentError(`pair: io '${io}' can be asked to type a passkey: give onPasskeyRequest`);
  }
  if ((io === 'displayYesNo' || io === 'keyboardDisplay') && !p.onNumericComparison) {
    return new ArgumentError(`pair: io '${io}' can be asked to confirm six digits: give onNumericComparison`);
  }
  return undefined;
}
