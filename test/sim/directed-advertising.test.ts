// Directed advertising and the secondary advertising PHY on SimAir (issue 10): a blewire peripheral
// advertises, blewire centrals on the same air scan and connect. The HCI traffic of each host is tapped
// and decoded with our tables (the octets tshark reads are checked over btvirt in
// test/interop/directed-advertising-btvirt.test.ts).
// - Directed (Vol 6, Part B, 4.4.2.4; Vol 4, Part E, 7.8.5 / 7.8.53): only the TargetA hears the PDU
//   (ADV_DIRECT_IND, or the directed bit with Direct_Address in an extended report) and only it can
//   connect; another central's connect() times out. High duty cycle: at most 1.28 s (4.4.2.4.3), ended by
//   the controller with LE Connection Complete 0x3C (legacy commands) or LE Advertising Set Terminated
//   0x3C after the Duration the host must give (7.8.56); low duty has no limit.
// - Secondary PHY (7.8.53): `secondaryPhy` makes extended PDUs on that PHY; a scanner with the PHY gets
//   the report with Secondary_PHY set, one without hears nothing; a controller without it refuses the
//   parameters with 0x11, a typed HciStatusError that says what to ask for instead.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { ArgumentError, HciStatusError, TimeoutError } from '../../src/errors.js';
import { decodeHciPacket, type HciPacket } from '../../src/hci/packets.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import type { SimControllerOptions } from '../../src/sim/types.js';
import type { HciTransport, TransportReceiver } from '../../src/transport/types.js';

/** Every HCI packet a host sent (tx) or received (rx), decoded. */
function tap(inner: HciTransport): { transport: HciTransport; log: Array<{ dir: 'tx' | 'rx'; p: HciPacket }> } {
  const log: Array<{ dir: 'tx' | 'rx'; p: HciPacket }> = [];
  const grab = (dir: 'tx' | 'rx', b: Uint8Array): void => {
    if (b[0] === 0x01 || b[0] === 0x04) log.push({ dir, p: decodeHciPacket(b) });
  };
  const transport: HciTransport = {
    ...(inner.clock ? { clock: inner.clock } : {}),
    description: inner.description,
    send: b => { grab('tx', b); inner.send(b); },
    setReceiver: (r: TransportReceiver) => inner.setReceiver({ packet: b => { grab('rx', b); r.packet(b); }, closed: e => r.closed(e) }),
    close: () => inner.close(),
  };
  return { transport, log };
}

const kindOf = (p: HciPacket): string => (p as { kind?: string }).kind ?? '';

const open: Adapter[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close().catch(() => undefined);
});

async function host(air: SimAir, name: string, controller: SimControllerOptions = {}) {
  const sim = createSimulator({ name, peripherals: [], controller }, { air });
  const tapped = tap(sim.transport);
  const adapter = await Adapter.open({ transport: tapped.transport, bonds: false });
  open.push(adapter);
  return { adapter, log: tapped.log, sim, address: adapter.controller.address! };
}

/** Advertisements heard by `a` in `ms` of virtual time. */
async function hear(a: Adapter, air: SimAir, ms: number) {
  const ads = [];
  const ac = new AbortController();
  const t = air.clock.setTimeout(() => ac.abort(), ms);
  try {
    for await (const ad of a.scan({ active: true, duplicates: true, signal: ac.signal })) ads.push(ad);
  } catch { /* aborted */ }
  air.clock.clearTimeout(t);
  return ads;
}

for (const extended of [false, true]) {
  const family = extended ? 'extended commands' : 'legacy commands';
  describe(`directed advertising (${family})`, () => {
    test('low duty: only the target hears it and connects; another central cannot; the link is an incoming one', async () => {
      const air = new SimAir();
      const p = await host(air, 'peripheral', { extended });
      const target = await host(air, 'target', { extended });
      const other = await host(air, 'other', { extended });
      const accepted = p.adapter.accept();
      const set = await p.adapter.advertise({ directed: { address: target.address }, interval: 100 });
      // The command that went out: directed low duty (legacy Advertising_Type 0x04, 7.8.5; or event
      // properties connectable|directed [|legacy], 7.8.53), Peer_Address = the target's.
      const params = p.log.find(e => e.dir === 'tx' && kindOf(e.p) === (extended ? 'leSetExtendedAdvertisingParameters' : 'leSetAdvertisingParameters'))!.p as unknown as Record<string, unknown>;
      if (extended) expect(params['advertisingEventProperties']).toBe(0x15);
      else expect(params['advertisingType']).toBe(0x04);
      expect(params['peerAddress']).toBe(target.address);
      expect(params['peerAddressType']).toBe(0);
      // Heard by the target only, as directed, with no data.
      const [heardByOther, heardByTarget] = await Promise.all([hear(other.adapter, air, 1000), hear(target.adapter, air, 1000)]);
      expect(heardByOther.filter(a => a.address === p.address)).toEqual([]);
      const mine = heardByTarget.filter(a => a.address === p.address);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.every(a => a.connectable && !a.scannable && a.data.length === 0)).toBe(true);
      const report = target.log.find(e => e.dir === 'rx' && /^le(Extended)?AdvertisingReport$/.test(kindOf(e.p)) &&
        ((e.p as unknown as { reports: Array<{ address: string }> }).reports[0]!.address === p.address))!.p as unknown as
        { reports: Array<{ eventType: number; directAddress?: string }> };
      // ADV_DIRECT_IND (7.7.65.2), or legacy|directed|connectable 0x15 with Direct_Address = the target (7.7.65.13).
      if (extended) {
        expect(report.reports[0]!.eventType).toBe(0x15);
        expect(report.reports[0]!.directAddress).toBe(target.address);
      } else {
        expect(report.reports[0]!.eventType).toBe(0x01);
      }
      // Another central cannot connect to it.
      await expect(other.adapter.connect({ address: p.address, type: 'public' }, { timeout: 1000 })).rejects.toBeInstanceOf(TimeoutError);
      const conn = await target.adapter.connect({ address: p.address, type: 'public' }, { timeout: 5000 });
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      expect(incoming.role).toBe('peripheral');
      expect(incoming.address).toBe(target.address);
      expect(conn.role).toBe('central');
      // GATT over it: the target reads our GAP Device Name characteristic.
      expect((await conn.services()).length).toBeGreaterThan(0);
      await conn.disconnect();
      await set.stop();
    });

    test('high duty: the controller ends it after 1.28 s with nobody answering (0x3C); started again, the target connects', async () => {
      const air = new SimAir();
      const p = await host(air, 'peripheral', { extended });
      const target = await host(air, 'target', { extended });
      const t0 = air.clock.now();
      const set = await p.adapter.advertise({ directed: { address: target.address, highDuty: true } });
      const reason = await new Promise(r => set.onEnd(r));
      expect(reason).toBe('timeout');
      expect(air.clock.now() - t0).toBeGreaterThanOrEqual(1280);
      const params = p.log.find(e => e.dir === 'tx' && kindOf(e.p) === (extended ? 'leSetExtendedAdvertisingParameters' : 'leSetAdvertisingParameters'))!.p as unknown as Record<string, unknown>;
      if (extended) {
        expect(params['advertisingEventProperties']).toBe(0x1d); // connectable|directed|highDuty|legacy
        // Duration 128 × 10 ms (7.8.56) and LE Advertising Set Terminated, Advertising Timeout.
        const enable = p.log.find(e => e.dir === 'tx' && kindOf(e.p) === 'leSetExtendedAdvertisingEnable')!.p as unknown as { sets: Array<{ duration: number }> };
        expect(enable.sets[0]!.duration).toBe(128);
        expect(p.log.some(e => kindOf(e.p) === 'leAdvertisingSetTerminated' && (e.p as unknown as { status: number }).status === 0x3c)).toBe(true);
      } else {
        expect(params['advertisingType']).toBe(0x01);
        // LE Connection Complete, status Advertising Timeout, role peripheral (7.8.9, 7.7.65.1 / .10).
        const cc = p.log.find(e => /^le(Enhanced)?ConnectionComplete/.test(kindOf(e.p)))!.p as unknown as { status: number; role: number };
        expect([cc.status, cc.role]).toEqual([0x3c, 1]);
      }
      const accepted = p.adapter.accept();
      await p.adapter.advertise({ directed: { address: target.address, highDuty: true } });
      const conn = await target.adapter.connect({ address: p.address, type: 'public' }, { timeout: 1000 });
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      expect(incoming.address).toBe(target.address);
      await conn.disconnect();
    });
  });
}

describe('directed advertising options', () => {
  test('high duty lasts at most 1.28 s: a longer duration is an ArgumentError; directed is connectable', async () => {
    const air = new SimAir();
    const p = await host(air, 'peripheral');
    await expect(p.adapter.advertise({ directed: { address: 'C0:00:00:00:00:01', highDuty: true }, duration: 2000 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(p.adapter.advertise({ connectable: false, directed: { address: 'C0:00:00:00:00:01' } })).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe('secondary advertising PHY', () => {
  test("secondaryPhy '2m': extended PDUs on LE 2M; a scanner with 2M gets Secondary_PHY 2, one without hears nothing; it connects", async () => {
    const air = new SimAir();
    const p = await host(air, 'peripheral');
    const with2m = await host(air, 'with-2m');
    const without = await host(air, 'without-2m', { phy2m: false });
    const accepted = p.adapter.accept();
    const set = await p.adapter.advertise({ name: 'phy2m', secondaryPhy: '2m' });
    expect(set.legacy).toBe(false);
    const params = p.log.find(e => e.dir === 'tx' && kindOf(e.p) === 'leSetExtendedAdvertisingParameters')!.p as unknown as Record<string, number>;
    expect([params['advertisingEventProperties']! & 0x10, params['primaryAdvertisingPhy'], params['secondaryAdvertisingPhy']]).toEqual([0, 1, 2]);
    const [a, b] = await Promise.all([hear(with2m.adapter, air, 1000), hear(without.adapter, air, 1000)]);
    expect(a.some(x => x.name === 'phy2m' && x.extended)).toBe(true);
    expect(b.filter(x => x.address === p.address)).toEqual([]);
    const rep = with2m.log.find(e => kindOf(e.p) === 'leExtendedAdvertisingReport' &&
      (e.p as unknown as { reports: Array<{ address: string }> }).reports[0]!.address === p.address)!.p as unknown as
      { reports: Array<{ primaryPhy: number; secondaryPhy: number }> };
    expect([rep.reports[0]!.primaryPhy, rep.reports[0]!.secondaryPhy]).toEqual([1, 2]);
    const ad = a.find(x => x.name === 'phy2m')!;
    const conn = await with2m.adapter.connect(ad, { timeout: 5000 });
    expect(((await accepted.next()).value as Connection).role).toBe('peripheral');
    await accepted.return!();
    await conn.disconnect();
  });

  test("a controller without the PHY refuses it: HciStatusError 0x11 saying what to ask for; legacy: true or a legacy controller with a PHY is an ArgumentError", async () => {
    const air = new SimAir();
    const no2m = await host(air, 'no-2m', { phy2m: false });
    const e = await no2m.adapter.advertise({ name: 'x', secondaryPhy: '2m' }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(HciStatusError);
    expect((e as HciStatusError).status).toBe(0x11);
    expect((e as HciStatusError).code).toBe('EHCISTATUS');
    expect((e as Error).message).toMatch(/2M secondary PHY/);
    // Coded is off by default in the simulated controller.
    const coded = await no2m.adapter.advertise({ name: 'x', primaryPhy: 'coded' }).then(() => undefined, (x: unknown) => x);
    expect((coded as HciStatusError).status).toBe(0x11);
    expect((coded as Error).message).toMatch(/Coded primary/);
    // The refused set is not left behind: 1M still advertises.
    await no2m.adapter.advertise({ name: 'x', secondaryPhy: '1m' });
    await expect(no2m.adapter.advertise({ name: 'y', legacy: true, secondaryPhy: '2m' })).rejects.toBeInstanceOf(ArgumentError);
    const legacyOnly = await host(air, 'legacy-only', { extended: false });
    await expect(legacyOnly.adapter.advertise({ name: 'z', secondaryPhy: '2m' })).rejects.toBeInstanceOf(ArgumentError);
  });

  test("Coded PHY where the controller has it: primary and secondary Coded, heard only by a Coded scanner", async () => {
    const air = new SimAir();
    const p = await host(air, 'peripheral', { phyCoded: true });
    const coded = await host(air, 'coded', { phyCoded: true });
    const plain = await host(air, 'plain');
    await p.adapter.advertise({ name: 'longrange', primaryPhy: 'coded', secondaryPhy: 'coded' });
    const [a, b] = await Promise.all([hear(coded.adapter, air, 1000), hear(plain.adapter, air, 1000)]);
    expect(a.some(x => x.name === 'longrange')).toBe(true);
    expect(b.filter(x => x.address === p.address)).toEqual([]);
    const rep = coded.log.find(e => kindOf(e.p) === 'leExtendedAdvertisingReport' &&
      (e.p as unknown as { reports: Array<{ address: string }> }).reports[0]!.address === p.address)!.p as unknown as
      { reports: Array<{ primaryPhy: number; secondaryPhy: number }> };
    expect([rep.reports[0]!.primaryPhy, rep.reports[0]!.secondaryPhy]).toEqual([3, 3]);
  });
});
