// Our advertising RPA made by the controller (Core Vol 6, Part B, 6.4 and 1.3.2.2; Vol 4, Part E,
// 7.8.38-7.8.45 / 7.8.53), on simulated controllers sharing one air. A host opened with `privacy` on a
// controller that claims LL Privacy puts its own entry in the resolving list (peer identity public
// 00:00:00:00:00:00, peer IRK zero, Local_IRK ours), sets the RPA timeout to its rotation period and
// advertises with Own_Address_Type 0x03 and that zero Peer_Address: the controller advertises from RPAs
// of our IRK and replaces them every timeout by itself. What another host hears is checked against
// what our host ever sent: no address heard is one our host gave the controller (LE Set Random Address,
// LE Set Advertising Set Random Address), every one resolves with our IRK (ah computed here with the
// toolbox), and LE Read Local Resolvable Address (7.8.43) names the current one. A central that bonds
// with us gets our IRK and identity and knows us by identity under the controller's next RPA. On a
// controller without LL Privacy the host's RPA is what the air hears (the btvirt case).
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { toHex } from '../../src/bytes/hex.js';
import type { Advertisement } from '../../src/gap/scanner.js';
import { decodeHciPacket, type CommandPacket, type HciPacket } from '../../src/hci/packets.js';
import { ah } from '../../src/smp/crypto.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import type { SimControllerOptions } from '../../src/sim/types.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';

const ROTATE_S = 60;

/** Every HCI command a host sent and event it received, decoded, plus the raw commands. */
function tap(inner: HciTransport) {
  const log: Array<{ dir: 'tx' | 'rx'; p: HciPacket }> = [];
  const raw: Uint8Array[] = [];
  const transport: HciTransport = {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: b => {
      if (b[0] === 0x01) { raw.push(Uint8Array.from(b)); log.push({ dir: 'tx', p: decodeHciPacket(b) }); }
      inner.send(b);
    },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({
      packet: b => { if (b[0] === 0x04) log.push({ dir: 'rx', p: decodeHciPacket(b) }); r.packet(b); },
      closed: e => r.closed(e),
    }),
    close: () => inner.close(),
  };
  const commands = (): CommandPacket[] => log.filter(e => e.dir === 'tx').map(e => e.p as CommandPacket);
  return { transport, log, raw, commands };
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

/** The address resolves under the IRK (SMP order) with the toolbox's ah (Vol 3, Part H, 2.2.2), apart from the resolver. */
function resolvesWith(irk: Uint8Array, address: string): boolean {
  const o = address.split(':').map(h => parseInt(h, 16));
  if (o[0]! >> 6 !== 0b01) return false;
  return toHex(ah(Uint8Array.from(irk).reverse(), Uint8Array.from(o.slice(0, 3)))) === toHex(Uint8Array.from(o.slice(3)));
}

/** Every address our host handed the controller: LE Set Random Address (7.8.4), LE Set Advertising Set Random Address (7.8.52). */
function hostAddresses(commands: CommandPacket[]): Set<string> {
  const out = new Set<string>();
  for (const c of commands) {
    if (c.kind === 'leSetRandomAddress' || c.kind === 'leSetAdvertisingSetRandomAddress') out.add((c as unknown as { randomAddress: string }).randomAddress.toUpperCase());
  }
  return out;
}

/** Advertisements named `name` that `a` hears in `ms` of virtual time. */
async function hear(a: Adapter, air: SimAir, name: string, ms = 1000): Promise<Advertisement[]> {
  const ads: Advertisement[] = [];
  const ac = new AbortController();
  const t = air.clock.setTimeout(() => ac.abort(), ms);
  try {
    for await (const ad of a.scan({ duplicates: true, signal: ac.signal })) if (ad.name === name) ads.push(ad);
  } catch { /* aborted */ }
  air.clock.clearTimeout(t);
  return ads;
}

const addresses = (ads: Advertisement[]): string[] => [...new Set(ads.map(a => a.address))];

describe('a controller with LL Privacy makes our advertising RPA', () => {
  test('our entry in the list, the RPA timeout, Own_Address_Type 0x03 with Peer_Address zero; the air hears RPAs of our IRK our host never sent, a new one each timeout', async () => {
    const air = new SimAir();
    const a = await host(air, 'private-advertiser', {}, true);
    const b = await host(air, 'listener', { llPrivacy: false }, false);
    const irk = a.adapter.privacy!.irk;
    // The list at open (7.8.44, 7.8.40, 7.8.38, 7.8.45, 7.8.44), as the octets the host sent: resolution
    // off, clear, our entry (public 00:00:00:00:00:00, peer IRK zero, Local_IRK ours), 60 s, on.
    const listOps = new Set([0x2027, 0x2029, 0x202d, 0x202e, 0x204e]);
    expect(a.raw.filter(p => listOps.has(p[1]! | (p[2]! << 8))).map(p => toHex(p))).toEqual([
      '012d200100', '01292000', `01272027${'00'.repeat(7)}${'00'.repeat(16)}${toHex(irk)}`, '012e20023c00', '012d200101']);
    expect(a.sim.controller.resolvingIdentities).toEqual(['0/00:00:00:00:00:00']);
    expect(a.adapter.privacy!.advertisingRpa).toBe('controller');

    const set = await a.adapter.advertise({ name: 'veiled' });
    expect(a.commands().find(c => c.kind === 'leSetExtendedAdvertisingParameters'))
      .toMatchObject({ ownAddressType: 3, peerAddressType: 0, peerAddress: '00:00:00:00:00:00' });
    const first = addresses(await hear(b.adapter, air, 'veiled'));
    expect(first).toHaveLength(1);
    const [x] = first as [string];
    expect(resolvesWith(irk, x)).toBe(true);
    expect(resolvesWith(new Uint8Array(16).fill(0x5a), x)).toBe(false);
    expect(hostAddresses(a.commands()).has(x)).toBe(false); // the controller made it
    expect(x).not.toBe(a.adapter.privacy!.address);
    expect(await a.adapter.privacy!.advertisingAddress()).toBe(x); // LE Read Local Resolvable Address

    // One RPA timeout later (virtual time) the controller advertises from a new RPA of our IRK.
    await air.clock.delay(ROTATE_S * 1000);
    const later = addresses(await hear(b.adapter, air, 'veiled'));
    expect(later).toHaveLength(1);
    const [y] = later as [string];
    expect(y).not.toBe(x);
    expect(resolvesWith(irk, y)).toBe(true);
    expect(hostAddresses(a.commands()).has(y)).toBe(false);
    expect(await a.adapter.privacy!.advertisingAddress()).toBe(y);
    expect(set.enabled).toBe(true);
    // The controller refused nothing.
    const refused = a.log.filter(e => e.dir === 'rx' && (e.p as { kind?: string; status?: number }).kind === 'commandComplete' &&
      ((e.p as { returnParameters?: { status?: number } }).returnParameters?.status ?? 0) !== 0);
    expect(refused).toEqual([]);
  });

  test('a central bonds with us under the controller\'s RPA (LE Enhanced Connection Complete names it; SC checks use it), gets our IRK and identity, and knows us by identity under the next one', async () => {
    const air = new SimAir();
    const a = await host(air, 'private-peripheral', {}, true);
    const b = await host(air, 'central', { llPrivacy: false }, false);
    const accepted = a.adapter.accept();
    await a.adapter.advertise({ name: 'veiled' });
    const ad = await b.adapter.find({ name: 'veiled', timeout: 5000 });
    expect(ad).toBeDefined();
    const rpa = ad!.address;
    expect(ad!.identity).toBeUndefined(); // a stranger before bonding
    const conn = await b.adapter.connect(ad!, { timeout: 5000 });
    const incoming = (await accepted.next()).value as Connection;
    // Our side's LE Enhanced Connection Complete (7.7.65.10): Local_Resolvable_Private_Address is the RPA the central connected to.
    const cc = a.log.find(e => e.dir === 'rx' && /^leEnhancedConnectionComplete/.test((e.p as { kind?: string }).kind ?? ''))!.p as unknown as
      { role: number; localResolvablePrivateAddress: string };
    expect(cc.role).toBe(1);
    expect(cc.localResolvablePrivateAddress).toBe(rpa);
    // SC Just Works: f5 / f6 take both addresses as each side saw them, so the DHKey checks pass only
    // if our side used the controller's RPA as its own.
    expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    expect(conn.identity).toEqual(a.adapter.privacy!.identity);
    const bond = (await b.adapter.bonds())[0]!;
    expect(toHex(bond.peerIrk!)).toBe(toHex(a.adapter.privacy!.irk));
    await air.clock.delay(100); // the last key PDUs reach A
    await conn.disconnect();
    await expect.poll(() => incoming.connected).toBe(false);

    await air.clock.delay(ROTATE_S * 1000);
    const again = await b.adapter.find({ name: 'veiled', timeout: 5000 });
    expect(again!.address).not.toBe(rpa);
    expect(hostAddresses(a.commands()).has(again!.address)).toBe(false);
    expect(again!.identity).toEqual(a.adapter.privacy!.identity);
    expect(again!.bonded).toBe(true);
    const back = await b.adapter.connect(a.adapter.privacy!.identity.addressType === 'public'
      ? { address: a.adapter.privacy!.identity.address, type: 'public' } : { address: a.adapter.privacy!.identity.address, type: 'random' }, { timeout: 5000 });
    expect(back.address).toBe(again!.address);
    expect(await back.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    await back.disconnect();
  });
});

describe('a controller without LL Privacy: the host makes the advertising RPA', () => {
  test('no entry of ours in the list, Own_Address_Type 0x01; the air hears the host\'s RPA and then its next one', async () => {
    const air = new SimAir();
    const a = await host(air, 'host-rpa', { llPrivacy: false }, true);
    const b = await host(air, 'listener', { llPrivacy: false }, false);
    expect(a.adapter.privacy!.advertisingRpa).toBe('host');
    expect(a.sim.controller.resolvingIdentities).toEqual([]);
    const set = await a.adapter.advertise({ name: 'plain' });
    expect(a.commands().find(c => c.kind === 'leSetExtendedAdvertisingParameters')).toMatchObject({ ownAddressType: 1 });
    // The extended set's own RPA (7.8.52), which the host made and sent.
    const first = set.address!;
    expect(first).not.toBe(a.adapter.privacy!.address);
    expect(hostAddresses(a.commands()).has(first)).toBe(true);
    expect(addresses(await hear(b.adapter, air, 'plain'))).toEqual([first]);
    expect(await a.adapter.privacy!.advertisingAddress(set)).toBe(first);
    await air.clock.delay(ROTATE_S * 1000);
    const next = set.address!;
    expect(next).not.toBe(first);
    expect(hostAddresses(a.commands()).has(next)).toBe(true);
    expect(addresses(await hear(b.adapter, air, 'plain'))).toEqual([next]);
    expect(resolvesWith(a.adapter.privacy!.irk, next)).toBe(true);
  });
});

/** LE Set Advertising Set Random Address (0x2035) octets the host sent: handle → addresses in order. */
function setAddressOctets(raw: Uint8Array[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const p of raw) {
    if ((p[1]! | (p[2]! << 8)) !== 0x2035) continue;
    const address = [...p.subarray(5, 11)].reverse().map(x => x.toString(16).padStart(2, '0')).join(':').toUpperCase();
    out.set(p[4]!, [...(out.get(p[4]!) ?? []), address]);
  }
  return out;
}

describe('each extended advertising set has an RPA of its own (Vol 4, Part E, 7.8.52)', () => {
  test("host RPAs: three sets, three addresses of our IRK on the wire and on the air, none the adapter's; all new after a rotation and still distinct; a central pairs with the second set (SC checks use that set's address)", async () => {
    const air = new SimAir();
    const a = await host(air, 'three-sets', { llPrivacy: false }, true);
    const b = await host(air, 'listener', { llPrivacy: false }, false);
    const irk = a.adapter.privacy!.irk;
    const sets = [
      await a.adapter.advertise({ name: 'set-0', connectable: false }),
      await a.adapter.advertise({ name: 'set-1' }),
      await a.adapter.advertise({ name: 'set-2', connectable: false }),
    ];
    const wire = setAddressOctets(a.raw);
    expect([...wire.keys()].sort()).toEqual(sets.map(s => s.handle).sort());
    const firsts = sets.map(s => wire.get(s.handle)![0]!);
    expect(firsts).toEqual(sets.map(s => s.address));
    expect(new Set(firsts).size).toBe(3);
    for (const x of firsts) {
      expect(resolvesWith(irk, x)).toBe(true);
      expect(x).not.toBe(a.adapter.privacy!.address);
    }
    // The listener hears each set from its own AdvA.
    for (const [i, s] of sets.entries()) expect(addresses(await hear(b.adapter, air, `set-${i}`))).toEqual([s.address]);

    await air.clock.delay(ROTATE_S * 1000);
    const after = setAddressOctets(a.raw);
    const seconds = sets.map(s => after.get(s.handle)!.at(-1)!);
    expect(seconds).toEqual(sets.map(s => s.address));
    expect(new Set([...firsts, ...seconds, a.adapter.privacy!.address]).size).toBe(7);
    for (const x of seconds) expect(resolvesWith(irk, x)).toBe(true);
    for (const [i, s] of sets.entries()) expect(addresses(await hear(b.adapter, air, `set-${i}`))).toEqual([s.address]);

    // A central connects to set-1 and pairs: c1 / f5 / f6 take our address as the central saw it, the set's.
    const accepted = a.adapter.accept();
    const ad = await b.adapter.find({ name: 'set-1', timeout: 5000 });
    expect(ad!.address).toBe(sets[1]!.address);
    const conn = await b.adapter.connect(ad!, { timeout: 5000 });
    const incoming = (await accepted.next()).value as Connection;
    expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    await air.clock.delay(100);
    expect(incoming.security.encrypted).toBe(true);
    await conn.disconnect();
  });

  test('LL Privacy: every set Own_Address_Type 0x03, each with its own host RPA as the fallback random address', async () => {
    const air = new SimAir();
    const a = await host(air, 'll-sets', {}, true);
    const sets = [await a.adapter.advertise({ name: 'x', connectable: false }), await a.adapter.advertise({ name: 'y', connectable: false })];
    const params = a.raw.filter(p => (p[1]! | (p[2]! << 8)) === 0x2036);
    expect(params.map(p => [p[4], p[14]])).toEqual(sets.map(s => [s.handle, 0x03]));
    const wire = setAddressOctets(a.raw);
    const fallbacks = sets.map(s => wire.get(s.handle)![0]!);
    expect(new Set([...fallbacks, a.adapter.privacy!.address]).size).toBe(3);
    for (const x of fallbacks) expect(resolvesWith(a.adapter.privacy!.irk, x)).toBe(true);
  });
});
