// Pins the table AES-128 the RPA resolver uses (platform/aes-table.ts) against FIPS 197's own example
// and against node:crypto (the reference implementation the rest of blewire uses), and its ah step
// against the spec's ah sample (Core Vol 3, Part H, Appendix D.7).
import { createCipheriv, randomBytes } from 'node:crypto';
import { expect, test } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import { aes128ExpandKey, aes128EncryptBlock, aes128Low24OfPrand } from '../../../src/platform/aes-table.js';
import { ArgumentError } from '../../../src/errors.js';

const nodeAes = (key: Uint8Array, block: Uint8Array): Uint8Array => {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(block));
};

test('FIPS 197 Appendix C.1: key 000102..0f, plaintext 00112233..ff', () => {
  const rk = aes128ExpandKey(fromHex('000102030405060708090a0b0c0d0e0f'));
  expect(toHex(aes128EncryptBlock(rk, fromHex('00112233445566778899aabbccddeeff')))).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
});

test('FIPS 197 Appendix A.1: the last round key of 2b7e1516..', () => {
  const rk = aes128ExpandKey(fromHex('2b7e151628aed2a6abf7158809cf4f3c'));
  expect([...rk.subarray(40)].map(w => w.toString(16).padStart(8, '0')).join('')).toBe('d014f9a8c9ee2589e13f0cc8b6630ca6');
});

test('the same ciphertext as node:crypto for random keys and blocks; the ah step for random prands', () => {
  for (let i = 0; i < 300; i++) {
    const key = new Uint8Array(randomBytes(16));
    const block = new Uint8Array(randomBytes(16));
    const rk = aes128ExpandKey(key);
    expect(toHex(aes128EncryptBlock(rk, block))).toBe(toHex(nodeAes(key, block)));
    const prand = (block[0]! << 16) | (block[1]! << 8) | block[2]!;
    const rp = new Uint8Array(16);
    rp.set(block.subarray(0, 3), 13);
    const ref = nodeAes(key, rp);
    expect(aes128Low24OfPrand(rk, prand)).toBe((ref[13]! << 16) | (ref[14]! << 8) | ref[15]!);
  }
});

test('ah sample (Vol 3, Part H, Appendix D.7): IRK ec0234a3.., prand 708194 gives hash 0dfbaa', () => {
  expect(aes128Low24OfPrand(aes128ExpandKey(fromHex('ec0234a357c8ad05341010a60a397d9b')), 0x708194)).toBe(0x0dfbaa);
});

test('malformed arguments are typed errors', () => {
  expect(() => aes128ExpandKey(new Uint8Array(15))).toThrow(ArgumentError);
  expect(() => aes128EncryptBlock(new Uint32Array(44), new Uint8Array(8))).toThrow(ArgumentError);
});
