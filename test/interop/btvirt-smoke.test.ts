// Pins that BlueZ's controller emulator btvirt, started by tools/interop/btvirt.sh with the user-space
// AF_ALG shim, is a working independent controller pair: reset, LE Encrypt against the Core sample
// (which only passes if the shim's AES is right), LE Rand, legacy advertising seen by a scanner, a
// connection seen on both sides and ACL delivered, all in raw hand-built H4 bytes (no blewire code).
// It also pins the emulator facts the host stack relies on (tools/interop/README.md).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EVT_LE_META, RawHciPeer, startBtvirt, type Btvirt, type H4Packet } from './helpers/btvirt.js';

// Event codes (Vol 4, Part E, 7.7).
const EVT_DISCONNECTION_COMPLETE = 0x05;
const EVT_NUMBER_OF_COMPLETED_PACKETS = 0x13;
const LE_CONNECTION_COMPLETE = 0x01;
const LE_ADVERTISING_REPORT = 0x02;

// Opcodes: OGF << 10 | OCF (Vol 4, Part E, 5.4.1).
const OP = {
  disconnect: 0x0406, // 7.1.6
  setEventMask: 0x0c01, // 7.3.1
  reset: 0x0c03, // 7.3.2
  readBdAddr: 0x1009, // 7.4.6
  leSetEventMask: 0x2001, // 7.8.1
  leReadBufferSize: 0x2002, // 7.8.2
  leSetAdvertisingParameters: 0x2006, // 7.8.5
  leSetAdvertisingData: 0x2008, // 7.8.7
  leSetAdvertisingEnable: 0x200a, // 7.8.9
  leSetScanParameters: 0x200b, // 7.8.10
  leSetScanEnable: 0x200c, // 7.8.11
  leCreateConnection: 0x200d, // 7.8.12
  leEncrypt: 0x2017, // 7.8.22
  leRand: 0x2018, // 7.8.23
  leSetDataLength: 0x2022, // 7.8.33
  leReadLocalP256PublicKey: 0x2025, // 7.8.36
  leReadPhy: 0x2030, // 7.8.47
  vendor: 0xfc01, // OGF 0x3f, vendor specific
} as const;

const bdAddrToString = (le: Buffer): string =>
  Array.from(le)
    .reverse()
    .map((b) => b.toString(16).padStart(2, '0').toUpperCase())
    .join(':');

const hex = (s: string): number[] => s.replace(/\s+/g, '').match(/../g)!.map((b) => parseInt(b, 16));

/** AD structures (Vol 3, Part C, 11): [length, type, data...]; returns the Complete Local Name (0x09). */
function localName(ad: Buffer): string | undefined {
  for (let i = 0; i + 1 < ad.length && ad[i]! > 0; i += 1 + ad[i]!) {
    if (ad[i + 1] === 0x09) return ad.subarray(i + 2, i + 1 + ad[i]!).toString('utf8');
  }
  return undefined;
}

describe('btvirt smoke (raw HCI over its LE socket)', () => {
  let btvirt: Btvirt | undefined;
  let a: RawHciPeer; // scanner, then central
  let b: RawHciPeer; // advertiser, then peripheral
  const addr: Record<'a' | 'b', string> = { a: '', b: '' };
  const facts: string[] = [];
  const ADV_NAME = 'blewire-smoke';

  beforeAll(async () => {
    const t0 = performance.now();
    btvirt = await startBtvirt();
    facts.push(`start ${(performance.now() - t0).toFixed(0)} ms`);
    a = await RawHciPeer.connect(btvirt.leSocket, 'A');
    b = await RawHciPeer.connect(btvirt.leSocket, 'B');
  });

  afterAll(async () => {
    a?.close();
    b?.close();
    await btvirt?.stop();
    console.log(`btvirt smoke facts: ${facts.join('; ')}`);
  });

  test('both controllers answer Reset with Command Complete, and have emulated addresses 00:AA:01:xx:00:42', async () => {
    for (const c of [a, b]) {
      const r = await c.command(OP.reset);
      expect(r).toMatchObject({ kind: 'complete', status: 0x00, credits: 1 });
      facts.push(`${c.name} reset ${r.ms.toFixed(2)} ms`);
      await c.ok(OP.setEventMask, hex('ff ff ff ff ff ff ff 3f')); // all events incl. LE Meta (bit 61)
      await c.ok(OP.leSetEventMask, hex('1f 00 00 00 00 00 00 00')); // LE subevents 0x01-0x05
    }
    addr.a = bdAddrToString(await a.ok(OP.readBdAddr));
    addr.b = bdAddrToString(await b.ok(OP.readBdAddr));
    expect(addr.a).toMatch(/^00:AA:01:[0-9A-F]{2}:00:42$/);
    expect(addr.b).toMatch(/^00:AA:01:[0-9A-F]{2}:00:42$/);
    expect(addr.a).not.toBe(addr.b);
    facts.push(`addresses A ${addr.a}, B ${addr.b}`);
  });

  test('LE Encrypt reproduces the Core sample (Vol 6, Part C, 1) through the AF_ALG shim', async () => {
    // Key 0x4C68384139F574D836BCF34E9DFB01BF and plaintext 0x0213243546576879ACBDCEDFE0F10213, sent
    // least significant octet first, give 0x99AD1B5226A37E3E058E3B8E27C2C666 (also LSO first).
    const key = hex('bf 01 fb 9d 4e f3 bc 36 d8 74 f5 39 41 38 68 4c');
    const plaintext = hex('13 02 f1 e0 df ce bd ac 79 68 57 46 35 24 13 02');
    const encrypted = await a.ok(OP.leEncrypt, [...key, ...plaintext]);
    expect(encrypted.toString('hex')).toBe('66c6c2278e3b8e053e7ea326521bad99');
  });

  test('LE Rand returns 8 random octets', async () => {
    const r1 = await a.ok(OP.leRand);
    const r2 = await a.ok(OP.leRand);
    expect(r1.length).toBe(8);
    expect(r2.length).toBe(8);
    expect(r1.equals(r2)).toBe(false); // 2^-64 chance of a false failure
  });

  test('unsupported commands get Command Status 0x01 (Unknown HCI Command), not Command Complete', async () => {
    // Data Length, PHY and P-256 commands are missing from btvirt's LE-only controller, as are vendor ones.
    for (const [opcode, params] of [
      [OP.leSetDataLength, hex('0000 fb00 4808')],
      [OP.leReadPhy, hex('0000')],
      [OP.leReadLocalP256PublicKey, []],
      [OP.vendor, []],
    ] as const) {
      expect(await a.command(opcode, params)).toMatchObject({ kind: 'status', status: 0x01, credits: 1 });
    }
    // LE Read Buffer Size v1 (7.8.2): 192-octet LE ACL buffers, only one of them.
    const buf = await a.ok(OP.leReadBufferSize);
    facts.push(`LE buffers ${buf.readUInt16LE(0)} octets x ${buf[2]}`);
    expect(buf.readUInt16LE(0)).toBeGreaterThanOrEqual(27);
    expect(buf[2]).toBeGreaterThanOrEqual(1);
  });

  test('B advertises its name and A, scanning, gets an advertising report with it', async () => {
    // ADV_IND every 100 ms, public address, all three channels (7.8.5).
    await b.ok(OP.leSetAdvertisingParameters, hex('a000 a000 00 00 00 000000000000 07 00'));
    const name = Buffer.from(ADV_NAME, 'utf8');
    const ad = [0x02, 0x01, 0x06, name.length + 1, 0x09, ...name]; // Flags, Complete Local Name
    await b.ok(OP.leSetAdvertisingData, [ad.length, ...ad, ...new Array(31 - ad.length).fill(0)]);
    await b.ok(OP.leSetAdvertisingEnable, [0x01]);

    await a.ok(OP.leSetScanParameters, hex('01 1000 1000 00 00')); // active, 10 ms / 10 ms
    const t0 = performance.now();
    await a.ok(OP.leSetScanEnable, hex('01 00'));
    const report = await a.next(
      (p) => p.type === 'event' && p.code === EVT_LE_META && p.params[0] === LE_ADVERTISING_REPORT &&
        bdAddrToString(p.params.subarray(4, 10)) === addr.b && p.params[2] === 0x00, // ADV_IND
    );
    if (report.type !== 'event') throw new Error('unreachable');
    facts.push(`first report ${(report.atMs - t0).toFixed(2)} ms after Scan Enable was sent`);
    // Vol 4, Part E, 7.7.65.2 with one report: subevent, num, event type, addr type, addr, len, data, rssi.
    const p = report.params;
    expect(p[1]).toBe(1);
    expect(p[3]).toBe(0x00); // public address
    const data = p.subarray(11, 11 + p[10]!);
    expect(localName(data)).toBe(ADV_NAME);
    facts.push(`RSSI ${p.readInt8(11 + p[10]!)}`);
    await a.ok(OP.leSetScanEnable, hex('00 00'));
  });

  let handleA = -1;
  let handleB = -1;

  test('A connects to B and both see LE Connection Complete', async () => {
    const peer = Buffer.from(addr.b.split(':').reverse().map((x) => parseInt(x, 16)));
    const t0 = performance.now();
    const status = await a.command(OP.leCreateConnection, [
      ...hex('1000 1000 00 00'), // scan interval/window, no accept list, peer address type public
      ...peer,
      ...hex('00 1800 2800 0000 f401 0000 0000'), // own public; interval 30-50 ms; latency 0; 5 s; CE
    ]);
    expect(status).toMatchObject({ kind: 'status', status: 0x00 });
    const ccA = await a.nextLeMeta(LE_CONNECTION_COMPLETE);
    const ccB = await b.nextLeMeta(LE_CONNECTION_COMPLETE);
    facts.push(`connection complete A ${(ccA.atMs - t0).toFixed(2)} ms, B ${(ccB.atMs - t0).toFixed(2)} ms`);
    // 7.7.65.1: status, handle, role, peer address type, peer address, interval, latency, timeout, SCA.
    expect(ccA.params[1]).toBe(0x00);
    expect(ccB.params[1]).toBe(0x00);
    expect(ccA.params[4]).toBe(0x00); // A is central
    expect(ccB.params[4]).toBe(0x01); // B is peripheral
    expect(bdAddrToString(ccA.params.subarray(6, 12))).toBe(addr.b);
    expect(bdAddrToString(ccB.params.subarray(6, 12))).toBe(addr.a);
    expect(ccA.params.readUInt16LE(12)).toBeGreaterThanOrEqual(0x18);
    expect(ccA.params.readUInt16LE(12)).toBeLessThanOrEqual(0x28);
    handleA = ccA.params.readUInt16LE(2) & 0x0fff;
    handleB = ccB.params.readUInt16LE(2) & 0x0fff;
  });

  test('an ACL packet from A arrives at B, and A gets its buffer back', async () => {
    // L2CAP basic frame (Vol 3, Part A, 3.1) on the ATT channel: Exchange MTU Request, Client Rx MTU 247.
    const frame = hex('0300 0400 02 f700');
    const t0 = performance.now();
    a.writeAcl(handleA, 0b00, frame); // PB 00: first non-automatically-flushable fragment (LE host→controller)
    const acl = await b.next((p) => p.type === 'acl');
    const nocp = await a.next((p) => p.type === 'event' && p.code === EVT_NUMBER_OF_COMPLETED_PACKETS);
    if (acl.type !== 'acl' || nocp.type !== 'event') throw new Error('unreachable');
    facts.push(`ACL A→B ${(acl.atMs - t0).toFixed(2)} ms`);
    expect(acl.handle).toBe(handleB);
    expect(acl.pb).toBe(0b10); // controller→host first fragment (Vol 4, Part E, 5.4.2)
    expect(Array.from(acl.data)).toEqual(frame);
    // 7.7.19: one handle, our handle, one packet completed.
    expect(Array.from(nocp.params)).toEqual([1, handleA & 0xff, handleA >> 8, 1, 0]);
  });

  test('A disconnects and both sides see Disconnection Complete with the reason sent', async () => {
    expect(await a.command(OP.disconnect, [handleA & 0xff, handleA >> 8, 0x13])).toMatchObject({
      kind: 'status',
      status: 0x00,
    });
    const isDisc = (p: H4Packet): boolean => p.type === 'event' && p.code === EVT_DISCONNECTION_COMPLETE;
    const dA = await a.next(isDisc);
    const dB = await b.next(isDisc);
    if (dA.type !== 'event' || dB.type !== 'event') throw new Error('unreachable');
    // 7.7.5: status, handle, reason. btvirt reports the sent reason on both sides (a real controller
    // reports 0x16, Connection Terminated By Local Host, to the side that disconnected).
    expect(Array.from(dA.params)).toEqual([0x00, handleA & 0xff, handleA >> 8, 0x13]);
    expect(Array.from(dB.params)).toEqual([0x00, handleB & 0xff, handleB >> 8, 0x13]);
  });
});
