import { hex8 } from '../bytes/hex.js';
import type { Field } from './field.js';

/**
 * Bit fields: a numeric field whose bits have names (AD Flags, SMP AuthReq and key distribution,
 * advertising event properties, …). The decoded value stays the number on the wire, so every PDU
 * round-trips exactly, reserved bits included; the field adds named access (has / get / pack /
 * unpack) in place of shifts and masks at the call sites, and describe() shows the named bits:
 * `0x0d(bonding|mitm|sc)`. Bits set that have no name show as `rfu=0x…`.
 */
export interface BitSpec {
  /** The bits of this part of the value (one bit, or several for a small number such as Bonding_Flags). */
  readonly mask: number;
  /** How describe() names it (default: the key). */
  readonly label?: string;
  /** For multi-bit parts: names of the values (a value without a name shows as `label=value`). */
  readonly values?: Readonly<Record<number, string>>;
}

export type BitSpecs = Readonly<Record<string, number | BitSpec>>;

export interface BitField<S extends BitSpecs> extends Field<number> {
  readonly parts: { readonly [K in keyof S]: Required<Pick<BitSpec, 'mask'>> & BitSpec & { readonly shift: number } };
  /** Every bit that has a name (the complement is reserved for future use). */
  readonly known: number;
  /** True when any bit of the part is set. */
  has(v: number, part: keyof S): boolean;
  /** The part's value, shifted down (0/1 for a single bit). */
  get(v: number, part: keyof S): number;
  /**
   * `has` / `get` specialised to one part, for hot paths: the mask and shift are bound once, so the
   * call site costs what the inline shift and mask would.
   */
  tester(part: keyof S): (v: number) => boolean;
  getter(part: keyof S): (v: number) => number;
  /** `(v, x)`: v with the part replaced by x (masked to the part), bound once like getter(). */
  setter(part: keyof S): (v: number, x: number) => number;
  /** A value from named parts (booleans for single bits, numbers for multi-bit parts). */
  pack(parts: { readonly [K in keyof S]?: boolean | number }): number;
  /** The named bits and parts that are set; reserved bits under `rfu`. */
  describeBits(v: number): string;
}

const shiftOf = (mask: number): number => {
  let s = 0;
  while (s < 31 && ((mask >>> s) & 1) === 0) s++;
  return s;
};

/** A bit field over a numeric base field (x8, x16, …). */
export function bitfield<const S extends BitSpecs>(base: Field<number>, specs: S, hex: (v: number) => string = hex8): BitField<S> {
  const parts = {} as Record<string, BitSpec & { shift: number }>;
  let named = 0;
  for (const [k, s] of Object.entries(specs)) {
    const spec: BitSpec = typeof s === 'number' ? { mask: s } : s;
    if (spec.mask === 0 || (spec.mask & named) !== 0) throw new Error(`bitfield: part ${k} overlaps another or is empty`);
    named |= spec.mask;
    parts[k] = { ...spec, shift: shiftOf(spec.mask) };
  }
  const list = Object.entries(parts);
  const describeBits = (v: number): string => {
    const on: string[] = [];
    for (const [k, p] of list) {
      const x = (v & p.mask) >>> p.shift;
      if (x === 0) continue;
      const label = p.label ?? k;
      if (p.mask === 1 << p.shift) on.push(label);
      else on.push(p.values?.[x] ?? `${label}=${x}`);
    }
    const rfu = v & ~named;
    if (rfu) on.push(`rfu=${hex(rfu)}`);
    return `${hex(v)}(${on.join('|') || 'none'})`;
  };
  return {
    ...base,
    fmt: describeBits,
    parts: parts as never,
    known: named >>> 0,
    has: (v, part) => (v & parts[part as string]!.mask) !== 0,
    get: (v, part) => (v & parts[part as string]!.mask) >>> parts[part as string]!.shift,
    tester: part => {
      const m = parts[part as string]!.mask;
      return v => (v & m) !== 0;
    },
    getter: part => {
      const { mask: m, shift: sh } = parts[part as string]!;
      return v => (v & m) >>> sh;
    },
    setter: part => {
      const { mask: m, shift: sh } = parts[part as string]!;
      return (v, x) => ((v & ~m) | ((x << sh) & m)) >>> 0;
    },
    pack: values => {
      let v = 0;
      for (const [k, x] of Object.entries(values)) {
        const p = parts[k];
        if (!p || x === undefined || x === false) continue;
        v |= ((x === true ? 1 : x) << p.shift) & p.mask;
      }
      return v >>> 0;
    },
    describeBits,
  };
}

/**
 * A 64-bit feature mask whose bits have names (LE features, Vol 6, Part B, 4.6), over a bigint field
 * (u64). Named by bit number as the spec tables list them; unnamed set bits show as `bitN`.
 */
export interface BitSet64<S extends Readonly<Record<string, number>>> extends Field<bigint> {
  readonly bits: S;
  has(v: bigint, name: keyof S): boolean;
  pack(names: Iterable<keyof S>): bigint;
  /** The names of the set bits, in bit order. */
  names(v: bigint): Array<keyof S & string>;
  describeBits(v: bigint): string;
}

export function bitset64<const S extends Readonly<Record<string, number>>>(base: Field<bigint>, bits: S): BitSet64<S> {
  const byBit = new Map<number, string>();
  for (const [k, b] of Object.entries(bits)) {
    if (!Number.isInteger(b) || b < 0 || b > 63 || byBit.has(b)) throw new Error(`bitset64: bit ${b} of ${k} is out of range or named twice`);
    byBit.set(b, k);
  }
  const order = [...byBit.entries()].sort((a, b) => a[0] - b[0]);
  const has = (v: bigint, name: keyof S): boolean => ((v >> BigInt(bits[name]!)) & 1n) === 1n;
  const describeBits = (v: bigint): string => {
    const on: string[] = [];
    for (let b = 0; b < 64; b++) if ((v >> BigInt(b)) & 1n) on.push(byBit.get(b) ?? `bit${b}`);
    return `0x${v.toString(16).padStart(16, '0')}(${on.join('|') || 'none'})`;
  };
  return {
    ...base,
    fmt: describeBits,
    bits,
    has,
    pack: names => {
      let v = 0n;
      for (const n of names) v |= 1n << BigInt(bits[n]!);
      return v;
    },
    names: v => order.filter(([b]) => ((v >> BigInt(b)) & 1n) === 1n).map(([, k]) => k as keyof S & string),
    describeBits,
  };
}
