// Security fixtures recorded against BlueZ (5.66 unless said) (tools/interop/record-bluez-pairing.ts), checked from
// the capture alone, independently of the stack that made them (scenarios.test.ts replays them all):
//
// captures/bluez-own-privacy: OUR privacy. Every LE Set Random Address we sent is a resolvable private
// address of the IRK we distributed in Identity Information (ah recomputed here, Vol 3, Part H, 2.2.2 /
// Vol 6, Part B, 1.3.2.2), never our identity; the IRK is the one seeded from host.pairingSeed; after the
// rotation bluetoothd connected again and encrypted with the bond: no SMP on that link, its LE Long Term
// Key Request answered with the same LTK as the first link's, Encryption Change success.
//
// captures/bluez-signed-write: bluetoothd's Signed Write Command (0xD2, Vol 3, Part F, 3.4.5.4) carries
// the AES-CMAC signature (Vol 3, Part H, 2.4.5) of the CSRK it distributed (Signing Information, the key
// its own info file holds: scenario peerKeys), recomputed here with the toolbox's CMAC; one flipped bit
// of the MAC and our server drops the write (the replay of the altered capture lists no write). And our
// own 0xD2 to bluetoothd carries the CMAC of the CSRK we distributed (its RemoteSignatureKey); 5.66 has
// no handler for 0xD2 and drops it: the read after it gives the old value, a Write Command's value reads back.
//
// captures/bluez-signed-write-accepted (the trixie guest, bluetoothd >= 5.73, BlueZ commit 71f0a1e88): our
// 0xD2s on an unencrypted link carry the CMAC of the CSRK we distributed (bluetoothd's RemoteSignatureKey);
// bluetoothd applied the right ones (the read after each gives its value) and dropped one with a flipped
// MAC bit and a replay of the first (the read after each gives the value before).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseCapture } from '../../src/capture/read.js';
import type { CaptureRecord } from '../../src/capture/types.js';
import { decodeRecords, type DecodedL2cap } from '../../src/inspect/decode.js';
import { ReplayDivergenceError, ReplayTransport } from '../../src/replay/transport.js';
import { aesCmac, ah } from '../../src/smp/crypto.js';
import { seededIrk } from '../../src/tooling/entropy.js';
import { loadScenario, type ScenarioFile } from '../../src/tooling/scenario.js';
import { runSession } from '../../src/tooling/session.js';

const CAPTURES = resolve(import.meta.dirname, '../../captures');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const le16 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8);
/** "AA:BB:…" (most significant octet first) from six octets least significant first, as HCI carries it. */
const addressOf = (b: Uint8Array): string => [...b].reverse().map(x => x.toString(16).padStart(2, '0').toUpperCase()).join(':');

interface Loaded { s: ScenarioFile & { capturePath: string }; records: CaptureRecord[]; l2cap: DecodedL2cap[] }
async function load(dir: string): Promise<Loaded> {
  const s = await loadScenario(join(CAPTURES, dir));
  const records = [...parseCapture(readFileSync(s.capturePath))];
  const l2cap = [...decodeRecords(records)].filter((l): l is DecodedL2cap => l.line === 'l2cap');
  return { s, records, l2cap };
}
/** HCI commands we sent with this opcode: their parameters, with the frame number. */
function commands(records: CaptureRecord[], opcode: number): Array<{ frame: number; params: Uint8Array }> {
  return records.filter(r => r.dir === 'tx' && r.packet?.[0] === 0x01 && le16(r.packet, 1) === opcode)
    .map(r => ({ frame: r.frame, params: r.packet!.subarray(4) }));
}
/** HCI events (code, LE Meta subevent if 0x3E): their parameters after the code (and subevent). */
function events(records: CaptureRecord[], code: number, sub?: number): Array<{ frame: number; params: Uint8Array }> {
  return records.filter(r => r.dir === 'rx' && r.packet?.[0] === 0x04 && r.packet[1] === code && (sub === undefined || r.packet[3] === sub))
    .map(r => ({ frame: r.frame, params: r.packet!.subarray(sub === undefined ? 3 : 4) }));
}

/**
 * The signature of Vol 3, Part H, 2.4.5 composed here from the toolbox's AES-CMAC (MSO first): m is the
 * PDU as sent (opcode, handle, value) followed by SignCounter, all least significant octet first; the
 * MAC is the 64 most significant bits of CMAC(CSRK, m), sent least significant octet first after the counter.
 */
function signature(csrk: Uint8Array, header: Uint8Array, value: Uint8Array, counter: Uint8Array): string {
  const m = Uint8Array.from([...header, ...value, ...counter]);
  const mac = aesCmac(Uint8Array.from(csrk).reverse(), m.reverse());
  return hex(counter) + hex(mac.subarray(0, 8).reverse());
}
/** The CSRK we distributed (our one Signing Information, Vol 3, Part H, 3.6.6), checked against the key bluetoothd stored (peerKeys.remoteSignatureKey). */
function ourCsrk(l: Loaded): Uint8Array {
  const ours = l.l2cap.filter(x => x.cid === 0x0006 && x.dir === 'tx' && x.payload[0] === 0x0a).map(x => x.payload.subarray(1, 17));
  expect(ours).toHaveLength(1);
  expect(hex(ours[0]!).toUpperCase()).toBe(l.s.peerKeys!['remoteSignatureKey']);
  return ours[0]!;
}

/**
 * Whether `address` is an RPA of `irk` (SMP order, least significant octet first), computed here from
 * the toolbox's ah: prand is the upper 24 bits (top two 0b01), hash = ah(IRK, prand) the lower 24.
 */
function rpaOf(irk: Uint8Array, address: string): boolean {
  const o = address.split(':').map(x => parseInt(x, 16));
  if ((o[0]! >> 6) !== 0b01) return false;
  return hex(ah(Uint8Array.from(irk).reverse(), Uint8Array.from(o.slice(0, 3)))) === hex(Uint8Array.from(o.slice(3)));
}

describe('captures/bluez-own-privacy: our RPAs against bluetoothd', () => {
  test('every LE Set Random Address is an RPA of the IRK we distributed (ah), never our identity; two of them, as listed in rpas', async () => {
    const { s, records, l2cap } = await load('bluez-own-privacy');
    const smpOut = l2cap.filter(l => l.cid === 0x0006 && l.dir === 'tx').map(l => l.payload);
    const idInfo = smpOut.filter(p => p[0] === 0x08);
    const idAddr = smpOut.filter(p => p[0] === 0x09);
    expect(idInfo).toHaveLength(1);
    expect(idAddr).toHaveLength(1);
    const irk = idInfo[0]!.subarray(1, 17);
    // Identity Address Information: type 0x01 (static random), our identity, the scenario's address.
    expect(idAddr[0]![1]).toBe(0x01);
    const identity = addressOf(idAddr[0]!.subarray(2, 8));
    expect(identity).toBe(s.host!.randomAddress);
    expect(parseInt(identity.slice(0, 2), 16) >> 6).toBe(0b11);
    // The IRK is the seeded one (host.pairingSeed, tests and replay only): the replay makes the same RPAs.
    expect(hex(irk)).toBe(hex(seededIrk(s.host!.pairingSeed!)));
    const set = commands(records, 0x2005).map(c => addressOf(c.params.subarray(0, 6)));
    expect(set.length).toBeGreaterThanOrEqual(2);
    for (const a of set) {
      expect(a).not.toBe(identity);
      expect(rpaOf(irk, a), `${a} is not an RPA of the distributed IRK`).toBe(true);
    }
    expect([...new Set(set)]).toEqual(s.expect.rpas);
    expect(s.expect.rpas).toHaveLength(2);
    // A sanity check of the check: the other RPA's prand with this one's hash is not an RPA of the IRK.
    const [a, b] = s.expect.rpas!;
    expect(rpaOf(irk, `${a!.slice(0, 8)}${b!.slice(8)}`)).toBe(false);
  });

  test('bluetoothd paired on the first link; after the rotation it connected again and encrypted from the bond: no SMP, same LTK, Encryption Change success', async () => {
    const { s, records, l2cap } = await load('bluez-own-privacy');
    const links = [...events(records, 0x3e, 0x01), ...events(records, 0x3e, 0x0a)]
      .filter(e => e.params[0] === 0x00).sort((x, y) => x.frame - y.frame)
      .map(e => ({ frame: e.frame, handle: le16(e.params, 1), role: e.params[3] }));
    expect(links).toHaveLength(2);
    expect(links.map(l => l.role)).toEqual([0x01, 0x01]); // we are the peripheral both times
    const [first, second] = links;
    // The address we were at for each link: the last LE Set Random Address before its Connection Complete.
    const setBefore = (frame: number): string => addressOf(commands(records, 0x2005).filter(c => c.frame < frame).at(-1)!.params.subarray(0, 6));
    expect(setBefore(first!.frame)).toBe(s.expect.rpas![0]);
    expect(setBefore(second!.frame)).toBe(s.expect.rpas![1]);
    // Pairing on the first link (bluetoothd's Pairing Request), none on the second.
    // (The controller may give both links the same handle: each link is its frames from its Connection Complete on.)
    const onFirst = (frame: number): boolean => frame > first!.frame && frame < second!.frame;
    const smp = l2cap.filter(l => l.cid === 0x0006);
    expect(smp.filter(l => onFirst(l.frame) && l.handle === first!.handle).some(l => l.payload[0] === 0x01)).toBe(true);
    expect(smp.filter(l => l.frame > second!.frame).map(l => hex(l.payload))).toEqual([]);
    // Each link's LE Long Term Key Request answered with one LTK, the same on both; encryption came on.
    const replies = commands(records, 0x201a).map(c => ({ frame: c.frame, handle: le16(c.params, 0), ltk: hex(c.params.subarray(2, 18)) }));
    const firstLtk = replies.filter(r => r.handle === first!.handle && onFirst(r.frame));
    const secondLtk = replies.filter(r => r.handle === second!.handle && r.frame > second!.frame);
    expect(firstLtk).toHaveLength(1);
    expect(secondLtk).toHaveLength(1);
    expect(secondLtk[0]!.ltk).toBe(firstLtk[0]!.ltk);
    const encrypted = events(records, 0x08).filter(e => e.frame > second!.frame);
    expect(encrypted.map(e => [e.params[0], e.params[3]])).toEqual([[0x00, 0x01]]);
    // And it read our encrypted characteristic there: our Read Response carries "veiled".
    const readRsp = l2cap.filter(l => l.cid === 0x0004 && l.dir === 'tx' && l.handle === second!.handle && l.payload[0] === 0x0b);
    expect(readRsp.map(l => Buffer.from(l.payload.subarray(1)).toString())).toContain('veiled');
    expect(s.expect.security).toEqual([expect.objectContaining({ encrypted: true, bonded: true })]);
  });

  test('the replay with another seed diverges at our first LE Set Random Address (another IRK, another RPA)', async () => {
    const s = await loadScenario(join(CAPTURES, 'bluez-own-privacy'));
    const transport = await ReplayTransport.fromFile(s.capturePath, { masks: s.masks, ...s.replay });
    const session = runSession(s.steps, { transport, baseDir: join(CAPTURES, 'bluez-own-privacy'), randomAddress: s.host!.randomAddress!,
      pairingSeed: `${s.host!.pairingSeed!} other`, privacy: true, ...(s.host?.timeoutMs ? { timeoutMs: s.host.timeoutMs } : {}) });
    await expect(session).rejects.toThrow();
    const e = await transport.finished.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(ReplayDivergenceError);
    expect((e as Error).message).toMatch(/expected: host → controller LE Set Random Address randomAddress="([0-9A-F:]+)"/);
    expect((e as Error).message).toContain(`randomAddress="${s.expect.rpas![0]}"`);
  });
});

describe('captures/bluez-signed-write: bluetoothd signs a Write Command, our server verifies', () => {
  /** bluetoothd's Signed Write Commands: the header (opcode, handle), value, signature, with the frame. */
  const signedWrites = (l: Loaded) => l.l2cap.filter(x => x.cid === 0x0004 && x.dir === 'rx' && x.payload[0] === 0xd2).map(x => ({
    frame: x.frame, header: x.payload.subarray(0, 3), handle: le16(x.payload, 1),
    value: x.payload.subarray(3, x.payload.length - 12), signature: x.payload.subarray(x.payload.length - 12),
  }));

  test('the 0xD2 carries the CMAC of the CSRK bluetoothd distributed (and holds in its info file); a one-bit-flipped copy does not verify', async () => {
    const l = await load('bluez-signed-write');
    const csrks = l.l2cap.filter(x => x.cid === 0x0006 && x.dir === 'rx' && x.payload[0] === 0x0a).map(x => x.payload.subarray(1, 17));
    expect(csrks).toHaveLength(1);
    const csrk = csrks[0]!;
    // The key bluetoothd's own store holds for us (its LocalSignatureKey), read out of band when recording.
    expect(hex(csrk).toUpperCase()).toBe(l.s.peerKeys!['localSignatureKey']);
    const writes = signedWrites(l);
    expect(writes).toHaveLength(1);
    const w = writes[0]!;
    expect(hex(w.value)).toBe('539e');
    expect(hex(w.signature)).toBe(signature(csrk, w.header, w.value, w.signature.subarray(0, 4)));
    for (const bit of [0, 37, 95]) {
      const flipped = Uint8Array.from(w.signature);
      flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
      expect(hex(flipped)).not.toBe(signature(csrk, w.header, w.value, flipped.subarray(0, 4)));
    }
    // Our server applied it as signed (the replay in scenarios.test.ts gives the same).
    expect(l.s.expect.served!.writes).toEqual([{ target: '5167ee01-7b1e-4c0d-9a5e-2f1e0d9c8b00', value: '539e', command: true, signed: true }]);
  });

  test('our 0xD2 to bluetoothd carries the CMAC of the CSRK we distributed (its RemoteSignatureKey); 5.66 drops it, a plain Write Command of another value reads back', async () => {
    const l = await load('bluez-signed-write');
    const csrk = ourCsrk(l);
    const att = l.l2cap.filter(x => x.cid === 0x0004);
    const sentAt = att.findIndex(x => x.dir === 'tx' && x.payload[0] === 0xd2);
    expect(sentAt).toBeGreaterThan(0);
    const pdu = att[sentAt]!.payload;
    const [header, value, sig] = [pdu.subarray(0, 3), pdu.subarray(3, pdu.length - 12), pdu.subarray(pdu.length - 12)];
    expect(hex(value)).toBe('519e');
    expect(hex(sig.subarray(0, 4))).toBe('00000000'); // our first signed write with this CSRK: SignCounter 0
    expect(hex(sig)).toBe(signature(csrk, header, value, sig.subarray(0, 4)));
    // What came after it: no ATT Error Response to a 0xD2 (a command has none), our Read Request answered
    // with the old value; our Write Command (0x52) of 579e on the same handle, then a read gives 579e.
    const after = att.slice(sentAt + 1);
    expect(after.filter(x => x.dir === 'rx' && x.payload[0] === 0x01 && x.payload[1] === 0xd2)).toEqual([]);
    const rsps = after.filter(x => x.dir === 'rx' && x.payload[0] === 0x0b).map(x => hex(x.payload.subarray(1)));
    expect(rsps).toEqual(['00', '579e']);
    const cmd = after.filter(x => x.dir === 'tx' && x.payload[0] === 0x52);
    expect(cmd.map(x => [le16(x.payload, 1), hex(x.payload.subarray(3))])).toEqual([[le16(pdu, 1), '579e']]);
    expect(l.s.expect.reads!.map(r => r.value)).toEqual(['00', '579e']);
    expect(l.s.expect.writes).toEqual([
      { target: '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00', value: '519e', signed: true },
      { target: '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00', value: '579e' },
    ]);
  });

  test('replayed with one bit of the MAC flipped, our server drops the write: no write is listed, the rest replays as recorded', async () => {
    const l = await load('bluez-signed-write');
    const frame = signedWrites(l)[0]!.frame;
    const records = l.records.map(r => {
      if (r.frame !== frame) return r;
      const p = Uint8Array.from(r.packet!);
      p[p.length - 1] = p[p.length - 1]! ^ 0x01; // the MAC's most significant octet, lowest bit
      return { ...r, packet: p };
    });
    const transport = new ReplayTransport(records, { masks: l.s.masks, ...l.s.replay });
    const result = await runSession(l.s.steps, { transport, baseDir: join(CAPTURES, 'bluez-signed-write'), randomAddress: l.s.host!.randomAddress!,
      pairingSeed: l.s.host!.pairingSeed!, ...(l.s.host?.timeoutMs ? { timeoutMs: l.s.host.timeoutMs } : {}) });
    await transport.finished;
    expect(transport.progress.played).toBe(transport.progress.total);
    const { served, ...rest } = JSON.parse(JSON.stringify(result)) as typeof l.s.expect;
    const { served: recordedServed, ...recordedRest } = l.s.expect;
    expect(rest).toEqual(recordedRest);
    expect(served!.writes).toEqual([]);
    expect(recordedServed!.writes).toHaveLength(1);
  });
});

describe('captures/bluez-signed-write-accepted: bluetoothd >= 5.73 verifies and applies our Signed Write Commands', () => {
  test('recorded against the trixie guest, bluetoothd 5.73 or later', async () => {
    const { s } = await load('bluez-signed-write-accepted');
    const v = /^BlueZ (\d+)\.(\d+) bluetoothd/.exec(s.recordedWith?.peer ?? '');
    expect(v, s.recordedWith?.peer).not.toBeNull();
    expect(Number(v![1]) * 1000 + Number(v![2])).toBeGreaterThanOrEqual(5073);
  });

  test('on a link with no encryption: our 0xD2s carry the CMAC of the CSRK bluetoothd stores as its RemoteSignatureKey; it applied 5a01 and 5a02 and dropped the flipped MAC and the replay', async () => {
    const l = await load('bluez-signed-write-accepted');
    const csrk = ourCsrk(l);
    const att = l.l2cap.filter(x => x.cid === 0x0004);
    const signed = att.filter(x => x.dir === 'tx' && x.payload[0] === 0xd2);
    const parts = signed.map(x => ({ header: x.payload.subarray(0, 3), value: x.payload.subarray(3, x.payload.length - 12), sig: x.payload.subarray(x.payload.length - 12) }));
    expect(parts.map(p => hex(p.value))).toEqual(['5a01', '5aee', '5a02', '5a01']);
    expect(parts.map(p => le16(p.sig, 0) + le16(p.sig, 2) * 0x10000)).toEqual([0, 1, 1, 0]); // SignCounter, little-endian
    const right = parts.map(p => signature(csrk, p.header, p.value, p.sig.subarray(0, 4)));
    expect(parts.map((p, i) => hex(p.sig) === right[i])).toEqual([true, false, true, true]);
    // The second differs from its right signature in bit 95 only (the MAC's most significant bit); the
    // fourth is the first again, octet for octet (a replay).
    const diff = Buffer.from(parts[1]!.sig).map((b, i) => b ^ Buffer.from(right[1]!, 'hex')[i]!);
    expect(hex(diff)).toBe('0000000000000000000000' + '80');
    expect(hex(signed[3]!.payload)).toBe(hex(signed[0]!.payload));
    // The link they went over: its LE Connection Complete comes after the pairing link's Disconnection
    // Complete, and no LE Enable Encryption (0x2019) was sent on it.
    const firstSigned = signed[0]!.frame;
    const lastConnect = events(l.records, 0x3e, 0x01).map(e => e.frame).filter(f => f < firstSigned).at(-1)!;
    expect(commands(l.records, 0x2019).filter(c => c.frame > lastConnect)).toEqual([]);
    expect(events(l.records, 0x05).some(e => e.frame < lastConnect)).toBe(true);
    // bluetoothd's answers: no Error Response to a 0xD2 (a command has none); the Read Response after each
    // 0xD2 gives the value it holds: each right one applied, the flipped one and the replay not.
    expect(att.filter(x => x.dir === 'rx' && x.payload[0] === 0x01 && x.payload[1] === 0xd2)).toEqual([]);
    const afterConnect = att.filter(x => x.frame > lastConnect);
    expect(afterConnect.filter(x => x.dir === 'rx' && x.payload[0] === 0x0b).map(x => hex(x.payload.subarray(1)))).toEqual(['00', '5a01', '5a01', '5a02', '5a02']);
    for (const x of signed) {
      const next = afterConnect.find(y => y.frame > x.frame && y.dir === 'rx' && y.payload[0] === 0x0b)!;
      expect(afterConnect.filter(y => y.frame > x.frame && y.frame < next.frame && y.dir === 'tx' && y.payload[0] === 0xd2)).toEqual([]);
    }
    expect(l.s.expect.reads!.map(r => r.value)).toEqual(['00', '5a01', '5a01', '5a02', '5a02']);
    const chr = '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00';
    expect(l.s.expect.writes).toEqual([
      { target: chr, value: '5a01', signed: true },
      { target: chr, value: '5aee', signed: true, flip: 95 },
      { target: chr, value: '5a02', signed: true },
      { target: chr, value: '5a01', signed: true, counter: 0 },
    ]);
  });
});
