import { createCipheriv } from 'node:crypto';
import { ArgumentError } from '../errors.js';

/**
 * AES-CMAC (RFC 4493) over AES-128, the MAC behind the GATT Database Hash (Core Vol 3, Part G,
 * 7.3.1) and ATT signed writes (Vol 3, Part H, 2.4.5). Byte order is the RFC's: key and message as
 * given, the 16-octet MAC as produced; callers place it on the wire as their spec says.
 */
export function aesCmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new ArgumentError(`AES-128 key must be 16 octets, got ${key.length}`);
  const cipher = createCipheriv('aes-128-ecb', key, null);
  cipher.setAutoPadding(false);
  const enc = (block: Uint8Array): Uint8Array => new Uint8Array(cipher.update(block));
  const l = enc(new Uint8Array(16));
  const k1 = doubleBlock(l);
  const k2 = doubleBlock(k1);
  const n = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  let x: Uint8Array = new Uint8Array(16);
  for (let i = 0; i < n; i++) {
    const block = new Uint8Array(16);
    const part = message.subarray(i * 16, i * 16 + 16);
    block.set(part);
    if (i === n - 1) {
      if (complete) xorInto(block, k1);
      else {
        block[part.length] = 0x80; // RFC 4493 padding: 1 then zeros
        xorInto(block, k2);
      }
    }
    xorInto(block, x);
    x = enc(block);
  }
  return x;
}

/** Subkey generation step: shift left one bit, xor Rb = 0x87 when the top bit fell off (RFC 4493, 2.3). */
function doubleBlock(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  let carry = 0;
  for (let i = 15; i >= 0; i--) {
    out[i] = ((b[i]! << 1) | carry) & 0xff;
    carry = b[i]! >> 7;
  }
  if (b[0]! & 0x80) out[15] ^= 0x87;
  return out;
}

function xorInto(a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < 16; i++) a[i] ^= b[i]!;
}
