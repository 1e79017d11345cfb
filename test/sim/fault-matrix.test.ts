// The extended fault matrix (issue 15, "State after a fault"): five procedures — scan, connect,
// reliable write, long read, indications — under six faults — an error answer, silence, the peer
// disconnecting, the radio losing the link, a dropped packet, a controller Hardware Error — one test
// per cell, on the simulator (deterministic, virtual time). Each cell checks:
//  - the procedure settles (no hang) with the outcome written in EXPECTED: success, or the typed
//    BlewireError named there;
//  - afterwards the link is either usable (a read of the Device Name answers) or cleanly closed
//    (`closed` resolved, gone from adapter.connections), and the NEXT operation behaves: the same
//    procedure, on the same link or a new one, succeeds;
//  - once the adapter is closed no host timer is left.
import { afterEach, describe, expect, test } from 'vitest';
import { Adapter } from '../../src/api/adapter.js';
import type { Connection } from '../../src/api/connection.js';
import { BlewireError, DisconnectedError, HciStatusError, SmpError } from '../../src/errors.js';
import type { PairOptions } from '../../src/link/pairing.js';
import { createSimulator, type PeerBehaviour, type SimPairing, type SimPeripheral, type Simulator } from '../../src/sim/index.js';
import { MemoryBondStore } from '../../src/smp/bonds.js';

const ADDRESS = 'D4:1E:35:7A:00:09';
/** 100 octets: at ATT_MTU 23 a read takes one Read and four Read Blob (Vol 3, Part G, 4.8.3). */
const LONG = Uint8Array.from({ length: 100 }, (_, i) => i);

function peer(behaviour: PeerBehaviour = {}): SimPeripheral {
  return {
    name: 'Matrix', address: ADDRESS, addressType: 'random', mtu: 23, behaviour,
    advertising: { data: { flags: 0x06, name: 'Matrix' }, intervalMs: 50, rssi: -50 },
    gatt: [
      { uuid: 0x1800, characteristics: [{ uuid: 0x2a00, properties: ['read'], value: 'Matrix' }] },
      { uuid: 0xfff0, characteristics: [
        { uuid: 0xfff1, properties: ['read', 'write'], value: LONG, maxLength: 200 },
        { uuid: 0xfff2, properties: ['read', 'write'], value: Uint8Array.of(0), maxLength: 64 },
        { uuid: 0xfff3, properties: ['indicate'] },
      ] },
    ],
    notifications: [{ characteristic: 0xfff3, everyMs: 200, mode: 'indicate', generator: { kind: 'counter', bytes: 2 } }],
  };
}

/** Scanned for while the link to Matrix is up (a connected peripheral stops advertising). */
const BEACON: SimPeripheral = {
  name: 'Beacon', address: 'D4:1E:35:7A:00:0A', addressType: 'random',
  advertising: { data: { flags: 0x06, name: 'Beacon' }, intervalMs: 100, rssi: -60 },
};

const PROCEDURES = ['scan', 'connect', 'reliable write', 'long read', 'indications'] as const;
const FAULTS = ['error answer', 'silence', 'peer disconnects', 'link lost', 'dropped packet', 'hardware error'] as const;
type Procedure = (typeof PROCEDURES)[number];
type Fault = (typeof FAULTS)[number];

interface World {
  sim: Simulator;
  adapter: Adapter;
  conn?: Connection;
  handles: { long: number; small: number; indicate: number; name: number };
}

const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.adapter.close().catch(() => undefined);
});

async function connect(w: World): Promise<Connection> {
  const conn = await w.adapter.connect({ address: ADDRESS, addressType: 'random' } as never, { timeout: 5000 });
  w.conn = conn;
  return conn;
}

async function discover(w: World): Promise<void> {
  const conn = w.conn!;
  const ch = async (u: number) => (await conn.characteristic(0xfff0, u)).handle;
  w.handles = { long: await ch(0xfff1), small: await ch(0xfff2), indicate: await ch(0xfff3),
    name: (await conn.characteristic(0x1800, 0x2a00)).handle };
}

/** Three indications received (each confirmed), or the subscription failing. */
async function indications(conn: Connection, sim: Simulator, within = 5000): Promise<number[]> {
  const ch = await conn.characteristic(0xfff0, 0xfff3);
  const got: number[] = [];
  const sub = await ch.subscribe(v => { got.push(v[0]! | (v[1]! << 8)); }, { indicate: true, timeout: 10_000 });
  const end = sim.now() + within;
  while (got.length < 3 && sim.now() < end && conn.connected) await new Promise<void>(r => sim.clock.setTimeout(r, 50));
  await sub.unsubscribe().catch(() => undefined);
  if (got.length < 3) throw new Error(`only ${got.length} indications in ${within} ms`);
  return got;
}

/** Run one procedure on the world (connecting first where it needs a link). */
async function run(w: World, p: Procedure): Promise<unknown> {
  switch (p) {
    case 'scan': {
      const ad = await w.adapter.find({ name: 'Beacon', timeout: 3000 });
      if (!ad) throw new Error('scan: Beacon not heard');
      return ad.address;
    }
    case 'connect': return (await connect(w)).handle;
    case 'reliable write':
      await w.conn!.gatt.reliableWrite([{ handle: w.handles.long, value: LONG.subarray(0, 40) }, { handle: w.handles.small, value: Uint8Array.of(1, 2, 3) }],
        { timeout: 40_000 });
      return 'written';
    case 'long read': return (await w.conn!.gatt.readValue(w.handles.long, { timeout: 40_000 })).length;
    case 'indications': return (await indications(w.conn!, w.sim)).length;
  }
}

/** The peer behaviour (set before the link exists) each cell needs. */
function behaviourFor(p: Procedure, f: Fault): PeerBehaviour {
  const op = p === 'reliable write' ? 0x18 /* Execute Write */ : p === 'long read' ? 0x0c /* Read Blob */ : 0x12; /* Write (CCCD) */
  if (p === 'scan' || p === 'connect') return {};
  switch (f) {
    // The second Prepare Write (Prepare Queue Full), the second Read Blob (Unlikely Error: not Invalid
    // Offset, which readLong takes as the end of an exact-fit value, Vol 3, Part F, 3.4.4.5), the CCCD
    // write (Write Not Permitted).
    case 'error answer': return { errors: [p === 'reliable write' ? { opcode: 0x16, nth: 2, error: 0x09 }
      : p === 'long read' ? { opcode: 0x0c, nth: 2, error: 0x0e } : { opcode: 0x12, nth: 1, error: 0x03 }] };
    case 'silence': return { ignore: [{ opcode: op, nth: 1 }] };
    case 'peer disconnects': return p === 'indications' ? {} : { disconnectOn: [{ opcode: op, nth: 1 }] };
    default: return {};
  }
}

/** Faults injected at the moment the procedure starts (controller side and radio). */
function injectAtStart(w: World, p: Procedure, f: Fault): void {
  const { sim } = w;
  switch (f) {
    case 'error answer':
      if (p === 'scan') sim.failCommand('leSetExtendedScanEnable', 0x0c);
      if (p === 'connect') sim.failCommand('leExtendedCreateConnection', 0x07);
      return;
    case 'silence':
      if (p === 'scan') sim.failCommand('leSetExtendedScanEnable', 'silent');
      if (p === 'connect') sim.failCommand('leExtendedCreateConnection', 'silent');
      return;
    case 'peer disconnects':
      if (p === 'scan') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 20);
      if (p === 'connect') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 0);
      if (p === 'indications') sim.clock.setTimeout(() => sim.disconnect('Matrix'), 300);
      return;
    case 'link lost':
      // Not for connect: the link it makes is lost right after (below, once it exists).
      if (p !== 'connect') sim.loseLink('Matrix');
      return;
    case 'dropped packet':
      if (p === 'scan') sim.inject({ direction: 'toHost', kind: 'commandComplete', action: 'drop' });
      if (p === 'connect') sim.inject({ direction: 'toHost', kind: 'commandStatus', action: 'drop' });
      if (p === 'reliable write') sim.inject({ direction: 'toHost', attOpcode: 0x19, action: 'drop' });
      if (p === 'long read') sim.inject({ direction: 'toHost', attOpcode: 0x0d, nth: 2, action: 'drop' });
      if (p === 'indications') sim.inject({ direction: 'toHost', attOpcode: 0x1d, action: 'drop' });
      return;
    case 'hardware error':
      // connect: the controller sits on LE Extended Create Connection, so the Hardware Error always
      // finds the connection pending (a timer alone raced the connection's completion).
      if (p === 'connect') sim.failCommand('leExtendedCreateConnection', 'silent');
      sim.clock.setTimeout(() => sim.hardwareError(0x42), p === 'indications' ? 300 : 1);
      return;
  }
}

/**
 * What each cell's procedure must end with: 'ok', or the BlewireError's name. Filled from the
 * specification's rules, checked against the stack: an error answer is that error (AttError,
 * HciStatusError); silence is a TimeoutError (the command timeout, the 30 s ATT transaction timeout);
 * a link that ends under an operation is a DisconnectedError.
 */
const EXPECTED: Record<Procedure, Record<Fault, string>> = {
  scan: { 'error answer': 'HciStatusError', silence: 'TimeoutError', 'peer disconnects': 'ok', 'link lost': 'ok',
    'dropped packet': 'TimeoutError', 'hardware error': 'HardwareError' },
  // A dropped Command Status of LE Extended Create Connection costs nothing: LE Connection Complete follows.
  connect: { 'error answer': 'HciStatusError', silence: 'TimeoutError', 'peer disconnects': 'ok', 'link lost': 'ok',
    'dropped packet': 'ok', 'hardware error': 'HardwareError' },
  'reliable write': { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'DisconnectedError',
    'link lost': 'DisconnectedError', 'dropped packet': 'TimeoutError', 'hardware error': 'DisconnectedError' },
  'long read': { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'DisconnectedError',
    'link lost': 'DisconnectedError', 'dropped packet': 'TimeoutError', 'hardware error': 'DisconnectedError' },
  indications: { 'error answer': 'AttError', silence: 'TimeoutError', 'peer disconnects': 'Error', 'link lost': 'DisconnectedError',
    'dropped packet': 'Error', 'hardware error': 'Error' },
};

async function cell(p: Procedure, f: Fault): Promise<void> {
  const sim = createSimulator({ name: `matrix ${p} × ${f}`, peripherals: [peer(behaviourFor(p, f)), BEACON] });
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, commandTimeout: 2000 });
  const w: World = { sim, adapter, handles: { long: 0, small: 0, indicate: 0, name: 0 } };
  worlds.push(w);
  // Every procedure but connect runs with a link up (scan too: the link's fault must not stop the scan).
  if (p !== 'connect') {
    await connect(w);
    await discover(w);
  }
  if (p === 'connect' && f === 'link lost') {
    adapter.once('connection', () => sim.loseLink('Matrix'));
  }
  injectAtStart(w, p, f);
  const first = w.conn;

  // 1. The procedure settles, with the expected outcome.
  const outcome = await run(w, p).then(() => 'ok', (e: unknown) => {
    if (e instanceof BlewireError) return e.name;
    // Our own indication collector reports too few values with a plain Error (not the stack's).
    if (p === 'indications' && e instanceof Error && e.message.startsWith('only ')) return 'Error';
    throw e;
  });
  expect(outcome, `${p} under ${f}`).toBe(EXPECTED[p][f]);

  // 2. The link is usable (a read answers), or cleanly closed (the read, if tried, failed typed, and
  //    the link ends: `closed` resolves with a reason and the adapter forgets it).
  const conn = w.conn ?? first;
  if (conn) {
    let usable = false;
    if (conn.connected) {
      const name = await (async () => conn.gatt.readValue(w.handles.name || (await conn.characteristic(0x1800, 0x2a00)).handle,
        { timeout: 40_000 }))().catch((e: unknown) => e);
      if (name instanceof Uint8Array) {
        expect(new TextDecoder().decode(name), 'the link after the fault answers').toBe('Matrix');
        usable = true;
      } else {
        expect(name, 'a link that cannot answer fails typed').toBeInstanceOf(BlewireError);
      }
    }
    if (!usable) {
      const reason = await conn.closed;
      expect(typeof reason.code, 'closed with a reason').toBe('number');
      expect(conn.connected).toBe(false);
      expect(adapter.connections, 'a closed link is gone from the adapter').not.toContain(conn);
    }
  }

  // 3. The next operation behaves: the same procedure, on a (new) link where it needs one. The fault
  //    was one-shot (the peer behaves from now on); 35 s of virtual time pass first, past a Hardware
  //    Error's re-initialisation, a supervision timeout and the peer's own 30 s ATT timeout.
  sim.peripheral('Matrix').spec.behaviour = {};
  await new Promise<void>(r => sim.clock.setTimeout(r, 35_000));
  expect(adapter.host.state).toBe('ready');
  if (p !== 'scan' && p !== 'connect' && !w.conn?.connected) {
    await connect(w);
    await discover(w);
  }
  if (p === 'connect' && w.conn?.connected) await w.conn.disconnect();
  await expect(run(w, p), `${p} after ${f}`).resolves.toBeDefined();

  // 4. Nothing left on the clock once closed.
  await adapter.close();
  expect(sim.clock.pendingTimers, 'host timers left after close').toBe(0);
}

describe('fault matrix: every procedure under every fault leaves a usable or cleanly closed link', () => {
  for (const p of PROCEDURES) {
    for (const f of FAULTS) {
      test(`${p} × ${f}`, () => cell(p, f), 30_000);
    }
  }
});

// ---------------------------------------------------------------------------------------------------
// Pairing and encryption (issue 15: "and (when it lands) pairing and encryption"): every method the
// stack has against the simulator's peer (the same SmpSession as responder; the simulated controller
// checks both sides hold the same key) and encrypt() from a bond, under nine faults. SC OOB: the peer
// makes its OOB data (r, c) as each link comes up and we pass it to pair() as received out of band.
// Each cell checks what the cells above check (settles typed, link usable or cleanly closed, the next
// operation behaves, no timer left) and, per fault, what the error must carry: the SmpError's side
// (peer / local / encryption), the HCI status, the link-loss reason. Where our encryption failed with
// the link still up, the peer must have been told (Pairing Failed) rather than left waiting 30 s.

const PAIRINGS = ['legacy Just Works', 'legacy passkey', 'legacy OOB', 'SC Just Works', 'SC numeric comparison', 'SC passkey',
  'SC OOB', 'encrypt from bond'] as const;
const SEC_FAULTS = ['peer silent', 'peer Pairing Failed', 'link lost', 'Enable Encryption refused', 'Encryption Change error',
  'key missing', 'MIC failure', 'malformed PDU', 'unexpected PDU'] as const;
type Pairing = (typeof PAIRINGS)[number];
type SecFault = (typeof SEC_FAULTS)[number];

/** A legacy OOB TK both sides hold (MSO first). */
const TK = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

/** The peer's pairing and our pair() options for each method (made when pair() is called). */
function method(m: Pairing, sim: () => Simulator): { peer: SimPairing; ours: () => PairOptions } {
  const stats = () => sim().peripheral('Matrix').pairingStats;
  const displayed = (): number => stats().displayed!;
  switch (m) {
    case 'legacy Just Works': return { peer: { secureConnections: false }, ours: () => ({}) };
    case 'legacy passkey': return { peer: { secureConnections: false, io: 'displayOnly' }, ours: () => ({ io: 'keyboardOnly', onPasskeyRequest: displayed }) };
    case 'legacy OOB': return { peer: { secureConnections: false, oobTk: TK }, ours: () => ({ oob: { legacyTk: TK } }) };
    case 'SC numeric comparison': return { peer: { io: 'displayYesNo' }, ours: () => ({ io: 'displayYesNo', onNumericComparison: () => true }) };
    case 'SC passkey': return { peer: { io: 'displayOnly' }, ours: () => ({ io: 'keyboardOnly', onPasskeyRequest: displayed }) };
    // The peer's OOB data of the current link (Vol 3, Part H, 2.3.5.6.4), handed over out of band.
    case 'SC OOB': return { peer: { scOob: true }, ours: () => ({ oob: { peer: stats().oob! } }) };
    default: return { peer: {}, ours: () => ({}) };
  }
}

/**
 * What each cell must end with: 'ok', 'n/a' (the fault has no meaning for the procedure: no SMP runs
 * in encrypt()), or the error's name with what it must carry. From the specification: an SMP timeout
 * is 30 s (Vol 3, Part H, 3.4); a refused or failed encryption is the HCI status (Vol 4, Part E,
 * 7.8.24, 7.7.8), inside pairing an SmpError by 'encryption'; a wrong key ends the link with MIC
 * Failure 0x3D and a lost one with Connection Timeout 0x08 (Vol 6, Part B, 5.1.3.1, 4.5.2); a malformed
 * PDU is Invalid Parameters (3.3), an out-of-sequence one Unspecified Reason.
 */
type Outcome = 'ok' | 'n/a' | { error: 'TimeoutError' } | { error: 'SmpError'; by: SmpError['by']; reason?: number; hciStatus?: number }
  | { error: 'DisconnectedError'; reason: number } | { error: 'HciStatusError'; status: number };
function expected(m: Pairing, f: SecFault): Outcome {
  const enc = m === 'encrypt from bond';
  switch (f) {
    case 'peer silent': return { error: 'TimeoutError' };
    case 'peer Pairing Failed': return enc ? 'n/a' : { error: 'SmpError', by: 'peer', reason: 0x08 };
    case 'link lost': return { error: 'DisconnectedError', reason: 0x08 };
    case 'Enable Encryption refused': return enc ? { error: 'HciStatusError', status: 0x0c } : { error: 'SmpError', by: 'encryption', hciStatus: 0x0c };
    case 'Encryption Change error': return enc ? { error: 'HciStatusError', status: 0x3d } : { error: 'SmpError', by: 'encryption', hciStatus: 0x3d };
    case 'key missing': return enc ? { error: 'HciStatusError', status: 0x06 } : { error: 'SmpError', by: 'encryption', hciStatus: 0x06 };
    case 'MIC failure': return { error: 'DisconnectedError', reason: 0x3d };
    case 'malformed PDU': return enc ? 'n/a' : { error: 'SmpError', by: 'local', reason: 0x0a };
    case 'unexpected PDU': return enc ? 'n/a' : { error: 'SmpError', by: 'local', reason: 0x08 };
  }
}

interface SecWorld { sim: Simulator; adapter: Adapter; bonds: MemoryBondStore; conn?: Connection; ours: () => PairOptions }
const secWorlds: SecWorld[] = [];
afterEach(async () => {
  for (const w of secWorlds.splice(0)) await w.adapter.close().catch(() => undefined);
});

async function secConnect(w: SecWorld): Promise<Connection> {
  w.conn = await w.adapter.connect({ address: ADDRESS, addressType: 'random' } as never, { timeout: 5000 });
  return w.conn;
}

/** The procedure: pair() with the method's options, or encrypt() from the bond made before. */
function secRun(w: SecWorld, m: Pairing): Promise<unknown> {
  return m === 'encrypt from bond' ? w.conn!.encrypt() : w.conn!.pair({ ...w.ours(), timeout: 60_000 });
}

/** The fault, set up before the procedure starts. */
function secInject(w: SecWorld, m: Pairing, f: SecFault): void {
  const { sim } = w;
  const spec = sim.peripheral('Matrix').spec.pairing!;
  switch (f) {
    case 'peer silent':
      // No SMP answer at all; for encrypt() (no SMP) the controller never answers LE Enable Encryption.
      if (m === 'encrypt from bond') sim.failCommand('leEnableEncryption', 'silent');
      else spec.silent = true;
      return;
    // The peer's Pairing Random (sent in every method) becomes Pairing Failed, Unspecified Reason.
    case 'peer Pairing Failed': spec.replacePdu = { code: 0x04, with: Uint8Array.of(0x05, 0x08) }; return;
    case 'link lost': sim.loseLink('Matrix'); return;
    case 'Enable Encryption refused': sim.failCommand('leEnableEncryption', 0x0c); return; // Command Disallowed
    case 'Encryption Change error':
      // The controller reports Encryption Change [v2] (the sim is 5.3 and the host unmasks it) with MIC
      // Failure status (offset 3: the status octet).
      sim.inject({ direction: 'toHost', kind: 'encryptionChangeV2', action: { corrupt: { offset: 3, xor: 0x3d } } });
      return;
    // encrypt(): the peer forgot its bond (set when its link was made). Pairing: the peer's host does
    // not give its controller the key it just made (LTK request answered negatively).
    case 'key missing': if (m !== 'encrypt from bond') spec.withholdKey = true; return;
    case 'MIC failure':
      // One octet of the key we start encryption with is flipped: the two sides' keys differ.
      sim.inject({ direction: 'toController', kind: 'leEnableEncryption', action: { corrupt: { offset: -1, xor: 0x01 } } });
      return;
    // The peer's Pairing Confirm is cut short / replaced by a Signing Information. SC OOB has no
    // Pairing Confirm (2.3.5.6.4): there its Pairing Public Key is.
    case 'malformed PDU': spec.replacePdu = { code: m === 'SC OOB' ? 0x0c : 0x03, with: Uint8Array.of(0x03, 1, 2, 3) }; return;
    case 'unexpected PDU': spec.replacePdu = { code: m === 'SC OOB' ? 0x0c : 0x03, with: Uint8Array.of(0x0a, ...new Uint8Array(16)) }; return;
  }
}

async function secCell(m: Pairing, f: SecFault, want: Exclude<Outcome, 'n/a'>): Promise<void> {
  const worldRef: { sim?: Simulator } = {};
  const { peer: peerPairing, ours } = method(m, () => worldRef.sim!);
  const sim = createSimulator({ name: `matrix ${m} × ${f}`, peripherals: [{ ...peer(), notifications: [], pairing: { ...peerPairing } }] });
  worldRef.sim = sim;
  const bonds = new MemoryBondStore();
  const adapter = await Adapter.open({ transport: sim.transport, clock: sim.clock, commandTimeout: 2000, bonds });
  const w: SecWorld = { sim, adapter, bonds, ours };
  secWorlds.push(w);
  const spec = (): SimPairing => sim.peripheral('Matrix').spec.pairing!;
  await secConnect(w);
  if (m === 'encrypt from bond') {
    // A bond first (SC Just Works), then a new link to re-encrypt from it.
    await w.conn!.pair();
    await sim.clock.delay(100);
    await w.conn!.disconnect();
    if (f === 'key missing') spec().forgetBonds = true;
    await secConnect(w);
  }
  secInject(w, m, f);
  const conn = w.conn!;
  const peerFailuresBefore = sim.peripheral('Matrix').pairingStats.failures;
  const peerPairingsBefore = sim.peripheral('Matrix').pairingStats.pairings;

  // 1. It settles, typed, with what the error must carry.
  const outcome = await secRun(w, m).then(() => 'ok' as const, (e: unknown) => e);
  if (want === 'ok') {
    expect(outcome, `${m} under ${f}`).toBe('ok');
  } else {
    expect(outcome, `${m} under ${f}: a BlewireError`).toBeInstanceOf(BlewireError);
    expect((outcome as BlewireError).name, `${m} under ${f}`).toBe(want.error);
    if (want.error === 'SmpError') {
      expect(outcome).toMatchObject({ by: want.by, ...(want.reason !== undefined ? { reason: want.reason } : {}),
        ...(want.hciStatus !== undefined ? { hciStatus: want.hciStatus } : {}) });
    }
    if (want.error === 'DisconnectedError') expect((outcome as DisconnectedError).reason, 'the link-loss error says why').toBe(want.reason);
    if (want.error === 'HciStatusError') expect((outcome as HciStatusError).status).toBe(want.status);
  }

  // 1b. Our encryption failed inside a pairing with the link up: the peer is not left waiting. Within
  //     half a second (not its own 30 s SMP timeout) its pairing has ended: failed on our Pairing
  //     Failed, or — SC with nothing for us to distribute, where the peer's side was already complete
  //     when its own Encryption Change came — finished.
  if (want !== 'ok' && want.error === 'SmpError' && want.by === 'encryption' && conn.connected) {
    await sim.clock.delay(500);
    const stats = sim.peripheral('Matrix').pairingStats;
    expect(stats.failures + stats.pairings, 'the peer\'s pairing ended').toBe(peerFailuresBefore + peerPairingsBefore + 1);
    // (With the key withheld the peer's own host refused it: it knows without us.)
    if (stats.failures > peerFailuresBefore && f !== 'key missing') expect(stats.lastFailure, 'the peer heard it from us').toMatch(/sent by the peer/);
    if (m.startsWith('legacy')) expect(stats.failures, 'legacy: the peer still waited for our keys and heard of our failure').toBe(peerFailuresBefore + 1);
  }

  // 2. Usable (an unprotected read answers) or cleanly closed.
  let usable = false;
  if (conn.connected) {
    const name = await conn.gatt.readValue((await conn.characteristic(0x1800, 0x2a00)).handle, { timeout: 40_000 }).catch((e: unknown) => e);
    if (name instanceof Uint8Array) {
      expect(new TextDecoder().decode(name)).toBe('Matrix');
      usable = true;
    } else {
      expect(name, 'a link that cannot answer fails typed').toBeInstanceOf(BlewireError);
    }
  }
  if (!usable) {
    const reason = await conn.closed;
    expect(typeof reason.code).toBe('number');
    expect(adapter.connections).not.toContain(conn);
  }

  // 3. The next operation behaves, on a new link with a peer that behaves: the same pairing (for
  //    encrypt(): a pairing to restore the bond on both sides, then encrypt() on another link).
  const s = spec();
  delete s.silent; delete s.replacePdu; delete s.forgetBonds; delete s.withholdKey;
  await sim.clock.delay(35_000);
  expect(adapter.host.state).toBe('ready');
  if (conn.connected) await conn.disconnect();
  await secConnect(w);
  if (m === 'encrypt from bond') {
    await expect(w.conn!.pair(), `pair after ${f}`).resolves.toMatchObject({ encrypted: true });
    await sim.clock.delay(100);
    await w.conn!.disconnect();
    await secConnect(w);
  }
  // Each method gives the key it must: authenticated (MITM-protected) except Just Works.
  await expect(secRun(w, m), `${m} after ${f}`).resolves.toMatchObject({ encrypted: true,
    ...(m === 'encrypt from bond' ? {} : { authenticated: !m.endsWith('Just Works') }) });

  // 4. Nothing left on the clock once closed.
  await adapter.close();
  expect(sim.clock.pendingTimers, 'host timers left after close').toBe(0);
}

describe('fault matrix: pairing and encryption under every fault settle typed and leave a usable or cleanly closed link', () => {
  for (const m of PAIRINGS) {
    for (const f of SEC_FAULTS) {
      const want = expected(m, f);
      if (want === 'n/a') continue;
      test(`${m} × ${f}`, () => secCell(m, f, want), 30_000);
    }
  }
});
