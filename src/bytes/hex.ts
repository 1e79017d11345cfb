/** Hex helpers shared by describe(), JSON output and tests. */
import { ArgumentError } from '../errors.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex, no separators. */
export function toHex(bytes: Uint8Array, sep = ''): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (i && sep ? sep : '') + HEX[bytes[i]!];
  return s;
}

/** Parse hex; spaces, colons, dashes and underscores are ignored (fixtures are written with spaces). */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/[\s:_-]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new ArgumentError(`not hex: ${JSON.stringify(text)}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const hex8 = (v: number): string => '0x' + HEX[v & 0xff];
export const hex16 = (v: number): string => '0x' + v.toString(16).padStart(4, '0');

/** Byte i of the table as two hex digits (for hot-path formatting without allocation of a table). */
export const hexByte = (v: number): string => HEX[v & 0xff]!;

/**
 * The byte-compare helper of the whole stack (hashes, echoes, keys, magic numbers, scan data): true when
 * both hold the same octets. Not constant-time: never use it to check a secret against an attacker's guess.
 */
export function equalBytes(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The parts joined into one new array (one allocation, one copy of each part). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
