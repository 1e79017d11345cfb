/**
 * BlueZ 5.66 with LE privacy on (`btmgmt privacy on`, in the qemu guest) as the peripheral: its kernel
 * advertises from resolvable private addresses made from an IRK we never see until bonding. blewire
 * (on the host, over the bridged H4 socket to the guest's btvirt) hears a stranger under an RPA, connects
 * and pairs (SC Just Works with simple-agent at NoInputNoOutput); BlueZ distributes its IRK and identity
 * address, and our bond keeps them: the RPA BlueZ used resolves with that IRK (ah, Vol 3, Part H,
 * 2.2.2), the bond is under BlueZ's public identity. BlueZ then power-cycles its adapter, which makes its
 * kernel take a new RPA; blewire recognises the device under it (the scan report names the identity,
 * bonded), connects by identity and re-encrypts from the bond with no SMP PDU (tshark reads the capture).
 *
 * Guest test: run under `flock /tmp/blewire-guest.lock`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { isResolvablePrivateAddress, rpaMatchesIrk } from '../../src/gap/privacy.js';
import { lastFrame, retryOn0x3E } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import { tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';

/** Our static random address: BlueZ keeps its bond with us under it. */
const OURS = 'C2:5A:11:22:33:55';
const ADV_NAME = 'TestAdvertisement'; // example-advertisement's LocalName
const SLOW = 60_000;

describe('BlueZ 5.66 with privacy on: blewire bonds with it under an RPA and knows it again after its RPA changes', () => {
  const bz = useBlueZSession('privacy-bluez', { ours: OURS, slow: SLOW, clean: true, restore: true });
  let adapter: Adapter;
  let conn: Connection | undefined;
  let firstRpa = '';

  const btmgmt = (...args: string[]): Promise<string> => bz.bluez.btmgmt(...args);
  const powerCycle = (...between: string[][]): Promise<void> => bz.bluez.powerCycle(...between);
  const mark = (): Promise<number> => lastFrame(bz.capture);
  /** BlueZ's advertising under `filter`, connected (retried on btvirt's 0x3E). */
  const connectTo = (target: () => Promise<{ address: string; type: 'public' | 'random' }>): Promise<Connection> =>
    retryOn0x3E(async () => adapter.connect(await target(), { timeout: 20_000 }));

  beforeAll(async () => {
    await powerCycle(['privacy', 'on']);
    await bz.bluez.useAgent('NoInputNoOutput');
    adapter = await bz.openAdapter();
  }, 900_000);

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    // Leave BlueZ as other files expect it: privacy off here; the session's restore then takes our
    // agent, bondable and bond with us away (BlueZPeer.restore).
    if (bz.ready) await powerCycle(['privacy', 'off']).catch(() => undefined);
  });

  it('BlueZ advertises from an RPA, not its identity; bonding gives us its IRK and identity, and that IRK makes the RPA it used', async () => {
    const ad = await adapter.find({ name: ADV_NAME, timeout: SLOW });
    expect(ad, 'BlueZ is not advertising').toBeDefined();
    expect(ad!.addressType).toBe('random');
    expect(isResolvablePrivateAddress(ad!.address)).toBe(true);
    expect(ad!.address).not.toBe(bz.guest.peripheral);
    expect(ad!.identity).toBeUndefined(); // a stranger before bonding
    conn = await connectTo(async () => {
      const again = await adapter.find({ name: ADV_NAME, timeout: SLOW });
      return { address: again!.address, type: 'random' };
    });
    firstRpa = conn.address;
    expect(isResolvablePrivateAddress(firstRpa)).toBe(true);
    // bluetoothd's GATT client has read our database before we pair: else the pairing arms its reverse
    // service discovery, which connects back to us after we leave (BlueZPeer.servicesResolved).
    await bz.bluez.servicesResolved();
    expect(await conn.pair({ timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true });
    expect(conn.identity).toEqual({ address: bz.guest.peripheral, addressType: 'public' });
    const bond = (await adapter.bonds()).find(b => b.identity.address === bz.guest.peripheral);
    expect(bond?.peerIrk, 'BlueZ distributed no IRK').toBeDefined();
    expect(rpaMatchesIrk(bond!.peerIrk!, firstRpa)).toBe(true);
    // The SMP PDUs as tshark reassembles them: BlueZ's Identity Information carries the IRK we keep.
    const smp = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0006 && r.dir === 'rx').map(r => r.payload);
    expect(smp).toContain('08' + Buffer.from(bond!.peerIrk!).toString('hex'));
    await new Promise(r => setTimeout(r, 500)); // our key PDUs reach BlueZ
    await conn.disconnect();
  }, 300_000);

  it('after BlueZ takes a new RPA, its report names the identity (bonded); connect by identity re-encrypts from the bond, no pairing (no SMP PDU from us)', async () => {
    await powerCycle();
    const from = await mark();
    const ad = await adapter.find({ address: bz.guest.peripheral, timeout: SLOW });
    expect(ad, 'BlueZ was not heard under an RPA its IRK resolves').toBeDefined();
    expect(isResolvablePrivateAddress(ad!.address)).toBe(true);
    expect(ad!.address).not.toBe(firstRpa);
    expect(ad!.identity).toEqual({ address: bz.guest.peripheral, addressType: 'public' });
    expect(ad!.bonded).toBe(true);
    conn = await connectTo(async () => ({ address: bz.guest.peripheral, type: 'public' }));
    expect(conn.address).not.toBe(firstRpa);
    expect(isResolvablePrivateAddress(conn.address)).toBe(true);
    expect(conn.identity).toEqual({ address: bz.guest.peripheral, addressType: 'public' });
    expect(await conn.encrypt({ timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true });
    // No pairing: nothing of SMP from us; from BlueZ at most its Security Request (0x0B, Vol 3, Part H,
    // 3.6.7: a bonded peripheral asks the central to encrypt), which we answered with the bond's LTK.
    const smp = (await tsharkL2cap(bz.capture)).filter(r => r.cid === 0x0006 && r.frame > from);
    expect(smp.filter(r => r.dir === 'tx')).toEqual([]);
    for (const r of smp) expect(r.payload.slice(0, 2), r.payload).toBe('0b');
    await conn.disconnect();
  }, 300_000);

  it('tshark finds no malformed packet in the capture', async () => {
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  }, 60_000);
});
