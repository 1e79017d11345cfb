/**
 * crypto for a browser build. Random octets come from Web Crypto (getRandomValues). The stack calls
 * AES-128, AES-CMAC and P-256 synchronously inside the SMP state machine and the address resolver,
 * and Web Crypto offers only promises, so those throw a BrowserError that says so: in a browser
 * build, pairing, encryption from a bond and resolving private addresses are not available (connect,
 * discover, read, write and notify are). Same exports as ../crypto.ts.
 */
import { BrowserError } from '../../errors.js';
import type { P256KeyPair } from '../crypto.js';

export type { P256KeyPair };

function unavailable(what: string): never {
  throw new BrowserError(`${what} is not available in blewire's browser build: the Security Manager needs ` +
    'synchronous AES-128 and P-256, which Web Crypto does not offer. Pair from Node (blewire/web-bluetooth).');
}

/** Web Crypto's getRandomValues fills at most 65 536 octets per call. */
const MAX_RANDOM_CHUNK = 65_536;

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += MAX_RANDOM_CHUNK) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + MAX_RANDOM_CHUNK)));
  return out;
}
export function aes128(_key: Uint8Array, _block: Uint8Array): Uint8Array { return unavailable('AES-128'); }
export function aes128Encryptor(_key: Uint8Array): (block: Uint8Array) => Uint8Array { return unavailable('AES-128'); }
export function aesCmac(_key: Uint8Array, _message: Uint8Array): Uint8Array { return unavailable('AES-CMAC'); }
export function p256IsValidPublicKey(_x: Uint8Array, _y: Uint8Array): boolean { return unavailable('P-256'); }
export function p256Generate(): P256KeyPair { return unavailable('P-256'); }
export function p256FromPrivateKey(_privateKey: Uint8Array): P256KeyPair { return unavailable('P-256'); }
export function p256Ecdh(_privateKey: Uint8Array, _x: Uint8Array, _y: Uint8Array): Uint8Array { return unavailable('P-256 ECDH'); }
