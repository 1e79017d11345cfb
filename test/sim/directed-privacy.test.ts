// Directed advertising to a bonded peer that uses privacy (issue 9), on simulated controllers sharing
// one air. The peer's identity is what the application names; what goes on the air must be an address
// the peer's controller accepts as its own:
// - LL Privacy with the peer in the resolving list: the host gives the controller the identity
//   (Peer_Address_Type 0x00 / 0x01, Peer_Address the identity) with Own_Address_Type 0x02 / 0x03, and
//   the link layer makes TargetA, an RPA from the peer's IRK, anew each RPA timeout (Vol 4, Part E,
//   7.8.5 / 7.8.53; Vol 6, Part B, 6.4). The peer's controller resolves TargetA with the local IRK of
//   our entry (6.3 / 6.5). This is what Zephyr does (BT_LE_ADV_OPT_DIR_ADDR_RPA: Own_Address_Type
//   RPA_OR_RANDOM, the identity as peer; refused without the LL Privacy feature).
// - No LL Privacy (btvirt): the host aims at the RPA it last saw the peer under (Peer_Address_Type
//   0x01), as BlueZ's kernel does in hci_connect_le (the identity swapped for the IRK's last resolved
//   RPA). It works until the peer rotates its address out of our sight; then the peer no longer hears
//   us, which the last test shows.
// The octets of LE Set Extended Advertising Parameters are read from the host's transport; TargetA is
// read from the air (the simulated controller's advertisers) and checked with the toolbox's ah.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { toHex } from '../../src/bytes/hex.js';
import { decodeHciPacket, type CommandPacket } from '../../src/hci/packets.js';
import { ah } from '../../src/smp/crypto.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import type { SimControllerOptions } from '../../src/sim/types.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';
import { TimeoutError } from '../../src/errors.js';

const ROTATE_S = 120;

function tap(inner: HciTransport) {
  const raw: Uint8Array[] = [];
  const transport: HciTransport = {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: b => { if (b[0] === 0x01) raw.push(Uint8Array.from(b)); inner.send(b); },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({ packet: b => r.packet(b), closed: e => r.closed(e) }),
    close: () => inner.close(),
  };
  const commands = (): CommandPacket[] => raw.map(b => decodeHciPacket(b) as CommandPacket);
  return { transport, raw, commands };
}

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0).reverse()) await a.close().catch(() => undefined);
});

async function host(air: SimAir, name: string, controller: SimControllerOptions, privacy: boolean) {
  const sim = createSimulator({ name, peripherals: [], controller }, { air });
  const t = tap(sim.transport);
  const adapter = await Adapter.open({ transport: t.transport, bonds: new MemoryBondStore(),
    ...(privacy ? { privacy: { rotateSeconds: ROTATE_S } } : {}) });
  open.push(adapter);
  return { adapter, sim, ...t };
}

function resolvesWith(irk: Uint8Array, address: string): boolean {
  const o = address.split(':').map(h => parseInt(h, 16));
  if (o[0]! >> 6 !== 0b01) return false;
  return toHex(ah(Uint8Array.from(irk).reverse(), Uint8Array.from(o.slice(0, 3)))) === toHex(Uint8Array.from(o.slice(3)));
}

/** Address "AA:BB:..:FF" as HCI carries it (least significant octet first). */
const le = (address: string): string => address.split(':').reverse().join('').toLowerCase();

/** The last LE Set Extended Advertising Parameters (0x2036) the host sent: own type, peer type, peer address octets. */
function lastExtParams(raw: Uint8Array[]): { own: number; peerType: number; peer: string; props: number } {
  const p = raw.filter(b => (b[1]! | (b[2]! << 8)) === 0x2036).at(-1)!;
  return { props: p[5]! | (p[6]! << 8), own: p[14]!, peerType: p[15]!, peer: toHex(p.subarray(16, 22)) };
}

/** A private peripheral and a private central bond (the central pairs), then the link ends. */
async function bonded(air: SimAir, llPrivacy: boolean) {
  const p = await host(air, 'wearable', { llPrivacy }, true);
  const c = await host(air, 'phone', { llPrivacy }, true);
  const accepted = p.adapter.accept();
  const undirected = await p.adapter.advertise({ name: 'wearable', resume: false });
  const ad = await c.adapter.find({ name: 'wearable', timeout: 5000 });
  const conn = await c.adapter.connect(ad!, { timeout: 5000 });
  const incoming = (await accepted.next()).value as Connection;
  expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true });
  await air.clock.delay(100); // the last key PDUs reach the peripheral
  const seenAs = incoming.address;
  await conn.disconnect();
  await incoming.closed; // in virtual time (a real-time poll would let the air's clock run through many RPA periods)
  await undirected.stop().catch(() => undefined);
  const phoneId = c.adapter.privacy!.identity, wearableId = p.adapter.privacy!.identity;
  expect((await p.adapter.bonds()).map(b => b.identity.address)).toEqual([phoneId.address]);
  return { p, c, phoneId, wearableId, seenAs };
}

describe('directed advertising to a bonded private peer', () => {
  test('LL Privacy: the identity goes to the controller with Own_Address_Type 0x03; TargetA is an RPA of the peer\'s IRK, new each RPA timeout; the peer connects, a stranger hears nothing', async () => {
    const air = new SimAir();
    const { p, c, phoneId, wearableId } = await bonded(air, true);
    const stranger = await host(air, 'stranger', {}, false);
    const set = await p.adapter.advertise({ directed: { address: phoneId.address, addressType: phoneId.addressType } });
    expect(set.directedTarget).toEqual({ by: 'controller', addressType: phoneId.addressType, address: phoneId.address });
    // Event properties 0x15 (connectable, directed, legacy), Own_Address_Type 0x03, the identity as Peer_Address.
    expect(lastExtParams(p.raw)).toEqual({ props: 0x15, own: 0x03, peerType: phoneId.addressType === 'public' ? 0 : 1, peer: le(phoneId.address) });
    const onAir = () => p.sim.controller.hostAdvertisers().map(h => h.directedTo).filter((x): x is string => x !== undefined);
    const [targetA] = onAir() as [string];
    expect(targetA).not.toBe(phoneId.address);
    expect(targetA).not.toBe(c.adapter.privacy!.address); // not the phone's host RPA either: the wearable's controller made it
    expect(resolvesWith(c.adapter.privacy!.irk, targetA)).toBe(true);
    expect(resolvesWith(p.adapter.privacy!.irk, targetA)).toBe(false);
    // One RPA timeout later the controller aims at a new RPA of the phone.
    await air.clock.delay(ROTATE_S * 1000 + 10);
    const [next] = onAir() as [string];
    expect(next).not.toBe(targetA);
    expect(resolvesWith(c.adapter.privacy!.irk, next)).toBe(true);

    // A stranger's scanner hears no directed PDU of the wearable.
    const heard: string[] = [];
    const ac = new AbortController();
    const t = air.clock.setTimeout(() => ac.abort(), 1000);
    try { for await (const ad of stranger.adapter.scan({ duplicates: true, signal: ac.signal })) heard.push(ad.address); } catch { /* aborted */ }
    air.clock.clearTimeout(t);
    expect(heard).toEqual([]);

    // The phone connects to the wearable by identity and re-encrypts from the bond.
    const back = await c.adapter.connect({ address: wearableId.address, type: wearableId.addressType }, { timeout: 5000 });
    expect(back.identity).toEqual(wearableId);
    expect(await back.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    await back.disconnect();
  });

  test('no LL Privacy (host resolution): Peer_Address is the RPA the host last saw the peer under; the peer connects', async () => {
    const air = new SimAir();
    const { p, c, phoneId, wearableId, seenAs } = await bonded(air, false);
    expect(p.sim.controller.resolvingIdentities).toContain(`${phoneId.addressType === 'public' ? 0 : 1}/${phoneId.address}`); // listed, but the controller does not resolve
    const phoneRpa = c.adapter.privacy!.address;
    expect(seenAs).toBe(phoneRpa);
    const set = await p.adapter.advertise({ directed: { address: phoneId.address, addressType: phoneId.addressType } });
    expect(set.directedTarget).toEqual({ by: 'host', addressType: 'random', address: phoneRpa });
    expect(lastExtParams(p.raw)).toEqual({ props: 0x15, own: 0x01, peerType: 0x01, peer: le(phoneRpa) });
    expect(p.sim.controller.hostAdvertisers().map(h => h.directedTo).filter(Boolean)).toEqual([phoneRpa]);
    const back = await c.adapter.connect({ address: wearableId.address, type: wearableId.addressType }, { timeout: 5000 });
    expect(back.identity).toEqual(wearableId);
    expect(await back.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    await back.disconnect();
  });

  test('no LL Privacy: the RPA seen last goes stale when the peer rotates unseen (the peer hears nothing); the identity without a bond is used as given', async () => {
    const air = new SimAir();
    const { p, c, phoneId, wearableId } = await bonded(air, false);
    const old = c.adapter.privacy!.address;
    await c.adapter.privacy!.rotate();
    expect(c.adapter.privacy!.address).not.toBe(old);
    const set = await p.adapter.advertise({ directed: { address: phoneId.address, addressType: phoneId.addressType } });
    expect(set.directedTarget?.address).toBe(old);
    await expect(c.adapter.connect({ address: wearableId.address, type: wearableId.addressType }, { timeout: 2000 })).rejects.toBeInstanceOf(TimeoutError);
    await set.stop();
    // Not a bonded identity: the address goes to the controller as given.
    const other = await p.adapter.advertise({ directed: { address: 'C0:11:22:33:44:55', addressType: 'random' } });
    expect(other.directedTarget).toEqual({ by: 'identity', addressType: 'random', address: 'C0:11:22:33:44:55' });
    expect(lastExtParams(p.raw)).toMatchObject({ own: 0x01, peerType: 0x01, peer: le('C0:11:22:33:44:55') });
  });
});
