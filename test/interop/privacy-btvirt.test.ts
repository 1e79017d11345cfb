// Our own LE privacy against BlueZ's controller emulator btvirt (Core Vol 3, Part C, 10.7): host A,
// opened with `privacy`, scans, connects and advertises from resolvable private addresses that btvirt
// puts on its emulated air; host B (a second blewire adapter on another btvirt controller, no privacy)
// only ever sees those. A pairs with B (SC Just Works; btvirt reports Encryption Change only when
// both hosts hold the same LTK) and gives B its IRK and identity address in the key distribution;
// after A rotates its RPA, B recognises A by identity: on the incoming link (conn.identity), in A's
// advertising reports (ad.identity, bonded), and by re-encrypting from the bond with no pairing.
// tshark (a decoder we did not write) reads both captures: every LE Set Random Address of A is an RPA
// (top bits 01) that resolves with the IRK A distributed, A's Own_Address_Type is random (0x01) in
// scanning, initiating and advertising, and after bonding no address of A that B's controller reports
// (connection complete, advertising reports) is A's identity address, only RPAs that resolve.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { rpaMatchesIrk } from '../../src/gap/privacy.js';
import { ah } from '../../src/smp/crypto.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { startBtvirt, type Btvirt } from './helpers/btvirt.js';
import { tshark, tsharkL2cap, tsharkMalformed } from './helpers/tshark.js';
import { stage } from './helpers/progress.js';
import { Timings } from './helpers/timings.js';

const dir = mkdtempSync(join(tmpdir(), 'blewire-privacy-btvirt-'));
const timings = new Timings();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The address resolves under the IRK (SMP order) by the toolbox's ah (Vol 3, Part H, 2.2.2), apart from the resolver. */
function resolvesWith(irk: Uint8Array, address: string): boolean {
  const o = address.split(':').map(h => parseInt(h, 16));
  if (o.length !== 6 || o[0]! >> 6 !== 0b01) return false;
  return hex(ah(Uint8Array.from(irk).reverse(), Uint8Array.from(o.slice(0, 3)))) === hex(Uint8Array.from(o.slice(3)));
}

/** tshark rows of a display filter, the fields split by tab. */
async function rows(capture: string, filter: string, ...fields: string[]): Promise<string[][]> {
  const out = await tshark('-r', capture, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,',
    '-e', 'frame.number', ...fields.flatMap(f => ['-e', f]));
  return out.split('\n').filter(Boolean).map(l => l.split('\t'));
}

const upper = (a: string): string => a.toUpperCase();

/** The peripheral side's controller reports its Encryption Change on its own time: wait for it (bounded, 10 s for a loaded machine). */
async function encryptedSoon(conn: Connection): Promise<void> {
  for (let i = 0; i < 500 && !conn.security.encrypted; i++) await new Promise(r => setTimeout(r, 20));
}

describe('our resolvable private addresses between two blewire hosts on btvirt', () => {
  let btvirt: Btvirt;
  let a: Adapter;
  let b: Adapter;
  const aBonds = new MemoryBondStore();
  const bBonds = new MemoryBondStore();
  const aCapture = join(dir, 'a-private.btsnoop');
  const bCapture = join(dir, 'b-peer.btsnoop');
  let accepted: AsyncIterableIterator<Connection>;
  /** Frame of B's capture once bonding finished: addresses after it must never be A's identity. */
  let bondedAtFrame = 0;
  const rpas: string[] = [];

  const disconnect = async (conn: Connection, incoming: Connection): Promise<void> => {
    const gone = new Promise(r => incoming.once('disconnect', r));
    await conn.disconnect();
    await gone;
  };

  /** A finds B's advertising and connects; B takes the incoming link. */
  const connect = async (): Promise<{ conn: Connection; incoming: Connection }> => {
    const ad = await a.find({ name: 'bw-privacy-peer', timeout: 5000, active: true });
    if (!ad) throw new Error('B is not advertising');
    const conn = await a.connect(ad, { timeout: 5000 });
    const incoming = (await accepted.next()).value as Connection;
    return { conn, incoming };
  };

  beforeAll(async () => {
    btvirt = await startBtvirt();
    a = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: aBonds, capture: aCapture, privacy: true });
    b = await Adapter.open({ transport: `unix:${btvirt.leSocket}`, bonds: bBonds, capture: bCapture });
    await b.advertise({ name: 'bw-privacy-peer' });
    accepted = b.accept();
  });

  afterAll(async () => {
    await accepted?.return?.();
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
    await btvirt?.stop();
    rmSync(dir, { recursive: true, force: true });
    console.log(['privacy-btvirt timings (wall, host + btvirt on this machine):', ...timings.lines()].join('\n'));
  });

  test('A connects from an RPA; pairing gives B A\'s IRK and identity address (key distribution with IdKey)', async () => {
    const p = a.privacy!;
    expect(p.identity).toEqual({ address: upper(a.controller.address!), addressType: 'public' });
    rpas.push(p.address);
    const { conn, incoming } = await connect();
    // What btvirt reported to B as the central's address: A's RPA, random.
    expect(incoming.address).toBe(p.address);
    expect(incoming.addressType).toBe('random');
    expect(incoming.identity).toBeUndefined();
    // B completes on A's last key PDU, on its own time (before or after A's pair() resolves): listen first.
    const bPaired = stage(incoming, 'paired');
    const state = await timings.timed('SC Just Works pairing from an RPA (A pair() call)', () => conn.pair());
    expect(state).toMatchObject({ encrypted: true, bonded: true, keySize: 16 });
    expect(await bPaired).toMatchObject({ bonded: true });
    const [bond] = await bBonds.list();
    expect(bond!.identity).toEqual({ type: 0, address: upper(a.controller.address!) });
    expect(hex(bond!.peerIrk!)).toBe(hex(p.irk));
    expect(incoming.identity).toEqual({ address: upper(a.controller.address!), addressType: 'public' });
    // The SMP PDUs as tshark reassembles them: Pairing Request initiator keys EncKey | IdKey | LinkKey
    // (0x0b); B keeps EncKey | LinkKey of the responder keys (no privacy of its own); then A's Identity
    // Information (0x08: the IRK, LSO first) and Identity Address Information (0x09: public, LSO first).
    const smp = (await tsharkL2cap(aCapture)).filter(r => r.cid === 0x0006 && r.dir === 'tx').map(r => r.payload);
    expect(smp[0]).toBe('0103002910' + '0b0f');
    expect(smp).toContain('08' + hex(p.irk));
    expect(smp).toContain('0900' + a.controller.address!.split(':').reverse().join('').toLowerCase());
    await disconnect(conn, incoming);
    bondedAtFrame = Number((await tshark('-r', bCapture, '-T', 'fields', '-e', 'frame.number')).trim().split('\n').pop());
  });

  test('after a rotation B recognises A by identity on the new link and re-encrypts from the bond, no pairing', async () => {
    const before = a.privacy!.address;
    const after = await a.privacy!.rotate();
    expect(after).not.toBe(before);
    rpas.push(after);
    const { conn, incoming } = await connect();
    expect(incoming.address).toBe(after);
    expect(incoming.identity).toEqual({ address: upper(a.controller.address!), addressType: 'public' });
    const state = await timings.timed('re-encryption from the bond after a rotation', () => conn.encrypt());
    expect(state).toMatchObject({ encrypted: true, bonded: true });
    await encryptedSoon(incoming);
    expect(incoming.security).toMatchObject({ encrypted: true, bonded: true });
    await disconnect(conn, incoming);
  });

  test('A advertising from its RPA: B\'s scan reports resolve to A\'s identity (bonded); B connects to A by identity', async () => {
    const after = await a.privacy!.rotate();
    rpas.push(after);
    const set = await a.advertise({ name: 'bw-private' });
    const ad = await b.find({ name: 'bw-private', timeout: 5000 });
    expect(ad!.address).toBe(after);
    expect(ad!.addressType).toBe('random');
    expect(ad!.identity).toEqual({ address: upper(a.controller.address!), addressType: 'public' });
    expect(ad!.bonded).toBe(true);
    const incomingA = a.accept();
    const conn = await b.connect({ address: a.controller.address!, type: 'public' }, { timeout: 5000 });
    const atA = (await incomingA.next()).value as Connection;
    expect(conn.address).toBe(after);
    expect(conn.identity).toEqual({ address: upper(a.controller.address!), addressType: 'public' });
    // B is the central now: it starts encryption with the LTK of its bond under A's identity.
    expect(await conn.encrypt()).toMatchObject({ encrypted: true, bonded: true });
    await encryptedSoon(atA);
    expect(atA.security).toMatchObject({ encrypted: true });
    await disconnect(conn, atA);
    await incomingA.return?.();
    await set.stop();
  });

  test('tshark: A\'s LE Set Random Address values are RPAs of the distributed IRK; Own_Address_Type random everywhere', async () => {
    const irk = (await bBonds.list())[0]!.peerIrk!;
    const set = (await rows(aCapture, 'bthci_cmd.opcode == 0x2005', 'bthci_cmd.bd_addr')).map(r => upper(r[1]!));
    expect(set.length).toBeGreaterThanOrEqual(3);
    for (const addr of set) {
      expect(parseInt(addr.slice(0, 2), 16) >> 6).toBe(0b01);
      expect(resolvesWith(irk, addr)).toBe(true);
      expect(rpaMatchesIrk(irk, addr)).toBe(true);
    }
    for (const r of rpas) expect(set).toContain(r);
    // LE Set Scan Parameters (0x200b), LE Create Connection (0x200d), LE Set Advertising Parameters (0x2006).
    for (const opcode of ['0x200b', '0x200d', '0x2006']) {
      const own = await rows(aCapture, `bthci_cmd.opcode == ${opcode}`, 'bthci_cmd.le_own_address_type');
      expect(own.length, opcode).toBeGreaterThan(0);
      for (const r of own) expect(Number(r[1]), opcode).toBe(1);
    }
  });

  test('tshark: after bonding, every address of A that B\'s controller reports is an RPA of A\'s IRK, never A\'s identity', async () => {
    const irk = (await bBonds.list())[0]!.peerIrk!;
    const identity = upper(a.controller.address!);
    // LE Connection Complete (subevent 0x01) and LE Advertising Report (0x02) on B.
    const reported = (await rows(bCapture, `frame.number > ${bondedAtFrame} && bthci_evt.code == 0x3e && (bthci_evt.le_meta_subevent == 0x01 || bthci_evt.le_meta_subevent == 0x02)`,
      'bthci_evt.le_meta_subevent', 'bthci_evt.bd_addr')).flatMap(r => (r[2] ?? '').split(',').filter(Boolean).map(x => ({ sub: r[1], addr: upper(x) })));
    const fromA = reported.filter(x => x.addr !== upper(b.controller.address!));
    expect(fromA.some(x => x.sub === '0x01')).toBe(true);
    expect(fromA.some(x => x.sub === '0x02')).toBe(true);
    for (const x of fromA) {
      expect(x.addr).not.toBe(identity);
      expect(resolvesWith(irk, x.addr), `${x.addr} (subevent ${x.sub})`).toBe(true);
    }
    // And nowhere in B's capture after bonding does A's identity address appear in an HCI event or
    // command, but in the one that gives it to B's own controller: LE Add Device To Resolving List
    // (0x2027; nothing of it goes on the air).
    const any = await rows(bCapture, `frame.number > ${bondedAtFrame} && !(bthci_cmd.opcode == 0x2027) && (bthci_evt.bd_addr == ${identity.toLowerCase()} || bthci_cmd.bd_addr == ${identity.toLowerCase()})`);
    expect(any).toEqual([]);
  });

  test('tshark finds no malformed packet in either capture', async () => {
    expect(await tsharkMalformed(aCapture)).toEqual([]);
    expect(await tsharkMalformed(bCapture)).toEqual([]);
  });
});
