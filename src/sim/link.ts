/**
 * One simulated LE connection between our (central) controller and a virtual peripheral.
 *
 * Design overview
 * - What drives it: connection events at anchor + k × interval on the virtual clock (Vol 6, Part B,
 *   4.5.1). Events are scheduled only when there is something to do (data queued in either
 *   direction, a termination); an idle link costs nothing, so the simulation can jump ahead.
 * - Data: host ACL packets are split into LL data PDUs of at most the current TX octets and queued
 *   towards the peer; the peer's L2CAP PDUs are split the same way the other way round and reach the
 *   host as ACL packets (PB 0b10 first, 0b01 continuing; Vol 4, Part E, 5.4.2). In one event the two
 *   sides alternate PDUs until both queues are empty or the event's air time is used up.
 * - Causality: what the peer receives in event N is handed to it after the event; whatever it sends
 *   in reaction is queued at that instant and so leaves at event N+1 at the earliest, which is the
 *   round-trip cost of a real link. Host packets sent at any instant leave at the next anchor.
 * - Number Of Completed Packets: a host packet counts as completed in the event its last LL PDU was
 *   sent (acknowledged), one NOCP per event per handle.
 * - The peer's side has a controller too: it holds at most PEER_TX_BUFFERS L2CAP frames towards us
 *   (its ACL buffers, Vol 4, Part E, 4.1.1). `fromPeer()` resolves when the frame got a buffer; a frame
 *   frees its buffer in the event its last LL PDU goes out. Frames the peer's host hands over while
 *   every buffer is taken wait in its queue (answers the protocol bounds: one per request of ours,
 *   one per indication), at most PEER_HOST_QUEUE, so a peer that produces data faster than
 *   connection events carry it builds no backlog here: its notification sources wait for a buffer
 *   (peripheral.ts) as an application on a real stack waits for its controller.
 * - LL control procedures (update, PHY, data length, encryption) complete a few events later via
 *   `afterEvents()`; their HCI events are produced by the controller's callbacks.
 * - Termination: `terminate()` sends LL_TERMINATE_IND at the next event and closes the link there;
 *   `silence()` makes the radio lose the peer, so the supervision timeout closes it (0x08). On close
 *   every event of this link is cancelled and the peer session is told.
 */
import type { SimClock, SimEvent } from './clock.js';

/** What the link needs from its controller. */
export interface LinkOwner {
  readonly clock: SimClock;
  /** An ACL packet from the peer reached our controller: pass it to the host. */
  aclToHost(handle: number, pb: number, data: Uint8Array): void;
  /** Host packets on this handle were sent over the air. */
  completed(handle: number, count: number): void;
  /** The link ended; `reason` is what the host's Disconnection Complete carries. */
  linkClosed(link: SimLink, reason: number): void;
}

/** The peer's side, as the link sees it. */
export interface LinkPeer {
  receive(start: boolean, data: Uint8Array): void;
  closed(reason: number): void;
}

interface TxPdu { data: Uint8Array; start: boolean; completesHostPacket: boolean }
/** `last`: the frame's final LL PDU, which frees the peer controller's buffer once sent. */
interface RxPdu { data: Uint8Array; start: boolean; last: boolean }

/** L2CAP frames the peer's controller buffers towards us (a typical controller has a handful of ACL buffers). */
export const PEER_TX_BUFFERS = 8;
/**
 * Frames the peer's host may queue while its controller's buffers are full. What goes there is bounded
 * by the protocol (ATT answers: at most the bearer's owed bound; SMP and signalling replies); past it a
 * frame is dropped and counted, never kept.
 */
export const PEER_HOST_QUEUE = 64;

export interface LinkStats {
  /** Connection events that carried traffic (simulated one by one). */
  activeEvents: number;
  pdusToPeer: number;
  pdusToHost: number;
  /** Frames of the peer dropped because its host queue was full (PEER_HOST_QUEUE). */
  peerFramesDropped: number;
}

export class SimLink {
  intervalUs: number;
  latency: number;
  supervisionTimeoutUs: number;
  /** Anchor of event `baseCounter`. */
  private anchorUs: number;
  private baseCounter = 0;
  private readonly tx: TxPdu[] = [];
  private readonly rx: RxPdu[] = [];
  /** Peer frames holding one of its controller's buffers (queued in `rx`, not fully sent). */
  private rxFrames = 0;
  /** Peer frames waiting for a buffer, with the resolver of their fromPeer() promise. */
  private readonly peerWaiting: Array<{ frame: Uint8Array; accepted: (ok: boolean) => void }> = [];
  private nextEvent: SimEvent | undefined;
  private readonly pending = new Set<SimEvent>();
  private terminating: { reason: number; hostReason: number } | undefined;
  private silent = false;
  closed = false;
  peer!: LinkPeer;
  /** The identity the controller's resolving list found behind the peer's RPA (Vol 6, Part B, 4.7), if any. */
  peerIdentity?: { type: 2 | 3; address: string };
  /** Our RPA on this link when the controller made it from a resolving-list entry's local IRK. */
  localRpa?: string;
  encrypted = false;
  /** Encryption key size in octets once encrypted (HCI Read Encryption Key Size). */
  keySize = 0;
  /** Current LL payload limits (central's view: tx = towards the peer). */
  dataLength = { txOctets: 27, txTime: 328, rxOctets: 27, rxTime: 328 };
  phy = { tx: 1, rx: 1 };
  readonly stats: LinkStats = { activeEvents: 0, pdusToPeer: 0, pdusToHost: 0, peerFramesDropped: 0 };

  constructor(
    private readonly owner: LinkOwner,
    readonly handle: number,
    readonly peerAddress: string,
    readonly peerAddressType: number,
    params: { intervalUs: number; latency: number; supervisionTimeoutUs: number },
    firstAnchorUs: number,
  ) {
    this.intervalUs = params.intervalUs;
    this.latency = params.latency;
    this.supervisionTimeoutUs = params.supervisionTimeoutUs;
    this.anchorUs = firstAnchorUs;
  }

  /** Connection event counter of the next event strictly after now. */
  nextCounter(): number {
    const now = this.owner.clock.micros;
    if (now < this.anchorUs) return this.baseCounter;
    return this.baseCounter + Math.floor((now - this.anchorUs) / this.intervalUs) + 1;
  }

  /** Events elapsed since the link was established (idle ones included). */
  eventsElapsed(): number {
    return this.nextCounter();
  }

  private anchorOf(counter: number): number {
    return this.anchorUs + (counter - this.baseCounter) * this.intervalUs;
  }

  /** Queue one host ACL packet (its payload) towards the peer. */
  fromHost(start: boolean, data: Uint8Array): void {
    if (this.closed) return;
    const max = this.dataLength.txOctets;
    if (data.length <= max) {
      this.tx.push({ data, start, completesHostPacket: true });
    } else {
      for (let o = 0; o < data.length; o += max) {
        const end = Math.min(data.length, o + max);
        this.tx.push({ data: data.subarray(o, end), start: start && o === 0, completesHostPacket: end === data.length });
      }
    }
    this.ensureEvent();
  }

  /**
   * One L2CAP PDU (header included) from the peer towards the host. Resolves true when the peer's
   * controller took it into a buffer (at once if one is free), false when it was dropped (link closing
   * or closed, or the peer's host queue full).
   */
  fromPeer(frame: Uint8Array): Promise<boolean> {
    if (this.closed || this.terminating) return Promise.resolve(false);
    if (this.rxFrames < PEER_TX_BUFFERS && this.peerWaiting.length === 0) {
      this.acceptFromPeer(frame);
      return Promise.resolve(true);
    }
    if (this.peerWaiting.length >= PEER_HOST_QUEUE) {
      this.stats.peerFramesDropped++;
      return Promise.resolve(false);
    }
    return new Promise<boolean>(accepted => this.peerWaiting.push({ frame, accepted }));
  }

  /** The peer's controller has a free buffer and nothing waits for one: a frame sent now goes at once. */
  get peerCanSend(): boolean {
    return !this.closed && !this.terminating && this.rxFrames < PEER_TX_BUFFERS && this.peerWaiting.length === 0;
  }

  /** Peer data not yet delivered to the host: LL PDUs in its controller plus frames its host holds. */
  get peerBacklog(): { llPdus: number; frames: number; waiting: number } {
    return { llPdus: this.rx.length, frames: this.rxFrames, waiting: this.peerWaiting.length };
  }

  private acceptFromPeer(frame: Uint8Array): void {
    const max = this.dataLength.rxOctets;
    this.rxFrames++;
    for (let o = 0; o < frame.length || o === 0; o += max) {
      const end = Math.min(frame.length, o + max);
      this.rx.push({ data: frame.subarray(o, end), start: o === 0, last: end === frame.length });
      if (frame.length === 0) break;
    }
    this.ensureEvent();
  }

  /** Buffers freed in an event go to the frames the peer's host was holding, in order. */
  private admitWaiting(): void {
    while (this.rxFrames < PEER_TX_BUFFERS && this.peerWaiting.length > 0 && !this.closed && !this.terminating) {
      const w = this.peerWaiting.shift()!;
      this.acceptFromPeer(w.frame);
      w.accepted(true);
    }
  }

  /**
   * Run fn at the connection event `n` events from the next one (an LL procedure's instant). On a
   * link whose radio lost the peer (`silence()`) no LL PDU gets through, so the procedure never
   * completes: the supervision timeout ends the link first (before, encryption "completed" on a
   * silent link).
   */
  afterEvents(n: number, fn: () => void): void {
    if (this.closed) return;
    const at = this.anchorOf(this.nextCounter() + Math.max(0, n));
    const ev = this.owner.clock.scheduleAt(at, () => {
      this.pending.delete(ev);
      if (!this.closed && !this.silent) fn();
    });
    this.pending.add(ev);
  }

  /** Change interval / latency / timeout from the connection event `instantCounter` on. */
  applyParameters(p: { intervalUs: number; latency: number; supervisionTimeoutUs: number }): void {
    const counter = this.nextCounter() - 1;
    this.anchorUs = this.anchorOf(Math.max(counter, this.baseCounter));
    this.baseCounter = Math.max(counter, this.baseCounter);
    this.intervalUs = p.intervalUs;
    this.latency = p.latency;
    this.supervisionTimeoutUs = p.supervisionTimeoutUs;
    if (this.nextEvent) {
      this.nextEvent.cancel();
      this.nextEvent = undefined;
      this.ensureEvent();
    }
  }

  /** LL_TERMINATE_IND at the next event. `hostReason` is what our host is told. */
  terminate(reason: number, hostReason: number): void {
    if (this.closed || this.terminating) return;
    this.terminating = { reason, hostReason };
    this.ensureEvent();
  }

  /** The radio loses the peer: nothing gets through; the supervision timeout ends the link (0x08). */
  silence(): void {
    if (this.closed || this.silent) return;
    this.silent = true;
    this.nextEvent?.cancel();
    this.nextEvent = undefined;
    // The timeout runs from the last event that got through (Vol 6, Part B, 4.5.2).
    const last = this.anchorOf(Math.max(this.baseCounter, this.nextCounter() - 1));
    const ev = this.owner.clock.scheduleAt(last + this.supervisionTimeoutUs, () => this.close(0x08, 0x08));
    this.pending.add(ev);
  }

  /** Close now (no air traffic): controller reset, supervision timeout. */
  close(peerReason: number, hostReason: number): void {
    if (this.closed) return;
    this.closed = true;
    this.nextEvent?.cancel();
    this.nextEvent = undefined;
    for (const ev of this.pending) ev.cancel();
    this.pending.clear();
    this.tx.length = 0;
    this.rx.length = 0;
    this.rxFrames = 0;
    for (const w of this.peerWaiting.splice(0)) w.accepted(false);
    this.peer.closed(peerReason);
    this.owner.linkClosed(this, hostReason);
  }

  private ensureEvent(): void {
    if (this.nextEvent || this.closed || this.silent) return;
    const counter = this.nextCounter();
    this.nextEvent = this.owner.clock.scheduleAt(this.anchorOf(counter), () => {
      this.nextEvent = undefined;
      this.connectionEvent();
    });
  }

  /** Air time of one LL PDU with `n` payload octets, in µs (Vol 6, Part B, 2.1 and 2.4). */
  private airUs(n: number, phy: number): number {
    // Preamble 1 (2 on 2M), access address 4, header 2, payload, MIC 4 when encrypted, CRC 3.
    const octets = (phy === 2 ? 2 : 1) + 4 + 2 + n + (this.encrypted && n > 0 ? 4 : 0) + 3;
    return phy === 2 ? octets * 4 : phy === 4 ? octets * 64 : octets * 8;
  }

  private connectionEvent(): void {
    if (this.closed || this.silent) return;
    // LL_TERMINATE_IND goes out once the data queued before it has been sent (ACL Termination, Vol 6, Part B, 5.1.6).
    if (this.terminating && this.tx.length === 0 && this.rx.length === 0) {
      const { reason, hostReason } = this.terminating;
      this.close(reason, hostReason);
      return;
    }
    this.stats.activeEvents++;
    const T_IFS = 150; // Vol 6, Part B, 4.1.1
    const budget = Math.max(this.intervalUs - 2 * T_IFS, 1000);
    let used = 0;
    let completed = 0;
    const toPeer: TxPdu[] = [];
    while (this.tx.length > 0 || this.rx.length > 0) {
      const c = this.tx[0];
      const p = this.rx[0];
      const cost = this.airUs(c?.data.length ?? 0, this.phy.tx) + T_IFS + this.airUs(p?.data.length ?? 0, this.phy.rx) + T_IFS;
      if (used > 0 && used + cost > budget) break;
      used += cost;
      if (c) {
        this.tx.shift();
        toPeer.push(c);
        this.stats.pdusToPeer++;
        if (c.completesHostPacket) completed++;
      }
      if (p) {
        this.rx.shift();
        this.stats.pdusToHost++;
        if (p.last) this.rxFrames--;
        this.owner.aclToHost(this.handle, p.start ? 0b10 : 0b01, p.data);
      }
    }
    if (completed > 0) this.owner.completed(this.handle, completed);
    // Frames the peer's host held take the buffers this event freed; they leave at the next event.
    this.admitWaiting();
    // The peer handles what it got after the event: its answers leave at the next event or later.
    for (const c of toPeer) {
      if (this.closed || this.terminating) break;
      this.peer.receive(c.start, c.data);
    }
    if (this.tx.length > 0 || this.rx.length > 0 || this.terminating) this.ensureEvent();
  }
}
