// Our PERIPHERAL as the SMP responder (Vol 3, Part H, 2.3 and 3.5/3.6) on the simulated air: a blewire
// central pairs with a blewire peripheral (adapter.serve + advertise), each side running its own host,
// controller and SmpSession, the air carrying the PDUs between the two controllers. Every SC method the
// public API can reach, the bond on both sides, re-encryption from the bond on the next link (LTK Request
// Reply at our peripheral), and a responder fault matrix: the initiator disappears, a wrong confirm
// (0x04), out-of-order and unknown PDUs (0x08, 0x07), the 30 s SMP timeout (3.4) on the virtual clock.
// Wire bytes are read from the peripheral's HCI ACL traffic on CID 0x0006.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { PairingPolicy, PairingProgress } from '../../src/link/pairing.js';
import { BlewireError, SmpError } from '../../src/errors.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { smpTap, type Dir, type Rewrite } from '../helpers/smp-tap.js';
import { toHex } from '../../src/bytes/hex.js';
import { MemoryBondStore, type Bond } from '../../src/smp/bonds.js';

const SVC = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const PADDR = 'C4:11:22:33:44:57';
/** A legacy OOB TK (Vol 3, Part H, 2.3.5.4), as both users would have received it out of band. */
const TK = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);

const opened: Adapter[] = [];
let airs: SimAir[] = [];
afterEach(async () => {
  for (const a of opened.splice(0)) await a.close().catch(() => undefined);
  airs = [];
});

async function pairOfAdapters(peripheralPolicy: PairingPolicy, privacy = false) {
  const air = new SimAir();
  airs.push(air);
  const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
  const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
  const ct = smpTap(cs.transport);
  const pt = smpTap(ps.transport);
  const centralBonds = new MemoryBondStore();
  const peripheralBonds = new MemoryBondStore();
  const central = await Adapter.open({ transport: ct.transport, clock: air.clock, bonds: centralBonds, privacy });
  const peripheral = await Adapter.open({ transport: pt.transport, clock: air.clock, bonds: peripheralBonds, randomAddress: PADDR, pairing: peripheralPolicy, privacy });
  opened.push(central, peripheral);
  await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: Uint8Array.of(7) }] }]);
  return { air, central, peripheral, centralBonds, peripheralBonds, centralTap: ct, peripheralTap: pt };
}

async function connect(peripheral: Adapter, central: Adapter): Promise<{ conn: Connection; incoming: Connection; seen: PairingProgress[] }> {
  const accepted = peripheral.accept();
  await peripheral.advertise({ name: 'resp' });
  const ad = await central.find({ name: 'resp', timeout: 5000 });
  const conn = await central.connect(ad!);
  const incoming = (await accepted.next()).value as Connection;
  await accepted.return!();
  const seen: PairingProgress[] = [];
  incoming.on('pairing', p => seen.push(p));
  return { conn, incoming, seen };
}

async function until<T>(air: SimAir, f: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const v = f();
    if (v !== undefined) return v;
    await air.clock.delay(5);
  }
  throw new Error(`never: ${what}`);
}

const hex = (b: Uint8Array | undefined): string => (b ? toHex(b) : 'none');
const opcodes = (smp: Array<{ dir: Dir; hex: string }>, dir: Dir): string[] => smp.filter(r => r.dir === dir).map(r => r.hex.slice(0, 2));

describe('our peripheral as the SMP responder, methods (a blewire central over SimAir)', () => {
  const cases: Array<{ name: string; p: PairingPolicy; c: PairingPolicy; method: string; pres: string; level: 2 | 3 | 4; authenticated: boolean;
    rounds?: number; keys?: boolean; legacy?: boolean; scOob?: boolean }> = [
    { name: 'SC Just Works', p: {}, c: {}, method: 'justWorks', pres: '02030029100909', level: 2, authenticated: false },
    { name: 'SC Numeric Comparison, both confirm', p: { io: 'displayYesNo' }, c: { io: 'displayYesNo' }, method: 'numericComparison',
      pres: '0201002d100909', level: 4, authenticated: true },
    { name: 'SC Passkey Entry, our peripheral displays, the central types', p: { io: 'displayOnly' }, c: { io: 'keyboardOnly' },
      method: 'passkeyResponderDisplays', pres: '0200002d100909', level: 4, authenticated: true, rounds: 20 },
    { name: 'SC Passkey Entry, the central displays, our peripheral types', p: { io: 'keyboardOnly' }, c: { io: 'displayOnly' },
      method: 'passkeyInitiatorDisplays', pres: '0202002d100909', level: 4, authenticated: true, rounds: 20 },
    { name: 'SC Just Works with privacy and signing on both sides', p: { signing: true }, c: { signing: true }, method: 'justWorks',
      pres: '02030029100f0f', level: 2, authenticated: false, keys: true },
    { name: 'SC OOB (our peripheral\'s r and c handed to the central out of band)', p: {}, c: {}, method: 'oob',
      pres: '02030029100909', level: 4, authenticated: true, scOob: true },
    { name: 'LE legacy Just Works', p: { secureConnections: false }, c: {}, method: 'justWorks', pres: '02030021100909',
      level: 2, authenticated: false, legacy: true },
    { name: 'LE legacy Passkey Entry, our peripheral displays, the central types', p: { secureConnections: false, io: 'displayOnly' },
      c: { io: 'keyboardOnly' }, method: 'passkeyResponderDisplays', pres: '02000025100909', level: 3, authenticated: true, legacy: true },
    { name: 'LE legacy Passkey Entry, the central displays, our peripheral types', p: { secureConnections: false, io: 'keyboardOnly' },
      c: { io: 'displayOnly' }, method: 'passkeyInitiatorDisplays', pres: '02020025100909', level: 3, authenticated: true, legacy: true },
    { name: 'LE legacy OOB (both sides hold the same TK)', p: { secureConnections: false, oob: { legacyTk: TK } },
      c: { oob: { legacyTk: TK } }, method: 'oob', pres: '02030121100909', level: 3, authenticated: true, legacy: true },
  ];
  for (const k of cases) {
    test(`${k.name}: level ${k.level}, bonded on both sides with the keys each distributed, re-encrypted from the bond`, async () => {
      const shown: { p?: number; c?: number; typed?: number } = {};
      let displayed: (n: number) => void = () => undefined;
      const passkey = new Promise<number>(r => { displayed = r; });
      const pPolicy: PairingPolicy = { ...k.p, onNumericComparison: v => { shown.p = v; return true; },
        onPasskeyDisplay: n => displayed(n), onPasskeyRequest: async () => (shown.typed = await passkey) };
      const cPolicy: PairingPolicy = { ...k.c, onNumericComparison: v => { shown.c = v; return true; },
        onPasskeyDisplay: n => displayed(n), onPasskeyRequest: async () => (shown.typed = await passkey) };
      const t = await pairOfAdapters(pPolicy, k.keys ?? false);
      let link = await connect(t.peripheral, t.central);
      // SC OOB: our r and c = f4(PKb, PKb, rb, 0) (2.3.5.6.4), as the user would carry them to the central.
      if (k.scOob) Object.assign(cPolicy, { oob: { peer: link.incoming.localOobData() } });
      // What the store holds when our peripheral reports 'paired' (read in the listener itself): its
      // bond, so a listener on the responder's side can rely on it (it has no pair() to await).
      let storedAtPaired: Promise<Bond[]> | undefined;
      link.incoming.on('pairing', p => { if (p.stage === 'paired') storedAtPaired ??= t.peripheralBonds.list(); });
      const state = await link.conn.pair(cPolicy);
      expect(state).toMatchObject({ level: k.level, encrypted: true, keySize: 16, authenticated: k.authenticated, secureConnections: !k.legacy, bonded: true });
      const paired = await until(t.air, () => link.seen.find(p => p.stage === 'paired'), 'peripheral paired');
      expect(paired).toMatchObject({ method: k.method, secureConnections: !k.legacy, authenticated: k.authenticated, bonded: true, keySize: 16 });
      expect(link.seen[0]).toEqual({ stage: 'started', role: 'responder' });
      expect(link.incoming.security).toMatchObject({ level: k.level, encrypted: true, authenticated: k.authenticated });
      if (k.method === 'numericComparison') { expect(shown.p).toBeDefined(); expect(shown.p).toBe(shown.c); }
      if (k.method.startsWith('passkey')) expect(shown.typed).toBe(await passkey);

      // The wire at our peripheral: the central's request in, our response out with our IO capability,
      // AuthReq Bonding|MITM?|SC|CT2, 16 octets, and key distribution EncKey|IdKey|SignKey (0x0f) asked both ways
      // (we answer with what we will send: IdKey only from an SC responder plus whatever the initiator asked).
      const smp = t.peripheralTap.smp;
      expect(smp[0]!.dir).toBe('rx');
      expect(smp[0]!.hex.slice(0, 2)).toBe('01');
      const ourResponse = smp.find(r => r.dir === 'tx' && r.hex.startsWith('02'))!;
      expect(ourResponse.hex.slice(0, 8)).toBe(k.pres.slice(0, 8));
      // The central's OOB data flag: set when it holds our OOB data (SC OOB) or a TK (legacy OOB).
      expect(smp[0]!.hex.slice(4, 6)).toBe(k.scOob || k.method === 'oob' ? '01' : '00');
      // Key distribution (2.4.3): without privacy and signing each side sends only EncKey|LinkKey (0x09,
      // the LTK coming from f5 in SC); with both, EncKey|IdKey|SignKey|LinkKey (0x0f) each way.
      expect(ourResponse.hex.slice(10)).toBe(k.pres.slice(10));
      if (k.rounds) {
        // 20 rounds of Confirm + Random each way (2.3.5.6.3).
        expect(opcodes(smp, 'rx').filter(o => o === '03')).toHaveLength(k.rounds);
        expect(opcodes(smp, 'tx').filter(o => o === '03')).toHaveLength(k.rounds);
      }
      expect(smp.filter(r => r.hex.startsWith('05'))).toEqual([]);

      // Both bonds: the same LTK; each side holds the other's identity (IRK + identity address, 3.6.4/3.6.5).
      const cbs = await t.centralBonds.list();
      const pbs = await storedAtPaired!;
      expect(await t.peripheralBonds.list()).toEqual(pbs);
      expect(cbs).toHaveLength(1);
      expect(pbs).toHaveLength(1);
      expect(cbs[0]).toMatchObject({ secureConnections: !k.legacy, authenticated: k.authenticated, keySize: 16 });
      expect(pbs[0]).toMatchObject({ secureConnections: !k.legacy, authenticated: k.authenticated, keySize: 16 });
      if (k.legacy) {
        // Legacy: each side distributes its own LTK with EDIV and Rand (Encryption Information and
        // Central Identification, 3.6.2/3.6.3); the central encrypts with the one our peripheral sent.
        expect(hex(cbs[0]!.ltk?.key)).toBe(hex(pbs[0]!.localLtk?.key));
        expect(cbs[0]!.ltk?.ediv).toBe(pbs[0]!.localLtk?.ediv);
        expect(hex(cbs[0]!.ltk?.rand)).toBe(hex(pbs[0]!.localLtk?.rand));
        // The central distributed its own LTK too (a different random key, with its EDIV and Rand):
        // our peripheral keeps it as the bond's ltk, for a link where we are the central (2.4.2.1);
        // it answers LTK Requests from localLtk, the one it made.
        expect(cbs[0]!.localLtk?.key).toHaveLength(16);
        expect(hex(cbs[0]!.ltk?.key)).not.toBe(hex(cbs[0]!.localLtk?.key));
        expect(hex(pbs[0]!.ltk?.key)).toBe(hex(cbs[0]!.localLtk?.key));
        expect(pbs[0]!.ltk?.ediv).toBe(cbs[0]!.localLtk?.ediv);
        expect(hex(pbs[0]!.ltk?.rand)).toBe(hex(cbs[0]!.localLtk?.rand));
      } else {
        expect(hex(cbs[0]!.ltk?.key)).toBe(hex(pbs[0]!.ltk?.key));
      }
      expect(cbs[0]!.ltk?.key).toHaveLength(16);
      expect(cbs[0]!.identity.address).toBe(PADDR);
      if (k.keys) {
        // Privacy and signing on both sides: IRK + identity address and CSRK each way (3.6.4-3.6.6).
        expect(cbs[0]!.peerIrk).toHaveLength(16);
        expect(pbs[0]!.peerIrk).toHaveLength(16);
        expect(hex(pbs[0]!.peerIrk)).not.toBe(hex(cbs[0]!.peerIrk));
        expect(hex(pbs[0]!.peerCsrk)).toBe(hex(cbs[0]!.localCsrk));
        expect(hex(cbs[0]!.peerCsrk)).toBe(hex(pbs[0]!.localCsrk));
        expect(pbs[0]!.peerCsrk).toHaveLength(16);
      } else {
        // Nothing but the LTK to share: no identity (no privacy) and no CSRK (no signing) was distributed.
        for (const b of [cbs[0]!, pbs[0]!]) expect([b.peerIrk, b.peerCsrk, b.localCsrk]).toEqual([undefined, undefined, undefined]);
      }
      await link.conn.disconnect();
      await until(t.air, () => (link.incoming.connected ? undefined : true), 'peripheral saw the disconnection');

      // Reconnect: the central encrypts from the bond; our peripheral answers the LTK Request from its bond.
      const mark = t.peripheralTap.smp.length;
      link = await connect(t.peripheral, t.central);
      expect(await link.conn.encrypt()).toMatchObject({ level: k.level, encrypted: true, authenticated: k.authenticated, bonded: true });
      await until(t.air, () => (link.incoming.security.encrypted ? true : undefined), 'peripheral encrypted');
      expect(link.incoming.security).toMatchObject({ level: k.level, authenticated: k.authenticated });
      expect(t.peripheralTap.smp.slice(mark)).toEqual([]); // no pairing: the bond did it
      expect([...(await (await link.conn.characteristic(SVC, 0xfff1)).read())]).toEqual([7]);
      await link.conn.disconnect();
    });
  }

  test('SC Numeric Comparison, our peripheral rejects the value: Pairing Failed 0x0C on the wire, both sides fail typed, no bond', async () => {
    const t = await pairOfAdapters({ io: 'displayYesNo', onNumericComparison: () => false });
    const link = await connect(t.peripheral, t.central);
    const err = await link.conn.pair({ io: 'displayYesNo', onNumericComparison: () => true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmpError);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x0c, reasonName: 'Numeric Comparison Failed' });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toMatchObject({ code: 'ESMP', reason: 0x0c });
    expect(t.peripheralTap.smp.filter(r => r.dir === 'tx' && r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '050c' }]);
    expect(await t.centralBonds.list()).toEqual([]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(link.incoming.security.encrypted).toBe(false);
    expect(link.conn.connected).toBe(true);
  });

  test('SC Numeric Comparison, the central rejects: our peripheral receives 0x0C and fails typed', async () => {
    const t = await pairOfAdapters({ io: 'displayYesNo', onNumericComparison: () => true });
    const link = await connect(t.peripheral, t.central);
    const err = await link.conn.pair({ io: 'displayYesNo', onNumericComparison: () => false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x0c });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toBeInstanceOf(SmpError);
    expect(failed.error).toMatchObject({ reason: 0x0c, reasonName: 'Numeric Comparison Failed' });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'rx', hex: '050c' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
  });
});

describe('LE legacy: the roles swap after pairing, and our former peripheral encrypts as central with the LTK the central distributed', () => {
  for (const k of [
    { name: 'Just Works', p: { secureConnections: false } as PairingPolicy, c: {} as PairingPolicy, level: 2, authenticated: false },
    { name: 'Passkey Entry', p: { secureConnections: false, io: 'displayOnly' } as PairingPolicy, c: { io: 'keyboardOnly' } as PairingPolicy, level: 3, authenticated: true },
  ]) {
    test(`legacy ${k.name}: a new link the other way round encrypts from the two bonds (EDIV/Rand of the central's key), no SMP`, async () => {
      let shown: (n: number) => void = () => undefined;
      const passkey = new Promise<number>(r => { shown = r; });
      const t = await pairOfAdapters({ ...k.p, onPasskeyDisplay: n => shown(n) });
      const link = await connect(t.peripheral, t.central);
      await link.conn.pair({ ...k.c, onPasskeyRequest: () => passkey });
      await until(t.air, () => link.seen.find(p => p.stage === 'paired'), 'peripheral paired');
      let pbs = await t.peripheralBonds.list();
      for (let i = 0; i < 200 && pbs.length === 0; i++) { await t.air.clock.delay(5); pbs = await t.peripheralBonds.list(); }
      const [cb] = await t.centralBonds.list();
      // Key distribution both ways (3.6.2, 3.6.3): our peripheral holds the central's LTK, EDIV and Rand.
      expect(hex(pbs[0]!.ltk?.key)).toBe(hex(cb!.localLtk?.key));
      expect(pbs[0]!.ltk?.ediv).toBe(cb!.localLtk?.ediv);
      await link.conn.disconnect();
      await until(t.air, () => (link.incoming.connected ? undefined : true), 'peripheral saw the disconnection');

      // The roles swap: the former central advertises, our former peripheral connects and encrypts.
      const marks = [t.peripheralTap.smp.length, t.centralTap.smp.length];
      const accepted = t.central.accept();
      await t.central.advertise({ name: 'swapped' });
      const ad = await t.peripheral.find({ name: 'swapped', timeout: 5000 });
      const conn = await t.peripheral.connect(ad!);
      const incoming = (await accepted.next()).value as Connection;
      await accepted.return!();
      // The former central answers the LTK Request from the key it distributed (its localLtk, found by
      // EDIV and Rand): the two controllers hold the same key, or the link would not encrypt.
      expect(await conn.encrypt()).toMatchObject({ level: k.level, encrypted: true, authenticated: k.authenticated, bonded: true });
      await until(t.air, () => (incoming.security.encrypted ? true : undefined), 'the former central encrypted');
      expect(incoming.security).toMatchObject({ level: k.level, authenticated: k.authenticated });
      expect(t.peripheralTap.smp.slice(marks[0])).toEqual([]);
      expect(t.centralTap.smp.slice(marks[1])).toEqual([]);
      await conn.disconnect();
    });
  }
});

describe('SC OOB the other way: our peripheral holds the central\'s OOB data', () => {
  for (const both of [false, true]) {
    test(`the central's r and c given to our peripheral${both ? ', and ours to the central' : ' only'}: OOB, authenticated, bonded`, async () => {
      const t = await pairOfAdapters({});
      const link = await connect(t.peripheral, t.central);
      // The central's data reaches our peripheral's policy out of band (2.3.5.6.4: either side's data suffices).
      t.peripheral.setPairingPolicy({ oob: { peer: link.conn.localOobData() } });
      const state = await link.conn.pair(both ? { oob: { peer: link.incoming.localOobData() } } : {});
      expect(state).toMatchObject({ level: 4, authenticated: true, secureConnections: true, bonded: true });
      expect(await until(t.air, () => link.seen.find(p => p.stage === 'paired'), 'peripheral paired')).toMatchObject({ method: 'oob', authenticated: true });
      // OOB data flags on the wire: the central's request says whether it holds ours; our response says we hold its.
      const smp = t.peripheralTap.smp;
      expect(smp[0]!.hex.slice(0, 6)).toBe(both ? '010301' : '010300');
      expect(smp.find(r => r.dir === 'tx' && r.hex.startsWith('02'))!.hex.slice(0, 6)).toBe('020301');
      // Stored by the time our peripheral reported 'paired' (above): no wait.
      const pbs = await t.peripheralBonds.list();
      expect(hex(pbs[0]?.ltk?.key)).toBe(hex((await t.centralBonds.list())[0]?.ltk?.key));
      expect(pbs[0]).toMatchObject({ authenticated: true, secureConnections: true });
    });
  }
  test('a forged c from the central: our peripheral checks Ca = f4(PKa, PKa, ra, 0) and sends 0x04', async () => {
    const t = await pairOfAdapters({});
    const link = await connect(t.peripheral, t.central);
    const real = link.conn.localOobData();
    t.peripheral.setPairingPolicy({ oob: { peer: { r: real.r, c: real.c.map((b, i) => (i === 15 ? b ^ 0x40 : b)) } } });
    const err = await link.conn.pair().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x04, reasonName: 'Confirm Value Failed' });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0504' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
  });
});

describe('responder fault matrix', () => {
  test('LE legacy OOB with different TKs on the two sides: our check of the central\'s confirm fails, 0x04 from us', async () => {
    const t = await pairOfAdapters({ secureConnections: false, oob: { legacyTk: TK } });
    const link = await connect(t.peripheral, t.central);
    const other = TK.map((b, i) => (i === 15 ? b ^ 0x80 : b));
    const err = await link.conn.pair({ oob: { legacyTk: other } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x04, reasonName: 'Confirm Value Failed' });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toMatchObject({ reason: 0x04 });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0504' }]);
    // Our Pairing Random was never sent: the TK cannot be searched for from our side's values (2.3.5.5).
    expect(t.peripheralTap.smp.filter(r => r.dir === 'tx' && r.hex.startsWith('04'))).toEqual([]);
    expect(await t.peripheralBonds.list()).toEqual([]);
  });

  async function closeAndCountTimers(t: Awaited<ReturnType<typeof pairOfAdapters>>): Promise<number> {
    await t.central.close();
    await t.peripheral.close();
    return t.air.clock.pendingTimers;
  }

  test('the initiator disappears mid-pairing (link lost while our user is asked): typed failure, no bond, no timer left', async () => {
    let asked: () => void = () => undefined;
    const prompt = new Promise<void>(r => { asked = r; });
    const t = await pairOfAdapters({ io: 'displayYesNo', onNumericComparison: () => { asked(); return new Promise<boolean>(() => undefined); } });
    const link = await connect(t.peripheral, t.central);
    const pairing = link.conn.pair({ io: 'displayYesNo', onNumericComparison: () => true }).catch((e: unknown) => e);
    await prompt;
    await link.conn.disconnect();
    expect(await pairing).toBeInstanceOf(BlewireError);
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toBeInstanceOf(BlewireError);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(await closeAndCountTimers(t)).toBe(0);
  });

  test('SC OOB: the central claims our OOB data but our peripheral handed none out: 0x02 OOB Not Available from us', async () => {
    const t = await pairOfAdapters({});
    const link = await connect(t.peripheral, t.central);
    // OOB data from some other device (a stale QR code): valid shape, not ours.
    const err = await link.conn.pair({ oob: { peer: { r: new Uint8Array(16).fill(1), c: new Uint8Array(16).fill(2) } } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x02, reasonName: 'OOB Not Available' });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toMatchObject({ reason: 0x02 });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0502' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(await closeAndCountTimers(t)).toBe(0);
  });

  test('SC OOB data is used by one pairing only: the next one gets new data, and the old data no longer pairs', async () => {
    const t = await pairOfAdapters({});
    const link = await connect(t.peripheral, t.central);
    const first = link.incoming.localOobData();
    expect(link.incoming.localOobData()).toEqual(first); // the same until a pairing takes it
    // The central pairs with a forged c: it checks Cb = f4(PKb, PKb, rb, 0) and fails (0x04, 2.3.5.6.4).
    const forged = { r: first.r, c: first.c.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    const err = await link.conn.pair({ oob: { peer: forged } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x04 });
    await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed');
    // Past the repeated-attempts wait (2.3.6), the old data again: that pairing took it, so we have none.
    await t.air.clock.delay(3000);
    const stale = await link.conn.pair({ oob: { peer: first } }).catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: 'ESMP', reason: 0x02 });
    await t.air.clock.delay(5000);
    const second = link.incoming.localOobData();
    expect(toHex(second.r)).not.toBe(toHex(first.r));
    expect(toHex(second.c)).not.toBe(toHex(first.c));
    expect(await link.conn.pair({ oob: { peer: second }, timeout: 40_000 }).catch((e: unknown) => e)).toMatchObject({ level: 4, authenticated: true });
    expect(await until(t.air, () => link.seen.find(p => p.stage === 'paired'), 'peripheral paired')).toMatchObject({ method: 'oob' });
  });

  test('a wrong confirm value from the initiator (SC Passkey round 1 corrupted): Pairing Failed 0x04 from us, no bond', async () => {
    let displayed: (n: number) => void = () => undefined;
    const passkey = new Promise<number>(r => { displayed = r; });
    const t = await pairOfAdapters({ io: 'displayOnly', onPasskeyDisplay: n => displayed(n) });
    let corrupted = false;
    t.centralTap.rewrite.fn = pdu => {
      if (pdu[0] !== 0x03 || corrupted) return undefined;
      corrupted = true;
      return pdu.map((b, i) => (i === 1 ? b ^ 0x01 : b));
    };
    const link = await connect(t.peripheral, t.central);
    const err = await link.conn.pair({ io: 'keyboardOnly', onPasskeyRequest: () => passkey }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESMP', reason: 0x04, reasonName: 'Confirm Value Failed' });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toMatchObject({ reason: 0x04 });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0504' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(link.incoming.security.encrypted).toBe(false);
    expect(await closeAndCountTimers(t)).toBe(0);
  });

  test('a PDU out of order (a Pairing Confirm where the public key belongs): 0x08 Unspecified Reason from us', async () => {
    const t = await pairOfAdapters({});
    t.centralTap.rewrite.fn = pdu => (pdu[0] === 0x0c ? Uint8Array.of(0x03, ...new Uint8Array(16).fill(0xa5)) : undefined);
    const link = await connect(t.peripheral, t.central);
    const err = await link.conn.pair().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmpError);
    expect(err).toMatchObject({ reason: 0x08 });
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toMatchObject({ code: 'ESMP', reason: 0x08, reasonName: 'Unspecified Reason' });
    expect(t.peripheralTap.smp.filter(r => r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0508' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(await closeAndCountTimers(t)).toBe(0);
  });

  test('an SMP command with a reserved code mid-pairing: 0x07 Command Not Supported from us', async () => {
    const t = await pairOfAdapters({});
    t.centralTap.rewrite.fn = pdu => (pdu[0] === 0x0c ? Uint8Array.of(0x3f, 1, 2, 3) : undefined);
    const link = await connect(t.peripheral, t.central);
    const err = await link.conn.pair().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlewireError);
    expect(t.peripheralTap.smp.filter(r => r.dir === 'tx' && r.hex.startsWith('05'))).toEqual([{ dir: 'tx', hex: '0507' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(link.incoming.security.encrypted).toBe(false);
    expect(await closeAndCountTimers(t)).toBe(0);
  });

  test('the initiator falls silent after its Pairing Request: our SMP timer fires at 30 s of virtual time, no further SMP, no timer left', async () => {
    const t = await pairOfAdapters({});
    t.centralTap.rewrite.fn = pdu => (pdu[0] === 0x01 ? undefined : 'drop');
    const link = await connect(t.peripheral, t.central);
    const start = t.air.clock.now();
    const err = await link.conn.pair().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlewireError);
    const failed = await until(t.air, () => link.seen.find(p => p.stage === 'failed'), 'peripheral failed') as Extract<PairingProgress, { stage: 'failed' }>;
    expect(failed.error).toBeInstanceOf(BlewireError);
    expect(t.air.clock.now() - start).toBeGreaterThanOrEqual(30_000);
    expect(failed.error).toMatchObject({ code: 'ETIMEDOUT' });
    // After the timeout no SMP on the link (3.4): a new Pairing Request (injected under the central's
    // host, whose own SMP timed out as well) gets no answer from us.
    expect(link.conn.connected).toBe(true);
    const before = t.peripheralTap.smp.length;
    t.centralTap.inject(Uint8Array.of(0x01, 0x03, 0x00, 0x29, 0x10, 0x09, 0x0f));
    await until(t.air, () => (t.peripheralTap.smp.length > before ? true : undefined), 'the Pairing Request arrived');
    await t.air.clock.delay(1000);
    expect(t.peripheralTap.smp.slice(before)).toEqual([{ dir: 'rx', hex: '010300291009' + '0f' }]);
    expect(await t.peripheralBonds.list()).toEqual([]);
    expect(await closeAndCountTimers(t)).toBe(0);
  });
});
