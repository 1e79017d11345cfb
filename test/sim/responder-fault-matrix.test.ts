// The responder-role fault matrix (issue 9): our PERIPHERAL runs the SMP responder (Vol 3, Part H,
// 2.3, 3.5, 3.6) for a blewire central over SimAir, with every pairing method our peripheral can pair
// with, under every fault a central can put to a responder. The faults come from the central's side of
// the air: a tap on its HCI transport drops, rewrites or replaces its SMP PDUs at a stage of the
// pairing — after its Pairing Request, at its first Pairing Random, at its last PDU (the DHKey Check in
// LE Secure Connections, the Encryption Information of its key distribution in LE legacy pairing) — or
// the central itself aborts its pairing (a real Pairing Failed from its SMP) or disconnects there.
//
// Each cell checks, on the virtual clock:
//  - our peripheral's pairing ends, typed, with what the specification says (EXPECTED below): the
//    SmpError's reason and side, a TimeoutError at the 30 s SMP timeout (3.4), a DisconnectedError;
//  - the Pairing Failed we put on the wire (or that we sent none), read from our HCI ACL traffic;
//  - the central's pair() settles (no hung promise) and no bond is left at our peripheral;
//  - the link is usable (a GATT read answers) or cleanly closed (`closed` resolves, the adapter
//    forgets it); after an SMP timeout, SMP refuses to run again on that link (3.4): a new Pairing
//    Request gets no answer;
//  - the next pairing, with a well-behaved central on a new link, succeeds on both sides;
//  - once both adapters are closed no timer is left on the shared clock.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import type { PairingPolicy, PairingProgress } from '../../src/link/pairing.js';
import { BlewireError, SmpError } from '../../src/errors.js';
import { createSimulator, SimAir } from '../../src/sim/index.js';
import { smpTap, type Dir, type Rewrite } from '../helpers/smp-tap.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';
import { p256FromPrivateKey, type P256KeyPair } from '../../src/smp/crypto.js';

const SVC = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const PADDR = 'C4:11:22:33:44:58';
const TK = Uint8Array.from({ length: 16 }, (_, i) => 0x50 + i);
/** Our peripheral's P-256 key pair, fixed so that the central's tap can reflect its public key. */
const OUR_KEY: P256KeyPair = p256FromPrivateKey(Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff));

// ---------------------------------------------------------------------------------------------------
// Methods: every one our peripheral can pair with (the responder's side of 2.3.5.1's tables).

const METHODS = ['SC Just Works', 'SC Numeric Comparison', 'SC Passkey (we display)', 'SC Passkey (we type)', 'SC OOB (our data)',
  'legacy Just Works', 'legacy Passkey (we display)', 'legacy Passkey (we type)', 'legacy OOB'] as const;
type Method = (typeof METHODS)[number];

/** A passkey shown on one side and typed on the other, fresh for each pairing. */
class Passkey {
  private value: number | undefined;
  private waiters: Array<(n: number) => void> = [];
  reset(): void { this.value = undefined; }
  shown(n: number): void { this.value = n; for (const w of this.waiters.splice(0)) w(n); }
  typed(): number | Promise<number> { return this.value ?? new Promise<number>(r => this.waiters.push(r)); }
}

function policies(m: Method, pk: Passkey): { p: PairingPolicy; c: PairingPolicy; sc: boolean; authenticated: boolean } {
  const ui: PairingPolicy = { onNumericComparison: () => true, onPasskeyDisplay: n => pk.shown(n), onPasskeyRequest: () => pk.typed() };
  const legacy: PairingPolicy = { secureConnections: false };
  switch (m) {
    case 'SC Just Works': return { p: { ...ui }, c: { ...ui }, sc: true, authenticated: false };
    case 'SC Numeric Comparison': return { p: { ...ui, io: 'displayYesNo' }, c: { ...ui, io: 'displayYesNo' }, sc: true, authenticated: true };
    case 'SC Passkey (we display)': return { p: { ...ui, io: 'displayOnly' }, c: { ...ui, io: 'keyboardOnly' }, sc: true, authenticated: true };
    case 'SC Passkey (we type)': return { p: { ...ui, io: 'keyboardOnly' }, c: { ...ui, io: 'displayOnly' }, sc: true, authenticated: true };
    case 'SC OOB (our data)': return { p: { ...ui }, c: { ...ui }, sc: true, authenticated: true };
    case 'legacy Just Works': return { p: { ...ui, ...legacy }, c: { ...ui }, sc: false, authenticated: false };
    case 'legacy Passkey (we display)': return { p: { ...ui, ...legacy, io: 'displayOnly' }, c: { ...ui, io: 'keyboardOnly' }, sc: false, authenticated: true };
    case 'legacy Passkey (we type)': return { p: { ...ui, ...legacy, io: 'keyboardOnly' }, c: { ...ui, io: 'displayOnly' }, sc: false, authenticated: true };
    case 'legacy OOB': return { p: { ...ui, ...legacy, oob: { legacyTk: TK } }, c: { ...ui, oob: { legacyTk: TK } }, sc: false, authenticated: true };
  }
}

// ---------------------------------------------------------------------------------------------------
// Faults, each at the central's side of the air.

/**
 * The central's PDU a fault strikes, after its Pairing Request: its first (the Pairing Public Key in
 * SC, the Pairing Confirm in legacy), its first Pairing Random, or its last (SC: the DHKey Check;
 * legacy: the Encryption Information that opens its key distribution, sent on the STK-encrypted link).
 */
type Stage = 'first' | 'random' | 'last';
const stageOpcode = (s: Stage, sc: boolean): number => (s === 'first' ? (sc ? 0x0c : 0x03) : s === 'random' ? 0x04 : sc ? 0x0d : 0x06);

const FAULTS = [
  'silent after its Pairing Request', 'silent from its first Pairing Random', 'silent from its last PDU',
  'bad confirm', 'bad random', 'bad DHKey check', 'invalid public key', 'our own public key reflected',
  'max key size 6 (below 7)', 'max key size 12 (below our 16)',
  'Pairing Failed after its Pairing Request', 'Pairing Failed at its first Pairing Random', 'Pairing Failed at its last PDU',
  'disconnect after its Pairing Request', 'disconnect at its first Pairing Random', 'disconnect at its last PDU',
  'out-of-order PDU (Encryption Information)', 'out-of-order PDU (a second Pairing Request)',
  'malformed length (first PDU cut short)', 'malformed length (Pairing Random one octet long)', 'reserved opcode 0x3f',
] as const;
type Fault = (typeof FAULTS)[number];

/** What ends our peripheral's pairing, and the Pairing Failed reason we send (undefined: none). */
type Expected = 'n/a' | { error: 'TimeoutError' } | { error: 'DisconnectedError' } | { error: 'SmpError'; by: 'local' | 'peer'; reason: number; sent?: number; detail?: RegExp };

const R = { ConfirmValueFailed: 0x04, EncryptionKeySize: 0x06, CommandNotSupported: 0x07, UnspecifiedReason: 0x08, InvalidParameters: 0x0a, DhKeyCheckFailed: 0x0b };
const local = (reason: number, detail?: RegExp): Expected => ({ error: 'SmpError', by: 'local', reason, sent: reason, ...(detail ? { detail } : {}) });

/**
 * From the specification:
 * - silence: the responder's SMP timer (restarted at each PDU it sends) runs out at 30 s (3.4);
 * - a wrong Pairing Confirm/Random pair fails our confirm check, 0x04 (2.3.5.5 legacy, 2.3.5.6.3 the
 *   passkey rounds); in SC Just Works / Numeric Comparison / OOB the initiator sends no confirm and its
 *   Na is checked only through the DHKey Check, 0x0B (2.3.5.6.2, 2.3.5.6.4, 2.3.5.6.5);
 * - a public key not on P-256, or ours sent back, fails as a DHKey check failure, 0x0B (2.3.5.6.1, the
 *   CVE-2018-5383 and CVE-2020-26558 checks);
 * - a maximum key size outside 7..16 is an invalid parameter, 0x0A (3.5.1); one below our minimum is
 *   Encryption Key Size, 0x06 (2.3.4);
 * - the central's Pairing Failed ends ours with its reason, and we send none back (3.5.5);
 * - a PDU out of sequence is Unspecified Reason, 0x08; a wrong length Invalid Parameters, 0x0A; a
 *   reserved code Command Not Supported, 0x07 (3.3).
 */
function expected(m: Method, f: Fault): Expected {
  const sc = m.startsWith('SC');
  const passkeyOrLegacy = !sc || m.startsWith('SC Passkey');
  switch (f) {
    case 'silent after its Pairing Request': case 'silent from its first Pairing Random': case 'silent from its last PDU':
      return { error: 'TimeoutError' };
    case 'bad confirm': return passkeyOrLegacy ? local(R.ConfirmValueFailed) : 'n/a';
    case 'bad random': return passkeyOrLegacy ? local(R.ConfirmValueFailed) : local(R.DhKeyCheckFailed);
    // Each for its own reason (the detail): the two key checks fire before any DHKey is computed.
    case 'bad DHKey check': return sc ? local(R.DhKeyCheckFailed, /initiator's DHKey check value does not match/) : 'n/a';
    case 'invalid public key': return sc ? local(R.DhKeyCheckFailed, /not a point of P-256/) : 'n/a';
    case 'our own public key reflected': return sc ? local(R.DhKeyCheckFailed, /our own public key back/) : 'n/a';
    case 'max key size 6 (below 7)': return local(R.InvalidParameters);
    case 'max key size 12 (below our 16)': return local(R.EncryptionKeySize);
    case 'Pairing Failed after its Pairing Request': case 'Pairing Failed at its first Pairing Random': case 'Pairing Failed at its last PDU':
      return { error: 'SmpError', by: 'peer', reason: R.UnspecifiedReason };
    case 'disconnect after its Pairing Request': case 'disconnect at its first Pairing Random': case 'disconnect at its last PDU':
      return { error: 'DisconnectedError' };
    case 'out-of-order PDU (Encryption Information)': case 'out-of-order PDU (a second Pairing Request)': return local(R.UnspecifiedReason);
    case 'malformed length (first PDU cut short)': case 'malformed length (Pairing Random one octet long)': return local(R.InvalidParameters);
    case 'reserved opcode 0x3f': return local(R.CommandNotSupported);
  }
}

const flip = (pdu: Uint8Array, at = 1): Uint8Array => pdu.map((b, i) => (i === at ? b ^ 0x01 : b));
const reversed = (b: Uint8Array): Uint8Array => Uint8Array.from(b).reverse();

/** The tap rewrite for a fault, striking once; `act` runs the central's own reactions (abort, disconnect). */
function rewriteFor(f: Fault, sc: boolean, act: { abort: () => void; disconnect: () => void }): Rewrite {
  let done = false;
  let silent = false;
  const once = (opcode: number, fn: (pdu: Uint8Array) => Uint8Array | 'drop' | undefined): Rewrite => pdu => {
    if (silent) return 'drop';
    if (done || pdu[0] !== opcode) return undefined;
    done = true;
    return fn(pdu);
  };
  const silence = (s: Stage): Rewrite => once(stageOpcode(s, sc), () => { silent = true; return 'drop'; });
  /** Sends `out` in the PDU's place, drops all the central sends after it, and runs `fn` (after this send). */
  const stop = (out: Uint8Array | 'drop', fn: () => void) => (): Uint8Array | 'drop' => { silent = true; queueMicrotask(fn); return out; };
  switch (f) {
    case 'silent after its Pairing Request': return silence('first');
    case 'silent from its first Pairing Random': return silence('random');
    case 'silent from its last PDU': return silence('last');
    case 'bad confirm': return once(0x03, p => flip(p));
    case 'bad random': return once(0x04, p => flip(p));
    case 'bad DHKey check': return once(0x0d, p => flip(p, 16));
    // X = 1, Y = 1 is not on y^2 = x^3 - 3x + b.
    case 'invalid public key': return once(0x0c, () => Uint8Array.of(0x0c, 1, ...new Uint8Array(31), 1, ...new Uint8Array(31)));
    case 'our own public key reflected': return once(0x0c, () => Uint8Array.of(0x0c, ...reversed(OUR_KEY.x), ...reversed(OUR_KEY.y)));
    case 'max key size 6 (below 7)': return once(0x01, p => p.map((b, i) => (i === 4 ? 6 : b)));
    case 'max key size 12 (below our 16)': return once(0x01, p => p.map((b, i) => (i === 4 ? 12 : b)));
    // A Pairing Failed (Unspecified Reason) where the central's PDU was, then nothing more from it; its
    // own pair() is aborted there (so it does not wait out its own timer; what its SMP then sends is
    // dropped with the rest).
    case 'Pairing Failed after its Pairing Request': return once(stageOpcode('first', sc), stop(Uint8Array.of(0x05, 0x08), act.abort));
    case 'Pairing Failed at its first Pairing Random': return once(0x04, stop(Uint8Array.of(0x05, 0x08), act.abort));
    case 'Pairing Failed at its last PDU': return once(stageOpcode('last', sc), stop(Uint8Array.of(0x05, 0x08), act.abort));
    // The central drops the link instead of sending that PDU.
    case 'disconnect after its Pairing Request': return once(stageOpcode('first', sc), stop('drop', act.disconnect));
    case 'disconnect at its first Pairing Random': return once(0x04, stop('drop', act.disconnect));
    case 'disconnect at its last PDU': return once(stageOpcode('last', sc), stop('drop', act.disconnect));
    case 'out-of-order PDU (Encryption Information)': return once(stageOpcode('first', sc), () => Uint8Array.of(0x06, ...new Uint8Array(16).fill(0x11)));
    case 'out-of-order PDU (a second Pairing Request)': return once(0x04, () => Uint8Array.of(0x01, 0x03, 0x00, 0x2d, 0x10, 0x09, 0x09));
    case 'malformed length (first PDU cut short)': return once(stageOpcode('first', sc), p => p.subarray(0, 4));
    case 'malformed length (Pairing Random one octet long)': return once(0x04, () => Uint8Array.of(0x04, 0x42));
    case 'reserved opcode 0x3f': return once(0x04, () => Uint8Array.of(0x3f, 1, 2, 3));
  }
}

// ---------------------------------------------------------------------------------------------------

const opened: Adapter[] = [];
afterEach(async () => {
  for (const a of opened.splice(0)) await a.close().catch(() => undefined);
});

async function world(p: PairingPolicy) {
  const air = new SimAir();
  const cs = createSimulator({ name: 'central', peripherals: [] }, { air });
  const ps = createSimulator({ name: 'peripheral', peripherals: [] }, { air });
  const ct = smpTap(cs.transport);
  const pt = smpTap(ps.transport);
  const peripheralBonds = new MemoryBondStore();
  const central = await Adapter.open({ transport: ct.transport, clock: air.clock, bonds: new MemoryBondStore() });
  const peripheral = await Adapter.open({ transport: pt.transport, clock: air.clock, bonds: peripheralBonds, randomAddress: PADDR, pairing: p,
    pairingEntropy: { keyPair: () => OUR_KEY } });
  opened.push(central, peripheral);
  await peripheral.serve([{ uuid: SVC, characteristics: [{ uuid: 0xfff1, properties: ['read'], value: Uint8Array.of(7) }] }]);
  return { air, central, peripheral, peripheralBonds, ct, pt };
}
type World = Awaited<ReturnType<typeof world>>;

async function connect(w: World): Promise<{ conn: Connection; incoming: Connection; seen: PairingProgress[] }> {
  const accepted = w.peripheral.accept();
  await w.peripheral.advertise({ name: 'rfm' });
  const ad = await w.central.find({ name: 'rfm', timeout: 5000 });
  const conn = await w.central.connect(ad!);
  const incoming = (await accepted.next()).value as Connection;
  await accepted.return!();
  const seen: PairingProgress[] = [];
  incoming.on('pairing', e => seen.push(e));
  return { conn, incoming, seen };
}

/** Polls on the virtual clock; on timeout says what was seen. */
async function until<T>(w: World, f: () => T | undefined, what: string, seen: () => unknown, ms = 60_000): Promise<T> {
  const end = w.air.clock.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (w.air.clock.now() >= end) throw new Error(`never: ${what} within ${ms} ms; seen ${JSON.stringify(seen())}`);
    await w.air.clock.delay(10);
  }
}

async function cell(m: Method, f: Fault, want: Exclude<Expected, 'n/a'>): Promise<void> {
  const pk = new Passkey();
  const pol = policies(m, pk);
  const w = await world(pol.p);
  let link = await connect(w);
  const ctl = new AbortController();
  w.ct.rewrite.fn = rewriteFor(f, pol.sc, { abort: () => ctl.abort(), disconnect: () => { void link.conn.disconnect(); } });
  const ours = (): PairingPolicy => (m === 'SC OOB (our data)' ? { ...pol.c, oob: { peer: link.incoming.localOobData() } } : pol.c);
  const start = w.air.clock.now();

  // 1. The central's pair() settles (ok or typed); our peripheral's pairing fails as expected.
  const central = await link.conn.pair({ ...ours(), signal: ctl.signal, timeout: 60_000 }).then(() => 'ok', (e: unknown) => e);
  if (central !== 'ok') expect(central, 'the central\'s pair() fails typed').toBeInstanceOf(BlewireError);
  const failed = await until(w, () => link.seen.find(e => e.stage === 'failed'), 'our peripheral\'s pairing failed',
    () => ({ seen: link.seen, smp: w.pt.smp })) as Extract<PairingProgress, { stage: 'failed' }>;
  expect(failed.error, `${m} × ${f}: typed`).toBeInstanceOf(BlewireError);
  expect(failed.error.name).toBe(want.error);
  if (want.error === 'SmpError') {
    expect(failed.error).toBeInstanceOf(SmpError);
    expect(failed.error).toMatchObject({ by: want.by, reason: want.reason });
    if (want.detail) expect((failed.error as SmpError).detail).toMatch(want.detail);
  }
  if (want.error === 'TimeoutError') {
    expect(failed.error.code).toBe('ETIMEDOUT');
    expect(w.air.clock.now() - start, 'the SMP timeout is 30 s (3.4)').toBeGreaterThanOrEqual(30_000);
  }
  expect(link.seen.some(e => e.stage === 'paired'), 'never paired').toBe(false);

  // 2. Our Pairing Failed on the wire: exactly the expected reason, or none at all.
  const sent = w.pt.smp.filter(r => r.dir === 'tx' && r.hex.startsWith('05')).map(r => r.hex);
  expect(sent, 'Pairing Failed from our peripheral').toEqual(want.error === 'SmpError' && want.sent !== undefined
    ? [`05${want.sent.toString(16).padStart(2, '0')}`] : []);
  if (want.error === 'SmpError' && want.by === 'peer') {
    expect(w.pt.smp.filter(r => r.dir === 'rx' && r.hex.startsWith('05')), 'the central\'s own Pairing Failed').toEqual([{ dir: 'rx', hex: '0508' }]);
  }
  expect(await w.peripheralBonds.list(), 'no bond').toEqual([]);

  // 3. The link: usable (an unprotected read answers) or cleanly closed.
  await w.air.clock.delay(100);
  if (want.error === 'DisconnectedError') {
    const reason = await link.incoming.closed;
    expect(typeof reason.code).toBe('number');
    expect(w.peripheral.connections).not.toContain(link.incoming);
  } else {
    expect(link.incoming.connected).toBe(true);
    expect([...(await (await link.conn.characteristic(SVC, 0xfff1)).read())]).toEqual([7]);
  }

  // 3b. After an SMP timeout no SMP runs on the link any more (3.4): a new Pairing Request (injected
  //     below the central's host, whose own SMP may be dead too) gets no answer.
  if (want.error === 'TimeoutError') {
    w.ct.rewrite.fn = undefined;
    const before = w.pt.smp.length;
    w.ct.inject(Uint8Array.of(0x01, 0x03, 0x00, 0x2d, 0x10, 0x09, 0x09));
    await until(w, () => (w.pt.smp.length > before ? true : undefined), 'the injected Pairing Request arrived', () => w.pt.smp.slice(before));
    await w.air.clock.delay(2000);
    expect(w.pt.smp.slice(before), 'no answer after the SMP timeout').toEqual([{ dir: 'rx', hex: '0103002d100909' }]);
    expect(link.seen.filter(e => e.stage === 'started'), 'no new pairing started').toHaveLength(1);
  }

  // 4. The next pairing behaves: a well-behaved central, a new link, past the repeated-attempts wait (2.3.6).
  w.ct.rewrite.fn = undefined;
  await w.air.clock.delay(35_000);
  if (link.conn.connected) await link.conn.disconnect();
  await until(w, () => (w.peripheral.connections.length === 0 ? true : undefined), 'the old link gone', () => w.peripheral.connections.length);
  link = await connect(w);
  pk.reset();
  await expect(link.conn.pair({ ...ours(), timeout: 60_000 }), `${m} after ${f}`).resolves.toMatchObject({
    encrypted: true, authenticated: pol.authenticated, secureConnections: pol.sc, bonded: true });
  expect(await until(w, () => link.seen.find(e => e.stage === 'paired'), 'our peripheral paired', () => link.seen)).toMatchObject({
    secureConnections: pol.sc, authenticated: pol.authenticated });
  let bonds = await w.peripheralBonds.list();
  for (let i = 0; i < 100 && bonds.length === 0; i++) { await w.air.clock.delay(10); bonds = await w.peripheralBonds.list(); }
  expect(bonds, 'bonded after the good pairing').toHaveLength(1);

  // 5. Nothing left on the clock.
  await w.central.close();
  await w.peripheral.close();
  expect(w.air.clock.pendingTimers, 'timers left after close').toBe(0);
}

describe('responder fault matrix: every method our peripheral pairs with × every fault a central can put to it', () => {
  for (const m of METHODS) {
    for (const f of FAULTS) {
      const want = expected(m, f);
      if (want === 'n/a') continue;
      test(`${m} × ${f}`, () => cell(m, f, want), 30_000);
    }
  }
  test('the matrix has every cell that applies', () => {
    const cells = METHODS.flatMap(m => FAULTS.map(f => expected(m, f))).filter(e => e !== 'n/a');
    // 9 methods × 21 faults, less bad confirm where the initiator sends no Pairing Confirm (SC JW, NC,
    // OOB) and the three SC-only checks in the four legacy methods.
    expect(cells).toHaveLength(9 * 21 - 3 - 4 * 3);
  });
});
