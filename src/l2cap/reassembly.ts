import { decodeAcl } from '../hci/acl.js';
import { DecodeError } from '../errors.js';
import { L2CAP_HEADER_SIZE } from './constants.js';

/*
 * ACL → L2CAP recombination (Core Vol 3, Part A, 7.2; ACL Packet_Boundary_Flag, Vol 4, Part E, 5.4.2).
 *
 * What drives it: one call to push() per ACL data packet, in arrival order, with the packet's
 * connection handle, PB flag and data. Nothing else: it does not know about connection events, so
 * ACL-only logs (a real capture has no HCI events at all) reassemble the same as a live link.
 *
 * State: one entry per connection handle, owned by this object. A START fragment (PB 0b00, 0b10, or
 * the deprecated "complete" 0b11) announces the L2CAP Length in its first two octets; once the 4
 * header octets are in (a START may carry fewer, so we wait for them), exactly 4 + Length octets are
 * set aside once and every fragment is copied in: one copy per octet, no quadratic concatenation.
 * push() allocates them; pushAt(), the live link's path, takes them from a slab (REASSEMBLY_SLAB_SIZE).
 * A PDU wholly inside one START fragment is returned as a view of that fragment (no copy at all):
 * frames are immutable once handed to us (STYLE c.7), so the view stays valid. No octet of a
 * reassembled PDU is written after the PDU is returned, slab or not.
 *
 * Errors are counted drops, never exceptions (the receive path must not crash the host):
 *  - continuation without a START (e.g. a PDU that began before the capture did): fragment dropped;
 *  - START while a PDU is still being assembled: the partial PDU is dropped, the new START kept;
 *  - overflow (a fragment brings more octets than the Length announced): the whole PDU is dropped;
 *  - tooLong (Length above maxPduLength, when configured): the PDU's fragments are skipped quietly.
 * These are the rules Wireshark follows: the oracle test checks the shared real captures PDU for PDU,
 * and tshark 4.0.17 on crafted fragments agrees on each drop rule above and on a START of 2–3 octets.
 * One deliberate difference: tshark drops a START carrying a single octet (and its continuations),
 * whereas we wait for the rest of the header, because fragments may be of any size (Vol 3, Part A,
 * 7.2); controllers do not produce such fragments, so captures agree either way.
 *
 * Timeout and disconnect: the owner calls reset(handle) when a link goes away (Disconnection
 * Complete), which discards a partial PDU; the handle may be reused by the next link. There is no
 * timer here: a stalled partial PDU is replaced by the next START.
 *
 * Ordering: PDUs are returned in the order their last fragments arrived, per handle and overall.
 *
 * Bounds (issue 15): one state per connection handle (12 bits, so at most 4096 entries; a live link
 * has its own reassembler, so one), each holding at most 4 + min(maxPduLength, 65 535) octets, the
 * 16-bit L2CAP Length (Vol 3, Part A, 3.1), set aside once per PDU; a stalled PDU is replaced by the
 * next START or freed by reset(). pushAt() also holds the slab it is filling (8 KiB). Nothing else
 * accumulates. A handle's state record stays in the map
 * between PDUs, idle (holding no buffer), until reset(): taking the map's entry out after every PDU
 * and putting it back for the next made V8 shrink and regrow the map's table each time (about 150
 * bytes and a rehash per fragmented PDU, issue 14).
 */

export interface L2capPdu {
  /** ACL connection handle. */
  handle: number;
  /** L2CAP channel ID. */
  cid: number;
  /** The information payload (after the 4-octet basic header). */
  payload: Uint8Array;
}

export type ReassemblyDropReason = 'continuationWithoutStart' | 'startWhileAssembling' | 'overflow' | 'tooLong';

export interface ReassemblyStats {
  /** Complete PDUs returned. */
  pdus: number;
  /** Fragments that ended in a drop, by reason. */
  drops: Record<ReassemblyDropReason, number>;
}

export interface ReassemblerOptions {
  /** Largest L2CAP payload accepted (Length field); larger PDUs are skipped. Default: no limit. */
  maxPduLength?: number;
  /** Called for every drop (for logs); must not throw. */
  onDrop?: (handle: number, reason: ReassemblyDropReason) => void;
}

/**
 * One handle's state, one mutable record of one shape: 'idle' between PDUs; 'header' gathering the
 * 4 header octets into `buf` (`got` of them); 'body' filling the PDU's `size` octets at
 * buf[base, base + size) (`got` octets in); 'skip' passing over `left` more octets of a PDU too long
 * to take. push() gives a PDU a buffer of its own (base 0); pushAt() a region of a slab.
 */
interface State {
  tag: 'idle' | 'header' | 'body' | 'skip';
  buf: Uint8Array;
  base: number;
  size: number;
  got: number;
  left: number;
}

/**
 * pushAt() places fragmented PDUs one after another in slabs of this size, instead of a buffer each:
 * allocating a 252-octet Uint8Array (its own ArrayBuffer, off the V8 heap) cost 0.5 µs, more than a
 * quarter of a 244-byte notification's whole receive path (issue 14). A region is sized from the PDU's
 * L2CAP Length, filled with one copy per fragment, and no octet of it is written again once its PDU is
 * complete: values handed out are views of their own region only. The cost is retention: a value kept
 * by the application keeps its slab (at most this many octets) alive, as a pooled Node Buffer keeps
 * its pool; the reassembler itself holds only the slab it is filling.
 */
export const REASSEMBLY_SLAB_SIZE = 8192;
/** PDUs larger than this get a buffer of their own (a slab would hold fewer than four of them). */
const SLAB_LARGEST_PDU = REASSEMBLY_SLAB_SIZE >>> 2;

/** ACL Packet_Boundary_Flag value of a continuing fragment (Vol 4, Part E, 5.4.2). */
const PB_CONTINUING = 0b01;
const EMPTY = new Uint8Array(0);

/** dst[at…] = src[start, start + n): a loop for ACL-sized pieces (no view), set() for big ones. */
function copyInto(dst: Uint8Array, at: number, src: Uint8Array, start: number, n: number): void {
  if (n > 64) {
    dst.set(src.subarray(start, start + n), at);
    return;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
}

export class L2capReassembler {
  readonly stats: ReassemblyStats = {
    pdus: 0,
    drops: { continuationWithoutStart: 0, startWhileAssembling: 0, overflow: 0, tooLong: 0 },
  };
  private readonly states = new Map<number, State>();
  /**
   * The handle met last and its state (undefined: none yet), so a link's stream of fragments costs no
   * map lookup per packet (issue 14). Records are only added to `states` or all removed by reset(),
   * which forgets this too.
   */
  private lastHandle = -1;
  private lastState: State | undefined;
  private readonly maxPduLength: number;
  private readonly onDrop: ((handle: number, reason: ReassemblyDropReason) => void) | undefined;

  constructor(options: ReassemblerOptions = {}) {
    this.maxPduLength = options.maxPduLength ?? 0xffff;
    this.onDrop = options.onDrop;
  }

  /** The handle's state record, made idle the first time the handle is met. */
  private stateOf(handle: number): State {
    let s = this.stateIfAny(handle);
    if (s === undefined) {
      this.states.set(handle, (s = { tag: 'idle', buf: EMPTY, base: 0, size: 0, got: 0, left: 0 }));
      this.lastState = s;
    }
    return s;
  }

  /** The handle's state record if it has one; remembers the handle for the next packet. */
  private stateIfAny(handle: number): State | undefined {
    if (handle === this.lastHandle) return this.lastState;
    const s = this.states.get(handle);
    this.lastHandle = handle;
    this.lastState = s;
    return s;
  }

  /** Back to idle between PDUs; the record keeps no buffer. */
  private static idle(s: State): void {
    s.tag = 'idle';
    s.buf = EMPTY;
    s.base = 0;
    s.size = 0;
    s.got = 0;
    s.left = 0;
  }

  /** The slab pushAt() is filling and how much of it is taken (all of it: none yet). */
  private slab: Uint8Array = EMPTY;
  /** The slab's ArrayBuffer (its byteOffset is 0), read once per slab. */
  private slabBuffer: ArrayBufferLike | undefined;
  private slabUsed = 0;

  /** pushAt(): room for a PDU of `size` octets, in the slab or (large) of its own; the state is a 'body'. */
  private place(s: State, size: number): void {
    s.tag = 'body';
    s.size = size;
    s.got = 0;
    if (size > SLAB_LARGEST_PDU) {
      s.buf = new Uint8Array(size);
      s.base = 0;
      return;
    }
    if (this.slab.length - this.slabUsed < size) {
      this.slab = new Uint8Array(REASSEMBLY_SLAB_SIZE);
      this.slabBuffer = this.slab.buffer;
      this.slabUsed = 0;
    }
    s.buf = this.slab;
    s.base = this.slabUsed;
    this.slabUsed += size;
  }

  /** Feed one ACL packet's data; returns the L2CAP PDU it completes, if any. Never throws. */
  push(handle: number, pb: number, data: Uint8Array): L2capPdu | undefined {
    const state = this.stateIfAny(handle);
    if (pb !== PB_CONTINUING) {
      if (state !== undefined && state.tag !== 'idle') {
        const was = state.tag;
        L2capReassembler.idle(state);
        if (was !== 'skip') this.drop(handle, 'startWhileAssembling');
      }
      return this.begin(handle, data, data.length >= L2CAP_HEADER_SIZE);
    }
    if (state === undefined || state.tag === 'idle') {
      this.drop(handle, 'continuationWithoutStart');
      return undefined;
    }
    switch (state.tag) {
      case 'skip':
        state.left -= data.length;
        if (state.left <= 0) L2capReassembler.idle(state);
        return undefined;
      case 'header': {
        // The START carried fewer than 4 octets: gather the header, then continue as a body.
        const head = state.buf;
        const need = L2CAP_HEADER_SIZE - state.got;
        const take = Math.min(need, data.length);
        head.set(data.subarray(0, take), state.got);
        state.got += take;
        if (state.got < L2CAP_HEADER_SIZE) return undefined;
        L2capReassembler.idle(state);
        const first = this.begin(handle, head, false);
        return take < data.length ? this.push(handle, PB_CONTINUING, data.subarray(take)) : first;
      }
      case 'body': {
        const { buf, base, size } = state;
        if (state.got + data.length > size) {
          L2capReassembler.idle(state);
          this.drop(handle, 'overflow');
          return undefined;
        }
        buf.set(data, base + state.got);
        state.got += data.length;
        if (state.got < size) return undefined;
        L2capReassembler.idle(state);
        return this.complete(handle, base === 0 && size === buf.length ? buf : buf.subarray(base, base + size));
      }
    }
  }

  /** The PDU the last pushAt() completed: its octets are out[outStart, outEnd), header included. */
  out: Uint8Array = EMPTY;
  outStart = 0;
  outEnd = 0;
  /** When defined, out[i] is octet outBase + i of outBuffer (views of the PDU made from numbers). */
  outBuffer: ArrayBufferLike | undefined = undefined;
  outBase = 0;

  /**
   * push() in place, for the receive path (issue 14): the ACL payload is b[start, end). Returns true
   * when a PDU completed; it is then in out[outStart, outEnd), L2CAP header included (read its CID
   * there). A PDU in one packet is not copied; a fragmented one is gathered into a region sized from
   * its L2CAP Length (of a slab, REASSEMBLY_SLAB_SIZE), one copy per fragment. Anything unusual takes
   * push()'s way. Never throws. `buffer` / `base`, when the caller knows them: b[i] is octet base + i
   * of buffer (AclReceiver.aclAt); they go to outBuffer / outBase with a PDU left in b.
   */
  pushAt(handle: number, pb: number, b: Uint8Array, start: number, end: number, buffer?: ArrayBufferLike, base = 0): boolean {
    // A whole PDU in one START while nothing is being assembled, the common case, kept small enough
    // for V8 to inline into the link's receive path (the rest is over its 460-byte bytecode limit).
    const n = end - start;
    if (pb !== PB_CONTINUING && n >= L2CAP_HEADER_SIZE) {
      const length = b[start]! | (b[start + 1]! << 8);
      if (n === L2CAP_HEADER_SIZE + length && this.takesWhole(handle, length)) {
        this.out = b;
        this.outStart = start;
        this.outEnd = end;
        this.outBuffer = buffer;
        this.outBase = base;
        return true;
      }
    }
    return this.pushAtSlow(handle, pb, b, start, end);
  }

  /**
   * A whole PDU of `length` octets came in one START for `handle` (the fragment holds the 4 header
   * octets and exactly `length` more): true, and counted, when nothing is being assembled for the
   * handle and the length is accepted, so the caller reads the PDU in place without pushAt(); false:
   * hand the fragment to pushAt(), which applies the drop rules. pushAt()'s own whole-PDU case and the
   * link's route (L2capLink.routeAt).
   */
  takesWhole(handle: number, length: number): boolean {
    if (length > this.maxPduLength) return false;
    const state = this.stateIfAny(handle);
    if (state !== undefined && state.tag !== 'idle') return false;
    this.stats.pdus++;
    return true;
  }

  /** pushAt() for everything but a whole PDU in one START: fragments, and what push() handles. */
  private pushAtSlow(handle: number, pb: number, b: Uint8Array, start: number, end: number): boolean {
    const n = end - start;
    const state = this.stateIfAny(handle);
    if (pb !== PB_CONTINUING && (state === undefined || state.tag === 'idle') && n >= L2CAP_HEADER_SIZE) {
      const length = b[start]! | (b[start + 1]! << 8);
      if (n < L2CAP_HEADER_SIZE + length && length <= this.maxPduLength) {
        const s = state ?? this.stateOf(handle);
        this.place(s, L2CAP_HEADER_SIZE + length);
        copyInto(s.buf, s.base, b, start, n);
        s.got = n;
        return false;
      }
    } else if (pb === PB_CONTINUING && state !== undefined && state.tag === 'body' && state.got + n <= state.size) {
      const buf = state.buf, at = state.base;
      copyInto(buf, at + state.got, b, start, n);
      state.got += n;
      if (state.got < state.size) return false;
      this.out = buf;
      this.outStart = at;
      this.outEnd = at + state.size;
      // A slab region (the slab may have been replaced since, for another handle's PDU: then unknown).
      this.outBuffer = buf === this.slab ? this.slabBuffer : undefined;
      this.outBase = 0;
      L2capReassembler.idle(state);
      this.stats.pdus++;
      return true;
    }
    const pdu = this.push(handle, pb, b.subarray(start, end));
    if (pdu === undefined) return false;
    const p = pdu.payload;
    this.out = new Uint8Array(p.buffer, p.byteOffset - L2CAP_HEADER_SIZE, p.length + L2CAP_HEADER_SIZE);
    this.outStart = 0;
    this.outEnd = this.out.length;
    this.outBuffer = undefined;
    this.outBase = 0;
    return true;
  }

  /** Feed a whole H4 ACL packet (indicator 0x02 first). A mis-framed header is a DecodeError. */
  pushAcl(h4: Uint8Array): L2capPdu | undefined {
    const acl = decodeAcl(h4);
    return this.push(acl.handle, acl.pb, acl.data);
  }

  /** Forget a partial PDU of one handle (link gone), or of every handle. */
  reset(handle?: number): void {
    if (handle === undefined) this.states.clear();
    else this.states.delete(handle);
    this.lastHandle = -1;
    this.lastState = undefined;
  }

  /** True while a PDU of this handle is partly received. */
  assembling(handle: number): boolean {
    const s = this.stateIfAny(handle);
    return s !== undefined && s.tag !== 'idle';
  }

  /** Start a PDU from a START fragment (or the gathered header); `view` allows returning a view. */
  private begin(handle: number, data: Uint8Array, view: boolean): L2capPdu | undefined {
    if (data.length < L2CAP_HEADER_SIZE) {
      const head = new Uint8Array(L2CAP_HEADER_SIZE);
      head.set(data);
      const s = this.stateOf(handle);
      s.tag = 'header';
      s.buf = head;
      s.base = 0;
      s.size = L2CAP_HEADER_SIZE;
      s.got = data.length;
      return undefined;
    }
    const length = data[0]! | (data[1]! << 8);
    const total = L2CAP_HEADER_SIZE + length;
    if (length > this.maxPduLength) {
      this.drop(handle, 'tooLong');
      if (data.length < total) {
        const s = this.stateOf(handle);
        s.tag = 'skip';
        s.left = total - data.length;
      }
      return undefined;
    }
    if (data.length > total) {
      // More octets than the Length announced: the fragment cannot be trusted (Vol 3, Part A, 3.1).
      this.drop(handle, 'overflow');
      return undefined;
    }
    if (data.length === total) {
      if (view) return this.complete(handle, data);
      const whole = new Uint8Array(total);
      whole.set(data);
      return this.complete(handle, whole);
    }
    const buf = new Uint8Array(total);
    buf.set(data);
    const s = this.stateOf(handle);
    s.tag = 'body';
    s.buf = buf;
    s.base = 0;
    s.size = total;
    s.got = data.length;
    return undefined;
  }

  private complete(handle: number, pdu: Uint8Array): L2capPdu {
    this.stats.pdus++;
    return { handle, cid: pdu[2]! | (pdu[3]! << 8), payload: pdu.subarray(L2CAP_HEADER_SIZE) };
  }

  private drop(handle: number, reason: ReassemblyDropReason): void {
    this.stats.drops[reason]++;
    this.onDrop?.(handle, reason);
  }
}

/**
 * The reassembler of one link (the ACL handle is implicit): push() returns the whole L2CAP PDU,
 * basic header included, ready for decodeL2capFrame(). Same rules and counted drops as
 * L2capReassembler; reset() when the link goes away.
 */
export class AclReassembler {
  private readonly inner: L2capReassembler;

  constructor(options: ReassemblerOptions = {}) {
    this.inner = new L2capReassembler(options);
  }

  get stats(): ReassemblyStats {
    return this.inner.stats;
  }

  /** Feed one ACL packet's PB flag and data; returns the PDU (header + payload) it completes. Never throws. */
  push(pb: number, data: Uint8Array): Uint8Array | undefined {
    const pdu = this.inner.push(0, pb, data);
    if (pdu === undefined) return undefined;
    const p = pdu.payload;
    return new Uint8Array(p.buffer, p.byteOffset - L2CAP_HEADER_SIZE, p.length + L2CAP_HEADER_SIZE);
  }

  reset(): void {
    this.inner.reset();
  }

  get assembling(): boolean {
    return this.inner.assembling(0);
  }
}

/** The record fields reassembleCapture needs (src/capture's CaptureRecord has them). */
export interface AclRecord {
  frame: number;
  dir: 'tx' | 'rx';
  packet?: Uint8Array;
  adapter?: number;
}

/** A reassembled PDU located in a capture: at the frame of its last fragment, like Wireshark. */
export interface CaptureL2capPdu extends L2capPdu {
  frame: number;
  dir: 'tx' | 'rx';
  adapter?: number;
}

/**
 * Reassemble every L2CAP PDU of a capture. Each (controller index, direction) is its own stream of
 * fragments, keyed by handle inside it: host → controller and controller → host fragments of one
 * handle never mix. ACL packets whose header does not match their length are skipped (counted in
 * `malformedAcl` of the returned iterator's stats).
 */
export class CaptureReassembler {
  readonly malformedAcl: number[] = [];
  private readonly streams = new Map<string, L2capReassembler>();

  constructor(private readonly options: ReassemblerOptions = {}) {}

  push(rec: AclRecord): CaptureL2capPdu | undefined {
    const p = rec.packet;
    if (p === undefined || p.length === 0 || p[0] !== 0x02) return undefined;
    let acl;
    try {
      acl = decodeAcl(p);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.malformedAcl.push(rec.frame);
      return undefined;
    }
    const key = `${rec.adapter ?? 0}/${rec.dir}`;
    let r = this.streams.get(key);
    if (r === undefined) this.streams.set(key, (r = new L2capReassembler(this.options)));
    const pdu = r.push(acl.handle, acl.pb, acl.data);
    if (pdu === undefined) return undefined;
    const out: CaptureL2capPdu = { frame: rec.frame, dir: rec.dir, handle: pdu.handle, cid: pdu.cid, payload: pdu.payload };
    if (rec.adapter !== undefined) out.adapter = rec.adapter;
    return out;
  }

  /** Drops summed over every stream. */
  get stats(): ReassemblyStats {
    const s: ReassemblyStats = { pdus: 0, drops: { continuationWithoutStart: 0, startWhileAssembling: 0, overflow: 0, tooLong: 0 } };
    for (const r of this.streams.values()) {
      s.pdus += r.stats.pdus;
      for (const k of Object.keys(s.drops) as ReassemblyDropReason[]) s.drops[k] += r.stats.drops[k];
    }
    return s;
  }
}

/** Every L2CAP PDU of a sequence of capture records, in order. */
export function* reassembleCapture(records: Iterable<AclRecord>, options?: ReassemblerOptions): Generator<CaptureL2capPdu> {
  const r = new CaptureReassembler(options);
  for (const rec of records) {
    const pdu = r.push(rec);
    if (pdu !== undefined) yield pdu;
  }
}
