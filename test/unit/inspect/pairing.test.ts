// `decode --pairing` on captures of real pairings: our initiator against our responder (every method,
// both LE legacy and LE Secure Connections) recorded as the central's HCI trace with the capture
// writer, read back, and analysed: method, IO capabilities, confirm/DHKey-check verdicts, passkey
// recovery, derived keys against the key the host gave the controller, weaknesses; a tampered capture
// gives a failed verdict, and the CLI prints the same as JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { createCaptureWriter, parseCapture } from '../../../src/capture/index.js';
import { openCaptureFile } from '../../../src/capture/writer.js';
import { encodeHciPacket, type HciPacket } from '../../../src/hci/packets.js';
import { decodeRecords } from '../../../src/inspect/decode.js';
import { analysePairings, formatPairingReport } from '../../../src/inspect/pairing.js';
import { p256FromPrivateKey } from '../../../src/platform/crypto.js';
import { SC_DEBUG_PRIVATE_KEY } from '../../../src/smp/crypto.js';
import { SmpIoCapability as IO } from '../../../src/smp/pdus.js';
import { I_ADDR, Pair, R_ADDR, type PartOpts } from '../smp/harness.js';
import { toHex } from '../../../src/bytes/hex.js';
import { randomBytes } from '../../../src/platform/crypto.js';

const HANDLE = 0x0040;

/** The central's HCI trace of a pairing between two in-memory sessions. */
export function pairingCapture(p: Pair, tamper?: (from: 'i' | 'r', pdu: Uint8Array) => Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = createCaptureWriter(b => chunks.push(b.slice()), { format: 'btsnoop' });
  let t = 1_700_000_000_000_000;
  const put = (dir: 'tx' | 'rx', pkt: HciPacket) => w.write({ dir, timeUs: (t += 1000), packet: encodeHciPacket(pkt) });
  put('tx', { type: 'command', kind: 'readBdAddr' } as HciPacket);
  put('rx', { type: 'event', kind: 'commandComplete', numHciCommandPackets: 1, commandOpcode: 0x1009,
    returnParameters: { kind: 'readBdAddr', status: 0, bdAddr: I_ADDR.address } } as HciPacket);
  put('tx', { type: 'command', kind: 'leCreateConnection', leScanInterval: 96, leScanWindow: 48, initiatorFilterPolicy: 0,
    peerAddressType: R_ADDR.type, peerAddress: R_ADDR.address, ownAddressType: 0, connectionIntervalMin: 24,
    connectionIntervalMax: 40, maxLatency: 0, supervisionTimeout: 500, minCeLength: 0, maxCeLength: 0 } as unknown as HciPacket);
  put('rx', { type: 'event', kind: 'leConnectionComplete', status: 0, connectionHandle: HANDLE, role: 0,
    peerAddressType: R_ADDR.type, peerAddress: R_ADDR.address, connectionInterval: 40, peripheralLatency: 0,
    supervisionTimeout: 500, centralClockAccuracy: 0 } as unknown as HciPacket);
  for (const { side, a } of p.log) {
    if (a.kind === 'send') {
      const pdu = tamper ? tamper(side, a.pdu) : a.pdu;
      const l2 = new Uint8Array(4 + pdu.length);
      l2[0] = pdu.length; l2[2] = 0x06; l2.set(pdu, 4);
      put(side === 'i' ? 'tx' : 'rx', { type: 'acl', handle: HANDLE, pb: side === 'i' ? 0 : 2, bc: 0, data: l2 });
    } else if (a.kind === 'startEncryption') {
      put('tx', { type: 'command', kind: 'leEnableEncryption', connectionHandle: HANDLE, randomNumber: a.ltk.rand,
        encryptedDiversifier: a.ltk.ediv, longTermKey: a.ltk.key } as unknown as HciPacket);
      put('rx', { type: 'event', kind: 'encryptionChange', status: 0, connectionHandle: HANDLE, encryptionEnabled: 1 } as unknown as HciPacket);
    }
  }
  w.close();
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const c of chunks) { out.set(c, n); n += c.length; }
  return out;
}

function run(i: PartOpts, r: PartOpts): Pair {
  const p = new Pair(i, r, { i: { passkey: 'peer' }, r: { passkey: 'peer' } });
  if (i.io === IO.KeyboardOnly && r.io === IO.KeyboardOnly) p.users.i.passkey = p.users.r.passkey = 424242;
  p.i.pair();
  return p.run();
}
const analyse = (bytes: Uint8Array, passkey?: number) => analysePairings(decodeRecords(parseCapture(bytes)), passkey === undefined ? {} : { passkey });

describe('LE legacy', () => {
  test('Just Works: both confirms verify, the STK is derived and is the key the host gave the controller', () => {
    const p = run({ secureConnections: false }, { secureConnections: false });
    const [r] = analyse(pairingCapture(p));
    expect(r).toMatchObject({
      secureConnections: false, method: 'justWorks', initiatorIo: 'NoInputNoOutput', responderIo: 'NoInputNoOutput',
      checks: { initiatorConfirm: true, responderConfirm: true }, hostKeyMatches: true, outcome: 'complete', localRole: 'central',
      initiatorAddress: 'A1:A2:A3:A4:A5:A6 (public)', responderAddress: 'C1:B2:B3:B4:B5:B6 (random)',
    });
    expect(r!.keys.tk).toBe('00'.repeat(16));
    expect(r!.hostKeys).toEqual([r!.keys.stk]);
    expect(r!.distributedLtks).toContain(toHex(p.result('i')!.ltk!.key));
    expect(r!.weaknesses.join('\n')).toMatch(/LE legacy pairing: anyone who captured/);
    expect(r!.weaknesses.join('\n')).toMatch(/Just Works/);
  });
  test('Passkey Entry: the passkey is recovered by trying the 10^6 candidates, then everything verifies', () => {
    // The displayed passkey is 004321 here (the responder's random source), so the search stops early;
    // a full search costs about 23 µs per candidate on the project machine (≈ 23 s worst case).
    const p = run({ secureConnections: false, io: IO.KeyboardOnly, mitm: true },
      { secureConnections: false, io: IO.DisplayOnly, random: n => (n === 4 ? Uint8Array.of(0, 0, 0x10, 0xe1) : randomBytes(n)) });
    expect(p.displayed.r).toBe(4321);
    const [r] = analyse(pairingCapture(p));
    expect(r!.method).toBe('passkeyResponderDisplays');
    expect(r!.passkey).toBe(p.displayed.r);
    expect(r!.passkeyRecovered).toBe(true);
    expect(r!.checks).toEqual({ initiatorConfirm: true, responderConfirm: true });
    expect(r!.hostKeyMatches).toBe(true);
  });
  test('with --passkey given and wrong, the confirms fail', () => {
    const p = run({ secureConnections: false, io: IO.KeyboardOnly, mitm: true }, { secureConnections: false, io: IO.DisplayOnly });
    const [r] = analyse(pairingCapture(p), (p.displayed.r! + 1) % 1_000_000);
    expect(r!.checks).toEqual({ initiatorConfirm: false, responderConfirm: false });
    expect(r!.hostKeyMatches).toBe(false);
  });
});

describe('LE Secure Connections', () => {
  test('Passkey Entry: the passkey is recovered from the 20 rounds; a reviewer is told a fixed passkey is no protection', () => {
    const p = run({ io: IO.KeyboardOnly, mitm: true }, { io: IO.DisplayOnly });
    const [r] = analyse(pairingCapture(p));
    expect(r).toMatchObject({ secureConnections: true, method: 'passkeyResponderDisplays', passkey: p.displayed.r, passkeyRecovered: true,
      checks: { initiatorConfirm: true, responderConfirm: true, initiatorDhKeyCheck: 'unknown', responderDhKeyCheck: 'unknown' } });
    expect(r!.weaknesses.join('\n')).toMatch(/recoverable from the confirm values/);
    expect(r!.keys.ltk).toBeUndefined(); // no private key in a capture
  });
  test('Numeric Comparison: the responder commitment verifies and the six digits both users saw are shown', () => {
    const p = run({ io: IO.DisplayYesNo, mitm: true }, { io: IO.DisplayYesNo });
    const [r] = analyse(pairingCapture(p));
    expect(r!.method).toBe('numericComparison');
    expect(r!.checks.responderConfirm).toBe(true);
    expect(r!.checks.initiatorConfirm).toBeUndefined();
    expect(r!.numericComparison).toBe(p.compared.i);
  });
  test('with the debug key on one side, DHKey checks verify and the LTK is derived and matches the host key', () => {
    const p = run({ allowDebugKeys: true }, { keyPair: p256FromPrivateKey(SC_DEBUG_PRIVATE_KEY) });
    const [r] = analyse(pairingCapture(p));
    expect(r!.checks).toMatchObject({ responderConfirm: true, initiatorDhKeyCheck: true, responderDhKeyCheck: true });
    expect(r!.keys.ltk).toBe(toHex(p.result('i')!.ltk!.key));
    expect(r!.hostKeyMatches).toBe(true);
    expect(r!.weaknesses.join('\n')).toMatch(/debug key/);
  });
  test('a tampered responder confirm gives a failed verdict and the Pairing Failed reason', () => {
    const p = new Pair({}, {});
    p.tap = (f, pdu) => (f === 'r' && pdu[0] === 0x03 ? Uint8Array.from(pdu, (b, k) => (k === 3 ? b ^ 1 : b)) : pdu);
    p.i.pair();
    p.run();
    // The capture shows what went over the air: the tampered confirm.
    const cap = pairingCapture(p, (f, pdu) => (f === 'r' && pdu[0] === 0x03 ? Uint8Array.from(pdu, (b, k) => (k === 3 ? b ^ 1 : b)) : pdu));
    const [r] = analyse(cap);
    expect(r!.checks.responderConfirm).toBe(false);
    expect(r!.outcome).toBe('failed');
    expect(r!.failure).toEqual({ reason: 0x04, reasonName: 'Confirm Value Failed', by: 'initiator' });
    expect(formatPairingReport(r!)).toMatch(/Confirm Value Failed from the initiator/);
  });
});

describe('the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blewire-pairing-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test('decode --pairing --json prints one object per pairing', async () => {
    const p = run({ io: IO.KeyboardOnly, mitm: true }, { io: IO.DisplayOnly });
    const file = join(dir, 'sc-passkey.btsnoop');
    const w = openCaptureFile(file);
    for (const rec of parseCapture(pairingCapture(p))) w.write(rec);
    w.close();
    const out: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    (process.stdout as unknown as { write: (s: string) => boolean }).write = (s: string) => { out.push(String(s)); return true; };
    try {
      const { run: decode } = await import('../../../src/cli/decode.js');
      expect(await decode(['--pairing', file, '--json'])).toBe(0);
    } finally {
      (process.stdout as unknown as { write: typeof orig }).write = orig;
    }
    const objs = out.join('').trim().split('\n').map(l => JSON.parse(l));
    expect(objs).toHaveLength(1);
    expect(objs[0]).toMatchObject({ method: 'passkeyResponderDisplays', secureConnections: true, passkey: p.displayed.r,
      initiatorIo: 'KeyboardOnly', responderIo: 'DisplayOnly', checks: { initiatorConfirm: true, responderConfirm: true } });
  });
});
