/**
 * Signed writes (ATT_SIGNED_WRITE_CMD 0xD2, Vol 3, Part F, 3.4.5.4; signature Vol 3, Part H, 2.4.5;
 * data signing Vol 3, Part C, 10.4) ACCEPTED by bluetoothd: the second guest image (Debian trixie,
 * BlueZ >= 5.73; tools/interop/guest/build.sh BLEWIRE_GUEST_SUITE=trixie), booted privately for this
 * file, with helpers/signed-gatt-server.py (read, write-without-response, authenticated-signed-writes)
 * registered with bluetoothd and simple-agent NoInputNoOutput answering for BlueZ's user. BlueZ 5.66,
 * the shared guest, drops every 0xD2 (signed-write-bluez.test.ts B); its GATT server learnt them in
 * commit 71f0a1e88 (first in 5.73), and 3eba64ba2 gives the device object a CSRK from the kernel's New
 * CSRK event, so no restart is needed for the key itself.
 *
 * What bluetoothd (tag 5.82, read in its sources) does with a 0xD2:
 * - src/device.c device_attach_att: bt_att_set_remote_key(dev->remote_csrk) when the ATT link comes up,
 *   so the key applies from the link AFTER bonding; and with an LTK (le_state.paired) it raises the ATT
 *   socket's security to MEDIUM, so its kernel asks for encryption on every new link. Data signing is for
 *   an unencrypted link (conn.signedWrite() refuses an encrypted one), so as in
 *   signed-write-from-bluez.test.ts, bluetoothd's LTK groups are removed from its info file for us
 *   (the signature keys stay) and it is restarted: a bond with CSRKs and no encryption.
 * - src/shared/att.c handle_signed: the counter first (device.c remote_counter refuses only a SignCounter
 *   LOWER than the stored one, and stores the new one even when the MAC then fails), then
 *   bt_crypto_verify_att_sign; on failure the PDU is dropped, no answer (it is a command).
 *
 *   A  pairing with signing: bluetoothd stores OUR CSRK as [RemoteSignatureKey], Counter 0.
 *   B  on an unencrypted link our Signed Write Command reaches the application (WriteValue) and reads
 *      back over ATT.
 *   C  the same kind of write with one bit of its MAC flipped is dropped (the read shows the old value,
 *      the application sees nothing); a correctly signed one with the same SignCounter is then applied.
 *   D  a replay of B's PDU, octet for octet (SignCounter 0, below the stored one), is dropped.
 *   E  tshark: no malformed frame; every 0xD2 of ours carries SignCounter ‖ the MAC of our CSRK, and the
 *      flipped one differs from the right MAC in one bit.
 *
 * Guest test: run under `flock /tmp/blewire-guest.lock`. It boots its own guest (about 20 s when idle)
 * next to the suite's shared BlueZ 5.66 guest and stops it at the end.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { GattCharacteristic } from '../../src/gatt/model.js';
import type { Connection } from '../../src/api/connection.js';
import { attSignature } from '../../src/gatt/procedures.js';
import { connectWhenAdvertising, ourBondWith } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import type { GuestProgram } from './helpers/guest-control.js';
import { eventually } from './helpers/progress.js';
import { tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';

const SERVER = fs.readFileSync(fileURLToPath(new URL('./helpers/signed-gatt-server.py', import.meta.url)), 'utf8');
const SVC = '5167ed00-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const CHR = '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00';
/** Our static random address: BlueZ keeps its bond with us under it. */
const OURS = 'C2:5A:11:22:33:79';
const SLOW = 60_000;
/** The first BlueZ release whose GATT server handles 0xD2 (commit 71f0a1e88). */
const FIRST_SIGNING_BLUEZ = [5, 73];
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

describe('signed writes accepted by bluetoothd >= 5.73 (the trixie guest)', () => {
  // A private boot of the trixie image; BlueZ as the pairing files expect it (sc on, bondable).
  const bz = useBlueZSession('signed-write-bluez-new', { ours: OURS, slow: SLOW, clean: true, suite: 'trixie' });
  let adapter: Adapter;
  let app: GuestProgram | undefined;
  let conn: Connection | undefined;
  let chr: GattCharacteristic;
  let version = '';
  /** B's Signed Write Command as sent (value and signature), for D's replay. */
  let first: { value: Uint8Array; signature: Uint8Array } | undefined;
  const started = Date.now();

  const spawnApp = async (): Promise<GuestProgram> => {
    const p = await bz.ctl.spawn(`signed-gatt-server-${Date.now()}`, ['python3', '-c', SERVER]);
    await p.expect(/REGISTERED/, SLOW);
    return p;
  };
  /** The application's WRITE lines since `from` (its output length before the action). */
  const writesSince = (from: number): string[] => [...app!.output.slice(from).matchAll(/^WRITE (\S+)/gm)].map(m => m[1]!);
  const readValue = async (): Promise<string> => hex(await chr.read({ timeout: SLOW }));

  beforeAll(async () => {
    version = (await bz.ctl.ok(['/usr/libexec/bluetooth/bluetoothd', '--version'], SLOW)).trim();
    console.log(`signed-write-bluez-new: bluetoothd ${version} (guest READY after ${bz.guest.readySeconds} s)`);
    await bz.bluez.useAgent('NoInputNoOutput');
    app = await spawnApp();
    adapter = await bz.openAdapter();
  }, 900_000);

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    console.log(`signed-write-bluez-new: ${((Date.now() - started) / 1000).toFixed(1)} s with the guest's boot`);
  });

  it(`bluetoothd in the trixie guest is ${FIRST_SIGNING_BLUEZ.join('.')} or later`, () => {
    const m = /^(\d+)\.(\d+)$/.exec(version);
    expect(m, `bluetoothd --version said ${JSON.stringify(version)}`).not.toBeNull();
    const [major, minor] = [Number(m![1]), Number(m![2])];
    expect(major * 1000 + minor).toBeGreaterThanOrEqual(FIRST_SIGNING_BLUEZ[0]! * 1000 + FIRST_SIGNING_BLUEZ[1]!);
    expect(bz.guest.peripheralName).toBe(`BlueZ ${version}`);
  });

  it('A: pairing with signing; bluetoothd stores our CSRK as its RemoteSignatureKey; then its LTK is dropped and it restarts', async () => {
    conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    // bluetoothd's GATT client reads our database before we pair, else the pairing arms its reverse
    // service discovery, which connects back to us after we leave (BlueZPeer.servicesResolved).
    await bz.bluez.servicesResolved();
    expect(await conn.pair({ signing: true, timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    const bond = await ourBondWith(adapter, bz.guest.peripheral);
    expect(bond.localCsrk).toHaveLength(16);
    const smp = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0006);
    expect(smp.filter(r => r.dir === 'tx').map(r => r.payload)).toContain(`0a${hex(bond.localCsrk)}`);
    const info = await eventually(async () => (await bz.bluez.info()) ?? '', i => /\[RemoteSignatureKey\]/.test(i) && /LongTermKey\]/.test(i));
    const group = /\[RemoteSignatureKey\]\n([^[]*)/.exec(info)?.[1];
    expect(group, `BlueZ's info has no RemoteSignatureKey:\n${info}`).toContain(`Key=${hex(bond.localCsrk).toUpperCase()}\n`);
    expect(group).toContain('Counter=0\n');
    await conn.disconnect();
    conn = undefined;
    await bz.bluez.disconnected();
    const stripped = await bz.bluez.stripLtks();
    expect(stripped).not.toMatch(/LongTermKey/);
    expect(stripped).toMatch(/\[RemoteSignatureKey\]/);
    // bluetoothd again with the example advertisement (so that we find it) and our signing application.
    await app?.kill();
    await bz.ctl.restartBluetoothd(true);
    app = await spawnApp();
  }, 300_000);

  it('B: on an unencrypted link our Signed Write Command reaches the application and reads back', async () => {
    conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    chr = await conn.characteristic(SVC, CHR, { timeout: SLOW });
    expect(chr.properties).toContain('authenticatedSignedWrites');
    expect(conn.security.encrypted).toBe(false);
    expect(await readValue()).toBe('00');
    const from = app!.output.length;
    await conn.signedWrite(chr.handle, Uint8Array.of(0x5a, 0x01));
    // A read round trip orders it: bluetoothd handles ATT PDUs in order and the application's D-Bus calls too.
    expect(await readValue()).toBe('5a01');
    expect(writesSince(from)).toEqual(['5a01']);
    expect(conn.security.encrypted).toBe(false);
    const pdu = await lastSignedWrite();
    expect(pdu.readUInt32LE(5)).toBe(0);
    first = { value: Uint8Array.of(0x5a, 0x01), signature: Uint8Array.from(pdu.subarray(5)) };
    const info = await eventually(async () => (await bz.bluez.info()) ?? '', i => /\[RemoteSignatureKey\]/.test(i));
    console.log(`signed-write-bluez-new: bluetoothd ${version} applied our 0xD2 (SignCounter 0) on handle 0x${chr.handle.toString(16)}; its RemoteSignatureKey now: ${/\[RemoteSignatureKey\]\n([^[]*)/.exec(info)?.[1]?.replace(/\n/g, ' ')}`);
  }, 300_000);

  it('C: one bit of the MAC flipped: dropped; correctly signed with the same SignCounter: applied', async () => {
    const c = conn!;
    const bond = await ourBondWith(adapter, bz.guest.peripheral);
    const counter = bond.localSignCounter ?? 0;
    expect(counter).toBe(1);
    const value = Uint8Array.of(0x5a, 0xee);
    const signature = attSignature(bond.localCsrk!, Uint8Array.of(0xd2, chr.handle & 0xff, chr.handle >> 8), value, counter);
    signature[11]! ^= 0x01; // the last octet of the MAC (Vol 3, Part H, 2.4.5: SignCounter ‖ MAC, little-endian)
    const from = app!.output.length;
    await c.gatt.bearer.command({ kind: 'signedWriteCmd', handle: chr.handle, value, authenticationSignature: signature });
    expect(await readValue()).toBe('5a01');
    expect(writesSince(from)).toEqual([]);
    await c.signedWrite(chr.handle, Uint8Array.of(0x5a, 0x02));
    expect(await readValue()).toBe('5a02');
    expect(writesSince(from)).toEqual(['5a02']);
    expect((await ourBondWith(adapter, bz.guest.peripheral)).localSignCounter).toBe(2);
  }, 300_000);

  it('D: a replay of B\'s Signed Write Command (SignCounter 0, now below bluetoothd\'s) is dropped', async () => {
    const c = conn!;
    const from = app!.output.length;
    await c.gatt.bearer.command({ kind: 'signedWriteCmd', handle: chr.handle, value: first!.value, authenticationSignature: first!.signature });
    expect(await readValue()).toBe('5a02');
    expect(writesSince(from)).toEqual([]);
    // bluetoothd stored the last SignCounter it accepted (device.c remote_counter, then store_device_info).
    const info = await eventually(async () => (await bz.bluez.info()) ?? '', i => /\[RemoteSignatureKey\]\n[^[]*Counter=1\n/.test(i));
    expect(/\[RemoteSignatureKey\]\n([^[]*)/.exec(info)?.[1]).toContain('Counter=1\n');
  }, 300_000);

  it('E: tshark decodes every 0xD2 of ours, none malformed; each is SignCounter ‖ the MAC of our CSRK, the flipped one off by one bit', async () => {
    if (conn?.connected) await conn.disconnect();
    const bond = await ourBondWith(adapter, bz.guest.peripheral);
    const signed = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0004 && r.dir === 'tx' && r.payload.startsWith('d2'));
    expect(signed.map(r => r.payload.slice(6, 10))).toEqual(['5a01', '5aee', '5a02', '5a01']);
    const macOk = signed.map(r => {
      const pdu = Buffer.from(r.payload, 'hex');
      const handle = pdu.readUInt16LE(1);
      const value = pdu.subarray(3, pdu.length - 12);
      const sig = pdu.subarray(pdu.length - 12);
      return hex(sig) === hex(attSignature(bond.localCsrk!, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), value, sig.readUInt32LE(0)));
    });
    expect(macOk).toEqual([true, false, true, true]);
    expect(signed.map(r => Buffer.from(r.payload, 'hex').readUInt32LE(r.payload.length / 2 - 12))).toEqual([0, 1, 1, 0]);
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  }, 60_000);

  async function lastSignedWrite(): Promise<Buffer> {
    const signed = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0004 && r.dir === 'tx' && r.payload.startsWith('d2'));
    expect(signed.length, 'no Signed Write Command of ours in the capture').toBeGreaterThan(0);
    return Buffer.from(signed.at(-1)!.payload, 'hex');
  }
});
