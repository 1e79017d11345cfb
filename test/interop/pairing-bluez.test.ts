/**
 * blewire pairs, as central, with BlueZ 5.66's bluetoothd as peripheral: blewire runs on the host and
 * talks H4 over the bridged socket to a btvirt controller in the qemu guest; the guest's real kernel
 * does BlueZ's side of SMP, bluetoothd keeps its bonds, and BlueZ's own simple-agent (from the examples
 * folder) answers for BlueZ's user at a chosen IO capability. The test drives the guest over its control
 * line (helpers/guest-control.ts): it starts the agent, reads the passkey it displays or types ours into
 * it, confirms a numeric comparison, switches Secure Connections off with btmgmt, removes BlueZ's bond
 * over D-Bus and reads the keys BlueZ stored (/var/lib/bluetooth/<adapter>/<peer>/info). Every
 * expectation comes from BlueZ or the spec: the SMP octets on the wire (decoded by tshark), the LTK
 * BlueZ stored against the one we keep, the ATT errors BlueZ's permission checks give.
 *
 * One boot, cases in order (each starts from the state the previous one left):
 *   A  no agent: the example server's encrypted characteristic answers Insufficient Authentication/Encryption
 *   B  agent NoInputNoOutput: reading that characteristic pairs (LE Secure Connections Just Works) and succeeds
 *   C  reconnect: the link re-encrypts from the bond, no pairing
 *   D  BlueZ removes the bond: encrypt() fails with PIN or Key Missing (0x06), pair() again works
 *   E  we remove the bond: BlueZ, still bonded, refuses Just Works re-pairing (Pairing Failed from the
 *      peer, a typed SmpError); after BlueZ forgets us too, pairing works again
 *   F  agent DisplayYesNo, we displayYesNo: Numeric Comparison; the secure characteristic reads
 *   G  agent KeyboardDisplay, we keyboardOnly: BlueZ displays the passkey, we type it
 *   H  agent KeyboardDisplay, we displayOnly: we display, BlueZ's agent types it
 *   I  btmgmt sc off, agent NoInputNoOutput: legacy Just Works; the legacy bond (EDIV/Rand) re-encrypts
 *   J  btmgmt sc off, agent KeyboardDisplay: legacy Passkey Entry
 * afterAll puts BlueZ back (sc on, no agent, no bond), since other files share the guest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { AttError, HciStatusError, SmpError } from '../../src/errors.js';
import type { PairingProgress } from '../../src/link/pairing.js';
import type { Bond } from '../../src/smp/bonds.js';
import { connectWhenAdvertising, l2capFrom, lastFrame, LTK_TYPE, ltksSentSince, ourBondWith } from './helpers/bluez-peer.js';
import { useBlueZSession } from './helpers/bluez-session.js';
import type { GuestProgram } from './helpers/guest-control.js';
import { Timings } from './helpers/timings.js';
import { tsharkMalformed } from './helpers/tshark.js';

const TEST_SVC = '12345678-1234-5678-1234-56789abcdef0';
const TEST_ENC_CHR = '12345678-1234-5678-1234-56789abcdef3'; // flags encrypt-read, encrypt-write
const TEST_SECURE_CHR = '12345678-1234-5678-1234-56789abcdef5'; // flags secure-read, secure-write
/** Our static random address (Vol 6, Part B, 1.3.2.1: two top bits 1): BlueZ keeps its bond under it. */
const OURS = 'C2:5A:11:22:33:44';
/** The guest is qemu TCG: SMP with P-256 in its kernel, python agents and D-Bus take seconds. */
const SLOW = 60_000;

const timings = new Timings();
const figures: string[] = [];
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

describe('blewire pairs with BlueZ 5.66 (bluetoothd + simple-agent in the qemu guest)', () => {
  // A clean BlueZ: SC on, bondable, no bond with our address left by an earlier run on this guest; and
  // afterwards as other files expect it (as init.sh started it): no agent, SC on, not bondable, no bond with us.
  const bz = useBlueZSession('pairing-bluez', { ours: OURS, slow: SLOW, clean: true, restore: true });
  let adapter: Adapter;
  let conn: Connection | undefined;
  let agent: GuestProgram | undefined;
  /** How many Just Works pairings BlueZ's agent has authorised. */
  let authorized: () => number = () => 0;
  /** Pairing progress of the current link. */
  let seen: PairingProgress[] = [];

  const bluezInfo = (): Promise<string | undefined> => bz.bluez.info();
  const btmgmt = (...args: string[]): Promise<string> => bz.bluez.btmgmt(...args);
  /** Drops our link, then makes BlueZ forget us (BlueZPeer.forget: it waits for bluetoothd to see the link go). */
  const bluezForget = async (): Promise<void> => {
    if (conn?.connected) await conn.disconnect();
    await bz.bluez.forget();
  };
  /** A new pairing case: no link, no bond on either side. */
  const startOver = async (): Promise<void> => {
    await bluezForget();
    await adapter.removeBond(bz.guest.peripheral);
  };
  /** Replaces BlueZ's agent with simple-agent at this IO capability (or none). */
  const useAgent = async (io: string | undefined): Promise<void> => {
    ({ program: agent, authorized } = await bz.bluez.useAgent(io));
  };

  /** A fresh link to BlueZ (retried on btvirt's 0x3E while BlueZ is between advertisements). */
  const connect = async (): Promise<Connection> => {
    if (conn?.connected) await conn.disconnect();
    conn = await connectWhenAdvertising(adapter, bz.guest.peripheral);
    seen = [];
    conn.on('pairing', p => seen.push(p));
    // Where BlueZ holds no key for us, the tests pair next: first let bluetoothd's GATT client read our
    // database, else the pairing arms its reverse service discovery (BlueZPeer.servicesResolved). With a
    // bond it has resolved us before (the flag outlives the link) and may hold its requests until the
    // link is encrypted, so there is nothing to wait for.
    if (!/LongTermKey\]/.test(await bz.bluez.info() ?? '')) await bz.bluez.servicesResolved();
    return conn;
  };

  const mark = (): Promise<number> => lastFrame(bz.capture);

  /** SMP PDUs (CID 0x0006) after `after`, as tshark reassembled them. */
  const smpSince = (after: number): Promise<Array<{ dir: 'tx' | 'rx'; pdu: string }>> => l2capFrom(bz.capture, after, 0x0006);

  /** HCI LE Enable Encryption commands after `after`, with the LTK as it travels. */
  const encryptionsSince = (after: number): Promise<string[]> => ltksSentSince(bz.capture, after, 0x2019);

  /** Our bond with BlueZ, which must exist. */
  const ourBond = (): Promise<Bond> => ourBondWith(adapter, bz.guest.peripheral);
  /** BlueZ stored the key we hold. */
  const expectBlueZHoldsOurKey = (): Promise<string> => bz.bluez.storesOurKey(adapter);

  const encChar = async (c: Connection) => c.characteristic(TEST_SVC, TEST_ENC_CHR, { timeout: SLOW });

  beforeAll(async () => {
    adapter = await bz.openAdapter();
  }, 900_000);

  afterAll(async () => {
    if (conn?.connected) await conn.disconnect().catch(() => undefined);
    console.log(['pairing-bluez timings (wall; the guest is qemu TCG on a shared 2-core host):', ...timings.lines(),
      'pairing-bluez figures:', ...figures.map(f => `  ${f}`)].join('\n'));
  });

  it('A: with no agent, the encrypted characteristic answers with an ATT security error', async () => {
    adapter.setPairingPolicy({ retryOnSecurityError: false });
    try {
      const c = await connect();
      const err = await (await encChar(c)).read({ timeout: SLOW }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AttError);
      expect([0x05, 0x0f]).toContain((err as AttError).errorCode);
      expect(c.security.encrypted).toBe(false);
    } finally {
      adapter.setPairingPolicy({});
    }
  });

  it('B: agent NoInputNoOutput — reading the encrypted characteristic pairs (SC Just Works), BlueZ stores the same LTK', async () => {
    await useAgent('NoInputNoOutput');
    const c = await connect();
    const chr = await encChar(c);
    const before = await mark();
    const value = await timings.timed('SC Just Works, on demand (ATT error -> pair -> retried write)', () =>
      chr.write(Uint8Array.of(0x42, 0x57), { timeout: SLOW }));
    void value;
    expect(Array.from(await chr.read({ timeout: SLOW }))).toEqual([0x42, 0x57]);
    expect(c.security).toEqual({ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'justWorks', secureConnections: true });
    expect(agent!.output).toMatch(/RequestAuthorization \(\/org\/bluez\/hci0\/dev_C2_5A_11_22_33_44\)/);
    expect(authorized()).toBe(1);
    const smp = await smpSince(before);
    // Our Pairing Request (Vol 3, Part H, 3.5.1): NoInputNoOutput, no OOB, Bonding | SC | CT2, 16, EncKey |
    // LinkKey, EncKey | IdKey | SignKey | LinkKey.
    expect(smp[0]).toEqual({ dir: 'tx', pdu: '0103002910090f' });
    // BlueZ's Pairing Response: NoInputNoOutput, no OOB, Bonding | SC | CT2, 16-octet keys; of the keys
    // we offered it takes EncKey from us (LinkKey needs BR/EDR, which its LE-only controller lacks) and
    // gives EncKey | SignKey (a CSRK; its IRK only with privacy on).
    expect(smp[1]).toEqual({ dir: 'rx', pdu: '02030029100105' });
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scUnauthenticated);
    expect(await encryptionsSince(before)).toEqual([hex((await ourBond()).ltk!.key)]);
  });

  it('C: a new link re-encrypts from the bond; no pairing; the characteristic reads', async () => {
    const c = await connect();
    const before = await mark();
    const state = await timings.timed('re-encryption from the bond (encrypt())', () => c.encrypt({ timeout: SLOW }));
    expect(state).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    expect(Array.from(await (await encChar(c)).read({ timeout: SLOW }))).toEqual([0x42, 0x57]);
    // No pairing PDU either way; at most BlueZ's Security Request (0x0b), which a bond answers by encrypting.
    const smp = await smpSince(before);
    expect(smp.filter(r => r.pdu.slice(0, 2) !== '0b')).toEqual([]);
    expect(await encryptionsSince(before)).toEqual([hex((await ourBond()).ltk!.key)]);
  });

  it('D: BlueZ removes the bond — encrypt() fails with PIN or Key Missing (0x06); pair() again works', async () => {
    if (conn?.connected) await conn.disconnect();
    await bluezForget();
    const c = await connect();
    const err = await c.encrypt({ timeout: SLOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HciStatusError);
    expect(err).toMatchObject({ code: 'EHCISTATUS', status: 0x06, statusName: 'PIN or Key Missing' });
    expect(c.security.encrypted).toBe(false);
    const old = hex((await ourBond()).ltk!.key);
    expect(await c.pair({ timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    expect(hex((await ourBond()).ltk!.key)).not.toBe(old);
    await expectBlueZHoldsOurKey();
  });

  it('E: we remove the bond — BlueZ refuses Just Works re-pairing while it keeps its own (typed SmpError from the peer); once it forgets us too, pairing works', async () => {
    if (conn?.connected) await conn.disconnect();
    expect(await adapter.removeBond(bz.guest.peripheral)).toBe(true);
    // BlueZ still bonded with us asks for encryption (Security Request) and holds our ATT requests until
    // then; we ignore that request here so that exactly one pairing (ours, below) is tried.
    adapter.setPairingPolicy({ onSecurityRequest: 'ignore' });
    const asked = authorized();
    try {
      const c = await connect();
      const before = await mark();
      const err = await c.pair({ timeout: SLOW }).catch((e: unknown) => e);
      // bluetoothd's Just Works re-pairing policy (main.conf JustWorksRepairing, default never) rejects
      // the kernel's confirmation for a device it is paired with; the kernel sends Pairing Failed.
      expect(err).toBeInstanceOf(SmpError);
      // The kernel answers the rejected confirmation with Numeric Comparison Failed.
      expect(err).toMatchObject({ code: 'ESMP', by: 'peer', reason: 0x0c, reasonName: 'Numeric Comparison Failed' });
      const reason = (err as SmpError).reason;
      const smp = await smpSince(before);
      figures.push(`E: JW re-pairing with BlueZ still bonded: Pairing Failed 0x${reason.toString(16)} ${(err as SmpError).reasonName}`);
      expect(smp[smp.length - 1]).toEqual({ dir: 'rx', pdu: `05${reason.toString(16).padStart(2, '0')}` });
      expect(c.security.encrypted).toBe(false);
      expect(await ourBond().catch(() => undefined)).toBeUndefined();
      expect(authorized()).toBe(asked); // the agent was not asked: bluetoothd refused by itself
    } finally {
      adapter.setPairingPolicy({});
    }
    await bluezForget();
    // Our own back-off after a failed pairing with this peer (Vol 3, Part H, 2.3.6): 2 s after one failure.
    await new Promise(r => setTimeout(r, 2_100));
    const c = await connect();
    expect(await c.pair({ timeout: SLOW })).toMatchObject({ encrypted: true, bonded: true, secureConnections: true });
    expect(Array.from(await (await encChar(c)).read({ timeout: SLOW }))).toEqual([0x42, 0x57]);
    await expectBlueZHoldsOurKey();
  });

  it('F: agent DisplayYesNo — Numeric Comparison, both sides show the same six digits; the secure characteristic reads', async () => {
    await startOver();
    await useAgent('DisplayYesNo');
    const c = await connect();
    let ours: number | undefined;
    let theirs: number | undefined;
    const before = await mark();
    const state = await timings.timed('SC Numeric Comparison (agent answered over the control line)', () => c.pair({
      io: 'displayYesNo', timeout: SLOW,
      onNumericComparison: async v => {
        ours = v;
        theirs = await bz.bluez.compareNumbers(v);
        return theirs === v;
      },
    }));
    expect(ours).toBeDefined();
    expect(theirs).toBe(ours);
    expect(state).toEqual({ level: 4, encrypted: true, keySize: 16, authenticated: true, secureConnections: true, bonded: true });
    const smp = await smpSince(before);
    expect(smp[0]).toEqual({ dir: 'tx', pdu: '0101002d10090f' }); // DisplayYesNo, Bonding | MITM | SC | CT2
    expect(Buffer.from(smp[1]!.pdu, 'hex')[1]).toBe(0x01); // BlueZ: DisplayYesNo
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scAuthenticated);
    // secure-read needs an authenticated SC key (level 4): it reads now.
    const secure = await c.characteristic(TEST_SVC, TEST_SECURE_CHR, { timeout: SLOW });
    expect(await secure.read({ timeout: SLOW })).toBeInstanceOf(Uint8Array);
  });

  it('G: agent KeyboardDisplay, we keyboardOnly — BlueZ displays the passkey, we type it', async () => {
    await startOver();
    await useAgent('KeyboardDisplay');
    const c = await connect();
    let typed: number | undefined;
    const state = await timings.timed('SC Passkey Entry, BlueZ displays (20 rounds)', () => c.pair({
      io: 'keyboardOnly', timeout: SLOW,
      onPasskeyRequest: async () => {
        typed = await bz.bluez.displayedPasskey();
        return typed;
      },
    }));
    expect(typed).toBeDefined();
    expect(state).toMatchObject({ level: 4, authenticated: true, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'passkeyResponderDisplays' });
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scAuthenticated);
  });

  it('H: agent KeyboardDisplay, we displayOnly — we display the passkey, BlueZ\'s agent types it', async () => {
    await startOver();
    const c = await connect();
    let shown: number | undefined;
    let typing: Promise<void> = Promise.resolve();
    const state = await timings.timed('SC Passkey Entry, we display (20 rounds)', () => c.pair({
      io: 'displayOnly', timeout: SLOW,
      onPasskeyDisplay: n => {
        shown = n;
        typing = bz.bluez.typePasskey(n);
      },
    }));
    await typing;
    expect(shown).toBeDefined();
    expect(state).toMatchObject({ level: 4, authenticated: true, secureConnections: true, bonded: true });
    expect(seen.find(p => p.stage === 'paired')).toMatchObject({ method: 'passkeyInitiatorDisplays' });
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.scAuthenticated);
  });

  it('I: btmgmt sc off, agent NoInputNoOutput — legacy Just Works; the legacy bond (EDIV/Rand) re-encrypts a new link', async () => {
    await startOver();
    await btmgmt('sc', 'off');
    await useAgent('NoInputNoOutput');
    let c = await connect();
    const before = await mark();
    const state = await timings.timed('legacy Just Works', () => c.pair({ timeout: SLOW }));
    expect(state).toEqual({ level: 2, encrypted: true, keySize: 16, authenticated: false, secureConnections: false, bonded: true });
    const smp = await smpSince(before);
    expect(smp[0]).toEqual({ dir: 'tx', pdu: '0103002910090f' });
    const rsp = Buffer.from(smp[1]!.pdu, 'hex');
    expect(rsp[3]! & 0x08).toBe(0); // no SC bit from BlueZ: legacy
    // Legacy: BlueZ distributes its LTK with EDIV and Rand (Encryption Information 0x06, Central
    // Identification 0x07); that is the key we re-encrypt with, and the one BlueZ stored.
    expect(smp.some(r => r.dir === 'rx' && r.pdu.startsWith('06'))).toBe(true);
    expect(smp.some(r => r.dir === 'rx' && r.pdu.startsWith('07'))).toBe(true);
    const bond = await ourBond();
    expect(bond.secureConnections).toBe(false);
    expect(bond.ltk!.ediv !== 0 || hex(bond.ltk!.rand) !== '0000000000000000').toBe(true);
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.legacyUnauthenticated);
    c = await connect();
    const again = await mark();
    expect(await timings.timed('re-encryption from a legacy bond', () => c.encrypt({ timeout: SLOW })))
      .toMatchObject({ encrypted: true, secureConnections: false });
    expect((await smpSince(again)).filter(r => r.pdu.slice(0, 2) !== '0b')).toEqual([]);
    expect(Array.from(await (await encChar(c)).read({ timeout: SLOW }))).toEqual([0x42, 0x57]);
  });

  it('J: btmgmt sc off, agent KeyboardDisplay — legacy Passkey Entry, BlueZ displays, we type', async () => {
    await startOver();
    await useAgent('KeyboardDisplay');
    const c = await connect();
    const state = await timings.timed('legacy Passkey Entry, BlueZ displays', () => c.pair({
      io: 'keyboardOnly', timeout: SLOW,
      onPasskeyRequest: () => bz.bluez.displayedPasskey(),
    }));
    expect(state).toMatchObject({ level: 3, authenticated: true, secureConnections: false, bonded: true });
    expect(await expectBlueZHoldsOurKey()).toMatch(LTK_TYPE.legacyAuthenticated);
  });

  it('tshark finds no malformed packet in the recorded pairing', async () => {
    if (conn?.connected) await conn.disconnect();
    expect(await tsharkMalformed(bz.capture)).toEqual([]);
  });
});
