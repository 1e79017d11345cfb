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
