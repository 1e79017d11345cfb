import type { Clock } from '../clock.js';

/**
 * The one interface between the host and a controller: whole H4 packets (packet indicator byte first,
 * Core Vol 4 Part A 2) in both directions. User-channel sockets already deliver one packet per read;
 * byte streams (UART, TCP, unix sockets) go through the H4 framer. Everything above the transport only
 * ever sees whole packets.
 */
export { H4, type H4Type } from '../codec/h4.js';

export interface TransportReceiver {
  /** One whole H4 packet from the controller. The array is never written again by the transport. */
  packet(packet: Uint8Array): void;
  /**
   * Optional, the same packet in place: bytes[start, end), where bytes[i] is octet base + i of
   * `buffer`. A byte-stream transport reads its chunk's buffer and byteOffset once per chunk and hands
   * every packet of the chunk this way, so the receiver can make the views it hands out from numbers
   * (on node 20 each `.buffer` / `.byteOffset` read is a builtin call, about 40 ns a view: issue 14).
   * Same promise as packet(): those bytes are never written again. A receiver without it gets
   * packet() with a view of exactly those bytes.
   */
  packetAt?(bytes: Uint8Array, start: number, end: number, buffer: ArrayBufferLike, base: number): void;
  /** The transport ended: cleanly (no error) or because of one (EOF mid-stream, socket error, …). */
  closed(error?: Error): void;
}

export interface HciTransport {
  /**
   * A transport that runs on its own time (the simulator's virtual clock) offers that clock here;
   * the host must then use it for every timer, or host timeouts and the controller's time disagree.
   */
  readonly clock?: Clock;
  /** e.g. "hci0 (user channel)", "unix:/tmp/bt-server-le". */
  readonly description: string;
  /** Send one whole H4 packet to the controller. The caller does not touch it afterwards. */
  send(packet: Uint8Array): void;
  /** Set where packets from the controller go. Packets that arrive before a receiver is set are queued. */
  setReceiver(receiver: TransportReceiver): void;
  close(): Promise<void>;
}
