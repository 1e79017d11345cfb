/**
 * The cryptographic primitives the Security Manager needs (Core Vol 3, Part H, 2.2), on `node:crypto`:
 * AES-128 block encryption, AES-CMAC (RFC 4493), P-256 key generation, ECDH and public-key validation,
 * and random octets. This is the only module of blewire that imports `node:crypto` for them; a browser
 * or Deno port replaces this file and nothing above it.
 *
 * Every value is a Uint8Array in the order the algorithm's own standard prints it (FIPS 197, RFC 4493,
 * SEC 1): most significant octet first. The Bluetooth wire order (least significant octet first) is the
 * protocol layer's business, not this one's.
 */
import { ArgumentError } from '../errors.js';
import { cmacDouble as dbl } from './cmac-subkey.js';
import type * as NodeCrypto from 'node:crypto';

/**
 * node:crypto, loaded on first use (issue 14, the import's footprint): Node's crypto module and the
 * OpenSSL bindings behind it added 1.9 MiB to the RSS of a process that imports it, and an application
 * that only scans or reads GATT never calls these. `process.getBuiltinModule` (Node 20.16+) loads a
 * built-in synchronously, so the functions below keep their synchronous signatures.
 */
let nodeCrypto: typeof NodeCrypto | undefined;
const crypto = (): typeof NodeCrypto => (nodeCrypto ??= process.getBuiltinModule('node:crypto'));

/** AES-128 of one 16-octet block under a 16-octet key (FIPS 197), ECB, no padding. */
export function aes128(key: Uint8Array, block: Uint8Array): Uint8Array {
  if (key.length !== 16 || block.length !== 16) throw new ArgumentError('aes128 takes a 16-octet key and a 16-octet block');
  const c = crypto().createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  const out = c.update(block);
  c.final();
  return new Uint8Array(out.buffer, out.byteOffset, 16);
}

/**
 * An AES-128 encryptor bound to one key: each call encrypts one 16-octet block (ECB, no padding). The
 * cipher context is built once and reused (an ECB context keeps no state between blocks), so a caller
 * that encrypts many blocks under the same key (RPA resolution: one block per address per IRK) does
 * not pay the key schedule and context set-up per block.
 */
export function aes128Encryptor(key: Uint8Array): (block: Uint8Array) => Uint8Array {
  if (key.length !== 16) throw new ArgumentError('aes128Encryptor takes a 16-octet key');
  const c = crypto().createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return block => {
    if (block.length !== 16) throw new ArgumentError('aes128 encrypts 16-octet blocks');
    const out = c.update(block);
    return new Uint8Array(out.buffer, out.byteOffset, 16);
  };
}

const ZERO16 = new Uint8Array(16);

/**
 * AES-CMAC (RFC 4493) of `message` under `key`: the 16-octet tag. The message blocks run through one
 * AES-128-CBC pass with a zero IV whose last output block is the tag, after the last block is XORed
 * with K1 (complete) or padded and XORed with K2 (incomplete or empty), RFC 4493 2.4.
 */
export function aesCmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new ArgumentError('aesCmac takes a 16-octet key');
  const l = aes128(key, ZERO16);
  const k1 = dbl(l);
  const n = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const m = new Uint8Array(n * 16);
  m.set(message);
  const last = (n - 1) * 16;
  if (complete) {
    for (let i = 0; i < 16; i++) m[last + i]! ^= k1[i]!;
  } else {
    m[message.length] = 0x80;
    const k2 = dbl(k1);
    for (let i = 0; i < 16; i++) m[last + i]! ^= k2[i]!;
  }
  const c = crypto().createCipheriv('aes-128-cbc', key, ZERO16);
  c.setAutoPadding(false);
  const out = c.update(m);
  c.final();
  return new Uint8Array(out.buffer, out.byteOffset + last, 16).slice();
}

/** `n` octets from the operating system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  const b = crypto().randomBytes(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** A P-256 key pair: the private scalar and the public point's coordinates, 32 octets each, MSO first. */
export interface P256KeyPair {
  readonly privateKey: Uint8Array;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

// P-256 domain parameters (FIPS 186-4, D.1.2.3; SEC 2, 2.4.2): y^2 = x^3 - 3x + b over GF(p).
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/**
 * True when (x, y) is a point of P-256 (both coordinates below p and y^2 = x^3 - 3x + b). P-256 has
 * cofactor 1, so every such point is in the prime-order group; the point at infinity has no affine
 * encoding and is rejected. This is the check whose absence CVE-2018-5383 (invalid-curve attack on
 * LE Secure Connections) exploits.
 */
export function p256IsValidPublicKey(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== 32 || y.length !== 32) return false;
  const X = toBig(x), Y = toBig(y);
  if (X >= P || Y >= P) return false;
  const lhs = (Y * Y) % P;
  const rhs = (((X * X % P) * X) - 3n * X + B) % P;
  return lhs === ((rhs % P) + P) % P;
}

function fromEcdh(privateKey: Uint8Array): P256KeyPair {
  const e = crypto().createECDH('prime256v1');
  e.setPrivateKey(privateKey);
  const pub = e.getPublicKey(); // 0x04 || X || Y
  return {
    privateKey: Uint8Array.from(privateKey),
    x: new Uint8Array(pub.subarray(1, 33)),
    y: new Uint8Array(pub.subarray(33, 65)),
  };
}

/** A fresh P-256 key pair from the OS CSPRNG. */
export function p256Generate(): P256KeyPair {
  const e = crypto().createECDH('prime256v1');
  e.generateKeys();
  const priv = e.getPrivateKey();
  const d = new Uint8Array(32);
  d.set(priv, 32 - priv.length); // OpenSSL drops leading zero octets
  return fromEcdh(d);
}

/** The key pair of a given private scalar (1 ≤ d < n). Throws ArgumentError otherwise. */
export function p256FromPrivateKey(privateKey: Uint8Array): P256KeyPair {
  const d = toBig(privateKey);
  if (privateKey.length !== 32 || d === 0n || d >= N) throw new ArgumentError('a P-256 private key is 32 octets, 1 ≤ d < n');
  return fromEcdh(privateKey);
}

/**
 * ECDH on P-256: the x coordinate of d·(x, y), 32 octets MSO first. Throws ArgumentError when the peer's
 * point is not on the curve (checked here before OpenSSL sees it, so the defence does not depend on
 * the library version).
 */
export function p256Ecdh(privateKey: Uint8Array, x: Uint8Array, y: Uint8Array): Uint8Array {
  if (!p256IsValidPublicKey(x, y)) throw new ArgumentError('the public key is not a point of P-256');
  const e = crypto().createECDH('prime256v1');
  e.setPrivateKey(privateKey);
  const pub = new Uint8Array(65);
  pub[0] = 0x04;
  pub.set(x, 1);
  pub.set(y, 33);
  const s = e.computeSecret(pub);
  const out = new Uint8Array(32);
  out.set(s, 32 - s.length);
  return out;
}
