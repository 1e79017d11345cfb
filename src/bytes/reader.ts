import { DecodeError, type Layer } from '../errors.js';

/**
 * Bounds-checked little-endian reader over an immutable frame. Every read checks the remaining length
 * first, so a short or hostile packet ends in a DecodeError naming layer, PDU and offset, never in a
 * RangeError. `view()` returns subarrays of the frame: frames are never mutated after they are handed
 * to a decoder (STYLE c.7), so the views stay valid.
 */
export class ByteReader {
  offset: number;
  readonly end: number;
  /** Created on first use: most PDUs never need it, and it is the costliest part of a reader. */
  private dvCache: DataView | undefined;

  constructor(
    readonly bytes: Uint8Array,
    readonly layer: Layer,
    public what: string,
    start = 0,
    end = bytes.length,
  ) {
    this.offset = start;
    this.end = end;
  }

  private get dv(): DataView {
    return (this.dvCache ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength));
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  need(n: number): void {
    if (this.end - this.offset < n) {
      throw new DecodeError(this.layer, this.what, this.offset, `need ${n} byte(s), have ${this.end - this.offset}`);
    }
  }

  fail(reason: string, at = this.offset): never {
    throw new DecodeError(this.layer, this.what, at, reason);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }
  i8(): number {
    this.need(1);
    return (this.bytes[this.offset++]! << 24) >> 24;
  }
  u16(): number {
    this.need(2);
    const o = this.offset;
    this.offset += 2;
    return this.bytes[o]! | (this.bytes[o + 1]! << 8);
  }
  i16(): number {
    this.need(2);
    const v = this.dv.getInt16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u16be(): number {
    this.need(2);
    const v = this.dv.getUint16(this.offset, false);
    this.offset += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const o = this.offset;
    this.offset += 3;
    return this.bytes[o]! | (this.bytes[o + 1]! << 8) | (this.bytes[o + 2]! << 16);
  }
  u32(): number {
    this.need(4);
    const o = this.offset, b = this.bytes;
    this.offset += 4;
    return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
  }
  u32be(): number {
    this.need(4);
    const v = this.dv.getUint32(this.offset, false);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }
  u64be(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.offset, false);
    this.offset += 8;
    return v;
  }
  /** A borrowed view of the next n bytes. */
  view(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }
  /** A borrowed view of everything that is left. */
  rest(): Uint8Array {
    const v = this.bytes.subarray(this.offset, this.end);
    this.offset = this.end;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }
  /** A reader over the next n bytes (for length-prefixed sub-structures); advances this one past them. */
  sub(n: number, what = this.what): ByteReader {
    this.need(n);
    const r = new ByteReader(this.bytes, this.layer, what, this.offset, this.offset + n);
    this.offset += n;
    return r;
  }
  /** Throws if bytes are left over (for PDUs whose length is fully determined by their fields). */
  done(): void {
    if (this.offset !== this.end) this.fail(`${this.end - this.offset} unexpected trailing byte(s)`);
  }
}
