/**
 * An independent signature source for our GATT SERVER's Signed Write verification (issue 9): BlueZ
 * 5.66's bluetoothd signs a Write Command with its own CSRK, and our server checks and applies it.
 *
 * What bluetoothd 5.66 needs for that (read in its sources, tag 5.66):
 * - src/gatt-client.c characteristic_write_value: WriteValue with type "command" calls
 *   bt_gatt_client_write_without_response(..., chrc->props & BT_GATT_CHRC_PROP_AUTH, ...);
 * - src/shared/gatt-client.c bt_gatt_client_write_without_response: "Only use signed write if
 *   unencrypted": opcode 0xD2 only when bt_att_get_security() is BT_SECURITY_LOW, else 0x52;
 * - src/shared/att.c encode_pdu signs with att->local_sign, which src/device.c device_attach_att sets
 *   from dev->local_csrk, which load_info reads from the info file's [LocalSignatureKey] only when
 *   bluetoothd loads the device at start;
 * - a device with an LTK is bonded and its links are encrypted at once, so the link must have no LTK.
 * So: we pair with BlueZ (signing; its kernel distributes its CSRK to us, our bond's peerCsrk), then in
 * the guest bluetoothd is stopped, the LTK groups are removed from its info file for us (the signature
 * keys stay), bluetoothd is started again; we advertise, bluetoothd connects to us (unencrypted),
 * discovers our database and WriteValue type "command" on our characteristic (read, write without
 * response, authenticated signed writes). Our capture shows 0xD2 with bluetoothd's MAC; our server
 * verifies it against the CSRK BlueZ gave us and onWrite gets it with `signed: true`.
 * At the end the guest's bluetoothd and example applications are started again as the guest's init does.
 *
 * Guest test: run under `flock /tmp/blewire-guest.lock`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { attSignature } from '../../src/gatt/procedures.js';
import { connectWhenAdvertising } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import { eventually } from './helpers/progress.js';
import { tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';

const SVC = '5167ee00-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const CHR = '5167ee01-7b1e-4c0d-9a5e-2f1e0d9c8b00';
const OURS = 'C2:5A:11:22:33:78';
const SLOW = 60_000;
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');


describe('bluetoothd 5.66 signs a Write Command with its CSRK; our GATT server verifies it', () => {
  const bz = useBlueZSession('signed-write-from-bluez', { ours: OURS, slow: SLOW, clean: true });
  let adapter: Adapter;
  let restarted = false;
  const writes: Array<{ value: string; signed: boolean }> = [];

  const infoPath = (): string => `/var/lib/bluetooth/${bz.guest.peripheral}/${OURS}/info`;
  /** BlueZ's info file for us once it holds an LTK group and its own CSRK (or what it holds after 30 s). */
  const filedKeys = (): Promise<string> => eventually(async () => (await bz.bluez.info()) ?? '',
    i => /\[(LongTermKey|PeripheralLongTermKey|SlaveLongTermKey)\]/.test(i) && /\[LocalSignatureKey\]/.test(i));
  /** bluetoothd (and the example applications, which register with it) started again as init.sh does. */
  const restartBluetoothd = (withExamples: boolean): Promise<void> => bz.ctl.restartBluetoothd(withExamples);

  beforeAll(async () => {
    await bz.bluez.useAgent('NoInputNoOutput');
    adapter = await bz.openAdapter();
    await adapter.serve([{ uuid: SVC, characteristics: [
      { uuid: CHR, properties: ['read', 'writeWithoutResponse', 'authenticatedSignedWrites'], value: Uint8Array.of(0),
        onWrite: (value: Uint8Array, w: { signed?: boolean }) => { writes.push({ value: hex(value), signed: w.signed === true }); } },
    ] }]);
  }, 900_000);

  afterAll(async () => {
    await adapter?.close().catch(() => undefined);
    if (bz.ready) {
      await bz.bluez.restore();
      // The last test restores the guest; if it did not run, do it here.
      if (restarted) await restartBluetoothd(true).catch(e => console.log(`signed-write-from-bluez: restoring the guest failed: ${(e as Error).message}`));
    }
  });

  it('pairing with signing: BlueZ distributes its CSRK (our bond peerCsrk = its LocalSignatureKey)', async () => {
    const conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    // bluetoothd's GATT client reads our database before we pair (BlueZPeer.servicesResolved).
    await bz.bluez.servicesResolved();
    expect(await conn.pair({ signing: true, timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true });
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral)!;
    expect(bond.peerCsrk).toHaveLength(16);
    // bluetoothd files the keys from the kernel's key events on its own time (a fixed 1.5 s wait before).
    const info = await filedKeys();
    const local = /\[LocalSignatureKey\]\n([^[]*)/.exec(info)?.[1];
    expect(local, `no LocalSignatureKey in BlueZ's info:\n${info}`).toContain(`Key=${hex(bond.peerCsrk).toUpperCase()}\n`);
    await conn.disconnect();
  }, 300_000);

  it('without its LTK, bluetoothd (restarted) connects to us unencrypted and WriteValue "command" sends 0xD2 signed with its CSRK; our server verifies it and onWrite gets it signed', async () => {
    // bluetoothd done with the link and its keys filed, so nothing rewrites the file after the strip.
    await bz.bluez.disconnected();
    await filedKeys();
    const stripped = await bz.bluez.stripLtks();
    expect(stripped).not.toMatch(/LongTermKey/);
    expect(stripped).toMatch(/\[LocalSignatureKey\]/);
    restarted = true;
    await restartBluetoothd(false);
    const accepted = adapter.accept();
    const set = await adapter.advertise({ name: 'bw-signed', services: [SVC] });
    await bz.bluez.centralOpOk('connect');
    const incoming = (await accepted.next()).value as Connection;
    await accepted.return!();
    expect(incoming.security.encrypted).toBe(false);
    await bz.bluez.centralOpOk('write-command', CHR, '539e');
    // WriteValue returns once bluetoothd has sent it: wait for it to reach our server (a fixed 1 s before).
    await eventually(() => writes, w => w.some(x => x.value === '539e'));
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral)!;
    const signed = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0004 && r.dir === 'rx' && r.payload.startsWith('d2'));
    expect(signed.length, 'bluetoothd sent no Signed Write Command').toBeGreaterThan(0);
    const pdu = Buffer.from(signed.at(-1)!.payload, 'hex');
    const handle = pdu.readUInt16LE(1);
    expect(hex(pdu.subarray(3, 5))).toBe('539e');
    const counter = pdu.readUInt32LE(5);
    expect(hex(pdu.subarray(5))).toBe(hex(attSignature(bond.peerCsrk!, Uint8Array.of(0xd2, handle & 0xff, handle >> 8), Uint8Array.of(0x53, 0x9e), counter)));
    expect(writes).toContainEqual({ value: '539e', signed: true });
    expect(bond.peerSignCounter).toBe(counter + 1); // the lowest it accepts next
    console.log(`signed-write-from-bluez: bluetoothd's 0xD2 on handle 0x${handle.toString(16)}, SignCounter ${counter}, verified and applied`);
    await bz.bluez.centralOpOk('disconnect').catch(() => undefined);
    await set.stop().catch(() => undefined);
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  }, 300_000);

  it('the guest is as other files expect it: bluetoothd again with the example GATT server and advertisement registered, no bond with us', async () => {
    await bz.bluez.useAgent(undefined);
    await bz.bluez.removeDevice();
    await restartBluetoothd(true);
    restarted = false;
    expect(await bz.ctl.run(['test', '-e', infoPath()], SLOW)).toMatchObject({ code: 1 });
    const ad = await adapter.find({ address: bz.guest.peripheral, active: false, timeout: 30_000 });
    expect(ad, 'BlueZ advertises again').toBeDefined();
  }, 300_000);
});
