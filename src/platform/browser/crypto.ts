/**
 * crypto for a browser build: the Security Manager calls AES-128, AES-CMAC and P-256 synchronously
 * (inside its state machine and the address resolver), and Web Crypto offers only promises, so the
 * block cipher and the curve are computed here in JavaScript: AES-128 encryption from FIPS 197 (tables
 * built at first use from the S-box's definition, 5.1.1), AES-CMAC from RFC 4493, P-256 from FIPS 186-4
 * D.1.2.3 on BigInt (Jacobian coordinates, a Montgomery ladder). Random octets come from Web Crypto's
 * getRandomValues, the browser's CSPRNG. Same exports and conventions as ../crypto.ts (values most
 * significant octet first); test/unit/platform/browser.test.ts checks every function against it.
 *
 * What this is not: hardened against timing side channels (BigInt arithmetic and table lookups are not
 * constant-time). LE Secure Connections makes a fresh key pair per pairing and a radio peer cannot time
 * the page's JavaScript, which is the trade made here; in Node, node:crypto (OpenSSL) does the work.
 */
import { ArgumentError } from '../../errors.js';
import { cmacDouble as dbl } from '../cmac-subkey.js';
import type { P256KeyPair } from '../crypto.js';

export type { P256KeyPair };

// ---------------------------------------------------------------------------------------------------
// AES-128 (FIPS 197): encryption only, which is all SMP uses (e, ah, c1, s1, AES-CMAC).

let SBOX: Uint8Array | undefined;
/** T-tables: SubBytes, ShiftRows and MixColumns of one column as four lookups (FIPS 197, 5.1). */
let T0: Uint32Array, T1: Uint32Array, T2: Uint32Array, T3: Uint32Array;

function tables(): Uint8Array {
  if (SBOX) return SBOX;
  const sbox = new Uint8Array(256);
  // Multiplicative inverses in GF(2^8) through powers of the generator 3, then the affine map (5.1.1).
  const exp = new Uint8Array(256), log = new Uint8Array(256);
  for (let i = 0, x = 1; i < 255; i++) {
    exp[i] = x; log[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0);
    x &= 0xff;
  }
  for (let a = 0; a < 256; a++) {
    const inv = a === 0 ? 0 : exp[(255 - log[a]!) % 255]!;
    let s = inv;
    for (let r = 1; r <= 4; r++) s ^= ((inv << r) | (inv >> (8 - r))) & 0xff;
    sbox[a] = s ^ 0x63;
  }
  T0 = new Uint32Array(256); T1 = new Uint32Array(256); T2 = new Uint32Array(256); T3 = new Uint32Array(256);
  for (let a = 0; a < 256; a++) {
    const s = sbox[a]!;
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x11b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = ((s2 << 24) | (s << 16) | (s << 8) | s3) >>> 0;
    T0[a] = t;
    T1[a] = ((t >>> 8) | (t << 24)) >>> 0;
    T2[a] = ((t >>> 16) | (t << 16)) >>> 0;
    T3[a] = ((t >>> 24) | (t << 8)) >>> 0;
  }
  SBOX = sbox;
  return sbox;
}

/** The 44 round-key words of a 128-bit key (FIPS 197, 5.2). */
function expandKey(key: Uint8Array): Uint32Array {
  const sbox = tables();
  const w = new Uint32Array(44);
  for (let i = 0; i < 4; i++) w[i] = ((key[4 * i]! << 24) | (key[4 * i + 1]! << 16) | (key[4 * i + 2]! << 8) | key[4 * i + 3]!) >>> 0;
  let rcon = 1;
  for (let i = 4; i < 44; i++) {
    let t = w[i - 1]!;
    if (i % 4 === 0) {
      t = ((sbox[(t >>> 16) & 0xff]! << 24) | (sbox[(t >>> 8) & 0xff]! << 16) | (sbox[t & 0xff]! << 8) | sbox[t >>> 24]!) ^ (rcon << 24);
      rcon = ((rcon << 1) ^ (rcon & 0x80 ? 0x11b : 0)) & 0xff;
    }
    w[i] = (w[i - 4]! ^ t) >>> 0;
  }
  return w;
}

function encryptBlock(w: Uint32Array, block: Uint8Array): Uint8Array {
  const sbox = tables();
  let s0 = (((block[0]! << 24) | (block[1]! << 16) | (block[2]! << 8) | block[3]!) ^ w[0]!) >>> 0;
  let s1 = (((block[4]! << 24) | (block[5]! << 16) | (block[6]! << 8) | block[7]!) ^ w[1]!) >>> 0;
  let s2 = (((block[8]! << 24) | (block[9]! << 16) | (block[10]! << 8) | block[11]!) ^ w[2]!) >>> 0;
  let s3 = (((block[12]! << 24) | (block[13]! << 16) | (block[14]! << 8) | block[15]!) ^ w[3]!) >>> 0;
  for (let r = 1; r < 10; r++) {
    const k = 4 * r;
    const t0 = T0[s0 >>> 24]! ^ T1[(s1 >>> 16) & 0xff]! ^ T2[(s2 >>> 8) & 0xff]! ^ T3[s3 & 0xff]! ^ w[k]!;
    const t1 = T0[s1 >>> 24]! ^ T1[(s2 >>> 16) & 0xff]! ^ T2[(s3 >>> 8) & 0xff]! ^ T3[s0 & 0xff]! ^ w[k + 1]!;
    const t2 = T0[s2 >>> 24]! ^ T1[(s3 >>> 16) & 0xff]! ^ T2[(s0 >>> 8) & 0xff]! ^ T3[s1 & 0xff]! ^ w[k + 2]!;
    const t3 = T0[s3 >>> 24]! ^ T1[(s0 >>> 16) & 0xff]! ^ T2[(s1 >>> 8) & 0xff]! ^ T3[s2 & 0xff]! ^ w[k + 3]!;
    s0 = t0 >>> 0; s1 = t1 >>> 0; s2 = t2 >>> 0; s3 = t3 >>> 0;
  }
  // The last round has no MixColumns.
  const out = new Uint8Array(16);
  const cols = [s0, s1, s2, s3];
  for (let c = 0; c < 4; c++) {
    const v = ((sbox[cols[c]! >>> 24]! << 24) | (sbox[(cols[(c + 1) % 4]! >>> 16) & 0xff]! << 16) |
      (sbox[(cols[(c + 2) % 4]! >>> 8) & 0xff]! << 8) | sbox[cols[(c + 3) % 4]! & 0xff]!) ^ w[40 + c]!;
    out[4 * c] = v >>> 24; out[4 * c + 1] = v >>> 16; out[4 * c + 2] = v >>> 8; out[4 * c + 3] = v;
  }
  return out;
}

/** AES-128 of one 16-octet block under a 16-octet key (FIPS 197), ECB, no padding. */
export function aes128(key: Uint8Array, block: Uint8Array): Uint8Array {
  if (key.length !== 16 || block.length !== 16) throw new ArgumentError('aes128 takes a 16-octet key and a 16-octet block');
  return encryptBlock(expandKey(key), block);
}

/** An AES-128 encryptor bound to one key (the key schedule made once). */
export function aes128Encryptor(key: Uint8Array): (block: Uint8Array) => Uint8Array {
  if (key.length !== 16) throw new ArgumentError('aes128Encryptor takes a 16-octet key');
  const w = expandKey(key);
  return block => {
    if (block.length !== 16) throw new ArgumentError('aes128 encrypts 16-octet blocks');
    return encryptBlock(w, block);
  };
}

/** AES-CMAC (RFC 4493, 2.4) of `message` under `key`: the 16-octet tag. */
export function aesCmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new ArgumentError('aesCmac takes a 16-octet key');
  const w = expandKey(key);
  const k1 = dbl(encryptBlock(w, new Uint8Array(16)));
  const n = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const last = new Uint8Array(16);
  last.set(message.subarray((n - 1) * 16));
  if (complete) for (let i = 0; i < 16; i++) last[i]! ^= k1[i]!;
  else {
    last[message.length - (n - 1) * 16] = 0x80;
    const k2 = dbl(k1);
    for (let i = 0; i < 16; i++) last[i]! ^= k2[i]!;
  }
  let x: Uint8Array = new Uint8Array(16);
  const y = new Uint8Array(16);
  for (let b = 0; b < n; b++) {
    const m = b === n - 1 ? last : message.subarray(b * 16, b * 16 + 16);
    for (let i = 0; i < 16; i++) y[i] = x[i]! ^ m[i]!;
    x = encryptBlock(w, y);
  }
  return x;
}

// ---------------------------------------------------------------------------------------------------
// Random octets: Web Crypto's CSPRNG (getRandomValues fills at most 65 536 octets per call).

const MAX_RANDOM_CHUNK = 65_536;

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += MAX_RANDOM_CHUNK) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + MAX_RANDOM_CHUNK)));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// P-256 (FIPS 186-4, D.1.2.3; SEC 2, 2.4.2): y^2 = x^3 - 3x + b over GF(p), cofactor 1.

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n;
const GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n;

const mod = (a: bigint): bigint => { const r = a % P; return r < 0n ? r + P : r; };

function inv(a: bigint): bigint {
  // Fermat: a^(p-2) mod p.
  let result = 1n, base = mod(a), e = P - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % P;
    base = (base * base) % P;
    e >>= 1n;
  }
  return result;
}

/** A point in Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the point at infinity. */
interface Jac { x: bigint; y: bigint; z: bigint }
const INFINITY: Jac = { x: 1n, y: 1n, z: 0n };

function double(p: Jac): Jac {
  if (p.z === 0n || p.y === 0n) return INFINITY;
  // a = -3: M = 3(X - Z²)(X + Z²).
  const zz = (p.z * p.z) % P;
  const m = mod(3n * mod(p.x - zz) * mod(p.x + zz));
  const yy = (p.y * p.y) % P;
  const s = mod(4n * p.x * yy);
  const x = mod(m * m - 2n * s);
  const y = mod(m * (s - x) - 8n * yy * yy);
  const z = mod(2n * p.y * p.z);
  return { x, y, z };
}

function add(p: Jac, q: Jac): Jac {
  if (p.z === 0n) return q;
  if (q.z === 0n) return p;
  const z1z1 = (p.z * p.z) % P, z2z2 = (q.z * q.z) % P;
  const u1 = (p.x * z2z2) % P, u2 = (q.x * z1z1) % P;
  const s1 = (p.y * q.z * z2z2) % P, s2 = (q.y * p.z * z1z1) % P;
  if (u1 === u2) return s1 === s2 ? double(p) : INFINITY;
  const h = mod(u2 - u1), r = mod(s2 - s1);
  const hh = (h * h) % P, hhh = (h * hh) % P;
  const v = (u1 * hh) % P;
  const x = mod(r * r - hhh - 2n * v);
  const y = mod(r * (v - x) - s1 * hhh);
  const z = (p.z * q.z * h) % P;
  return { x, y, z };
}

/** k·Q by a Montgomery ladder (one add and one double per bit of the 256-bit scalar). */
function multiply(k: bigint, qx: bigint, qy: bigint): { x: bigint; y: bigint } | undefined {
  let r0 = INFINITY;
  let r1: Jac = { x: qx, y: qy, z: 1n };
  for (let i = 255; i >= 0; i--) {
    if ((k >> BigInt(i)) & 1n) { r0 = add(r0, r1); r1 = double(r1); } else { r1 = add(r0, r1); r0 = double(r0); }
  }
  if (r0.z === 0n) return undefined;
  const zi = inv(r0.z), zi2 = (zi * zi) % P;
  return { x: (r0.x * zi2) % P, y: (r0.y * zi2 * zi) % P };
}

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function toBytes(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

/** True when (x, y) is a point of P-256 (coordinates below p, on the curve); see ../crypto.ts. */
export function p256IsValidPublicKey(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== 32 || y.length !== 32) return false;
  const X = toBig(x), Y = toBig(y);
  if (X >= P || Y >= P) return false;
  return mod(Y * Y) === mod(X * X % P * X - 3n * X + B);
}

/** The key pair of a given private scalar (1 ≤ d < n). Throws ArgumentError otherwise. */
export function p256FromPrivateKey(privateKey: Uint8Array): P256KeyPair {
  const d = toBig(privateKey);
  if (privateKey.length !== 32 || d === 0n || d >= N) throw new ArgumentError('a P-256 private key is 32 octets, 1 ≤ d < n');
  const q = multiply(d, GX, GY)!;
  return { privateKey: Uint8Array.from(privateKey), x: toBytes(q.x), y: toBytes(q.y) };
}

/** A fresh P-256 key pair: d uniform in [1, n - 1] by rejection from the CSPRNG's octets. */
export function p256Generate(): P256KeyPair {
  for (;;) {
    const d = randomBytes(32);
    const v = toBig(d);
    if (v !== 0n && v < N) return p256FromPrivateKey(d);
  }
}

/** ECDH on P-256: the x coordinate of d·(x, y), 32 octets MSO first; the peer's point is checked first. */
export function p256Ecdh(privateKey: Uint8Array, x: Uint8Array, y: Uint8Array): Uint8Array {
  if (!p256IsValidPublicKey(x, y)) throw new ArgumentError('the public key is not a point of P-256');
  const d = toBig(privateKey);
  if (privateKey.length !== 32 || d === 0n || d >= N) throw new ArgumentError('a P-256 private key is 32 octets, 1 ≤ d < n');
  const s = multiply(d, toBig(x), toBig(y));
  if (!s) throw new ArgumentError('the shared point is the point at infinity');
  return toBytes(s.x);
}
