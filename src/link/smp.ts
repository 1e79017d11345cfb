/**
 * The link's SMP hook: the fixed channel 0x0006 (Core Vol 3, Part A, 2.1; Vol 3, Part H, 3) and the
 * place where the SMP session of a link plugs in.
 *
 * What drives it: SMP PDUs from the peer (`data()` from the channel) and the link's end (`closed()`).
 * The session behind it is an `SmpHandler`, the shape of the sans-IO pairing state machine
 * (`smp/session.ts` SmpSession: `receive(frame)`, `linkClosed()`): the change that wires pairing in
 * builds a session per link, installs it with `link.smp.install(session)`, sends the PDUs it emits with
 * `link.smp.send(frame)`, and records its outcome in the link's security state (`LeLink.security`).
 *
 * With no session installed the hook answers for a host without pairing: a Pairing Request or a
 * Security Request gets Pairing Failed with reason Pairing Not Supported (0x05, Vol 3, Part H, 3.5.5);
 * before this hook SMP PDUs got no answer at all and the peer waited out its 30 s SMP timeout (Vol 3,
 * Part H, 3.4). Every other SMP PDU is counted and dropped: with no pairing of ours in progress none of
 * them is expected, and Pairing Failed is never answered, so two such hosts cannot ping-pong.
 *
 * Bounds: nothing is queued here; each received PDU produces at most one PDU back, which goes into the
 * link's flow-controlled ACL queue like every other answer.
 */
import { DecodeError, type DisconnectedError } from '../errors.js';
import { log } from '../log.js';
import type { ChannelReceiver, L2capChannel } from '../l2cap/channel.js';
import { decodeSmp, encodeSmp, SmpPairingFailedReason } from '../smp/pdus.js';

/** An SMP session on one link (SmpSession has this shape). */
export interface SmpHandler {
  /** One SMP PDU from the peer, the whole SDU of CID 0x0006. */
  receive(frame: Uint8Array): void;
  /**
   * The link is gone: drop the session's timers and state. `error` is the link's DisconnectedError,
   * with the HCI reason it ended with, for the session's waiters to pass on.
   */
  linkClosed?(error?: DisconnectedError): void;
}

/** Counters of what arrived on the SMP channel while no session was installed. */
export interface SmpHookStats {
  received: number;
  undecodable: number;
  /** PDUs with no use without a session (everything but Pairing / Security Request). */
  ignored: number;
  /** Pairing / Security Requests answered with Pairing Not Supported. */
  pairingRefused: number;
}

/** Pairing Failed, Pairing Not Supported (Vol 3, Part H, 3.5.5): the answer of a host without pairing. */
const PAIRING_NOT_SUPPORTED = encodeSmp({ kind: 'pairingFailed', reason: SmpPairingFailedReason.PairingNotSupported });

export class SmpHook implements ChannelReceiver {
  private handler: SmpHandler | undefined;
  readonly stats: SmpHookStats = { received: 0, undecodable: 0, ignored: 0, pairingRefused: 0 };

  constructor(private readonly channel: L2capChannel, readonly role: 'central' | 'peripheral') {
    channel.setReceiver(this);
  }

  /** Put an SMP session on this link; `undefined` goes back to refusing pairing. */
  install(handler: SmpHandler | undefined): void {
    this.handler = handler;
  }

  /** The session now answering SMP on this link (undefined: pairing is refused). */
  get session(): SmpHandler | undefined {
    return this.handler;
  }

  /** Send one SMP PDU (encoded) to the peer on CID 0x0006. */
  send(frame: Uint8Array): Promise<void> {
    return this.channel.send(frame);
  }

  data(sdu: Uint8Array): void {
    if (this.handler) {
      try {
        this.handler.receive(sdu);
      } catch (e) {
        log.smp('session threw: %O', e);
      }
      return;
    }
    this.stats.received++;
    let kind: string;
    try {
      kind = decodeSmp(sdu).kind;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.stats.undecodable++;
      log.smp('undecodable PDU on 0x%s dropped: %s', this.channel.handle.toString(16), e.message);
      return;
    }
    if (kind !== 'pairingRequest' && kind !== 'securityRequest') {
      this.stats.ignored++;
      return;
    }
    this.stats.pairingRefused++;
    this.send(PAIRING_NOT_SUPPORTED).catch(e => log.smp('Pairing Failed not sent: %s', (e as Error).message));
  }

  closed(error: DisconnectedError): void {
    try {
      this.handler?.linkClosed?.(error);
    } catch (e) {
      log.smp('session threw on close: %O', e);
    }
  }
}
