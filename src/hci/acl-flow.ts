/**
 * ACL data flow control towards the controller (Core Vol 4, Part E, 4.1.1 "Packet-based flow control").
 *
 * Design overview
 * - Driven by `enqueue()` (a link hands over the ACL packets of one SDU, already fragmented to the
 *   controller's ACL data length), by Number Of Completed Packets (the host feeds `completed()`), and
 *   by link lifecycle (`open()` / `close()`).
 * - Credits: the controller has `totalPackets` ACL buffers (LE Read Buffer Size [v2], or the shared
 *   BR/EDR buffers when the LE size is 0, Vol 4, Part E, 7.8.2). Every packet sent takes one; Number Of
 *   Completed Packets returns them per handle (Vol 4, Part E, 7.7.19). We never send without a credit.
 * - Fairness: each link has its own FIFO of SDUs; links with data wait in a ring, and each free credit
 *   goes to the next link in the ring, one fragment at a time, so a link streaming writes cannot starve
 *   another one (round robin, as NimBLE's and Zephyr's per-connection TX queues do). Within one link,
 *   fragments stay in order.
 * - Disconnect: when a link goes down, the controller drops its unsent packets and the host must count
 *   them as completed (Vol 4, Part E, 4.3): the credits that link held come back, and its queued SDUs
 *   reject with the error given. Number Of Completed Packets for a handle we do not know is counted and
 *   ignored (it cannot be trusted to give credits back twice).
 * - Close of the whole host: `closeAll(error)`.
 * - Bounds (issue 15): in the controller ≤ its buffer count (`totalPackets`); waiting per link ≤
 *   MAX_QUEUED_SDUS_PER_LINK SDUs. Callers that await their send (FixedChannel back-pressure) never
 *   come near it; what a peer can make us queue without awaiting (ATT responses and confirmations,
 *   signalling replies) is bounded again where it is made (att/bearer.ts, l2cap/link.ts). A controller
 *   that stops returning credits (no Number Of Completed Packets) therefore makes further sends reject
 *   at once rather than pile up; the queue drains when the link closes (Vol 4, Part E, 4.3).
 */
import type { BlewireError } from '../errors.js';
import { DisconnectedError, InvalidStateError } from '../errors.js';

/**
 * SDUs waiting for controller buffers on one link. Our own senders await each SDU; what a peer makes
 * us send without awaiting is answers (bounded where they are made, and a signalling flood is answered
 * one for one), so the bound is set above a burst of 40 000 replies while the controller holds its
 * buffers: 65 536 SDUs (small replies: about a megabyte) per link.
 */
export const MAX_QUEUED_SDUS_PER_LINK = 65_536;

interface Sdu {
  packets: Uint8Array[];
  next: number;
  resolve(): void;
  reject(e: Error): void;
}

interface LinkQueue {
  handle: number;
  sdus: Sdu[];
  /** Packets of this link the controller holds (sent, not yet reported completed). */
  inController: number;
  inRing: boolean;
}

export interface AclFlowOptions {
  /** Put one whole H4 ACL packet on the wire. */
  send(packet: Uint8Array): void;
}

export class AclFlow {
  private maxDataLength = 27;
  private total = 0;
  private free = 0;
  private readonly links = new Map<number, LinkQueue>();
  private readonly ring: LinkQueue[] = [];
  /** Completed-packet reports for handles we do not know, and excess reports (for doctor / tests). */
  unknownCompleted = 0;
  private closedWith: Error | undefined;

  constructor(private readonly opts: AclFlowOptions) {}

  /** From the controller's buffer size (LE Read Buffer Size, or Read Buffer Size). */
  configure(maxDataLength: number, totalPackets: number): void {
    this.maxDataLength = maxDataLength;
    this.total = totalPackets;
    let held = 0;
    for (const l of this.links.values()) held += l.inController;
    this.free = Math.max(0, totalPackets - held);
    this.closedWith = undefined;
    this.pump();
  }

  /** The largest ACL payload one packet may carry (what links fragment to). */
  get dataLength(): number {
    return this.maxDataLength;
  }
  get totalCredits(): number {
    return this.total;
  }
  get freeCredits(): number {
    return this.free;
  }
  /** Packets of a link sent but not yet reported completed. */
  inController(handle: number): number {
    return this.links.get(handle)?.inController ?? 0;
  }

  open(handle: number): void {
    if (!this.links.has(handle)) this.links.set(handle, { handle, sdus: [], inController: 0, inRing: false });
  }

  isOpen(handle: number): boolean {
    return this.links.has(handle);
  }

  /** Queue the ACL packets of one SDU; resolves once the last one is on the wire. */
  enqueue(handle: number, packets: Uint8Array[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closedWith) return reject(this.closedWith);
      const link = this.links.get(handle);
      if (!link) return reject(new DisconnectedError(`acl: send on handle 0x${handle.toString(16)}`));
      if (packets.length === 0) return resolve();
      if (link.sdus.length >= MAX_QUEUED_SDUS_PER_LINK) {
        return reject(new InvalidStateError(`acl: send on handle 0x${handle.toString(16)} refused: ${link.sdus.length} SDUs already ` +
          `wait for controller buffers (${link.inController} sent and not reported completed, Vol 4, Part E, 4.1.1); ` +
          'await each send, or the controller has stopped returning credits'));
      }
      link.sdus.push({ packets, next: 0, resolve, reject });
      if (!link.inRing) {
        link.inRing = true;
        this.ring.push(link);
      }
      this.pump();
    });
  }

  /** Number Of Completed Packets for one handle (Vol 4, Part E, 7.7.19). */
  completed(handle: number, count: number): void {
    const link = this.links.get(handle);
    if (!link) {
      this.unknownCompleted += count;
      return;
    }
    const n = Math.min(count, link.inController);
    if (n < count) this.unknownCompleted += count - n;
    link.inController -= n;
    this.free = Math.min(this.total, this.free + n);
    this.pump();
  }

  /** The link is gone: its credits come back (Vol 4, Part E, 4.3), its queued SDUs reject. */
  close(handle: number, error: BlewireError | Error): void {
    const link = this.links.get(handle);
    if (!link) return;
    this.links.delete(handle);
    const ri = this.ring.indexOf(link);
    if (ri >= 0) this.ring.splice(ri, 1);
    this.free = Math.min(this.total, this.free + link.inController);
    for (const s of link.sdus) s.reject(error);
    link.sdus.length = 0;
    this.pump();
  }

  closeAll(error: Error): void {
    for (const h of [...this.links.keys()]) this.close(h, error);
    this.closedWith = error;
    this.free = this.total;
  }

  private pump(): void {
    while (this.free > 0 && this.ring.length > 0) {
      const link = this.ring.shift()!;
      const sdu = link.sdus[0]!;
      const packet = sdu.packets[sdu.next++]!;
      this.free--;
      link.inController++;
      if (sdu.next === sdu.packets.length) {
        link.sdus.shift();
        sdu.resolve();
      }
      if (link.sdus.length > 0) this.ring.push(link);
      else link.inRing = false;
      this.opts.send(packet);
    }
  }
}
