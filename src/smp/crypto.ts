/**
 * The Security Manager's cryptographic toolbox (Core Vol 3, Part H, 2.2): the security function e,
 * the legacy functions c1, s1 and ah, and the LE Secure Connections functions f4, f5, f6, g2, h6, h7,
 * plus AES-CMAC (RFC 4493) that they are built on.
 *
 * Each function carries the spec's name and takes the spec's parameters in the spec's order. Every
 * value is a Uint8Array in the order the spec prints its sample data (Appendix D; 2.2.3, 2.2.4): most
 * significant octet first. SMP PDUs carry the same values least significant octet first (3.1), so a
 * value taken from a PDU is reversed before it goes in here (see `reversed`). Small integers (iat,
 * rat, Z) are numbers; g2 returns its 32-bit value as a number.
 *
 * The primitives (AES-128, AES-CMAC) come from the platform seam, src/platform/crypto.ts.
 */
import { ArgumentError } from '../errors.js';
import { aes128, aesCmac as cmac } from '../platform/crypto.js';
import { concat, fromHex as hex } from '../bytes/hex.js';

function need(name: string, v: Uint8Array, n: number): void {
  if (!(v instanceof Uint8Array) || v.length !== n) throw new ArgumentError(`${name} must be ${n} octets (got ${v?.length ?? typeof v})`);
}

/** A reversed copy: converts between SMP wire order (LSO first) and the spec's printed order (MSO first). */
export function reversed(v: Uint8Array): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[v.length - 1 - i]!;
  return out;
}

function xor16(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

const cat = (...parts: Uint8Array[]): Uint8Array => concat(parts);

/** Security function e (2.2.1): AES-128 of plaintextData under key; the same as HCI LE Encrypt. */
export function e(key: Uint8Array, plaintextData: Uint8Array): Uint8Array {
  need('key', key, 16);
  need('plaintextData', plaintextData, 16);
  return aes128(key, plaintextData);
}

/** AES-CMAC_k(m) (2.2.5; RFC 4493): the 128-bit MAC of m under k. */
export function aesCmac(k: Uint8Array, m: Uint8Array): Uint8Array {
  need('k', k, 16);
  return cmac(k, m);
}

/**
 * Random address hash function ah (2.2.2): ah(k, r) = e(k, r') mod 2^24 with r' = padding || r.
 * `k` is an IRK (16 octets), `r` the 24-bit prand (3 octets); the result is the 24-bit hash.
 */
export function ah(k: Uint8Array, r: Uint8Array): Uint8Array {
  need('k', k, 16);
  need('r', r, 3);
  const rp = new Uint8Array(16);
  rp.set(r, 13);
  return e(k, rp).slice(13);
}

/**
 * Confirm value generation function c1 for LE legacy pairing (2.2.3):
 * c1 = e(k, e(k, r XOR p1) XOR p2), p1 = pres || preq || rat' || iat', p2 = padding || ia || ra.
 * `preq` and `pres` are the 7-octet Pairing Request / Response commands (code included), `iat`/`rat`
 * the address types (0 public, 1 random), `ia`/`ra` the 6-octet addresses.
 */
export function c1(
  k: Uint8Array, r: Uint8Array, preq: Uint8Array, pres: Uint8Array, iat: number, rat: number, ia: Uint8Array, ra: Uint8Array,
): Uint8Array {
  need('k', k, 16);
  need('r', r, 16);
  need('preq', preq, 7);
  need('pres', pres, 7);
  need('ia', ia, 6);
  need('ra', ra, 6);
  const p1 = cat(pres, preq, Uint8Array.of(rat & 1, iat & 1));
  const p2 = cat(new Uint8Array(4), ia, ra);
  return e(k, xor16(e(k, xor16(r, p1)), p2));
}

/**
 * Key generation function s1 for LE legacy pairing (2.2.4): s1(k, r1, r2) = e(k, r') with r' the
 * least significant 64 bits of r1 followed by the least significant 64 bits of r2. Gives the STK
 * from TK, Srand (r1) and Mrand (r2).
 */
export function s1(k: Uint8Array, r1: Uint8Array, r2: Uint8Array): Uint8Array {
  need('k', k, 16);
  need('r1', r1, 16);
  need('r2', r2, 16);
  return e(k, cat(r1.subarray(8), r2.subarray(8)));
}

/**
 * LE Secure Connections confirm value generation function f4 (2.2.6): f4(U, V, X, Z) =
 * AES-CMAC_X(U || V || Z). U and V are 256-bit public-key x coordinates, X a 128-bit nonce, Z 8 bits.
 */
export function f4(U: Uint8Array, V: Uint8Array, X: Uint8Array, Z: number): Uint8Array {
  need('U', U, 32);
  need('V', V, 32);
  need('X', X, 16);
  return aesCmac(X, cat(U, V, Uint8Array.of(Z & 0xff)));
}

/** SALT of f5 (2.2.7). */
const F5_SALT = Uint8Array.from([0x6c, 0x88, 0x83, 0x91, 0xaa, 0xf5, 0xa5, 0x38, 0x60, 0x37, 0x0b, 0xdb, 0x5a, 0x60, 0x83, 0xbe]);
/** keyID "btle" of f5 (2.2.7). */
const F5_KEY_ID = Uint8Array.from([0x62, 0x74, 0x6c, 0x65]);

/**
 * LE Secure Connections key generation function f5 (2.2.7): from the DHKey W, the nonces N1, N2 and
 * the 56-bit device addresses A1, A2 (address type octet, then the 48-bit address), the MacKey (the
 * most significant 128 bits of the spec's 256-bit result) and the LTK (the least significant 128).
 */
export function f5(W: Uint8Array, N1: Uint8Array, N2: Uint8Array, A1: Uint8Array, A2: Uint8Array): { macKey: Uint8Array; ltk: Uint8Array } {
  need('W', W, 32);
  need('N1', N1, 16);
  need('N2', N2, 16);
  need('A1', A1, 7);
  need('A2', A2, 7);
  const T = aesCmac(F5_SALT, W);
  const body = (counter: number) => cat(Uint8Array.of(counter), F5_KEY_ID, N1, N2, A1, A2, Uint8Array.of(0x01, 0x00));
  return { macKey: aesCmac(T, body(0)), ltk: aesCmac(T, body(1)) };
}

/**
 * LE Secure Connections check value generation function f6 (2.2.8): f6(W, N1, N2, R, IOcap, A1, A2) =
 * AES-CMAC_W(N1 || N2 || R || IOcap || A1 || A2). IOcap is 3 octets: AuthReq, OOB data flag, IO
 * capability (most significant first).
 */
export function f6(
  W: Uint8Array, N1: Uint8Array, N2: Uint8Array, R: Uint8Array, IOcap: Uint8Array, A1: Uint8Array, A2: Uint8Array,
): Uint8Array {
  need('W', W, 16);
  need('N1', N1, 16);
  need('N2', N2, 16);
  need('R', R, 16);
  need('IOcap', IOcap, 3);
  need('A1', A1, 7);
  need('A2', A2, 7);
  return aesCmac(W, cat(N1, N2, R, IOcap, A1, A2));
}

/**
 * LE Secure Connections numeric comparison value generation function g2 (2.2.9):
 * g2(U, V, X, Y) = AES-CMAC_X(U || V || Y) mod 2^32. The six digits shown to the user are the result
 * mod 10^6 (2.3.5.6.2).
 */
export function g2(U: Uint8Array, V: Uint8Array, X: Uint8Array, Y: Uint8Array): number {
  need('U', U, 32);
  need('V', V, 32);
  need('X', X, 16);
  need('Y', Y, 16);
  const m = aesCmac(X, cat(U, V, Y));
  return ((m[12]! << 24) | (m[13]! << 16) | (m[14]! << 8) | m[15]!) >>> 0;
}

/** Link key conversion function h6 (2.2.10): h6(W, keyID) = AES-CMAC_W(keyID), keyID 4 octets. */
export function h6(W: Uint8Array, keyID: Uint8Array): Uint8Array {
  need('W', W, 16);
  need('keyID', keyID, 4);
  return aesCmac(W, keyID);
}

/** Link key conversion function h7 (2.2.11): h7(SALT, W) = AES-CMAC_SALT(W). */
export function h7(SALT: Uint8Array, W: Uint8Array): Uint8Array {
  need('SALT', SALT, 16);
  need('W', W, 16);
  return aesCmac(SALT, W);
}

const ascii4 = (s: string) => Uint8Array.from(s, c => c.charCodeAt(0));
/** keyID / SALT values of the cross-transport derivations (2.4.2.4, 2.4.2.5). */
export const KEY_ID_TMP1 = ascii4('tmp1');
export const KEY_ID_LEBR = ascii4('lebr');
export const KEY_ID_TMP2 = ascii4('tmp2');
export const KEY_ID_BRLE = ascii4('brle');
const salt = (id: Uint8Array) => cat(new Uint8Array(12), id);

/**
 * BR/EDR link key from an LE Secure Connections LTK (2.4.2.4): ILK = h7(SALT "tmp1", LTK) when both
 * sides set CT2, else h6(LTK, "tmp1"); link key = h6(ILK, "lebr").
 */
export function linkKeyFromLtk(ltk: Uint8Array, ct2: boolean): Uint8Array {
  const ilk = ct2 ? h7(salt(KEY_ID_TMP1), ltk) : h6(ltk, KEY_ID_TMP1);
  return h6(ilk, KEY_ID_LEBR);
}

/**
 * LE LTK from a BR/EDR link key (2.4.2.5): ILK = h7(SALT "tmp2", link key) with CT2, else
 * h6(link key, "tmp2"); LTK = h6(ILK, "brle").
 */
export function ltkFromLinkKey(linkKey: Uint8Array, ct2: boolean): Uint8Array {
  const ilk = ct2 ? h7(salt(KEY_ID_TMP2), linkKey) : h6(linkKey, KEY_ID_TMP2);
  return h6(ilk, KEY_ID_BRLE);
}

export { p256IsValidPublicKey, p256Ecdh, p256Generate, p256FromPrivateKey, type P256KeyPair } from '../platform/crypto.js';

/**
 * The LE Secure Connections debug key pair (2.3.5.6.1), MSO first. A device in debug mode uses it so an
 * air sniffer can decrypt; anyone can, so pairing refuses a peer that presents it unless allowed.
 */
export const SC_DEBUG_PRIVATE_KEY = hex('3f49f6d4a3c55f3874c9b3e3d2103f504aff607beb40b7995899b8a6cd3c1abd');
export const SC_DEBUG_PUBLIC_KEY_X = hex('20b003d2f297be2c5e2c83a7e9f9a5b9eff49111acf4fddbcc0301480e359de6');
export const SC_DEBUG_PUBLIC_KEY_Y = hex('dc809c49652aeb6d63329abf5a52155c766345c28fed3024741c8ed01589d28b');

