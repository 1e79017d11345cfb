/**
 * The shared air of several simulated controllers: one virtual clock, and every controller's own
 * advertising (what its host configured with the advertising commands, Core Vol 4, Part E, 7.8.5-7.8.9
 * and 7.8.52-7.8.60) heard by the others' scanners and initiators. Two blewire adapters on one air are a
 * central and a peripheral of each other (or eight centrals and one peripheral, for the benchmarks).
 *
 *   const air = new SimAir();
 *   const a = createSimulator({ peripherals: [] }, { air });   // the peripheral's controller
 *   const b = createSimulator({ peripherals: [] }, { air });   // the central's
 *   // a's host advertises; b's host scans and connects to a's address.
 *
 * Design overview
 * - A host's advertising set appears to the other controllers as a HostAdvertiser: a VirtualPeripheral
 *   built from the set's parameters and data (no GATT of its own), rebuilt whenever the host changes
 *   the set, and on the air only while the set is enabled.
 * - A connection between two controllers is two SimLinks, one in each controller (the initiator's
 *   with role central, the advertiser's with role peripheral), joined by an AirBridge: what one
 *   link's host sends (LL PDUs) is reassembled into L2CAP frames and handed to the other link as its
 *   peer's data (`fromPeer`, which holds at most the peer buffers plus PEER_HOST_QUEUE frames). Each
 *   side keeps its own connection events at the same interval, so a frame crosses at the receiving
 *   side's next event: up to one interval more latency than one real link, the same throughput.
 * - Termination on either side ends the other (LL_TERMINATE_IND carries the reason across); a reset
 *   or shutdown of one controller ends its links on the other side too.
 * - Encryption is carried across: LE Enable Encryption on the central's side raises LE Long Term Key
 *   Request at the peripheral's host, whose LTK Request Reply must give the same key (else the link
 *   drops with MIC failure; a Negative Reply is PIN or Key Missing), then both hosts get Encryption
 *   Change (Vol 6, Part B, 5.1.3). SMP needs nothing of the bridge: it is L2CAP (CID 0x0006).
 * - Data length is carried across: LE Set Data Length on either side runs LL_LENGTH_REQ / RSP against
 *   the other side's controller (Vol 6, Part B, 5.1.9), so both report LE Data Length Change: the asking
 *   side its new maximum TX, the other side the same figure as its maximum RX.
 * - Not carried across yet: connection update and PHY started by one side apply to that side's link only.
 */
import { encodeL2capFrame } from '../l2cap/frames.js';
import { L2capReassembler } from '../l2cap/reassembly.js';
import { SimClock } from './clock.js';
import type { SimController } from './controller.js';
import type { LinkPeer, SimLink } from './link.js';
import { VirtualPeripheral, type PeerLinkApi } from './peripheral.js';
import type { Rng } from './util.js';

/** What an initiator tells the advertiser when it connects (its CONNECT_IND, Vol 6, Part B, 2.3.3.1). */
export interface AirConnectRequest {
  address: string;
  addressType: number;
  intervalUs: number;
  latency: number;
  supervisionTimeoutUs: number;
  firstAnchorUs: number;
}

export interface SimAirOptions {
  /** Virtual ms per wall-clock ms (default Infinity). */
  speed?: number;
}

export class SimAir {
  readonly clock: SimClock;
  private readonly members = new Set<SimController>();
  private nextAddress = 1;

  constructor(options: SimAirOptions = {}) {
    this.clock = new SimClock(options.speed !== undefined ? { speed: options.speed } : {});
  }

  /** A fresh public address for a controller that did not name one. */
  allocateAddress(): string {
    const n = this.nextAddress++;
    return `C0:FF:EE:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`.toUpperCase();
  }

  /**
   * A controller joins. The clock stops when the last member leaves; one that joins after that starts
   * it again (from the time it stopped at), else its host's first command would wait forever.
   */
  join(c: SimController): void {
    if (this.members.size === 0 && this.clock.isStopped) this.clock.resume();
    this.members.add(c);
  }

  /** A controller left (its transport closed); the clock stops when the last one leaves. */
  leave(c: SimController): void {
    this.members.delete(c);
    this.changed(c);
    if (this.members.size === 0) this.clock.stop();
  }

  /** The advertising sets of every other controller on the air. */
  advertisersFor(c: SimController): VirtualPeripheral[] {
    const out: VirtualPeripheral[] = [];
    for (const m of this.members) if (m !== c) out.push(...m.hostAdvertisers());
    return out;
  }

  /** A controller's advertising changed: the others' radios follow. */
  changed(c: SimController): void {
    for (const m of this.members) if (m !== c) m.updateAdvertisers();
  }
}

/** How a controller describes one of its host's advertising sets to the air. */
export interface HostAdvertisingSet {
  key: number;
  address: string;
  addressType: 0 | 1;
  extended: boolean;
  connectable: boolean;
  scannable: boolean;
  directedTo: string | undefined;
  intervalMs: number;
  /** Primary and secondary advertising PHY as HCI numbers them (1M 1, 2M 2, Coded 3; secondary 0 for legacy PDUs). */
  primaryPhy: number;
  secondaryPhy: number;
  sid: number;
  txPower: number;
  data: Uint8Array;
  scanRsp: Uint8Array;
  /** `address` is an RPA the controller made from a resolving list entry's local IRK (Own_Address_Type 0x02 / 0x03). */
  localRpa?: boolean;
}

/** One host advertising set as the other controllers' radios see it. */
export class HostAdvertiser extends VirtualPeripheral {
  /** Only this central may connect (directed advertising). */
  readonly directedTo: string | undefined;
  /** The PHYs its PDUs go on: a radio without one of them does not hear the set. */
  readonly phys: { primary: number; secondary: number };

  constructor(readonly owner: SimController, readonly set: HostAdvertisingSet) {
    super({
      name: `${owner.address} set ${set.key}`,
      address: set.address,
      addressType: set.addressType === 1 ? 'random' : 'public',
      advertising: {
        type: set.extended ? 'extended' : 'legacy',
        data: { raw: set.data },
        scanResponse: { raw: set.scanRsp },
        intervalMs: set.intervalMs,
        connectable: set.connectable,
        scannable: set.scannable,
        sid: set.sid,
        txPower: set.txPower,
      },
    });
    this.directedTo = set.directedTo;
    this.phys = { primary: set.primaryPhy, secondary: set.secondaryPhy };
  }

  /** Still advertised by its controller (a stale copy after a change or a connection is not). */
  override get onAir(): boolean {
    return this.owner.hostAdvertisers().includes(this);
  }

  /** The initiator's controller connects: the advertiser's controller opens its side and the bridge joins them. */
  override connect(api: PeerLinkApi, _rng: Rng): LinkPeer {
    this.stats.connections++;
    const central = api.central!;
    const toCentral = new AirBridge(frame => { void api.send(frame.cid, frame.payload); }, reason => api.terminate(reason));
    const link = this.owner.acceptFromAir(this.set.key, central, toCentral);
    const bridge = new AirBridge(frame => { void link.fromPeer(encodeL2capFrame(frame.cid, frame.payload)); },
      reason => link.terminate(reason, reason));
    bridge.remote = { controller: this.owner, link };
    return bridge;
  }
}

/** One direction of a host-to-host link: LL PDUs in, L2CAP frames out to the other side. */
export class AirBridge implements LinkPeer {
  private readonly reassembler = new L2capReassembler();
  private ended = false;
  /** On the central's side: the peripheral's controller and link (encryption asks its host for the LTK). */
  remote: { controller: SimController; link: SimLink } | undefined;
  /** On both sides: the other host's controller and link (LL procedures that change both ends: data length). */
  other: { controller: SimController; link: SimLink } | undefined;

  constructor(private readonly deliver: (frame: { cid: number; payload: Uint8Array }) => void,
    private readonly end: (reason: number) => void) {}

  receive(start: boolean, data: Uint8Array): void {
    if (this.ended) return;
    const pdu = this.reassembler.push(0, start ? 0b10 : 0b01, data);
    if (pdu) this.deliver(pdu);
  }

  closed(reason: number): void {
    if (this.ended) return;
    this.ended = true;
    this.end(reason);
  }
}

export type { SimLink };
