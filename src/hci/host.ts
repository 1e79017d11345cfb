/**
 * HciHost: the transport ↔ command channel ↔ ACL flow ↔ links junction, and host init and recovery.
 *
 * Design overview
 * - Driven by the transport's receiver (every H4 packet from the controller, synchronously) and by the
 *   layers above calling `command()`, `sendAcl()`, `attachLink()`.
 * - Events are decoded with the event tables once, here, and dispatched by kind to listeners; Command
 *   Complete / Command Status feed the command channel, Number Of Completed Packets feeds ACL flow,
 *   Disconnection Complete frees the link's ACL credits (Vol 4, Part E, 4.3) after listeners ran.
 * - ACL from the controller goes to the receiver attached for its handle; ACL for a handle nobody
 *   attached is counted (`stats.aclUnknownHandle`) and dropped, as is any packet that does not decode.
 *   No receive path throws: a DecodeError is counted and logged (STYLE c.1 rule 3).
 * - State: 'idle' → init() → 'ready'; Hardware Error (Vol 4, Part E, 7.7.16) → 'failed' (commands in
 *   flight reject, links are reported lost) until `init()` runs again (re-initialisation without a
 *   restart: Reset, then the capability model is read afresh); transport loss → 'closed' for good
 *   (every pending command, queued ACL and link rejects with the transport's error).
 * - Bounds (issue 15): the host keeps no queue of its own. Events go synchronously to their
 *   consumers, each bounded where it lives (command channel, ACL flow, scanner buffers and registry,
 *   one L2capLink per handle of the 12-bit handle space); ACL for an unknown handle is counted, not
 *   kept. Events arriving while closing: during Adapter.close()'s grace period they are handled as
 *   ever (each link's close waits for its Disconnection Complete); once 'closed' every packet is
 *   dropped on arrival.
 */
import { ByteReader } from '../bytes/reader.js';
import { systemClock, type Clock } from '../clock.js';
import { BlewireError, DecodeError, DisconnectedError, TransportError, HardwareError, InvalidStateError } from '../errors.js';
import { log, logOn } from '../log.js';
import { H4, type HciTransport } from '../transport/types.js';
import { AclFlow } from './acl-flow.js';
import { CommandChannel, HCI_DEFAULT_COMMAND_TIMEOUT_MS } from './command-channel.js';
import {
  COMMAND_TABLE, HCI_COMMANDS, RETURN_TABLE, type CommandReturn, type HciCommand, type HciCommandKind, type HciCommandOf,
} from './commands.js';
import { readControllerInfo, ControllerInfo, type CommandIssuer } from './controller.js';
import { describeEvent, type HciEvent } from './events.js';
import { aclHandleOf, aclHeaderWordAt, aclPbOf, decodeAcl } from './acl.js';
import { AclPb, HCI_ACL_HEADER_SIZE } from './constants.js';
import { decodeHciPacket, encodeCommand, type EventPacket } from './packets.js';
import {
  advertisingReportInPlace, extendedAdvertisingReportInPlace, LE_META_TABLE, type LeMetaEventOf, type LeMetaKind,
} from './le-events.js';
import { EVT_LE_META } from './constants.js';
import type { HciEventKind, HciEventOf } from './events.js';
import { statusName } from './status.js';

export type AnyEventKind = HciEventKind | LeMetaKind;
export type EventOf<K extends AnyEventKind> = K extends LeMetaKind ? LeMetaEventOf<K>
  : K extends HciEventKind ? HciEventOf<K> : never;

/**
 * The in-place consumer of LE Advertising Report and LE Extended Advertising Report events (the
 * scanner): the whole event packet `p` (H4 type first), its Subevent_Code, the report count, and the
 * offset of the first report. The host calls it only for an event whose reports fill it exactly
 * (the table's rule); any other goes the table's way and ends as a counted DecodeError.
 */
export type AdvertisingReportSink = (p: Uint8Array, subevent: number, count: number, at: number) => void;

const SUB_ADV_REPORT = LE_META_TABLE.codeOf('leAdvertisingReport');
const SUB_EXT_ADV_REPORT = LE_META_TABLE.codeOf('leExtendedAdvertisingReport');
/** H4 type, Event_Code, Parameter_Total_Length, Subevent_Code, Num_Reports (Vol 4, Part E, 7.7.65.2 / 7.7.65.13). */
const FIRST_REPORT_AT = 5;

/** Packet_Boundary_Flag of a continuing fragment (Vol 4, Part E, 5.4.2): never offered to AclReceiver.routeAt. */
const ACL_PB_CONTINUING = AclPb.continuing;

/** Where the ACL packets of one connection handle go (the link's L2CAP reassembler). */
export interface AclReceiver {
  /** One ACL packet: Packet_Boundary flag and the payload (a view into the packet). */
  acl(pb: number, data: Uint8Array): void;
  /**
   * The same, in place: the payload is p[start, end) (no view made). A receiver that has it gets
   * every well-framed packet this way (the notification fast path, issue 14). When the transport gave
   * the packet in place (TransportReceiver.packetAt), `buffer` and `base` say where p's octets lie:
   * p[i] is octet base + i of buffer; otherwise they are undefined and 0.
   */
  aclAt?(pb: number, p: Uint8Array, start: number, end: number, buffer?: ArrayBufferLike, base?: number): void;
  /**
   * When set, offered first every well-framed packet that starts a PDU (Packet_Boundary_Flag other than
   * 0b01, continuing), in place (buffer and base as in aclAt, base 0 without a buffer): true when it
   * took the packet, false to have it go to aclAt as usual. The L2CAP link's route for whole ATT PDUs,
   * one function from here to the ATT bearer's listener (issue 14); read per packet, so the receiver
   * may set and clear it at any time.
   */
  readonly routeAt?: ((pb: number, p: Uint8Array, start: number, end: number, buffer: ArrayBufferLike | undefined, base: number) => boolean) | undefined;
}

export interface HostOptions {
  clock?: Clock;
  /** Per-command timeout (default 5 s; HCI_Reset gets at least 10 s). */
  commandTimeoutMs?: number;
}

export interface InitOptions {
  /** Set this static random address (LE Set Random Address) after Reset. */
  randomAddress?: string;
  signal?: AbortSignal;
}

export interface HostStats {
  aclUnknownHandle: number;
  decodeErrors: number;
  unknownPackets: number;
}

/** Event Mask (Vol 4, Part E, 7.3.1): Disconnection Complete, Encryption Change, Read Remote Version,
 * Hardware Error, Data Buffer Overflow, Encryption Key Refresh, LE Meta. */
const EVENT_MASK = (1n << 4n) | (1n << 7n) | (1n << 11n) | (1n << 15n) | (1n << 25n) | (1n << 47n) | (1n << 61n);
/** LE Event Mask (Vol 4, Part E, 7.8.1): sub-events 0x01–0x0D, Scan Timeout, Adv Set Terminated, CSA. */
const LE_EVENT_MASK = 0x1fffn | (1n << 16n) | (1n << 17n) | (1n << 19n);
/** Event Mask Page 2 (Vol 4, Part E, 7.3.69): bit 25, Encryption Change [v2]. */
const EVENT_MASK_PAGE_2 = 1n << 25n;
/** HCI version 5.3, the first with Encryption Change [v2] (Assigned Numbers, HCI version 0x0C). */
const HCI_VERSION_5_3 = 0x0c;

export type HostState = 'idle' | 'initialising' | 'ready' | 'failed' | 'closed';

type Listener = (e: never) => void;

export class HciHost implements CommandIssuer {
  readonly clock: Clock;
  readonly commands: CommandChannel;
  readonly acl: AclFlow;
  info = new ControllerInfo();
  state: HostState = 'idle';
  readonly stats: HostStats = { aclUnknownHandle: 0, decodeErrors: 0, unknownPackets: 0 };
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly links = new Map<number, AclReceiver>();
  /**
   * The handle the last ACL packet was routed to and its receiver, so a link's stream costs no map
   * lookup per packet (issue 14). Forgotten whenever `links` loses or replaces an entry.
   */
  private routedHandle = -1;
  private routed: AclReceiver | undefined;
  private advSink: AdvertisingReportSink | undefined;
  /** Listeners of the decoded advertising report events (per report event a Map lookup cost about 15 ns). */
  private advListeners = 0;
  private synthetic: string | undefined;
  private readonly hardwareErrorListeners = new Set<(code: number) => void>();
  private readonly closeListeners = new Set<(error: Error | undefined) => void>();
  private closedWith: Error | undefined;
  private readonly commandTimeoutMs: number;

  constructor(readonly transport: HciTransport, opts: HostOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? HCI_DEFAULT_COMMAND_TIMEOUT_MS;
    this.commands = new CommandChannel({
      clock: this.clock,
      statusName,
      defaultTimeoutMs: this.commandTimeoutMs,
      send: p => this.transport.send(p),
      onTimeout: name => log.hci('command %s timed out', name),
    });
    this.acl = new AclFlow({ send: p => this.transport.send(p) });
    transport.setReceiver({
      packet: p => this.receive(p),
      packetAt: (b, start, end, buffer, base) => this.receiveAt(b, start, end, buffer, base),
      closed: e => this.transportClosed(e),
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Commands

  /**
   * Send one command from the command table. Resolves with its return parameters (Command Complete)
   * or with `{ status: 0 }` once a Command Status 0 arrived; a non-zero status rejects with
   * HciStatusError, no answer in time with TimeoutError.
   */
  async command<K extends HciCommandKind>(cmd: HciCommandOf<K>, opts: { timeout?: number; signal?: AbortSignal } = {}):
    Promise<CommandReturn<K>> {
    const kind = cmd.kind as HciCommandKind;
    const opcode = COMMAND_TABLE.codeOf(kind);
    const row = HCI_COMMANDS[kind] as { completes?: 'status' | 'none' };
    const packet = encodeCommand(cmd as HciCommand);
    const answer = await this.commands.submit({
      packet, opcode, name: kind, completes: row.completes === 'status' ? 'status' : 'complete',
      timeoutMs: opts.timeout ?? (kind === 'reset' ? Math.max(10_000, this.commandTimeoutMs) : undefined),
      signal: opts.signal,
    });
    if (answer.event === 'status') return { status: 0 } as CommandReturn<K>;
    const r = new ByteReader(answer.returnParameters, 'hci', `${kind} return parameters`);
    // A malformed answer surfaces to the caller as DecodeError (not thrown into the receive path).
    return RETURN_TABLE.decodeBody(opcode, r) as unknown as CommandReturn<K>;
  }

  // ------------------------------------------------------------------------------------------------
  // Init and recovery

  /**
   * Reset the controller and bring it up: event masks, capability model, ACL buffers, and a random
   * address when asked. Callable again after a Hardware Error to recover without restarting.
   */
  async init(opts: InitOptions = {}): Promise<ControllerInfo> {
    if (this.state === 'closed') throw this.closedWith ?? new TransportError('transport closed');
    this.state = 'initialising';
    // Commands sent before the reset will never be answered (Vol 4, Part E, 7.3.2).
    this.commands.abortInFlight(new InvalidStateError('hci: the controller is being reset, so the command will not be answered (Vol 4, Part E, 7.3.2); send it again after the reset'));
    this.commands.reopen();
    this.dropAllLinks(0x16, 'the controller was reset, so it dropped the link (Vol 4, Part E, 7.3.2)');
    try {
      await this.command({ kind: 'reset' }, { signal: opts.signal });
      await this.command({ kind: 'setEventMask', eventMask: EVENT_MASK }, { signal: opts.signal });
      const info = await readControllerInfo(this);
      // Encryption Change [v2] (7.7.8, Core 5.3) carries the key size, so the link needs no Read
      // Encryption Key Size (7.5.7) after each encryption: unmask it with Set Event Mask Page 2 when
      // the controller lists that command and is 5.3 or later (older ones have no bit 25; btvirt 5.66
      // reports 5.0, so it is never asked). A refusal is ignored, as some controllers list the command
      // and fail it: [v1] and the key-size read go on as before.
      if (info.supports('setEventMaskPage2') && (info.version?.hciVersion ?? 0) >= HCI_VERSION_5_3) {
        try {
          await this.command({ kind: 'setEventMaskPage2', eventMaskPage2: EVENT_MASK_PAGE_2 }, { signal: opts.signal });
        } catch (e) {
          if (!(e instanceof BlewireError) || e.code !== 'EHCISTATUS') throw e;
          info.markUnsupported('setEventMaskPage2');
        }
      }
      try {
        await this.command({ kind: 'leSetEventMask', leEventMask: LE_EVENT_MASK }, { signal: opts.signal });
      } catch (e) {
        if (!(e instanceof BlewireError) || e.code !== 'EHCISTATUS') throw e;
      }
      if (opts.randomAddress !== undefined) {
        await this.command({ kind: 'leSetRandomAddress', randomAddress: opts.randomAddress }, { signal: opts.signal });
      }
      this.info = info;
      this.acl.configure(info.acl.length, info.acl.count);
      this.state = 'ready';
      return info;
    } catch (e) {
      if (this.state === 'initialising') this.state = 'failed';
      throw e;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Events

  on<K extends AnyEventKind>(kind: K, fn: (e: EventOf<K>) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(fn as Listener);
    this.countAdvListeners();
    return () => {
      const had = set!.delete(fn as Listener);
      this.countAdvListeners();
      return had;
    };
  }

  private countAdvListeners(): void {
    this.advListeners = (this.listeners.get('leAdvertisingReport')?.size ?? 0) + (this.listeners.get('leExtendedAdvertisingReport')?.size ?? 0);
  }

  /**
   * Receive advertising report events in place (one consumer: the scanner). Listeners registered
   * with on('leAdvertisingReport' | 'leExtendedAdvertisingReport') still get the decoded events.
   */
  onAdvertisingReports(fn: AdvertisingReportSink): () => void {
    this.advSink = fn;
    return () => { if (this.advSink === fn) this.advSink = undefined; };
  }

  /** The controller reported a Hardware Error; the host is 'failed' until init() runs again. */
  onHardwareError(fn: (code: number) => void): () => void {
    this.hardwareErrorListeners.add(fn);
    return () => this.hardwareErrorListeners.delete(fn);
  }

  /** The transport closed (error undefined: closed by us). */
  onClose(fn: (error: Error | undefined) => void): () => void {
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  // ------------------------------------------------------------------------------------------------
  // ACL

  /** Route ACL of `handle` to `receiver` and open its flow-control queue. */
  attachLink(handle: number, receiver: AclReceiver): void {
    this.links.set(handle, receiver);
    this.forgetRoute();
    this.acl.open(handle);
  }

  /** The link is gone: stop routing, return its credits, reject its queued data. */
  detachLink(handle: number, error: Error): void {
    this.links.delete(handle);
    this.forgetRoute();
    this.acl.close(handle, error);
  }

  private forgetRoute(): void {
    this.routedHandle = -1;
    this.routed = undefined;
  }

  /** Queue the ACL packets of one SDU on `handle` (flow-controlled). */
  sendAcl(handle: number, packets: Uint8Array[]): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return this.acl.enqueue(handle, packets);
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.shutdown(new TransportError('the adapter was closed', 'ECLOSED'), undefined);
    await this.transport.close();
  }

  // ------------------------------------------------------------------------------------------------
  // Receive path

  private receive(p: Uint8Array): void {
    if (this.state === 'closed') return;
    try {
      switch (p[0]) {
        case H4.event: return this.receiveEvent(p);
        case H4.acl: return this.receiveAcl(p, 0, p.length, undefined, 0);
        default:
          this.stats.unknownPackets++;
          return;
      }
    } catch (e) {
      this.receiveFailed(e);
    }
  }

  /** TransportReceiver.packetAt: ACL in place; anything else as a view through the usual path. */
  private receiveAt(b: Uint8Array, start: number, end: number, buffer: ArrayBufferLike, base: number): void {
    if (b[start] !== H4.acl) return this.receive(new Uint8Array(buffer, base + start, end - start));
    if (this.state === 'closed') return;
    try {
      this.receiveAcl(b, start, end, buffer, base);
    } catch (e) {
      this.receiveFailed(e);
    }
  }

  private receiveFailed(e: unknown): void {
    if (e instanceof DecodeError) {
      this.stats.decodeErrors++;
      log.hci('dropped undecodable packet: %s', e.message);
      return;
    }
    // A listener threw: log it, never let it break the receive path.
    log.hci('listener error: %O', e);
  }

  private receiveEvent(p: Uint8Array): void {
    // Advertising reports, the bulk of the traffic while scanning: read in place by the scanner.
    if (p[1] === EVT_LE_META && this.advSink !== undefined && p.length > FIRST_REPORT_AT && this.advInPlace(p)) return;
    const evt = decodeHciPacket(p) as EventPacket;
    const len = p.length - 3;
    if (log.hci.enabled) log.hci('rx %s', describeEvent(evt));
    switch (evt.kind) {
      case 'commandComplete': {
        // Hand the raw return parameters (status first) to the channel; typed decode happens in command().
        this.commands.onCommandComplete(evt.numHciCommandPackets, evt.commandOpcode, p.subarray(6, 3 + len));
        break;
      }
      case 'commandStatus':
        this.commands.onCommandStatus(evt.status, evt.numHciCommandPackets, evt.commandOpcode);
        break;
      case 'numberOfCompletedPackets':
        for (const h of evt.handles) this.acl.completed(h.connectionHandle & 0x0fff, h.numCompletedPackets);
        break;
      case 'hardwareError':
        this.hardwareError(evt.hardwareCode);
        break;
      default:
        break;
    }
    this.dispatch(evt);
    if (evt.kind === 'disconnectionComplete' && evt.status === 0) {
      // After listeners (the link closes its channels with the typed reason first), free credits (Vol 4, Part E, 4.3).
      const h = evt.connectionHandle & 0x0fff;
      if (this.links.has(h) || this.acl.isOpen(h)) {
        this.detachLink(h, new DisconnectedError('acl', evt.reason, statusName(evt.reason)));
      }
    }
  }

  /** An advertising report event whose reports fill it exactly goes to the sink; false: not one of those. */
  private advInPlace(p: Uint8Array): boolean {
    const sub = p[3]!;
    const reader = sub === SUB_ADV_REPORT ? advertisingReportInPlace() : sub === SUB_EXT_ADV_REPORT ? extendedAdvertisingReportInPlace() : undefined;
    if (reader === undefined || p[2] !== p.length - 3) return false;
    const count = p[FIRST_REPORT_AT - 1]!;
    if (!reader.fits(p, FIRST_REPORT_AT, p.length, count)) return false;
    // logOn: debug's `enabled` getter costs about 15 ns a read (log.ts), once per report event here.
    if (logOn.hci || this.advListeners > 0) {
      const evt = decodeHciPacket(p) as EventPacket;
      if (logOn.hci) log.hci('rx %s', describeEvent(evt));
      this.advSink!(p, sub, count, FIRST_REPORT_AT);
      this.dispatch(evt);
      return true;
    }
    this.advSink!(p, sub, count, FIRST_REPORT_AT);
    return true;
  }

  private dispatch(evt: HciEvent): void {
    const set = this.listeners.get(evt.kind);
    if (!set) return;
    for (const fn of set) {
      try {
        (fn as (e: HciEvent) => void)(evt);
      } catch (e) {
        log.hci('listener for %s threw: %O', evt.kind, e);
      }
    }
  }

  /**
   * The ACL packet b[start, end) (H4 indicator first); buffer / base as in AclReceiver.aclAt (undefined
   * and 0: the packet came whole through packet(), b is the packet).
   */
  private receiveAcl(b: Uint8Array, start: number, end: number, buffer: ArrayBufferLike | undefined, base: number): void {
    // Every ACL packet passes here: read the header in place; a mis-framed one goes through decodeAcl,
    // whose DecodeError says why (counted in receive()).
    const word = aclHeaderWordAt(b, start, end);
    if (word < 0) {
      const a = decodeAcl(buffer === undefined ? b : new Uint8Array(buffer, base + start, end - start));
      return this.routeAcl(a.handle, a.pb, a.data);
    }
    const handle = aclHandleOf(word);
    let link = this.routed;
    if (handle !== this.routedHandle || link === undefined) {
      link = this.links.get(handle);
      if (link === undefined) {
        this.stats.aclUnknownHandle++;
        return;
      }
      this.routedHandle = handle;
      this.routed = link;
    }
    const data = start + 1 + HCI_ACL_HEADER_SIZE;
    const pb = aclPbOf(word);
    const route = link.routeAt;
    if (route !== undefined && pb !== ACL_PB_CONTINUING && route(pb, b, data, end, buffer, base)) return;
    if (link.aclAt !== undefined) link.aclAt(pb, b, data, end, buffer, base);
    else link.acl(pb, buffer === undefined ? b.subarray(data, end) : new Uint8Array(buffer, base + data, end - data));
  }

  private routeAcl(handle: number, pb: number, data: Uint8Array): void {
    const link = this.links.get(handle);
    if (!link) {
      this.stats.aclUnknownHandle++;
      return;
    }
    link.acl(pb, data);
  }

  private hardwareError(code: number): void {
    log.hci('hardware error 0x%s', code.toString(16));
    this.state = 'failed';
    const err = new HardwareError(code);
    this.commands.abortInFlight(err);
    // A controller that failed has lost its links (it must be reset); report them as lost.
    this.dropAllLinks(0x03 /* Hardware Failure */, `Hardware Failure: the controller reported Hardware Error 0x${code.toString(16).padStart(2, '0')} (Vol 4, Part E, 7.7.16) and lost its links`);
    for (const fn of this.hardwareErrorListeners) fn(code);
  }

  private dropAllLinks(reason: number, why: string): void {
    this.synthetic = why;
    try {
      for (const h of [...this.links.keys()]) {
        // Synthesise Disconnection Complete so every layer tears the link down the one way it knows.
        this.dispatch({ kind: 'disconnectionComplete', status: 0, connectionHandle: h, reason });
        this.detachLink(h, new DisconnectedError('acl', reason, why));
      }
    } finally {
      this.synthetic = undefined;
    }
  }

  private transportClosed(error: Error | undefined): void {
    if (this.state === 'closed') return;
    const err = error instanceof BlewireError ? error
      : new TransportError(`transport ${this.transport.description} closed${error ? `: ${error.message}` : ''}`, 'ETRANSPORT',
        { cause: error });
    this.shutdown(err, err);
  }

  /**
   * While the host reports links down that the controller never disconnected (transport lost, Hardware
   * Error, a reset), what really happened, in words; undefined for a real Disconnection Complete.
   * Listeners of 'disconnectionComplete' use it instead of the synthetic event's status name (which
   * would say "Connection Terminated By Local Host" for a transport EOF).
   */
  get syntheticDisconnect(): string | undefined {
    return this.synthetic;
  }

  private shutdown(err: Error, reported: Error | undefined): void {
    this.closedWith = err;
    this.commands.close(err);
    // A transport that ended under us (reported) is not a local disconnect: say it was lost.
    this.synthetic = reported ? `the transport to the controller was lost: ${reported.message}` : undefined;
    try {
      for (const h of [...this.links.keys()]) {
        this.dispatch({ kind: 'disconnectionComplete', status: 0, connectionHandle: h, reason: 0x16 });
        this.links.delete(h);
        this.forgetRoute();
      }
    } finally {
      this.synthetic = undefined;
    }
    this.acl.closeAll(err);
    this.state = 'closed';
    for (const fn of this.closeListeners) fn(reported);
  }
}
