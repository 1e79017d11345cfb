// Each extended advertising set advertises from an RPA of its own (issue 9; Vol 4, Part E, 7.8.52;
// Vol 3, Part C, 10.7: sets must not be linkable by a shared address), over btvirt's BR/EDR+LE
// controllers (extended advertising; no LL Privacy, so the host makes every RPA). A blewire adapter with
// privacy advertises three sets; a second blewire adapter (no privacy) scans and records. tshark, not our
// decoder, reads both captures: the advertiser gave each handle a different LE Set Advertising Set Random
// Address, all RPAs (top bits 01) that resolve with the IRK (toolbox ah), none the adapter's LE Set
// Random Address; the listener's LE Extended Advertising Reports carry each set's name from that set's
// address only. Then the listener connects to one set and pairs (SC Just Works: f5 / f6 take the set's
// address as ours, and btvirt reports Encryption Change only when both LTKs match).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { rpaMatchesIrk } from '../../src/gap/privacy.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { useBtvirt } from './helpers/btvirt-suite.js';
import { tsharkFields, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-per-set-rpa-btvirt-'));

describe('one RPA per extended advertising set over btvirt, read back by tshark', () => {
  const btvirt = useBtvirt(dir);

  test('three sets, three RPAs of our IRK; the listener hears each name from its own address; pairing through one set', async () => {
    const aCapture = join(dir, 'advertiser.btsnoop'), bCapture = join(dir, 'listener.btsnoop');
    const a = await Adapter.open({ transport: `unix:${btvirt().bredrleSocket}`, bonds: new MemoryBondStore(), capture: aCapture, privacy: true });
    const b = await Adapter.open({ transport: `unix:${btvirt().bredrleSocket}`, bonds: new MemoryBondStore(), capture: bCapture });
    let irk: Uint8Array, adapterRpa: string;
    const names = ['bw-set-a', 'bw-set-b', 'bw-set-c'];
    try {
      irk = a.privacy!.irk;
      adapterRpa = a.privacy!.address;
      expect(a.privacy!.advertisingRpa).toBe('host');
      const sets = [];
      for (const [i, name] of names.entries()) sets.push(await a.advertise({ name, legacy: false, connectable: i === 1 }));
      expect(sets.every(s => !s.legacy)).toBe(true);
      for (const [i, name] of names.entries()) {
        const ad = await b.find({ name, timeout: 10_000 });
        expect(ad?.address).toBe(sets[i]!.address);
      }
      const accepted = a.accept();
      const ad = await b.find({ name: 'bw-set-b', timeout: 10_000 });
      const conn = await b.connect(ad!, { timeout: 10_000 });
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      expect(await conn.pair()).toMatchObject({ encrypted: true, secureConnections: true });
      expect(incoming.security.encrypted).toBe(true);
      await conn.disconnect();
      for (const s of sets) await s.stop().catch(() => undefined);
    } finally {
      await b.close();
      await a.close();
    }
    // The advertiser's LE Set Advertising Set Random Address (0x2035), per handle.
    const given = await tsharkFields(aCapture, 'bthci_cmd.opcode == 0x2035', 'bthci_cmd.advertising_handle', 'bthci_cmd.bd_addr');
    expect(given.length).toBe(3);
    const byHandle = new Map(given.map(([h, addr]) => [h!, addr!.toUpperCase()]));
    expect(byHandle.size).toBe(3);
    const setAddresses = [...byHandle.values()];
    expect(new Set(setAddresses).size).toBe(3);
    const random = (await tsharkFields(aCapture, 'bthci_cmd.opcode == 0x2005', 'bthci_cmd.bd_addr')).map(r => r[0]!.toUpperCase());
    expect(random).toContain(adapterRpa!);
    for (const x of setAddresses) {
      expect(rpaMatchesIrk(irk!, x)).toBe(true);
      expect(random).not.toContain(x);
    }
    // The listener's LE Extended Advertising Reports (subevent 0x0d): each name from one address, its set's.
    const reports = await tsharkFields(bCapture, 'bthci_evt.le_meta_subevent == 0x0d && btcommon.eir_ad.entry.device_name', 'bthci_evt.bd_addr', 'btcommon.eir_ad.entry.device_name');
    const heard = new Map<string, Set<string>>();
    for (const [addr, name] of reports) heard.set(name!, (heard.get(name!) ?? new Set()).add(addr!.toUpperCase()));
    expect([...heard.keys()].sort()).toEqual(names);
    const perName = names.map(n => [...heard.get(n)!]);
    for (const list of perName) expect(list).toHaveLength(1);
    expect(new Set(perName.map(l => l[0])).size).toBe(3);
    for (const list of perName) expect(setAddresses).toContain(list[0]);
    expect(await tsharkMalformed(aCapture)).toEqual([]);
    expect(await tsharkMalformed(bCapture)).toEqual([]);
  }, 90_000);
});
