/**
 * What the stream fuzzer feeds, per layer, and the checks it makes (issue 15).
 *
 * A StackTarget is ONE adapter, brought up once on a scripted fake controller with an injected
 * FakeClock, with a live link (handle 0x0040) and a running scan. The hostile stream goes straight
 * into the host's transport receiver, synchronously, packet after packet; between windows of packets
 * the fake controller's honest answers run (microtasks), virtual time moves on, the link is set up
 * again if the stream dropped it and GATT operations are started so responses have requests to match.
 * At each checkpoint the stream pauses and virtual time runs until every operation must have settled:
 *
 * - no uncaught exception: nothing thrown out of the receive path, no 'uncaughtException' /
 *   'unhandledRejection' (the runner counts those against the layer running);
 * - no hung promise: every public operation started settles (only with a BlewireError) within
 *   CHECK_DRAIN_MS of virtual time once the stream pauses;
 * - no leaked timer: the clock's pending timers stay under MAX_TIMERS at a checkpoint, and none is
 *   left once the adapter is closed and the link is gone;
 * - bounded memory: heap after a full GC stays within MAX_HEAP_GROWTH of what it was after bring-up.
 *
 * A CaptureTarget parses mutated capture files (every record, then the decoder over them): only
 * typed errors, bounded memory.
 */
import { FakeClock } from '../../src/clock.js';
import { BlewireError, DisconnectedError } from '../../src/errors.js';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { HciEvent } from '../../src/hci/events.js';
import { encodeAcl, encodeEvent } from '../../src/hci/packets.js';
import type { TransportReceiver } from '../../src/transport/types.js';
import { parseCapture } from '../../src/capture/index.js';
import { decodeRecords } from '../../src/inspect/decode.js';
import { SmpSession, type SmpAction } from '../../src/smp/session.js';
import { p256Generate, type P256KeyPair } from '../../src/smp/crypto.js';
import { FakeController } from '../../test/unit/hci/host-fake-controller.js';
import { loadCorpus, type Corpus } from './corpus.js';
import { mutate, Rng } from './mutate.js';
import { filesGenerator, FilesTarget } from './files.js';

export const LAYERS = ['hci-events', 'acl-l2cap', 'signalling', 'att-client', 'att-server', 'smp', 'ad', 'capture', 'files'] as const;
export type Layer = (typeof LAYERS)[number];

/** Virtual time a paused stream gets for every operation to settle (op timeouts are ≤ 30 s). */
export const CHECK_DRAIN_MS = 120_000;
/** Timers a live adapter with one link and a scan may hold at a checkpoint (a handful in practice). */
export const MAX_TIMERS = 64;
/** Heap growth allowed over the post-bring-up baseline, after a full GC (registry, caches, queues are bounded far below). */
export const MAX_HEAP_GROWTH = 64 * 1024 * 1024;

const LINK = 0x0040;
const PEER = 'C0:11:22:33:44:55';

export interface Target {
  readonly layer: Layer;
  /** One hostile input (for CaptureTarget, a file; its records count as packets). */
  feed(input: Uint8Array): number;
  /** Between windows: honest answers run, time moves on, state is set up again. */
  window(): Promise<void>;
  /** Pause the stream and check; returns the problems found (empty: fine). */
  checkpoint(): Promise<string[]>;
  /** Close everything; returns what was left behind. */
  close(): Promise<string[]>;
}

/** One macrotask turn: every queued microtask (and those they queue) runs. */
export function flush(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

async function advance(clock: FakeClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    await flush();
    const next = clock.nextDue();
    if (next === undefined || next > end) break;
    clock.fireNext(next);
  }
  clock.moveTo(end);
  await flush();
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  return process.memoryUsage().heapUsed;
}

/** The fake controller, with the host's receiver in hand so the stream bypasses the async pair. */
class StreamController extends FakeController {
  receiver: TransportReceiver | undefined;
  override setReceiver(r: TransportReceiver): void {
    this.receiver = r;
    super.setReceiver(r);
  }
  private readonly credits = new Map<number, number>();
  private creditsDue = false;
  /**
   * ACL from the host: not recorded (a stream of millions), its buffers returned in one Number Of
   * Completed Packets per microtask turn for every handle (Vol 4, Part E, 7.7.19), as a controller
   * batches them; commands go to the scripted fake.
   */
  override send(packet: Uint8Array): void {
    if (packet[0] !== 0x02) return super.send(packet);
    if (this.closed) throw new Error('fake controller: send after close');
    const h = (packet[1]! | (packet[2]! << 8)) & 0x0fff;
    this.credits.set(h, (this.credits.get(h) ?? 0) + 1);
    if (this.creditsDue) return;
    this.creditsDue = true;
    queueMicrotask(() => {
      this.creditsDue = false;
      const handles = [...this.credits].map(([connectionHandle, numCompletedPackets]) => ({ connectionHandle, numCompletedPackets }));
      this.credits.clear();
      if (!this.closed) this.receiver?.packet(encodeEvent({ kind: 'numberOfCompletedPackets', handles }));
    });
  }
  /** The fake records every packet for tests; a stream of millions must not keep them. */
  forget(): void {
    this.wire.length = 0;
    this.commands.length = 0;
    this.aclOut.length = 0;
  }
}

interface Op { name: string; settled: boolean; error?: unknown }

// ---- generators: one hostile H4 packet per call ------------------------------------------------

type Generator = (rng: Rng) => Uint8Array;

function l2capFrame(cid: number, sdu: Uint8Array): Uint8Array {
  const f = new Uint8Array(4 + sdu.length);
  f[0] = sdu.length & 0xff; f[1] = sdu.length >> 8; f[2] = cid & 0xff; f[3] = cid >> 8;
  f.set(sdu, 4);
  return f;
}

/** A well-framed ACL packet on our link carrying a mutated SDU of `cid`: deep into that layer. */
function onChannel(cid: number, pool: (c: Corpus) => Uint8Array[]): (c: Corpus) => Generator {
  return c => {
    const list = pool(c);
    return rng => encodeAcl({ handle: rng.chance(0.97) ? LINK : rng.int(0x0f00), pb: 2,
      data: l2capFrame(cid, rng.chance(0.1) ? rng.bytes(rng.int(40)) : mutate(rng, rng.pick(list), 0, 600)) });
  };
}

const SYNTHETIC_EVENTS = (rng: Rng): HciEvent => (() => {
  const h = rng.chance(0.8) ? LINK : rng.int(0x1000);
  switch (rng.int(8)) {
    case 0: return { kind: 'numberOfCompletedPackets', handles: [{ connectionHandle: h, numCompletedPackets: rng.chance(0.5) ? 1 : rng.int(0x10000) }] };
    case 1: return { kind: 'leConnectionUpdateComplete', status: rng.chance(0.7) ? 0 : rng.int(256), connectionHandle: h,
      connectionInterval: rng.int(0x10000), peripheralLatency: rng.int(0x10000), supervisionTimeout: rng.int(0x10000) };
    case 2: return { kind: 'leDataLengthChange', connectionHandle: h, maxTxOctets: rng.int(0x10000), maxTxTime: rng.int(0x10000),
      maxRxOctets: rng.int(0x10000), maxRxTime: rng.int(0x10000) };
    case 3: return { kind: 'encryptionChange', status: rng.int(3), connectionHandle: h, encryptionEnabled: rng.int(3) };
    case 4: return { kind: 'lePhyUpdateComplete', status: rng.int(2), connectionHandle: h, txPhy: rng.int(5), rxPhy: rng.int(5) };
    case 5: return { kind: 'leRemoteConnectionParameterRequest', connectionHandle: h, intervalMin: rng.int(0x10000),
      intervalMax: rng.int(0x10000), maxLatency: rng.int(0x10000), timeout: rng.int(0x10000) };
    case 6: return { kind: 'commandStatus', status: rng.int(3), numHciCommandPackets: rng.int(3), commandOpcode: rng.chance(0.5) ? 0x2013 : rng.int(0x10000) };
    default: return { kind: 'dataBufferOverflow', linkType: rng.int(3) };
  }
})() as HciEvent;

const GENERATORS: Record<Exclude<Layer, 'capture' | 'files'>, (c: Corpus) => Generator> = {
  'hci-events': c => rng => {
    let p: Uint8Array;
    if (rng.chance(0.35)) p = encodeEvent(SYNTHETIC_EVENTS(rng));
    else p = mutate(rng, rng.pick(c.events), 2, 258);
    // Disconnection Complete and Hardware Error for our link are legal but end the state under test:
    // they stay in the stream, rarer than the rest (1 in ~4000 is left through).
    if ((p[1] === 0x05 || p[1] === 0x10) && !rng.chance(0.02)) p[1] = 0x0e;
    // Mostly an honest length octet (the decoder gets past framing), sometimes a lie.
    if (p.length >= 3 && rng.chance(0.85)) p[2] = Math.min(255, p.length - 3);
    return p.length > 258 ? p.subarray(0, 258) : p;
  },
  'acl-l2cap': c => {
    let pending: Uint8Array | undefined;
    return rng => {
      if (pending) {
        const data = pending;
        pending = undefined;
        return encodeAcl({ handle: LINK, pb: rng.chance(0.9) ? 1 : rng.int(4), data });
      }
      const frame = rng.chance(0.8) ? mutate(rng, rng.pick(c.l2cap), 0, 700) : rng.bytes(rng.int(64));
      const handle = rng.chance(0.9) ? LINK : rng.pick([0x0041, 0x0eff, 0x0000, rng.int(0x1000)]);
      const pb = rng.pick([2, 2, 2, 1, 0, 3]);
      if (frame.length > 8 && rng.chance(0.3)) {
        const cut = 1 + rng.int(frame.length - 1);
        pending = frame.slice(cut);
        return encodeAcl({ handle, pb, data: frame.subarray(0, cut) });
      }
      // Raw: PB/BC bits and the ACL length octets themselves mutated too, sometimes.
      const p = encodeAcl({ handle, pb, data: frame });
      return rng.chance(0.1) ? mutate(rng, p, 1, 700) : p;
    };
  },
  signalling: onChannel(0x0005, c => c.signalling),
  'att-client': onChannel(0x0004, c => c.attToClient),
  'att-server': onChannel(0x0004, c => c.attToServer),
  smp: onChannel(0x0006, c => c.smp),
  ad: c => rng => {
    const n = rng.chance(0.8) ? 1 : 1 + rng.int(3);
    const reports = [];
    for (let i = 0; i < n; i++) {
      const data = rng.chance(0.9) ? mutate(rng, rng.pick(c.ad), 0, rng.chance(0.7) ? 31 : 229) : rng.bytes(rng.int(32));
      const address = `C0:00:00:00:${(rng.int(4) + 0x10).toString(16)}:${rng.int(256).toString(16).padStart(2, '0')}`.toUpperCase();
      reports.push({ data, address, rssi: rng.int(256) - 128, addressType: rng.chance(0.9) ? 1 : rng.int(256), eventType: rng.int(rng.chance(0.9) ? 5 : 256) });
    }
    if (rng.chance(0.7)) {
      return encodeEvent({ kind: 'leAdvertisingReport',
        reports: reports.map(r => ({ ...r, data: r.data.subarray(0, 31) })) } as HciEvent);
    }
    // Parameters fit one event (255 octets, Vol 4, Part E, 5.4.4): sub-event, count, 24 octets + data per report.
    const room = Math.floor(253 / reports.length) - 24;
    return encodeEvent({ kind: 'leExtendedAdvertisingReport', reports: reports.map(r => ({
      eventType: rng.chance(0.8) ? 0x0013 : rng.int(0x10000), addressType: r.addressType, address: r.address, primaryPhy: 1, secondaryPhy: 0,
      advertisingSid: 0xff, txPower: 127, rssi: r.rssi, periodicAdvertisingInterval: 0, directAddressType: 0,
      directAddress: '00:00:00:00:00:00', data: r.data.subarray(0, room) })) } as HciEvent);
  },
};

// ---- the persistent adapter -----------------------------------------------------------------------

export class StackTarget implements Target {
  private readonly clock = new FakeClock();
  private readonly ctl = new StreamController();
  private adapter!: Adapter;
  private conn: Connection | undefined;
  private ops: Op[] = [];
  private readonly problems: string[] = [];
  private scanning = false;
  private scanSeen = 0;
  private relinks = 0;
  private baseline = 0;
  private readonly smp: SmpFeeder | undefined;
  private opSeq = 0;
  private opsOk = 0;
  private opsFailed = 0;
  private advertisements = 0;

  private constructor(readonly layer: Exclude<Layer, 'capture'>) {
    this.smp = layer === 'smp' ? new SmpFeeder(this.clock) : undefined;
  }

  static async open(layer: Exclude<Layer, 'capture'>): Promise<StackTarget> {
    const t = new StackTarget(layer);
    await t.bringUp();
    return t;
  }

  private async drive<T>(p: Promise<T>, what: string, limitMs = 60_000): Promise<T> {
    let done = false;
    p.then(() => { done = true; }, () => { done = true; });
    const end = this.clock.now() + limitMs;
    for (let idle = 0; !done;) {
      await flush();
      if (done) break;
      const next = this.clock.nextDue();
      if (next === undefined || next > end) {
        if (++idle > 50) throw new Error(`fuzz target: ${what} never settled`);
        continue;
      }
      idle = 0;
      this.clock.fireNext(next);
    }
    return p;
  }

  private async bringUp(): Promise<void> {
    await import('../../src/transport/index.js');
    // A 5.x controller's LE buffers (Vol 4, Part E, 7.8.2), not the fake's default 27 × 2.
    this.ctl.on('leReadBufferSize', { complete: { leAclDataPacketLength: 251, totalNumLeAclDataPackets: 8 } });
    // An honest controller finishes a Disconnect with Disconnection Complete (Vol 4, Part E, 7.1.6).
    this.ctl.on('disconnect', cmd => ({ events: [
      { kind: 'commandStatus', status: 0, numHciCommandPackets: 1, commandOpcode: 0x0406 },
      { kind: 'disconnectionComplete', status: 0, connectionHandle: (cmd as { connectionHandle: number }).connectionHandle, reason: 0x16 },
    ] }));
    // Bonds in memory: the user's bond directory is real I/O, which virtual time does not drive.
    this.adapter = await this.drive(Adapter.open({ transport: this.ctl, clock: this.clock, bonds: false }), 'Adapter.open');
    await this.relink();
    this.baseline = heapAfterGc();
  }

  /** Connect (again) to the peer on handle 0x0040: the stream may have dropped the link. */
  private async relink(): Promise<void> {
    if (this.adapter.host.state !== 'ready') return; // re-initialising after a Hardware Error
    // The stream's own LE Connection Complete may have set up a link on our handle: use it.
    const live = this.adapter.connections.find(c => c.handle === LINK && c.connected);
    if (live) {
      this.conn = live;
      return;
    }
    const p = this.adapter.connect({ address: PEER, type: 'random' }, { timeout: 5000 });
    p.catch(() => undefined);
    for (let i = 0; i < 20 && !this.ctl.commands.some(c => c.kind === 'leCreateConnection'); i++) await flush();
    this.ctl.inject({ kind: 'leConnectionComplete', status: 0, connectionHandle: LINK, role: 0, peerAddressType: 1, peerAddress: PEER,
      connectionInterval: 24, peripheralLatency: 0, supervisionTimeout: 400, centralClockAccuracy: 0 });
    try {
      this.conn = await this.drive(p, 'connect');
      this.relinks++;
    } catch (e) {
      this.conn = undefined;
      if (!(e instanceof BlewireError)) this.problems.push(`connect rejected untyped: ${String(e)}`);
    }
    this.ctl.forget();
  }

  private track(name: string, p: Promise<unknown>): void {
    const op: Op = { name, settled: false };
    this.ops.push(op);
    p.then(() => { op.settled = true; this.opsOk++; }, e => { op.settled = true; op.error = e; this.opsFailed++; });
  }

  feed(packet: Uint8Array): number {
    try {
      this.ctl.receiver!.packet(packet);
    } catch (e) {
      this.problems.push(`the receive path threw ${String((e as Error)?.stack ?? e)} on ${Buffer.from(packet).toString('hex')}`);
    }
    this.smp?.feed(packet);
    return 1;
  }

  async window(): Promise<void> {
    await flush();
    this.ctl.forget();
    await advance(this.clock, 20);
    if (this.adapter.host.isClosed) return;
    if (!this.conn?.connected) await this.relink();
    if (this.layer === 'ad' && !this.scanning && this.adapter.host.state === 'ready') {
      this.scanning = true;
      const s = this.adapter.scan({ duplicates: true, timeout: 60_000, onAdvertisement: ad => {
        // The lazy getters are where AD gets decoded: touch them all.
        this.advertisements++;
        this.scanSeen += ad.name?.length ?? 0;
        void [ad.serviceUuids, ad.manufacturerData, ad.serviceData, ad.txPower, ad.flags, ad.appearance];
      } });
      this.track('scan', s.done.finally(() => { this.scanning = false; }));
    }
    // GATT operations for the stream's responses to meet; at most a few outstanding.
    const conn = this.conn;
    if (conn && this.ops.filter(o => !o.settled).length < 4 && (this.layer === 'att-client' || this.layer === 'signalling' || this.layer === 'acl-l2cap' || this.layer === 'hci-events')) {
      const k = this.opSeq++ % 5;
      const h = 1 + (this.opSeq % 0x30);
      if (k === 0) this.track('read', conn.gatt.readValue(h, { timeout: 10_000 }));
      else if (k === 1) this.track('write', conn.gatt.writeValue(h, Uint8Array.of(1, 2), true, { timeout: 10_000 }));
      else if (k === 2) this.track('services', conn.services({ timeout: 20_000 }));
      else if (k === 3) this.track('readByUuid', conn.gatt.readByUuid(0x2a00, { timeout: 10_000 }));
      else this.track('writeWithoutResponse', conn.gatt.writeValue(h, Uint8Array.of(3), false));
    }
    if (this.layer === 'signalling' && conn && this.opSeq % 16 === 0) {
      this.track('updateParameters', conn.updateParameters({ intervalMin: 30, intervalMax: 50 }));
    }
  }

  async checkpoint(): Promise<string[]> {
    const out = this.problems.splice(0);
    // Pause the stream and let virtual time run until every operation must have settled.
    const end = this.clock.now() + CHECK_DRAIN_MS;
    while (this.ops.some(o => !o.settled) && this.clock.now() < end) await advance(this.clock, 1000);
    for (const o of this.ops) {
      if (!o.settled) out.push(`hung: ${o.name} did not settle within ${CHECK_DRAIN_MS / 1000} s of virtual time`);
      else if (o.error !== undefined && !(o.error instanceof BlewireError)) out.push(`untyped rejection of ${o.name}: ${String((o.error as Error)?.stack ?? o.error)}`);
    }
    this.ops = this.ops.filter(o => !o.settled);
    if (this.clock.pendingTimers > MAX_TIMERS) out.push(`timers: ${this.clock.pendingTimers} pending at a checkpoint (bound ${MAX_TIMERS})`);
    const heap = heapAfterGc();
    if (heap - this.baseline > MAX_HEAP_GROWTH) out.push(`memory: heap grew ${((heap - this.baseline) / 1048576).toFixed(1)} MB over the baseline (bound ${MAX_HEAP_GROWTH / 1048576} MB)`);
    this.smp?.check(out);
    if (this.ctl.harnessErrors.length) out.push(...this.ctl.harnessErrors.splice(0).map(e => `harness: ${e}`));
    return out;
  }

  get stats(): { relinks: number; timers: number; opsOk: number; opsFailed: number; advertisements: number } {
    return { relinks: this.relinks, timers: this.clock.pendingTimers, opsOk: this.opsOk, opsFailed: this.opsFailed, advertisements: this.advertisements };
  }

  async close(): Promise<string[]> {
    const out: string[] = [];
    try {
      await this.drive(this.adapter.close(), 'Adapter.close');
    } catch (e) {
      if (!(e instanceof BlewireError)) out.push(`close: ${String(e)}`);
    }
    this.smp?.close();
    // The link's end reaches every waiter; nothing may be left on the clock.
    for (let i = 0; i < 5; i++) await flush();
    if (this.clock.pendingTimers !== 0) out.push(`timers: ${this.clock.pendingTimers} left after close`);
    const hung = this.ops.filter(o => !o.settled).map(o => o.name);
    if (hung.length) out.push(`hung after close: ${hung.join(', ')}`);
    return out;
  }
}

/**
 * SMP: besides our link's SMP channel (no session installed refuses pairing), each SDU goes to two
 * pairing state machines, as initiator and as responder (smp/session.ts), re-created when one ends.
 */
class SmpFeeder {
  private sessions: SmpSession[] = [];
  private readonly problems: string[] = [];
  private keyPair: P256KeyPair | undefined;
  constructor(private readonly clock: FakeClock) {}

  private session(role: 'initiator' | 'responder'): SmpSession {
    this.keyPair ??= p256Generate();
    let seed = 1;
    const s = new SmpSession({
      role, clock: this.clock, keyPair: this.keyPair,
      local: { type: 1, address: 'C1:00:00:00:00:01' }, peer: { type: 1, address: PEER },
      random: n => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24),
      emit: (a: SmpAction) => {
        if (a.kind === 'failed' && !(a.error instanceof BlewireError)) this.problems.push(`smp session failed untyped: ${String(a.error)}`);
      },
    });
    if (role === 'initiator') {
      try { s.pair(); } catch (e) { if (!(e instanceof BlewireError)) throw e; }
    }
    return s;
  }

  feed(packet: Uint8Array): void {
    // The SMP SDU inside a well-framed ACL packet: 5 octets ACL header + 4 octets L2CAP header.
    if (packet.length < 10 || packet[7] !== 0x06 || packet[8] !== 0x00) return;
    const sdu = packet.subarray(9);
    if (this.sessions.length === 0) this.sessions = [this.session('initiator'), this.session('responder')];
    for (const s of this.sessions) {
      try {
        s.receive(sdu);
      } catch (e) {
        if (!(e instanceof BlewireError)) this.problems.push(`SmpSession.receive threw ${String((e as Error)?.stack ?? e)} on ${Buffer.from(sdu).toString('hex')}`);
      }
    }
  }

  check(out: string[]): void {
    out.push(...this.problems.splice(0));
    // Ended sessions are replaced (a fresh pairing for the stream to attack).
    this.close();
  }

  close(): void {
    for (const s of this.sessions) {
      try { s.linkClosed(); } catch (e) { if (!(e instanceof BlewireError)) this.problems.push(`SmpSession.linkClosed threw ${String(e)}`); }
    }
    this.sessions = [];
  }
}

// ---- capture files ------------------------------------------------------------------------------

export class CaptureTarget implements Target {
  readonly layer = 'capture' as const;
  private readonly problems: string[] = [];
  private baseline = heapAfterGc();

  feed(file: Uint8Array): number {
    let n = 0;
    try {
      for (const line of decodeRecords(parseCapture(file))) {
        n++;
        void line;
      }
    } catch (e) {
      if (!(e instanceof BlewireError)) this.problems.push(`capture: untyped ${String((e as Error)?.stack ?? e)} (file of ${file.length} octets)`);
    }
    return Math.max(1, n);
  }

  async window(): Promise<void> {
    await flush();
  }

  async checkpoint(): Promise<string[]> {
    const out = this.problems.splice(0);
    const heap = heapAfterGc();
    if (heap - this.baseline > MAX_HEAP_GROWTH) out.push(`memory: heap grew ${((heap - this.baseline) / 1048576).toFixed(1)} MB`);
    return out;
  }

  async close(): Promise<string[]> {
    return [];
  }
}

export async function openTarget(layer: Layer): Promise<Target> {
  if (layer === 'files') return new FilesTarget();
  return layer === 'capture' ? new CaptureTarget() : StackTarget.open(layer);
}

/** The input generator of a layer: each call, one hostile packet (or capture file). */
export function generator(layer: Layer): Generator {
  const c = loadCorpus();
  if (layer === 'capture') return rng => mutate(rng, rng.pick(c.captureFiles), 0, 1 << 16);
  if (layer === 'files') return filesGenerator();
  return GENERATORS[layer](c);
}

/** Down the link from the peer's side (used by close paths of tests). */
export const linkDown = new DisconnectedError('link', 0x13, 'Remote User Terminated Connection');
