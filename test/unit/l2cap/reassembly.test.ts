// Pins the ACL → L2CAP reassembler's rules: START/continuation, a START shorter than the basic
// header, views for unfragmented PDUs and one allocation otherwise, counted drops (continuation
// without START, START while assembling, overflow, too long), per-handle state and reset; pushAt()
// (the live receive path) gathering fragmented PDUs into slab regions no later PDU writes over.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { AclReassembler, L2capReassembler, REASSEMBLY_SLAB_SIZE, reassembleCapture } from '../../../src/l2cap/reassembly.js';
import { encodeL2capFrame } from '../../../src/l2cap/frames.js';

const b = fromHex;
const START = 0b10, CONT = 0b01, START_NF = 0b00;

describe('L2capReassembler', () => {
  test('an unfragmented PDU comes back as a view of the fragment', () => {
    const r = new L2capReassembler();
    const frag = b('0300 0400 0a0300');
    const pdu = r.push(0x40, START, frag)!;
    expect(pdu).toEqual({ handle: 0x40, cid: 4, payload: b('0a0300') });
    expect(pdu.payload.buffer).toBe(frag.buffer);
    expect(r.stats.pdus).toBe(1);
  });
  test('fragments are copied once into a PDU-sized buffer', () => {
    const r = new L2capReassembler();
    expect(r.push(1, START_NF, b('0500 0400 1b'))).toBeUndefined();
    expect(r.assembling(1)).toBe(true);
    expect(r.push(1, CONT, b('0c00'))).toBeUndefined();
    const pdu = r.push(1, CONT, b('06 48'))!;
    expect(toHex(pdu.payload)).toBe('1b0c000648');
    expect(pdu.payload.buffer.byteLength).toBe(4 + 5); // exactly 4 + Length allocated
    expect(r.assembling(1)).toBe(false);
  });
  test('a START shorter than the basic header waits for the rest', () => {
    const r = new L2capReassembler();
    expect(r.push(1, START, b('03'))).toBeUndefined();
    expect(r.push(1, CONT, b('00 04'))).toBeUndefined();
    expect(r.push(1, CONT, b('00 0a'))).toBeUndefined();
    expect(r.push(1, CONT, b('0300'))).toEqual({ handle: 1, cid: 4, payload: b('0a0300') });
    // header and whole body in the continuation
    expect(r.push(2, START, b(''))).toBeUndefined();
    expect(r.push(2, CONT, b('0100 0600 aa'))).toEqual({ handle: 2, cid: 6, payload: b('aa') });
    expect(r.stats.drops).toEqual({ continuationWithoutStart: 0, startWhileAssembling: 0, overflow: 0, tooLong: 0 });
  });
  test('an empty PDU', () => {
    const r = new L2capReassembler();
    expect(r.push(1, START, b('0000 0500'))).toEqual({ handle: 1, cid: 5, payload: b('') });
  });
  test('continuation without START is dropped and counted', () => {
    const drops: string[] = [];
    const r = new L2capReassembler({ onDrop: (h, why) => drops.push(`${h}:${why}`) });
    expect(r.push(7, CONT, b('0102'))).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
    expect(drops).toEqual(['7:continuationWithoutStart']);
  });
  test('START while assembling drops the partial PDU and keeps the new one', () => {
    const r = new L2capReassembler();
    r.push(1, START, b('0500 0400 1b'));
    expect(r.push(1, START, b('0100 0400 13'))).toEqual({ handle: 1, cid: 4, payload: b('13') });
    expect(r.stats.drops.startWhileAssembling).toBe(1);
  });
  test('overflow drops the whole PDU', () => {
    const r = new L2capReassembler();
    r.push(1, START, b('0300 0400 0a'));
    expect(r.push(1, CONT, b('030000'))).toBeUndefined();
    expect(r.stats.drops.overflow).toBe(1);
    expect(r.assembling(1)).toBe(false);
    expect(r.push(1, START, b('0100 0400 1300'))).toBeUndefined(); // more than Length in the START
    expect(r.stats.drops.overflow).toBe(2);
    expect(r.push(1, CONT, b('00'))).toBeUndefined(); // its continuation has no START any more
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
  });
  test('too long PDUs are skipped with their continuations', () => {
    const r = new L2capReassembler({ maxPduLength: 4 });
    expect(r.push(1, START, b('0600 0400 0102'))).toBeUndefined();
    expect(r.push(1, CONT, b('0304'))).toBeUndefined();
    expect(r.push(1, CONT, b('0506'))).toBeUndefined();
    expect(r.stats.drops).toEqual({ continuationWithoutStart: 0, startWhileAssembling: 0, overflow: 0, tooLong: 1 });
    expect(r.push(1, START, b('0100 0400 aa'))).toEqual({ handle: 1, cid: 4, payload: b('aa') });
  });
  test('handles are independent; reset clears one handle or all', () => {
    const r = new L2capReassembler();
    r.push(1, START, b('0200 0400 aa'));
    r.push(2, START, b('0200 0600 cc'));
    expect(r.push(2, CONT, b('dd'))).toEqual({ handle: 2, cid: 6, payload: b('ccdd') });
    r.reset(1);
    expect(r.push(1, CONT, b('bb'))).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
    r.push(3, START, b('0200 0400 aa'));
    r.reset();
    expect(r.assembling(3)).toBe(false);
  });
  test('any split of any PDU into fragments reassembles to the same payload', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 8 }),
      (payload, cuts) => {
        const frame = encodeL2capFrame(0x0004, payload);
        const points = [...new Set(cuts.map(c => Math.min(c, frame.length)))].sort((x, y) => x - y).filter(c => c > 0 && c < frame.length);
        const parts: Uint8Array[] = [];
        let at = 0;
        for (const p of [...points, frame.length]) { parts.push(frame.slice(at, p)); at = p; }
        const r = new L2capReassembler();
        const out = parts.map((p, i) => r.push(9, i === 0 ? START : CONT, p));
        expect(out.slice(0, -1).every(x => x === undefined)).toBe(true);
        expect(toHex(out.at(-1)!.payload)).toBe(toHex(payload));
      }));
  });
  test('fragments of the assembled PDU may be mutated by the caller afterwards without effect', () => {
    const r = new L2capReassembler();
    const f1 = b('0200 0400 aa'), f2 = b('bb');
    r.push(1, START, f1);
    const pdu = r.push(1, CONT, f2)!;
    f1.fill(0); f2.fill(0);
    expect(toHex(pdu.payload)).toBe('aabb');
  });
});

/** pushAt() as the link calls it: the ACL payload in place inside a whole H4 packet. */
function pushAt(r: L2capReassembler, handle: number, pb: number, data: Uint8Array): Uint8Array | undefined {
  const p = new Uint8Array(5 + data.length);
  p.set(data, 5);
  if (!r.pushAt(handle, pb, p, 5, p.length)) return undefined;
  return r.out.subarray(r.outStart, r.outEnd);
}

/** A PDU on CID 4 whose payload is `n` octets counting up from `seed`, cut into `cut`-octet fragments. */
function fragmentsOf(n: number, seed: number, cut = 27): { whole: Uint8Array; parts: Uint8Array[] } {
  const payload = Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);
  const whole = encodeL2capFrame(0x0004, payload);
  const parts: Uint8Array[] = [];
  for (let o = 0; o < whole.length; o += cut) parts.push(whole.slice(o, o + cut));
  return { whole, parts };
}

describe('L2capReassembler.pushAt (the live receive path)', () => {
  test('fragmented PDUs fill slab regions one after another; a PDU handed out never changes as later ones arrive, across slabs', () => {
    const r = new L2capReassembler();
    const kept: Array<{ pdu: Uint8Array; want: string }> = [];
    // 244-octet values in 27-octet fragments: enough of them to fill several slabs.
    const count = Math.ceil((3 * REASSEMBLY_SLAB_SIZE) / 252);
    for (let k = 0; k < count; k++) {
      const { whole, parts } = fragmentsOf(248, k);
      const out = parts.map((p, i) => pushAt(r, 0x40, i === 0 ? START : CONT, p));
      expect(out.slice(0, -1).every(x => x === undefined)).toBe(true);
      const pdu = out.at(-1)!;
      expect(pdu.length).toBe(252);
      kept.push({ pdu, want: toHex(whole) });
    }
    for (const { pdu, want } of kept) expect(toHex(pdu)).toBe(want);
    const slabs = new Set(kept.map(k => k.pdu.buffer));
    expect(slabs.size).toBeGreaterThanOrEqual(3);
    for (const s of slabs) expect(s.byteLength).toBe(REASSEMBLY_SLAB_SIZE);
    expect(r.stats.pdus).toBe(count);
  });

  test('a dropped partial PDU leaves the next one whole; continuations of another handle in between; a large PDU gets its own buffer', () => {
    const r = new L2capReassembler();
    const a = fragmentsOf(100, 1), b2 = fragmentsOf(60, 2), c = fragmentsOf(REASSEMBLY_SLAB_SIZE, 3, 1000);
    expect(pushAt(r, 1, START, a.parts[0]!)).toBeUndefined();
    expect(pushAt(r, 1, CONT, a.parts[1]!)).toBeUndefined();
    // A new START on handle 1 drops the partial PDU (its region is never handed out).
    expect(pushAt(r, 1, START, b2.parts[0]!)).toBeUndefined();
    expect(r.stats.drops.startWhileAssembling).toBe(1);
    // Handle 2 interleaves a whole PDU of its own.
    const other = fragmentsOf(30, 9, 64);
    expect(toHex(pushAt(r, 2, START, other.parts[0]!)!)).toBe(toHex(other.whole));
    expect(pushAt(r, 1, CONT, b2.parts[1]!)).toBeUndefined();
    const got = pushAt(r, 1, CONT, b2.parts[2]!)!;
    expect(toHex(got)).toBe(toHex(b2.whole));
    let big: Uint8Array | undefined;
    c.parts.forEach((p, i) => { big = pushAt(r, 1, i === 0 ? START : CONT, p) ?? big; });
    expect(toHex(big!)).toBe(toHex(c.whole));
    expect(big!.byteOffset).toBe(0);
    expect(big!.buffer.byteLength).toBe(c.whole.length);
    expect(toHex(got)).toBe(toHex(b2.whole));
  });

  test('a whole PDU in one START while the handle is assembling drops the partial one; while idle it is taken in place', () => {
    const r = new L2capReassembler();
    const a = fragmentsOf(100, 1), whole = fragmentsOf(10, 5, 64);
    expect(pushAt(r, 3, START, a.parts[0]!)).toBeUndefined();
    const p = new Uint8Array(5 + whole.whole.length);
    p.set(whole.whole, 5);
    const ab = new ArrayBuffer(8);
    expect(r.pushAt(3, START, p, 5, p.length, ab, 40)).toBe(true);
    expect(r.stats.drops.startWhileAssembling).toBe(1);
    expect(toHex(r.out.subarray(r.outStart, r.outEnd))).toBe(toHex(whole.whole));
    // Not copied: a view of the packet's memory (push()'s way, so without the caller's buffer and base).
    expect(r.out.buffer).toBe(p.buffer);
    expect(r.outBuffer).toBeUndefined();
    // Whole PDUs while idle are taken where they lie, the caller's buffer and base with them.
    expect(r.pushAt(3, START, p, 5, p.length, ab, 40)).toBe(true);
    expect(r.out).toBe(p);
    expect([r.outStart, r.outEnd, r.outBuffer, r.outBase]).toEqual([5, p.length, ab, 40]);
    // The partial PDU is gone: its continuation is now one without a START.
    expect(pushAt(r, 3, CONT, a.parts[1]!)).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
    // A fragmented PDU comes back in its slab, with the slab's buffer; one of its own, with none.
    const f = fragmentsOf(60, 7);
    let got: Uint8Array | undefined;
    f.parts.forEach((q, i) => { got = pushAt(r, 3, i === 0 ? START : CONT, q) ?? got; });
    expect(toHex(got!)).toBe(toHex(f.whole));
    expect(r.outBuffer).toBe(r.out.buffer);
    expect(r.outBase).toBe(0);
    expect(r.out.buffer.byteLength).toBe(REASSEMBLY_SLAB_SIZE);
    const big = fragmentsOf(REASSEMBLY_SLAB_SIZE, 3, 1000);
    big.parts.forEach((q, i) => { got = pushAt(r, 3, i === 0 ? START : CONT, q) ?? got; });
    expect(toHex(got!)).toBe(toHex(big.whole));
    expect(r.outBuffer).toBeUndefined();
  });

  test('reset() forgets the handle the last packet came from: a continuation after it is dropped', () => {
    const r = new L2capReassembler();
    const a = fragmentsOf(100, 1);
    pushAt(r, 7, START, a.parts[0]!);
    r.reset(7);
    expect(r.assembling(7)).toBe(false);
    expect(pushAt(r, 7, CONT, a.parts[1]!)).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
    pushAt(r, 7, START, a.parts[0]!);
    r.reset();
    expect(pushAt(r, 7, CONT, a.parts[1]!)).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(2);
  });
});

describe('AclReassembler (one link)', () => {
  test('returns whole PDUs, header included', () => {
    const r = new AclReassembler();
    expect(r.push(START, b('0300 0400 0a'))).toBeUndefined();
    expect(r.assembling).toBe(true);
    expect(toHex(r.push(CONT, b('0300'))!)).toBe('030004000a0300');
    expect(toHex(r.push(START, b('0100 0600 01'))!)).toBe('0100060001');
    r.push(START, b('0300 0400 0a'));
    r.reset();
    expect(r.push(CONT, b('0300'))).toBeUndefined();
    expect(r.stats.drops.continuationWithoutStart).toBe(1);
  });
});

describe('reassembleCapture', () => {
  const acl = (handle: number, pb: number, data: string) => {
    const d = b(data);
    return Uint8Array.of(0x02, handle & 0xff, (handle >> 8) | (pb << 4), d.length & 0xff, d.length >> 8, ...d);
  };
  test('directions and adapters are separate streams; PDUs land on the frame of their last fragment', () => {
    const recs = [
      { frame: 1, dir: 'tx' as const, packet: acl(0x40, START_NF, '0300 0400 0a') },
      { frame: 2, dir: 'rx' as const, packet: acl(0x40, START, '0200 0400 0b') },
      { frame: 3, dir: 'rx' as const, adapter: 1, packet: acl(0x40, START, '0100 0400 1e') },
      { frame: 4, dir: 'tx' as const, packet: acl(0x40, CONT, '0300') },
      { frame: 5, dir: 'rx' as const, packet: acl(0x40, CONT, '01') },
      { frame: 6, dir: 'rx' as const, packet: b('04 0e 04 01 00 00 00') }, // an event: ignored
      { frame: 7, dir: 'rx' as const },                                      // a note without packet
      { frame: 8, dir: 'rx' as const, packet: b('02 4000 0500 01') },        // mis-framed ACL: skipped
    ];
    const out = [...reassembleCapture(recs)].map(p => [p.frame, p.dir, p.adapter ?? 0, p.cid, toHex(p.payload)]);
    expect(out).toEqual([[3, 'rx', 1, 4, '1e'], [4, 'tx', 0, 4, '0a0300'], [5, 'rx', 0, 4, '0b01']]);
  });
});
