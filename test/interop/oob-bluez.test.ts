/**
 * LE Secure Connections OOB pairing (Vol 3, Part H, 2.3.5.6.4) between blewire, as central, and BlueZ
 * 5.66 as peripheral (its kernel is the SMP responder) in the qemu guest, with our OOB data
 * (`conn.localOobData()`) carried to BlueZ by its own tool: `btmgmt remote-oob -t 2 -H <c> -R <r> <our
 * address>` (mgmt Add Remote Out Of Band Data, 0x0014, LE random address, P-256 hash and randomizer,
 * least significant octet first).
 *
 * The other direction is not possible in this guest: BlueZ gives its LE OOB data only through mgmt Read
 * Local Out Of Band Extended Data (0x003B, LE address types; `btmgmt le-oob`), and Linux (since 5.15,
 * mgmt.c read_local_oob_ext_data: "if (!status && !lmp_ssp_capable(hdev)) status = NOT_SUPPORTED")
 * refuses it on a controller without the BR/EDR Secure Simple Pairing feature, which the guest's
 * LE-only btvirt controller (`btvirt -L`) is. Case A pins that refusal, so a guest with a dual-mode
 * controller shows up here as the place to add BlueZ's data to us.
 *
 * What proves it, from the wire (tshark) and from BlueZ:
 *   A  `btmgmt le-oob`: Read Local OOB Ext Data failed, 0x0c Not Supported (see above)
 *   B  our data to BlueZ: our Pairing Request's OOB flag clear, BlueZ's Response's set; no Pairing
 *      Confirm crosses (OOB, 2.3.5.6.4); level 4, BlueZ stores an authenticated P-256 key (type 3) = ours;
 *      the c we gave is f4(PKa, PKa, ra, 0) of the public key we sent on the wire
 *   C  the same with one bit of our c changed at BlueZ: BlueZ's kernel checks Ca against our public key
 *      and refuses (Pairing Failed 0x04 from BlueZ), no bond on either side
 *   D  tshark: no malformed frame
 * afterAll puts BlueZ back (no agent, SC on, not bondable, no bond).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { SmpError } from '../../src/errors.js';
import type { PairingProgress } from '../../src/link/pairing.js';
import { f4 } from '../../src/smp/crypto.js';
import { connectWhenAdvertising, l2capFrom, lastFrame } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import { Timings } from './helpers/timings.js';
import { tsharkMalformed } from './helpers/tshark.js';

/** Our static random address: BlueZ keeps its bond and our OOB data under it (LE random, type 2). */
const OURS = 'C5:5A:11:22:33:77';
const SLOW = 90_000;
const SC_AUTHENTICATED = /Authenticated=3\n/;

const timings = new Timings();
const figures: string[] = [];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const rev = (b: Uint8Array): Uint8Array => Uint8Array.from(b).reverse();
const fromHex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const flip = (b: Uint8Array): Uint8Array => b.map((x, i) => (i === 5 ? x ^ 0x10 : x));

describe('LE Secure Connections OOB with BlueZ 5.66 as peripheral (btmgmt remote-oob in the qemu guest)', () => {
  const bz = useBlueZSession('oob-bluez', { ours: OURS, slow: SLOW, clean: true, restore: true });
  let adapter: Adapter;
  let conn: Connection | undefined;
  let seen: PairingProgress[] = [];

  /** Gives BlueZ's kernel our OOB data with btmgmt (which prints its answer and then waits: stopped after 10 s). */
  const giveBluez = async (ours: { r: Uint8Array; c: Uint8Array }): Promise<void> => {
    const r = await bz.ctl.run(['sh', '-c', `timeout 10 btmgmt --index 0 remote-oob -t 2 -H ${hex(rev(ours.c))} -R ${hex(rev(ours.r))} ${OURS} 2>&1`], SLOW);
    expect(r.stdout).toContain(`Remote OOB data added for ${OURS} (2)`);
  };
  const fresh = async (): Promise<Connection> => {
    if (conn?.connected) await conn.disconnect();
    await bz.bluez.forget();
    await adapter.removeBond(bz.guest.peripheral).catch(() => false);
    conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    // bluetoothd's GATT client reads our database before we pair (BlueZPeer.servicesResolved).
    await bz.bluez.servicesResolved();
    seen = [];
    conn.on('pairing', p => seen.push(p));
    return conn;
  };
  const smpSince = (after: number): Promise<Array<{ dir: 'tx' | 'rx'; pdu: string }>> => l2capFrom(bz.capture, after, 0x0006);

  beforeAll(async () => {
    await bz.bluez.useAgent('NoInputNoOutput');
    adapter = await bz.openAdapter();
  }, 900_000);

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    console.log(['oob-bluez timings (wall; the guest is qemu TCG on a shared 2-core host):', ...timings.lines(),
      'oob-bluez figures:', ...figures.map(f => `  ${f}`)].join('\n'));
  });

  /** The pairing went by OOB: flags as given, Public Keys, Randoms and DHKey Checks only (no Confirm). */
  const expectOobOnTheWire = (smp: Array<{ dir: 'tx' | 'rx'; pdu: string }>, ourFlag: string, theirFlag: string): void => {
    expect(smp[0]!.dir).toBe('tx');
    expect(smp[0]!.pdu.slice(0, 6)).toBe(`0103${ourFlag}`);
    expect(smp[1]!.dir).toBe('rx');
    expect(smp[1]!.pdu.slice(0, 2)).toBe('02');
    expect(smp[1]!.pdu.slice(4, 6)).toBe(theirFlag);
    // SC (the SC bit in both AuthReqs, 3.5.1/3.5.2).
    expect(Number.parseInt(smp[0]!.pdu.slice(6, 8), 16) & 0x08).toBe(0x08);
    expect(Number.parseInt(smp[1]!.pdu.slice(6, 8), 16) & 0x08).toBe(0x08);
    expect(smp.slice(2, 8).map(r => `${r.dir} ${r.pdu.slice(0, 2)}`)).toEqual(['tx 0c', 'rx 0c', 'tx 04', 'rx 04', 'tx 0d', 'rx 0d']);
    expect(smp.filter(r => r.pdu.startsWith('03'))).toEqual([]);
  };

  const expectPaired = async (what: string, run: () => Promise<unknown>): Promise<void> => {
    const state = await timings.timed(what, run);
    expect(state).toMatchObject({ level: 4, encrypted: true, keySize: 16, authenticated: true, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'oob', authenticated: true, secureConnections: true });
    expect(await bz.bluez.storesOurKey(adapter)).toMatch(SC_AUTHENTICATED);
  };

  it('A: BlueZ cannot give its LE OOB data on this controller: btmgmt le-oob is refused with Not Supported (0x0c)', async () => {
    const r = await bz.ctl.run(['sh', '-c', 'timeout 10 btmgmt --index 0 le-oob 2>&1'], SLOW);
    expect(r.stdout).toMatch(/Read Local OOB Ext Data failed with status 0x0c \(Not Supported\)/);
    // The controller has no BR/EDR (so no Secure Simple Pairing): what the kernel's check reads.
    const info = await bz.bluez.btmgmt('info');
    expect(info).toMatch(/supported settings: .*\ble\b/);
    expect(info).not.toMatch(/supported settings: .*\bssp\b/);
    figures.push(`A: ${r.stdout.replace(/\x1b\[[0-9;]*m/g, '').trim()}`);
  });

  it('B: our OOB data to BlueZ (conn.localOobData() through Add Remote OOB Data): BlueZ\'s response says OOB present; authenticated', async () => {
    const c = await fresh();
    const ours = c.localOobData();
    await giveBluez(ours);
    const before = await lastFrame(bz.capture);
    await expectPaired('SC OOB, our data given to BlueZ (pair() call)', () => c.pair({ timeout: SLOW }));
    const smp = await smpSince(before);
    expectOobOnTheWire(smp, '00', '01');
    // The c BlueZ checked is f4(PKa, PKa, ra, 0) of the public key we sent (LSO first on the wire).
    const pka = rev(fromHex(smp.find(r => r.dir === 'tx' && r.pdu.startsWith('0c'))!.pdu.slice(2, 66)));
    expect(hex(f4(pka, pka, ours.r, 0))).toBe(hex(ours.c));
    figures.push(`B: request ${smp[0]!.pdu}, BlueZ's response ${smp[1]!.pdu}`);
  });

  it('C: our c with one bit changed at BlueZ: BlueZ\'s kernel checks it against our public key and refuses (0x04 from BlueZ)', async () => {
    const c = await fresh();
    const ours = c.localOobData();
    await giveBluez({ r: ours.r, c: flip(ours.c) });
    const before = await lastFrame(bz.capture);
    const err = await c.pair({ timeout: SLOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmpError);
    expect(err).toMatchObject({ reason: 0x04, by: 'peer' });
    const smp = await smpSince(before);
    expect(smp[1]!.pdu.slice(4, 6)).toBe('01');
    expect(smp.filter(r => r.pdu.startsWith('05'))).toEqual([{ dir: 'rx', pdu: '0504' }]);
    // BlueZ keeps its device entry for us ([General]) but no key; we keep no bond.
    expect(await bz.bluez.info() ?? '').not.toMatch(/LongTermKey/);
    expect(await adapter.bonds()).toEqual([]);
  });

  it('D: tshark finds no malformed frame in the recording', async () => {
    if (conn?.connected) await conn.disconnect();
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  });
});
