import type { ChannelClosedError, DisconnectedError } from '../errors.js';

/**
 * The seam between the link (HCI ACL, flow control, L2CAP reassembly) and the protocols above it
 * (ATT, SMP, LE signalling): one L2CAP channel on one LE link, whatever kind it is (Core Vol 3,
 * Part A, 2.1): a fixed channel (ATT 0x0004, SMP 0x0006) today, an LE credit-based channel (Vol 3,
 * Part A, 10.2; the enhanced ATT bearer runs on one, Vol 3, Part F, 3.2.11) later. The ATT bearer, our
 * GATT server session and the GATT client are written against this interface only, so ATT can move to
 * a credit-based channel without them knowing, and they can be tested against a scripted peer with no
 * HCI underneath.
 */
export interface ChannelReceiver {
  /** One whole, reassembled L2CAP SDU (for fixed channels: the PDU payload), e.g. one ATT PDU. */
  data(sdu: Uint8Array): void;
  /**
   * The same SDU in place, b[start, end) (no view made); receivers without it get data(). When
   * `buffer` is given, b[i] is octet base + i of it (views can be made without reading b's getters).
   */
  dataAt?(b: Uint8Array, start: number, end: number, buffer?: ArrayBufferLike, base?: number): void;
  /**
   * The receiver's shortest path for a whole SDU in place (dataAt's arguments, base 0 without a
   * buffer): true when it took the SDU, false when this SDU is not one it takes this way (the channel
   * then hands it to dataAt or data). A property the receiver sets and clears as its state changes,
   * telling its channel through L2capChannel.receiverChanged(): the ATT bearer's notification path,
   * which the link offers the host as one function per packet (HciHost's AclReceiver.routeAt, issue 14).
   */
  readonly takeAt?: InPlaceTaker | undefined;
  /**
   * The link (DisconnectedError) or the credit-based channel (ChannelClosedError) is gone; every
   * pending operation must reject with this error.
   */
  closed(error: DisconnectedError | ChannelClosedError): void;
}

/** ChannelReceiver.takeAt: b[start, end) is a whole SDU; `buffer` and `base` as in dataAt (base 0 when buffer is undefined). */
export type InPlaceTaker = (b: Uint8Array, start: number, end: number, buffer: ArrayBufferLike | undefined, base: number) => boolean;

export interface L2capChannel {
  /** ACL connection handle of the link. */
  readonly handle: number;
  /** Our channel identifier: 0x0004 ATT, 0x0005 LE signalling, 0x0006 SMP, 0x0040-0x007F dynamic (Vol 3, Part A, 2.1). */
  readonly cid: number;
  /**
   * The largest SDU `send()` takes: the peer's MTU on a credit-based channel (Vol 3, Part A, 4.22);
   * 65535 on a fixed channel, whose B-frame length field is 16 bits (Vol 3, Part A, 3.1), where the
   * protocol above bounds its own PDUs (ATT_MTU).
   */
  readonly mtu: number;
  /**
   * Queue one SDU. The promise resolves when the whole SDU has been handed to the controller (ACL
   * buffer credit was available for every fragment): a write-without-response loop awaiting it gets
   * back-pressure instead of an unbounded queue. Rejects with DisconnectedError if the link drops first.
   */
  send(sdu: Uint8Array): Promise<void>;
  /** Where received SDUs go (and `closed()` when the link ends); replaces any earlier receiver. */
  setReceiver(receiver: ChannelReceiver): void;
  /** The receiver's takeAt changed (set, replaced or cleared): a channel that routes by it looks again. */
  receiverChanged?(): void;
  /**
   * Stop using the channel: nothing more is delivered and later sends reject. A credit-based channel is
   * disconnected (Vol 3, Part A, 4.6); a fixed channel exists as long as its link (Vol 3, Part A, 2.1),
   * so closing it only ends this user's use of it. Idempotent.
   */
  close(): void;
}

/** A fixed channel (Vol 3, Part A, 2.1) is an L2capChannel whose CID is fixed: the old name stays. */
export type FixedChannel = L2capChannel;

/** What a fixed channel's `mtu` is: the largest B-frame payload (its length field is 16 bits). */
export const FIXED_CHANNEL_MTU = 0xffff;
