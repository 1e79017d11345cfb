// Directed advertising and the secondary PHY over btvirt (issue 10): a blewire peripheral advertises on
// one emulated controller, a blewire central on another connects to it; tshark, not our decoder, reads
// the peripheral's recording. No guest.
// - LE-only controllers (legacy commands): LE Set Advertising Parameters (Vol 4, Part E, 7.8.5) with
//   Advertising_Type 0x04 (low duty) / 0x01 (high duty) and Peer_Address = the central's; the central
//   connects with LE Create Connection to the advertiser's address.
// - BR/EDR+LE controllers (extended commands): LE Set Extended Advertising Parameters (7.8.53) with
//   connectable|directed|legacy (0x15) / |high duty (0x1D), the high duty set enabled with a Duration of
//   128 × 10 ms (7.8.56); secondaryPhy '2m' as Secondary_Advertising_PHY 0x02 on extended PDUs, which
//   the central scans and connects to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { AdvertiseOptions } from '../../src/gap/advertiser.js';
import type { Connection } from '../../src/api/connection.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-directed-btvirt-'));

/** tshark's fields of the records matching `filter`, one array per record. */
async function fields(file: string, filter: string, ...names: string[]): Promise<string[][]> {
  const out = await tshark('-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=|', ...names.flatMap(n => ['-e', n]));
  return out.split('\n').filter(Boolean).map(l => l.split('|'));
}

describe('directed advertising and the secondary PHY over btvirt, read back by tshark', () => {
  let btvirt: Btvirt;
  beforeAll(async () => { btvirt = await startBtvirt(); }, 60_000);
  afterAll(async () => {
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A peripheral (recorded) and a central on `socket`; `advertise` is called with the central's address. */
  async function pair(socket: string, name: string, advertise: (central: string) => AdvertiseOptions,
    connectTo: (p: Adapter, c: Adapter) => Promise<Connection>) {
    const capture = join(dir, `${name}.btsnoop`);
    const peripheral = await Adapter.open({ transport: `unix:${socket}`, capture, bonds: false });
    const central = await Adapter.open({ transport: `unix:${socket}`, bonds: false });
    try {
      const accepted = peripheral.accept();
      const set = await peripheral.advertise(advertise(central.controller.address!));
      const conn = await connectTo(peripheral, central);
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      expect(incoming.role).toBe('peripheral');
      expect(incoming.address).toBe(central.controller.address);
      // ATT works on the link: the central discovers our GAP service.
      expect((await conn.services()).some(s => s.uuid.startsWith('00001800'))).toBe(true);
      await conn.disconnect();
      await set.stop().catch(() => undefined);
      return { capture, peripheral: peripheral.controller.address!, central: central.controller.address! };
    } finally {
      await central.close();
      await peripheral.close();
    }
  }

  const byAddress = (p: Adapter, c: Adapter): Promise<Connection> =>
    c.connect({ address: p.controller.address!, type: 'public' }, { timeout: 10_000 });

  for (const highDuty of [false, true]) {
    test(`legacy commands, ${highDuty ? 'high' : 'low'} duty: Advertising_Type 0x0${highDuty ? 1 : 4} to the central, which connects`, async () => {
      const r = await pair(btvirt.leSocket, `legacy-${highDuty ? 'high' : 'low'}`, c => ({ directed: { address: c, highDuty } }), byAddress);
      const rows = await fields(r.capture, 'bthci_cmd.opcode == 0x2006', 'bthci_cmd.le_advts_type', 'bthci_cmd.le_direct_address_type', 'bthci_cmd.bd_addr');
      expect(rows.length).toBeGreaterThan(0);
      expect(rows[0]).toEqual([highDuty ? '0x01' : '0x04', '0x00', r.central.toLowerCase()]);
      // LE Connection Complete on the peripheral's side: role peripheral, the central's address.
      const cc = await fields(r.capture, 'bthci_evt.le_meta_subevent == 0x01 || bthci_evt.le_meta_subevent == 0x0a', 'bthci_evt.status', 'bthci_evt.role', 'bthci_evt.bd_addr');
      expect(cc[0]).toEqual(['0x00', '0x01', r.central.toLowerCase()]);
      expect(await tsharkMalformed(r.capture)).toEqual([]);
    }, 60_000);

    test(`extended commands, ${highDuty ? 'high' : 'low'} duty: event properties 0x${highDuty ? '1d' : '15'} to the central, which connects`, async () => {
      const r = await pair(btvirt.bredrleSocket, `ext-${highDuty ? 'high' : 'low'}`, c => ({ directed: { address: c, highDuty } }), byAddress);
      const rows = await fields(r.capture, 'bthci_cmd.opcode == 0x2036', 'bthci_cmd.advertising_properties', 'bthci_cmd.le_peer_address_type', 'bthci_cmd.bd_addr');
      expect(rows.length).toBeGreaterThan(0);
      expect(rows[0]).toEqual([highDuty ? '0x001d' : '0x0015', '0x00', r.central.toLowerCase()]);
      const enable = await fields(r.capture, 'bthci_cmd.opcode == 0x2039 && bthci_cmd.le_advts_enable == 1', 'bthci_cmd.adv_duration');
      expect(enable[0]).toEqual([highDuty ? '128' : '0']);
      expect(await tsharkMalformed(r.capture)).toEqual([]);
    }, 60_000);
  }

  test("secondaryPhy '2m': Secondary_Advertising_PHY 0x02 on extended PDUs; the central finds the set and connects", async () => {
    let found: { extended: boolean } | undefined;
    const r = await pair(btvirt.bredrleSocket, 'phy-2m', () => ({ name: 'bw-2m', secondaryPhy: '2m' }), async (_p, c) => {
      const ad = await c.find({ name: 'bw-2m', timeout: 10_000 });
      expect(ad).toBeDefined();
      found = { extended: ad!.extended };
      return c.connect(ad!, { timeout: 10_000 });
    });
    expect(found).toEqual({ extended: true });
    const rows = await fields(r.capture, 'bthci_cmd.opcode == 0x2036', 'bthci_cmd.advertising_properties', 'bthci_cmd.primary_advertising_phy', 'bthci_cmd.secondary_advertising_phy');
    expect(rows[0]).toEqual(['0x0001', '0x01', '0x02']);
    expect(await tsharkMalformed(r.capture)).toEqual([]);
  }, 60_000);
});
