/**
 * L2CAP credit-based channels on one LE link (Core Vol 3, Part A): LE Credit Based Flow Control Mode
 * (4.22–4.24, 10.2) and Enhanced Credit Based Flow Control Mode (Core 5.2: 4.25–4.28, several
 * channels in one request, the ground for EATT), both roles, behind the `L2capChannel` interface so
 * ATT can run over a channel as over the fixed channel 0x0004.
 *
 * Design overview
 * - Driven by the L2capLink that owns this engine: K-frames on a dynamic CID (`frame()`), the LE
 *   signalling commands of this mode (`signalling()`: the peer's connection / reconfigure /
 *   disconnection requests and its credits), `open()` / `openEnhanced()` from the application, and
 *   `linkClosed()` when the ACL link drops. It never touches HCI: it sends whole L2CAP payloads
 *   through `CocLinkHost.sendFrame` (the link fragments to the ACL size under ACL flow control) and
 *   signalling through the link's request / reply machinery (identifiers, RTX timer, Command Reject).
 * - Segmentation (Vol 3, Part A, 3.4.2): an SDU of at most the peer's MTU becomes K-frames of at most
 *   the peer's MPS; the first carries the 2-octet SDU Length. Reassembly (3.4.3) into one buffer of
 *   the announced length, which may not exceed our MTU.
 * - Credits (10.1): one credit per K-frame. We never send a K-frame without one (`txCredits`). We give
 *   the peer `window` credits (the Initial Credits we announced, at least 1) and keep it topped up: a
 *   K-frame that is part of an unfinished SDU is credited back at once (the reassembly buffer, bounded
 *   by our MTU, holds it), a finished SDU that the application has not consumed yet holds back one
 *   credit until it is read. So `peerCredits + held <= window` always, and the SDUs waiting for the
 *   application are at most `window` (see Bounds). Credits go back in Flow Control Credit Indications
 *   (4.24) once half the window is owed, or at once when the peer has none left.
 * - Protocol violations the spec says end the channel (the engine sends Disconnection Request and the
 *   channel closes with ChannelClosedError{by:'protocol'}): a K-frame with no credit (10.1), a payload
 *   above our MPS, an SDU Length above our MTU, K-frames that overrun the SDU Length (3.4.3), credits
 *   that push the count above 65535 (10.1).
 * - Opening: `open()` allocates a local CID (0x0040–0x007F, Vol 3, Part A, 2.1), sends the request
 *   and validates the response (result codes become ChannelRefusedError; a success whose CID, MTU or
 *   MPS is out of range is disconnected at once and rejects with ProtocolError). A caller that gives up
 *   (timeout, abort) before the answer leaves the CID reserved; a late success is disconnected.
 * - Accepting: a request is checked in the spec's order (parameters, SPSM, security, source CID, our
 *   resources) against the CocRegistry the adapter shares between all its links; a listener whose
 *   backlog is full refuses with "No resources available".
 * - Closing: `close()` (or the peer's Disconnection Request, 4.6/4.7) ends the channel at once for
 *   data; our CID stays reserved until the peer answers our request or the RTX timer ends it.
 *   `linkClosed()` ends every channel with ChannelClosedError{by:'link'} whose cause is the link's
 *   DisconnectedError (the ATT bearer on a channel gets the DisconnectedError itself).
 * - Time: only the injected clock (the link's RTX timer, the callers' deadlines).
 *
 * Bounds (issue 15), per channel: K-frames handed to the link and not yet on the wire ≤
 * TX_FRAMES_IN_FLIGHT; SDUs waiting to be sent ≤ MAX_QUEUED_SENDS (beyond: InvalidStateError at once,
 * nothing queued); received data not yet read ≤ `window` whole SDUs of ≤ our MTU plus one partial SDU
 * of ≤ our MTU (the credits make the peer stop: it cannot send more); readers waiting ≤ MAX_READERS.
 * Per link: 64 dynamic CIDs (0x0040–0x007F). Per listener: `backlog` channels not yet accepted.
 */
import type { Clock } from '../clock.js';
import {
  ArgumentError, ChannelClosedError, ChannelRefusedError, DisconnectedError, InvalidStateError, ProtocolError,
} from '../errors.js';
import { log } from '../log.js';
import { abortedError, deadline, raceAbort, type OperationOptions } from '../operation.js';
import type { ChannelReceiver, L2capChannel } from './channel.js';
import {
  CREDIT_BASED_CONNECTION_RESULT_NAMES, CreditBasedConnectionResult, CreditBasedReconfigureResult, LE_DYNAMIC_CID_FIRST,
  LE_DYNAMIC_CID_LAST, COMMAND_REJECT_REASON_NAMES,
} from './constants.js';
import type { AnySignallingCommand, SignallingCommandOf } from './signalling.js';

/** LE_PSM range (Vol 3, Part A, 4.22): 0x0001–0x007F SIG-assigned, 0x0080–0x00FF dynamic. */
export const LE_PSM_MIN = 0x0001;
export const LE_PSM_MAX = 0x00ff;
/** MTU and MPS limits of LE Credit Based Flow Control Mode (Vol 3, Part A, 4.22). */
export const LE_COC_MIN_MTU = 23;
export const LE_COC_MIN_MPS = 23;
export const LE_COC_MAX_MPS = 65_533;
/** Enhanced Credit Based Flow Control Mode (Vol 3, Part A, 4.25): MTU and MPS at least 64, ≤ 5 channels per request. */
export const ECRED_MIN_MTU = 64;
export const ECRED_MIN_MPS = 64;
export const ECRED_MAX_CHANNELS = 5;
/** The credit count may never exceed 65535 (Vol 3, Part A, 10.1). */
export const MAX_CREDITS = 0xffff;
/** SDU Length field of the first K-frame of an SDU (Vol 3, Part A, 3.4.2). */
export const SDU_LENGTH_SIZE = 2;
/**
 * K-frames of one channel handed to the link (ACL flow control) and not yet on the wire. More than the
 * controller's buffer count gains nothing; it bounds what one channel puts in the link's ACL queue.
 */
export const TX_FRAMES_IN_FLIGHT = 16;
/** SDUs one channel queues for sending; a sender that does not await its sends gets InvalidStateError beyond it. */
export const MAX_QUEUED_SENDS = 64;
/** read() calls waiting at once on one channel. */
export const MAX_READERS = 16;
/** Channels a listener holds until the application takes them (default backlog). */
export const DEFAULT_BACKLOG = 16;
/** The peer's connection requests held while the link's security settles (CocEngine.whenSettled). */
export const MAX_DEFERRED_REQUESTS = 8;

/**
 * Defaults: MPS 247 makes one K-frame fill one 251-octet LE ACL packet (4-octet L2CAP header, Vol 3,
 * Part A, 3.4.1) on a controller with data length extension; MTU 2048; 16 credits.
 */
export const DEFAULT_COC_PARAMETERS: Readonly<CocParameters> = { mtu: 2048, mps: 247, initialCredits: 16 };

/** What we announce for our receiving side of a channel. */
export interface CocParameters {
  /** The largest SDU we accept (our MTU). */
  mtu: number;
  /** The largest K-frame payload we accept (our MPS). */
  mps: number;
  /** Credits we give the peer at once; also the receive window we keep it topped up to. */
  initialCredits: number;
}

/** What a listener asks of the link before it accepts (Vol 3, Part A, 4.23 results 0x0005, 0x0007, 0x0008). */
export interface CocSecurity {
  /** The link must be encrypted (else 0x0008 Insufficient Encryption). */
  encrypted?: boolean;
  /** With an authenticated (MITM) key (else 0x0005 Insufficient Authentication). */
  authenticated?: boolean;
  /** Encryption key size at least this (else 0x0007 Encryption Key Size Too Short). */
  keySize?: number;
}

export interface LinkSecurityState {
  encrypted: boolean;
  keySize: number;
  authenticated: boolean;
}

export type OpenChannelOptions = Partial<CocParameters> & OperationOptions;

export interface ListenOptions extends Partial<CocParameters>, CocSecurity {
  /** Channels held until the application takes them; beyond, requests get 0x0004 No Resources (default 16). */
  backlog?: number;
}

/** The command without its identifier: the link assigns one. */
type Req<K extends 'leCreditBasedConnectionReq' | 'creditBasedConnectionReq' | 'creditBasedReconfigureReq' | 'disconnectionReq'> =
  Omit<SignallingCommandOf<K>, 'identifier'>;

/** What the engine needs of its L2CAP link. */
export interface CocLinkHost {
  readonly handle: number;
  readonly clock: Clock;
  /** Send one L2CAP payload on `cid` (the basic header is the link's); resolves when it is on the wire. */
  sendFrame(cid: number, payload: Uint8Array): Promise<void>;
  /**
   * Send a signalling request; resolves with its response or Command Reject; rejects on RTX timeout or
   * link loss. `onAnswer`, when given, runs synchronously as the answer is received, before anything
   * the link receives after it: a channel must exist before the K-frames that follow its response.
   */
  request(cmd: Req<'leCreditBasedConnectionReq'> | Req<'creditBasedConnectionReq'> | Req<'creditBasedReconfigureReq'>
    | Req<'disconnectionReq'>, onAnswer?: (rsp: AnySignallingCommand) => void): Promise<AnySignallingCommand>;
  /** Send a response to the peer's request (bounded by the link). */
  reply(cmd: AnySignallingCommand): void;
  /** Send a signalling command that expects no answer (Flow Control Credit Indication). */
  indicate(cmd: AnySignallingCommand): void;
  /** The link's security, for the listener's requirements. */
  security(): LinkSecurityState;
  /**
   * Pending while the link takes in an Encryption Change (its key size being read): `security()` is
   * up to date once it resolves. Undefined when nothing is pending.
   */
  settling?(): Promise<void> | undefined;
}

export interface ChannelStats {
  sdusSent: number;
  sdusReceived: number;
  framesSent: number;
  framesReceived: number;
  /** Credits the peer gave us after the initial ones. */
  creditsReceived: number;
  /** Credits we gave back after the initial ones. */
  creditsGranted: number;
  /** Times a K-frame waited because we had no credit. */
  creditStalls: number;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const validLeParams = (mtu: number, mps: number): boolean =>
  mtu >= LE_COC_MIN_MTU && mtu <= 0xffff && mps >= LE_COC_MIN_MPS && mps <= LE_COC_MAX_MPS;
const validEcredParams = (mtu: number, mps: number): boolean =>
  mtu >= ECRED_MIN_MTU && mtu <= 0xffff && mps >= ECRED_MIN_MPS && mps <= LE_COC_MAX_MPS;
const isDynamicCid = (cid: number): boolean => cid >= LE_DYNAMIC_CID_FIRST && cid <= LE_DYNAMIC_CID_LAST;

function checkParameters(p: CocParameters, enhanced: boolean, what: string): void {
  const ok = enhanced ? validEcredParams(p.mtu, p.mps) : validLeParams(p.mtu, p.mps);
  if (!Number.isInteger(p.mtu) || !Number.isInteger(p.mps) || !ok) {
    throw new ArgumentError(`${what}: mtu ${p.mtu} / mps ${p.mps} out of range: mtu ${enhanced ? ECRED_MIN_MTU : LE_COC_MIN_MTU}..65535, ` +
      `mps ${enhanced ? ECRED_MIN_MPS : LE_COC_MIN_MPS}..${LE_COC_MAX_MPS} (Vol 3, Part A, ${enhanced ? '4.25' : '4.22'})`);
  }
  if (!Number.isInteger(p.initialCredits) || p.initialCredits < 0 || p.initialCredits > MAX_CREDITS) {
    throw new ArgumentError(`${what}: initialCredits ${p.initialCredits} out of range 0..65535`);
  }
}

function checkPsm(psm: number, what: string): void {
  if (!Number.isInteger(psm) || psm < LE_PSM_MIN || psm > LE_PSM_MAX) {
    throw new ArgumentError(`${what}: PSM ${psm} out of range 0x0001..0x00FF (LE_PSM/SPSM, Vol 3, Part A, 4.22)`);
  }
}

function parametersOf(o: Partial<CocParameters> | undefined): CocParameters {
  return {
    mtu: o?.mtu ?? DEFAULT_COC_PARAMETERS.mtu,
    mps: o?.mps ?? DEFAULT_COC_PARAMETERS.mps,
    initialCredits: o?.initialCredits ?? DEFAULT_COC_PARAMETERS.initialCredits,
  };
}

const REFUSAL_HINTS: Readonly<Record<number, string>> = {
  0x0002: 'nothing listens on that PSM on the peer',
  0x0004: 'the peer has no room for another channel now; retry later',
  0x0005: 'pair with the peer first (with MITM protection if it asks for it)',
  0x0006: 'the peer must authorize this channel',
  0x0007: 'pair again with a longer encryption key',
  0x0008: 'encrypt the link first (pair, or encrypt with the bond)',
  0x000b: 'choose another MTU / MPS',
};

function refused(psm: number, result: number): ChannelRefusedError {
  return new ChannelRefusedError(psm, result, CREDIT_BASED_CONNECTION_RESULT_NAMES[result] ?? 'Reserved result', REFUSAL_HINTS[result]);
}

interface PendingSend {
  sdu: Uint8Array;
  /** Octets of the SDU already put in K-frames. */
  offset: number;
  started: boolean;
  /** K-frames of this SDU handed to the link and not yet on the wire. */
  inFlight: number;
  resolve(): void;
  reject(e: Error): void;
  /** Abandoned by its caller; the engine stops waiting for it. */
  done?: () => void;
}

interface Reader {
  resolve(v: Uint8Array | undefined): void;
  reject(e: Error): void;
}

type CloseError = ChannelClosedError | DisconnectedError;

/**
 * One credit-based channel: an L2capChannel (send / setReceiver / close, for ATT and the like) and,
 * for applications, an async iterable of received SDUs with `read()` / `write()` whose back-pressure
 * is the credits (a reader that stops reading stops the peer; a writer awaiting `write()` waits for the
 * peer's credits).
 */
export class CreditChannel implements L2capChannel, AsyncIterable<Uint8Array> {
  /** The peer's MTU: the largest SDU `send()` takes (Vol 3, Part A, 4.22). */
  mtu: number;
  /** The peer's MPS: the largest K-frame payload we send. */
  peerMps: number;
  /** Our MTU and MPS (what the peer may send us). */
  readonly localMtu: number;
  readonly localMps: number;
  readonly stats: ChannelStats = { sdusSent: 0, sdusReceived: 0, framesSent: 0, framesReceived: 0, creditsReceived: 0,
    creditsGranted: 0, creditStalls: 0 };
  /** Why the channel closed, once it has. */
  closedError: CloseError | undefined;
  /** Credits we hold: K-frames we may still send. */
  private txCredits: number;
  /** Credits the peer holds: K-frames it may still send us. */
  private peerCredits: number;
  /** The receive window we keep the peer topped up to. */
  private readonly window: number;
  /** SDUs received and queued for the application (each holds back one credit). */
  private readonly rxQueue: Uint8Array[] = [];
  private rxSdu: { buf: Uint8Array; filled: number } | undefined;
  private readonly readers: Reader[] = [];
  private readonly txQueue: PendingSend[] = [];
  private txInFlight = 0;
  private receiver: ChannelReceiver | undefined;
  private readonly closeWaiters: Array<(e: CloseError) => void> = [];

  /** @internal Built by CocEngine. */
  constructor(
    private readonly engine: CocEngine,
    readonly handle: number,
    readonly cid: number,
    readonly peerCid: number,
    readonly psm: number,
    readonly mode: 'le' | 'enhanced',
    local: CocParameters,
    peer: CocParameters,
  ) {
    this.localMtu = local.mtu;
    this.localMps = local.mps;
    this.window = Math.max(1, local.initialCredits);
    this.peerCredits = local.initialCredits;
    this.mtu = peer.mtu;
    this.peerMps = peer.mps;
    this.txCredits = peer.initialCredits;
  }

  get open(): boolean {
    return this.closedError === undefined;
  }

  /** Credits we hold now (K-frames we may send before the peer gives more). */
  get credits(): number {
    return this.txCredits;
  }

  /** Credits the peer holds now (K-frames it may send before we give more). */
  get peerCreditCount(): number {
    return this.peerCredits;
  }

  /** SDUs received and not yet read. */
  get queued(): number {
    return this.rxQueue.length;
  }

  // ---- sending --------------------------------------------------------------------------------------

  /**
   * Queue one SDU (≤ the peer's MTU). Resolves when all its K-frames are on the wire; waits for the
   * peer's credits when there are none. `timeout` / `signal`: an SDU not yet started is withdrawn; one
   * already partly sent cannot be, so the channel is disconnected (the peer would otherwise read a
   * truncated SDU). Do not change `sdu` until the promise settles.
   */
  send(sdu: Uint8Array, options?: OperationOptions): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    const early = abortedError(`l2cap channel ${hex(this.cid)} send`, options?.signal);
    if (early) return Promise.reject(early);
    if (sdu.length > this.mtu) {
      return Promise.reject(new ArgumentError(`l2cap: an SDU of ${sdu.length} octets exceeds the peer's MTU ${this.mtu} on channel ${hex(this.cid)}`));
    }
    if (this.txQueue.length >= MAX_QUEUED_SENDS) {
      return Promise.reject(new InvalidStateError(`l2cap: ${MAX_QUEUED_SENDS} SDUs already queued on channel ${hex(this.cid)}; await earlier sends`));
    }
    return new Promise<void>((resolve, reject) => {
      const p: PendingSend = { sdu, offset: 0, started: false, inFlight: 0, resolve, reject };
      if (options?.timeout !== undefined || options?.signal) {
        const d = deadline(this.engine.clock, options, { layer: 'l2cap', operation: `channel ${hex(this.cid)} send` });
        p.done = d.done;
        p.resolve = () => { d.done(); resolve(); };
        p.reject = e => { d.done(); reject(e); };
        d.signal.addEventListener('abort', () => this.abandon(p, d.signal.reason as Error), { once: true });
      }
      this.txQueue.push(p);
      this.pump();
    });
  }

  /** `send()` under its stream name. */
  write(sdu: Uint8Array, options?: OperationOptions): Promise<void> {
    return this.send(sdu, options);
  }

  private abandon(p: PendingSend, reason: Error): void {
    const i = this.txQueue.indexOf(p);
    if (i < 0) return;
    if (!p.started) {
      this.txQueue.splice(i, 1);
      p.reject(reason);
      return;
    }
    p.reject(reason);
    p.resolve = () => undefined;
    p.reject = () => undefined;
    this.engine.violation(this, 'local', 'a send was abandoned in the middle of an SDU');
  }

  private pump(): void {
    while (!this.closedError && this.txInFlight < TX_FRAMES_IN_FLIGHT) {
      const head = this.txQueue.find(p => p.offset < p.sdu.length || !p.started);
      if (!head) return;
      if (this.txCredits === 0) {
        this.stats.creditStalls++;
        return;
      }
      const first = !head.started;
      const room = this.peerMps - (first ? SDU_LENGTH_SIZE : 0);
      const n = Math.min(room, head.sdu.length - head.offset);
      const payload = new Uint8Array((first ? SDU_LENGTH_SIZE : 0) + n);
      let o = 0;
      if (first) {
        payload[0] = head.sdu.length & 0xff;
        payload[1] = head.sdu.length >> 8;
        o = SDU_LENGTH_SIZE;
      }
      payload.set(head.sdu.subarray(head.offset, head.offset + n), o);
      head.offset += n;
      head.started = true;
      head.inFlight++;
      this.txCredits--;
      this.txInFlight++;
      this.stats.framesSent++;
      this.engine.host.sendFrame(this.peerCid, payload).then(() => {
        this.txInFlight--;
        head.inFlight--;
        this.sentFrame(head);
        this.pump();
      }, e => {
        this.txInFlight--;
        head.inFlight--;
        // The link is going down: linkClosed() rejects what is queued; this SDU fails with the link's error.
        const i = this.txQueue.indexOf(head);
        if (i >= 0) this.txQueue.splice(i, 1);
        head.reject(this.closedError ?? (e as Error));
      });
    }
  }

  private sentFrame(p: PendingSend): void {
    if (p.offset < p.sdu.length || p.inFlight > 0) return;
    const i = this.txQueue.indexOf(p);
    if (i < 0) return;
    this.txQueue.splice(i, 1);
    this.stats.sdusSent++;
    p.resolve();
  }

  /** @internal The peer gave credits (Flow Control Credit Indication, Vol 3, Part A, 4.24). */
  addCredits(n: number): boolean {
    if (this.txCredits + n > MAX_CREDITS) return false;
    this.txCredits += n;
    this.stats.creditsReceived += n;
    this.pump();
    return true;
  }

  // ---- receiving ------------------------------------------------------------------------------------

  /** @internal One K-frame payload for this channel. Returns a violation to disconnect for, if any. */
  receiveFrame(payload: Uint8Array): string | undefined {
    if (this.closedError) return undefined;
    if (this.peerCredits === 0) return 'a K-frame arrived while the peer had no credit (Vol 3, Part A, 10.1)';
    this.peerCredits--;
    this.stats.framesReceived++;
    if (payload.length > this.localMps) return `a K-frame payload of ${payload.length} octets exceeds our MPS ${this.localMps} (Vol 3, Part A, 3.4.3)`;
    let sdu: Uint8Array | undefined;
    if (!this.rxSdu) {
      if (payload.length < SDU_LENGTH_SIZE) return 'the first K-frame of an SDU has no SDU Length (Vol 3, Part A, 3.4.2)';
      const total = payload[0]! | (payload[1]! << 8);
      if (total > this.localMtu) return `an SDU Length of ${total} exceeds our MTU ${this.localMtu} (Vol 3, Part A, 3.4.3)`;
      const data = payload.subarray(SDU_LENGTH_SIZE);
      if (data.length > total) return `K-frames carry more than the SDU Length ${total} (Vol 3, Part A, 3.4.3)`;
      if (data.length === total) sdu = data;
      else {
        const buf = new Uint8Array(total);
        buf.set(data, 0);
        this.rxSdu = { buf, filled: data.length };
      }
    } else {
      const r = this.rxSdu;
      if (r.filled + payload.length > r.buf.length) return `K-frames carry more than the SDU Length ${r.buf.length} (Vol 3, Part A, 3.4.3)`;
      r.buf.set(payload, r.filled);
      r.filled += payload.length;
      if (r.filled === r.buf.length) {
        sdu = r.buf;
        this.rxSdu = undefined;
      }
    }
    if (sdu) {
      this.stats.sdusReceived++;
      this.deliver(sdu);
    }
    this.refill();
    return undefined;
  }

  private deliver(sdu: Uint8Array): void {
    if (this.receiver) {
      this.receiver.data(sdu);
      return;
    }
    const reader = this.readers.shift();
    if (reader) {
      reader.resolve(sdu);
      return;
    }
    this.rxQueue.push(sdu);
  }

  /** Top the peer's credits up to the window minus the SDUs it waits on us to read (see the overview). */
  private refill(): void {
    if (this.closedError) return;
    const target = this.window - this.rxQueue.length;
    const owed = target - this.peerCredits;
    if (owed <= 0) return;
    if (owed < Math.ceil(this.window / 2) && this.peerCredits > 0) return;
    this.peerCredits += owed;
    this.stats.creditsGranted += owed;
    this.engine.host.indicate({ kind: 'flowControlCreditInd', identifier: this.engine.nextIndicationId(), cid: this.cid, credits: owed });
  }

  /**
   * The next received SDU; undefined once the channel was closed in order (by either side) and every
   * SDU received before was read. Rejects with the channel's error after a protocol violation or the
   * link's loss. Reading returns the SDU's credit to the peer.
   */
  read(options?: OperationOptions): Promise<Uint8Array | undefined> {
    const sdu = this.rxQueue.shift();
    if (sdu) {
      this.refill();
      return Promise.resolve(sdu);
    }
    if (this.closedError) return this.endOfStream();
    if (this.receiver) return Promise.reject(new InvalidStateError(`l2cap: channel ${hex(this.cid)} delivers to a receiver (setReceiver); read() has nothing to read`));
    if (this.readers.length >= MAX_READERS) return Promise.reject(new InvalidStateError(`l2cap: ${MAX_READERS} reads already wait on channel ${hex(this.cid)}`));
    const early = abortedError(`l2cap channel ${hex(this.cid)} read`, options?.signal);
    if (early) return Promise.reject(early);
    // A reader waits: a channel opened with 0 initial credits gives the peer its first ones now.
    this.refill();
    const p = new Promise<Uint8Array | undefined>((resolve, reject) => this.readers.push({ resolve, reject }));
    if (options?.timeout === undefined && !options?.signal) return p;
    const d = deadline(this.engine.clock, options, { layer: 'l2cap', operation: `channel ${hex(this.cid)} read` });
    const reader = this.readers[this.readers.length - 1]!;
    d.signal.addEventListener('abort', () => {
      const i = this.readers.indexOf(reader);
      if (i >= 0) this.readers.splice(i, 1);
    }, { once: true });
    return raceAbort(p, d.signal, `channel ${hex(this.cid)} read`).finally(d.done);
  }

  private endOfStream(): Promise<undefined> {
    const e = this.closedError!;
    const orderly = e instanceof ChannelClosedError && (e.by === 'local' || e.by === 'peer');
    return orderly ? Promise.resolve(undefined) : Promise.reject(e);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const sdu = await this.read();
      if (sdu === undefined) return;
      yield sdu;
    }
  }

  setReceiver(receiver: ChannelReceiver): void {
    this.receiver = receiver;
    for (const r of this.readers.splice(0)) r.reject(new InvalidStateError(`l2cap: channel ${hex(this.cid)} was given a receiver`));
    for (const sdu of this.rxQueue.splice(0)) receiver.data(sdu);
    if (this.closedError) receiver.closed(this.closedError);
    else this.refill();
  }

  // ---- closing --------------------------------------------------------------------------------------

  /**
   * Disconnect the channel (Disconnection Request, Vol 3, Part A, 4.6). Data stops at once both ways;
   * SDUs already received stay readable. Resolves when the peer answered (or its RTX timer ran out);
   * never rejects. Idempotent.
   */
  close(): Promise<void> {
    if (this.closedError) return this.engine.disconnecting(this) ?? Promise.resolve();
    return this.engine.disconnect(this, new ChannelClosedError(this.cid, 'local'));
  }

  /** Resolves with why the channel closed, once it has. */
  get closed(): Promise<CloseError> {
    if (this.closedError) return Promise.resolve(this.closedError);
    return new Promise(resolve => this.closeWaiters.push(resolve));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal The channel ends: senders, readers and the receiver learn why. */
  ended(error: CloseError): void {
    if (this.closedError) return;
    this.closedError = error;
    this.rxSdu = undefined;
    for (const p of this.txQueue.splice(0)) p.reject(error);
    if (this.rxQueue.length === 0) {
      const orderly = error instanceof ChannelClosedError && (error.by === 'local' || error.by === 'peer');
      for (const r of this.readers.splice(0)) {
        if (orderly) r.resolve(undefined);
        else r.reject(error);
      }
    }
    // The ATT bearer on a channel learns of the link's loss as on a fixed channel.
    const forReceiver = error instanceof ChannelClosedError && error.by === 'link' && error.cause instanceof DisconnectedError ? error.cause : error;
    this.receiver?.closed(forReceiver);
    for (const w of this.closeWaiters.splice(0)) w(error);
  }

  /** @internal Reconfigured by the peer (Vol 3, Part A, 4.27). */
  reconfigured(mtu: number, mps: number): void {
    this.mtu = mtu;
    this.peerMps = mps;
  }
}

/** A listener on one PSM: incoming channels (from links of either role) as an async iterable. */
export class ChannelListener implements AsyncIterable<CreditChannel> {
  private readonly pending: CreditChannel[] = [];
  private readonly waiters: Array<(c: CreditChannel | undefined) => void> = [];
  private stopped = false;
  /** Requests refused because the backlog was full. */
  refusedBusy = 0;

  /** @internal Use CocRegistry.listen (Adapter.listen). */
  constructor(private readonly registry: CocRegistry, readonly psm: number, readonly parameters: CocParameters,
    readonly security: CocSecurity, readonly backlog: number) {}

  get listening(): boolean {
    return !this.stopped;
  }

  /** @internal Room for one more channel? */
  hasRoom(): boolean {
    return !this.stopped && (this.waiters.length > 0 || this.pending.length < this.backlog);
  }

  /** @internal A channel was opened to us. */
  offer(ch: CreditChannel): void {
    const w = this.waiters.shift();
    if (w) w(ch);
    else this.pending.push(ch);
  }

  /** The next incoming channel; undefined once the listener is closed. */
  accept(options?: OperationOptions): Promise<CreditChannel | undefined> {
    for (;;) {
      const ch = this.pending.shift();
      if (!ch) break;
      if (ch.open) return Promise.resolve(ch);
    }
    if (this.stopped) return Promise.resolve(undefined);
    const early = abortedError(`listen 0x${this.psm.toString(16)} accept`, options?.signal);
    if (early) return Promise.reject(early);
    let w!: (c: CreditChannel | undefined) => void;
    const p = new Promise<CreditChannel | undefined>(resolve => { w = resolve; this.waiters.push(w); });
    if (options?.timeout === undefined && !options?.signal) return p;
    const d = deadline(this.registry.clock, options, { layer: 'l2cap', operation: `accept on PSM ${hex(this.psm)}` });
    d.signal.addEventListener('abort', () => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
    }, { once: true });
    return raceAbort(p, d.signal, `accept on PSM ${hex(this.psm)}`).finally(d.done);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<CreditChannel> {
    try {
      for (;;) {
        const ch = await this.accept();
        if (!ch) return;
        yield ch;
      }
    } finally {
      // Leaving the loop stops listening (as leaving a scan's loop stops the scan).
      this.close();
    }
  }

  /** Stop listening: new requests get "SPSM not supported"; channels not yet taken are closed. Idempotent. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.registry.remove(this);
    for (const w of this.waiters.splice(0)) w(undefined);
    for (const ch of this.pending.splice(0)) void ch.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The PSMs we listen on: one registry per adapter, shared by all its links (either role). */
export class CocRegistry {
  private readonly listeners = new Map<number, ChannelListener>();
  constructor(readonly clock: Clock) {}

  /** Listen on `psm` (0x0001–0x00FF). ArgumentError for a bad PSM or parameters, InvalidStateError if it is taken. */
  listen(psm: number, options: ListenOptions = {}): ChannelListener {
    checkPsm(psm, 'listen');
    const params = parametersOf(options);
    checkParameters(params, false, 'listen');
    if (this.listeners.has(psm)) throw new InvalidStateError(`listen: PSM ${hex(psm)} already has a listener; close it first`);
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    if (!Number.isInteger(backlog) || backlog < 1) throw new ArgumentError(`listen: backlog ${backlog} must be a positive integer`);
    const security: CocSecurity = {
      ...(options.encrypted !== undefined ? { encrypted: options.encrypted } : {}),
      ...(options.authenticated !== undefined ? { authenticated: options.authenticated } : {}),
      ...(options.keySize !== undefined ? { keySize: options.keySize } : {}),
    };
    const l = new ChannelListener(this, psm, params, security, backlog);
    this.listeners.set(psm, l);
    return l;
  }

  get(psm: number): ChannelListener | undefined {
    return this.listeners.get(psm);
  }

  /** @internal */
  remove(l: ChannelListener): void {
    if (this.listeners.get(l.psm) === l) this.listeners.delete(l.psm);
  }
}

/** Counters of the engine (one link). */
export interface CocStats {
  requestsRefused: number;
  /** Connection requests answered only once an Encryption Change had been taken in. */
  requestsDeferred: number;
  violations: number;
  unknownCid: number;
}

/** The credit-based channels of one LE link. */
export class CocEngine {
  readonly stats: CocStats = { requestsRefused: 0, requestsDeferred: 0, violations: 0, unknownCid: 0 };
  /** Open channels by our CID. */
  private readonly channels = new Map<number, CreditChannel>();
  /** Our CIDs in use without an open channel: opening (request sent) or disconnecting (request sent). */
  private readonly reserved = new Map<number, Promise<void> | undefined>();
  private linkError: DisconnectedError | undefined;
  private indicationId = 0;

  constructor(readonly host: CocLinkHost, private readonly registry: CocRegistry | undefined) {}

  get clock(): Clock {
    return this.host.clock;
  }

  /** Open channels on this link. */
  get openChannels(): CreditChannel[] {
    return [...this.channels.values()];
  }

  /** @internal Identifier of an indication (Flow Control Credit Ind is not answered; 1–255, never 0). */
  nextIndicationId(): number {
    this.indicationId = this.indicationId === 255 ? 1 : this.indicationId + 1;
    return this.indicationId;
  }

  private allocateCids(n: number): number[] | undefined {
    const out: number[] = [];
    for (let cid = LE_DYNAMIC_CID_FIRST; cid <= LE_DYNAMIC_CID_LAST && out.length < n; cid++) {
      if (!this.channels.has(cid) && !this.reserved.has(cid)) out.push(cid);
    }
    return out.length === n ? out : undefined;
  }

  private byPeerCid(peerCid: number): CreditChannel | undefined {
    for (const ch of this.channels.values()) if (ch.peerCid === peerCid) return ch;
    return undefined;
  }

  // ---- opening ----------------------------------------------------------------------------------------

  /** Open an LE credit-based channel (LE Credit Based Connection Request, Vol 3, Part A, 4.22). */
  async open(psm: number, options: OpenChannelOptions = {}): Promise<CreditChannel> {
    const [ch] = await this.openWith(psm, 1, false, options);
    return ch!;
  }

  /** Open 1–5 channels in one Credit Based Connection Request (Enhanced mode, Vol 3, Part A, 4.25). */
  openEnhanced(spsm: number, count: number, options: OpenChannelOptions = {}): Promise<CreditChannel[]> {
    return this.openWith(spsm, count, true, options);
  }

  private async openWith(psm: number, count: number, enhanced: boolean, options: OpenChannelOptions): Promise<CreditChannel[]> {
    const what = `open channel on PSM ${hex(psm)}`;
    const early = abortedError(what, options.signal);
    if (early) throw early;
    if (this.linkError) throw this.linkError;
    checkPsm(psm, what);
    const local = parametersOf(options);
    checkParameters(local, enhanced, what);
    if (!Number.isInteger(count) || count < 1 || count > ECRED_MAX_CHANNELS) {
      throw new ArgumentError(`${what}: ${count} channels; one request opens 1..${ECRED_MAX_CHANNELS} (Vol 3, Part A, 4.25)`);
    }
    const cids = this.allocateCids(count);
    if (!cids) throw new InvalidStateError(`${what}: all 64 dynamic CIDs of link 0x${this.host.handle.toString(16)} are in use`);
    for (const c of cids) this.reserved.set(c, undefined);
    const d = deadline(this.clock, options, { layer: 'l2cap', operation: what });
    let abandoned = false;
    // The channels are made as the answer is received (synchronously), so K-frames right behind it find them.
    let outcome: { ok: CreditChannel[] } | { err: unknown } | undefined;
    const answer = this.host.request(enhanced
      ? { kind: 'creditBasedConnectionReq', spsm: psm, mtu: local.mtu, mps: local.mps, initialCredits: local.initialCredits, sourceCids: cids }
      : { kind: 'leCreditBasedConnectionReq', lePsm: psm, sourceCid: cids[0]!, mtu: local.mtu, mps: local.mps, initialCredits: local.initialCredits },
    rsp => {
      try {
        outcome = { ok: this.opened(psm, cids, local, enhanced, rsp, () => abandoned) };
      } catch (e) {
        outcome = { err: e };
      }
    });
    const settled = answer.then(() => {
      if (!outcome) throw new ProtocolError('l2cap', `open channel on PSM ${hex(psm)}: no answer was handled`);
      if ('err' in outcome) throw outcome.err;
      return outcome.ok;
    }, e => {
      for (const c of cids) this.reserved.delete(c);
      throw e;
    });
    try {
      return await raceAbort(settled, d.signal, what);
    } catch (e) {
      abandoned = true;
      settled.catch(() => undefined);
      throw e;
    } finally {
      d.done();
    }
  }

  private opened(psm: number, cids: number[], local: CocParameters, enhanced: boolean, rsp: AnySignallingCommand,
    abandoned: () => boolean): CreditChannel[] {
    const release = (): void => { for (const c of cids) this.reserved.delete(c); };
    if (rsp.kind === 'commandRejectRsp') {
      release();
      throw new ChannelRefusedError(psm, -1, `Command Reject: ${COMMAND_REJECT_REASON_NAMES[rsp.reason] ?? 'reserved reason'}`,
        `the peer does not support ${enhanced ? 'enhanced ' : ''}credit-based channels`);
    }
    if (this.linkError) {
      release();
      throw this.linkError;
    }
    let dcids: number[];
    let peer: CocParameters;
    let result: number;
    if (rsp.kind === 'leCreditBasedConnectionRsp' && !enhanced) {
      dcids = [rsp.result === 0 ? rsp.destinationCid : 0];
      peer = { mtu: rsp.mtu, mps: rsp.mps, initialCredits: rsp.initialCredits };
      result = rsp.result;
    } else if (rsp.kind === 'creditBasedConnectionRsp' && enhanced) {
      dcids = rsp.destinationCids;
      peer = { mtu: rsp.mtu, mps: rsp.mps, initialCredits: rsp.initialCredits };
      result = rsp.result;
    } else {
      release();
      throw new ProtocolError('l2cap', `open channel on PSM ${hex(psm)}: answered with ${rsp.kind}`);
    }
    const accepted = dcids.some(c => c !== 0) && (enhanced || result === 0);
    if (!accepted) {
      release();
      throw refused(psm, result);
    }
    const okParams = enhanced ? validEcredParams(peer.mtu, peer.mps) : validLeParams(peer.mtu, peer.mps);
    const out: CreditChannel[] = [];
    const bad: string[] = [];
    for (let i = 0; i < cids.length; i++) {
      const cid = cids[i]!;
      const dcid = dcids[i] ?? 0;
      this.reserved.delete(cid);
      if (dcid === 0) continue;
      if (!isDynamicCid(dcid) || this.byPeerCid(dcid) || !okParams || dcids.indexOf(dcid) !== i) {
        bad.push(hex(dcid));
        // A channel the peer thinks is open but we cannot use: end it (Vol 3, Part A, 4.6).
        if (isDynamicCid(dcid)) void this.sendDisconnect(cid, dcid);
        continue;
      }
      const ch = new CreditChannel(this, this.host.handle, cid, dcid, psm, enhanced ? 'enhanced' : 'le', local, peer);
      this.channels.set(cid, ch);
      out.push(ch);
    }
    if (bad.length > 0 && out.length === 0) {
      throw new ProtocolError('l2cap', `open channel on PSM ${hex(psm)}: the peer answered with an unusable CID or parameters ` +
        `(${bad.join(', ')}, MTU ${peer.mtu}, MPS ${peer.mps}); disconnected`);
    }
    if (abandoned()) {
      // The caller gave up before the answer: nobody will use these.
      for (const ch of out) void ch.close();
      throw new ChannelClosedError(out[0]?.cid ?? 0, 'local', 'the open was abandoned before the peer answered');
    }
    if (log.l2cap.enabled) for (const ch of out) log.l2cap('handle 0x%s channel %s <-> %s open on PSM %s', this.host.handle.toString(16), hex(ch.cid), hex(ch.peerCid), hex(psm));
    return out;
  }

  // ---- the peer's commands ------------------------------------------------------------------------------

  /**
   * A K-frame on a dynamic CID; false when no channel is open on it (the frame is dropped: e.g. data
   * in flight while we disconnect).
   */
  frame(cid: number, payload: Uint8Array): boolean {
    const ch = this.channels.get(cid);
    if (!ch) {
      this.stats.unknownCid++;
      return false;
    }
    const violation = ch.receiveFrame(payload);
    if (violation) this.violation(ch, 'protocol', violation);
    return true;
  }

  /** The peer's credit-based commands; returns false for a command that is not this engine's. */
  signalling(cmd: AnySignallingCommand): boolean {
    switch (cmd.kind) {
      case 'leCreditBasedConnectionReq': this.whenSettled(cmd, () => this.leConnectionRequest(cmd)); return true;
      case 'creditBasedConnectionReq': this.whenSettled(cmd, () => this.enhancedConnectionRequest(cmd)); return true;
      case 'creditBasedReconfigureReq': this.reconfigureRequest(cmd); return true;
      case 'flowControlCreditInd': {
        const ch = this.byPeerCid(cmd.cid);
        if (!ch) { this.stats.unknownCid++; return true; }
        if (cmd.credits === 0) return true;
        if (!ch.addCredits(cmd.credits)) {
          this.violation(ch, 'protocol', `the peer's credits would exceed 65535 (Vol 3, Part A, 10.1)`);
        }
        return true;
      }
      case 'disconnectionReq': {
        const ch = this.channels.get(cmd.destinationCid);
        const closing = this.reserved.has(cmd.destinationCid);
        if ((!ch || ch.peerCid !== cmd.sourceCid) && !closing) {
          // Invalid CID in request, with the CIDs as the request gave them (Vol 3, Part A, 4.1).
          const data = Uint8Array.of(cmd.destinationCid & 0xff, cmd.destinationCid >> 8, cmd.sourceCid & 0xff, cmd.sourceCid >> 8);
          this.host.reply({ kind: 'commandRejectRsp', identifier: cmd.identifier, reason: 0x0002, data });
          return true;
        }
        this.host.reply({ kind: 'disconnectionRsp', identifier: cmd.identifier, destinationCid: cmd.destinationCid, sourceCid: cmd.sourceCid });
        if (ch) {
          this.channels.delete(ch.cid);
          ch.ended(new ChannelClosedError(ch.cid, 'peer'));
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** Connection requests waiting for the link's security to settle, in arrival order. */
  private deferred = 0;
  private deferredChain: Promise<void> = Promise.resolve();

  /**
   * Runs a connection request now, or once the link's security has settled. A peer that asks again
   * right after the Encryption Change its pairing brought (Linux does, after our 0x0005 / 0x0008: Vol 3,
   * Part A, 4.23) must be judged by the encrypted link, not by the state of a moment before it, which
   * would refuse it again (and the kernel would then ask for MITM protection). Requests behind a
   * deferred one wait too, so they are answered in order; at most MAX_DEFERRED_REQUESTS wait (beyond,
   * No Resources: a peer cannot queue requests without bound).
   */
  private whenSettled(cmd: SignallingCommandOf<'leCreditBasedConnectionReq'> | SignallingCommandOf<'creditBasedConnectionReq'>, run: () => void): void {
    const settling = this.host.settling?.();
    if (!settling && this.deferred === 0) return run();
    if (this.deferred >= MAX_DEFERRED_REQUESTS) {
      this.stats.requestsRefused++;
      if (cmd.kind === 'leCreditBasedConnectionReq') {
        this.host.reply({ kind: 'leCreditBasedConnectionRsp', identifier: cmd.identifier, destinationCid: 0, mtu: 0, mps: 0, initialCredits: 0,
          result: CreditBasedConnectionResult.SomeRefusedNoResources });
      } else {
        this.host.reply({ kind: 'creditBasedConnectionRsp', identifier: cmd.identifier, mtu: 0, mps: 0, initialCredits: 0,
          result: CreditBasedConnectionResult.SomeRefusedNoResources, destinationCids: cmd.sourceCids.map(() => 0) });
      }
      return;
    }
    this.deferred++;
    this.stats.requestsDeferred++;
    this.deferredChain = this.deferredChain.then(() => settling).catch(() => undefined).then(() => {
      this.deferred--;
      run();
    });
  }

  private security(req: CocSecurity): number {
    const s = this.host.security();
    if ((req.encrypted || req.authenticated || req.keySize) && !s.encrypted) {
      return req.authenticated ? CreditBasedConnectionResult.InsufficientAuthentication : CreditBasedConnectionResult.InsufficientEncryption;
    }
    if (req.authenticated && !s.authenticated) return CreditBasedConnectionResult.InsufficientAuthentication;
    if (req.keySize && s.keySize < req.keySize) return CreditBasedConnectionResult.EncryptionKeySizeTooShort;
    return CreditBasedConnectionResult.Successful;
  }

  private leConnectionRequest(cmd: SignallingCommandOf<'leCreditBasedConnectionReq'>): void {
    const refuse = (result: number): void => {
      this.stats.requestsRefused++;
      this.host.reply({ kind: 'leCreditBasedConnectionRsp', identifier: cmd.identifier, destinationCid: 0, mtu: 0, mps: 0, initialCredits: 0, result });
    };
    if (this.linkError) return;
    // Checked in the order of Vol 3, Part A, 4.23's result list.
    if (!validLeParams(cmd.mtu, cmd.mps)) return refuse(CreditBasedConnectionResult.UnacceptableParameters);
    const l = this.registry?.get(cmd.lePsm);
    if (!l?.listening) return refuse(CreditBasedConnectionResult.SpsmNotSupported);
    const sec = this.security(l.security);
    if (sec !== 0) return refuse(sec);
    if (!isDynamicCid(cmd.sourceCid)) return refuse(CreditBasedConnectionResult.InvalidSourceCid);
    if (this.byPeerCid(cmd.sourceCid)) return refuse(CreditBasedConnectionResult.SourceCidAlreadyAllocated);
    const cid = this.allocateCids(1)?.[0];
    if (cid === undefined || !l.hasRoom()) return refuse(CreditBasedConnectionResult.SomeRefusedNoResources);
    const local = l.parameters;
    const ch = new CreditChannel(this, this.host.handle, cid, cmd.sourceCid, cmd.lePsm, 'le', local,
      { mtu: cmd.mtu, mps: cmd.mps, initialCredits: cmd.initialCredits });
    this.channels.set(cid, ch);
    this.host.reply({ kind: 'leCreditBasedConnectionRsp', identifier: cmd.identifier, destinationCid: cid, mtu: local.mtu, mps: local.mps,
      initialCredits: local.initialCredits, result: 0 });
    l.offer(ch);
  }

  private enhancedConnectionRequest(cmd: SignallingCommandOf<'creditBasedConnectionReq'>): void {
    const n = cmd.sourceCids.length;
    const refuseAll = (result: number): void => {
      this.stats.requestsRefused++;
      this.host.reply({ kind: 'creditBasedConnectionRsp', identifier: cmd.identifier, mtu: 0, mps: 0, initialCredits: 0, result,
        destinationCids: cmd.sourceCids.map(() => 0) });
    };
    if (this.linkError) return;
    if (n < 1 || n > ECRED_MAX_CHANNELS || !validEcredParams(cmd.mtu, cmd.mps)) return refuseAll(CreditBasedConnectionResult.InvalidParameters);
    const l = this.registry?.get(cmd.spsm);
    if (!l?.listening) return refuseAll(CreditBasedConnectionResult.SpsmNotSupported);
    const sec = this.security(l.security);
    if (sec !== 0) return refuseAll(sec);
    // Our side of an enhanced channel must meet the enhanced minimums too.
    const local: CocParameters = { ...l.parameters, mtu: Math.max(ECRED_MIN_MTU, l.parameters.mtu), mps: Math.max(ECRED_MIN_MPS, l.parameters.mps) };
    const dcids: number[] = [];
    const made: CreditChannel[] = [];
    let result: number = CreditBasedConnectionResult.Successful;
    for (let i = 0; i < n; i++) {
      const scid = cmd.sourceCids[i]!;
      let why = 0;
      if (!isDynamicCid(scid)) why = CreditBasedConnectionResult.InvalidSourceCid;
      else if (this.byPeerCid(scid) || cmd.sourceCids.indexOf(scid) !== i) why = CreditBasedConnectionResult.SourceCidAlreadyAllocated;
      const cid = why ? undefined : this.allocateCids(1)?.[0];
      if (!why && (cid === undefined || !l.hasRoom())) why = CreditBasedConnectionResult.SomeRefusedNoResources;
      if (why || cid === undefined) {
        result = why;
        dcids.push(0);
        continue;
      }
      const ch = new CreditChannel(this, this.host.handle, cid, scid, cmd.spsm, 'enhanced', local,
        { mtu: cmd.mtu, mps: cmd.mps, initialCredits: cmd.initialCredits });
      this.channels.set(cid, ch);
      dcids.push(cid);
      made.push(ch);
      l.offer(ch);
    }
    if (made.length === 0) this.stats.requestsRefused++;
    this.host.reply({ kind: 'creditBasedConnectionRsp', identifier: cmd.identifier, mtu: made.length ? local.mtu : 0,
      mps: made.length ? local.mps : 0, initialCredits: made.length ? local.initialCredits : 0, result, destinationCids: dcids });
  }

  private reconfigureRequest(cmd: SignallingCommandOf<'creditBasedReconfigureReq'>): void {
    const answer = (result: number): void => this.host.reply({ kind: 'creditBasedReconfigureRsp', identifier: cmd.identifier, result });
    // The CIDs are the sender's own: our destination CIDs (Vol 3, Part A, 4.27).
    const chans = cmd.destinationCids.map(c => this.byPeerCid(c));
    if (chans.length === 0 || chans.some(c => !c || c.mode !== 'enhanced')) return answer(CreditBasedReconfigureResult.InvalidDestinationCid);
    if (!validEcredParams(cmd.mtu, cmd.mps)) return answer(CreditBasedReconfigureResult.UnacceptableParameters);
    if (chans.some(c => cmd.mtu < c!.mtu)) return answer(CreditBasedReconfigureResult.MtuReductionNotAllowed);
    if (chans.length > 1 && chans.some(c => cmd.mps < c!.peerMps)) return answer(CreditBasedReconfigureResult.MpsReductionNotAllowed);
    for (const c of chans) c!.reconfigured(cmd.mtu, cmd.mps);
    answer(CreditBasedReconfigureResult.Successful);
  }

  // ---- closing -----------------------------------------------------------------------------------------

  /** @internal End `ch` with `error` and disconnect it (Vol 3, Part A, 4.6); resolves when the peer answered. */
  disconnect(ch: CreditChannel, error: ChannelClosedError): Promise<void> {
    if (this.channels.get(ch.cid) !== ch) return this.disconnecting(ch) ?? Promise.resolve();
    this.channels.delete(ch.cid);
    const done = this.sendDisconnect(ch.cid, ch.peerCid);
    ch.ended(error);
    return done;
  }

  /** @internal The pending disconnection of a closed channel, if its answer is still awaited. */
  disconnecting(ch: CreditChannel): Promise<void> | undefined {
    return this.reserved.get(ch.cid);
  }

  /** @internal A rule of the mode was broken (by the peer, or by a send we had to abandon): disconnect. */
  violation(ch: CreditChannel, by: 'protocol' | 'local', detail: string): void {
    this.stats.violations++;
    log.l2cap('handle 0x%s channel %s: %s; disconnecting', this.host.handle.toString(16), hex(ch.cid), detail);
    void this.disconnect(ch, new ChannelClosedError(ch.cid, by, detail));
  }

  private sendDisconnect(cid: number, peerCid: number): Promise<void> {
    if (this.linkError) return Promise.resolve();
    const p = this.host.request({ kind: 'disconnectionReq', destinationCid: peerCid, sourceCid: cid }).then(
      () => undefined,
      e => { log.l2cap('disconnection of channel %s: %s', hex(cid), (e as Error).message); },
    ).finally(() => {
      if (this.reserved.get(cid) === p) this.reserved.delete(cid);
    });
    this.reserved.set(cid, p);
    return p;
  }

  /** The link is gone: every channel ends with ChannelClosedError{by:'link'} (cause: the link's error). */
  linkClosed(error: DisconnectedError): void {
    if (this.linkError) return;
    this.linkError = error;
    const chans = [...this.channels.values()];
    this.channels.clear();
    this.reserved.clear();
    for (const ch of chans) ch.ended(new ChannelClosedError(ch.cid, 'link', error.message, { cause: error }));
  }
}
