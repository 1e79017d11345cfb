/**
 * L2CAP on one LE link: reassembled PDUs routed to fixed channels, outgoing SDUs fragmented to the
 * controller's ACL size, and the LE signalling channel's handlers.
 *
 * Design overview
 * - Driven by the host (ACL packets of this handle, via `acl()`), by the channels above (`send()` on
 *   the ATT / SMP FixedChannel), by our own signalling requests, and by `close()` when the link drops.
 * - Receive: the ACL reassembler (reassembly.ts) yields whole L2CAP PDUs; each goes to the fixed
 *   channel of its CID: 0x0004 ATT and 0x0006 SMP to their receivers (queued, bounded, until one is
 *   set), 0x0005 to the signalling handler here. Unknown CIDs and undecodable PDUs are counted and
 *   dropped; nothing here throws into the host's receive path.
 * - Send: an SDU becomes one B-frame (Vol 3, Part A, 3.1), cut into ACL packets of at most the
 *   controller's ACL data length: first with PB 0b00 (first non-flushable, the LE start, Vol 4, Part E,
 *   5.4.2), the rest 0b01; all packets of the SDU are queued as one unit in ACL flow control, whose
 *   promise is the FixedChannel back-pressure.
 * - Signalling (Vol 3, Part A, 4): the peer's Connection Parameter Update Request is validated (4.20)
 *   and accepted or rejected by policy, with a response bearing its identifier; an accepted request is
 *   handed to `onParameterUpdate` so the central applies it with LE Connection Update. The credit-based
 *   channel commands (4.22–4.28, 4.6/4.7) go to the link's CocEngine (coc.ts), K-frames on dynamic
 *   CIDs too; any other unknown or unsupported request
 *   gets Command Reject "not understood" (4.1). Our own requests use identifiers 1–255, never 0
 *   (Vol 3, Part A, 4: 0x00 is illegal), and each arms an RTX timer (L2CAP_RTX_TIMEOUT_MS) that rejects
 *   it with TimeoutError{layer:'l2cap'}.
 * - Close: every channel receiver gets `closed(DisconnectedError)`, pending signalling requests reject
 *   with it, timers are cleared; later sends reject at once.
 * - Bounds (issue 15): the reassembler holds one partial PDU per link, at most 4 + 65 535 octets (the
 *   16-bit L2CAP Length, Vol 3, Part A, 3.1), replaced by the next START and dropped on close; SDUs
 *   for a fixed channel with no receiver yet: maxQueuedSdus (16), the rest dropped and counted; our own
 *   signalling requests: at most 255 outstanding (identifiers 1–255), each with its RTX timer; replies
 *   to the peer's signalling requests not yet on the wire: MAX_OWED_SIGNALLING_REPLIES, the requests
 *   beyond it dropped and counted (a peer that does not wait for our answers gets no queue).
 */
import type { Clock, TimerId } from '../clock.js';
import { DecodeError, DisconnectedError, InvalidStateError, TimeoutError } from '../errors.js';
import { log } from '../log.js';
import { encodeAcl } from '../hci/acl.js';
import { AclPb } from '../hci/constants.js';
import type { AclReceiver } from '../hci/host.js';
import { FIXED_CHANNEL_MTU, type ChannelReceiver, type FixedChannel, type InPlaceTaker } from './channel.js';
import { CocEngine, type CocRegistry, type LinkSecurityState } from './coc.js';
import { ATT_CID, L2CAP_HEADER_SIZE, L2CAP_RTX_TIMEOUT_MS, LE_DYNAMIC_CID_FIRST, LE_DYNAMIC_CID_LAST, LE_SIGNALLING_CID, SMP_CID } from './constants.js';
import { encodeL2capFrame } from './frames.js';
import { L2capReassembler, type L2capPdu } from './reassembly.js';
import {
  decodeLeSignalling, encodeSignalling, signallingResponseKindOf, type AnySignallingCommand, type SignallingCommandOf,
  type SignallingRequestKind, type SignallingResponseFor,
} from './signalling.js';

/**
 * Replies to the peer's signalling requests (responses, Command Rejects) that the link has not yet put
 * on the wire. Every request is answered (Vol 3, Part A, 4.21; a flood of Connection Parameter Update
 * Requests is answered one for one and coalesced into one procedure, link/), so the bound is set far
 * above what a link carries while the controller holds its buffers: 65 536 replies of 10–16 octets,
 * about a megabyte; past it a request is dropped and counted instead of queued behind a stalled controller.
 */
export const MAX_OWED_SIGNALLING_REPLIES = 65_536;

/** A signalling command before the link gives it an identifier (distributes over the union). */
export type WithoutIdentifier<T> = T extends unknown ? Omit<T, 'identifier'> : never;

/** Connection parameters as the L2CAP request carries them (1.25 ms / events / 10 ms units). */
export interface ConnectionParameterRequest {
  intervalMin: number;
  intervalMax: number;
  latency: number;
  timeout: number;
}

export interface LinkOwner {
  /** Queue the ACL packets of one SDU (flow-controlled); resolves when all are on the wire. */
  sendAcl(handle: number, packets: Uint8Array[]): Promise<void>;
  /** Current largest ACL payload per packet. */
  readonly aclDataLength: number;
}

export interface LinkOptions {
  clock: Clock;
  role: 'central' | 'peripheral';
  /** Policy for the peer's Connection Parameter Update Request; default: accept any valid request. */
  acceptParameters?(p: ConnectionParameterRequest): boolean;
  /** A request was accepted: the central applies it (LE Connection Update). */
  onParameterUpdate?(p: ConnectionParameterRequest): void;
  /** SDUs kept per fixed channel before a receiver is set. */
  maxQueuedSdus?: number;
  /** The PSMs we listen on (the adapter's, shared by all links); none: every channel request is refused. */
  channels?: CocRegistry;
  /** The link's security, for the listeners' requirements; default: not encrypted. */
  security?(): LinkSecurityState;
  /** Pending while an Encryption Change is being taken in (CocLinkHost.settling). */
  settling?(): Promise<void> | undefined;
}

export interface LinkStats {
  unknownCid: number;
  dropped: number;
  commandRejectsSent: number;
  unmatchedResponses: number;
}

interface PendingSig {
  identifier: number;
  expect: string;
  resolve(c: AnySignallingCommand): void;
  reject(e: Error): void;
  timer: TimerId;
}

/**
 * Validity of connection parameters (Vol 3, Part A, 4.20 and Vol 4, Part E, 7.8.12): interval 7.5 ms
 * to 4 s, latency ≤ 499, timeout 100 ms to 32 s and longer than (1 + latency) × interval × 2.
 */
export function validConnectionParameters(p: ConnectionParameterRequest): boolean {
  if (p.intervalMin < 6 || p.intervalMax > 3200 || p.intervalMin > p.intervalMax) return false;
  if (p.latency > 499 || p.timeout < 10 || p.timeout > 3200) return false;
  return p.timeout * 10 > (1 + p.latency) * p.intervalMax * 1.25 * 2;
}

class LinkFixedChannel implements FixedChannel {
  readonly mtu = FIXED_CHANNEL_MTU;
  receiver: ChannelReceiver | undefined;
  queued: Uint8Array[] = [];
  /** close() was called: the channel's user is done with it (the link itself may live on). */
  released = false;
  constructor(private readonly link: L2capLink, readonly handle: number, readonly cid: number) {}
  send(sdu: Uint8Array): Promise<void> {
    if (this.released) return Promise.reject(new InvalidStateError(`l2cap: channel 0x${this.cid.toString(16).padStart(4, '0')} was closed`));
    return this.link.sendSdu(this.cid, sdu);
  }
  setReceiver(receiver: ChannelReceiver): void {
    this.receiver = receiver;
    this.released = false;
    const closed = this.link.closedError;
    for (const sdu of this.queued.splice(0)) receiver.data(sdu);
    if (closed) receiver.closed(closed);
    this.link.routeChanged();
  }
  receiverChanged(): void {
    this.link.routeChanged();
  }
  close(): void {
    this.released = true;
    this.receiver = undefined;
    this.queued.length = 0;
    this.link.routeChanged();
  }
}

export class L2capLink implements AclReceiver {
  readonly att: LinkFixedChannel;
  readonly smp: FixedChannel;
  /** The credit-based channels of this link (Vol 3, Part A, 4.22–4.28): open(), and the peer's requests. */
  readonly coc: CocEngine;
  readonly stats: LinkStats = { unknownCid: 0, dropped: 0, commandRejectsSent: 0, unmatchedResponses: 0 };
  closedError: DisconnectedError | undefined;
  private readonly channels = new Map<number, LinkFixedChannel>();
  private readonly reassembler: L2capReassembler;
  private readonly pending = new Map<number, PendingSig>();
  private nextIdentifier = 1;
  /** Replies handed to sendSdu whose send has not settled (≤ MAX_OWED_SIGNALLING_REPLIES). */
  private owedReplies = 0;

  constructor(private readonly owner: LinkOwner, readonly handle: number, private readonly opts: LinkOptions) {
    const att = new LinkFixedChannel(this, handle, ATT_CID);
    const smp = new LinkFixedChannel(this, handle, SMP_CID);
    this.channels.set(ATT_CID, att);
    this.channels.set(SMP_CID, smp);
    this.att = att;
    this.smp = smp;
    this.coc = new CocEngine({
      handle,
      clock: opts.clock,
      sendFrame: (cid, payload) => this.sendSdu(cid, payload),
      request: (cmd, onAnswer) => this.request(cmd as never, onAnswer) as Promise<AnySignallingCommand>,
      reply: cmd => this.reply(cmd),
      indicate: cmd => this.reply(cmd),
      security: () => opts.security?.() ?? { encrypted: false, keySize: 0, authenticated: false },
      settling: () => opts.settling?.(),
    }, opts.channels);
    this.reassembler = new L2capReassembler({
      onDrop: (h, reason) => {
        this.stats.dropped++;
        log.l2cap('handle 0x%s: dropped fragment (%s)', h.toString(16), reason);
      },
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Receive

  acl(pb: number, data: Uint8Array): void {
    if (this.closedError) return;
    // The reassembler counts its own drops and never throws (reassembly.ts).
    const frame = this.reassembler.push(this.handle, pb, data);
    if (frame) this.receivePdu(frame);
  }

  /**
   * AclReceiver.routeAt: while the link is open and its ATT receiver has a takeAt (the bearer with one
   * notification listener: AttBearer.takeAt), a whole ATT PDU in one START with nothing being
   * assembled goes from the host's packet straight to it, counted once by the reassembler
   * (takesWhole), and to the receiver's dataAt when takeAt declines it (another PDU, logging on).
   * Anything else returns false and goes the usual way through aclAt. One function per packet from the
   * host to the listener, where aclAt → dataAt → the listener list took a call, a view check and a
   * loop each: about 9 % of a 20-byte notification's receive path (issue 14). Rebuilt by
   * routeChanged() when the ATT receiver or its takeAt changes, cleared when the link closes.
   */
  routeAt: ((pb: number, p: Uint8Array, start: number, end: number, buffer: ArrayBufferLike | undefined, base: number) => boolean) | undefined = undefined;

  /** Rebuilds routeAt for the ATT receiver as it now stands (see routeAt). */
  routeChanged(): void {
    const rx = this.att.receiver;
    const take: InPlaceTaker | undefined = rx?.takeAt;
    if (rx === undefined || take === undefined || rx.dataAt === undefined || this.closedError !== undefined) {
      this.routeAt = undefined;
      return;
    }
    const reassembler = this.reassembler, handle = this.handle;
    // Small on purpose: V8 inlines it into the host's receive path with takeAt and the listener.
    this.routeAt = (_pb, p, start, end, buffer, base) => {
      const length = end - start - L2CAP_HEADER_SIZE;
      // The host offers no continuing fragment (AclReceiver.routeAt): pb is a START's.
      if (length < 0 || p[start + 2] !== ATT_CID || p[start + 3] !== 0 ||
        length !== (p[start]! | (p[start + 1]! << 8)) || !reassembler.takesWhole(handle, length)) return false;
      // What takeAt declines (another ATT PDU, a notification to log) goes to dataAt, there by the check above.
      if (!take(p, start + L2CAP_HEADER_SIZE, end, buffer, base)) rx.dataAt!(p, start + L2CAP_HEADER_SIZE, end, buffer, base);
      return true;
    };
  }

  aclAt(pb: number, p: Uint8Array, start: number, end: number, buffer?: ArrayBufferLike, base = 0): void {
    if (this.closedError) return;
    const r = this.reassembler;
    if (!r.pushAt(this.handle, pb, p, start, end, buffer, base)) return;
    const b = r.out, s = r.outStart, e = r.outEnd;
    const cid = b[s + 2]! | (b[s + 3]! << 8);
    // The ATT channel with a receiver that reads in place: no PDU object, no view (issue 14).
    if (cid === ATT_CID) {
      const rx = this.att.receiver;
      if (rx !== undefined && rx.dataAt !== undefined) return rx.dataAt(b, s + L2CAP_HEADER_SIZE, e, r.outBuffer, r.outBase);
    }
    this.receivePdu({ handle: this.handle, cid, payload: b.subarray(s + L2CAP_HEADER_SIZE, e) });
  }

  private receivePdu(frame: L2capPdu): void {
    if (frame.cid === LE_SIGNALLING_CID) return this.receiveSignalling(frame.payload);
    if (frame.cid >= LE_DYNAMIC_CID_FIRST && frame.cid <= LE_DYNAMIC_CID_LAST) {
      if (!this.coc.frame(frame.cid, frame.payload)) this.stats.unknownCid++;
      return;
    }
    const ch = this.channels.get(frame.cid);
    if (!ch) {
      this.stats.unknownCid++;
      return;
    }
    if (ch.receiver) {
      ch.receiver.data(frame.payload);
    } else if (ch.released) {
      this.stats.dropped++;
    } else if (ch.queued.length < (this.opts.maxQueuedSdus ?? 16)) {
      ch.queued.push(frame.payload);
    } else {
      this.stats.dropped++;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Send

  /** Send one SDU on a fixed channel: one B-frame, fragmented to the ACL data length. */
  sendSdu(cid: number, sdu: Uint8Array): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    const frame = encodeL2capFrame(cid, sdu);
    const max = Math.max(1, this.owner.aclDataLength);
    const packets: Uint8Array[] = [];
    for (let o = 0; o < frame.length; o += max) {
      packets.push(encodeAcl({
        handle: this.handle,
        pb: o === 0 ? AclPb.firstNonFlushable : AclPb.continuing,
        data: frame.subarray(o, Math.min(frame.length, o + max)),
      }));
    }
    return this.owner.sendAcl(this.handle, packets);
  }

  // ------------------------------------------------------------------------------------------------
  // LE signalling

  /** Send a signalling request and await its response (or Command Reject), with the RTX timeout. */
  request<K extends SignallingRequestKind>(cmd: WithoutIdentifier<SignallingCommandOf<K>>,
    onAnswer?: (rsp: AnySignallingCommand) => void):
    Promise<SignallingResponseFor<K> | SignallingCommandOf<'commandRejectRsp'>> {
    if (this.closedError) return Promise.reject(this.closedError);
    let identifier: number;
    try {
      identifier = this.allocateIdentifier();
    } catch (e) {
      return Promise.reject(e);
    }
    const full = { ...cmd, identifier } as unknown as AnySignallingCommand;
    return new Promise((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.pending.delete(identifier);
        reject(new TimeoutError('l2cap', cmd.kind as string, L2CAP_RTX_TIMEOUT_MS));
      }, L2CAP_RTX_TIMEOUT_MS);
      this.pending.set(identifier, {
        identifier, expect: signallingResponseKindOf(cmd.kind as SignallingRequestKind), timer, reject,
        resolve: c => {
          // Synchronously, before the next PDU of the link is handled (see CocLinkHost.request).
          onAnswer?.(c);
          resolve(c as SignallingResponseFor<K>);
        },
      });
      this.sendSignalling(full).catch(e => {
        const p = this.pending.get(identifier);
        if (!p) return;
        this.opts.clock.clearTimeout(p.timer);
        this.pending.delete(identifier);
        reject(e);
      });
    });
  }

  /**
   * Ask the central for new connection parameters (only a peripheral may send this request,
   * Vol 3, Part A, 4.20). Resolves true when accepted.
   */
  async requestConnectionParameterUpdate(p: ConnectionParameterRequest): Promise<boolean> {
    if (this.opts.role !== 'peripheral') {
      throw new InvalidStateError('l2cap: only the peripheral sends Connection Parameter Update Request; a central uses LE Connection Update');
    }
    const rsp = await this.request<'connectionParameterUpdateReq'>({ kind: 'connectionParameterUpdateReq', ...p });
    return rsp.kind === 'connectionParameterUpdateRsp' && rsp.result === 0;
  }

  private allocateIdentifier(): number {
    // 1..255, skipping ones still awaiting a response; 0 is never used (Vol 3, Part A, 4).
    for (let i = 0; i < 255; i++) {
      const id = this.nextIdentifier;
      this.nextIdentifier = id === 255 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new InvalidStateError('l2cap: 255 signalling requests outstanding');
  }

  private sendSignalling(cmd: AnySignallingCommand): Promise<void> {
    return this.sendSdu(LE_SIGNALLING_CID, encodeSignalling(cmd));
  }

  private reply(cmd: AnySignallingCommand): void {
    if (this.owedReplies >= MAX_OWED_SIGNALLING_REPLIES) {
      this.stats.dropped++;
      log.l2cap('handle 0x%s: %d signalling replies not yet sent: %s id=%d dropped', this.handle.toString(16), this.owedReplies, cmd.kind, cmd.identifier);
      return;
    }
    this.owedReplies++;
    this.sendSignalling(cmd).then(() => { this.owedReplies--; }, e => {
      this.owedReplies--;
      log.l2cap('signalling reply not sent: %s', (e as Error).message);
    });
  }

  private receiveSignalling(payload: Uint8Array): void {
    let cmd: AnySignallingCommand;
    try {
      cmd = decodeLeSignalling(payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // A request we cannot parse is not understood (Vol 3, Part A, 4.1); identifier is octet 1.
      const identifier = payload.length >= 2 ? payload[1]! : 0;
      if (identifier !== 0) this.commandReject(identifier);
      else this.stats.dropped++;
      return;
    }
    if (log.l2cap.enabled) log.l2cap('handle 0x%s rx %s', this.handle.toString(16), cmd.kind);
    switch (cmd.kind) {
      case 'connectionParameterUpdateReq': {
        if (cmd.identifier === 0) { this.stats.dropped++; return; }
        const p = { intervalMin: cmd.intervalMin, intervalMax: cmd.intervalMax, latency: cmd.latency, timeout: cmd.timeout };
        if (this.opts.role !== 'central') {
          // Only the central answers this request (Vol 3, Part A, 4.20).
          this.commandReject(cmd.identifier);
          return;
        }
        const ok = validConnectionParameters(p) && (this.opts.acceptParameters?.(p) ?? true);
        this.reply({ kind: 'connectionParameterUpdateRsp', identifier: cmd.identifier, result: ok ? 0 : 1 });
        if (ok) this.opts.onParameterUpdate?.(p);
        return;
      }
      case 'leCreditBasedConnectionReq':
      case 'creditBasedConnectionReq':
      case 'creditBasedReconfigureReq':
      case 'disconnectionReq':
        if (cmd.identifier === 0) { this.stats.dropped++; return; }
        this.coc.signalling(cmd);
        return;
      case 'commandRejectRsp':
      case 'connectionParameterUpdateRsp':
      case 'leCreditBasedConnectionRsp':
      case 'creditBasedConnectionRsp':
      case 'creditBasedReconfigureRsp':
      case 'disconnectionRsp': {
        const p = this.pending.get(cmd.identifier);
        if (!p || (cmd.kind !== 'commandRejectRsp' && cmd.kind !== p.expect)) {
          this.stats.unmatchedResponses++;
          return;
        }
        this.pending.delete(cmd.identifier);
        this.opts.clock.clearTimeout(p.timer);
        p.resolve(cmd);
        return;
      }
      case 'flowControlCreditInd':
        this.coc.signalling(cmd);
        return;
      default:
        if (cmd.identifier !== 0) this.commandReject(cmd.identifier);
        else this.stats.dropped++;
    }
  }

  private commandReject(identifier: number): void {
    this.stats.commandRejectsSent++;
    this.reply({ kind: 'commandRejectRsp', identifier, reason: 0x0000, data: new Uint8Array(0) });
  }

  // ------------------------------------------------------------------------------------------------

  /** The link is gone: channels and pending requests learn why. Idempotent. */
  close(error: DisconnectedError): void {
    if (this.closedError) return;
    this.closedError = error;
    this.routeAt = undefined;
    for (const p of this.pending.values()) {
      this.opts.clock.clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    this.coc.linkClosed(error);
    for (const ch of this.channels.values()) ch.receiver?.closed(error);
  }
}
