/**
 * The simulated LE controller: speaks HCI (Core Vol 4, Part E) to the host for everything blewire's
 * host uses, on a virtual radio shared with the scenario's virtual peripherals.
 *
 * Design overview
 * - What drives it: `receive()` (every H4 packet the host sends, synchronously from the transport)
 *   and simulator events on the virtual clock (advertising events of each peripheral, connection
 *   events of each link, LL procedure instants). Every packet to the host goes through `deliver()`,
 *   which schedules it on the clock: nothing is ever sent back from inside the host's send().
 * - Commands: decoded with the host's own command table, answered through one handler per kind
 *   (`HANDLERS`, typed against the table), kept by family in commands/: info (init, masks, version,
 *   buffers), advertising, scanning, connections, link-layer (data length, PHY) and security
 *   (encryption, privacy); commands/table.ts is the catalogue. A command with no handler gets Unknown HCI Command
 *   (0x01) in a Command Complete, and its bit is clear in the supported-commands mask, which is
 *   built from the same handler table so the two cannot disagree. Parameters that do not decode get
 *   Invalid HCI Command Parameters (0x12). `commandErrors` (fault injection) answers chosen commands
 *   with a status, or not at all (the host's command timeout).
 * - Events are filtered by the Event Mask / LE Event Mask like a real controller (Vol 4, Part E,
 *   7.3.1, 7.8.1); the connection-complete flavour follows the mask (LE Enhanced Connection Complete
 *   [v2] > [v1] > LE Connection Complete).
 * - Legacy vs extended: once the host uses one family of advertising / scanning / initiating
 *   commands, the other family gets Command Disallowed until Reset (Vol 4, Part E, 3.1.1).
 * - Scanning and initiating switch the advertisers' radio events on; with neither, advertisers cost
 *   nothing. Reports carry the peripheral's drifting RSSI; active scans get scan responses; extended
 *   reports longer than one event are fragmented with Data Status "more to come" (7.7.65.13).
 * - ACL: host packets are checked against the LE buffer pool (acl-buffers.ts; overruns are counted and answered with
 *   Data Buffer Overflow), carried by the link (link.ts), and completed with Number Of Completed
 *   Packets once sent over the air. Credits of a link are released when it closes (Vol 4, Part E, 4.3).
 * - Reset drops every link silently, stops scanning / advertising / initiating and restores the
 *   default masks; a Hardware Error (fault) does the same after telling the host.
 */
import { decodeAcl } from '../hci/acl.js';
import { EXT_ADV_EVENT_TYPE, ExtAdvDataStatus, LE_FEATURES, LegacyAdvEventType } from '../hci/bit-fields.js';
import {
  COMMAND_TABLE, HCI_COMMANDS, type CommandReturn, type HciCommandKind, type HciCommandOf, type ReturnParameters,
} from '../hci/commands.js';
import type { HciEvent } from '../hci/events.js';
import { decodeHciPacket, encodeAcl, encodeEvent } from '../hci/packets.js';
import { encodeL2capFrame } from '../l2cap/frames.js';
import { log } from '../log.js';
import { DecodeError, InvalidStateError } from '../errors.js';
import { H4 } from '../transport/types.js';
import type { SimClock, SimEvent } from './clock.js';
import { SimAclBuffers } from './acl-buffers.js';
import { SimLink, type LinkOwner } from './link.js';
import type { PeerLinkApi, VirtualPeripheral } from './peripheral.js';
import { AirBridge, HostAdvertiser, type AirConnectRequest, type HostAdvertisingSet, type SimAir } from './air.js';
import type { LinkPeer } from './link.js';
import type { SimControllerOptions } from './types.js';
import { normAddress, Rng } from './util.js';
import { generateRpa, isResolvablePrivateAddress, rpaMatchesIrk } from '../gap/privacy.js';
import {
  DATA_LENGTH_COMMANDS, EXTENDED_ONLY, HANDLERS, LEGACY_FAMILY, S, SIM_COMMAND_BITS, type Handler, type SimCommandKind,
} from './commands/index.js';

export { SIM_COMMAND_BITS, leEncrypt } from './commands/index.js';

/** Default masks after Reset (Vol 4, Part E, 7.3.1 and 7.8.1). */
const DEFAULT_EVENT_MASK = 0x00001fffffffffffn;
const DEFAULT_LE_EVENT_MASK = 0x1fn;

/** Largest extended report data per event: 255 − subevent, count and 24 fixed octets (7.7.65.13). */
const EXT_REPORT_MAX_DATA = 229;

const ZERO_ADDR = '00:00:00:00:00:00';

export interface ControllerStats {
  commands: number;
  aclFromHost: number;
  aclToHost: number;
  /** Host broke flow control: ACL beyond the buffer credits, or longer than the buffer. */
  aclOverruns: number;
  aclUnknownHandle: number;
  /** Host sent a command while one was outstanding (Num_HCI_Command_Packets is 1). */
  commandOverruns: number;
  advertisingReports: number;
  connections: number;
}

interface ScanState {
  extended: boolean;
  active: boolean;
  /** Share of advertising events heard (scan window / interval). */
  duty: number;
  filterDuplicates: boolean;
  seen: Set<string>;
  timer?: SimEvent;
}

interface Initiating {
  extended: boolean;
  /** Own_Address_Type of the create command (0 public, 1 random). */
  ownAddressType?: number;
  filterPolicy: number;
  peerAddressType: number;
  peerAddress: string;
  intervalMinUs: number;
  intervalMaxUs: number;
  latency: number;
  supervisionTimeoutUs: number;
  failTimer?: SimEvent;
}

interface AdvSet {
  params?: HciCommandOf<'leSetExtendedAdvertisingParameters'>;
  data: Uint8Array;
  scanRsp: Uint8Array;
  enabled: boolean;
  randomAddress?: string;
  timer?: SimEvent;
}

export class SimController implements LinkOwner {
  readonly address: string;
  readonly stats: ControllerStats = {
    commands: 0, aclFromHost: 0, aclToHost: 0, aclOverruns: 0, aclUnknownHandle: 0, commandOverruns: 0,
    advertisingReports: 0, connections: 0,
  };
  readonly links = new Map<number, SimLink>();
  /** Every command kind received, in order (for tests). */
  readonly commandLog: string[] = [];
  readonly acl: { length: number; count: number };
  /** Fault injection: per command kind, a status or 'silent'; `times` limits how often (default always). */
  readonly commandFaults = new Map<string, { result: number | 'silent'; times: number }>();

  eventMask = DEFAULT_EVENT_MASK;
  /** Set Event Mask Page 2 (Vol 4, Part E, 7.3.69); all zero after a reset. Bit 25: Encryption Change [v2]. */
  eventMaskPage2 = 0n;
  leEventMask = DEFAULT_LE_EVENT_MASK;
  randomAddress: string | undefined;
  private family: 'none' | 'legacy' | 'extended' = 'none';
  private scanParams: { extended: boolean; active: boolean; duty: number; ownType?: number } = { extended: false, active: false, duty: 1 };
  scan: ScanState | undefined;
  initiating: Initiating | undefined;
  private readonly advTimers = new Map<VirtualPeripheral, SimEvent>();
  private readonly acceptList = new Set<string>();
  /**
   * The resolving list (Vol 6, Part B, 4.7): "type/ADDRESS" of a peer identity → its IRK, our local
   * IRK (both as HCI carries them, least significant octet first) and the RPA made from that local IRK
   * (new after each RPA timeout). At most options.resolvingListSize entries (default 8).
   */
  private readonly resolvingList = new Map<string, ResolvingEntry>();
  /** LE Set Address Resolution Enable (7.8.44); off after reset. */
  addressResolution = false;
  /** LE Set Resolvable Private Address Timeout (7.8.45), seconds; 900 after reset. */
  rpaTimeoutS = 900;
  /** The next RPA timeout while a set advertises from a controller RPA (armRpaTimer). */
  private rpaTimer: SimEvent | undefined;
  /** Air address → what the list made of it (null: nobody in it); cleared when the list changes. */
  private readonly resolvedAir = new Map<string, { type: 2 | 3; address: string } | null>();
  private nextHandle = 0x0040;
  private readonly buffers: SimAclBuffers;
  private outstandingCommands = 0;
  private suggestedDataLength = { octets: 27, time: 328 };
  private defaultPhy = { tx: 0, rx: 0 };
  private legacyAdv: { enabled: boolean; data: Uint8Array; scanRsp: Uint8Array; params: unknown; timer?: SimEvent | undefined } =
    { enabled: false, data: new Uint8Array(0), scanRsp: new Uint8Array(0), params: undefined };
  readonly advSets = new Map<number, AdvSet>();
  /** LE Long Term Key Requests raised for a central on the air, by link handle: the central's continuation. */
  private readonly pendingLtkRequests = new Map<number, (key: Uint8Array | undefined) => void>();
  private readonly pendingParamRequests = new Map<number, { intervalMinMs: number; intervalMaxMs: number; latency: number; timeoutMs: number }>();
  private readonly peerByHandle = new Map<number, VirtualPeripheral>();
  /** The shared air this controller is on (other controllers hear its advertising), if any. */
  air: SimAir | undefined;
  private hostAdv: HostAdvertiser[] = [];

  constructor(
    readonly options: SimControllerOptions,
    readonly clock: SimClock,
    private readonly rng: Rng,
    readonly peripherals: VirtualPeripheral[],
    private readonly toHost: (packet: Uint8Array) => void,
  ) {
    this.address = normAddress(options.address ?? 'C0:FF:EE:00:00:01');
    this.acl = options.aclBuffers ?? { length: 251, count: 8 };
    this.buffers = new SimAclBuffers(this.acl.length, this.acl.count);
    for (const [kind, result] of Object.entries(options.commandErrors ?? {})) {
      this.commandFaults.set(kind, { result, times: Infinity });
    }
  }

  get extended(): boolean {
    return this.options.extended ?? true;
  }

  /** Commands this controller answers (its supported-commands mask is built from these). */
  implemented(kind: string): kind is SimCommandKind {
    if (kind === 'readLocalSupportedCommands') return true;
    if (!Object.prototype.hasOwnProperty.call(SIM_COMMAND_BITS, kind)) return false;
    if (!this.extended && EXTENDED_ONLY.has(kind)) return false;
    if (!(this.options.dataLength ?? true) && DATA_LENGTH_COMMANDS.has(kind)) return false;
    if (!(this.options.bufferSizeV2 ?? true) && kind === 'leReadBufferSizeV2') return false;
    return true;
  }

  /** Supported_Commands (64 octets, Vol 4, Part E, 7.4.2). */
  supportedCommands(): Uint8Array {
    const m = new Uint8Array(64);
    for (const [kind, [octet, bit]] of Object.entries(SIM_COMMAND_BITS)) {
      if (this.implemented(kind)) m[octet]! |= 1 << bit;
    }
    return m;
  }

  /** LE features (Vol 6, Part B, 4.6). */
  leFeatures(): bigint {
    const f: Array<keyof typeof LE_FEATURES.bits> = ['encryption', 'connectionParametersRequest', 'extendedRejectIndication',
      'peripheralInitiatedFeaturesExchange', 'ping', 'channelSelectionAlgorithm2'];
    if (this.options.dataLength ?? true) f.push('dataPacketLengthExtension');
    if (this.options.phy2m ?? true) f.push('le2mPhy');
    if (this.options.phyCoded ?? false) f.push('leCodedPhy');
    if (this.extended) f.push('extendedAdvertising');
    if (this.llPrivacy) f.push('llPrivacy');
    return LE_FEATURES.pack(f);
  }

  /**
   * LL Privacy (LE feature bit 6): resolving in the link layer and our RPAs from a list entry's local
   * IRK. Off (options.llPrivacy false) the controller keeps the list and resolves nothing, as btvirt.
   */
  private get llPrivacy(): boolean {
    return (this.options.llPrivacy ?? true) && (this.options.resolvingListSize ?? 8) > 0;
  }

  /** PHY as the HCI numbers it (1 = 1M, 2 = 2M, 3 = Coded): does this controller support it? */
  hasPhy(phy: number): boolean {
    return phy === 1 || (phy === 2 && (this.phys & 2) !== 0) || (phy === 3 && (this.phys & 4) !== 0);
  }

  private get phys(): number {
    return 1 | ((this.options.phy2m ?? true) ? 2 : 0) | ((this.options.phyCoded ?? false) ? 4 : 0);
  }

  // ---- host → controller -----------------------------------------------------------------------------

  receive(packet: Uint8Array): void {
    switch (packet[0]) {
      case H4.command: return this.receiveCommand(packet);
      case H4.acl: return this.receiveAcl(packet);
      default:
        log.sim('dropped a host packet with indicator %d', packet[0]);
    }
  }

  private receiveCommand(packet: Uint8Array): void {
    this.stats.commands++;
    if (packet.length < 4) return;
    const opcode = packet[1]! | (packet[2]! << 8);
    if (this.outstandingCommands >= 1) this.stats.commandOverruns++;
    let cmd;
    try {
      cmd = decodeHciPacket(packet);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.commandLog.push(`invalid:0x${opcode.toString(16)}`);
      return this.answerStatus(opcode, COMMAND_TABLE.kindOf(opcode), S.invalidParameters);
    }
    if (cmd.type !== 'command') return;
    const kind = cmd.kind;
    this.commandLog.push(kind);
    const fault = this.commandFaults.get(kind);
    if (fault && fault.times > 0) {
      fault.times--;
      if (fault.result === 'silent') return;
      return this.answerStatus(opcode, kind === 'unknown' || kind === 'vendor' ? undefined : kind, fault.result);
    }
    if (kind === 'unknown' || kind === 'vendor' || !this.implemented(kind)) {
      return this.answerStatus(opcode, undefined, S.unknownCommand);
    }
    if (this.extended && (LEGACY_FAMILY.has(kind) || EXTENDED_ONLY.has(kind))) {
      const family = EXTENDED_ONLY.has(kind) ? 'extended' : 'legacy';
      const neutral = kind === 'leReadMaximumAdvertisingDataLength' || kind === 'leReadNumberOfSupportedAdvertisingSets';
      if (!neutral) {
        if (this.family !== 'none' && this.family !== family) return this.answerStatus(opcode, kind, S.commandDisallowed);
        this.family = family;
      }
    }
    const handler = HANDLERS[kind] as Handler<typeof kind>;
    handler(this, cmd as never);
    if (this.air && AIR_COMMANDS.has(kind)) this.airChanged();
  }

  private receiveAcl(packet: Uint8Array): void {
    this.stats.aclFromHost++;
    let a;
    try {
      a = decodeAcl(packet);
    } catch {
      this.stats.aclOverruns++;
      return;
    }
    const link = this.links.get(a.handle);
    if (!link) {
      this.stats.aclUnknownHandle++;
      return;
    }
    if (!this.buffers.take(a.handle, a.data.length)) {
      // The host broke flow control (Vol 4, Part E, 4.1.1): the packet is lost.
      this.stats.aclOverruns++;
      this.emit({ kind: 'dataBufferOverflow', linkType: 0x01 });
      return;
    }
    link.fromHost(a.pb !== 0b01, a.data);
  }

  // ---- controller → host -----------------------------------------------------------------------------

  /** Schedule a packet for the host (after `delayUs`), preserving order among equal times. */
  private deliver(packet: Uint8Array, delayUs = 0): void {
    this.clock.schedule(delayUs, () => this.toHost(packet));
  }

  /** Send an event if the masks let it through. */
  emit(evt: HciEvent, delayUs = 0): void {
    if (!this.allowed(evt)) return;
    this.deliver(encodeEvent(evt), delayUs);
  }

  /** The controller models Core 5.3 or later and can send Encryption Change [v2] (default true). */
  get encryptionChangeV2(): boolean {
    return this.options.encryptionChangeV2 ?? true;
  }

  /**
   * Encryption Change (Vol 4, Part E, 7.7.8): [v2], which carries the key size, when the host
   * unmasked it (Set Event Mask Page 2, bit 25) on a controller that has it; [v1] otherwise.
   */
  encryptionChange(handle: number, status: number, enabled: number, keySize: number): void {
    if (this.encryptionChangeV2 && (this.eventMaskPage2 & (1n << 25n)) !== 0n) {
      this.emit({ kind: 'encryptionChangeV2', status, connectionHandle: handle, encryptionEnabled: enabled, encryptionKeySize: status === 0 ? keySize : 0 });
    } else {
      this.emit({ kind: 'encryptionChange', status, connectionHandle: handle, encryptionEnabled: enabled });
    }
  }

  private allowed(evt: HciEvent): boolean {
    if (evt.kind === 'encryptionChangeV2') return (this.eventMaskPage2 & (1n << 25n)) !== 0n;
    const code = evt.kind === 'vendor' || evt.kind === 'unknown' ? evt.code : undefined;
    if (evt.kind === 'commandComplete' || evt.kind === 'commandStatus' || evt.kind === 'numberOfCompletedPackets') return true;
    if (code !== undefined) return true;
    const le = LE_SUBEVENT[evt.kind];
    if (le !== undefined) return this.leUnmasked(le);
    const c = EVENT_CODE[evt.kind];
    return c === undefined || (this.eventMask & (1n << BigInt(c - 1))) !== 0n;
  }

  leUnmasked(subevent: number): boolean {
    return (this.eventMask & (1n << 61n)) !== 0n && (this.leEventMask & (1n << BigInt(subevent - 1))) !== 0n;
  }

  private latency(): number {
    return this.options.commandLatencyUs ?? 50;
  }

  complete<K extends HciCommandKind>(kind: K, ret: Omit<CommandReturn<K>, 'status'> & { status?: number } = {} as never): void {
    const returnParameters = { kind, status: 0, ...ret } as unknown as ReturnParameters;
    this.outstandingCommands = 0;
    this.emit({ kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: COMMAND_TABLE.codeOf(kind), returnParameters },
      this.latency());
  }

  status(kind: HciCommandKind, status: number = S.success): void {
    this.outstandingCommands = 0;
    this.emit({ kind: 'commandStatus', status, numHciCommandPackets: 1, commandOpcode: COMMAND_TABLE.codeOf(kind) }, this.latency());
  }

  /**
   * A failure: Command Status for commands that complete that way, else a Command Complete with the
   * status alone (on failure only the status is guaranteed, Vol 4, Part E, 7.7.14).
   */
  answerStatus(opcode: number, kind: HciCommandKind | undefined, status: number): void {
    this.outstandingCommands = 0;
    const row = kind ? (HCI_COMMANDS[kind] as { completes?: string }) : undefined;
    if (row?.completes === 'status') {
      this.emit({ kind: 'commandStatus', status, numHciCommandPackets: 1, commandOpcode: opcode }, this.latency());
      return;
    }
    const returnParameters: ReturnParameters = kind
      ? { kind, status, statusOnly: true }
      : { kind: 'unknown', data: Uint8Array.of(status) };
    this.emit({ kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: opcode, returnParameters }, this.latency());
  }

  fail(kind: HciCommandKind, status: number): void {
    this.answerStatus(COMMAND_TABLE.codeOf(kind), kind, status);
  }

  // ---- LinkOwner -------------------------------------------------------------------------------------

  aclToHost(handle: number, pb: number, data: Uint8Array): void {
    this.stats.aclToHost++;
    this.deliver(encodeAcl({ handle, pb, data }));
  }

  completed(handle: number, count: number): void {
    const n = this.buffers.complete(handle, count);
    if (n <= 0) return;
    this.emit({ kind: 'numberOfCompletedPackets', handles: [{ connectionHandle: handle, numCompletedPackets: n }] });
  }

  linkClosed(link: SimLink, reason: number, notify = true): void {
    this.links.delete(link.handle);
    // Buffers of a closed link are free again, with no Number Of Completed Packets (Vol 4, Part E, 4.3).
    this.buffers.release(link.handle);
    this.pendingParamRequests.delete(link.handle);
    this.pendingLtkRequests.delete(link.handle);
    const p = this.peerByHandle.get(link.handle);
    this.peerByHandle.delete(link.handle);
    if (notify) this.emit({ kind: 'disconnectionComplete', status: 0, connectionHandle: link.handle, reason });
    if (p) this.updateAdvertiser(p);
  }

  // ---- radio: advertisers, scanning, initiating ------------------------------------------------------

  private get listening(): boolean {
    return this.scan !== undefined || this.initiating !== undefined;
  }

  /** Start or stop the radio events of every advertiser, after scanning / initiating / links changed. */
  updateAdvertisers(): void {
    const peers = this.radioPeers();
    for (const p of peers) this.updateAdvertiser(p);
    if (this.air) {
      // Advertising sets of other controllers that changed or stopped: their old radio events end.
      for (const [p, t] of this.advTimers) {
        if (!peers.includes(p)) {
          t.cancel();
          this.advTimers.delete(p);
        }
      }
    }
  }

  /** Everything this controller's radio may hear: the scenario's peripherals and, on a shared air, the other hosts' advertising. */
  private radioPeers(): VirtualPeripheral[] {
    return this.air ? [...this.peripherals, ...this.air.advertisersFor(this)] : this.peripherals;
  }

  /** This host's enabled advertising sets as the air sees them (rebuilt by airChanged). */
  hostAdvertisers(): HostAdvertiser[] {
    return this.hostAdv;
  }

  /** The host changed its advertising (or a connection ended it): rebuild what the air hears. */
  airChanged(): void {
    if (!this.air) return;
    const sets: HostAdvertisingSet[] = [];
    const usedEntries = new Set<string>();
    // Own_Address_Type (7.8.5 / 7.8.53): 0x02 / 0x03 ask for an RPA from the local IRK of the list
    // entry that Peer_Address names (Vol 6, Part B, 6.4), made anew each RPA timeout; without such an
    // entry (or with resolution off) the public address (0x02) or the random one (0x03).
    const own = (type: number, setAddress: string | undefined, peerType: number, peer: string):
      { address: string; addressType: 0 | 1; localRpa?: boolean } => {
      if (type >= 2) {
        const id = { type: peerType === 0 ? 2 : 3, address: peer.toUpperCase() } as const;
        const rpa = this.addressResolution ? this.localRpaFor(id) : undefined;
        if (rpa !== undefined) {
          usedEntries.add(`${peerType === 0 ? 0 : 1}/${id.address}`);
          return { address: rpa, addressType: 1, localRpa: true };
        }
      }
      return type === 1 || type === 3 ? { address: setAddress ?? this.randomAddress ?? this.address, addressType: 1 } : { address: this.address, addressType: 0 };
    };
    // TargetA of directed advertising (Vol 4, Part E, 7.8.5 / 7.8.53; Vol 6, Part B, 6.4): with
    // Own_Address_Type 0x02 / 0x03 and resolution on, the controller makes the peer's RPA from the peer
    // IRK of the entry Peer_Address names (new each RPA timeout); otherwise Peer_Address itself.
    const target = (type: number, peerType: number, peer: string): string => {
      const key = `${peerType === 0 ? 0 : 1}/${peer.toUpperCase()}`;
      const rpa = type >= 2 && this.addressResolution ? this.peerRpaFor(key) : undefined;
      if (rpa === undefined) return peer.toUpperCase();
      usedEntries.add(key);
      return rpa;
    };
    const legacy = this.legacyAdv;
    const lp = legacy.params as HciCommandOf<'leSetAdvertisingParameters'> | undefined;
    if (legacy.enabled && lp) {
      // Advertising_Type (Vol 4, Part E, 7.8.5): 0 ADV_IND, 1 / 4 ADV_DIRECT_IND, 2 ADV_SCAN_IND, 3 ADV_NONCONN_IND.
      const t = lp.advertisingType;
      // High duty cycle directed: ADV_DIRECT_IND every 3.75 ms or less, its interval fields unused (Vol 6, Part B, 4.4.2.4.3).
      sets.push({ key: -1, ...own(lp.ownAddressType, undefined, lp.peerAddressType, lp.peerAddress), extended: false, connectable: t === 0 || t === 1 || t === 4,
        scannable: t === 0 || t === 2, directedTo: t === 1 || t === 4 ? target(lp.ownAddressType, lp.peerAddressType, lp.peerAddress) : undefined,
        intervalMs: t === 1 ? 3.75 : lp.advertisingIntervalMin * 0.625, sid: 0, txPower: 127, primaryPhy: 1, secondaryPhy: 0,
        data: t === 1 || t === 4 ? new Uint8Array(0) : legacy.data, scanRsp: legacy.scanRsp });
    }
    for (const [handle, set] of this.advSets) {
      const p = set.params;
      if (!set.enabled || !p) continue;
      // Advertising_Event_Properties (7.8.53): bit 0 connectable, 1 scannable, 2 directed, 4 legacy, 6 include TX power.
      const props = p.advertisingEventProperties;
      sets.push({ key: handle, ...own(p.ownAddressType, set.randomAddress, p.peerAddressType, p.peerAddress), extended: (props & 0x10) === 0,
        connectable: (props & 0x01) !== 0, scannable: (props & 0x02) !== 0,
        directedTo: props & 0x04 ? target(p.ownAddressType, p.peerAddressType, p.peerAddress) : undefined,
        intervalMs: props & 0x08 ? 3.75 : p.primaryAdvertisingIntervalMin * 0.625, sid: p.advertisingSid,
        primaryPhy: p.primaryAdvertisingPhy, secondaryPhy: props & 0x10 ? 0 : p.secondaryAdvertisingPhy,
        txPower: props & 0x40 ? (p.advertisingTxPower === 127 ? 0 : Math.min(p.advertisingTxPower, 10)) : 127,
        data: set.data, scanRsp: set.scanRsp });
    }
    // Keep the object of a set that did not change, so the other radios keep its advertising events.
    this.hostAdv = sets.map(d => this.hostAdv.find(h => sameSet(h.set, d)) ?? new HostAdvertiser(this, d));
    this.air.changed(this);
    this.armRpaTimer(usedEntries);
  }

  /**
   * While a set advertises from an RPA this controller made, the RPA timeout (7.8.45) ends that
   * address: one timer on the simulated clock, at the timeout after the entries' RPAs were made, that
   * rebuilds what the air hears (localRpaFor makes the new addresses). Cleared when no set needs it.
   */
  private armRpaTimer(entries: ReadonlySet<string>): void {
    this.rpaTimer?.cancel();
    this.rpaTimer = undefined;
    let due = Infinity;
    for (const key of entries) {
      const e = this.resolvingList.get(key);
      for (const made of [e?.localRpa, e?.peerRpa]) if (made) due = Math.min(due, made.atUs + this.rpaTimeoutS * 1e6);
    }
    if (!Number.isFinite(due)) return;
    this.rpaTimer = this.clock.scheduleAt(Math.max(due, this.clock.micros + 1), () => {
      this.rpaTimer = undefined;
      this.airChanged();
    });
  }

  /**
   * LE Read Local Resolvable Address (7.8.43): our current RPA for a listed identity; Unknown
   * Connection Identifier for one not in the list. Zero without a local IRK or with resolution off.
   */
  localResolvableAddress(type: number, address: string): string | number {
    if (type > 1) return S.invalidParameters;
    if (!this.resolvingList.has(`${type}/${address.toUpperCase()}`)) return S.unknownConnection;
    return (this.addressResolution ? this.localRpaFor({ type: type === 0 ? 2 : 3, address: address.toUpperCase() }) : undefined) ?? ZERO_ADDR;
  }

  /**
   * A central on the air connected to one of our host's sets: our side of the link (role peripheral),
   * LE (Enhanced) Connection Complete, and for an extended set LE Advertising Set Terminated after it
   * (Vol 4, Part E, 7.7.65.18); connectable advertising stops with its connection (Vol 6, Part B, 4.4.2).
   */
  acceptFromAir(key: number, central: AirConnectRequest, peer: LinkPeer): SimLink {
    const handle = this.allocHandle();
    const link = new SimLink(this, handle, central.address, central.addressType,
      { intervalUs: central.intervalUs, latency: central.latency, supervisionTimeoutUs: central.supervisionTimeoutUs }, central.firstAnchorUs);
    const peerId = this.resolveAir(central.address, central.addressType);
    if (peerId) link.peerIdentity = peerId;
    // The set advertised from an RPA we made: LE Enhanced Connection Complete names it (7.7.65.10).
    const ours = this.hostAdv.find(h => h.set.key === key);
    if (ours?.set.localRpa) link.localRpa = ours.set.address;
    link.peer = peer;
    this.links.set(handle, link);
    this.buffers.open(handle);
    this.stats.connections++;
    const extended = key >= 0;
    if (extended) {
      const set = this.advSets.get(key);
      if (set) {
        set.enabled = false;
        set.timer?.cancel();
        set.timer = undefined;
      }
    } else {
      this.legacyAdv.enabled = false;
    }
    this.connectionComplete(extended, S.success, link, 1, extended ? key : 0xff);
    if (extended) {
      this.emit({ kind: 'leAdvertisingSetTerminated', status: 0, advertisingHandle: key, connectionHandle: handle, numCompletedExtendedAdvertisingEvents: 0 });
    }
    this.airChanged();
    return link;
  }

  private advertising(p: VirtualPeripheral): boolean {
    if (!p.spec.advertising || !p.onAir) return false;
    if (p.session && !(p.spec.advertising.whileConnected ?? false)) return false;
    return true;
  }

  private updateAdvertiser(p: VirtualPeripheral): void {
    const on = this.listening && this.advertising(p);
    const t = this.advTimers.get(p);
    if (on && !t) {
      const startUs = (p.spec.advertising?.startMs ?? 0) * 1000;
      const first = Math.max(startUs, this.clock.micros + this.rng.int(0, p.intervalUs));
      this.advTimers.set(p, this.clock.scheduleAt(first, () => this.advertisingEvent(p)));
    } else if (!on && t) {
      t.cancel();
      this.advTimers.delete(p);
    }
  }

  /** One advertising event of p (Vol 6, Part B, 4.4.2): maybe heard by our scanner or initiator. */
  private advertisingEvent(p: VirtualPeripheral): void {
    this.advTimers.delete(p);
    if (!this.listening || !this.advertising(p)) return;
    // advDelay: 0–10 ms of random delay per event (Vol 6, Part B, 4.4.2.2.1).
    this.advTimers.set(p, this.clock.schedule(p.intervalUs + this.rng.int(0, 10_000), () => this.advertisingEvent(p)));
    p.rotate(this.clock.micros, this.rng);
    const rssi = p.driftRssi(this.rng);
    if (rssi < -100) return; // below sensitivity
    const init = this.initiating;
    // A radio hears PDUs only on the PHYs it has (Vol 6, Part B, 2.3.4: AUX_ADV_IND on the secondary PHY).
    const phys = (p as { phys?: { primary: number; secondary: number } }).phys;
    if (phys && (!this.hasPhy(phys.primary) || (phys.secondary !== 0 && !this.hasPhy(phys.secondary)))) return;
    // A directed PDU is for its TargetA only (Vol 6, Part B, 2.3.1.2): others neither report nor answer it.
    const directedTo = (p as { directedTo?: string }).directedTo;
    if (directedTo !== undefined && !this.directedAtUs(directedTo, p, init?.ownAddressType ?? this.scanOwnType)) return;
    if (init && p.connectable && !p.session && this.targets(init, p)) {
      if (!init.extended && p.extended) return; // a legacy initiator does not follow ADV_EXT_IND
      this.establish(p, init);
      return;
    }
    const scan = this.scan;
    if (!scan) return;
    if (!scan.extended && p.extended) return; // legacy scanners only hear legacy PDUs
    if (scan.duty < 1 && this.rng.next() >= scan.duty) return;
    this.report(p, scan, rssi, false);
    const scannable = directedTo === undefined && (p.extended ? p.scannable && !p.connectable : p.connectable || p.scannable);
    if (scan.active && scannable) this.report(p, scan, rssi, true);
  }

  private targets(init: Initiating, p: VirtualPeripheral): boolean {
    if (init.filterPolicy === 1) return this.acceptList.has(`${p.addressType}/${p.address}`);
    if (init.peerAddressType >= 2) {
      // An identity (7.8.12, 0x02 / 0x03): whatever address of it the resolving list resolves.
      const id = this.resolveAir(p.address, p.addressType);
      return id !== undefined && id.type === init.peerAddressType && id.address === init.peerAddress;
    }
    return init.peerAddress === p.address && init.peerAddressType === p.addressType;
  }

  private report(p: VirtualPeripheral, scan: ScanState, rssi: number, scanRsp: boolean): void {
    const key = `${p.addressType}/${p.address}/${scanRsp ? 1 : 0}`;
    if (scan.filterDuplicates) {
      if (scan.seen.has(key)) return;
      scan.seen.add(key);
    }
    this.stats.advertisingReports++;
    const data = scanRsp ? p.scanRspData : p.advData;
    // An RPA the resolving list resolves is reported as its identity, type 0x02 / 0x03 (7.7.65.2).
    const id = this.resolveAir(p.address, p.addressType);
    if (!id && this.ignoredIdentity(p.address, p.addressType)) return;
    const addressType = id ? id.type : p.addressType, address = id ? id.address : p.address;
    // Directed PDUs reach here only at their TargetA: ADV_DIRECT_IND (7.7.65.2) or the directed bit
    // with Direct_Address (7.7.65.13); they carry no scan response.
    const targetA = (p as { directedTo?: string }).directedTo ?? ZERO_ADDR;
    const directed = (p as { directedTo?: string }).directedTo !== undefined;
    if (!scan.extended) {
      // The legacy Event_Type (Vol 4, Part E, 7.7.65.2) names the PDU.
      const eventType = scanRsp ? LegacyAdvEventType.ScanRsp : directed ? LegacyAdvEventType.AdvDirectInd
        : p.connectable ? LegacyAdvEventType.AdvInd : p.scannable ? LegacyAdvEventType.AdvScanInd : LegacyAdvEventType.AdvNonconnInd;
      this.emit({ kind: 'leAdvertisingReport', reports: [{ eventType, addressType, address, data: directed ? new Uint8Array(0) : data, rssi }] });
      return;
    }
    const adv = p.spec.advertising ?? {};
    // Legacy PDUs in extended reports (7.7.65.13, Table 7.1) set the legacy bit: ADV_IND 0x13,
    // ADV_SCAN_IND 0x12, ADV_NONCONN_IND 0x10, SCAN_RSP to ADV_IND 0x1B / to ADV_SCAN_IND 0x1A.
    // Extended PDUs: connectable, or scannable (never both, Vol 6, Part B, 2.3.4), and a scan response.
    const eventType = EXT_ADV_EVENT_TYPE.pack({
      legacy: !p.extended,
      connectable: p.connectable,
      scannable: !directed && (scanRsp || (p.extended ? p.scannable && !p.connectable : p.connectable || p.scannable)),
      directed,
      scanResponse: scanRsp,
    });
    const phys = (p as { phys?: { primary: number; secondary: number } }).phys;
    const base = {
      addressType, address, primaryPhy: phys?.primary ?? 1, secondaryPhy: p.extended ? (phys?.secondary || 1) : 0,
      advertisingSid: p.extended ? (adv.sid ?? 0) : 0xff, txPower: adv.txPower ?? 127, rssi,
      periodicAdvertisingInterval: 0,
      // TargetA as it was on the air: our own address, or an RPA of ours the resolving list resolved (random).
      directAddressType: directed ? (targetA !== this.ownAddress(this.scanOwnType) ? 1 : this.scanOwnType & 1) : 0,
      directAddress: directed ? targetA : ZERO_ADDR,
    };
    // Data longer than one event is split; all but the last fragment carry Data Status 01 "incomplete,
    // more data to come" in bits 5–6 (7.7.65.13).
    let o = 0;
    do {
      const end = Math.min(data.length, o + EXT_REPORT_MAX_DATA);
      const more = end < data.length;
      const status = more ? EXT_ADV_EVENT_TYPE.pack({ dataStatus: ExtAdvDataStatus.Incomplete }) : 0;
      this.emit({ kind: 'leExtendedAdvertisingReport', reports: [{ ...base, eventType: eventType | status, data: data.subarray(o, end) }] });
      o = end;
    } while (o < data.length);
  }

  private establish(p: VirtualPeripheral, init: Initiating): void {
    const interval = this.pickInterval(init.intervalMinUs, init.intervalMaxUs);
    if (p.spec.behaviour?.failToEstablish) {
      // The peer never answers in the first six events: Connection Failed to be Established (Vol 6, Part B, 4.5.2).
      this.initiating = undefined;
      this.updateAdvertisers();
      this.clock.schedule(1250 + 6 * interval, () => this.connectionComplete(init.extended, S.failedToEstablish));
      return;
    }
    this.initiating = undefined;
    const handle = this.allocHandle();
    // CONNECT_IND, then the transmit window (1.25 ms + offset, Vol 6, Part B, 4.5.3): first anchor.
    const link = new SimLink(this, handle, p.address, p.addressType,
      { intervalUs: interval, latency: init.latency, supervisionTimeoutUs: init.supervisionTimeoutUs },
      this.clock.micros + 2500);
    const peerId = this.resolveAir(p.address, p.addressType);
    if (peerId) link.peerIdentity = peerId;
    // Own_Address_Type 0x02 / 0x03 (7.8.12): our RPA from the local IRK of the peer's entry, if it has one.
    const ownType = init.ownAddressType ?? 0;
    // The entry is the peer's identity whether it advertised from an RPA or from the identity itself.
    const entry = peerId ?? (this.resolvingList.has(`${p.addressType}/${p.address.toUpperCase()}`)
      ? { type: p.addressType === 0 ? 2 : 3, address: p.address.toUpperCase() } as const : undefined);
    if (ownType >= 2 && entry) link.localRpa = this.localRpaFor(entry);
    this.links.set(handle, link);
    this.peerByHandle.set(handle, p);
    this.buffers.open(handle);
    this.stats.connections++;
    const api: PeerLinkApi = {
      handle,
      clock: this.clock.internal,
      send: (cid, payload) => link.fromPeer(encodeL2capFrame(cid, payload)),
      terminate: reason => link.terminate(reason, reason),
      requestParameters: r => this.peerParameterRequest(link, r),
      schedule: (us, fn) => this.clock.schedule(us, fn),
      central: { address: link.localRpa ?? this.ownAddress(ownType), addressType: link.localRpa ? 1 : ownType & 1,
        intervalUs: interval, latency: init.latency, supervisionTimeoutUs: init.supervisionTimeoutUs, firstAnchorUs: this.clock.micros + 2500 },
    };
    link.peer = p.connect(api, this.rng);
    // Another host on the air: each side's bridge knows the other side's link (data length changes both).
    if (link.peer instanceof AirBridge && link.peer.remote) {
      const remote = link.peer.remote;
      link.peer.other = remote;
      if (remote.link.peer instanceof AirBridge) remote.link.peer.other = { controller: this, link };
    }
    this.connectionComplete(init.extended, S.success, link);
    this.updateAdvertisers();
  }

  private pickInterval(minUs: number, maxUs: number): number {
    const pref = this.options.preferredIntervalMs;
    const want = pref === undefined ? minUs : Math.round(pref * 1000);
    const v = Math.max(minUs, Math.min(maxUs, want));
    return Math.round(v / 1250) * 1250;
  }

  private allocHandle(): number {
    for (let i = 0; i < 0x0eff; i++) {
      const h = this.nextHandle;
      this.nextHandle = this.nextHandle >= 0x0eff ? 0x0040 : this.nextHandle + 1;
      if (!this.links.has(h)) return h;
    }
    throw new InvalidStateError('sim: out of connection handles (0x0EFF links open)');
  }

  /**
   * Legacy high duty cycle directed advertising that no central answered within 1.28 s (Vol 6, Part B,
   * 4.4.2.4.3): the controller stops it and says so with LE Connection Complete, status Advertising
   * Timeout, role peripheral (Vol 4, Part E, 7.8.9).
   */
  directedAdvertisingTimeout(): void {
    this.legacyAdv.enabled = false;
    this.legacyAdv.timer = undefined;
    this.connectionComplete(false, 0x3c, undefined, 1);
    this.airChanged();
  }

  /** The connection-complete event the masks ask for (Vol 4, Part E, 7.7.65.1 / .10). */
  private connectionComplete(extended: boolean, status: number, link?: SimLink, role = 0, advertisingHandle = 0xff): void {
    const common = {
      status, connectionHandle: link?.handle ?? 0, role, peerAddressType: link?.peerAddressType ?? 0,
      peerAddress: link?.peerAddress ?? ZERO_ADDR, connectionInterval: link ? link.intervalUs / 1250 : 0,
      peripheralLatency: link?.latency ?? 0, supervisionTimeout: link ? link.supervisionTimeoutUs / 10_000 : 0,
      centralClockAccuracy: 0,
    };
    // Enhanced (7.7.65.10): a peer the resolving list resolved is named by its identity, type 0x02 /
    // 0x03, with the RPA it used; our RPA when the controller made one. The legacy event has neither.
    const id = link?.peerIdentity;
    const enhanced = { ...common, ...(id ? { peerAddressType: id.type, peerAddress: id.address } : {}),
      localResolvablePrivateAddress: link?.localRpa ?? ZERO_ADDR, peerResolvablePrivateAddress: id ? link!.peerAddress : ZERO_ADDR };
    if (this.leUnmasked(0x29)) this.emit({ kind: 'leEnhancedConnectionCompleteV2', ...enhanced, advertisingHandle, syncHandle: 0xffff });
    else if (this.leUnmasked(0x0a)) this.emit({ kind: 'leEnhancedConnectionComplete', ...enhanced });
    else this.emit({ kind: 'leConnectionComplete', ...common });
    // After an extended connection, LE Channel Selection Algorithm (7.7.65.20): CSA #2.
    if (link && extended) this.emit({ kind: 'leChannelSelectionAlgorithm', connectionHandle: link.handle, channelSelectionAlgorithm: 1 });
  }

  // ---- procedures on links ---------------------------------------------------------------------------

  link(handle: number): SimLink | undefined {
    return this.links.get(handle & 0x0fff);
  }

  /**
   * A central on the air starts encryption on our (peripheral) link: our host gets LE Long Term Key
   * Request (Vol 4, Part E, 7.7.65.5) and `answer` its reply (undefined: a Negative Reply, or the event
   * is masked, or the link went).
   */
  ltkRequestFromAir(link: SimLink, ediv: number, rand: Uint8Array, answer: (key: Uint8Array | undefined) => void): void {
    if (link.closed || !this.leUnmasked(0x05)) return answer(undefined);
    this.pendingLtkRequests.get(link.handle)?.(undefined);
    this.pendingLtkRequests.set(link.handle, answer);
    this.emit({ kind: 'leLongTermKeyRequest', connectionHandle: link.handle, randomNumber: rand, encryptedDiversifier: ediv });
  }

  /** Our host's LTK Request (Negative) Reply: the pending request's continuation, or undefined when none. */
  takeLtkRequest(handle: number): ((key: Uint8Array | undefined) => void) | undefined {
    const a = this.pendingLtkRequests.get(handle & 0x0fff);
    this.pendingLtkRequests.delete(handle & 0x0fff);
    return a;
  }

  peerOf(link: SimLink): VirtualPeripheral | undefined {
    return this.peerByHandle.get(link.handle);
  }

  private peerParameterRequest(link: SimLink, r: { intervalMinMs: number; intervalMaxMs: number; latency: number; timeoutMs: number }): void {
    if (link.closed) return;
    // Masked out: the controller itself rejects the peer's request (Vol 6, Part B, 5.1.7.1).
    if (!this.leUnmasked(0x06)) return;
    this.pendingParamRequests.set(link.handle, r);
    this.emit({
      kind: 'leRemoteConnectionParameterRequest', connectionHandle: link.handle,
      intervalMin: Math.round(r.intervalMinMs / 1.25), intervalMax: Math.round(r.intervalMaxMs / 1.25),
      maxLatency: r.latency, timeout: Math.round(r.timeoutMs / 10),
    });
  }

  /** Apply new parameters at an instant six events ahead and report LE Connection Update Complete. */
  updateLink(link: SimLink, p: { intervalUs: number; latency: number; supervisionTimeoutUs: number }, status = 0): void {
    link.afterEvents(6, () => {
      if (status === 0) link.applyParameters(p);
      this.emit({
        kind: 'leConnectionUpdateComplete', status, connectionHandle: link.handle, connectionInterval: link.intervalUs / 1250,
        peripheralLatency: link.latency, supervisionTimeout: link.supervisionTimeoutUs / 10_000,
      });
    });
  }

  takeParamRequest(handle: number): boolean {
    return this.pendingParamRequests.delete(handle);
  }

  // ---- scanning / initiating control -------------------------------------------------------------------

  startScan(s: { extended: boolean; filterDuplicates: boolean; durationUs: number }): void {
    this.scan?.timer?.cancel();
    this.scan = { extended: s.extended, active: this.scanParams.active, duty: this.scanParams.duty,
      filterDuplicates: s.filterDuplicates, seen: new Set() };
    if (s.durationUs > 0) {
      const scan = this.scan;
      scan.timer = this.clock.schedule(s.durationUs, () => {
        if (this.scan !== scan) return;
        this.scan = undefined;
        this.updateAdvertisers();
        this.emit({ kind: 'leScanTimeout' });
      });
    }
    this.updateAdvertisers();
  }

  stopScan(): void {
    this.scan?.timer?.cancel();
    this.scan = undefined;
    this.updateAdvertisers();
  }

  setScanParams(p: { extended: boolean; active: boolean; duty: number; ownType?: number }): void {
    this.scanParams = p;
  }

  startInitiating(i: Initiating): void {
    this.initiating = i;
    this.updateAdvertisers();
  }

  cancelInitiating(): boolean {
    const init = this.initiating;
    if (!init) return false;
    this.initiating = undefined;
    this.updateAdvertisers();
    // The pending connection ends with Unknown Connection Identifier (Vol 4, Part E, 7.8.13).
    this.clock.schedule(this.latency() + 10, () => this.connectionComplete(init.extended, S.unknownConnection));
    return true;
  }

  acceptListOp(op: 'add' | 'remove' | 'clear', type = 0, address = ZERO_ADDR): number {
    if (this.initiating?.filterPolicy === 1 || (this.scan && false)) return S.commandDisallowed;
    const key = `${type}/${address}`;
    if (op === 'clear') this.acceptList.clear();
    else if (op === 'remove') this.acceptList.delete(key);
    else {
      if (!this.acceptList.has(key) && this.acceptList.size >= (this.options.filterAcceptListSize ?? 16)) return S.memoryCapacityExceeded;
      this.acceptList.add(key);
    }
    return S.success;
  }

  /** Advertising, scanning or initiating: what 7.8.38-7.8.40 and 7.8.44 refuse list changes during. */
  private get radioBusy(): boolean {
    return this.scan !== undefined || this.initiating !== undefined || this.legacyAdv.enabled ||
      [...this.advSets.values()].some(a => a.enabled);
  }

  /**
   * LE Add Device To / Remove Device From Resolving List, LE Clear Resolving List (7.8.38-7.8.40):
   * refused (Command Disallowed) while address resolution is on and the radio is busy; an identity
   * type is 0x00 / 0x01; an entry already there with other keys is Invalid Parameters (the same keys:
   * success, nothing added); a full list is Memory Capacity Exceeded; removing a missing entry is
   * Unknown Connection Identifier.
   */
  resolvingListOp(op: 'add' | 'remove' | 'clear', type = 0, address = ZERO_ADDR, peerIrk?: Uint8Array, localIrk?: Uint8Array): number {
    if (this.addressResolution && this.radioBusy) return S.commandDisallowed;
    if (op !== 'clear' && type > 1) return S.invalidParameters;
    const key = `${type}/${address.toUpperCase()}`;
    this.resolvedAir.clear();
    if (op === 'clear') {
      this.resolvingList.clear();
      return S.success;
    }
    if (op === 'remove') return this.resolvingList.delete(key) ? S.success : S.unknownConnection;
    const peer = Uint8Array.from(peerIrk ?? new Uint8Array(16)), local = Uint8Array.from(localIrk ?? new Uint8Array(16));
    const had = this.resolvingList.get(key);
    if (had) return sameBytes(had.peerIrk, peer) && sameBytes(had.localIrk, local) ? S.success : S.invalidParameters;
    if (this.resolvingList.size >= (this.options.resolvingListSize ?? 8)) return S.memoryCapacityExceeded;
    this.resolvingList.set(key, { type: type as 0 | 1, address: address.toUpperCase(), peerIrk: peer, localIrk: local });
    return S.success;
  }

  /**
   * LE Set Privacy Mode (Vol 4, Part E, 7.8.77) for an identity in the resolving list: Unknown
   * Connection Identifier for one that is not there, refused while resolution is on and the radio runs.
   */
  setPrivacyMode(type: number, address: string, mode: number): number {
    if (type > 1 || mode > 1) return S.invalidParameters;
    if (this.addressResolution && this.radioBusy) return S.commandDisallowed;
    const e = this.resolvingList.get(`${type}/${address.toUpperCase()}`);
    if (!e) return S.unknownConnection;
    e.privacyMode = mode as 0 | 1;
    return S.success;
  }

  /**
   * Network privacy mode (Vol 6, Part B, 4.7): with resolution on, a peer in the list with an IRK is
   * heard only through its RPAs; its identity address on the air is ignored unless its entry is in
   * device privacy mode.
   */
  private ignoredIdentity(address: string, addressType: number): boolean {
    if (!this.llPrivacy || !this.addressResolution || addressType > 1) return false;
    const e = this.resolvingList.get(`${addressType}/${address.toUpperCase()}`);
    return e !== undefined && e.privacyMode !== 1 && e.peerIrk.some(b => b !== 0);
  }

  /** LE Set Address Resolution Enable (7.8.44): refused while the radio is busy. */
  setAddressResolution(enable: number): number {
    if (enable > 1) return S.invalidParameters;
    if (this.radioBusy) return S.commandDisallowed;
    this.addressResolution = enable === 1;
    this.resolvedAir.clear();
    return S.success;
  }

  /** LE Set Resolvable Private Address Timeout (7.8.45): 0x0001-0xA1B8 seconds. */
  setRpaTimeout(seconds: number): number {
    if (seconds < 1 || seconds > 0xa1b8) return S.invalidParameters;
    this.rpaTimeoutS = seconds;
    return S.success;
  }

  /** Identities in the resolving list now (tests). */
  get resolvingIdentities(): string[] {
    return [...this.resolvingList.keys()];
  }

  /**
   * The identity behind an air address when address resolution is on and a list entry's peer IRK
   * makes it (Vol 6, Part B, 1.3.2.3 with ah from the SMP toolbox's AES, not the host's resolver);
   * remembered per address until the list changes (bounded by RESOLVED_AIR_MAX).
   */
  private resolveAir(address: string, addressType: number): { type: 2 | 3; address: string } | undefined {
    if (!this.llPrivacy || !this.addressResolution || this.resolvingList.size === 0 || addressType !== 1 || !isResolvablePrivateAddress(address)) return undefined;
    const known = this.resolvedAir.get(address);
    if (known !== undefined) return known ?? undefined;
    let found: { type: 2 | 3; address: string } | null = null;
    for (const e of this.resolvingList.values()) {
      if (e.peerIrk.some(b => b !== 0) && rpaMatchesIrk(e.peerIrk, address)) {
        found = { type: e.type === 0 ? 2 : 3, address: e.address };
        break;
      }
    }
    if (this.resolvedAir.size >= RESOLVED_AIR_MAX) this.resolvedAir.clear();
    this.resolvedAir.set(address, found);
    return found ?? undefined;
  }

  /**
   * The peer's RPA for TargetA (its entry's peer IRK, Vol 6, Part B, 6.4), new once the RPA timeout
   * has passed; undefined for an identity not in the list or with a zero peer IRK (TargetA is the identity).
   */
  private peerRpaFor(key: string): string | undefined {
    const e = this.resolvingList.get(key);
    if (!this.llPrivacy || !e || !e.peerIrk.some(b => b !== 0)) return undefined;
    const now = this.clock.micros;
    if (!e.peerRpa || now - e.peerRpa.atUs >= this.rpaTimeoutS * 1e6) {
      e.peerRpa = { address: generateRpa(e.peerIrk, n => this.rng.bytes(n)), atUs: now };
    }
    return e.peerRpa.address;
  }

  /**
   * Is a directed PDU from `p` for us (Vol 6, Part B, 6.2 / 6.3 / 6.5)? TargetA is our own address on
   * the air, or, with resolution on, an RPA of our local IRK of the resolving list entry the
   * advertiser's AdvA resolves to (or is: an identity address in the list).
   */
  private directedAtUs(targetA: string, p: VirtualPeripheral, ownType: number): boolean {
    if (targetA === this.ownAddress(ownType)) return true;
    if (!this.llPrivacy || !this.addressResolution || !isResolvablePrivateAddress(targetA)) return false;
    const id = this.resolveAir(p.address, p.addressType);
    const e = this.resolvingList.get(id ? `${id.type - 2}/${id.address}` : `${p.addressType}/${p.address.toUpperCase()}`);
    return e !== undefined && e.localIrk.some(b => b !== 0) && rpaMatchesIrk(e.localIrk, targetA);
  }

  /** Our RPA for a listed peer (its entry's local IRK), new once the RPA timeout has passed; undefined without a local IRK. */
  private localRpaFor(id: { type: 2 | 3; address: string }): string | undefined {
    const e = this.resolvingList.get(`${id.type - 2}/${id.address}`);
    if (!this.llPrivacy || !e || !e.localIrk.some(b => b !== 0)) return undefined;
    const now = this.clock.micros;
    if (!e.localRpa || now - e.localRpa.atUs >= this.rpaTimeoutS * 1e6) {
      e.localRpa = { address: generateRpa(e.localIrk, n => this.rng.bytes(n)), atUs: now };
    }
    return e.localRpa.address;
  }

  // ---- reset and faults ---------------------------------------------------------------------------------

  /** HCI Reset (Vol 4, Part E, 7.3.2): everything back to the power-on state, links dropped silently. */
  reset(): void {
    for (const link of [...this.links.values()]) {
      link.peer.closed(S.localHostTerminated);
      (link as { closed: boolean }).closed = true;
      this.linkClosed(link, S.localHostTerminated, false);
      link.close(S.localHostTerminated, S.localHostTerminated);
    }
    this.scan?.timer?.cancel();
    this.scan = undefined;
    this.initiating = undefined;
    this.eventMask = DEFAULT_EVENT_MASK;
    this.eventMaskPage2 = 0n;
    this.leEventMask = DEFAULT_LE_EVENT_MASK;
    this.randomAddress = undefined;
    this.family = 'none';
    this.scanParams = { extended: false, active: false, duty: 1 };
    this.acceptList.clear();
    this.resolvingList.clear();
    this.resolvedAir.clear();
    this.addressResolution = false;
    this.rpaTimeoutS = 900;
    this.rpaTimer?.cancel();
    this.rpaTimer = undefined;
    this.buffers.clear();
    for (const s of this.advSets.values()) s.timer?.cancel();
    this.advSets.clear();
    this.legacyAdv.timer?.cancel();
    this.legacyAdv = { enabled: false, data: new Uint8Array(0), scanRsp: new Uint8Array(0), params: undefined };
    this.suggestedDataLength = { octets: 27, time: 328 };
    this.defaultPhy = { tx: 0, rx: 0 };
    this.updateAdvertisers();
    this.airChanged();
  }

  /** Fault: the controller reports a Hardware Error (Vol 4, Part E, 7.7.16) and loses its state. */
  hardwareError(code = 0x01): void {
    this.emit({ kind: 'hardwareError', hardwareCode: code });
    this.reset();
  }

  /** Close every simulator resource (the transport closed). */
  shutdown(): void {
    for (const link of [...this.links.values()]) {
      (link as { closed: boolean }).closed = true;
      link.peer.closed(S.localHostTerminated);
    }
    this.links.clear();
    for (const t of this.advTimers.values()) t.cancel();
    this.advTimers.clear();
    this.rpaTimer?.cancel();
    this.rpaTimer = undefined;
  }

  /** The address a command's Own_Address_Type names (0 / 2 public, 1 / 3 random). */
  private ownAddress(type: number): string {
    return type & 1 ? this.randomAddress ?? this.address : this.address;
  }

  /** Own_Address_Type of the scan parameters (7.8.10 / 7.8.64): the address a directed PDU must name. */
  private get scanOwnType(): number {
    return this.scanParams.ownType ?? 0;
  }

  // Accessors used by handlers.
  get legacyAdvertising() { return this.legacyAdv; }
  get dataLengthDefaults() { return this.suggestedDataLength; }
  set dataLengthDefaults(v: { octets: number; time: number }) { this.suggestedDataLength = v; }
  setDefaultPhy(tx: number, rx: number): void { this.defaultPhy = { tx, rx }; }
  get supportedPhys(): number { return this.phys; }
  get random(): Rng { return this.rng; }
}

// ---- event code lookup (for masks) ------------------------------------------------------------------

/** Commands after which the air must hear this host's advertising anew. */
const AIR_COMMANDS = new Set<string>(['leSetAdvertisingParameters', 'leSetAdvertisingData', 'leSetScanResponseData',
  'leSetAdvertisingEnable', 'leSetRandomAddress', 'leSetAdvertisingSetRandomAddress', 'leSetExtendedAdvertisingParameters',
  'leSetExtendedAdvertisingData', 'leSetExtendedScanResponseData', 'leSetExtendedAdvertisingEnable', 'leRemoveAdvertisingSet',
  'leClearAdvertisingSets']);

interface ResolvingEntry {
  readonly type: 0 | 1;
  readonly address: string;
  readonly peerIrk: Uint8Array;
  readonly localIrk: Uint8Array;
  localRpa?: { address: string; atUs: number };
  /** The peer's RPA this controller made for TargetA of directed advertising (peerRpaFor), and when. */
  peerRpa?: { address: string; atUs: number };
  /** LE Set Privacy Mode (7.8.77): 0 network (the default), 1 device. */
  privacyMode?: 0 | 1;
}

/** Air addresses whose resolution the simulated controller remembers (cleared whole when full). */
const RESOLVED_AIR_MAX = 1024;

const sameBytes = (x: Uint8Array, y: Uint8Array): boolean => x.length === y.length && x.every((v, i) => v === y[i]);

function sameSet(a: HostAdvertisingSet, b: HostAdvertisingSet): boolean {
  const eq = (x: Uint8Array, y: Uint8Array): boolean => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.key === b.key && a.address === b.address && a.addressType === b.addressType && a.extended === b.extended &&
    a.connectable === b.connectable && a.scannable === b.scannable && a.directedTo === b.directedTo &&
    a.intervalMs === b.intervalMs && a.primaryPhy === b.primaryPhy && a.secondaryPhy === b.secondaryPhy &&
    a.sid === b.sid && a.txPower === b.txPower && eq(a.data, b.data) && eq(a.scanRsp, b.scanRsp);
}

const EVENT_CODE: Record<string, number> = {
  disconnectionComplete: 0x05, encryptionChange: 0x08, readRemoteVersionInformationComplete: 0x0c, hardwareError: 0x10,
  dataBufferOverflow: 0x1a, encryptionKeyRefreshComplete: 0x30,
};
const LE_SUBEVENT: Record<string, number> = {
  leConnectionComplete: 0x01, leAdvertisingReport: 0x02, leConnectionUpdateComplete: 0x03, leReadRemoteFeaturesComplete: 0x04,
  leLongTermKeyRequest: 0x05, leRemoteConnectionParameterRequest: 0x06, leDataLengthChange: 0x07,
  leEnhancedConnectionComplete: 0x0a, lePhyUpdateComplete: 0x0c, leExtendedAdvertisingReport: 0x0d, leScanTimeout: 0x11,
  leAdvertisingSetTerminated: 0x12, leChannelSelectionAlgorithm: 0x14, leEnhancedConnectionCompleteV2: 0x29,
};
