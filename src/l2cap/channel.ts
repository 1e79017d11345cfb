import type { DisconnectedError } from '../errors.js';

/**
 * The seam between the link (HCI ACL, flow control, L2CAP reassembly) and the protocols above it
 * (ATT, SMP, LE signalling): one L2CAP fixed channel on one LE link (Core Vol 3 Part A 2.1).
 * The ATT bearer and the GATT client are written against this interface only, so they can be tested
 * against a scripted peer without any HCI underneath.
 */
export interface ChannelReceiver {
  /** One whole, reassembled L2CAP SDU (for fixed channels: the PDU payload), e.g. one ATT PDU. */
  data(sdu: Uint8Array): void;
  /** The link is gone; every pending operation must reject with this error. */
  closed(error: DisconnectedError): void;
}

export interface FixedChannel {
  /** ACL connection handle of the link. */
  readonly handle: number;
  /** Channel identifier: 0x0004 ATT, 0x0005 LE signalling, 0x0006 SMP. */
  readonly cid: number;
  /**
   * Queue one SDU. The promise resolves when the whole SDU has been handed to the controller (ACL
   * buffer credit was available for every fragment): a write-without-response loop awaiting it gets
   * back-pressure instead of an unbounded queue. Rejects with DisconnectedError if the link drops first.
   */
  send(sdu: Uint8Array): Promise<void>;
  setReceiver(receiver: ChannelReceiver): void;
}
