/**
 * A virtual peripheral: advertising payloads, a GATT database served by the shared ATT server
 * (src/gatt/server-db.ts), notification sources and scripted behaviours, built from the plain-data
 * SimPeripheral description.
 *
 * Design overview
 * - The controller (controller.ts) owns the radio side: when this peripheral advertises, whether a
 *   scanner hears it, and the link once connected. For each link the controller calls `connect()`,
 *   which returns a PeerSession: the peripheral's host stack for that link (L2CAP reassembly and
 *   fixed channels, an ATT bearer in the server role, SMP and signalling refusals).
 * - Behaviours act on ATT requests before the bearer sees them (so a silent or lying peer needs no
 *   cooperation from the ATT server): ignore, raw (protocol-breaking) answers, error responses,
 *   delays, disconnect on a request or after N answers.
 * - Notification sources tick only while the client has enabled them in the CCCD (checked after
 *   every write the session serves), so an idle simulation has no events to run.
 * - Timers: every timer is a simulator event on the shared virtual clock (never a host timer); all
 *   of a session's timers are cancelled when its link closes.
 */
import { AttBearer } from '../att/bearer.js';
import { attMethodOf, encodeAtt } from '../att/pdus.js';
import type { Clock } from '../clock.js';
import { uuid as toUuid } from '../codec/uuid.js';
import { DisconnectedError, ArgumentError } from '../errors.js';
import { Cccd } from '../gatt/constants.js';
import { GattDatabase, type GattServerLink, type ServiceDef } from '../gatt/server-db.js';
import type { ChannelReceiver, FixedChannel } from '../l2cap/channel.js';
import { L2capReassembler } from '../l2cap/reassembly.js';
import { decodeLeSignalling, encodeSignalling } from '../l2cap/signalling.js';
import { encodeSmp } from '../smp/pdus.js';
import { log } from '../log.js';
import { PeerPairing, type PeerBond, type PeerPairingStats } from './pairing.js';
import type { SimEvent } from './clock.js';
import { emptyChannelStats, PeerChannels, type PeerChannelStats } from './channels.js';
import type { AttMatch, NotificationSource, SimGenerator, SimPeripheral, SimService } from './types.js';
import { adBytes, bytesOf, normAddress, Rng } from './util.js';
import { generateRpa } from '../gap/privacy.js';

const CID_ATT = 0x0004, CID_SIGNALLING = 0x0005, CID_SMP = 0x0006;

/** What a PeerSession may ask of the link it lives on (provided by the controller). */
export interface PeerLinkApi {
  readonly handle: number;
  readonly clock: Clock;
  /**
   * Hand one L2CAP payload on a fixed channel to the peer's controller. Resolves when it took the
   * frame into a buffer (true), or dropped it (false: link closing, or the peer's host queue full).
   */
  send(cid: number, payload: Uint8Array): Promise<boolean>;
  /** Terminate the link from the peripheral's side (LL_TERMINATE_IND). */
  terminate(reason: number): void;
  /** LL Connection Parameters Request (the central's host sees LE Remote Connection Parameter Request). */
  requestParameters(p: { intervalMinMs: number; intervalMaxMs: number; latency: number; timeoutMs: number }): void;
  schedule(us: number, fn: () => void): SimEvent;
  /** The initiator's CONNECT_IND as the advertiser hears it (used by host advertisers on a shared air). */
  readonly central?: import('./air.js').AirConnectRequest;
}

export interface PeripheralStats {
  connections: number;
  /** ATT requests received over all links. */
  attRequests: number;
  notificationsSent: number;
  indicationsSent: number;
  /**
   * Values a notification source produced while its previous one still waited for a controller
   * buffer (or, for indications, for the confirmation): skipped, as an application on a real stack
   * must when its controller's buffers are full, instead of piling up a backlog.
   */
  valuesSkipped: number;
}

export class VirtualPeripheral {
  /** The address on the air now (with privacy: its current RPA, replaced by `rotate`). */
  address: string;
  /** 0 public, 1 random (HCI address type) of `address`. */
  addressType: 0 | 1;
  /** Its identity address and type (the spec's `address`; the same as `address` without privacy). */
  readonly identityAddress: string;
  readonly identityType: 0 | 1;
  /** With privacy: the IRK in SMP order (least significant octet first), as distributed. */
  readonly irk: Uint8Array | undefined;
  /** RPAs made so far (with privacy). */
  rpaCount = 0;
  private rpaEpoch = -1;
  readonly name: string;
  readonly advData: Uint8Array;
  readonly scanRspData: Uint8Array;
  readonly extended: boolean;
  readonly connectable: boolean;
  readonly scannable: boolean;
  readonly intervalUs: number;
  readonly db: GattDatabase | undefined;
  /** Current RSSI at our scanner (drifts per advertising event). */
  rssi: number;
  session: PeerSession | undefined;
  /** Counters of its credit-based channels (spec.channels), over all links. */
  readonly channelStats: PeerChannelStats = emptyChannelStats();
  readonly stats: PeripheralStats = { connections: 0, attRequests: 0, notificationsSent: 0, indicationsSent: 0, valuesSkipped: 0 };
  /** Keys the peer keeps per central (pairing with bonding); at most one per central address. */
  readonly bonds = new Map<string, PeerBond>();
  readonly pairingStats: PeerPairingStats = { pairings: 0, failures: 0 };

  constructor(readonly spec: SimPeripheral) {
    this.address = this.identityAddress = normAddress(spec.address);
    this.addressType = this.identityType = (spec.addressType ?? 'random') === 'public' ? 0 : 1;
    this.name = spec.name ?? this.address;
    if (spec.privacy) {
      const irk = bytesOf(spec.privacy.irk);
      if (irk.length !== 16) throw new ArgumentError(`sim: ${this.name}: privacy.irk must be 16 octets`);
      this.irk = Uint8Array.from(irk).reverse();
      const rotate = spec.privacy.rotateMs ?? 15 * 60_000;
      if (!(rotate > 0)) throw new ArgumentError(`sim: ${this.name}: privacy.rotateMs must be positive`);
    } else {
      this.irk = undefined;
    }
    const adv = spec.advertising ?? {};
    this.extended = adv.type === 'extended';
    this.advData = adBytes(adv.data);
    this.scanRspData = adBytes(adv.scanResponse);
    const max = this.extended ? 1650 : 31; // Vol 4, Part E, 7.8.7 (31) and 7.8.57 (extended maximum)
    if (this.advData.length > max || this.scanRspData.length > max) {
      throw new ArgumentError(`sim: ${this.name}: advertising data longer than ${max} bytes`);
    }
    this.db = spec.gatt ? new GattDatabase(spec.gatt.map(serviceDef)) : undefined;
    this.connectable = adv.connectable ?? this.db !== undefined;
    this.scannable = adv.scannable ?? this.scanRspData.length > 0;
    this.intervalUs = Math.round((adv.intervalMs ?? 100) * 1000);
    this.rssi = adv.rssi ?? -60;
  }

  /** Advertising now (a host's advertising set on a shared air may have changed or stopped). */
  get onAir(): boolean {
    return true;
  }

  /**
   * With privacy: the RPA of the current period (`rotateMs` of virtual time), made on the first
   * advertising event of each period; kept while a link is up (the link was made with it).
   */
  rotate(nowUs: number, rng: Rng): void {
    const irk = this.irk;
    if (!irk || this.session) return;
    const epoch = Math.floor(nowUs / ((this.spec.privacy!.rotateMs ?? 15 * 60_000) * 1000));
    if (epoch === this.rpaEpoch) return;
    this.rpaEpoch = epoch;
    this.address = generateRpa(irk, n => rng.bytes(n));
    this.addressType = 1;
    this.rpaCount++;
  }

  /** Advance the RSSI random walk (one advertising event), kept within ±15 dB of the mean. */
  driftRssi(rng: Rng): number {
    const adv = this.spec.advertising ?? {};
    const mean = adv.rssi ?? -60;
    const step = adv.rssiDrift ?? 0;
    if (step > 0) this.rssi = Math.max(mean - 15, Math.min(mean + 15, Math.round(this.rssi + rng.gauss(step))));
    return Math.max(-127, Math.min(20, this.rssi));
  }

  /** A link to this peripheral was established. */
  connect(api: PeerLinkApi, rng: Rng): PeerSession | import('./link.js').LinkPeer {
    this.stats.connections++;
    this.session = new PeerSession(this, api, rng);
    return this.session;
  }
}

/** The peripheral's host stack on one link. */
export class PeerSession {
  private readonly reassembler = new L2capReassembler();
  private readonly timers: SimEvent[] = [];
  private readonly matchCounts = new Map<object, number>();
  private readonly tickers = new Map<NotificationSource, SimEvent>();
  private attReceiver: ChannelReceiver | undefined;
  private readonly gattLink: GattServerLink | undefined;
  private answered = 0;
  private ended = false;
  private readonly tick = new Map<NotificationSource, number>();
  /** Sources whose last value is still waiting for a buffer (notify) or a confirmation (indicate). */
  private readonly busy = new Set<NotificationSource>();
  /** The peer's credit-based channels on this link, when its description has any. */
  readonly channels: PeerChannels | undefined;
  /** The peer's Security Manager on this link (when the peripheral pairs). */
  readonly pairing: PeerPairing | undefined;

  constructor(readonly peripheral: VirtualPeripheral, private readonly api: PeerLinkApi, private readonly rng: Rng) {
    const channel: FixedChannel = {
      handle: api.handle,
      cid: CID_ATT,
      mtu: 0xffff, // a fixed channel: ATT bounds its own PDUs (Vol 3, Part A, 3.1)
      close: () => { this.attReceiver = undefined; },
      send: sdu => {
        if (this.ended) return Promise.reject(new DisconnectedError('sim peer send'));
        // Back-pressure from the peer's controller: resolves once the frame has a buffer.
        const accepted = this.api.send(CID_ATT, sdu);
        if (attMethodOf(sdu[0] ?? 0) === 'response') this.onAnswered();
        return accepted.then(() => undefined);
      },
      setReceiver: r => { this.attReceiver = r; },
    };
    const db = peripheral.db;
    if (db) {
      this.gattLink = db.createLink();
      // Like a real stack (BlueZ drops the link), a peer whose indication goes unconfirmed for the 30 s
      // transaction timeout ends the link: its bearer may send nothing more (Vol 3, Part F, 3.3.3), and a
      // peer that stayed connected but mute would leave the central waiting on every later request.
      const bearer = new AttBearer(channel, { clock: api.clock, mtu: peripheral.spec.mtu ?? 247, server: this.gattLink.role,
        onTimeout: () => this.terminate() });
      this.gattLink.bind(bearer);
    } else {
      // No GATT database: every request gets Request Not Supported from a bare bearer.
      new AttBearer(channel, { clock: api.clock, mtu: peripheral.spec.mtu ?? 247 });
    }
    if (peripheral.spec.channels?.length) {
      this.channels = new PeerChannels(api, peripheral.spec.channels, peripheral.channelStats);
    }
    this.pairing = peripheral.spec.pairing ? new PeerPairing(peripheral.spec.pairing, {
      clock: api.clock,
      central: { type: (api.central?.addressType ?? 0) & 1 ? 1 : 0, address: api.central?.address ?? '00:00:00:00:00:00' },
      local: { type: peripheral.addressType, address: peripheral.address },
      ...(peripheral.irk ? { keys: { irk: peripheral.irk, identity: { type: peripheral.identityType, address: peripheral.identityAddress } } } : {}),
      send: pdu => { if (!this.ended) void this.api.send(CID_SMP, pdu); },
      terminate: reason => this.terminate(reason),
      schedule: (us, fn) => this.api.schedule(us, fn),
    }, peripheral.bonds, peripheral.pairingStats, rng) : undefined;
    const b = peripheral.spec.behaviour ?? {};
    if (b.disconnectAfterMs !== undefined) {
      this.timers.push(api.schedule(b.disconnectAfterMs * 1000, () => this.terminate()));
    }
    if (b.requestParameters) {
      const p = b.requestParameters;
      this.timers.push(api.schedule(p.afterMs * 1000, () => this.api.requestParameters({
        intervalMinMs: p.intervalMinMs, intervalMaxMs: p.intervalMaxMs, latency: p.latency ?? 0, timeoutMs: p.timeoutMs ?? 4000,
      })));
    }
  }

  /** The GATT server state of this link (CCCDs, notify/indicate), when the peripheral has a database. */
  get gatt(): GattServerLink | undefined {
    return this.gattLink;
  }

  /** One LL data PDU from the central: `start` for the first fragment of an L2CAP PDU. */
  receive(start: boolean, data: Uint8Array): void {
    if (this.ended) return;
    const pdu = this.reassembler.push(this.api.handle, start ? 0b10 : 0b01, data);
    if (!pdu) return;
    switch (pdu.cid) {
      case CID_ATT: return this.receiveAtt(pdu.payload);
      case CID_SIGNALLING: return this.receiveSignalling(pdu.payload);
      case CID_SMP:
        if (this.pairing) return this.pairing.receive(pdu.payload);
        // A peer without pairing: Pairing Failed, Pairing Not Supported (Vol 3, Part H, 3.5.5).
        if (pdu.payload[0] === 0x01) void this.api.send(CID_SMP, encodeSmp({ kind: 'pairingFailed', reason: 0x05 }));
        return;
      default:
        // A K-frame on a dynamic CID goes to the peer's channels (Vol 3, Part A, 2.1); the rest is dropped.
        if (pdu.cid >= 0x0040 && pdu.cid <= 0x007f) this.channels?.frame(pdu.cid, pdu.payload);
        return;
    }
  }

  /** The link is gone: cancel timers, end the bearer. */
  closed(reason: number): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of this.timers) t.cancel();
    this.pairing?.closed();
    for (const t of this.tickers.values()) t.cancel();
    this.tickers.clear();
    this.attReceiver?.closed(new DisconnectedError('sim peer', reason));
    this.channels?.closed(reason);
    if (this.peripheral.session === this) this.peripheral.session = undefined;
  }

  private terminate(reason?: number): void {
    if (this.ended) return;
    this.api.terminate(reason ?? this.peripheral.spec.behaviour?.disconnectReason ?? 0x13);
  }

  private onAnswered(): void {
    this.answered++;
    const n = this.peripheral.spec.behaviour?.disconnectAfterRequests;
    if (n !== undefined && this.answered >= n) this.terminate();
  }

  // ---- ATT behaviours ------------------------------------------------------------------------------

  private receiveAtt(pdu: Uint8Array): void {
    const opcode = pdu[0] ?? 0;
    const isRequest = attMethodOf(opcode) === 'request';
    if (isRequest) {
      this.peripheral.stats.attRequests++;
      const b = this.peripheral.spec.behaviour ?? {};
      const handle = requestHandle(opcode, pdu);
      const hit = <T extends AttMatch>(rules: T[] | undefined): T | undefined => {
        for (const r of rules ?? []) if (this.matches(r, opcode, handle)) return r;
        return undefined;
      };
      // Attributes that need security (SimPairing.protect): Insufficient Authentication (0x05) on a
      // link that is not encrypted, or not with an authenticated key or a key as long as asked (Vol 3,
      // Part F, 4.9).
      const guard = hit(this.peripheral.spec.pairing?.protect);
      const p = this.pairing;
      if (guard && !(p?.encrypted && (!guard.authenticated || p.authenticated) && p.keySize >= (guard.minKeySize ?? 7))) {
        return void this.sendAtt(encodeAtt({ kind: 'errorRsp', requestOpcode: opcode, handle, errorCode: guard.error ?? 0x05 }));
      }
      const disc = hit(b.disconnectOn);
      if (disc) return this.terminate(disc.reason);
      if (hit(b.ignore)) return;
      const raw = hit(b.raw);
      if (raw) return void this.sendAtt(bytesOf(raw.respond));
      const err = hit(b.errors);
      if (err) {
        return void this.sendAtt(encodeAtt({ kind: 'errorRsp', requestOpcode: opcode, handle, errorCode: err.error }));
      }
      const delay = (hit(b.delays)?.ms ?? 0) + (b.responseDelayMs ?? 0);
      if (delay > 0) {
        this.timers.push(this.api.schedule(Math.round(delay * 1000), () => this.deliverAtt(pdu)));
        return;
      }
    }
    this.deliverAtt(pdu);
  }

  private sendAtt(pdu: Uint8Array): void {
    void this.api.send(CID_ATT, pdu);
    this.onAnswered();
  }

  private deliverAtt(pdu: Uint8Array): void {
    if (this.ended) return;
    this.attReceiver?.data(pdu);
    // A write may have changed a CCCD: start or stop the notification sources it feeds.
    if (pdu[0] === 0x12 || pdu[0] === 0x52) this.updateSources();
  }

  /** Counts every request a rule could match and applies `nth`. */
  private matches(rule: AttMatch, opcode: number, handle: number): boolean {
    if (rule.opcode !== undefined && rule.opcode !== opcode) return false;
    if (rule.handle !== undefined && rule.handle !== handle) return false;
    const n = (this.matchCounts.get(rule) ?? 0) + 1;
    this.matchCounts.set(rule, n);
    return rule.nth === undefined || rule.nth === n;
  }

  // ---- notification sources ------------------------------------------------------------------------

  private updateSources(): void {
    const db = this.peripheral.db;
    if (!db || !this.gattLink || this.ended) return;
    for (const src of this.peripheral.spec.notifications ?? []) {
      const c = db.characteristic(src.characteristic);
      if (!c?.cccdHandle) continue;
      const bit = (src.mode ?? 'notify') === 'indicate' ? Cccd.indication : Cccd.notification;
      const on = (this.gattLink.cccd(c.cccdHandle) & bit) !== 0;
      const running = this.tickers.get(src);
      if (on && !running) this.startSource(src, c.valueHandle);
      else if (!on && running) {
        running.cancel();
        this.tickers.delete(src);
      }
    }
  }

  private startSource(src: NotificationSource, valueHandle: number): void {
    const every = Math.max(1, Math.round(src.everyMs * 1000));
    const intervals = src.intervalsMs?.length ? src.intervalsMs.map(ms => (Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1000) : 0)) : undefined;
    // The delay (µs) before value i: the same index picks the value and its delay, so they stay paired
    // across unsubscribe / resubscribe and when the values cycle.
    const delayBefore = (i: number): number => (intervals ? intervals[i % intervals.length]! : every);
    const fire = (): void => {
      if (this.ended || !this.gattLink) return;
      const i = this.tick.get(src) ?? 0;
      this.tick.set(src, i + 1);
      this.tickers.set(src, this.api.schedule(delayBefore(i + 1), fire));
      if (this.busy.has(src)) {
        // The previous value has no buffer yet (or no confirmation): this sample is skipped.
        this.peripheral.stats.valuesSkipped++;
        return;
      }
      const v = src.next ? src.next(i, this.api.clock.now()) : generate(src.generator, i, this.rng);
      this.peripheral.db!.setValue(valueHandle, v);
      const indicate = src.mode === 'indicate';
      const sent = indicate ? this.gattLink.indicate(valueHandle, v) : this.gattLink.notify(valueHandle, v);
      this.busy.add(src);
      sent.then(ok => {
        this.busy.delete(src);
        if (ok && indicate) this.peripheral.stats.indicationsSent++;
        else if (ok) this.peripheral.stats.notificationsSent++;
      }, e => {
        this.busy.delete(src);
        log.sim('%s: notification source: %s', this.peripheral.name, (e as Error).message);
      });
    };
    this.tickers.set(src, this.api.schedule(delayBefore(this.tick.get(src) ?? 0), fire));
  }

  // ---- signalling ----------------------------------------------------------------------------------

  private receiveSignalling(payload: Uint8Array): void {
    let cmd;
    try {
      cmd = decodeLeSignalling(payload);
    } catch {
      return;
    }
    if (this.channels?.signalling(cmd)) return;
    // A peripheral accepts nothing the central could ask on LE signalling here (no LE credit-based
    // channels): Command Reject, Command Not Understood (Vol 3, Part A, 4.1). Responses are absorbed.
    const requests = new Set(['connectionReq', 'configurationReq', 'disconnectionReq', 'echoReq', 'informationReq',
      'connectionParameterUpdateReq', 'leCreditBasedConnectionReq', 'creditBasedConnectionReq', 'creditBasedReconfigureReq']);
    if (requests.has(cmd.kind) || cmd.kind === 'unknown') {
      void this.api.send(CID_SIGNALLING, encodeSignalling({ kind: 'commandRejectRsp', identifier: cmd.identifier, reason: 0, data: new Uint8Array(0) }));
    }
  }
}

/** The attribute handle a request names (handle or starting handle), 0 where it names none. */
function requestHandle(opcode: number, pdu: Uint8Array): number {
  // Opcodes whose first parameter is a handle (Vol 3, Part F, 3.4): Find Information, Find By Type
  // Value, Read By Type, Read, Read Blob, Read Multiple (first), Read By Group Type, Write, Prepare Write,
  // Read Multiple Variable.
  const withHandle = [0x04, 0x06, 0x08, 0x0a, 0x0c, 0x0e, 0x10, 0x12, 0x16, 0x20];
  if (!withHandle.includes(opcode) || pdu.length < 3) return 0;
  return pdu[1]! | (pdu[2]! << 8);
}

/** The i-th value of a built-in generator. */
export function generate(g: SimGenerator | undefined, i: number, rng: Rng): Uint8Array {
  switch (g?.kind) {
    case 'heartRate': {
      // Heart Rate Measurement (GATT Specification Supplement 3.113): flags 0x06 = UINT8 bpm, sensor
      // contact supported and detected.
      const bpm = Math.max(30, Math.min(220, Math.round((g.bpm ?? 72) + Math.sin(i / 3) * (g.spread ?? 4) + rng.gauss(1))));
      return Uint8Array.of(0x06, bpm);
    }
    case 'temperature': {
      // Temperature Measurement (Supplement 3.216): flags 0 (Celsius), then an IEEE 11073 FLOAT:
      // 24-bit signed mantissa, 8-bit signed exponent (here -1: tenths of a degree).
      const tenths = Math.round(((g.celsius ?? 36.6) + Math.sin(i / 2) * (g.spread ?? 0.2)) * 10);
      const m = tenths & 0xffffff;
      return Uint8Array.of(0x00, m & 0xff, (m >> 8) & 0xff, (m >> 16) & 0xff, 0xff);
    }
    case 'counter': {
      const n = g.bytes ?? 1;
      const out = new Uint8Array(n);
      for (let k = 0; k < n; k++) out[k] = (i >>> (8 * k)) & 0xff;
      return out;
    }
    case 'cycle':
      return g.values.length ? bytesOf(g.values[i % g.values.length]) : new Uint8Array(0);
    case undefined:
      return Uint8Array.of(i & 0xff);
  }
}

function serviceDef(s: SimService): ServiceDef {
  return {
    uuid: toUuid(s.uuid),
    ...(s.primary !== undefined ? { primary: s.primary } : {}),
    ...(s.handle !== undefined ? { handle: s.handle } : {}),
    ...(s.endHandle !== undefined ? { endHandle: s.endHandle } : {}),
    ...(s.id !== undefined ? { id: s.id } : {}),
    ...(s.includes !== undefined ? { includes: s.includes } : {}),
    characteristics: (s.characteristics ?? []).map(c => ({
      uuid: toUuid(c.uuid),
      ...(c.handle !== undefined ? { handle: c.handle } : {}),
      properties: c.properties,
      // No value given: the database computes the ones it can (the Database Hash, Vol 3, Part G, 7.3;
      // Client Supported Features per link) and serves the rest as empty.
      ...(c.value !== undefined ? { value: bytesOf(c.value) } : {}),
      ...(c.maxLength !== undefined ? { maxLength: c.maxLength } : {}),
      ...(c.cccd !== undefined ? { cccd: c.cccd } : {}),
      descriptors: (c.descriptors ?? []).map(d => ({
        uuid: toUuid(d.uuid),
        ...(d.handle !== undefined ? { handle: d.handle } : {}),
        ...(d.value !== undefined ? { value: bytesOf(d.value) } : {}),
        ...(d.writable !== undefined ? { writable: d.writable } : {}),
      })),
    })),
  };
}
