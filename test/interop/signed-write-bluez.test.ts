/**
 * Signed writes (ATT_SIGNED_WRITE_CMD 0xD2, Vol 3, Part F, 3.4.5.4; signature Vol 3, Part H, 2.4.5) with
 * BlueZ 5.66's bluetoothd as the GATT server (the qemu guest): a one-characteristic application
 * (helpers/signed-gatt-server.py) with the flags read, write-without-response and
 * authenticated-signed-writes; simple-agent NoInputNoOutput answers for BlueZ's user.
 *
 *   A  we pair with `signing: true`: our Pairing Request offers SignKey, BlueZ's kernel takes it
 *      (Pairing Response), we send Signing Information, and bluetoothd stores OUR CSRK as its
 *      [RemoteSignatureKey] (Counter 0): the key distribution half of signed writes, checked by BlueZ.
 *   B  what BlueZ 5.66 does with a signed write: NOTHING. Its GATT server (src/shared/gatt-server.c,
 *      gatt_server_register_att_handlers) registers handlers for Write Request (0x12) and Write Command
 *      (0x52) but none for Signed Write Command (0xD2); src/shared/att.c handle_notify finds no handler
 *      for 0xD2 and, the PDU being a command, drops it without an answer (the signature check,
 *      handle_signed, only runs for a PDU some handler registered for). Support came with BlueZ commit
 *      71f0a1e88 "gatt-server: Add support for signed write command" (March 2024, first in 5.73). So
 *      the application never sees our signed value, while a Write Command with the same value reaches
 *      it. (Even on 5.73+, bluetoothd 5.66's adapter.c new_csrk_callback only writes the CSRK to the info
 *      file; the in-memory device gets it, and bt_att_set_remote_key is called, only when bluetoothd
 *      loads the device at start: a restart is needed after bonding. Its remote_counter() also accepts a
 *      repeated SignCounter: it refuses only one LOWER than the stored one.) This test pins that
 *      behaviour: when the guest's BlueZ learns signed writes, B fails and says so.
 *   C  tshark decodes our Signed Write Command, no malformed frame; its 12-octet signature is
 *      SignCounter ‖ MAC, the MAC what attSignature computes from our CSRK (Vol 3, Part H, 2.4.5).
 *
 * Guest test: run under `flock /tmp/blewire-guest.lock`.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { attSignature } from '../../src/gatt/procedures.js';
import { connectWhenAdvertising } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import type { GuestProgram } from './helpers/guest-control.js';
import { eventually } from './helpers/progress.js';
import { tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';

const SERVER = fs.readFileSync(fileURLToPath(new URL('./helpers/signed-gatt-server.py', import.meta.url)), 'utf8');
const SVC = '5167ed00-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const CHR = '5167ed01-7b1e-4c0d-9a5e-2f1e0d9c8b00';
/** Our static random address: BlueZ keeps its bond with us under it. */
const OURS = 'C2:5A:11:22:33:77';
const SLOW = 60_000;
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

describe('signed writes with BlueZ 5.66 as the GATT server (bluetoothd in the qemu guest)', () => {
  const bz = useBlueZSession('signed-write-bluez', { ours: OURS, slow: SLOW, clean: true, restore: true });
  let adapter: Adapter;
  let app: GuestProgram | undefined;
  let conn: Connection | undefined;

  const bluezInfo = (): Promise<string | undefined> => bz.bluez.info();

  beforeAll(async () => {
    app = await bz.ctl.spawn('signed-gatt-server', ['python3', '-c', SERVER]);
    await app.expect(/REGISTERED/, SLOW);
    await bz.bluez.useAgent('NoInputNoOutput');
    adapter = await bz.openAdapter();
  }, 900_000);

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    // No extra application left; the session then puts BlueZ back (restore: no agent, not bondable, no bond with us).
    await app?.kill().catch(() => undefined);
  });

  it('A: pairing with signing distributes our CSRK; bluetoothd stores it as its RemoteSignatureKey', async () => {
    conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    // bluetoothd's GATT client reads our database before we pair (BlueZPeer.servicesResolved).
    await bz.bluez.servicesResolved();
    expect(await conn.pair({ signing: true, timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    const smp = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0006);
    // Pairing Request (Vol 3, Part H, 3.5.1): initiator keys EncKey | SignKey | LinkKey (0x0d).
    expect(smp[0]).toMatchObject({ dir: 'tx', payload: '0103002910' + '0d0f' });
    // BlueZ's kernel takes our SignKey (initiator key distribution of its Pairing Response).
    const rsp = Buffer.from(smp[1]!.payload, 'hex');
    expect(rsp[0]).toBe(0x02);
    expect(rsp[5]! & 0x04).toBe(0x04);
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral)!;
    expect(bond.localCsrk).toHaveLength(16);
    // Signing Information (3.6.6) carries it.
    expect(smp.filter(r => r.dir === 'tx').map(r => r.payload)).toContain(`0a${hex(bond.localCsrk)}`);
    // bluetoothd files the key from the kernel's New CSRK event on its own time (a fixed 1 s wait before).
    const info = await eventually(bluezInfo, i => /\[RemoteSignatureKey\]/.test(i ?? ''));
    const group = /\[RemoteSignatureKey\]\n([^[]*)/.exec(info ?? '')?.[1];
    expect(group, `BlueZ's info has no RemoteSignatureKey:\n${info}`).toBeDefined();
    expect(group).toContain(`Key=${hex(bond.localCsrk).toUpperCase()}\n`);
    expect(group).toContain('Counter=0\n');
  }, 300_000);

  it('B: bluetoothd 5.66 drops our Signed Write Command (no handler for 0xD2 in its GATT server); a Write Command with the same value reaches the application', async () => {
    const c = conn!;
    const chr = await c.characteristic(SVC, CHR, { timeout: SLOW });
    expect(chr.properties).toContain('authenticatedSignedWrites');
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral)!;
    const seenBefore = app!.output;
    // conn.signedWrite() refuses an encrypted link (data signing is for unencrypted links); bluetoothd,
    // bonded, has its kernel ask for encryption on every new link, so the signed PDU goes over the GATT
    // client directly, with our CSRK and counter 0: the octets a BlueZ >= 5.73 would check.
    await expect(c.signedWrite(chr.handle, Uint8Array.of(0x51))).rejects.toThrow(/encrypted/);
    await c.gatt.signedWrite(chr.handle, Uint8Array.of(0x51, 0x9e), { csrk: bond.localCsrk!, signCounter: 0 });
    // Anything bluetoothd passes on reaches the application at once; a read round trip orders it.
    expect(Array.from(await chr.read({ timeout: SLOW }))).toEqual([0x00]);
    expect(app!.output.slice(seenBefore.length)).not.toMatch(/WRITE/);
    await chr.write(Uint8Array.of(0x57, 0x9e), { withResponse: false, timeout: SLOW });
    expect(Array.from(await chr.read({ timeout: SLOW }))).toEqual([0x57, 0x9e]);
    await app!.expect(/WRITE 579e /, SLOW);
    expect(app!.output.slice(seenBefore.length)).not.toMatch(/WRITE 519e/);
  }, 300_000);

  it('C: tshark decodes our Signed Write Command; its signature is SignCounter ‖ the MAC of our CSRK; no malformed frame', async () => {
    if (conn?.connected) await conn.disconnect();
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral)!;
    const signed = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0004 && r.dir === 'tx' && r.payload.startsWith('d2'));
    expect(signed).toHaveLength(1);
    const pdu = Buffer.from(signed[0]!.payload, 'hex');
    const handle = pdu.readUInt16LE(1);
    expect(pdu.subarray(3, 5)).toEqual(Buffer.from([0x51, 0x9e]));
    expect(hex(pdu.subarray(5))).toBe(hex(attSignature(bond.localCsrk!, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), Uint8Array.of(0x51, 0x9e), 0)));
    expect(pdu.readUInt32LE(5)).toBe(0);
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  }, 60_000);
});
