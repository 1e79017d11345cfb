/**
 * blewire as the PERIPHERAL with security, BlueZ 5.66 as the central (issues 9 and 10): blewire runs on
 * the host over the bridged H4 socket to a btvirt controller in the qemu guest, serves a database with
 * adapter.serve() whose characteristics need an encrypted or an authenticated link (Vol 3, Part C,
 * 10.3.1), and advertises it. bluetoothd (hci0 in the guest) is the central, driven over D-Bus through the
 * control line (helpers/bluez-central-ops.py, one operation per call); BlueZ's simple-agent answers for
 * BlueZ's user. bluetoothd reacts to our ATT security errors by itself: on Insufficient Encryption (0x0F)
 * or Insufficient Authentication (0x05) its ATT layer raises the socket's security, the kernel pairs (SMP
 * initiator; we are the responder) and the request is sent again. Every expectation comes from BlueZ or the
 * spec: the values bluetoothd read, the SMP and ATT octets on the wire (decoded by tshark), the LTK BlueZ
 * stored (/var/lib/bluetooth/<adapter>/<us>/info) against the one in our bond store, BlueZ's key type.
 *
 * One boot (shared with the other bridge-mode files when the suite provides it), cases in order:
 *   A  agent NoInputNoOutput, we noInputNoOutput: bluetoothd reads the encrypted characteristic, gets 0x0F,
 *      pairs (LE Secure Connections Just Works) and reads it; it writes it; BlueZ stores our LTK
 *   B  BlueZ reconnects: the link is encrypted from the bond (LTK Request answered with our key), no pairing
 *   C  the authenticated characteristic: 0x05 on an unauthenticated link; agent KeyboardDisplay, we
 *      displayOnly: bluetoothd pairs again with MITM, BlueZ's agent types the passkey we display
 *   D  agent DisplayYesNo, we displayYesNo: Numeric Comparison, both sides show the same six digits
 *   E  btmgmt sc off, agent NoInputNoOutput: LE legacy Just Works (we respond and distribute our LTK with
 *      EDIV and Rand, Vol 3, Part H, 3.6.2 / 3.6.3); BlueZ stores that key; it reconnects and encrypts with
 *      it (LE Long Term Key Request with our EDIV and Rand, answered with our key: btvirt's Encryption
 *      Change succeeds only when both sides hold the same key)
 *   F  btmgmt sc off, agent KeyboardDisplay, we displayOnly: LE legacy Passkey Entry (TK = the passkey we
 *      display, BlueZ's agent types it), the authenticated characteristic reads
 *      E and F: BlueZ's kernel, the initiator, distributes its own LTK/EDIV/Rand too; our bond keeps it (ltk),
 *      equal to bluetoothd's [PeripheralLongTermKey]
 *   G  the roles swap: we connect to BlueZ as central and encrypt with BlueZ's key, EDIV and Rand (no pairing)
 *   H  tshark: zero malformed frames in the recording
 * afterAll puts BlueZ back (sc on, no agent, not bondable, no device) for the other files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { GattServer } from '../../src/gatt/server/server.js';
import type { PairingProgress } from '../../src/link/pairing.js';
import type { Bond } from '../../src/smp/bonds.js';
import type { SmpLtk } from '../../src/smp/session.js';
import { connectWhenAdvertising, l2capFrom, lastFrame, LTK_TYPE, ltksSentSince, ourBondWith, type CentralOpResult } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import { Timings } from './helpers/timings.js';
import { tshark, tsharkMalformed } from './helpers/tshark.js';

/** Our static random address (Vol 6, Part B, 1.3.2.1): BlueZ keeps its bond with us under it. */
const OURS = 'C3:5A:11:22:33:55';
const SVC = '5ec00000-0b1e-4a1e-9c5e-7f3a2b1c0d00';
const ENC = SVC.replace('5ec00000', '5ec00001');
const AUTH = SVC.replace('5ec00000', '5ec00002');
const SLOW = 90_000;

const timings = new Timings();
const figures: string[] = [];
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
const ascii = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const le16 = (h: number): string => [h & 0xff, h >> 8].map(b => b.toString(16).padStart(2, '0')).join('');

describe('blewire as peripheral, paired by BlueZ 5.66 as the central (bluetoothd + simple-agent in the qemu guest)', () => {
  // Afterwards BlueZ as the other files expect it (restore: sc on, no agent, not bondable, no device).
  const bz = useBlueZSession('peripheral-pairing-bluez', { ours: OURS, slow: SLOW, clean: true, restore: true });
  let adapter: Adapter;
  let server: GattServer<Connection>;
  /** The latest incoming connection (BlueZ's link to us) and the pairing progress seen on it. */
  let conn: Connection | undefined;
  let seen: PairingProgress[] = [];
  /** When each pairing stage was seen on our side (performance.now()). */
  let stamps: Array<[string, number]> = [];
  const writes: string[] = [];
  /** Our side's wall time from BlueZ's Pairing Request (stage started) to paired. */
  const pairingMs = (): string => {
    const a = stamps.find(([k]) => k === 'started')?.[1];
    const b = stamps.find(([k]) => k === 'paired')?.[1];
    return a !== undefined && b !== undefined ? `${(b - a).toFixed(0)} ms` : 'n/a';
  };

  let adv: Awaited<ReturnType<Adapter['advertise']>>;
  /** Incoming links so far (the 'connection' listener counts them). */
  let incoming = 0;
  const bluezInfo = (): Promise<string | undefined> => bz.bluez.info();

  /** One bluetoothd operation through bluez-central-ops.py; rejects on its error. */
  const bluezOk = (op: string, ...args: string[]): Promise<CentralOpResult> => bz.bluez.centralOpOk(op, ...args);

  /** BlueZ drops the link and forgets us (BlueZPeer.forget: it waits for bluetoothd to see the link go). */
  const bluezForget = async (): Promise<void> => {
    if (conn?.connected) await conn.disconnect();
    await bz.bluez.forget();
  };
  const useAgent = async (io: string | undefined): Promise<void> => {
    await bz.bluez.useAgent(io);
  };
  /** A new pairing case: BlueZ forgets us, and we it. */
  const startOver = async (): Promise<void> => {
    await bluezForget();
    expect(await adapter.removeBond(bz.guest.peripheral)).toBe(true);
  };
  const btmgmt = (...args: string[]): Promise<string> => bz.bluez.btmgmt(...args);
  const mark = (): Promise<number> => lastFrame(bz.capture);
  const l2capSince = (after: number, cid: number): Promise<Array<{ dir: 'tx' | 'rx'; pdu: string }>> => l2capFrom(bz.capture, after, cid);
  /** HCI LE Long Term Key Request Reply commands (Vol 4, Part E, 7.8.25) after `after`: the LTK we gave. */
  const ltkRepliesSince = (after: number): Promise<string[]> => ltksSentSince(bz.capture, after, 0x201a);
  /** Our bond with BlueZ, which must exist. */
  const ourBond = (): Promise<Bond> => ourBondWith(adapter, bz.guest.peripheral);
  /** BlueZ stored the key we hold. */
  const expectBlueZHoldsOurKey = (): Promise<string> => bz.bluez.storesOurKey(adapter);
  const handle = (uuid: string): number => server.handleOf(uuid);

  beforeAll(async () => {
    adapter = await bz.openAdapter();
    adapter.on('connection', c => {
      if (c.role !== 'peripheral') return;
      incoming++;
      conn = c;
      seen = [];
      stamps = [];
      c.on('pairing', p => { seen.push(p); stamps.push([p.stage, performance.now()]); });
    });
    server = await adapter.serve([{ uuid: SVC, characteristics: [
      { uuid: ENC, properties: ['read', 'write'], security: 'encrypted', value: 'sealed',
        onWrite: v => { writes.push(Buffer.from(v).toString('hex')); } },
      { uuid: AUTH, properties: ['read'], security: 'authenticated', value: 'vault' },
    ] }]);
    adv = await adapter.advertise({ name: 'bw-sec', services: [SVC] });
  }, 900_000);

  /**
   * bluetoothd connects to us (bluez-central-ops.py connect: discovery, then Device1.Connect). btvirt's
   * advertising reports are one-shot (PEERS.md): it sends ours right after the Command Complete of the
   * guest kernel's LE Set Scan Enable, and never again. Linux 6.1 (mgmt_device_found) drops a report that
   * comes while its discovery is still starting, before start_discovery_complete() has set it finding:
   * no Device Found, and that discovery hears nothing until the kernel ends it (LE discovery: 10.24 s)
   * and bluetoothd starts the next. The guest's btmon showed the race both ways: in 20 discoveries of
   * one run, the 11 whose reports came before the Start (Service) Discovery completion found nothing, the
   * 9 others found us; 4 misses in a row cost 42 s, 6 would run out bluez-central-ops.py's 60 s. (The
   * linux-bluetooth thread "Bluetooth: MGMT: Synchronize scan start and LE Meta events", 2023-09-28,
   * describes this race with btvirt.) The cause is in the guest kernel and btvirt, not in our set-up:
   * the btmon shows every discovery switching scanning on afresh, with no scan or connect of an earlier
   * test left running. So while no link has come after 5, 15 and 30 s, our advertising is switched off and on
   * again, which sends the report while the discovery is finding. A found device connects at once, so a
   * link under way is not cut.
   */
  const bluezConnect = async (): Promise<CentralOpResult> => {
    const before = incoming;
    let done = false;
    const op = bluezOk('connect').finally(() => { done = true; });
    void (async () => {
      for (const wait of [5_000, 10_000, 15_000]) {
        await new Promise(r => setTimeout(r, wait));
        if (done || incoming !== before) return;
        await adv.stop();
        adv = await adapter.advertise({ name: 'bw-sec', services: [SVC] });
      }
    })().catch(() => undefined);
    return op;
  };

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    console.log(['peripheral-pairing-bluez timings (wall; the guest is qemu TCG on a shared 2-core host):', ...timings.lines(),
      'peripheral-pairing-bluez figures:', ...figures.map(f => `  ${f}`)].join('\n'));
  });

  it('A: bluetoothd reads our encrypted characteristic, gets 0x0F, pairs (SC Just Works, we respond) and reads it; BlueZ stores our LTK', async () => {
    await useAgent('NoInputNoOutput');
    const c0 = await bluezConnect();
    expect(c0.paired).toBe(false);
    expect(conn?.role).toBe('peripheral');
    expect(conn!.security.encrypted).toBe(false);
    const before = await mark();
    const r = await timings.timed('SC Just Works on demand, we respond (BlueZ ReadValue: 0x0F, pair, read again)', () => bluezOk('read', ENC));
    expect(Buffer.from(r.value!, 'hex').toString()).toBe('sealed');
    expect(r.paired).toBe(true);
    expect(conn!.security).toEqual({ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'started')).toEqual({ stage: 'started', role: 'responder' });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'justWorks', secureConnections: true, bonded: true });
    const h = handle(ENC);
    const att = await l2capSince(before, 0x0004);
    // BlueZ's Read Request, our Error Response (Vol 3, Part F, 3.4.1.1): Read Request, the handle,
    // Insufficient Encryption; the same request after pairing, answered with the value.
    const readAt = att.findIndex(p => p.dir === 'rx' && p.pdu === `0a${le16(h)}`);
    expect(readAt).toBeGreaterThanOrEqual(0);
    expect(att[readAt + 1]).toEqual({ dir: 'tx', pdu: `010a${le16(h)}0f` });
    expect(att.slice(readAt + 2)).toEqual(expect.arrayContaining([{ dir: 'rx', pdu: `0a${le16(h)}` }, { dir: 'tx', pdu: `0b${ascii('sealed')}` }]));
    const smp = await l2capSince(before, 0x0006);
    // BlueZ's Pairing Request (Vol 3, Part H, 3.5.1): NoInputNoOutput, no OOB, Bonding | SC (| CT2),
    // 16 octets; our Pairing Response: NoInputNoOutput, Bonding | SC | CT2, 16.
    expect(smp[0]!.dir).toBe('rx');
    expect(smp[0]!.pdu.slice(0, 6)).toBe('010300');
    expect(Number.parseInt(smp[0]!.pdu.slice(6, 8), 16) & 0x09).toBe(0x09);
    expect(smp[1]!.dir).toBe('tx');
    expect(smp[1]!.pdu.slice(0, 10)).toBe('0203002910');
    figures.push(`A: BlueZ Pairing Request ${smp[0]!.pdu}, our Pairing Response ${smp[1]!.pdu}; SC Just Works as responder, Pairing Request to paired (our side): ${pairingMs()}`);
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scUnauthenticated);
    // As peripheral we answer the controller's LTK request with the bond's key (Vol 4, Part E, 7.8.25).
    expect(await ltkRepliesSince(before)).toEqual([hex((await ourBond()).ltk!.key)]);
    // The write goes through now, and our handler saw it.
    await bluezOk('write', ENC, '0102');
    expect(writes).toEqual(['0102']);
    expect(Buffer.from((await bluezOk('read', ENC)).value!, 'hex')).toEqual(Buffer.from([1, 2]));
  });

  it('B: BlueZ reconnects — the link is encrypted from the bond (our LTK), no pairing; the encrypted characteristic reads', async () => {
    await bluezOk('disconnect');
    const before = await mark();
    const c = await timings.timed('BlueZ reconnect to resolved services', () => bluezConnect());
    expect(c.paired).toBe(true);
    const r = await timings.timed('read of the encrypted characteristic on the reconnected link', () => bluezOk('read', ENC));
    expect(Buffer.from(r.value!, 'hex')).toEqual(Buffer.from([1, 2]));
    expect(conn!.security).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    expect(await l2capSince(before, 0x0006)).toEqual([]);
    expect(await ltkRepliesSince(before)).toEqual([hex((await ourBond()).ltk!.key)]);
    // bluetoothd encrypts a bonded device's link before its first request: no 0x0F this time.
    expect((await l2capSince(before, 0x0004)).filter(p => p.dir === 'tx' && p.pdu.startsWith('01') && p.pdu.endsWith('0f'))).toEqual([]);
  });

  /**
   * The opening of C and F: from scratch (startOver), agent KeyboardDisplay, we displayOnly; bluetoothd
   * connects and reads the authenticated characteristic, gets 0x05, pairs with MITM, and its agent types
   * the passkey we display; the read then gives 'vault'. Resolves with the frame the case starts after
   * and the passkey (six digits).
   */
  const bluezReadsWithOurPasskey = async (label: string): Promise<{ before: number; passkey: string }> => {
    await startOver();
    await useAgent('KeyboardDisplay');
    let shown: number | undefined;
    let typing: Promise<void> = Promise.resolve();
    adapter.setPairingPolicy({ io: 'displayOnly', onPasskeyDisplay: n => {
      shown = n;
      typing = bz.bluez.typePasskey(n);
    } });
    try {
      await bluezConnect();
      const before = await mark();
      const r = await timings.timed(label, () => bluezOk('read', AUTH));
      await typing;
      expect(shown).toBeDefined();
      expect(Buffer.from(r.value!, 'hex').toString()).toBe('vault');
      return { before, passkey: String(shown).padStart(6, '0') };
    } finally {
      adapter.setPairingPolicy({});
    }
  };

  it('C: the authenticated characteristic answers 0x05 on the Just Works link; bluetoothd pairs with MITM, its agent types the passkey we display', async () => {
    const { before, passkey } = await bluezReadsWithOurPasskey('SC Passkey Entry on demand, we display (BlueZ ReadValue: 0x05, pair, read again)');
    expect(conn!.security).toEqual({ level: 4, encrypted: true, keySize: 16, authenticated: true, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ secureConnections: true, authenticated: true });
    const att = await l2capSince(before, 0x0004);
    expect(att).toContainEqual({ dir: 'tx', pdu: `010a${le16(handle(AUTH))}05` });
    const smp = await l2capSince(before, 0x0006);
    const req = smp.find(p => p.dir === 'rx' && p.pdu.startsWith('01'))!;
    expect(Number.parseInt(req.pdu.slice(6, 8), 16) & 0x0d).toBe(0x0d); // Bonding | MITM | SC
    expect(smp.find(p => p.dir === 'tx' && p.pdu.startsWith('02'))!.pdu.slice(0, 4)).toBe('0200'); // DisplayOnly
    figures.push(`C: BlueZ Pairing Request ${req.pdu}; passkey ${passkey}; SC Passkey Entry as responder (BlueZ's agent types), Pairing Request to paired: ${pairingMs()}`);
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scAuthenticated);
  });

  it('D: agent DisplayYesNo, we displayYesNo — Numeric Comparison on demand, both sides show the same six digits', async () => {
    await startOver();
    await useAgent('DisplayYesNo');
    let ours: number | undefined;
    let theirs: number | undefined;
    adapter.setPairingPolicy({ io: 'displayYesNo', onNumericComparison: async v => {
      ours = v;
      theirs = await bz.bluez.compareNumbers(v);
      return theirs === v;
    } });
    try {
      await bluezConnect();
      const r = await timings.timed('SC Numeric Comparison on demand (BlueZ ReadValue: 0x05, pair, read again)', () => bluezOk('read', AUTH));
      expect(Buffer.from(r.value!, 'hex').toString()).toBe('vault');
      expect(ours).toBeDefined();
      expect(theirs).toBe(ours);
      expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'numericComparison', authenticated: true });
      expect(conn!.security).toMatchObject({ level: 4, authenticated: true, bonded: true });
      expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scAuthenticated);
      figures.push(`D: SC Numeric Comparison as responder (${ours}), Pairing Request to paired: ${pairingMs()}`);
    } finally {
      adapter.setPairingPolicy({});
    }
  });

  /**
   * A legacy key group of BlueZ's info file for us (`LongTermKey`, or the `PeripheralLongTermKey` its
   * kernel answers with as the peripheral; `SlaveLongTermKey` before 5.62) must hold `ltk`: its key, EDIV
   * and Rand (bluetoothd writes Rand as a decimal of the 8 octets read little-endian). Returns the group.
   */
  const expectKeyGroup = (info: string | undefined, group: 'LongTermKey' | 'PeripheralLongTermKey', ltk: SmpLtk): string => {
    expect(info, 'BlueZ has no bond with us').toBeDefined();
    const names = group === 'LongTermKey' ? 'LongTermKey' : '(?:Peripheral|Slave)LongTermKey';
    const found = new RegExp(`\\[${names}\\]\\n([^[]*)`).exec(info!)?.[1] ?? '';
    expect(found.toUpperCase()).toContain(`KEY=${hex(ltk.key).toUpperCase()}`);
    expect(found).toContain(`EDiv=${ltk.ediv}\n`);
    expect(found).toContain(`Rand=${Buffer.from(ltk.rand).readBigUInt64LE(0)}\n`);
    return found;
  };
  /** BlueZ's [LongTermKey] for us after a legacy pairing as central: the key we distributed, with our EDIV and Rand. */
  const expectBlueZHoldsOurLegacyKey = async (): Promise<string> => {
    const ours = (await ourBond()).localLtk;
    expect(ours, 'we distributed no LTK').toBeDefined();
    return expectKeyGroup(await bluezInfo(), 'LongTermKey', ours!);
  };

  it('E: btmgmt sc off — legacy Just Works as responder; BlueZ stores the LTK we distributed and re-encrypts a new link with it (EDIV/Rand)', async () => {
    await startOver();
    await btmgmt('sc', 'off');
    await useAgent('NoInputNoOutput');
    await bluezConnect();
    let before = await mark();
    const r = await timings.timed('legacy Just Works on demand, we respond (BlueZ ReadValue: 0x0F, pair, read again)', () => bluezOk('read', ENC));
    expect(Buffer.from(r.value!, 'hex')).toEqual(Buffer.from([1, 2]));
    expect(conn!.security).toEqual({ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: false, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'justWorks', secureConnections: false, bonded: true });
    const smp = await l2capSince(before, 0x0006);
    const req = smp.find(p => p.dir === 'rx' && p.pdu.startsWith('01'))!;
    expect(Number.parseInt(req.pdu.slice(6, 8), 16) & 0x08).toBe(0); // no SC bit from BlueZ: legacy
    // Legacy key distribution from us, the responder (3.6.2 / 3.6.3): Encryption Information and Central Identification.
    expect(smp.some(p => p.dir === 'tx' && p.pdu.startsWith('06'))).toBe(true);
    expect(smp.some(p => p.dir === 'tx' && p.pdu.startsWith('07'))).toBe(true);
    const bond = await ourBond();
    expect(bond.secureConnections).toBe(false);
    figures.push(`E: BlueZ Pairing Request ${req.pdu}; legacy Just Works as responder, Pairing Request to paired: ${pairingMs()}`);
    expect(await expectBlueZHoldsOurLegacyKey()).toMatch(LTK_TYPE.legacyUnauthenticated);
    // BlueZ reconnects and encrypts with our key: the controller asks us with our EDIV and Rand (7.7.65.5)
    // and we answer with the key we distributed (7.8.25); btvirt's Encryption Change then succeeds.
    await bluezOk('disconnect');
    before = await mark();
    const c = await bluezConnect();
    expect(c.paired).toBe(true);
    expect(Buffer.from((await bluezOk('read', ENC)).value!, 'hex')).toEqual(Buffer.from([1, 2]));
    expect(conn!.security).toMatchObject({ encrypted: true, bonded: true, secureConnections: false });
    expect(await l2capSince(before, 0x0006)).toEqual([]);
    expect(await ltkRepliesSince(before)).toEqual([hex(bond.localLtk!.key)]);
    const req2 = await tshark('-r', bz.capture, '-Y', `frame.number > ${before} && bthci_evt.le_meta_subevent == 0x05`, '-T', 'fields',
      '-e', 'bthci_evt.le_encrypted_diversifier');
    expect(req2.trim().split('\n').filter(Boolean).map(Number)).toEqual([bond.localLtk!.ediv]);

    // BlueZ's kernel, the initiator, distributed its own LTK too (its Encryption Information and Central
    // Identification after ours, 3.6.2 / 3.6.3): our bond keeps it as ltk with its EDIV and Rand, the key
    // bluetoothd stores as [PeripheralLongTermKey] (the one its kernel answers with as the peripheral).
    const theirs = smp.filter(p => p.dir === 'rx' && /^0[67]/.test(p.pdu));
    expect(theirs.map(p => p.pdu)).toEqual([`06${hex(bond.ltk!.key)}`, `07${le16(bond.ltk!.ediv)}${hex(bond.ltk!.rand)}`]);
    expect(hex(bond.ltk!.key)).not.toBe(hex(bond.localLtk!.key));
    expectKeyGroup(await bluezInfo(), 'PeripheralLongTermKey', bond.ltk!);
  });

  it('F: btmgmt sc off, agent KeyboardDisplay, we displayOnly — legacy Passkey Entry on demand, BlueZ\'s agent types the passkey we display', async () => {
    const { before, passkey } = await bluezReadsWithOurPasskey('legacy Passkey Entry on demand, we display (BlueZ ReadValue: 0x05, pair, read again)');
    expect(conn!.security).toEqual({ level: 3, encrypted: true, keySize: 16, authenticated: true, secureConnections: false, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'passkeyResponderDisplays', secureConnections: false, authenticated: true });
    const smp = await l2capSince(before, 0x0006);
    expect(smp.find(p => p.dir === 'tx' && p.pdu.startsWith('02'))!.pdu.slice(0, 4)).toBe('0200'); // DisplayOnly
    figures.push(`F: passkey ${passkey}; legacy Passkey Entry as responder, Pairing Request to paired: ${pairingMs()}`);
    expect(await expectBlueZHoldsOurLegacyKey()).toMatch(LTK_TYPE.legacyAuthenticated);
  });

  it('G: the roles swap after the legacy pairing of F — we connect to BlueZ as central and encrypt with the LTK, EDIV and Rand BlueZ distributed', async () => {
    // Our bond from F (legacy Passkey Entry, authenticated) keeps BlueZ's own key as ltk: LE Enable
    // Encryption with it (7.8.24); BlueZ's kernel finds its key by EDIV and Rand and answers the LTK
    // Request, and btvirt's Encryption Change succeeds only when both hold the same key.
    const bond = await ourBond();
    expect(bond).toMatchObject({ secureConnections: false, authenticated: true });
    expect(expectKeyGroup(await bluezInfo(), 'PeripheralLongTermKey', bond.ltk!)).toMatch(LTK_TYPE.legacyAuthenticated);
    if (conn?.connected) await bluezOk('disconnect');
    const before = await mark();
    const out = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    try {
      expect(out.role).toBe('central');
      const swapped = await timings.timed('legacy bond, roles swapped: we encrypt as central with BlueZ\'s key (encrypt() call)', () => out.encrypt());
      expect(swapped).toEqual({ level: 3, encrypted: true, keySize: 16, authenticated: true, secureConnections: false, bonded: true });
      expect(await ltksSentSince(bz.capture, before, 0x2019)).toEqual([hex(bond.ltk!.key)]);
      const cmd = await tshark('-r', bz.capture, '-Y', `frame.number > ${before} && bthci_cmd.opcode == 0x2019`, '-T', 'fields',
        '-e', 'bthci_cmd.le_encrypted_diversifier', '-e', 'bthci_cmd.le_random_number');
      // (tshark prints Rand as its 8 octets in wire order, as the bond keeps them.)
      const [ediv, rand] = cmd.trim().split('\t');
      expect([Number(ediv), rand]).toEqual([bond.ltk!.ediv, hex(bond.ltk!.rand)]);
      // No pairing: we send no SMP PDU; BlueZ's kernel may ask for security (Security Request, 0x0B),
      // which the bond answers.
      const smp = await l2capSince(before, 0x0006);
      expect(smp.filter(p => p.dir === 'tx')).toEqual([]);
      expect(smp.filter(p => !p.pdu.startsWith('0b'))).toEqual([]);
      // An ATT read over the encrypted link: BlueZ's Device Name.
      const name = await (await out.characteristic(0x1800, 0x2a00)).read();
      expect(Buffer.from(name).toString()).toMatch(/BlueZ/);
      figures.push(`G: roles swapped, LE Enable Encryption with BlueZ's key (EDIV ${bond.ltk!.ediv}): level 3; BlueZ SMP ${smp.map(p => p.pdu).join(' ') || 'none'}`);
    } finally {
      await out.disconnect().catch(() => undefined);
    }
  });

  it('H: tshark finds no malformed frame in the recording', async () => {
    if (conn?.connected) await conn.disconnect();
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  });
});
