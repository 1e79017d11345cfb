// Directed advertising to a bonded peer that uses privacy, over btvirt (issue 9). btvirt has no LL
// Privacy (its LE features read as zero and its resolving list resolves nothing), so this is the host
// path of test/sim/directed-privacy.test.ts: the host aims at the RPA it last saw the peer under,
// as BlueZ's kernel does (hci_connect_le swaps the identity for the IRK's last resolved RPA).
// btvirt 5.66 delivers a directed PDU only to the controller whose own address and type equal
// Peer_Address / Peer_Address_Type (emulator/btdev.c adv_match), so a wrong TargetA is visible here:
// the peer hears nothing. Two blewire adapters, both with privacy, on LE-only controllers (legacy
// commands): the phone pairs with the wearable (SC Just Works; both get each other's IRK), the link
// ends, the wearable advertises directed to the phone's identity. tshark reads the wearable's LE Set
// Advertising Parameters: Advertising_Type 0x04, Peer_Address_Type 0x01, Peer_Address the phone's RPA
// (not its identity); the phone hears it and connects to the wearable by identity, then re-encrypts
// from the bond. After the phone rotates its RPA unseen, the same directed advertising no longer
// reaches it (btvirt's comparison), the stale case the note in README names.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { useBtvirt } from './helpers/btvirt-suite.js';
import { stage } from './helpers/progress.js';
import { tsharkFields, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-directed-privacy-btvirt-'));

describe('directed advertising to a bonded private peer over btvirt, read back by tshark', () => {
  const btvirt = useBtvirt(dir);

  test('Peer_Address is the phone\'s RPA seen last: the phone hears it and connects by identity; after it rotates unseen it hears nothing', async () => {
    const capture = join(dir, 'wearable.btsnoop');
    const wearable = await Adapter.open({ transport: `unix:${btvirt().leSocket}`, bonds: new MemoryBondStore(), capture, privacy: true });
    const phone = await Adapter.open({ transport: `unix:${btvirt().leSocket}`, bonds: new MemoryBondStore(), privacy: true });
    try {
      expect(wearable.privacy!.advertisingRpa).toBe('host');
      const accepted = wearable.accept();
      const undirected = await wearable.advertise({ name: 'bw-wearable', resume: false });
      const ad = await phone.find({ name: 'bw-wearable', timeout: 10_000 });
      const conn = await phone.connect(ad!, { timeout: 10_000 });
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      // The wearable completes on the phone's last key PDU, on its own time: listen before pairing.
      const wearablePaired = stage(incoming, 'paired');
      expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true });
      expect(await wearablePaired).toMatchObject({ bonded: true });
      const phoneRpa = phone.privacy!.address;
      expect(incoming.address).toBe(phoneRpa);
      await conn.disconnect();
      await incoming.closed;
      await undirected.stop().catch(() => undefined);
      const phoneId = phone.privacy!.identity, wearableId = wearable.privacy!.identity;
      expect(phoneId.address).not.toBe(phoneRpa);

      const set = await wearable.advertise({ directed: { address: phoneId.address, addressType: phoneId.addressType } });
      expect(set.directedTarget).toEqual({ by: 'host', addressType: 'random', address: phoneRpa });
      const back = await phone.connect({ address: wearableId.address, type: wearableId.addressType }, { timeout: 10_000 });
      expect(back.identity).toEqual(wearableId);
      expect(await back.encrypt()).toMatchObject({ encrypted: true, bonded: true });
      await back.disconnect();
      await set.stop().catch(() => undefined);

      // The phone takes a new RPA the wearable never sees: the directed PDUs (still to the old one) miss it.
      await phone.privacy!.rotate();
      expect(phone.privacy!.address).not.toBe(phoneRpa);
      const stale = await wearable.advertise({ directed: { address: phoneId.address, addressType: phoneId.addressType } });
      expect(stale.directedTarget?.address).toBe(phoneRpa);
      expect(await phone.find({ address: wearable.privacy!.address, timeout: 2000 })).toBeUndefined();
      await stale.stop().catch(() => undefined);
    } finally {
      await phone.close();
      await wearable.close();
    }
    // tshark: every directed LE Set Advertising Parameters (0x2006, type 0x04) names the phone's RPA as a random address.
    const rows = await tsharkFields(capture, 'bthci_cmd.opcode == 0x2006 && bthci_cmd.le_advts_type == 0x04', 'bthci_cmd.le_direct_address_type', 'bthci_cmd.bd_addr');
    expect(rows.length).toBe(2);
    for (const r of rows) expect(r[0]).toBe('0x01');
    expect(new Set(rows.map(r => r[1]))).toEqual(new Set([rows[0]![1]]));
    expect(rows[0]![1]).toMatch(/^[4-7][0-9a-f]:/); // top bits 01: resolvable private
    expect(await tsharkMalformed(capture)).toEqual([]);
  }, 90_000);
});
