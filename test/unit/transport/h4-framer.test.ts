import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { parseCapture } from '../../../src/capture/index.js';
import { DecodeError } from '../../../src/errors.js';
import { H4Framer } from '../../../src/transport/h4-framer.js';

const CAPTURES = new URL('../../../captures/', import.meta.url).pathname;

// One packet of each H4 type, including zero-length payloads and the ISO length's RFU bits.
const PACKETS = [
  '01 03 0c 00', // Reset
  '04 0e 04 01 03 0c 00', // Command Complete
  '02 40 00 07 00 03 00 04 00 0a 03 00', // ACL ATT Read Request
  '03 01 00 03 aa bb cc', // SCO, 3 bytes
  '05 01 00 02 c0 ee ff', // ISO, length 2 with the two RFU bits set
  '04 13 00', // an event with no parameters
  '02 41 20 00 00', // empty ACL
].map(fromHex);
const STREAM = concat(PACKETS);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function frame(chunks: Uint8Array[]): { packets: Uint8Array[]; errors: DecodeError[] } {
  const packets: Uint8Array[] = [];
  const errors: DecodeError[] = [];
  const f = new H4Framer({ packet: p => packets.push(p), error: e => errors.push(e) });
  for (const c of chunks) f.push(c);
  return { packets, errors };
}

/** Seeded PRNG (mulberry32) so a failing split can be reproduced. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('H4 framer', () => {
  it('frames a whole stream given in one chunk, emitting views of that chunk', () => {
    const chunk = Uint8Array.from(STREAM);
    const { packets, errors } = frame([chunk]);
    expect(errors).toEqual([]);
    expect(packets.map(p => toHex(p))).toEqual(PACKETS.map(p => toHex(p)));
    for (const p of packets) expect(p.buffer).toBe(chunk.buffer);
  });

  it('a packet inside a Node Buffer chunk at an offset (a pooled read) is a plain Uint8Array view of exactly its bytes', () => {
    const pool = Buffer.alloc(STREAM.length + 64, 0xee);
    pool.set(STREAM, 37);
    const chunk = pool.subarray(37, 37 + STREAM.length);
    const { packets, errors } = frame([chunk]);
    expect(errors).toEqual([]);
    expect(packets.map(p => toHex(p))).toEqual(PACKETS.map(p => toHex(p)));
    let at = 37;
    for (const p of packets) {
      expect(Object.getPrototypeOf(p)).toBe(Uint8Array.prototype);
      expect(p.buffer).toBe(pool.buffer);
      expect(p.byteOffset).toBe(pool.byteOffset + at);
      at += p.length;
    }
    expect(at).toBe(37 + STREAM.length);
  });

  it('is correct when the stream is split at any one byte, and at every pair of bytes', () => {
    for (let a = 0; a <= STREAM.length; a++) {
      for (let b = a; b <= STREAM.length; b++) {
        const { packets, errors } = frame([STREAM.slice(0, a), STREAM.slice(a, b), STREAM.slice(b)]);
        expect(errors).toEqual([]);
        expect(packets.map(p => toHex(p))).toEqual(PACKETS.map(p => toHex(p)));
      }
    }
  });

  it('is correct one byte at a time, and packets that straddle chunks are exact-size fresh arrays', () => {
    const bytes = Array.from(STREAM, b => Uint8Array.of(b));
    const { packets } = frame(bytes);
    expect(packets.map(p => toHex(p))).toEqual(PACKETS.map(p => toHex(p)));
    for (const p of packets) {
      expect(p.byteOffset).toBe(0);
      expect(p.buffer.byteLength).toBe(p.length);
    }
  });

  for (const file of ['real/tql130-reads-writes.btsnoop', 'real/pongbot-session.btsnoop']) {
    it(`random 1–9 byte chunks over every packet of ${file}`, () => {
      const expected = [...parseCapture(readFileSync(CAPTURES + file))].filter(r => r.packet).map(r => r.packet!);
      const stream = concat(expected);
      for (const seed of [1, 2, 3]) {
        const next = rng(seed);
        const chunks: Uint8Array[] = [];
        for (let o = 0; o < stream.length;) {
          const n = 1 + Math.floor(next() * 9);
          chunks.push(stream.slice(o, o + n));
          o += n;
        }
        const { packets, errors } = frame(chunks);
        expect(errors).toEqual([]);
        expect(packets.length).toBe(expected.length);
        expect(toHex(concat(packets))).toBe(toHex(stream));
        for (let i = 0; i < expected.length; i++) expect(packets[i]!.length).toBe(expected[i]!.length);
      }
    });
  }

  it('never changes a packet it has handed out, whatever later chunks bring (pg-protocol #3776)', () => {
    const next = rng(42);
    const chunks: Uint8Array[] = [];
    for (let o = 0; o < STREAM.length;) {
      const n = 1 + Math.floor(next() * 5);
      chunks.push(STREAM.slice(o, o + n));
      o += n;
    }
    const seen: { packet: Uint8Array; copy: string }[] = [];
    const f = new H4Framer({ packet: p => seen.push({ packet: p, copy: toHex(p) }), error: e => { throw e; } });
    for (let round = 0; round < 3; round++) {
      for (const c of chunks) f.push(Uint8Array.from(c));
      // A consumer that scribbles on some of what it got must not affect any other packet.
      seen.forEach((s, i) => { if (i % 2 === 0) s.packet.fill(0xee); });
    }
    expect(seen.length).toBe(3 * PACKETS.length);
    expect(seen.map(s => s.copy)).toEqual([...PACKETS, ...PACKETS, ...PACKETS].map(p => toHex(p)));
    // The packets nobody wrote to are still exactly what was emitted.
    seen.forEach((s, i) => { if (i % 2 === 1) expect(toHex(s.packet)).toBe(s.copy); });
  });

  it('emitted packets stay intact while more data arrives (no buffer reuse)', () => {
    const got: Uint8Array[] = [];
    const f = new H4Framer({ packet: p => got.push(p), error: e => { throw e; } });
    // A packet straddling chunks, then many more packets: the first must stay as it was.
    f.push(fromHex('02 40 00 07 00 03 00'));
    f.push(fromHex('04 00 0a 03 00 04 0e 04 01 03'));
    const first = toHex(got[0]!);
    for (let i = 0; i < 100; i++) f.push(fromHex('0c 00 04 0e 04 01 03'));
    expect(toHex(got[0]!)).toBe(first);
    expect(first).toBe('0240000700030004000a0300');
  });

  it('an unknown indicator is a DecodeError with its stream offset, and the framer stops', () => {
    const { packets, errors } = frame([fromHex('01 03 0c 00 04'), fromHex('0e 04 01 03 0c 00 07 01 02'), fromHex('01 03 0c 00')]);
    expect(packets.map(p => toHex(p))).toEqual(['01030c00', '040e0401030c00']);
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(DecodeError);
    expect(errors[0]!.layer).toBe('h4');
    expect(errors[0]!.offset).toBe(11);
    expect(errors[0]!.message).toMatch(/unknown packet indicator 0x07.*cannot resynchronise/);
  });

  it('reports how much of an unfinished packet it holds', () => {
    const f = new H4Framer({ packet: () => {}, error: () => {} });
    f.push(fromHex('02 40'));
    expect(f.pending).toEqual({ have: 2, need: 0 });
    f.push(fromHex('00 07 00 03'));
    expect(f.pending).toEqual({ have: 6, need: 12 });
  });

  it('a sink with packetAt gets whole packets in place (chunk, start, end, the chunk\'s buffer and offset), straddling ones through packet()', () => {
    const pool = Buffer.alloc(STREAM.length + 64, 0xee);
    pool.set(STREAM, 37);
    const cut = 37 + PACKETS[0]!.length + PACKETS[1]!.length + 4; // inside the ACL packet
    const chunks = [pool.subarray(37, cut), pool.subarray(cut, 37 + STREAM.length)];
    const seen: Array<{ how: string; hex: string }> = [];
    const f = new H4Framer({
      packet: p => seen.push({ how: 'packet', hex: toHex(p) }),
      packetAt: (bytes, start, end, buffer, base) => {
        const c = chunks.find(x => x === bytes)!;
        expect(c).toBeDefined();
        expect(buffer).toBe(pool.buffer);
        expect(base).toBe(c.byteOffset);
        // The octets as the receiver will view them from the numbers alone, and as indexed in `bytes`.
        const fromNumbers = toHex(new Uint8Array(buffer, base + start, end - start));
        expect(toHex(bytes.subarray(start, end))).toBe(fromNumbers);
        seen.push({ how: 'at', hex: fromNumbers });
      },
      error: e => { throw e; },
    });
    for (const c of chunks) f.push(c);
    expect(seen.map(x => x.hex)).toEqual(PACKETS.map(p => toHex(p)));
    expect(seen.map(x => x.how)).toEqual(['at', 'at', 'packet', 'at', 'at', 'at', 'at']);
  });
});
