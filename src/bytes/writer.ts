import { EncodeError, type Layer } from '../errors.js';

/**
 * Forward-only little-endian writer into a buffer allocated once at the exact size (encoders compute
 * the size first). Out-of-range values throw EncodeError: nothing is silently truncated.
 */
export class ByteWriter {
  offset: number;
  private readonly dv: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly layer: Layer,
    public what: string,
    start = 0,
  ) {
    this.offset = start;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  static alloc(size: number, layer: Layer, what: string): ByteWriter {
    return new ByteWriter(new Uint8Array(size), layer, what);
  }

  private range(v: number, min: number, max: number, name: string): void {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new EncodeError(this.layer, this.what, `${name} ${v} out of range ${min}..${max}`);
    }
  }
  private room(n: number): void {
    if (this.offset + n > this.bytes.length) {
      throw new EncodeError(this.layer, this.what, `buffer overflow (size computed wrongly?)`);
    }
  }

  u8(v: number): this {
    this.range(v, 0, 0xff, 'u8');
    this.room(1);
    this.bytes[this.offset++] = v;
    return this;
  }
  i8(v: number): this {
    this.range(v, -128, 127, 'i8');
    this.room(1);
    this.dv.setInt8(this.offset++, v);
    return this;
  }
  u16(v: number): this {
    this.range(v, 0, 0xffff, 'u16');
    this.room(2);
    this.dv.setUint16(this.offset, v, true);
    this.offset += 2;
    return this;
  }
  i16(v: number): this {
    this.range(v, -0x8000, 0x7fff, 'i16');
    this.room(2);
    this.dv.setInt16(this.offset, v, true);
    this.offset += 2;
    return this;
  }
  u16be(v: number): this {
    this.range(v, 0, 0xffff, 'u16');
    this.room(2);
    this.dv.setUint16(this.offset, v, false);
    this.offset += 2;
    return this;
  }
  u24(v: number): this {
    this.range(v, 0, 0xffffff, 'u24');
    this.room(3);
    this.bytes[this.offset] = v & 0xff;
    this.bytes[this.offset + 1] = (v >>> 8) & 0xff;
    this.bytes[this.offset + 2] = (v >>> 16) & 0xff;
    this.offset += 3;
    return this;
  }
  u32(v: number): this {
    this.range(v, 0, 0xffffffff, 'u32');
    this.room(4);
    this.dv.setUint32(this.offset, v, true);
    this.offset += 4;
    return this;
  }
  u32be(v: number): this {
    this.range(v, 0, 0xffffffff, 'u32');
    this.room(4);
    this.dv.setUint32(this.offset, v, false);
    this.offset += 4;
    return this;
  }
  u64(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) {
      throw new EncodeError(this.layer, this.what, `u64 ${String(v)} out of range`);
    }
    this.room(8);
    this.dv.setBigUint64(this.offset, v, true);
    this.offset += 8;
    return this;
  }
  u64be(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) {
      throw new EncodeError(this.layer, this.what, `u64 ${String(v)} out of range`);
    }
    this.room(8);
    this.dv.setBigUint64(this.offset, v, false);
    this.offset += 8;
    return this;
  }
  bytesOf(v: Uint8Array): this {
    this.room(v.length);
    this.bytes.set(v, this.offset);
    this.offset += v.length;
    return this;
  }
  fill(n: number, value = 0): this {
    this.room(n);
    this.bytes.fill(value, this.offset, this.offset + n);
    this.offset += n;
    return this;
  }
  /** The written bytes; throws if the computed size and what was written disagree. */
  finish(): Uint8Array {
    if (this.offset !== this.bytes.length) {
      throw new EncodeError(this.layer, this.what, `wrote ${this.offset} of ${this.bytes.length} bytes`);
    }
    return this.bytes;
  }
}
