/**
 * The link's SMP hook: the fixed channel 0x0006 (Core Vol 3, Part A, 2.1; Vol 3, Part H, 3) and the
 * place where the SMP session of a link plugs in.
 *
 * What drives it: SMP PDUs from the peer (`data()` from the channel) and the link's end (`closed()`).
 * The session behind it is an `SmpHandler`: the sans-IO pairing state machine (src/smp/) implements
 * that interface in a later change and is installed with `LeLink.smp.install(handler)`; the link's
 * security state (`LeLink.security`) is where its outcome (encryption, keys, bond) lands.
 *
 * Until then `refusePairing` answers: a Pairing Request or a Security Request gets Pairing Failed with
 * reason Pairing Not Supported (0x05, Vol 3, Part H, 3.5.5), the answer of a device that does not
 * support pairing; before this hook SMP PDUs got no answer at all and the peer waited out its 30 s SMP
 * timeout (Vol 3, Part H, 3.4). Every other SMP PDU is counted and dropped: with no pairing of ours in
 * progress none of them is expected, and Pairing Failed is never answered, so two such hosts cannot
 * ping-pong.
 *
 * Bounds: nothing is queued here; each received PDU produces at most one PDU back, which goes into the
 * link's flow-controlled ACL queue like every other answer.
 */
import { DecodeError, type DisconnectedError } from '../errors.js';
import { log } from '../log.js';
import type { ChannelReceiver, L2capChannel } from '../l2cap/channel.js';
import { decodeSmp, encodeSmp, SmpPairingFailedReason, type SmpPdu, type UnknownSmpPdu } from '../smp/pdus.js';

/** What the link tells an SMP session about itself. */
export interface SmpLinkView {
  readonly handle: number;
  readonly role: 'central' | 'peripheral';
  /** Send one SMP PDU to the peer on channel 0x0006. */
  send(pdu: SmpPdu): Promise<void>;
}

/** An SMP session on one link (the pairing state machine implements this). */
export interface SmpHandler {
  /** One decoded SMP PDU from the peer (an unknown code arrives as `{ kind: 'unknown' }`). */
  receive(pdu: SmpPdu | UnknownSmpPdu, link: SmpLinkView): void;
  /** The link is gone: drop the session's timers and state. */
  closed?(error: DisconnectedError): void;
}

/** Counters of what arrived on the SMP channel. */
export interface SmpHookStats {
  received: number;
  undecodable: number;
  /** PDUs the default handler had no use for (everything but Pairing / Security Request). */
  ignored: number;
  /** Pairing / Security Requests answered with Pairing Not Supported. */
  pairingRefused: number;
}

/** The answer of a host without pairing (Vol 3, Part H, 3.5.5): the default SMP handler of every link. */
export const refusePairing: SmpHandler = {
  receive(pdu, link) {
    if (pdu.kind !== 'pairingRequest' && pdu.kind !== 'securityRequest') return;
    link.send({ kind: 'pairingFailed', reason: SmpPairingFailedReason.PairingNotSupported })
      .catch(e => log.smp('Pairing Failed not sent: %s', (e as Error).message));
  },
};

export class SmpHook implements ChannelReceiver {
  private handler: SmpHandler = refusePairing;
  readonly stats: SmpHookStats = { received: 0, undecodable: 0, ignored: 0, pairingRefused: 0 };
  private readonly view: SmpLinkView;

  constructor(private readonly channel: L2capChannel, role: 'central' | 'peripheral') {
    this.view = { handle: channel.handle, role, send: pdu => channel.send(encodeSmp(pdu)) };
    channel.setReceiver(this);
  }

  /** Put an SMP session on this link (the pairing state machine); `undefined` restores refusePairing. */
  install(handler: SmpHandler | undefined): void {
    this.handler = handler ?? refusePairing;
  }

  /** The session now answering SMP on this link. */
  get session(): SmpHandler {
    return this.handler;
  }

  data(sdu: Uint8Array): void {
    this.stats.received++;
    let pdu: SmpPdu | UnknownSmpPdu;
    try {
      pdu = decodeSmp(sdu);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.stats.undecodable++;
      log.smp('undecodable PDU on 0x%s dropped: %s', this.channel.handle.toString(16), e.message);
      return;
    }
    if (this.handler === refusePairing) {
      if (pdu.kind === 'pairingRequest' || pdu.kind === 'securityRequest') this.stats.pairingRefused++;
      else this.stats.ignored++;
    }
    try {
      this.handler.receive(pdu, this.view);
    } catch (e) {
      log.smp('handler threw: %O', e);
    }
  }

  closed(error: DisconnectedError): void {
    try {
      this.handler.closed?.(error);
    } catch (e) {
      log.smp('handler threw on close: %O', e);
    }
  }
}
