/**
 * The ATT bearer on the LE fixed channel 0x0004 (Core Vol 3, Part F): both roles of one link.
 *
 * What drives it: `data()` from its L2capChannel (one whole ATT PDU per call; a fixed channel today, a credit-based one for EATT later) and the calls of its
 * users: `request()` / `command()` (client role, used by the GATT client), `notify()` / `indicate()`
 * (server role, used by our own small database and by virtual peripherals).
 *
 * Who owns which state (all in discriminated unions, STYLE c.6):
 * - `client`: idle | awaiting one request (its timer) | closed. Exactly one request is outstanding
 *   (Vol 3, Part F, 3.3.2); the rest wait in `queue`. Receive handlers are synchronous: a response
 *   settles its promise and the next request is on the wire before any continuation runs.
 * - `ind`: idle | awaiting the peer's confirmation of our indication (Vol 3, Part F, 3.4.7.2). It has
 *   its own 30 s timer and queue; indications never use the request slot.
 * - Answers to the peer's requests (Exchange MTU here; everything else via the `server` role or
 *   Request Not Supported) are sent at once, in order, and never use the request slot either.
 * - `mtu`: 23 until an Exchange MTU (either direction) completes, then min(ours, theirs), never below
 *   23 (Vol 3, Part F, 3.4.2.2). Our own exchange runs at most once per link.
 *
 * Timeout: a request (or our indication) unanswered for 30 s closes the bearer for good (Vol 3,
 * Part F, 3.3.3): the late request rejects with TimeoutError, every queued one with
 * BearerClosedError, `onTimeout` asks the connection to disconnect the link, and later calls reject
 * at once. Disconnect (`closed()` from the channel): everything pending and queued rejects with the
 * DisconnectedError, and later calls reject with a DisconnectedError naming the operation.
 *
 * Cancellation: an AbortSignal removes a queued request at once; an in-flight request cannot be
 * withdrawn from the peer, so its promise rejects at once but the slot stays busy until the
 * response (discarded) or the timeout.
 *
 * Bounds (issue 15; nothing a peer sends may grow memory without a written limit):
 * - requests we send: one on the wire, the rest queued by our own callers, who await each one (GATT
 *   procedures are sequential); each has its 30 s transaction timer, so a silent peer holds them 30 s.
 * - our indications: one awaiting confirmation, at most MAX_QUEUED_INDICATIONS waiting behind it; one
 *   more rejects at once (InvalidStateError). A peer that never confirms closes the bearer after 30 s.
 * - what we owe the peer (responses to its requests, confirmations of its indications) that is not on
 *   the wire yet: at most MAX_OWED_TO_PEER. A compliant peer has one request and one indication
 *   outstanding (Vol 3, Part F, 3.3.2, 3.4.7.2); a peer that floods without waiting while the link or
 *   the controller is slow gets the excess dropped (counted in stats.dropped), never queued.
 * - the peer's notifications and indications are delivered synchronously to listeners; buffering for
 *   iterators is the GATT client's, and bounded there.
 *
 * Bad input is normal input: an undecodable PDU is counted; if it was a request it is answered
 * with Invalid PDU (Vol 3, Part F, 3.4.1.1); a response that does not fit the outstanding request
 * (wrong opcode, undecodable, an Error Response naming another request) rejects that request with
 * ProtocolError, which frees the slot: ATT is strictly sequential, so it was the peer's answer.
 */
import { hex16 } from '../bytes/hex.js';
import type { Clock, TimerId } from '../clock.js';
import { AbortError, AttError, BearerClosedError, BlewireError, type ChannelClosedError, DecodeError, DisconnectedError, EncodeError, InvalidStateError, ProtocolError, TimeoutError, ArgumentError } from '../errors.js';
import type { ChannelReceiver, InPlaceTaker, L2capChannel } from '../l2cap/channel.js';
import { log, logOn } from '../log.js';
import {
  ATT_DEFAULT_LE_MTU, ATT_MAX_MTU, ATT_OPCODE_COMMAND_FLAG, ATT_TRANSACTION_TIMEOUT_MS, AttErrorCode, attErrorName,
} from './constants.js';
import {
  ATT_PDUS, ATT_TABLE, attMethodOf, decodeAtt, describeAtt, encodeAtt, responseKindOf,
  type AttPdu, type AttPduOf, type RequestKind, type ResponseFor, type UnknownAttPdu,
} from './pdus.js';
import { rest, x16 } from '../codec/field.js';

/**
 * The receive fast path for Handle Value Notification (Vol 3, Part F, 3.4.7.1), the one PDU a busy
 * link carries thousands of times a second. It reads exactly what the table row declares (opcode,
 * then `handle: x16`, then `value: rest`, so anything of at least the row's minimum size decodes and
 * the value is a view of the PDU) without the generic decode's reader and result objects. It is on
 * only while the row still has that shape; shorter PDUs take the generic path, which reports them.
 */
const NTF_ROW = ATT_PDUS.handleValueNtf;
const NTF_FAST = Object.keys(NTF_ROW.fields).join() === 'handle,value' && NTF_ROW.fields.handle === x16 && NTF_ROW.fields.value === rest;
const NTF_OPCODE = NTF_ROW.code;
const NTF_MIN_LENGTH = 1 + ATT_TABLE.minSize('handleValueNtf');

/** Our indications that may wait behind the one awaiting confirmation (see "Bounds" above). */
export const MAX_QUEUED_INDICATIONS = 64;
/**
 * Responses and confirmations owed to the peer and not yet on the wire. A compliant peer needs 2 (one
 * request, one indication); 16 leaves room for a slow link without letting a flood queue.
 */
export const MAX_OWED_TO_PEER = 16;

/** What our server role answers; the bearer itself handles Exchange MTU and confirmations. */
export interface AttServerRole {
  /**
   * A request or command from the peer (never exchangeMtuReq). Return the response (or an errorRsp)
   * for a request; the return value for a command is ignored. May be async: responses still go out
   * in request order.
   */
  handle(pdu: AttPdu, ctx: AttServerContext): AttPdu | undefined | Promise<AttPdu | undefined>;
  /** The bearer closed (link down or timeout): drop per-connection state. */
  closed?(): void;
}

/** What a server role may know about the bearer it serves. */
export interface AttServerContext {
  readonly mtu: number;
  /** A key for per-connection state (prepare queues, CCCD values): one object per bearer. */
  readonly session: object;
}

export interface AttBearerOptions {
  clock: Clock;
  /** Our receive MTU offered in Exchange MTU, 23..517, default 517. */
  mtu?: number;
  /** Answers the peer's requests; without one, every request but Exchange MTU gets Request Not Supported. */
  server?: AttServerRole;
  /** Called once when a transaction timeout killed the bearer: the link must be disconnected (Vol 3, Part F, 3.3.3). */
  onTimeout?: (error: TimeoutError) => void;
  /** Default 30 000 ms (Vol 3, Part F, 3.3.3); only tests should change it. */
  transactionTimeoutMs?: number;
}

/** Error codes that say the link's security is too low for the request (Vol 3, Part F, 3.4.1.1). */
const SECURITY_ERRORS: ReadonlySet<number> = new Set([0x05, 0x0c, 0x0f]);

export interface RequestOptions {
  signal?: AbortSignal | undefined;
}

/** What `indicate()` takes: an abort signal, and a hook run synchronously when the confirmation arrives. */
export interface IndicateOptions extends RequestOptions {
  /**
   * Called in the same turn as the peer's Handle Value Confirmation is received, before any PDU that
   * follows it is handled (the promise settles a microtask later, after such a PDU could have been
   * served): state that the confirmation changes (a client becoming change-aware, Vol 3, Part G,
   * 2.5.2.1) must change here.
   */
  onConfirm?: () => void;
}

/** A notification or indication from the peer (already confirmed by the time listeners return, for indications). */
export interface AttValueEvent {
  kind: 'notification' | 'indication';
  handle: number;
  value: Uint8Array;
}

/** Counters for what the peer did wrong or what we did (round trips). */
export interface AttBearerStats {
  requestsSent: number;
  commandsSent: number;
  notificationsReceived: number;
  indicationsReceived: number;
  /** PDUs we could not decode (any direction of method). */
  undecodable: number;
  /** Responses that did not fit the outstanding request, or came with none outstanding. */
  protocolErrors: number;
  /** PDUs that could not be handled and were dropped (e.g. a stray confirmation). */
  dropped: number;
  requestsServed: number;
}

interface Pending {
  pdu: AttPdu;
  bytes: Uint8Array;
  expect: string;
  resolve: (pdu: AttPdu) => void;
  reject: (err: Error) => void;
  /** Set when the caller gave up (abort) while the request was in flight: the result is discarded. */
  abandoned: boolean;
  detach: () => void;
}

interface PendingInd {
  handle: number;
  value: Uint8Array;
  onConfirm: (() => void) | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
  abandoned: boolean;
  detach: () => void;
}

type ClientState =
  | { tag: 'idle' }
  | { tag: 'awaiting'; pending: Pending; timer: TimerId }
  | { tag: 'closed'; reason: Error };

type IndState =
  | { tag: 'idle' }
  | { tag: 'awaiting'; pending: PendingInd; timer: TimerId }
  | { tag: 'closed' };

type MtuListener = (mtu: number) => void;
type ValueListener = (ev: AttValueEvent) => void;
/**
 * The value of the Handle Value Notification b[start, end) (opcode, handle, value) as a plain
 * Uint8Array view. With the buffer known (a byte-stream transport's chunk, a reassembly slab) the view
 * is made from numbers; otherwise from b's buffer, and b's byteOffset only when b does not span its
 * whole buffer (a view as long as its buffer starts it): the user channel's packets are each a fresh
 * exact-size Buffer, and the byteOffset getter is a builtin call (issue 14).
 */
function notificationValue(b: Uint8Array, start: number, end: number, buffer: ArrayBufferLike | undefined, base: number): Uint8Array {
  if (buffer === undefined) {
    buffer = b.buffer;
    base = buffer.byteLength === b.length ? 0 : b.byteOffset;
  }
  return new Uint8Array(buffer, base + start + 3, end - start - 3);
}

/** A notification, without an event object: the receive fast path's listener (the GATT client). */
type NotificationListener = (handle: number, value: Uint8Array) => void;
type ClosedListener = (reason: Error) => void;

export class AttBearer implements ChannelReceiver {
  private client: ClientState = { tag: 'idle' };
  private ind: IndState = { tag: 'idle' };
  private readonly queue: Pending[] = [];
  private securityRaiser: ((errorCode: number) => Promise<boolean>) | undefined;
  private readonly indQueue: PendingInd[] = [];
  private readonly clock: Clock;
  private readonly ourMtu: number;
  private readonly server: AttServerRole | undefined;
  private readonly onTimeoutCb: ((e: TimeoutError) => void) | undefined;
  private readonly timeoutMs: number;
  private currentMtu = ATT_DEFAULT_LE_MTU;
  private mtuExchange: 'none' | 'running' | 'done' = 'none';
  /** The peer ran its Exchange MTU (as client of our server). */
  private peerExchangedMtu = false;
  /** Responses to the peer's requests, serialised (the server role may answer asynchronously). */
  private serverChain: Promise<void> = Promise.resolve();
  /** Responses / confirmations owed to the peer, not yet handed to the link (≤ MAX_OWED_TO_PEER). */
  private owed = 0;
  private readonly session = {};
  private readonly mtuListeners = new Set<MtuListener>();
  private readonly valueListeners = new Set<ValueListener>();
  /** valueListeners as an array, replaced (never mutated) on change: emitting needs no copy per value. */
  private valueListenerList: ValueListener[] = [];
  /** on('notification') and on('indication') listeners, arrays replaced on change. */
  private notificationListenerList: NotificationListener[] = [];
  private indicationListenerList: ValueListener[] = [];
  /**
   * ChannelReceiver.takeAt: while the bearer is open with exactly one notification listener (the GATT
   * client) and no value listener, a function that takes a Handle Value Notification in place: its
   * value viewed once and handed to that listener, nothing else made (issue 14); undefined otherwise.
   * Rebuilt by routeNotifications() whenever one of those changes, the channel told (the
   * L2CAP link offers it to the host: L2capLink.routeAt). With blewire:att logging on it
   * takes nothing, so notifications go through data(), which logs them.
   */
  takeAt: InPlaceTaker | undefined = undefined;
  private readonly closedListeners = new Set<ClosedListener>();
  readonly stats: AttBearerStats = {
    requestsSent: 0, commandsSent: 0, notificationsReceived: 0, indicationsReceived: 0,
    undecodable: 0, protocolErrors: 0, dropped: 0, requestsServed: 0,
  };

  constructor(readonly channel: L2capChannel, options: AttBearerOptions) {
    this.clock = options.clock;
    const mtu = options.mtu ?? ATT_MAX_MTU;
    if (!Number.isInteger(mtu) || mtu < ATT_DEFAULT_LE_MTU || mtu > 0xffff) {
      throw new ArgumentError(`ATT MTU must be an integer from 23 to 65535, got ${mtu}`);
    }
    this.ourMtu = mtu;
    this.server = options.server;
    this.onTimeoutCb = options.onTimeout;
    this.timeoutMs = options.transactionTimeoutMs ?? ATT_TRANSACTION_TIMEOUT_MS;
    channel.setReceiver(this);
  }

  /** The current ATT_MTU of this bearer (23 until an exchange completes). */
  get mtu(): number {
    return this.currentMtu;
  }

  /** The MTU we offer. */
  get preferredMtu(): number {
    return this.ourMtu;
  }

  get isClosed(): boolean {
    return this.client.tag === 'closed';
  }

  /** Why the bearer closed, or undefined while it is open. */
  get closeReason(): Error | undefined {
    return this.client.tag === 'closed' ? this.client.reason : undefined;
  }

  on(event: 'mtu', fn: MtuListener): () => void;
  /** Notifications and indications, as event objects. */
  on(event: 'value', fn: ValueListener): () => void;
  /** Notifications only, handle and value (no object per notification). */
  on(event: 'notification', fn: NotificationListener): () => void;
  /** Indications only. */
  on(event: 'indication', fn: ValueListener): () => void;
  on(event: 'closed', fn: ClosedListener): () => void;
  on(event: 'mtu' | 'value' | 'notification' | 'indication' | 'closed',
    fn: MtuListener | ValueListener | NotificationListener | ClosedListener): () => void {
    if (event === 'notification') {
      this.notificationListenerList = [...this.notificationListenerList, fn as NotificationListener];
      this.routeNotifications();
      return () => {
        this.notificationListenerList = this.notificationListenerList.filter(f => f !== fn);
        this.routeNotifications();
      };
    }
    if (event === 'indication') {
      this.indicationListenerList = [...this.indicationListenerList, fn as ValueListener];
      return () => { this.indicationListenerList = this.indicationListenerList.filter(f => f !== fn); };
    }
    if (event === 'value') {
      this.valueListeners.add(fn as ValueListener);
      this.valueListenerList = [...this.valueListeners];
      this.routeNotifications();
      return () => {
        if (this.valueListeners.delete(fn as ValueListener)) this.valueListenerList = [...this.valueListeners];
        this.routeNotifications();
      };
    }
    const set = (event === 'mtu' ? this.mtuListeners : this.closedListeners) as Set<unknown>;
    set.add(fn);
    return () => { set.delete(fn); };
  }

  // ---- client role ------------------------------------------------------------------------------

  /**
   * Send one request and resolve with its success response. An Error Response rejects with
   * AttError; a response that does not fit rejects with ProtocolError. One request is on the wire
   * at a time; the others wait in FIFO order.
   */
  request<K extends RequestKind>(pdu: AttPduOf<K>, options: RequestOptions = {}): Promise<ResponseFor<K>> {
    const first = this.requestOnce(pdu, options);
    const raise = this.securityRaiser;
    // Execute Write is never sent again: a server that refused it may have emptied its prepare queue
    // already (BlueZ's does on any execute error), so a second Execute Write could "succeed" having
    // written nothing. A Prepare Write is: a refused Prepare Write Request is not queued (Vol 3,
    // Part F, 3.4.6.1: the server checks the attribute's permissions when it is prepared), so the
    // queue holds exactly the parts prepared before it and sending it again after pairing keeps the
    // long write whole, as BlueZ's bt_att does (it re-queues whatever request met 0x05 / 0x0F).
    if (!raise || pdu.kind === 'executeWriteReq') return first;
    // Insufficient Authentication / Encryption / Encryption Key Size (Vol 3, Part F, 3.4.1.1): the
    // link's owner may raise its security (encrypt from a bond, or pair) and the request is sent once
    // more, as BlueZ does for its clients (Vol 3, Part C, 10.3.1.1 describes the client's options).
    return first.catch(async (e: unknown) => {
      if (!(e instanceof AttError) || !SECURITY_ERRORS.has(e.errorCode) || options.signal?.aborted) throw e;
      let raised: boolean;
      try {
        raised = await raise(e.errorCode);
      } catch (failure) {
        // The link went down while pairing: that is what the caller must hear. Otherwise the peer's
        // answer stands (as BlueZ hands its D-Bus caller the ATT error after a failed pairing), with
        // why the security could not be raised as `cause` (SmpError, TimeoutError...).
        if (failure instanceof DisconnectedError) throw failure;
        throw e.withSecurityFailure(failure);
      }
      if (!raised) throw e;
      return this.requestOnce(pdu, options);
    });
  }

  /**
   * What the link does on a security error response: resolves true when it raised the link's
   * security (then the request is retried once), false to let the AttError through; a rejection
   * (the pairing failed) rejects the request with that error.
   */
  setSecurityRaiser(fn: ((errorCode: number) => Promise<boolean>) | undefined): void {
    this.securityRaiser = fn;
  }

  /**
   * Raise the link's security for a security error response (0x05 / 0x0C / 0x0F) outside request()'s
   * own retry (a long write refused at Execute Write redoes the whole write): true when it did.
   */
  raiseSecurity(errorCode: number): Promise<boolean> {
    const raise = this.securityRaiser;
    return raise && SECURITY_ERRORS.has(errorCode) ? raise(errorCode) : Promise.resolve(false);
  }

  private requestOnce<K extends RequestKind>(pdu: AttPduOf<K>, options: RequestOptions): Promise<ResponseFor<K>> {
    const what = pdu.kind;
    if (this.client.tag === 'closed') return Promise.reject(this.closedError(what));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal, what));
    let bytes: Uint8Array;
    try {
      bytes = this.encodeChecked(pdu);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<ResponseFor<K>>((resolve, reject) => {
      const pending: Pending = {
        pdu, bytes, expect: responseKindOf(pdu.kind as RequestKind), resolve: resolve as (p: AttPdu) => void, reject,
        abandoned: false, detach: () => {},
      };
      if (signal) {
        const onAbort = (): void => {
          const i = this.queue.indexOf(pending);
          if (i >= 0) this.queue.splice(i, 1);
          else pending.abandoned = true; // in flight: keep the slot, discard the result
          pending.detach();
          reject(abortReason(signal, what));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        pending.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(pending);
      this.pump();
    });
  }

  /**
   * Send a command (Write Command, Signed Write Command). Resolves when the controller took the
   * whole PDU (the channel's back-pressure), so a loop awaiting it never builds a queue.
   */
  async command(pdu: AttPduOf<'writeCmd' | 'signedWriteCmd'>): Promise<void> {
    if (this.client.tag === 'closed') throw this.closedError(pdu.kind);
    const bytes = this.encodeChecked(pdu);
    this.stats.commandsSent++;
    if (log.att.enabled) log.att('tx %s', describeAtt(pdu));
    await this.channel.send(bytes);
  }

  /**
   * Exchange MTU as the client (Vol 3, Part F, 3.4.2): resolves with the new ATT_MTU, min(ours,
   * theirs) and never below 23.
   * - The caller's signal rejects the caller's promise, but a request already sent is not
   *   withdrawn: its late response still sets ATT_MTU (the peer has fixed it on its side too).
   * - An Error Response (a peer may answer Request Not Supported) ends the exchange for this link:
   *   ATT_MTU stays 23 and the AttError is returned to this caller only.
   * - Any other failure (a malformed response, an abort before it was sent) leaves the exchange
   *   undone, so it can be tried again.
   * A call while an exchange is running or after one finished rejects with InvalidStateError.
   */
  exchangeMtu(options: RequestOptions = {}): Promise<number> {
    const { signal } = options;
    if (this.mtuExchange !== 'none') {
      return Promise.reject(new InvalidStateError('att: Exchange MTU runs at most once per link (Vol 3, Part F, 3.4.2.1)'));
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal, 'exchangeMtuReq'));
    this.mtuExchange = 'running';
    const exchange = this.request({ kind: 'exchangeMtuReq', clientRxMtu: this.ourMtu }).then(
      rsp => {
        this.mtuExchange = 'done';
        this.setMtu(rsp.serverRxMtu);
        return this.currentMtu;
      },
      (e: unknown) => {
        this.mtuExchange = e instanceof AttError ? 'done' : 'none';
        throw e;
      },
    );
    if (!signal) return exchange;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        exchange.catch(() => {}); // settles later on its own (a late response is applied)
        reject(abortReason(signal, 'exchangeMtuReq'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      exchange.then(
        v => { signal.removeEventListener('abort', onAbort); resolve(v); },
        (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
      );
    });
  }

  /** Where our own Exchange MTU stands: never sent (or failed, retryable), running, or finished. */
  get mtuExchangeState(): 'none' | 'running' | 'done' {
    return this.mtuExchange;
  }

  // ---- server role: values out --------------------------------------------------------------------

  /** Send a Handle Value Notification (no confirmation; value cut to ATT_MTU - 3, Vol 3, Part F, 3.4.7.1). */
  async notify(handle: number, value: Uint8Array): Promise<void> {
    if (this.client.tag === 'closed') throw this.closedError('handleValueNtf');
    const pdu: AttPdu = { kind: 'handleValueNtf', handle, value: value.subarray(0, this.currentMtu - 3) };
    if (log.att.enabled) log.att('tx %s', describeAtt(pdu));
    await this.channel.send(encodeAtt(pdu));
  }

  /**
   * Send a Handle Value Indication and resolve on the peer's confirmation. One indication is
   * outstanding at a time (Vol 3, Part F, 3.4.7.2); the 30 s transaction timeout applies.
   */
  indicate(handle: number, value: Uint8Array, options: IndicateOptions = {}): Promise<void> {
    if (this.client.tag === 'closed') return Promise.reject(this.closedError('handleValueInd'));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal, 'handleValueInd'));
    if (this.indQueue.length >= MAX_QUEUED_INDICATIONS) {
      return Promise.reject(new InvalidStateError(`att: indication of ${hex16(handle)} refused: ${this.indQueue.length} indications ` +
        'already wait behind one the peer has not confirmed (one at a time, Vol 3, Part F, 3.4.7.2); await each indicate()'));
    }
    return new Promise<void>((resolve, reject) => {
      const p: PendingInd = { handle, value: value.subarray(0, this.currentMtu - 3), onConfirm: options.onConfirm, resolve, reject, abandoned: false, detach: () => {} };
      if (signal) {
        const onAbort = (): void => {
          const i = this.indQueue.indexOf(p);
          if (i >= 0) this.indQueue.splice(i, 1);
          else p.abandoned = true;
          p.detach();
          reject(abortReason(signal, 'handleValueInd'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        p.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.indQueue.push(p);
      this.pumpInd();
    });
  }

  // ---- ChannelReceiver ------------------------------------------------------------------------------

  /**
   * The ATT PDU in place, b[start, end) (l2cap/link.ts): a Handle Value Notification reaches the
   * listeners with one view, of its value, and nothing else made; every other PDU goes to data().
   * The view is a plain Uint8Array whatever the transport's packets are: subarray() of a Node Buffer
   * makes a Buffer, through JavaScript, for about 10 ns more per value (issue 14). With blewire:att
   * logging on, notifications take data(), which logs them.
   */
  dataAt(b: Uint8Array, start: number, end: number, buffer?: ArrayBufferLike, base = 0): void {
    if (b[start] === NTF_OPCODE && NTF_FAST && end - start >= NTF_MIN_LENGTH && this.client.tag !== 'closed' && !logOn.att) {
      this.stats.notificationsReceived++;
      this.emitNotification(b[start + 1]! | (b[start + 2]! << 8), notificationValue(b, start, end, buffer, base));
      return;
    }
    this.data(b.subarray(start, end));
  }

  data(sdu: Uint8Array): void {
    if (this.client.tag === 'closed') {
      this.stats.dropped++;
      return;
    }
    if (sdu.length === 0) {
      this.stats.undecodable++;
      log.att('rx empty PDU dropped');
      return;
    }
    const opcode = sdu[0]!;
    if (opcode === NTF_OPCODE && NTF_FAST && sdu.length >= NTF_MIN_LENGTH) {
      const handle = sdu[1]! | (sdu[2]! << 8);
      const value = sdu.subarray(3);
      if (log.att.enabled) log.att('rx %s', describeAtt({ kind: 'handleValueNtf', handle, value }));
      this.stats.notificationsReceived++;
      this.emitNotification(handle, value);
      return;
    }
    let pdu: AttPdu | UnknownAttPdu;
    try {
      pdu = decodeAtt(sdu);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.stats.undecodable++;
      this.onUndecodable(opcode, err);
      return;
    }
    if (log.att.enabled) log.att('rx %s', describeAtt(pdu));
    if (pdu.kind === 'unknown') {
      this.onUnknownOpcode(opcode);
      return;
    }
    const method = ATT_PDUS[pdu.kind].method;
    switch (method) {
      case 'response': return this.onResponse(pdu);
      case 'request':
      case 'command': return this.onPeerRequest(pdu, method);
      case 'notification': return this.onNotification(pdu);
      case 'indication': return this.onIndication(pdu as AttPduOf<'handleValueInd'>);
      case 'confirmation': return this.onConfirmation();
    }
  }

  closed(error: DisconnectedError | ChannelClosedError): void {
    this.close(error, error);
  }

  // ---- internals ------------------------------------------------------------------------------------

  private encodeChecked(pdu: AttPdu): Uint8Array {
    const bytes = encodeAtt(pdu);
    if (bytes.length > this.currentMtu) {
      throw new EncodeError('att', pdu.kind, `${bytes.length} octets exceed ATT_MTU ${this.currentMtu}`);
    }
    return bytes;
  }

  private pump(): void {
    if (this.client.tag !== 'idle') return;
    const next = this.queue.shift();
    if (next === undefined) return;
    // The transaction timer starts when the request is handed to the link (Vol 3, Part F, 3.3.3).
    const timer = this.clock.setTimeout(() => this.onTimeout(), this.timeoutMs);
    this.client = { tag: 'awaiting', pending: next, timer };
    this.stats.requestsSent++;
    if (log.att.enabled) log.att('tx %s', describeAtt(next.pdu));
    this.channel.send(next.bytes).catch(err => this.onSendFailed(next, err));
  }

  private onSendFailed(p: Pending, err: unknown): void {
    // The link refused the PDU (typically: it just went down). The channel's closed() rejects
    // everything; if it has not, fail just this request and move on.
    if (this.client.tag === 'awaiting' && this.client.pending === p) {
      this.clock.clearTimeout(this.client.timer);
      this.client = { tag: 'idle' };
      p.detach();
      if (!p.abandoned) p.reject(err instanceof Error ? err : new ProtocolError('att', String(err), { cause: err }));
      this.pump();
    }
  }

  private onResponse(pdu: AttPdu): void {
    if (this.client.tag !== 'awaiting') {
      this.stats.protocolErrors++;
      log.att('response %s with no request outstanding: dropped', pdu.kind);
      return;
    }
    const { pending } = this.client;
    const reqOpcode = ATT_PDUS[pending.pdu.kind].code;
    if (pdu.kind === 'errorRsp') {
      if (pdu.requestOpcode !== reqOpcode) {
        this.stats.protocolErrors++;
        return this.finish(pending, new ProtocolError('att',
          `${pending.pdu.kind}: the peer answered with an Error Response for opcode 0x${pdu.requestOpcode.toString(16)}`));
      }
      return this.finish(pending, new AttError(pdu.errorCode, attErrorName(pdu.errorCode), pdu.handle, pending.pdu.kind, reqOpcode));
    }
    if (pdu.kind !== pending.expect) {
      this.stats.protocolErrors++;
      return this.finish(pending, new ProtocolError('att', `${pending.pdu.kind}: the peer answered with ${pdu.kind}, expected ${pending.expect}`));
    }
    this.finish(pending, pdu);
  }

  private finish(pending: Pending, outcome: AttPdu | Error): void {
    if (this.client.tag === 'awaiting') this.clock.clearTimeout(this.client.timer);
    this.client = { tag: 'idle' };
    pending.detach();
    if (!pending.abandoned) {
      if (outcome instanceof Error) pending.reject(outcome);
      else pending.resolve(outcome);
    }
    this.pump();
  }

  private onUndecodable(opcode: number, err: DecodeError): void {
    const method = attMethodOf(opcode);
    log.att('rx undecodable opcode 0x%s: %s', opcode.toString(16), err.message);
    if (method === 'request') {
      if (!this.owe('Invalid PDU response')) return;
      // Vol 3, Part F, 3.4.1.1: a malformed request is answered with Invalid PDU.
      this.sendServerResponse(errorRsp(opcode, 0, AttErrorCode.InvalidPdu));
      return;
    }
    if (method === 'response' && this.client.tag === 'awaiting') {
      const { pending } = this.client;
      if (opcode === ATT_PDUS.errorRsp.code || opcode === ATT_PDUS[pending.expect as keyof typeof ATT_PDUS].code) {
        this.stats.protocolErrors++;
        this.finish(pending, new ProtocolError('att', `${pending.pdu.kind}: malformed ${ATT_TABLE.kindOf(opcode)}: ${err.message}`, { cause: err }));
        return;
      }
    }
    this.stats.dropped++;
  }

  private onUnknownOpcode(opcode: number): void {
    if (opcode & ATT_OPCODE_COMMAND_FLAG) {
      // Vol 3, Part F, 3.3.1: an unsupported command is ignored.
      this.stats.dropped++;
      return;
    }
    // Vol 3, Part F, 3.4.1.1: an unsupported request is answered with Request Not Supported. An
    // unknown opcode without the command flag can only be a request we do not know.
    if (!this.owe('Request Not Supported response')) return;
    this.sendServerResponse(errorRsp(opcode, 0, AttErrorCode.RequestNotSupported));
  }

  private onPeerRequest(pdu: AttPdu, method: 'request' | 'command'): void {
    if (method === 'request' && !this.owe(`response to ${pdu.kind}`)) return;
    if (pdu.kind === 'exchangeMtuReq') {
      // Vol 3, Part F, 3.4.2.2: answer with our receive MTU; both sides then use the minimum. The
      // exchange happens once per link (3.4.2.1): a repeated request is still answered, so the peer
      // is not left waiting, but it cannot change (shrink) an ATT_MTU already in use.
      this.sendServerResponse({ kind: 'exchangeMtuRsp', serverRxMtu: this.ourMtu });
      if (this.peerExchangedMtu || this.mtuExchange === 'done') {
        log.att('repeated Exchange MTU request (client Rx MTU %d) ignored: ATT_MTU stays %d', pdu.clientRxMtu, this.currentMtu);
        return;
      }
      this.peerExchangedMtu = true;
      this.setMtu(pdu.clientRxMtu);
      return;
    }
    this.stats.requestsServed += method === 'request' ? 1 : 0;
    const server = this.server;
    if (!server) {
      if (method === 'request') this.sendServerResponse(errorRsp(ATT_PDUS[pdu.kind].code, 0, AttErrorCode.RequestNotSupported));
      return;
    }
    const ctx: AttServerContext = { mtu: this.currentMtu, session: this.session };
    let out: AttPdu | undefined | Promise<AttPdu | undefined>;
    try {
      out = server.handle(pdu, ctx);
    } catch (err) {
      log.att('server role threw on %s: %s', pdu.kind, err instanceof Error ? err.message : String(err));
      out = errorRsp(ATT_PDUS[pdu.kind].code, 0, AttErrorCode.UnlikelyError);
    }
    if (method === 'command') return;
    if (out instanceof Promise) {
      const code = ATT_PDUS[pdu.kind].code;
      this.serverChain = this.serverChain
        .then(() => out)
        .catch(() => errorRsp(code, 0, AttErrorCode.UnlikelyError))
        .then(rsp => this.sendServerResponse(rsp ?? errorRsp(code, 0, AttErrorCode.UnlikelyError)));
      return;
    }
    this.sendServerResponse(out ?? errorRsp(ATT_PDUS[pdu.kind].code, 0, AttErrorCode.UnlikelyError));
  }

  /**
   * Count one more response or confirmation owed to the peer, or drop the PDU that asks for it when
   * MAX_OWED_TO_PEER are already waiting for the link (the peer is not waiting for our answers).
   */
  private owe(what: string): boolean {
    if (this.owed >= MAX_OWED_TO_PEER) {
      this.stats.dropped++;
      this.stats.protocolErrors++;
      log.att('%d answers already owed to the peer and not sent: %s dropped (the peer does not wait, Vol 3, Part F, 3.3.2)', this.owed, what);
      return false;
    }
    this.owed++;
    return true;
  }

  /**
   * Responses to the peer's requests, confirmations: outside the request slot, in order. Every call
   * pays back one owe() when the link has taken the PDU (or it could not be sent).
   */
  private sendServerResponse(pdu: AttPdu): void {
    if (this.client.tag === 'closed') {
      this.owed--;
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeAtt(pdu);
    } catch (err) {
      this.owed--;
      log.att('cannot encode our %s: %s', pdu.kind, err instanceof Error ? err.message : String(err));
      return;
    }
    if (log.att.enabled) log.att('tx %s', describeAtt(pdu));
    this.channel.send(bytes).then(() => { this.owed--; }, () => { this.owed--; /* the link is going down; closed() follows */ });
  }

  private onNotification(pdu: AttPdu): void {
    if (pdu.kind === 'handleValueNtf') {
      this.stats.notificationsReceived++;
      this.emitNotification(pdu.handle, pdu.value);
    } else if (pdu.kind === 'multipleHandleValueNtf') {
      this.stats.notificationsReceived++;
      for (const e of pdu.handleLengthValueTupleList) this.emitNotification(e.handle, e.value);
    }
  }

  private onIndication(pdu: AttPduOf<'handleValueInd'>): void {
    // A peer with an unconfirmed indication must not send another (Vol 3, Part F, 3.4.7.2).
    if (!this.owe(`indication of ${hex16(pdu.handle)}`)) return;
    this.stats.indicationsReceived++;
    // Listeners run synchronously first, then we confirm (Vol 3, Part F, 3.4.7.3; STYLE c.6).
    this.emitValue({ kind: 'indication', handle: pdu.handle, value: pdu.value });
    this.sendServerResponse({ kind: 'handleValueCfm' });
  }

  private onConfirmation(): void {
    if (this.ind.tag !== 'awaiting') {
      this.stats.protocolErrors++;
      return;
    }
    const { pending, timer } = this.ind;
    this.clock.clearTimeout(timer);
    this.ind = { tag: 'idle' };
    pending.detach();
    if (!pending.abandoned) {
      try { pending.onConfirm?.(); } catch (e) { log.att('indication confirm hook threw: %s', e instanceof Error ? e.message : String(e)); }
      pending.resolve();
    }
    this.pumpInd();
  }

  private pumpInd(): void {
    if (this.ind.tag !== 'idle') return;
    const next = this.indQueue.shift();
    if (!next) return;
    const timer = this.clock.setTimeout(() => this.onTimeout(), this.timeoutMs);
    this.ind = { tag: 'awaiting', pending: next, timer };
    const pdu: AttPdu = { kind: 'handleValueInd', handle: next.handle, value: next.value };
    if (log.att.enabled) log.att('tx %s', describeAtt(pdu));
    this.channel.send(encodeAtt(pdu)).catch(() => { /* closed() follows */ });
  }

  /** Sets takeAt for the listeners as they now stand (see takeAt) and tells the channel. */
  private routeNotifications(): void {
    const was = this.takeAt;
    this.takeAt = this.notificationTaker();
    if (this.takeAt !== was) this.channel.receiverChanged?.();
  }

  private notificationTaker(): InPlaceTaker | undefined {
    const list = this.notificationListenerList;
    if (!NTF_FAST || list.length !== 1 || this.valueListenerList.length !== 0 || this.client.tag === 'closed') return undefined;
    const listener = list[0]!;
    const stats = this.stats;
    return (b, start, end, buffer, base) => {
      if (b[start] !== NTF_OPCODE || end - start < NTF_MIN_LENGTH || logOn.att) return false;
      stats.notificationsReceived++;
      const value = notificationValue(b, start, end, buffer, base);
      try {
        listener(b[start + 1]! | (b[start + 2]! << 8), value);
      } catch (err) {
        log.att('notification listener threw: %s', err instanceof Error ? err.message : String(err));
      }
      return true;
    };
  }

  private emitNotification(handle: number, value: Uint8Array): void {
    const list = this.notificationListenerList;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(handle, value);
      } catch (err) {
        log.att('notification listener threw: %s', err instanceof Error ? err.message : String(err));
      }
    }
    if (this.valueListenerList.length > 0) this.emitValue({ kind: 'notification', handle, value });
  }

  private emitValue(ev: AttValueEvent): void {
    if (ev.kind === 'indication') {
      const ind = this.indicationListenerList;
      for (let i = 0; i < ind.length; i++) {
        try {
          ind[i]!(ev);
        } catch (err) {
          log.att('indication listener threw: %s', err instanceof Error ? err.message : String(err));
        }
      }
    }
    // A snapshot: a listener added or removed while this runs replaces the list, not this one.
    const list = this.valueListenerList;
    for (let i = 0; i < list.length; i++) {
      const fn = list[i]!;
      try {
        fn(ev);
      } catch (err) {
        log.att('value listener threw: %s', err instanceof Error ? err.message : String(err));
      }
    }
  }

  private setMtu(peerMtu: number): void {
    // Vol 3, Part F, 3.4.2.2: ATT_MTU = min(client Rx MTU, server Rx MTU); a peer value below the
    // default 23 is invalid and the default stays.
    const mtu = Math.max(ATT_DEFAULT_LE_MTU, Math.min(this.ourMtu, peerMtu));
    if (peerMtu < ATT_DEFAULT_LE_MTU) log.att('peer MTU %d is below 23: using 23', peerMtu);
    if (mtu === this.currentMtu) return;
    this.currentMtu = mtu;
    for (const fn of [...this.mtuListeners]) fn(mtu);
  }

  private onTimeout(): void {
    if (this.client.tag === 'closed') return;
    const what = this.client.tag === 'awaiting'
      ? describeAtt(this.client.pending.pdu)
      : this.ind.tag === 'awaiting' ? `handleValueInd handle=${hex16(this.ind.pending.handle)}` : 'transaction';
    // After a transaction timeout no further ATT PDU may be sent on this bearer (Vol 3, Part F, 3.3.3).
    const err = new TimeoutError('att', what, this.timeoutMs, this.onTimeoutCb
      ? 'the ATT bearer is now closed (Vol 3, Part F, 3.3.3) and the link is being dropped; reconnect to go on'
      : 'the ATT bearer is now closed (Vol 3, Part F, 3.3.3); disconnect the link and reconnect to go on');
    this.close(err, new BearerClosedError('queued request', err));
    this.onTimeoutCb?.(err);
  }

  /** Close for good: `first` rejects the in-flight request / indication, `rest` the queued ones. */
  private close(reason: Error, rest: Error): void {
    if (this.client.tag === 'closed') return;
    const inflight = this.client.tag === 'awaiting' ? this.client : undefined;
    const indInflight = this.ind.tag === 'awaiting' ? this.ind : undefined;
    this.client = { tag: 'closed', reason };
    this.ind = { tag: 'closed' };
    this.routeNotifications();
    if (inflight) {
      this.clock.clearTimeout(inflight.timer);
      inflight.pending.detach();
      if (!inflight.pending.abandoned) inflight.pending.reject(reason);
    }
    if (indInflight) {
      this.clock.clearTimeout(indInflight.timer);
      indInflight.pending.detach();
      if (!indInflight.pending.abandoned) indInflight.pending.reject(reason);
    }
    for (const p of this.queue.splice(0)) {
      p.detach();
      p.reject(reason instanceof DisconnectedError ? reason : restFor(rest, p.pdu.kind));
    }
    for (const p of this.indQueue.splice(0)) {
      p.detach();
      p.reject(reason instanceof DisconnectedError ? reason : restFor(rest, 'handleValueInd'));
    }
    try {
      this.server?.closed?.();
    } catch { /* a server role's cleanup must not stop the close */ }
    for (const fn of [...this.closedListeners]) fn(reason);
  }

  private closedError(operation: string): Error {
    const reason = this.client.tag === 'closed' ? this.client.reason : new InvalidStateError('att: closed');
    if (reason instanceof DisconnectedError) return new DisconnectedError(operation, reason.reason, reason.reasonName);
    return new BearerClosedError(operation, reason);
  }
}

function restFor(rest: Error, kind: string): Error {
  return rest instanceof BearerClosedError ? new BearerClosedError(kind, rest.cause as Error) : rest;
}

function errorRsp(requestOpcode: number, handle: number, errorCode: number): AttPdu {
  return { kind: 'errorRsp', requestOpcode, handle, errorCode };
}

/** The rejection for an aborted signal: its reason if it is one of ours (e.g. TimeoutError), else AbortError. */
export function abortReason(signal: AbortSignal, operation: string): Error {
  const r: unknown = signal.reason;
  if (r instanceof BlewireError) return r;
  return new AbortError(operation, r);
}
