/**
 * Data signing (Core Vol 3, Part C, 10.4; the signing algorithm Vol 3, Part H, 2.4.5): the 12-octet
 * authentication signature of an ATT Signed Write Command (Vol 3, Part F, 3.4.5.4) and its check.
 *
 * The signature is SignCounter (32 bits, little-endian) followed by the MAC, the 64 most significant bits
 * of AES-CMAC(CSRK, m ‖ SignCounter) where m is the PDU as sent (opcode, handle, value), sent least
 * significant octet first. Keys and messages here are as they travel (LE): the spec's CMAC takes both
 * most significant octet first, so they are reversed around the call.
 */
import { concat } from '../bytes/hex.js';
import { aesCmac } from '../platform/crypto.js';

/** Octets of the authentication signature (Vol 3, Part F, 3.4.5.4). */
export const ATT_SIGNATURE_OCTETS = 12;

/** The ATT authentication signature of `header ‖ value` with this CSRK and SignCounter (wire order). */
export function attSignature(csrk: Uint8Array, header: Uint8Array, value: Uint8Array, signCounter: number): Uint8Array {
  const counter = Uint8Array.of(signCounter & 0xff, (signCounter >>> 8) & 0xff, (signCounter >>> 16) & 0xff, (signCounter >>> 24) & 0xff);
  const m = concat([header, value, counter]);
  const mac = aesCmac(Uint8Array.from(csrk).reverse(), Uint8Array.from(m).reverse());
  const macLe = mac.subarray(0, 8).slice().reverse();
  return concat([counter, macLe]);
}

/** The SignCounter a signature carries (its first four octets, little-endian). */
export function signatureCounter(signature: Uint8Array): number {
  if (signature.length !== ATT_SIGNATURE_OCTETS) return -1;
  return (signature[0]! | (signature[1]! << 8) | (signature[2]! << 16) | (signature[3]! << 24)) >>> 0;
}

/**
 * Whether `signature` is what the holder of `csrk` sends for `header ‖ value` (Vol 3, Part C, 10.4.2):
 * the MAC recomputed for the counter it carries, compared in time independent of where they differ.
 * The counter's freshness is the caller's to check.
 */
export function verifyAttSignature(csrk: Uint8Array, header: Uint8Array, value: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ATT_SIGNATURE_OCTETS || csrk.length !== 16) return false;
  const want = attSignature(csrk, header, value, signatureCounter(signature));
  let diff = 0;
  for (let i = 0; i < ATT_SIGNATURE_OCTETS; i++) diff |= want[i]! ^ signature[i]!;
  return diff === 0;
}
