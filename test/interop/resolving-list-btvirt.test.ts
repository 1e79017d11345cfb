// The controller's resolving list against BlueZ's controller emulator btvirt (Core Vol 6, Part B, 4.7;
// Vol 4, Part E, 7.8.38-7.8.45). Two blewire hosts, both opened with `privacy`, on two btvirt
// controllers: btvirt reports a list of 16 entries; before any bond neither host touches it; pairing
// (both sides distribute IRK and identity) makes each host write its list, and tshark (a decoder we did
// not write) reads each capture: LE Set Address Resolution Enable off, LE Clear Resolving List, LE Add
// Device To Resolving List with the peer's identity, the IRK the peer distributed and our own IRK, LE Set
// Resolvable Private Address Timeout of our rotation period, resolution on, and btvirt's Command
// Complete with status 0 for each.
//
// btvirt keeps the list but resolves nothing: its reports and connection events carry the air address,
// type 0x01, and it does not claim LL Privacy (LE feature bit 6, Vol 6, Part B, 4.6.5). So the hosts
// rely on their own resolver (the fallback this file proves too) and keep Own_Address_Type 0x01 with
// their own RPAs: a host reconnects to the other by identity and re-encrypts from the bond with no
// pairing, and the peer's controller reports the central's RPA, never its identity. (Seen while
// writing this: btvirt 5.66 answers Own_Address_Type 0x03 in LE Create Connection by reporting the
// central's public address to the peer, with type 0x03; hence the LL Privacy gate, which a controller
// that really resolves passes.) Runs without the BlueZ guest:
// `npx vitest run test/interop/resolving-list-btvirt.test.ts`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { rpaMatchesIrk } from '../../src/gap/privacy.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-resolving-list-btvirt-'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const upper = (a: string): string => a.toUpperCase();

/** tshark rows of a display filter, the fields split by tab. */
async function rows(capture: string, filter: string, ...fields: string[]): Promise<string[][]> {
  const out = await tshark('-r', capture, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,',
    '-e', 'frame.number', ...fields.flatMap(f => ['-e', f]));
  return out.split('\n').filter(Boolean).map(l => l.split('\t'));
}

/** Polls recorded state (each host writes its controller's list on its own time after pairing); 15 s for a loaded machine. */
async function until(what: () => boolean, ms = 15_000): Promise<void> {
  for (let t = 0; t < ms && !what(); t += 20) await new Promise(r => setTimeout(r, 20));
  expect(what()).toBe(true);
}

describe('the controller resolving list of two blewire hosts with privacy, on btvirt', () => {
  let btvirt: Btvirt;
  let a: Adapter;
  let b: Adapter;
  const aBonds = new MemoryBondStore();
  const bBonds = new MemoryBondStore();
  const aCapture = join(dir, 'a.btsnoop');
  const bCapture = join(dir, 'b.btsnoop');
  let accepted: AsyncIterableIterator<Connection>;
  /** A's last capture frame before the reconnect: the commands after it are the reconnect's. */
  let listOnAtFrame = 0;

  const disconnect = async (conn: Connection, incoming: Connection): Promise<void> => {
    const gone = new Promise(r => incoming.once('disconnect', r));
    await conn.disconnect();
    await gone;
  };

  beforeAll(async () => {
    btvirt = await startBtvirt();
    a = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: aBonds, capture: aCapture, privacy: true });
    b = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: bBonds, capture: bCapture, privacy: true });
    await b.advertise({ name: 'bw-rl-peer' });
    accepted = b.accept();
  });

  afterAll(async () => {
    await accepted?.return?.();
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('btvirt\'s list holds 16; with no bond neither host writes it and both use Own_Address_Type 0x01', async () => {
    expect(a.controller.resolvingListSize).toBe(16);
    expect(b.controller.resolvingListSize).toBe(16);
    expect(a.resolvingList.available).toBe(true);
    expect(a.controller.hasLeFeature('llPrivacy')).toBe(false); // btvirt takes the commands without claiming the feature
    expect(a.resolvingList.active).toBe(false);
    for (const cap of [aCapture, bCapture]) {
      expect(await rows(cap, 'bthci_cmd.opcode == 0x2027 || bthci_cmd.opcode == 0x202d')).toEqual([]);
    }
  }, 30_000);

  test('bonding: each host gives btvirt the peer\'s identity and IRK with its own IRK, RPA timeout 900 s, resolution on; status 0 each', async () => {
    const ad = await a.find({ name: 'bw-rl-peer', timeout: 5000, active: true });
    expect(ad).toBeDefined();
    const conn = await a.connect(ad!, { timeout: 5000 });
    const incoming = (await accepted.next()).value as Connection;
    expect(await conn.pair()).toMatchObject({ encrypted: true, bonded: true });
    await until(() => a.resolvingList.active && b.resolvingList.active);
    const aId = a.privacy!.identity, bId = b.privacy!.identity;
    expect(conn.identity).toEqual(bId);
    await disconnect(conn, incoming);

    for (const [cap, me, peer] of [[aCapture, a, b], [bCapture, b, a]] as const) {
      const peerId = peer.privacy!.identity;
      // The sequence in frame order, each command's fields as tshark decodes them (two tshark runs per capture).
      const seq = await rows(cap, 'bthci_cmd.opcode == 0x202d || bthci_cmd.opcode == 0x2029 || bthci_cmd.opcode == 0x2027 || bthci_cmd.opcode == 0x202e', 'bthci_cmd.opcode',
        'bthci_cmd.le_address_resolution_enable', 'bthci_cmd.le_peer_identity_address_type', 'bthci_cmd.bd_addr',
        'bthci_cmd.le_peer_irk', 'bthci_cmd.le_local_irk', 'bthci_cmd.le_rpa_timeout');
      expect(seq.map(r => r[1]), cap).toEqual(['0x202d', '0x2029', '0x2027', '0x202e', '0x202d']);
      expect(Number(seq[0]![2])).toBe(0);
      expect(Number(seq[4]![2])).toBe(1);
      const [, , , type, address, peerIrk, localIrk] = seq[2]!;
      expect(Number(type)).toBe(peerId.addressType === 'public' ? 0 : 1);
      expect(upper(address!)).toBe(peerId.address);
      expect(peerIrk!.replace(/:/g, '')).toBe(hex(peer.privacy!.irk));
      expect(localIrk!.replace(/:/g, '')).toBe(hex(me.privacy!.irk));
      expect(Number(seq[3]![7])).toBe(900);
      // btvirt's Command Complete for each: status 0.
      const done = await rows(cap, 'bthci_evt.code == 0x0e && (bthci_evt.opcode == 0x202d || bthci_evt.opcode == 0x2029 || bthci_evt.opcode == 0x2027 || bthci_evt.opcode == 0x202e)', 'bthci_evt.opcode', 'bthci_evt.status');
      expect(done.map(r => r[1]), cap).toEqual(['0x202d', '0x2029', '0x2027', '0x202e', '0x202d']);
      expect(done.every(r => Number(r[2]) === 0), cap).toBe(true);
    }
    expect(aId.address).not.toBe(bId.address);
  }, 60_000);

  test('with the list on but no LL Privacy: A reconnects to B by identity (the host resolves B\'s RPA; Own_Address_Type and Peer_Address_Type 0x01) and re-encrypts, no pairing; B\'s controller reports A\'s RPA', async () => {
    listOnAtFrame = Number((await tshark('-r', aCapture, '-T', 'fields', '-e', 'frame.number')).trim().split('\n').pop());
    const rpa = await b.privacy!.rotate();
    const bId = b.privacy!.identity;
    const ad = await a.find({ name: 'bw-rl-peer', timeout: 5000, active: true });
    // btvirt reports the air address (it does not resolve): the host's resolver names B.
    expect(ad!.address).toBe(rpa);
    expect(ad!.identity).toEqual(bId);
    expect(ad!.bonded).toBe(true);
    const conn = await a.connect({ address: bId.address, type: bId.addressType }, { timeout: 5000 });
    const incoming = (await accepted.next()).value as Connection;
    expect(conn.address).toBe(rpa);
    expect(conn.identity).toEqual(bId);
    expect(await conn.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    // B knows A by identity too (A's IRK, through its own resolver since btvirt reports A's air address).
    expect(incoming.identity).toEqual(a.privacy!.identity);
    await disconnect(conn, incoming);

    const after = `frame.number > ${listOnAtFrame}`;
    expect(a.resolvingList.active).toBe(true);
    expect(a.resolvingList.resolves).toBe(false);
    for (const opcode of ['0x200b', '0x200d']) {
      const own = await rows(aCapture, `${after} && bthci_cmd.opcode == ${opcode}`, 'bthci_cmd.le_own_address_type');
      expect(own.length, opcode).toBeGreaterThan(0);
      for (const r of own) expect(Number(r[1]), opcode).toBe(1);
    }
    const create = await rows(aCapture, `${after} && bthci_cmd.opcode == 0x200d`, 'bthci_cmd.le_peer_address_type', 'bthci_cmd.bd_addr');
    expect(create.map(r => [Number(r[1]), upper(r[2]!)])).toEqual([[1, rpa]]);
    // What btvirt told B about A as the central: an address A's IRK resolves, never A's identity.
    const cc = await rows(bCapture, `bthci_evt.le_meta_subevent == 0x01 && bthci_evt.role == 0x01`,
      'bthci_evt.le_peer_address_type', 'bthci_evt.bd_addr');
    const last = cc.at(-1)!;
    expect(Number(last[1])).toBe(1);
    expect(upper(last[2]!)).not.toBe(a.privacy!.identity.address);
    expect(rpaMatchesIrk(a.privacy!.irk, upper(last[2]!))).toBe(true);
  }, 60_000);

  test('tshark finds no malformed packet in either capture', async () => {
    expect(await tsharkMalformed(aCapture)).toEqual([]);
    expect(await tsharkMalformed(bCapture)).toEqual([]);
  }, 30_000);
});
