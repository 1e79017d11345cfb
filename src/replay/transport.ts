/**
 * The replay transport: a recording played back as the controller, with every packet the host sends
 * checked against it (STYLE c.10 item 6). `openTransport('replay:captures/x/capture.btsnoop')`, or
 * `ReplayTransport.fromFile()` / `new ReplayTransport(records, options)` in tests.
 *
 * Design overview
 * - What drives it: the recording, record by record, in file order. A host → controller record (tx)
 *   is an expectation: the next packet the host sends must equal it byte for byte, after masks. A
 *   controller → host record (rx) is injected once every expectation before it has been met. Nothing
 *   is ever reordered: a host packet sent while the recording's next record is an rx one is "out of
 *   order" (the host did not wait for the controller, e.g. a second ATT request pipelined before the
 *   first one's response), and a packet after the last record is "extra". Both are divergences.
 * - Time: the transport owns a virtual clock (`transport.clock`, which the host must use). It starts
 *   at 0 at the first record and moves to each record's offset from the first as the record is
 *   played, so the host sees the same gaps as in the recording: an idle period of 2 s replays as 2 s of
 *   virtual time and a timer the host armed fires where it fired when the recording was made. When the
 *   host owes the next tx record and has not sent it, the clock runs on, timer by timer, up to that
 *   record's time and then up to `slackMs` beyond it; if the host has still sent nothing, that is a
 *   divergence too ("stalled"). A host packet that comes more than `earlyToleranceMs` before its
 *   recorded time is one as well ("early": a timeout that fired at another time than when recorded).
 *   No wall-clock time passes: after every injected packet and every fired timer the player yields
 *   `settleTurns` macrotasks so the host's promise chains run first.
 * - Batches: rx records closer than `batchUs` to the previous rx record (with no tx between) are
 *   injected in one synchronous go, as a byte-stream transport delivers the packets of one read; the
 *   host's reaction to the first then lands after the second, as it did when the recording was made.
 * - Masks: bytes that legitimately differ between runs (a random address the host made up, values it
 *   derives from them) are excluded from the comparison, either as a decoded field of one command kind
 *   (`{ kind: 'leSetRandomAddress', field: 'randomAddress' }`: the actual packet is decoded, the
 *   field set to the recorded value, re-encoded and then compared byte for byte) or as a byte range
 *   of one frame (`{ frame, offset, length }`). Masks naming rx records have no effect on replay (the
 *   recorded bytes are injected as they are); they document values that vary between recordings.
 * - On divergence the transport stops: `finished` rejects with a ReplayDivergenceError whose message
 *   is a decoded diff (expected vs actual through the same tables as `blewire decode`, the fields that
 *   differ, the first differing byte, and the last `context` records before it), and the host's
 *   receiver is closed with that error: pending HCI commands reject with it, links are reported lost.
 *   Tests should await `finished` for the diff (a session's own error is only the consequence).
 * - Layering: replay sits beside the simulator, above the codecs and transports and below nothing
 *   of the API; the diff reuses the capture decoder of `blewire decode` (src/inspect/decode.ts, which
 *   sits on the codecs only), so expected and actual read exactly like `blewire decode` output.
 * - Close: closing before the end of the recording is allowed (a test may stop early); `finished`
 *   then rejects with 'incomplete' and the frame it was waiting for. After the last record,
 *   `finished` resolves; the transport stays open until the host closes it.
 */
import { equalBytes, toHex } from '../bytes/hex.js';
import { parseCapture } from '../capture/read.js';
import type { CaptureRecord } from '../capture/types.js';
import { FakeClock } from '../clock.js';
import { toJsonValue } from '../codec/table.js';
import { BlewireError, TransportError } from '../errors.js';
import { decodeHciPacket, encodeCommand, type HciPacket } from '../hci/packets.js';
import type { HciCommand } from '../hci/commands.js';
import { decodeRecords } from '../inspect/decode.js';
import { log } from '../log.js';
import { registerTransport, type TransportFactory } from '../transport/open.js';
import { ReceiverSlot } from '../transport/receiver-slot.js';
import type { HciTransport, TransportReceiver } from '../transport/types.js';

// ---------------------------------------------------------------------------------------------------
// Masks

/** A decoded field of every command (tx) or event (rx) of one kind; `field` is a dot path ("a.b.0"). */
export interface FieldMask {
  kind: string;
  field: string;
  /** Why it varies (documentation for the scenario file). */
  why?: string;
}
/** A byte range of one record (frame numbers as in Wireshark; offset 0 is the H4 indicator). */
export interface ByteMask {
  frame: number;
  offset: number;
  length: number;
  why?: string;
}
export type ReplayMask = FieldMask | ByteMask;

const isByteMask = (m: ReplayMask): m is ByteMask => 'frame' in m;

// ---------------------------------------------------------------------------------------------------
// Errors

export type DivergenceKind = 'mismatch' | 'out-of-order' | 'extra' | 'early' | 'stalled' | 'incomplete';

/** The host did not do what the recording says it did. `message` is the decoded diff. */
export class ReplayDivergenceError extends BlewireError {
  override readonly code = 'EREPLAY_DIVERGENCE';
  constructor(
    readonly kind: DivergenceKind,
    /** Frame of the record the host diverged from (0 past the end). */
    readonly frame: number,
    message: string,
    /** The packet the host sent, when there was one. */
    readonly actual?: Uint8Array,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------
// The virtual clock

/**
 * Virtual time for a replay (ms since the first record). Timers fire only when the player moves
 * time: one at a time, in time order (ties in the order they were set). FakeClock already has exactly
 * those primitives (nextDue, fireNext, moveTo); the name says what it is used for.
 */
export class ReplayClock extends FakeClock {}

// ---------------------------------------------------------------------------------------------------
// The transport

export interface ReplayOptions {
  masks?: ReplayMask[];
  /** Only records of this controller index (monitor captures). */
  adapter?: number;
  /** Records of context in a divergence report (default 8). */
  context?: number;
  /** How far past a tx record's recorded time the clock may run while waiting for the host (ms, default 1000). */
  slackMs?: number;
  /**
   * A host packet that matches but comes this much earlier (virtual ms) than recorded is a divergence
   * ('early': a timeout or an idle period that did not replay; default 250).
   */
  earlyToleranceMs?: number;
  /** rx records this close to the previous one are injected together (µs, default 0: one at a time). */
  batchUs?: number;
  /** Macrotasks to yield after each injection or timer before concluding the host sent nothing (default 3). */
  settleTurns?: number;
  /** For messages: where the recording came from. */
  name?: string;
}

export interface ReplayProgress {
  /** Records with a packet that the replay plays (tx + rx). */
  total: number;
  /** How many of them were played (matched or injected). */
  played: number;
  matched: number;
  injected: number;
  /** Frame of the next record, undefined at the end. */
  nextFrame: number | undefined;
}

interface Played { rec: CaptureRecord & { packet: Uint8Array }; actual?: Uint8Array }

const turn = (): Promise<void> => new Promise(r => setImmediate(r));

export class ReplayTransport implements HciTransport {
  readonly description: string;
  readonly clock = new ReplayClock();
  private readonly records: Array<CaptureRecord & { packet: Uint8Array }>;
  private readonly allRecords: CaptureRecord[];
  private readonly slot = new ReceiverSlot();
  private readonly fieldMasks: FieldMask[];
  private readonly byteMasks = new Map<number, ByteMask[]>();
  private readonly options: Required<Omit<ReplayOptions, 'masks' | 'adapter' | 'name'>>;
  private readonly t0: number;
  private cursor = 0;
  private matched = 0;
  private injected = 0;
  private started = false;
  private stopped = false;
  private failure: ReplayDivergenceError | undefined;
  private readonly history: Played[] = [];
  private wake: (() => void) | undefined;
  private resolveFinished!: () => void;
  private rejectFinished!: (e: Error) => void;
  /** Resolves once every record was played; rejects with the first divergence (or 'incomplete' on early close). */
  readonly finished: Promise<void>;
  private decodedText: Map<number, string> | undefined;

  constructor(records: Iterable<CaptureRecord>, options: ReplayOptions = {}) {
    this.allRecords = [...records];
    this.records = this.allRecords.filter((r): r is CaptureRecord & { packet: Uint8Array } =>
      r.packet !== undefined && (options.adapter === undefined || r.adapter === options.adapter));
    this.description = `replay:${options.name ?? 'recording'}`;
    this.options = {
      context: options.context ?? 8,
      slackMs: options.slackMs ?? 1000,
      earlyToleranceMs: options.earlyToleranceMs ?? 250,
      batchUs: options.batchUs ?? 0,
      settleTurns: options.settleTurns ?? 3,
    };
    for (const m of options.masks ?? []) {
      if (isByteMask(m)) {
        const list = this.byteMasks.get(m.frame) ?? [];
        list.push(m);
        this.byteMasks.set(m.frame, list);
      }
    }
    this.fieldMasks = (options.masks ?? []).filter((m): m is FieldMask => !isByteMask(m));
    this.t0 = this.records[0]?.timeUs ?? 0;
    this.finished = new Promise<void>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    // A test that never awaits `finished` must not see an unhandled rejection: the divergence also
    // reaches the host (its receiver is closed with it).
    this.finished.catch(() => undefined);
  }

  /** Replay a capture file (btsnoop, pcap or pcapng; read whole: fixtures are small). */
  static async fromFile(path: string, options: ReplayOptions = {}): Promise<ReplayTransport> {
    const { readFile } = await import('node:fs/promises');
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new TransportError(`replay: cannot read ${path}: ${(e as Error).message}`, 'ETRANSPORT_CONNECT', { cause: e });
    }
    return new ReplayTransport(parseCapture(bytes), { name: path, ...options });
  }

  get progress(): ReplayProgress {
    return {
      total: this.records.length,
      played: this.cursor,
      matched: this.matched,
      injected: this.injected,
      nextFrame: this.records[this.cursor]?.frame,
    };
  }

  /** The divergence that stopped the replay, if any. */
  get divergence(): ReplayDivergenceError | undefined {
    return this.failure;
  }

  send(packet: Uint8Array): void {
    if (this.stopped) {
      if (this.failure) throw this.failure;
      throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    }
    const rec = this.records[this.cursor];
    if (!rec) {
      this.diverge('extra', 0, 'the host sent a packet after the last record of the recording', packet);
      return;
    }
    if (rec.dir === 'rx') {
      const nextTx = this.records.slice(this.cursor).find(r => r.dir === 'tx');
      this.diverge('out-of-order', rec.frame,
        `the host sent a packet while the recording's next record (frame ${rec.frame}) is controller → host: ` +
        `the host did not wait for it${nextTx ? ` (the next host packet expected is frame ${nextTx.frame})` : ''}`,
        packet, nextTx);
      return;
    }
    if (!this.matches(rec, packet)) {
      this.diverge('mismatch', rec.frame, `the host's packet differs from frame ${rec.frame}`, packet, rec);
      return;
    }
    const at = (rec.timeUs - this.t0) / 1000;
    if (at - this.clock.now() > this.options.earlyToleranceMs) {
      this.diverge('early', rec.frame, `the host sent frame ${rec.frame} at +${this.clock.now().toFixed(3)} ms, ` +
        `${(at - this.clock.now()).toFixed(3)} ms before its recorded time (+${at.toFixed(3)} ms): a timer or a wait did not replay`, packet, rec);
      return;
    }
    this.history.push({ rec, actual: packet });
    this.cursor++;
    this.matched++;
    this.wake?.();
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
    if (!this.started) {
      this.started = true;
      void this.play();
    }
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.cursor >= this.records.length && !this.failure) this.resolveFinished();
    if (this.cursor < this.records.length && !this.failure) {
      const rec = this.records[this.cursor]!;
      const e = new ReplayDivergenceError('incomplete', rec.frame,
        this.report('incomplete', rec.frame, `closed before the end of the recording: ${this.records.length - this.cursor} of ` +
          `${this.records.length} records not played`, undefined, rec));
      this.failure = e;
      this.rejectFinished(e);
    }
    this.wake?.();
    this.slot.close();
  }

  // ---- the player ---------------------------------------------------------------------------------

  private async play(): Promise<void> {
    try {
      while (!this.stopped && this.cursor < this.records.length) {
        const rec = this.records[this.cursor]!;
        const at = (rec.timeUs - this.t0) / 1000;
        if (rec.dir === 'rx') {
          await this.runTimersUntil(at);
          if (this.stopped) return;
          // The host may have sent something while timers ran: that is out of order (send() handled it).
          if (this.records[this.cursor] !== rec) continue;
          this.clock.moveTo(at);
          this.inject(rec);
          // rx records of the same batch go in the same synchronous run.
          let prev = rec;
          while (this.options.batchUs > 0) {
            const next = this.records[this.cursor];
            if (!next || next.dir !== 'rx' || next.timeUs - prev.timeUs > this.options.batchUs) break;
            this.clock.moveTo((next.timeUs - this.t0) / 1000);
            this.inject(next);
            prev = next;
          }
          await this.settle();
          continue;
        }
        // tx: wait for the host, running its timers up to the record's time, then up to the slack.
        await this.settle();
        if (this.records[this.cursor] !== rec || this.stopped) continue;
        await this.runTimersUntil(at, rec);
        if (this.records[this.cursor] !== rec || this.stopped) continue;
        this.clock.moveTo(at);
        await this.settle();
        if (this.records[this.cursor] !== rec || this.stopped) continue;
        await this.runTimersUntil(at + this.options.slackMs, rec);
        if (this.records[this.cursor] !== rec || this.stopped) continue;
        this.clock.moveTo(at + this.options.slackMs);
        await this.settle();
        if (this.records[this.cursor] !== rec || this.stopped) continue;
        this.diverge('stalled', rec.frame,
          `the host sent nothing by ${this.options.slackMs} ms after frame ${rec.frame}'s recorded time ` +
          `(+${at.toFixed(3)} ms); it was expected to send it`, undefined, rec);
        return;
      }
      if (this.cursor >= this.records.length && !this.failure) {
        log.transport('%s: all %d records played', this.description, this.records.length);
        this.resolveFinished();
      }
    } catch (e) {
      // Only a bug here can throw (the host's receiver never throws into a transport).
      this.diverge('stalled', this.records[this.cursor]?.frame ?? 0, `replay player failed: ${(e as Error).message}`);
    }
  }

  /** Fire due timers one at a time up to `limit`, letting the host react after each; stop early once `rec` was sent. */
  private async runTimersUntil(limit: number, rec?: CaptureRecord): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      if (rec && this.records[this.cursor] !== rec) return;
      if (!rec && this.records[this.cursor]?.dir === 'tx') return; // an rx wait was overtaken (out of order)
      if (!this.clock.fireNext(limit)) return;
      await this.settle();
    }
  }

  private inject(rec: CaptureRecord & { packet: Uint8Array }): void {
    this.history.push({ rec });
    this.cursor++;
    this.injected++;
    this.slot.packet(rec.packet);
  }

  private async settle(): Promise<void> {
    for (let i = 0; i < this.options.settleTurns && !this.stopped; i++) await turn();
  }

  // ---- comparison ---------------------------------------------------------------------------------

  /** Equal to the recorded packet after masks. */
  private matches(rec: CaptureRecord & { packet: Uint8Array }, actual: Uint8Array): boolean {
    let expected = rec.packet;
    let got = actual;
    const fieldMasks = this.fieldMasks;
    if (fieldMasks.length && expected[0] === 0x01 && got[0] === 0x01 && got.length > 3) {
      const patched = applyFieldMasks(expected, got, fieldMasks);
      if (patched) got = patched;
    }
    const bm = this.byteMasks.get(rec.frame);
    if (bm && got.length === expected.length) {
      expected = Uint8Array.from(expected);
      got = Uint8Array.from(got);
      for (const m of bm) {
        for (let i = m.offset; i < m.offset + m.length && i < expected.length; i++) expected[i] = got[i] = 0;
      }
    }
    return equalBytes(expected, got);
  }

  // ---- divergence reports -------------------------------------------------------------------------

  private diverge(kind: DivergenceKind, frame: number, what: string, actual?: Uint8Array, expected?: CaptureRecord & { packet: Uint8Array }): void {
    if (this.failure) return;
    const e = new ReplayDivergenceError(kind, frame, this.report(kind, frame, what, actual, expected), actual);
    this.failure = e;
    this.stopped = true;
    log.transport('%s', e.message);
    this.rejectFinished(e);
    this.wake?.();
    // Every pending host operation rejects with the divergence (the host passes BlewireErrors through).
    this.slot.close(e);
  }

  private report(kind: DivergenceKind, frame: number, what: string, actual?: Uint8Array, expected?: CaptureRecord & { packet: Uint8Array }): string {
    const lines = [`${this.description}: ${kind} at ${frame ? `frame ${frame}` : 'the end of the recording'} ` +
      `(record ${this.cursor + 1} of ${this.records.length}, t=+${this.clock.now().toFixed(3)} ms): ${what}`];
    if (expected) lines.push(`  expected: ${dirArrow(expected.dir)} ${describePacket(expected.packet, expected.dir)}`);
    if (actual) lines.push(`  actual:   host → controller ${describePacket(actual, 'tx')}`);
    if (expected && actual && kind === 'mismatch') {
      const fields = fieldDiff(expected.packet, actual);
      if (fields.length) lines.push(`  fields that differ: ${fields.join('; ')}`);
      lines.push(`  expected bytes: ${toHex(expected.packet, ' ')}`);
      lines.push(`  actual bytes:   ${toHex(actual, ' ')}`);
      const n = Math.min(expected.packet.length, actual.length);
      let i = 0;
      while (i < n && expected.packet[i] === actual[i]) i++;
      lines.push(i < n || expected.packet.length !== actual.length
        ? `  first difference at byte ${i}${expected.packet.length !== actual.length ? ` (lengths ${expected.packet.length} vs ${actual.length})` : ''}`
        : '  (equal bytes; the difference is in a masked field)');
    } else if (expected && kind !== 'out-of-order' && kind !== 'early') {
      lines.push(`  expected bytes: ${toHex(expected.packet, ' ')}`);
    }
    const ctx = this.history.slice(-this.options.context);
    if (ctx.length) {
      lines.push(`  context (last ${ctx.length} records played):`);
      const texts = this.decodedTexts();
      for (const p of ctx) {
        lines.push(`    frame ${p.rec.frame} +${((p.rec.timeUs - this.t0) / 1000).toFixed(3)} ms ${dirArrow(p.rec.dir)} ${texts.get(p.rec.frame) ?? describePacket(p.rec.packet, p.rec.dir)}`);
      }
    }
    const upcoming = this.records.slice(this.cursor, this.cursor + 3);
    if (upcoming.length) {
      lines.push('  next in the recording:');
      const texts = this.decodedTexts();
      for (const r of upcoming) {
        lines.push(`    frame ${r.frame} +${((r.timeUs - this.t0) / 1000).toFixed(3)} ms ${dirArrow(r.dir)} ${texts.get(r.frame) ?? describePacket(r.packet, r.dir)}`);
      }
    }
    return lines.join('\n');
  }

  /** One line per frame through the capture decoder (with L2CAP reassembled across fragments). */
  private decodedTexts(): Map<number, string> {
    if (this.decodedText) return this.decodedText;
    const m = new Map<number, string>();
    for (const line of decodeRecords(this.allRecords)) {
      const prev = m.get(line.frame);
      m.set(line.frame, prev ? `${prev} | ${line.text}` : line.text);
    }
    return (this.decodedText = m);
  }
}

const dirArrow = (dir: 'tx' | 'rx'): string => (dir === 'tx' ? 'host → controller' : 'controller → host');

/** One line for a packet on its own: the HCI line, plus the L2CAP/ATT line when it is a whole PDU. */
export function describePacket(packet: Uint8Array, dir: 'tx' | 'rx' = 'tx'): string {
  const texts: string[] = [];
  for (const line of decodeRecords([{ frame: 0, dir, timeUs: 0, packet }])) texts.push(line.text);
  return texts.join(' | ');
}

function decodeOrUndefined(p: Uint8Array): HciPacket | undefined {
  try {
    return decodeHciPacket(p);
  } catch {
    return undefined;
  }
}

/** The decoded fields (flattened one level for ACL: the L2CAP PDU) that differ, "field: expected → actual". */
function fieldDiff(expected: Uint8Array, actual: Uint8Array): string[] {
  const e = flatFields(expected);
  const a = flatFields(actual);
  if (!e || !a) return [];
  const what = (f: Record<string, unknown>): string => String(f['pdu.kind'] ?? f['kind'] ?? f['type'] ?? 'ACL');
  // Different kinds of packet: listing every field would only repeat the two lines above.
  if (what(e) !== what(a) || e['type'] !== a['type']) return [`packet: ${what(e)} → ${what(a)}`];
  const out: string[] = [];
  for (const k of new Set([...Object.keys(e), ...Object.keys(a)])) {
    const ev = JSON.stringify(e[k]);
    const av = JSON.stringify(a[k]);
    if (ev !== av) out.push(`${k}: ${ev ?? '(absent)'} → ${av ?? '(absent)'}`);
  }
  return out;
}

function flatFields(p: Uint8Array): Record<string, unknown> | undefined {
  const d = decodeOrUndefined(p);
  if (!d) return undefined;
  const base = toJsonValue(d) as Record<string, unknown>;
  if (d.type !== 'acl') return base;
  const out: Record<string, unknown> = { type: 'acl', handle: base['handle'], pb: base['pb'] };
  for (const line of decodeRecords([{ frame: 0, dir: 'tx', timeUs: 0, packet: p }])) {
    if (line.line === 'l2cap') {
      out['cid'] = line.cid;
      for (const [k, v] of Object.entries(toJsonValue(line.pdu) as Record<string, unknown>)) out[`pdu.${k}`] = v;
    }
  }
  if (!('cid' in out)) out['data'] = base['data'];
  return out;
}

function getPath(o: unknown, path: string[]): unknown {
  let v = o;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function setPath(o: unknown, path: string[], value: unknown): boolean {
  let v = o;
  for (const k of path.slice(0, -1)) {
    if (v === null || typeof v !== 'object') return false;
    v = (v as Record<string, unknown>)[k];
  }
  if (v === null || typeof v !== 'object') return false;
  (v as Record<string, unknown>)[path[path.length - 1]!] = value;
  return true;
}

/**
 * The actual command with every masked field replaced by the recorded value and re-encoded, so the
 * byte comparison ignores exactly those fields; undefined when no mask applies.
 */
function applyFieldMasks(expected: Uint8Array, actual: Uint8Array, masks: FieldMask[]): Uint8Array | undefined {
  const e = decodeOrUndefined(expected);
  const a = decodeOrUndefined(actual);
  if (!e || !a || e.type !== 'command' || a.type !== 'command' || e.kind !== a.kind) return undefined;
  let changed = false;
  for (const m of masks) {
    if (m.kind !== a.kind) continue;
    const path = m.field.split('.');
    const ev = getPath(e, path);
    if (ev === undefined) continue;
    changed = setPath(a, path, ev) || changed;
  }
  if (!changed) return undefined;
  try {
    const { type: _type, ...cmd } = a;
    return encodeCommand(cmd as unknown as HciCommand);
  } catch {
    return undefined;
  }
}

/** The `replay:file` factory (src/transports.ts points the registry at it, loading this module on first use). */
export const openReplayTransport: TransportFactory = (rest, options) => {
  if (!rest) throw new TransportError('transport "replay:": a capture file is needed (replay:path/to/capture.btsnoop)', 'ETRANSPORT_SPEC');
  const masks = Array.isArray(options['masks']) ? options['masks'] as ReplayMask[] : undefined;
  return ReplayTransport.fromFile(rest, masks ? { masks } : {});
};

registerTransport('replay', openReplayTransport, 'replay:file');
