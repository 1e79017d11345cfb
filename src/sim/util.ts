import { fromHex } from '../bytes/hex.js';
import { buildAd } from '../gap/ad.js';
import { uuid } from '../codec/uuid.js';
import type { SimAdData, SimBytes } from './types.js';
import { ArgumentError } from '../errors.js';

const enc = new TextEncoder();

/** SimBytes → bytes ({hex} decoded, strings as UTF-8). */
export function bytesOf(v: SimBytes | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (typeof v === 'string') return enc.encode(v);
  if (v instanceof Uint8Array) return v;
  return fromHex(v.hex);
}

/** Advertising data as bytes: raw, or content encoded with the AD table. */
export function adBytes(d: SimAdData | undefined): Uint8Array {
  if (d === undefined) return new Uint8Array(0);
  if ('raw' in d) return bytesOf(d.raw);
  return buildAd({
    ...(d.flags !== undefined ? { flags: d.flags } : {}),
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.shortName !== undefined ? { shortName: d.shortName } : {}),
    ...(d.txPower !== undefined ? { txPower: d.txPower } : {}),
    ...(d.appearance !== undefined ? { appearance: d.appearance } : {}),
    ...(d.uri !== undefined ? { uri: d.uri } : {}),
    serviceUuids: (d.serviceUuids ?? []).map(u => uuid(u)),
    serviceData: (d.serviceData ?? []).map(([u, b]) => [uuid(u), bytesOf(b)] as [string, Uint8Array]),
    manufacturerData: (d.manufacturerData ?? []).map(([c, b]) => [c, bytesOf(b)] as [number, Uint8Array]),
  });
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same world. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Roughly normal (sum of uniforms), mean 0, given standard deviation. */
  gauss(sd: number): number {
    return (this.next() + this.next() + this.next() - 1.5) * 2 * sd;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

/** "c0:11:…" → "C0:11:…"; throws on a malformed address (scenario bug, not peer input). */
export function normAddress(a: string): string {
  const s = a.toUpperCase();
  if (!/^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/.test(s)) throw new ArgumentError(`sim: bad address ${JSON.stringify(a)}`);
  return s;
}

/** 1.25 ms units → µs. */
export const units1250 = (n: number): number => n * 1250;
