/**
 * AES-128-CCM decryption with a 4-byte MIC (RFC 3610; BTHome's encrypted advertisements), through
 * node:crypto. The only place in the gateway's decoders that touches a Node built-in.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** Plaintext, or undefined when the MIC does not verify (wrong key, tampered or corrupted data). */
export function ccmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, mic: Uint8Array): Uint8Array | undefined {
  if (key.length !== 16 || nonce.length !== 13 || mic.length !== 4) return undefined;
  try {
    const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: 4 });
    d.setAuthTag(mic);
    d.setAAD(new Uint8Array(0), { plaintextLength: ciphertext.length });
    const out = d.update(ciphertext);
    d.final();
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch {
    return undefined;
  }
}

/** Ciphertext and MIC (tests and the simulated sensors use it to build encrypted advertisements). */
export function ccmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): { ciphertext: Uint8Array; mic: Uint8Array } {
  const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: 4 });
  c.setAAD(new Uint8Array(0), { plaintextLength: plaintext.length });
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { ciphertext: new Uint8Array(ct), mic: new Uint8Array(c.getAuthTag()) };
}
