/**
 * AES-128 encryption of single blocks in JavaScript (FIPS 197), for one hot path only: resolving
 * resolvable private addresses against every bonded IRK (gap/privacy.ts). node:crypto stays the
 * implementation everywhere else (platform/crypto.ts) and the reference this file is tested against.
 *
 * Why a second implementation: resolving a new RPA is one AES block per bonded IRK. Through
 * node:crypto each block is a call into native code that allocates a Buffer, with one OpenSSL context
 * per IRK (hundreds of them evict each other from the CPU caches); measured with 100 IRKs that is
 * 3-6x over issue 9's 100 µs budget per new RPA (tools/bench/privacy.bench.ts prints both). Here an
 * IRK's expanded key is 44 words (176 octets) kept in one typed array, and a block is 40 table
 * look-ups with no allocation.
 *
 * Layout: the state is four 32-bit words, column c = input octets 4c..4c+3, most significant first.
 * The round tables T0..T3 combine SubBytes, ShiftRows and MixColumns (FIPS 197, 5.2.1's
 * "table look-up" formulation); the last round (no MixColumns) uses the S-box alone. The tables are
 * computed at load from the field arithmetic (FIPS 197, 5.1.1: multiplicative inverse in GF(2^8)
 * followed by the affine transform), not copied.
 *
 * Not constant-time (table look-ups leak the index through the cache). What it processes is public:
 * the prand of an address heard on the air; the IRK is long-lived, but an attacker would have to run
 * code on this machine to measure our cache, and a local attacker can read the bond files anyway.
 */
import { ArgumentError } from '../errors.js';

const SBOX = new Uint8Array(256);
const T0 = new Uint32Array(256);
const T1 = new Uint32Array(256);
const T2 = new Uint32Array(256);
const T3 = new Uint32Array(256);

/** x·2 in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS 197, 4.2.1 xtime). */
const xtime = (x: number): number => ((x << 1) ^ (x & 0x80 ? 0x1b : 0)) & 0xff;
const rotl8 = (x: number, n: number): number => ((x << n) | (x >> (8 - n))) & 0xff;

{
  // Walk the field with generator 3: p runs through 3^i, q through 3^-i (its inverse); the S-box of
  // p is the affine transform of q (FIPS 197, 5.1.1). 0 has no inverse: its S-box value is 0x63.
  let p = 1, q = 1;
  do {
    p = p ^ xtime(p);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    SBOX[p] = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4) ^ 0x63;
  } while (p !== 1);
  SBOX[0] = 0x63;
  for (let x = 0; x < 256; x++) {
    const s = SBOX[x]!;
    const s2 = xtime(s), s3 = s2 ^ s;
    // MixColumns column (2, 1, 1, 3)·s, most significant octet first, and its byte rotations.
    const w = ((s2 << 24) | (s << 16) | (s << 8) | s3) >>> 0;
    T0[x] = w;
    T1[x] = ((w >>> 8) | (w << 24)) >>> 0;
    T2[x] = ((w >>> 16) | (w << 16)) >>> 0;
    T3[x] = ((w >>> 24) | (w << 8)) >>> 0;
  }
}

const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

const subWord = (w: number): number =>
  ((SBOX[w >>> 24]! << 24) | (SBOX[(w >>> 16) & 0xff]! << 16) | (SBOX[(w >>> 8) & 0xff]! << 8) | SBOX[w & 0xff]!) >>> 0;

/** The 44-word key schedule of a 16-octet key (FIPS 197, 5.2 KeyExpansion), key most significant octet first. */
export function aes128ExpandKey(key: Uint8Array): Uint32Array {
  if (!(key instanceof Uint8Array) || key.length !== 16) throw new ArgumentError('an AES-128 key is 16 octets');
  const w = new Uint32Array(44);
  for (let i = 0; i < 4; i++) w[i] = ((key[4 * i]! << 24) | (key[4 * i + 1]! << 16) | (key[4 * i + 2]! << 8) | key[4 * i + 3]!) >>> 0;
  for (let i = 4; i < 44; i++) {
    let t = w[i - 1]!;
    if (i % 4 === 0) t = (subWord(((t << 8) | (t >>> 24)) >>> 0) ^ (RCON[i / 4 - 1]! << 24)) >>> 0;
    w[i] = (w[i - 4]! ^ t) >>> 0;
  }
  return w;
}

/**
 * The nine full rounds and the last one; returns the output's four words through `out`. Inputs are
 * the state's columns after AddRoundKey 0.
 */
function rounds(rk: Uint32Array, s0: number, s1: number, s2: number, s3: number, out: Uint32Array): void {
  let k = 4;
  for (let r = 1; r < 10; r++, k += 4) {
    const t0 = T0[s0 >>> 24]! ^ T1[(s1 >>> 16) & 0xff]! ^ T2[(s2 >>> 8) & 0xff]! ^ T3[s3 & 0xff]! ^ rk[k]!;
    const t1 = T0[s1 >>> 24]! ^ T1[(s2 >>> 16) & 0xff]! ^ T2[(s3 >>> 8) & 0xff]! ^ T3[s0 & 0xff]! ^ rk[k + 1]!;
    const t2 = T0[s2 >>> 24]! ^ T1[(s3 >>> 16) & 0xff]! ^ T2[(s0 >>> 8) & 0xff]! ^ T3[s1 & 0xff]! ^ rk[k + 2]!;
    const t3 = T0[s3 >>> 24]! ^ T1[(s0 >>> 16) & 0xff]! ^ T2[(s1 >>> 8) & 0xff]! ^ T3[s2 & 0xff]! ^ rk[k + 3]!;
    s0 = t0; s1 = t1; s2 = t2; s3 = t3;
  }
  // Last round: SubBytes, ShiftRows, AddRoundKey (no MixColumns).
  out[0] = ((SBOX[s0 >>> 24]! << 24) | (SBOX[(s1 >>> 16) & 0xff]! << 16) | (SBOX[(s2 >>> 8) & 0xff]! << 8) | SBOX[s3 & 0xff]!) ^ rk[40]!;
  out[1] = ((SBOX[s1 >>> 24]! << 24) | (SBOX[(s2 >>> 16) & 0xff]! << 16) | (SBOX[(s3 >>> 8) & 0xff]! << 8) | SBOX[s0 & 0xff]!) ^ rk[41]!;
  out[2] = ((SBOX[s2 >>> 24]! << 24) | (SBOX[(s3 >>> 16) & 0xff]! << 16) | (SBOX[(s0 >>> 8) & 0xff]! << 8) | SBOX[s1 & 0xff]!) ^ rk[42]!;
  out[3] = ((SBOX[s3 >>> 24]! << 24) | (SBOX[(s0 >>> 16) & 0xff]! << 16) | (SBOX[(s1 >>> 8) & 0xff]! << 8) | SBOX[s2 & 0xff]!) ^ rk[43]!;
}

const OUT = new Uint32Array(4);

/** AES-128 of one 16-octet block under an expanded key (aes128ExpandKey); a new 16-octet result. */
export function aes128EncryptBlock(rk: Uint32Array, block: Uint8Array): Uint8Array {
  if (rk.length !== 44 || block.length !== 16) throw new ArgumentError('aes128EncryptBlock takes a 44-word schedule and a 16-octet block');
  const word = (i: number): number => (block[i]! << 24) | (block[i + 1]! << 16) | (block[i + 2]! << 8) | block[i + 3]!;
  rounds(rk, word(0) ^ rk[0]!, word(4) ^ rk[1]!, word(8) ^ rk[2]!, word(12) ^ rk[3]!, OUT);
  const r = new Uint8Array(16);
  for (let c = 0; c < 4; c++) {
    const w = OUT[c]!;
    r[4 * c] = w >>> 24; r[4 * c + 1] = (w >>> 16) & 0xff; r[4 * c + 2] = (w >>> 8) & 0xff; r[4 * c + 3] = w & 0xff;
  }
  return r;
}

/**
 * ah's AES step for the resolver (Core Vol 3, Part H, 2.2.2): the low 24 bits of e(k, r') with
 * r' = 13 zero octets || prand, `prand` the 24-bit value (most significant octet first in the
 * address). No allocation: the first three columns of r' are zero, so they enter as the round key.
 */
export function aes128Low24OfPrand(rk: Uint32Array, prand: number): number {
  rounds(rk, rk[0]!, rk[1]!, rk[2]!, (prand & 0xffffff) ^ rk[3]!, OUT);
  return OUT[3]! & 0xffffff;
}
