/**
 * The AES-CMAC subkey doubling (RFC 4493, 2.3): shift a 16-octet block left one bit and XOR Rb (0x87)
 * into the last octet when the top bit fell off. Pure arithmetic, shared by the Node seam (crypto.ts)
 * and the browser seam (browser/crypto.ts).
 */
export function cmacDouble(v: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = ((v[i]! << 1) | (i < 15 ? v[i + 1]! >> 7 : 0)) & 0xff;
  if (v[0]! & 0x80) out[15]! ^= 0x87;
  return out;
}
