// The SMP crypto toolbox against the specification's own sample data (Core Vol 3, Part H, 2.2.3,
// 2.2.4 and Appendix D; Vol 6, Part C, 1 for LE Encrypt), AES-CMAC against RFC 4493 section 4, and
// P-256 against RFC 5903 section 8.1 and the spec's debug key pair / DHKey sample. Every hex string is
// copied as the spec prints it (most significant octet first), which is the order the API takes.
import { describe, expect, test } from 'vitest';
import { ArgumentError } from '../../../src/errors.js';
import { fromHex, toHex } from '../../../src/bytes/hex.js';
import {
  aesCmac as platformCmac, p256Ecdh, p256FromPrivateKey, p256Generate, p256IsValidPublicKey,
} from '../../../src/platform/crypto.js';
import {
  SC_DEBUG_PRIVATE_KEY, SC_DEBUG_PUBLIC_KEY_X, SC_DEBUG_PUBLIC_KEY_Y, aesCmac, ah, c1, e, f4, f5, f6, g2, h6, h7,
  linkKeyFromLtk, ltkFromLinkKey, reversed, s1,
} from '../../../src/smp/crypto.js';
import { smpCrypto } from '../../../src/index.js';
import { leEncrypt } from '../../../src/sim/controller.js';

const h = fromHex;
const hx = (v: Uint8Array) => toHex(v);
const norm = (s: string) => s.replace(/\s/g, '').toLowerCase();

describe('security function e and LE Encrypt (Vol 6, Part C, 1)', () => {
  test('the spec sample: key, plaintext, encrypted data', () => {
    expect(hx(e(h('4C68384139F574D836BCF34E9DFB01BF'), h('0213243546576879acbdcedfe0f10213'))))
      .toBe('99ad1b5226a37e3e058e3b8e27c2c666');
  });
  test('the HCI LE Encrypt parameters (least significant octet first) agree through reversal', () => {
    const pars = h('bf 01 fb 9d 4e f3 bc 36 d8 74 f5 39 41 38 68 4c 13 02 f1 e0 df ce bd ac 79 68 57 46 35 24 13 02');
    const out = e(reversed(pars.subarray(0, 16)), reversed(pars.subarray(16)));
    expect(hx(reversed(out))).toBe(norm('66 c6 c2 27 8e 3b 8e 05 3e 7e a3 26 52 1b ad 99'));
    // The simulated controller's LE Encrypt answers the same.
    expect(hx(leEncrypt(pars.subarray(0, 16), pars.subarray(16)))).toBe(hx(reversed(out)));
  });
});

describe('AES-CMAC (RFC 4493, section 4)', () => {
  const K = h('2b7e1516 28aed2a6 abf71588 09cf4f3c');
  const M = h('6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51' +
    '30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710');
  test.each([
    [0, 'bb1d6929 e9593728 7fa37d12 9b756746'],
    [16, '070a16b4 6b4d4144 f79bdd9d d04a287c'],
    [40, 'dfa66747 de9ae630 30ca3261 1497c827'],
    [64, '51f0bebf 7e3b9d92 fc497417 79363cfe'],
  ])('example with a %i-octet message', (len, mac) => {
    expect(hx(aesCmac(K, M.subarray(0, len)))).toBe(norm(mac));
    expect(hx(platformCmac(K, M.subarray(0, len)))).toBe(norm(mac));
  });
});

describe('legacy pairing functions', () => {
  test('c1 (2.2.3 example)', () => {
    const out = c1(new Uint8Array(16), h('5783D52156AD6F0E6388274EC6702EE0'), h('07071000000101'), h('05000800000302'),
      1, 0, h('A1A2A3A4A5A6'), h('B1B2B3B4B5B6'));
    expect(hx(out)).toBe('1e1e3fef878988ead2a74dc5bef13b86');
  });
  test('s1 (2.2.4 example)', () => {
    const out = s1(new Uint8Array(16), h('000F0E0D0C0B0A091122334455667788'), h('010203040506070899AABBCCDDEEFF00'));
    expect(hx(out)).toBe('9a1fe1f0e8b0f49b5b4216ae796da062');
  });
  test('ah (D.7)', () => {
    expect(hx(ah(h('ec0234a3 57c8ad05 341010a6 0a397d9b'), h('708194')))).toBe('0dfbaa');
  });
});

describe('LE Secure Connections functions (Appendix D)', () => {
  const U = h('20b003d2 f297be2c 5e2c83a7 e9f9a5b9 eff49111 acf4fddb cc030148 0e359de6');
  const V = h('55188b3d 32f6bb9a 900afcfb eed4e72a 59cb9ac2 f19d7cfb 6b4fdd49 f47fc5fd');
  const N1 = h('d5cb8454 d177733e ffffb2ec 712baeab');
  const N2 = h('a6e8e7cc 25a75f6e 216583f7 ff3dc4cf');
  const W = h('ec0234a3 57c8ad05 341010a6 0a397d9b 99796b13 b4f866f1 868d34f3 73bfa698');
  const A1 = h('00561237 37bfce');
  const A2 = h('00a71370 2dcfc1');
  const MACKEY = h('2965f176 a1084a02 fd3f6a20 ce636e20');

  test('f4 (D.2)', () => {
    expect(hx(f4(U, V, N1, 0))).toBe(norm('f2c916f1 07a9bd1c f1eda1be a974872d'));
  });
  test('f5 (D.3): MacKey and LTK', () => {
    const { macKey, ltk } = f5(W, N1, N2, A1, A2);
    expect(hx(macKey)).toBe(hx(MACKEY));
    expect(hx(ltk)).toBe(norm('69867911 69d7cd23 980522b5 94750a38'));
  });
  test('f6 (D.4)', () => {
    expect(hx(f6(MACKEY, N1, N2, h('12a3343b b453bb54 08da42d2 0c2d0fc8'), h('010102'), A1, A2)))
      .toBe(norm('e3c47398 9cd0e8c5 d26c0b09 da958f61'));
  });
  test('g2 (D.5)', () => {
    expect(g2(U, V, N1, N2)).toBe(0x2f9ed5ba);
    expect(g2(U, V, N1, N2) % 1_000_000).toBe(0x2f9ed5ba % 1_000_000);
  });
  test('h6 (D.6)', () => {
    expect(hx(h6(h('ec0234a3 57c8ad05 341010a6 0a397d9b'), h('6c656272')))).toBe(norm('2d9ae102 e76dc91c e8d3a9e2 80b16399'));
  });
  test('h7 (D.8)', () => {
    expect(hx(h7(h('00000000 00000000 00000000 746D7031'), h('ec0234a3 57c8ad05 341010a6 0a397d9b'))))
      .toBe(norm('fb173597 c6a3c0ec d2998c2a 75a57011'));
  });
  test('LTK to link key, with and without CT2 (D.9, D.10)', () => {
    const ltk = h('368df9bc e3264b58 bd066c33 334fbf64');
    expect(hx(linkKeyFromLtk(ltk, false))).toBe(norm('bc1ca4ef 633fc1bd 0d8230af ee388fb0'));
    expect(hx(linkKeyFromLtk(ltk, true))).toBe(norm('287ad379 dca40253 0a39f1f4 3047b835'));
  });
  test('link key to LTK, with and without CT2 (D.11, D.12)', () => {
    const lk = h('05040302 01000908 07060504 03020100');
    expect(hx(ltkFromLinkKey(lk, false))).toBe(norm('a813fb72 f1a3dfa1 8a2c9a43 f10d0a30'));
    expect(hx(ltkFromLinkKey(lk, true))).toBe(norm('e85e09eb 5eccb3e2 69418a13 3211bc79'));
  });
  test('wrong lengths are refused, not truncated', () => {
    expect(() => f4(U.subarray(1), V, N1, 0)).toThrow(ArgumentError);
    expect(() => c1(new Uint8Array(16), N1, h('0707'), h('05000800000302'), 1, 0, h('A1A2A3A4A5A6'), h('B1B2B3B4B5B6')))
      .toThrow(/preq/);
  });
});

describe('P-256', () => {
  test('RFC 5903, 8.1: both public keys from their private keys and the shared secret both ways', () => {
    const i = p256FromPrivateKey(h('C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433'));
    const r = p256FromPrivateKey(h('C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53'));
    expect(hx(i.x)).toBe(norm('DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180'));
    expect(hx(i.y)).toBe(norm('5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3'));
    expect(hx(r.x)).toBe(norm('D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63'));
    expect(hx(r.y)).toBe(norm('56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB'));
    const z = norm('D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE');
    expect(hx(p256Ecdh(i.privateKey, r.x, r.y))).toBe(z);
    expect(hx(p256Ecdh(r.privateKey, i.x, i.y))).toBe(z);
  });
  test('the spec debug key pair (2.3.5.6.1) and the DHKey sample of Appendix D.1', () => {
    const a = p256FromPrivateKey(SC_DEBUG_PRIVATE_KEY);
    expect(hx(a.x)).toBe(hx(SC_DEBUG_PUBLIC_KEY_X));
    expect(hx(a.y)).toBe(hx(SC_DEBUG_PUBLIC_KEY_Y));
    const b = p256FromPrivateKey(h('55188b3d 32f6bb9a 900afcfb eed4e72a 59cb9ac2 f19d7cfb 6b4fdd49 f47fc5fd'));
    expect(hx(b.x)).toBe(norm('1ea1f0f0 1faf1d96 09592284 f19e4c00 47b58afd 8615a69f 559077b2 2faaa190'));
    expect(hx(b.y)).toBe(norm('4c55f33e 429dad37 7356703a 9ab85160 472d1130 e28e3676 5f89aff9 15b1214a'));
    const dh = norm('ec0234a3 57c8ad05 341010a6 0a397d9b 99796b13 b4f866f1 868d34f3 73bfa698');
    expect(hx(p256Ecdh(a.privateKey, b.x, b.y))).toBe(dh);
    expect(hx(p256Ecdh(b.privateKey, a.x, a.y))).toBe(dh);
  });
  test('generated key pairs agree on the DHKey and are on the curve', () => {
    const a = p256Generate(), b = p256Generate();
    expect(p256IsValidPublicKey(a.x, a.y)).toBe(true);
    expect(hx(p256Ecdh(a.privateKey, b.x, b.y))).toBe(hx(p256Ecdh(b.privateKey, a.x, a.y)));
    expect(a.privateKey.length).toBe(32);
  });
  test('points off the curve are refused before any ECDH (CVE-2018-5383)', () => {
    const { x, y } = p256FromPrivateKey(SC_DEBUG_PRIVATE_KEY);
    const y1 = y.slice(); y1[31]! ^= 1;
    expect(p256IsValidPublicKey(x, y1)).toBe(false);
    expect(p256IsValidPublicKey(x, new Uint8Array(32))).toBe(false);           // the invalid-curve attack's y = 0
    expect(p256IsValidPublicKey(new Uint8Array(32), new Uint8Array(32))).toBe(false);
    expect(p256IsValidPublicKey(new Uint8Array(32).fill(0xff), y)).toBe(false); // x ≥ p
    expect(() => p256Ecdh(SC_DEBUG_PRIVATE_KEY, x, new Uint8Array(32))).toThrow(ArgumentError);
  });
});

test('the package entry exports the toolbox as smpCrypto with the spec names', () => {
  for (const name of ['e', 'c1', 's1', 'ah', 'f4', 'f5', 'f6', 'g2', 'h6', 'h7', 'aesCmac']) {
    expect(typeof (smpCrypto as Record<string, unknown>)[name]).toBe('function');
  }
  expect(hx(smpCrypto.ah(h('ec0234a357c8ad05341010a60a397d9b'), h('708194')))).toBe('0dfbaa');
});
