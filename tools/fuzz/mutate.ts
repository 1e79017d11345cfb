/**
 * The fuzzer's randomness and its byte mutations. A fast seeded generator (xorshift32), not
 * fast-check: the stream fuzzer wants millions of inputs a minute, each reproducible from
 * (seed, index), and keeps no shrinking machinery in the hot loop.
 */

/** xorshift32 (Marsaglia 2003): 2^32 - 1 period, a few nanoseconds a draw; never seeded with 0. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 0x9e3779b9;
    for (let i = 0; i < 8; i++) this.u32(); // spread small seeds
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.s = x >>> 0);
  }
  /** 0 .. n-1 */
  int(n: number): number {
    return this.u32() % n;
  }
  /** true with probability p */
  chance(p: number): boolean {
    return this.u32() < p * 0x1_0000_0000;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.u32() % a.length]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/** Values at the edges of fields: zero, one, sign and range boundaries. */
const INTERESTING8 = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING16 = [0x0000, 0x0001, 0x0017, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfffe, 0xffff];

/**
 * 1-4 mutations of `src` (a copy; `src` is never changed): bit flips, edge values in 8- and 16-bit
 * fields, random bytes, truncation, growth, insertion, deletion, duplication. The first `keep` octets
 * stay as they are (an H4 indicator, an event code); the result is at most `maxLength` octets.
 */
export function mutate(rng: Rng, src: Uint8Array, keep = 0, maxLength = 512): Uint8Array {
  let b = Uint8Array.from(src);
  const n = 1 + rng.int(4);
  for (let k = 0; k < n; k++) {
    const span = b.length - keep;
    const at = keep + (span > 0 ? rng.int(span) : 0);
    switch (rng.int(10)) {
      case 0: case 1:
        if (span > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 2:
        if (span > 0) b[at] = rng.pick(INTERESTING8);
        break;
      case 3:
        if (span > 1) {
          const v = rng.pick(INTERESTING16);
          const i = Math.min(at, b.length - 2);
          b[i] = v & 0xff;
          b[i + 1] = v >> 8;
        }
        break;
      case 4:
        if (span > 0) b[at] = rng.u32() & 0xff;
        break;
      case 5: // truncate
        if (span > 0) b = b.slice(0, at);
        break;
      case 6: { // grow
        const tail = rng.bytes(1 + rng.int(rng.chance(0.1) ? 300 : 16));
        const c = new Uint8Array(b.length + tail.length);
        c.set(b);
        c.set(tail, b.length);
        b = c;
        break;
      }
      case 7: { // insert
        const ins = rng.bytes(1 + rng.int(8));
        const c = new Uint8Array(b.length + ins.length);
        c.set(b.subarray(0, at));
        c.set(ins, at);
        c.set(b.subarray(at), at + ins.length);
        b = c;
        break;
      }
      case 8: // delete a chunk
        if (span > 0) {
          const len = 1 + rng.int(Math.min(8, b.length - at));
          const c = new Uint8Array(b.length - len);
          c.set(b.subarray(0, at));
          c.set(b.subarray(at + len), at);
          b = c;
        }
        break;
      case 9: // duplicate a chunk
        if (span > 0) {
          const len = 1 + rng.int(Math.min(16, b.length - at));
          const chunk = b.slice(at, at + len);
          const c = new Uint8Array(b.length + len);
          c.set(b.subarray(0, at + len));
          c.set(chunk, at + len);
          c.set(b.subarray(at + len), at + 2 * len);
          b = c;
        }
        break;
    }
  }
  return b.length > maxLength ? b.slice(0, maxLength) : b;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}
