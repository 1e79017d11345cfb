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
 *   (`HANDLERS`, typed against the table). A command with no handler gets Unknown HCI Command
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
 * - ACL: host packets are checked against the LE buffer pool (overruns are counted and answered with
 *   Data Buffer Overflow), carried by the link (link.ts), and completed with Number Of Completed
 *   Packets once sent over the air. Credits of a link are released when it closes (Vol 4, Part E, 4.3).
 * - Reset drops every link silently, stops scanning / advertising / initiating and restores the
 *   default masks; a Hardware Error (fault) does the same after telling the host.
 */
import { SUPPORTED_COMMAND_BITS, type SupportedCommandKind } from '../hci/supported-commands.js';
import { equalBytes } from '../bytes/hex.js';
import { decodeAcl } from '../hci/acl.js';
import {
  COMMAND_TABLE, HCI_COMMANDS, type CommandReturn, type HciCommandKind, type HciCommandOf, type ReturnParameters,
} from '../hci/commands.js';
import type { HciEvent } from '../hci/events.js';
import { decodeHciPacket, encodeAcl, encodeEvent } from '../hci/packets.js';
import { encodeL2capFrame } from '../l2cap/frames.js';
import { log } from '../log.js';
import { DecodeError, InvalidStateError } from '../errors.js';
import { aes128 } from '../platform/crypto.js';
import { H4 } from '../transport/types.js';
import type { SimClock, SimEvent } from './clock.js';
import { SimLink, type LinkOwner } from './link.js';
import type { PeerLinkApi, VirtualPeripheral } from './peripheral.js';
import type { SimControllerOptions } from './types.js';
import { bytesOf, normAddress, Rng } from './util.js';

/** HCI status codes the simulator produces (Vol 1, Part F). */
const S = {
  success: 0x00, unknownCommand: 0x01, unknownConnection: 0x02, hardwareFailure: 0x03, pinOrKeyMissing: 0x06,
  memoryCapacityExceeded: 0x07, connectionTimeout: 0x08, commandDisallowed: 0x0c, invalidParameters: 0x12,
  remoteUserTerminated: 0x13, localHostTerminated: 0x16, unsupportedFeature: 0x11, unsupportedRemoteFeature: 0x1a,
  unacceptableConnectionParameters: 0x3b, advertisingTimeout: 0x3c, unknownAdvertisingIdentifier: 0x42, micFailure: 0x3d, failedToEstablish: 0x3e,
} as const;

/** The commands the simulator implements; its Supported_Commands mask is built from these. */
const SIM_COMMANDS = [
  'disconnect',
  'readRemoteVersionInformation',
  'setEventMask',
  'reset',
  'readLocalVersionInformation',
  'readLocalSupportedFeatures',
  'readBufferSize',
  'readBdAddr',
  'readRssi',
  'setEventMaskPage2',
  'readLeHostSupport',
  'writeLeHostSupport',
  'leSetEventMask',
  'leReadBufferSize',
  'leReadLocalSupportedFeatures',
  'leSetRandomAddress',
  'leSetAdvertisingParameters',
  'leReadAdvertisingPhysicalChannelTxPower',
  'leSetAdvertisingData',
  'leSetScanResponseData',
  'leSetAdvertisingEnable',
  'leSetScanParameters',
  'leSetScanEnable',
  'leCreateConnection',
  'leCreateConnectionCancel',
  'leReadFilterAcceptListSize',
  'leClearFilterAcceptList',
  'leAddDeviceToFilterAcceptList',
  'leRemoveDeviceFromFilterAcceptList',
  'leConnectionUpdate',
  'leReadRemoteFeatures',
  'leEncrypt',
  'leRand',
  'leEnableEncryption',
  'leReadSupportedStates',
  'leRemoteConnectionParameterRequestReply',
  'leRemoteConnectionParameterRequestNegativeReply',
  'leSetDataLength',
  'leReadSuggestedDefaultDataLength',
  'leWriteSuggestedDefaultDataLength',
  'leAddDeviceToResolvingList',
  'leRemoveDeviceFromResolvingList',
  'leClearResolvingList',
  'leReadResolvingListSize',
  'leSetAddressResolutionEnable',
  'leSetResolvablePrivateAddressTimeout',
  'leReadMaximumDataLength',
  'leReadPhy',
  'leSetDefaultPhy',
  'leSetPhy',
  'leSetAdvertisingSetRandomAddress',
  'leSetExtendedAdvertisingParameters',
  'leSetExtendedAdvertisingData',
  'leSetExtendedScanResponseData',
  'leSetExtendedAdvertisingEnable',
  'leReadMaximumAdvertisingDataLength',
  'leReadNumberOfSupportedAdvertisingSets',
  'leRemoveAdvertisingSet',
  'leClearAdvertisingSets',
  'leSetExtendedScanParameters',
  'leSetExtendedScanEnable',
  'leExtendedCreateConnection',
  'leReadTransmitPower',
  'leSetPrivacyMode',
  'leReadBufferSizeV2',
] as const satisfies readonly SupportedCommandKind[];

/** Supported_Commands bit of every command the simulator implements (Vol 4, Part E, 6.27: [octet, bit]). */
export const SIM_COMMAND_BITS = Object.fromEntries(SIM_COMMANDS.map(k => [k, SUPPORTED_COMMAND_BITS[k]])) as
  { readonly [K in (typeof SIM_COMMANDS)[number]]: (typeof SUPPORTED_COMMAND_BITS)[K] };
/** Read Local Supported Commands has no bit of its own: every controller answers it (Vol 4, Part E, 7.4.2). */
type SimCommandKind = keyof typeof SIM_COMMAND_BITS | 'readLocalSupportedCommands';

/** Commands only a controller with extended advertising answers. */
const EXTENDED_ONLY: ReadonlySet<string> = new Set([
  'leSetAdvertisingSetRandomAddress', 'leSetExtendedAdvertisingParameters', 'leSetExtendedAdvertisingData',
  'leSetExtendedScanResponseData', 'leSetExtendedAdvertisingEnable', 'leReadMaximumAdvertisingDataLength',
  'leReadNumberOfSupportedAdvertisingSets', 'leRemoveAdvertisingSet', 'leClearAdvertisingSets',
  'leSetExtendedScanParameters', 'leSetExtendedScanEnable', 'leExtendedCreateConnection',
]);
const LEGACY_FAMILY: ReadonlySet<string> = new Set([
  'leSetAdvertisingParameters', 'leSetAdvertisingData', 'leSetScanResponseData', 'leSetAdvertisingEnable',
  'leSetScanParameters', 'leSetScanEnable', 'leCreateConnection', 'leReadAdvertisingPhysicalChannelTxPower',
]);
const DATA_LENGTH_COMMANDS: ReadonlySet<string> = new Set(['leSetDataLength', 'leReadSuggestedDefaultDataLength',
  'leWriteSuggestedDefaultDataLength', 'leReadMaximumDataLength']);

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

type Handler<K extends HciCommandKind> = (ctrl: SimController, cmd: HciCommandOf<K>) => void;

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
  leEventMask = DEFAULT_LE_EVENT_MASK;
  randomAddress: string | undefined;
  private family: 'none' | 'legacy' | 'extended' = 'none';
  private scanParams = { extended: false, active: false, duty: 1 };
  scan: ScanState | undefined;
  initiating: Initiating | undefined;
  private readonly advTimers = new Map<VirtualPeripheral, SimEvent>();
  private readonly acceptList = new Set<string>();
  private readonly resolvingList = new Set<string>();
  private nextHandle = 0x0040;
  private inFlight = 0;
  private readonly inFlightByHandle = new Map<number, number>();
  private outstandingCommands = 0;
  private suggestedDataLength = { octets: 27, time: 328 };
  private defaultPhy = { tx: 0, rx: 0 };
  private legacyAdv: { enabled: boolean; data: Uint8Array; scanRsp: Uint8Array; params: unknown } =
    { enabled: false, data: new Uint8Array(0), scanRsp: new Uint8Array(0), params: undefined };
  readonly advSets = new Map<number, AdvSet>();
  private readonly pendingParamRequests = new Map<number, { intervalMinMs: number; intervalMaxMs: number; latency: number; timeoutMs: number }>();
  private readonly peerByHandle = new Map<number, VirtualPeripheral>();

  constructor(
    readonly options: SimControllerOptions,
    readonly clock: SimClock,
    private readonly rng: Rng,
    readonly peripherals: VirtualPeripheral[],
    private readonly toHost: (packet: Uint8Array) => void,
  ) {
    this.address = normAddress(options.address ?? 'C0:FF:EE:00:00:01');
    this.acl = options.aclBuffers ?? { length: 251, count: 8 };
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
    let f = (1n << 0n) | (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 4n) | (1n << 14n);
    if (this.options.dataLength ?? true) f |= 1n << 5n;
    if (this.options.phy2m ?? true) f |= 1n << 8n;
    if (this.options.phyCoded ?? false) f |= 1n << 11n;
    if (this.extended) f |= 1n << 12n;
    return f;
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
    if (a.data.length > this.acl.length || this.inFlight >= this.acl.count) {
      // The host broke flow control (Vol 4, Part E, 4.1.1): the packet is lost.
      this.stats.aclOverruns++;
      this.emit({ kind: 'dataBufferOverflow', linkType: 0x01 });
      return;
    }
    this.inFlight++;
    this.inFlightByHandle.set(a.handle, (this.inFlightByHandle.get(a.handle) ?? 0) + 1);
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

  private allowed(evt: HciEvent): boolean {
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
    const n = Math.min(count, this.inFlightByHandle.get(handle) ?? 0);
    if (n <= 0) return;
    this.inFlightByHandle.set(handle, (this.inFlightByHandle.get(handle) ?? 0) - n);
    this.inFlight -= n;
    this.emit({ kind: 'numberOfCompletedPackets', handles: [{ connectionHandle: handle, numCompletedPackets: n }] });
  }

  linkClosed(link: SimLink, reason: number, notify = true): void {
    this.links.delete(link.handle);
    // Buffers of a closed link are free again, with no Number Of Completed Packets (Vol 4, Part E, 4.3).
    this.inFlight -= this.inFlightByHandle.get(link.handle) ?? 0;
    this.inFlightByHandle.delete(link.handle);
    this.pendingParamRequests.delete(link.handle);
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
    for (const p of this.peripherals) this.updateAdvertiser(p);
  }

  private advertising(p: VirtualPeripheral): boolean {
    if (!p.spec.advertising) return false;
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
    const rssi = p.driftRssi(this.rng);
    if (rssi < -100) return; // below sensitivity
    const init = this.initiating;
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
    const scannable = p.extended ? p.scannable && !p.connectable : p.connectable || p.scannable;
    if (scan.active && scannable) this.report(p, scan, rssi, true);
  }

  private targets(init: Initiating, p: VirtualPeripheral): boolean {
    if (init.filterPolicy === 1) return this.acceptList.has(`${p.addressType}/${p.address}`);
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
    if (!scan.extended) {
      // Legacy event types (Vol 4, Part E, 7.7.65.2): ADV_IND 0, ADV_SCAN_IND 2, ADV_NONCONN_IND 3, SCAN_RSP 4.
      const eventType = scanRsp ? 0x04 : p.connectable ? 0x00 : p.scannable ? 0x02 : 0x03;
      this.emit({ kind: 'leAdvertisingReport', reports: [{ eventType, addressType: p.addressType, address: p.address, data, rssi }] });
      return;
    }
    const adv = p.spec.advertising ?? {};
    let eventType: number;
    if (!p.extended) {
      // Legacy PDUs in extended reports (7.7.65.13, Table 7.1): bit 4 legacy; ADV_IND 0x13,
      // ADV_SCAN_IND 0x12, ADV_NONCONN_IND 0x10, SCAN_RSP to ADV_IND 0x1B / to ADV_SCAN_IND 0x1A.
      eventType = scanRsp ? (p.connectable ? 0x1b : 0x1a) : p.connectable ? 0x13 : p.scannable ? 0x12 : 0x10;
    } else {
      eventType = (p.connectable ? 0x01 : 0) | (p.scannable && !p.connectable ? 0x02 : 0) | (scanRsp ? 0x08 | 0x02 : 0);
    }
    const base = {
      addressType: p.addressType, address: p.address, primaryPhy: 1, secondaryPhy: p.extended ? 1 : 0,
      advertisingSid: p.extended ? (adv.sid ?? 0) : 0xff, txPower: adv.txPower ?? 127, rssi,
      periodicAdvertisingInterval: 0, directAddressType: 0, directAddress: ZERO_ADDR,
    };
    // Data longer than one event is split; all but the last fragment carry Data Status 01 "incomplete,
    // more data to come" in bits 5–6 (7.7.65.13).
    let o = 0;
    do {
      const end = Math.min(data.length, o + EXT_REPORT_MAX_DATA);
      const more = end < data.length;
      this.emit({ kind: 'leExtendedAdvertisingReport', reports: [{ ...base, eventType: eventType | (more ? 0x20 : 0), data: data.subarray(o, end) }] });
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
    this.links.set(handle, link);
    this.peerByHandle.set(handle, p);
    this.inFlightByHandle.set(handle, 0);
    this.stats.connections++;
    const api: PeerLinkApi = {
      handle,
      clock: this.clock.internal,
      send: (cid, payload) => link.fromPeer(encodeL2capFrame(cid, payload)),
      terminate: reason => link.terminate(reason, reason),
      requestParameters: r => this.peerParameterRequest(link, r),
      schedule: (us, fn) => this.clock.schedule(us, fn),
    };
    link.peer = p.connect(api, this.rng);
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

  /** The connection-complete event the masks ask for (Vol 4, Part E, 7.7.65.1 / .10). */
  private connectionComplete(extended: boolean, status: number, link?: SimLink): void {
    const common = {
      status, connectionHandle: link?.handle ?? 0, role: 0, peerAddressType: link?.peerAddressType ?? 0,
      peerAddress: link?.peerAddress ?? ZERO_ADDR, connectionInterval: link ? link.intervalUs / 1250 : 0,
      peripheralLatency: link?.latency ?? 0, supervisionTimeout: link ? link.supervisionTimeoutUs / 10_000 : 0,
      centralClockAccuracy: 0,
    };
    const enhanced = { ...common, localResolvablePrivateAddress: ZERO_ADDR, peerResolvablePrivateAddress: ZERO_ADDR };
    if (this.leUnmasked(0x29)) this.emit({ kind: 'leEnhancedConnectionCompleteV2', ...enhanced, advertisingHandle: 0xff, syncHandle: 0xffff });
    else if (this.leUnmasked(0x0a)) this.emit({ kind: 'leEnhancedConnectionComplete', ...enhanced });
    else this.emit({ kind: 'leConnectionComplete', ...common });
    // After an extended connection, LE Channel Selection Algorithm (7.7.65.20): CSA #2.
    if (link && extended) this.emit({ kind: 'leChannelSelectionAlgorithm', connectionHandle: link.handle, channelSelectionAlgorithm: 1 });
  }

  // ---- procedures on links ---------------------------------------------------------------------------

  link(handle: number): SimLink | undefined {
    return this.links.get(handle & 0x0fff);
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

  setScanParams(p: { extended: boolean; active: boolean; duty: number }): void {
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

  resolvingListOp(op: 'add' | 'remove' | 'clear', type = 0, address = ZERO_ADDR): number {
    const key = `${type}/${address}`;
    if (op === 'clear') this.resolvingList.clear();
    else if (op === 'remove') {
      if (!this.resolvingList.delete(key)) return S.unknownConnection;
    } else {
      if (this.resolvingList.size >= (this.options.resolvingListSize ?? 8)) return S.memoryCapacityExceeded;
      this.resolvingList.add(key);
    }
    return S.success;
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
    this.leEventMask = DEFAULT_LE_EVENT_MASK;
    this.randomAddress = undefined;
    this.family = 'none';
    this.scanParams = { extended: false, active: false, duty: 1 };
    this.acceptList.clear();
    this.resolvingList.clear();
    this.inFlight = 0;
    this.inFlightByHandle.clear();
    for (const s of this.advSets.values()) s.timer?.cancel();
    this.advSets.clear();
    this.legacyAdv = { enabled: false, data: new Uint8Array(0), scanRsp: new Uint8Array(0), params: undefined };
    this.suggestedDataLength = { octets: 27, time: 328 };
    this.defaultPhy = { tx: 0, rx: 0 };
    this.updateAdvertisers();
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

// ---- command handlers ---------------------------------------------------------------------------------

const ms = (units: number, unitUs: number): number => units * unitUs;

/** LE Encrypt (Vol 4, Part E, 7.8.22): AES-128; HCI carries key and data least significant octet first. */
export function leEncrypt(keyLe: Uint8Array, plaintextLe: Uint8Array): Uint8Array {
  const key = Uint8Array.from(keyLe).reverse();
  const data = Uint8Array.from(plaintextLe).reverse();
  return Uint8Array.from(aes128(key, data)).reverse();
}

/** Connection parameters a host may ask for (Vol 4, Part E, 7.8.12). */
function validConnParams(p: { connectionIntervalMin: number; connectionIntervalMax: number; maxLatency: number; supervisionTimeout: number }): boolean {
  const { connectionIntervalMin: min, connectionIntervalMax: max, maxLatency: lat, supervisionTimeout: to } = p;
  if (min < 6 || max > 3200 || min > max || lat > 499 || to < 10 || to > 3200) return false;
  // The supervision timeout must exceed (1 + latency) × interval × 2 (Vol 4, Part E, 7.8.12).
  return to * 10 > (1 + lat) * max * 1.25 * 2;
}

const HANDLERS: { [K in SimCommandKind]: Handler<K> } = {
  disconnect: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || link.closed) return c.fail('disconnect', S.unknownConnection);
    // Allowed reasons (Vol 4, Part E, 7.1.6).
    if (![0x05, 0x13, 0x14, 0x15, 0x1a, 0x29, 0x3b].includes(cmd.reason)) return c.fail('disconnect', S.invalidParameters);
    c.status('disconnect');
    // The peer hears our reason; our host is told Connection Terminated By Local Host (0x16).
    link.terminate(cmd.reason, S.localHostTerminated);
  },
  readRemoteVersionInformation: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('readRemoteVersionInformation', S.unknownConnection);
    c.status('readRemoteVersionInformation');
    link.afterEvents(2, () => c.emit({ kind: 'readRemoteVersionInformationComplete', status: 0, connectionHandle: link.handle,
      version: 0x0c, manufacturerName: 0xffff, subversion: 0x0001 }));
  },
  setEventMask: (c, cmd) => { c.eventMask = cmd.eventMask; c.complete('setEventMask'); },
  reset: c => { c.reset(); c.complete('reset'); },
  readLocalVersionInformation: c => c.complete('readLocalVersionInformation', {
    hciVersion: 0x0c, hciSubversion: 0x0001, lmpVersion: 0x0c, manufacturer: 0xffff, lmpSubversion: 0x0001,
  }),
  readLocalSupportedFeatures: c => c.complete('readLocalSupportedFeatures', {
    // LE Supported (Controller) bit 38 and BR/EDR Not Supported bit 37 (Vol 2, Part C, 3.3).
    lmpFeatures: (1n << 38n) | (1n << 37n),
  }),
  // An LE-only controller has no BR/EDR buffers (Vol 4, Part E, 7.4.5).
  readBufferSize: c => c.complete('readBufferSize', {
    aclDataPacketLength: 0, synchronousDataPacketLength: 0, totalNumAclDataPackets: 0, totalNumSynchronousDataPackets: 0,
  }),
  readLocalSupportedCommands: c => c.complete('readLocalSupportedCommands', { supportedCommands: c.supportedCommands() }),
  readBdAddr: c => c.complete('readBdAddr', { bdAddr: c.address }),
  readRssi: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('readRssi', S.unknownConnection);
    c.complete('readRssi', { connectionHandle: link.handle, rssi: c.peerOf(link)?.rssi ?? -60 });
  },
  setEventMaskPage2: c => c.complete('setEventMaskPage2'),
  readLeHostSupport: c => c.complete('readLeHostSupport', { leSupportedHost: 1, unused: 0 }),
  writeLeHostSupport: c => c.complete('writeLeHostSupport'),
  leSetEventMask: (c, cmd) => { c.leEventMask = cmd.leEventMask; c.complete('leSetEventMask'); },
  leReadBufferSize: c => c.complete('leReadBufferSize', { leAclDataPacketLength: c.acl.length, totalNumLeAclDataPackets: c.acl.count }),
  leReadBufferSizeV2: c => c.complete('leReadBufferSizeV2', {
    leAclDataPacketLength: c.acl.length, totalNumLeAclDataPackets: c.acl.count, isoDataPacketLength: 0, totalNumIsoDataPackets: 0,
  }),
  leReadLocalSupportedFeatures: c => c.complete('leReadLocalSupportedFeatures', { leFeatures: c.leFeatures() }),
  leSetRandomAddress: (c, cmd) => {
    // Vol 4, Part E, 7.8.4: not while advertising or scanning with it.
    if (c.scan || c.initiating || c.legacyAdvertising.enabled) return c.fail('leSetRandomAddress', S.commandDisallowed);
    c.randomAddress = cmd.randomAddress;
    c.complete('leSetRandomAddress');
  },
  leSetAdvertisingParameters: (c, cmd) => {
    if (c.legacyAdvertising.enabled) return c.fail('leSetAdvertisingParameters', S.commandDisallowed);
    if (cmd.advertisingIntervalMin > cmd.advertisingIntervalMax || cmd.advertisingType > 4) {
      return c.fail('leSetAdvertisingParameters', S.invalidParameters);
    }
    c.legacyAdvertising.params = cmd;
    c.complete('leSetAdvertisingParameters');
  },
  leReadAdvertisingPhysicalChannelTxPower: c => c.complete('leReadAdvertisingPhysicalChannelTxPower', { txPowerLevel: 0 }),
  leSetAdvertisingData: (c, cmd) => { c.legacyAdvertising.data = cmd.advertisingData; c.complete('leSetAdvertisingData'); },
  leSetScanResponseData: (c, cmd) => { c.legacyAdvertising.scanRsp = cmd.scanResponseData; c.complete('leSetScanResponseData'); },
  leSetAdvertisingEnable: (c, cmd) => {
    if (cmd.enable > 1) return c.fail('leSetAdvertisingEnable', S.invalidParameters);
    c.legacyAdvertising.enabled = cmd.enable === 1;
    c.complete('leSetAdvertisingEnable');
  },
  leSetScanParameters: (c, cmd) => {
    if (c.scan) return c.fail('leSetScanParameters', S.commandDisallowed);
    if (cmd.leScanType > 1 || cmd.leScanInterval < 4 || cmd.leScanWindow < 4 || cmd.leScanWindow > cmd.leScanInterval) {
      return c.fail('leSetScanParameters', S.invalidParameters);
    }
    c.setScanParams({ extended: false, active: cmd.leScanType === 1, duty: cmd.leScanWindow / cmd.leScanInterval });
    c.complete('leSetScanParameters');
  },
  leSetScanEnable: (c, cmd) => {
    if (cmd.enable > 1 || cmd.filterDuplicates > 1) return c.fail('leSetScanEnable', S.invalidParameters);
    c.complete('leSetScanEnable');
    if (cmd.enable) c.startScan({ extended: false, filterDuplicates: cmd.filterDuplicates === 1, durationUs: 0 });
    else c.stopScan();
  },
  leCreateConnection: (c, cmd) => {
    if (c.initiating) return c.fail('leCreateConnection', S.commandDisallowed);
    if (!validConnParams(cmd) || cmd.initiatorFilterPolicy > 1 || cmd.peerAddressType > 3) {
      return c.fail('leCreateConnection', S.invalidParameters);
    }
    c.status('leCreateConnection');
    c.startInitiating({
      extended: false, filterPolicy: cmd.initiatorFilterPolicy, peerAddressType: cmd.peerAddressType & 1,
      peerAddress: cmd.peerAddress.toUpperCase(), intervalMinUs: ms(cmd.connectionIntervalMin, 1250),
      intervalMaxUs: ms(cmd.connectionIntervalMax, 1250), latency: cmd.maxLatency,
      supervisionTimeoutUs: ms(cmd.supervisionTimeout, 10_000),
    });
  },
  leCreateConnectionCancel: c => {
    if (!c.initiating) return c.fail('leCreateConnectionCancel', S.commandDisallowed);
    c.complete('leCreateConnectionCancel');
    c.cancelInitiating();
  },
  leReadFilterAcceptListSize: c => c.complete('leReadFilterAcceptListSize', { filterAcceptListSize: c.options.filterAcceptListSize ?? 16 }),
  leClearFilterAcceptList: c => {
    const s = c.acceptListOp('clear');
    return s ? c.fail('leClearFilterAcceptList', s) : c.complete('leClearFilterAcceptList');
  },
  leAddDeviceToFilterAcceptList: (c, cmd) => {
    const s = c.acceptListOp('add', cmd.addressType, cmd.address.toUpperCase());
    return s ? c.fail('leAddDeviceToFilterAcceptList', s) : c.complete('leAddDeviceToFilterAcceptList');
  },
  leRemoveDeviceFromFilterAcceptList: (c, cmd) => {
    const s = c.acceptListOp('remove', cmd.addressType, cmd.address.toUpperCase());
    return s ? c.fail('leRemoveDeviceFromFilterAcceptList', s) : c.complete('leRemoveDeviceFromFilterAcceptList');
  },
  leConnectionUpdate: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leConnectionUpdate', S.unknownConnection);
    if (!validConnParams(cmd)) return c.fail('leConnectionUpdate', S.invalidParameters);
    c.status('leConnectionUpdate');
    const peer = c.peerOf(link);
    const reject = peer?.spec.behaviour?.rejectParameterUpdates ?? false;
    c.updateLink(link, {
      intervalUs: Math.round(Math.max(ms(cmd.connectionIntervalMin, 1250), Math.min(ms(cmd.connectionIntervalMax, 1250),
        c.options.preferredIntervalMs !== undefined ? c.options.preferredIntervalMs * 1000 : ms(cmd.connectionIntervalMin, 1250))) / 1250) * 1250,
      latency: cmd.maxLatency, supervisionTimeoutUs: ms(cmd.supervisionTimeout, 10_000),
    }, reject ? S.unacceptableConnectionParameters : 0);
  },
  leReadRemoteFeatures: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leReadRemoteFeatures', S.unknownConnection);
    c.status('leReadRemoteFeatures');
    const f = c.peerOf(link)?.spec.leFeatures ?? 0b1_0010_0011;
    link.afterEvents(2, () => c.emit({ kind: 'leReadRemoteFeaturesComplete', status: 0, connectionHandle: link.handle, leFeatures: BigInt(f) }));
  },
  leEncrypt: (c, cmd) => c.complete('leEncrypt', { encryptedData: leEncrypt(cmd.key, cmd.plaintextData) }),
  leRand: c => c.complete('leRand', { randomNumber: c.random.bytes(8) }),
  leEnableEncryption: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leEnableEncryption', S.unknownConnection);
    c.status('leEnableEncryption');
    const ltk = c.peerOf(link)?.spec.ltk;
    const refresh = link.encrypted;
    // LL encryption start (Vol 6, Part B, 5.1.3): LL_ENC_REQ / RSP, then START_ENC_REQ / RSP.
    link.afterEvents(3, () => {
      if (!ltk) {
        // The peripheral's host has no key: LL_REJECT_EXT_IND, PIN or Key Missing.
        c.emit({ kind: 'encryptionChange', status: S.pinOrKeyMissing, connectionHandle: link.handle, encryptionEnabled: refresh ? 1 : 0 });
        return;
      }
      if (ltk.ediv !== cmd.encryptedDiversifier || !equalBytes(bytesOf(ltk.rand), cmd.randomNumber)) {
        c.emit({ kind: 'encryptionChange', status: S.pinOrKeyMissing, connectionHandle: link.handle, encryptionEnabled: refresh ? 1 : 0 });
        return;
      }
      if (!equalBytes(bytesOf(ltk.key), cmd.longTermKey)) {
        // Different session keys: the first encrypted PDU fails its MIC and the link drops (Vol 6, Part B, 5.1.3.1).
        link.terminate(S.micFailure, S.micFailure);
        return;
      }
      link.encrypted = true;
      if (refresh) c.emit({ kind: 'encryptionKeyRefreshComplete', status: 0, connectionHandle: link.handle });
      else c.emit({ kind: 'encryptionChange', status: 0, connectionHandle: link.handle, encryptionEnabled: 1 });
    });
  },
  leReadSupportedStates: c => c.complete('leReadSupportedStates', { leStates: 0x3ffffffffffn }),
  leRemoteConnectionParameterRequestReply: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || !c.takeParamRequest(link.handle)) return c.fail('leRemoteConnectionParameterRequestReply', link ? S.commandDisallowed : S.unknownConnection);
    c.complete('leRemoteConnectionParameterRequestReply', { connectionHandle: link.handle });
    c.updateLink(link, { intervalUs: Math.round(ms(cmd.intervalMax, 1250) / 1250) * 1250, latency: cmd.maxLatency,
      supervisionTimeoutUs: ms(cmd.timeout, 10_000) });
  },
  leRemoteConnectionParameterRequestNegativeReply: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link || !c.takeParamRequest(link.handle)) {
      return c.fail('leRemoteConnectionParameterRequestNegativeReply', link ? S.commandDisallowed : S.unknownConnection);
    }
    c.complete('leRemoteConnectionParameterRequestNegativeReply', { connectionHandle: link.handle });
  },
  leSetDataLength: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leSetDataLength', S.unknownConnection);
    if (cmd.txOctets < 27 || cmd.txOctets > 251 || cmd.txTime < 328 || cmd.txTime > 17040) return c.fail('leSetDataLength', S.invalidParameters);
    c.complete('leSetDataLength', { connectionHandle: link.handle });
    const peerMax = c.peerOf(link)?.spec.maxDataLength ?? 251;
    const tx = Math.min(cmd.txOctets, peerMax);
    const rx = Math.min(251, peerMax);
    // LL_LENGTH_REQ / RSP (Vol 6, Part B, 5.1.9); the event only when a value changed.
    link.afterEvents(2, () => {
      const d = link.dataLength;
      if (d.txOctets === tx && d.rxOctets === rx) return;
      link.dataLength = { txOctets: tx, txTime: tx * 8 + 112, rxOctets: rx, rxTime: rx * 8 + 112 };
      c.emit({ kind: 'leDataLengthChange', connectionHandle: link.handle, maxTxOctets: tx, maxTxTime: tx * 8 + 112,
        maxRxOctets: rx, maxRxTime: rx * 8 + 112 });
    });
  },
  leReadSuggestedDefaultDataLength: c => c.complete('leReadSuggestedDefaultDataLength', {
    suggestedMaxTxOctets: c.dataLengthDefaults.octets, suggestedMaxTxTime: c.dataLengthDefaults.time,
  }),
  leWriteSuggestedDefaultDataLength: (c, cmd) => {
    if (cmd.suggestedMaxTxOctets < 27 || cmd.suggestedMaxTxOctets > 251) return c.fail('leWriteSuggestedDefaultDataLength', S.invalidParameters);
    c.dataLengthDefaults = { octets: cmd.suggestedMaxTxOctets, time: cmd.suggestedMaxTxTime };
    c.complete('leWriteSuggestedDefaultDataLength');
  },
  leAddDeviceToResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('add', cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return s ? c.fail('leAddDeviceToResolvingList', s) : c.complete('leAddDeviceToResolvingList');
  },
  leRemoveDeviceFromResolvingList: (c, cmd) => {
    const s = c.resolvingListOp('remove', cmd.peerIdentityAddressType, cmd.peerIdentityAddress);
    return s ? c.fail('leRemoveDeviceFromResolvingList', s) : c.complete('leRemoveDeviceFromResolvingList');
  },
  leClearResolvingList: c => { c.resolvingListOp('clear'); c.complete('leClearResolvingList'); },
  leReadResolvingListSize: c => c.complete('leReadResolvingListSize', { resolvingListSize: c.options.resolvingListSize ?? 8 }),
  leSetAddressResolutionEnable: c => c.complete('leSetAddressResolutionEnable'),
  leSetResolvablePrivateAddressTimeout: c => c.complete('leSetResolvablePrivateAddressTimeout'),
  leReadMaximumDataLength: c => c.complete('leReadMaximumDataLength', {
    supportedMaxTxOctets: 251, supportedMaxTxTime: 17040, supportedMaxRxOctets: 251, supportedMaxRxTime: 17040,
  }),
  leReadPhy: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leReadPhy', S.unknownConnection);
    c.complete('leReadPhy', { connectionHandle: link.handle, txPhy: link.phy.tx, rxPhy: link.phy.rx });
  },
  leSetDefaultPhy: (c, cmd) => { c.setDefaultPhy(cmd.txPhys, cmd.rxPhys); c.complete('leSetDefaultPhy'); },
  leSetPhy: (c, cmd) => {
    const link = c.link(cmd.connectionHandle);
    if (!link) return c.fail('leSetPhy', S.unknownConnection);
    c.status('leSetPhy');
    const both = c.supportedPhys & (c.peerOf(link)?.spec.phys ?? 3);
    const pick = (want: number, any: boolean, cur: number): number => {
      const m = (any ? 7 : want) & both;
      return m & 2 ? 2 : m & 1 ? 1 : m & 4 ? 3 : cur;
    };
    link.afterEvents(3, () => {
      link.phy = { tx: pick(cmd.txPhys, (cmd.allPhys & 1) !== 0, link.phy.tx), rx: pick(cmd.rxPhys, (cmd.allPhys & 2) !== 0, link.phy.rx) };
      c.emit({ kind: 'lePhyUpdateComplete', status: 0, connectionHandle: link.handle, txPhy: link.phy.tx, rxPhy: link.phy.rx });
    });
  },
  leSetAdvertisingSetRandomAddress: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetAdvertisingSetRandomAddress', S.unknownAdvertisingIdentifier);
    set.randomAddress = cmd.randomAddress;
    c.complete('leSetAdvertisingSetRandomAddress');
  },
  leSetExtendedAdvertisingParameters: (c, cmd) => {
    const existing = c.advSets.get(cmd.advertisingHandle);
    if (existing?.enabled) return c.fail('leSetExtendedAdvertisingParameters', S.commandDisallowed);
    if (cmd.advertisingHandle > 0xef) return c.fail('leSetExtendedAdvertisingParameters', S.invalidParameters);
    if (!existing && c.advSets.size >= (c.options.numAdvertisingSets ?? 4)) {
      return c.fail('leSetExtendedAdvertisingParameters', S.memoryCapacityExceeded);
    }
    const set = existing ?? { data: new Uint8Array(0), scanRsp: new Uint8Array(0), enabled: false };
    set.params = cmd;
    c.advSets.set(cmd.advertisingHandle, set);
    c.complete('leSetExtendedAdvertisingParameters', { selectedTxPower: cmd.advertisingTxPower === 127 ? 0 : Math.min(cmd.advertisingTxPower, 10) });
  },
  leSetExtendedAdvertisingData: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetExtendedAdvertisingData', S.unknownAdvertisingIdentifier);
    const r = fragmentOp(set.data, cmd.operation, cmd.advertisingData);
    if (r === undefined) return c.fail('leSetExtendedAdvertisingData', S.invalidParameters);
    set.data = r;
    c.complete('leSetExtendedAdvertisingData');
  },
  leSetExtendedScanResponseData: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leSetExtendedScanResponseData', S.unknownAdvertisingIdentifier);
    const r = fragmentOp(set.scanRsp, cmd.operation, cmd.scanResponseData);
    if (r === undefined) return c.fail('leSetExtendedScanResponseData', S.invalidParameters);
    set.scanRsp = r;
    c.complete('leSetExtendedScanResponseData');
  },
  leSetExtendedAdvertisingEnable: (c, cmd) => {
    if (cmd.enable && cmd.sets.length === 0) return c.fail('leSetExtendedAdvertisingEnable', S.invalidParameters);
    const targets = cmd.sets.length ? cmd.sets : [...c.advSets.keys()].map(h => ({ advertisingHandle: h, duration: 0, maxExtendedAdvertisingEvents: 0 }));
    for (const s of targets) if (!c.advSets.has(s.advertisingHandle)) return c.fail('leSetExtendedAdvertisingEnable', S.unknownAdvertisingIdentifier);
    c.complete('leSetExtendedAdvertisingEnable');
    for (const s of targets) {
      const set = c.advSets.get(s.advertisingHandle)!;
      set.timer?.cancel();
      set.timer = undefined;
      set.enabled = cmd.enable === 1;
      if (set.enabled && s.duration > 0) {
        // Duration in 10 ms units; on expiry LE Advertising Set Terminated, Advertising Timeout (7.7.65.18).
        set.timer = c.clock.schedule(s.duration * 10_000, () => {
          set.enabled = false;
          set.timer = undefined;
          c.emit({ kind: 'leAdvertisingSetTerminated', status: S.advertisingTimeout, advertisingHandle: s.advertisingHandle,
            connectionHandle: 0, numCompletedExtendedAdvertisingEvents: 0 });
        });
      }
    }
  },
  leReadMaximumAdvertisingDataLength: c => c.complete('leReadMaximumAdvertisingDataLength', { maxAdvertisingDataLength: 1650 }),
  leReadNumberOfSupportedAdvertisingSets: c => c.complete('leReadNumberOfSupportedAdvertisingSets', {
    numSupportedAdvertisingSets: c.options.numAdvertisingSets ?? 4,
  }),
  leRemoveAdvertisingSet: (c, cmd) => {
    const set = c.advSets.get(cmd.advertisingHandle);
    if (!set) return c.fail('leRemoveAdvertisingSet', S.unknownAdvertisingIdentifier);
    if (set.enabled) return c.fail('leRemoveAdvertisingSet', S.commandDisallowed);
    c.advSets.delete(cmd.advertisingHandle);
    c.complete('leRemoveAdvertisingSet');
  },
  leClearAdvertisingSets: c => {
    if ([...c.advSets.values()].some(s => s.enabled)) return c.fail('leClearAdvertisingSets', S.commandDisallowed);
    c.advSets.clear();
    c.complete('leClearAdvertisingSets');
  },
  leSetExtendedScanParameters: (c, cmd) => {
    if (c.scan) return c.fail('leSetExtendedScanParameters', S.commandDisallowed);
    const p = cmd.scanningPhys[0];
    if (!p || p.scanType > 1 || p.scanWindow > p.scanInterval || p.scanInterval < 4) return c.fail('leSetExtendedScanParameters', S.invalidParameters);
    if (cmd.scanningPhys.some(x => (x.phy & c.supportedPhys) === 0 || x.phy === 2)) return c.fail('leSetExtendedScanParameters', S.unsupportedFeature);
    c.setScanParams({ extended: true, active: p.scanType === 1, duty: p.scanWindow / p.scanInterval });
    c.complete('leSetExtendedScanParameters');
  },
  leSetExtendedScanEnable: (c, cmd) => {
    if (cmd.enable > 1 || cmd.filterDuplicates > 2) return c.fail('leSetExtendedScanEnable', S.invalidParameters);
    c.complete('leSetExtendedScanEnable');
    if (cmd.enable) c.startScan({ extended: true, filterDuplicates: cmd.filterDuplicates !== 0, durationUs: cmd.duration * 10_000 });
    else c.stopScan();
  },
  leExtendedCreateConnection: (c, cmd) => {
    if (c.initiating) return c.fail('leExtendedCreateConnection', S.commandDisallowed);
    const p = cmd.initiatingPhys.find(x => x.phy === 1) ?? cmd.initiatingPhys[0];
    if (!p || !validConnParams(p) || cmd.initiatorFilterPolicy > 1) return c.fail('leExtendedCreateConnection', S.invalidParameters);
    c.status('leExtendedCreateConnection');
    c.startInitiating({
      extended: true, filterPolicy: cmd.initiatorFilterPolicy, peerAddressType: cmd.peerAddressType & 1,
      peerAddress: cmd.peerAddress.toUpperCase(), intervalMinUs: ms(p.connectionIntervalMin, 1250),
      intervalMaxUs: ms(p.connectionIntervalMax, 1250), latency: p.maxLatency, supervisionTimeoutUs: ms(p.supervisionTimeout, 10_000),
    });
  },
  leReadTransmitPower: c => c.complete('leReadTransmitPower', { minTxPower: -20, maxTxPower: 10 }),
  leSetPrivacyMode: c => c.complete('leSetPrivacyMode'),
};

/** Extended (scan response) data operations (Vol 4, Part E, 7.8.54): 0 intermediate, 1 first, 2 last, 3 complete, 4 unchanged. */
function fragmentOp(current: Uint8Array, op: number, data: Uint8Array): Uint8Array | undefined {
  switch (op) {
    case 3: case 1: return data;
    case 0: case 2: {
      const out = new Uint8Array(current.length + data.length);
      out.set(current);
      out.set(data, current.length);
      return out.length > 1650 ? undefined : out;
    }
    case 4: return data.length === 0 ? current : undefined;
    default: return undefined;
  }
}

